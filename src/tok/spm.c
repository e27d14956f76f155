/* tok/spm.c: SentencePiece-style encoding of one raw fragment, as llama.cpp's SPM tokenizer does
 * it: spaces become U+2581, a U+2581 is put in front (tokenizer.ggml.add_space_prefix), the text
 * is split into UTF-8 characters, and the adjacent pair whose concatenation is the token of best
 * score is merged (the leftmost on ties) until none is left; a symbol that is no token falls back
 * to its <0xXX> byte tokens.
 *
 * Two departures keep every byte string round-tripping exactly: a U+2581 that is in the input
 * itself never merges and is written as its three byte tokens (so decoding, which turns U+2581
 * back into spaces, does not invent a space), and an escaped space with no token of its own falls
 * back to <0x20> rather than to the bytes of U+2581. Only normal tokens take part in merges (a
 * literal "<0x41>" in the text must not become the byte token for "A"). */
#include "tok/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint32_t start, len; /* bytes in the escaped text */
    int32_t prev, next;
    uint8_t kind; /* 0 plain, 1 escaped space, 2 literal U+2581 (never merges) */
} sym_t;

/* A normal token with exactly this text, or -1. */
static int32_t lookup(const tok_t *t, const uint8_t *s, size_t len)
{
    int32_t id = tok__strmap_get(&t->text_map, s, len);
    if (id >= 0 && t->type[id] != TOK__NORMAL && t->type[id] != TOK__UNDEFINED)
        return -1;
    return id;
}

static void try_pair(const tok_t *t, const uint8_t *buf, const sym_t *sym, int32_t l, int32_t r,
                     tok__cand_t *h, size_t *n)
{
    if (l < 0 || r < 0 || sym[l].kind == 2 || sym[r].kind == 2)
        return;
    uint32_t size = sym[l].len + sym[r].len;
    int32_t id = lookup(t, buf + sym[l].start, size);
    if (id < 0)
        return;
    tok__heap_push(h, n,
                   (tok__cand_t){.prio = t->score[id], .left = l, .right = r, .a = (int32_t)size});
}

int tok__spm_fragment(const tok_t *t, const uint8_t *s, size_t n, tok__ids_t *out)
{
    static const uint8_t ESC[3] = {0xE2, 0x96, 0x81}; /* U+2581 */
    if (n > (UINT32_MAX - 3) / 3)
        return -ENOMEM;
    size_t cap = 3 * n + 3, nchar = n + 1;
    uint8_t *buf = malloc(cap);
    sym_t *sym = malloc(nchar * sizeof *sym);
    tok__cand_t *heap = malloc(3 * nchar * sizeof *heap);
    int rc = -ENOMEM;
    if (!buf || !sym || !heap)
        goto out;
    size_t blen = 0, ns = 0;
    if (t->add_space_prefix) {
        memcpy(buf, ESC, 3);
        sym[ns++] = (sym_t){.start = 0, .len = 3, .kind = 1};
        blen = 3;
    }
    for (size_t p = 0; p < n;) {
        uint32_t cp;
        size_t cl = tok__utf8_next(s + p, n - p, &cp);
        sym_t y = {.start = (uint32_t)blen, .len = (uint32_t)cl, .kind = 0};
        if (cp == ' ') {
            memcpy(buf + blen, ESC, 3);
            y.len = 3;
            y.kind = 1;
        } else {
            memcpy(buf + blen, s + p, cl);
            if (cp == 0x2581)
                y.kind = 2;
        }
        blen += y.len;
        sym[ns++] = y;
        p += cl;
    }
    for (size_t i = 0; i < ns; i++) {
        sym[i].prev = (int32_t)i - 1;
        sym[i].next = i + 1 < ns ? (int32_t)i + 1 : -1;
    }
    size_t hn = 0;
    for (size_t i = 0; i + 1 < ns; i++)
        try_pair(t, buf, sym, (int32_t)i, (int32_t)i + 1, heap, &hn);
    while (hn) {
        tok__cand_t b = tok__heap_pop(heap, &hn);
        sym_t *l = &sym[b.left], *r = &sym[b.right];
        if (l->len == 0 || r->len == 0 || l->next != b.right || l->len + r->len != (uint32_t)b.a)
            continue; /* stale */
        l->len += r->len;
        r->len = 0;
        l->next = r->next;
        if (r->next >= 0)
            sym[r->next].prev = b.left;
        try_pair(t, buf, sym, l->prev, b.left, heap, &hn);
        try_pair(t, buf, sym, b.left, l->next, heap, &hn);
    }
    rc = 0;
    for (int32_t i = ns ? 0 : -1; i >= 0 && rc == 0; i = sym[i].next) {
        const sym_t *y = &sym[i];
        int32_t id = y->kind == 2 ? -1 : lookup(t, buf + y->start, y->len);
        if (id >= 0)
            rc = tok__ids_push(out, id);
        else if (y->kind == 1 && y->len == 3)
            rc = tok__ids_push(out, t->byte_tok[' ']);
        else /* a single character that is no token: its bytes */
            for (uint32_t k = 0; k < y->len && rc == 0; k++)
                rc = tok__ids_push(out, t->byte_tok[buf[y->start + k]]);
    }
out:
    free(buf);
    free(sym);
    free(heap);
    return rc;
}
