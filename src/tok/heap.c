/* tok/heap.c: the binary max-heap of merge candidates that both encoders (bpe.c, spm.c) use to
 * find the next pair to merge in n log n: highest priority first, the leftmost pair on ties, as
 * GPT-2's and llama.cpp's encoders choose. */
#include "tok/internal.h"

static bool cand_before(const tok__cand_t *x, const tok__cand_t *y)
{
    return x->prio != y->prio ? x->prio > y->prio : x->left < y->left;
}

void tok__heap_push(tok__cand_t *h, size_t *n, tok__cand_t c)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_before(&c, &h[p]))
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = c;
}

tok__cand_t tok__heap_pop(tok__cand_t *h, size_t *n)
{
    tok__cand_t top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        const tok__cand_t *best = &last;
        if (l < *n && cand_before(&h[l], best))
            best = &h[l], m = l;
        if (l + 1 < *n && cand_before(&h[l + 1], best))
            m = l + 1;
        if (m == i)
            break;
        h[i] = h[m];
        i = m;
    }
    if (*n)
        h[i] = last;
    return top;
}
