/* tok_stats: test tool that measures a trained tokenizer on real text — training time for a
 * vocabulary size, encoding speed, compression (bytes per token) on the training files and on
 * held-out files, and an exact round trip of everything encoded. Used for the figures in
 * docs/formats.md; not a test by itself.
 *
 * usage: tok_stats VOCAB TRAIN_FILE... [-- HELDOUT_FILE...] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "tok/tok.h"

static double now_s(void)
{
    return (double)core_mono_ns() / 1e9;
}

static int measure(const tok_t *t, const char *label, char **texts, size_t *lens, size_t n)
{
    size_t bytes = 0, toks = 0;
    double t0 = now_s();
    for (size_t i = 0; i < n; i++) {
        int32_t *ids;
        size_t nid;
        char *back;
        size_t blen;
        if (tok_encode(t, texts[i], lens[i], false, &ids, &nid) < 0 ||
            tok_decode(t, ids, nid, false, &back, &blen) < 0) {
            fprintf(stderr, "out of memory\n");
            return 1;
        }
        if (blen != lens[i] || memcmp(back, texts[i], blen)) {
            fprintf(stderr, "round trip FAILED on %s text %zu\n", label, i);
            return 1;
        }
        bytes += lens[i];
        toks += nid;
        free(ids);
        free(back);
    }
    double dt = now_s() - t0;
    printf("%s: %zu bytes -> %zu tokens, %.3f bytes/token, encode+decode %.2f MB/s, round trip ok\n",
           label, bytes, toks, toks ? (double)bytes / (double)toks : 0.0, (double)bytes / 1e6 / dt);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: tok_stats VOCAB TRAIN_FILE... [-- HELDOUT_FILE...]\n");
        return 2;
    }
    int vocab = atoi(argv[1]);
    char *texts[1024], *held[1024];
    size_t lens[1024], hlens[1024], n = 0, nh = 0, total = 0;
    bool after = false;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--")) {
            after = true;
            continue;
        }
        char *buf;
        size_t len;
        if (core_read_file(argv[i], (size_t)1 << 30, &buf, &len) < 0) {
            fprintf(stderr, "cannot read %s\n", argv[i]);
            return 1;
        }
        if (after && nh < 1024) {
            held[nh] = buf;
            hlens[nh++] = len;
        } else if (!after && n < 1024) {
            texts[n] = buf;
            lens[n++] = len;
            total += len;
        } else {
            free(buf);
        }
    }
    tok_t *t = NULL;
    char err[256];
    double t0 = now_s();
    if (tok_train((const char *const *)texts, lens, n, vocab, &t, err, sizeof err) < 0) {
        fprintf(stderr, "train: %s\n", err);
        return 1;
    }
    printf("trained vocab %d (asked %d) on %zu bytes in %.2f s\n", tok_vocab_size(t), vocab, total,
           now_s() - t0);
    int rc = measure(t, "train", texts, lens, n);
    if (!rc && nh)
        rc = measure(t, "held-out", held, hlens, nh);
    tok_free(&t);
    for (size_t i = 0; i < n; i++)
        free(texts[i]);
    for (size_t i = 0; i < nh; i++)
        free(held[i]);
    return rc;
}
