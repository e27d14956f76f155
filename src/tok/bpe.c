/* tok/bpe.c: byte-level BPE encoding of one pre-tokenized word: start from the byte tokens, then
 * repeatedly merge the adjacent pair of lowest merge rank (the leftmost when the same pair occurs
 * more than once), as GPT-2's and llama.cpp's encoders do. Symbols form a linked list and the
 * candidate pairs a binary heap checked lazily, so a long word costs n log n, not n^2 — a word can
 * be as long as the input (a megabyte of letters is one word). */
#include "tok/internal.h"

#include <errno.h>
#include <stdlib.h>

typedef struct {
    int32_t id;
    int32_t prev, next; /* -1 at the ends */
} sym_t;

static void try_pair(const tok_t *t, const sym_t *sym, int32_t l, int32_t r, tok__cand_t *h,
                     size_t *n)
{
    if (l < 0 || r < 0)
        return;
    uint64_t v;
    if (!tok__u64map_get(&t->merges, (uint64_t)sym[l].id << 32 | (uint32_t)sym[r].id, &v))
        return;
    /* a, b: the ids when pushed (the pair is stale once a side has changed); c: the result */
    tok__cand_t c = {.prio = -(float)(uint32_t)(v >> 32), .left = l, .right = r, .a = sym[l].id,
                     .b = sym[r].id, .c = (int32_t)(uint32_t)v};
    tok__heap_push(h, n, c);
}

/* Llama 3's vocabularies hold whole words that their merges do not reach, and llama.cpp takes a
 * word that is a token as it is ("ignore_merges"): the token of the word's byte-level text, or
 * -1. Only normal tokens: their pieces are the word's bytes. */
static int32_t whole_word(const tok_t *t, const uint8_t *w, size_t n)
{
    uint8_t stack[256] = {0};
    uint8_t *buf = 2 * n <= sizeof stack ? stack : calloc(2 * n, 1);
    if (!buf)
        return -1;
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += tok__utf8_put(tok__byte_cp(w[i]), buf + len); /* byte-level chars are <= 2 bytes */
    int32_t id = tok__strmap_get(&t->text_map, buf, len);
    if (buf != stack)
        free(buf);
    if (id >= 0 && t->type[id] != TOK__NORMAL && t->type[id] != TOK__UNDEFINED)
        return -1;
    return id;
}

int tok__bpe_word(const tok_t *t, const uint8_t *w, size_t n, tok__ids_t *out)
{
    if (n == 1)
        return tok__ids_push(out, t->byte_tok[w[0]]);
    if (t->pre_kind == TOK__PRE_LLAMA3) {
        int32_t id = whole_word(t, w, n);
        if (id >= 0)
            return tok__ids_push(out, id);
    }
    if (n > INT32_MAX / 2)
        return -ENOMEM;
    /* each merge adds at most two candidates: 3n bounds the heap */
    sym_t stack_sym[64];
    tok__cand_t stack_heap[3 * 64];
    sym_t *sym = n <= 64 ? stack_sym : malloc(n * sizeof *sym);
    tok__cand_t *heap = n <= 64 ? stack_heap : malloc(3 * n * sizeof *heap);
    int rc = -ENOMEM;
    if (!sym || !heap)
        goto out;
    for (size_t i = 0; i < n; i++)
        sym[i] = (sym_t){.id = t->byte_tok[w[i]], .prev = (int32_t)i - 1,
                         .next = i + 1 < n ? (int32_t)i + 1 : -1};
    size_t hn = 0;
    for (size_t i = 0; i + 1 < n; i++)
        try_pair(t, sym, (int32_t)i, (int32_t)i + 1, heap, &hn);
    while (hn) {
        tok__cand_t c = tok__heap_pop(heap, &hn);
        if (sym[c.left].id != c.a || sym[c.left].next != c.right || sym[c.right].id != c.b)
            continue; /* stale: one side was merged since */
        sym[c.left].id = c.c;
        int32_t nx = sym[c.right].next;
        sym[c.left].next = nx;
        if (nx >= 0)
            sym[nx].prev = c.left;
        sym[c.right].id = -1; /* gone */
        try_pair(t, sym, sym[c.left].prev, c.left, heap, &hn);
        try_pair(t, sym, c.left, nx, heap, &hn);
    }
    rc = 0;
    for (int32_t i = 0; i >= 0 && rc == 0; i = sym[i].next)
        rc = tok__ids_push(out, sym[i].id);
out:
    if (sym != stack_sym)
        free(sym);
    if (heap != stack_heap)
        free(heap);
    return rc;
}
