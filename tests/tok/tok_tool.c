/* tok_tool: test tool that exposes src/tok to tests/tok/tok_reference.py, which checks it against
 * reference implementations written in Python (GPT-2's regular expression, GPT-2's bpe(), a naive
 * BPE trainer).
 *
 *   tok_tool split [gpt2|llama3|qwen2]
 *                               stdin: records (u32 little-endian length + bytes); prints, per
 *                               record, the pre-tokenizer's piece lengths on one line
 *   tok_tool train VOCAB OUT.gguf FILE...
 *                               trains on the files and writes the tokenizer keys to OUT.gguf
 *   tok_tool encode MODEL.gguf  stdin: records as above; prints, per record, the ids on one line */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "gguf/gguf.h"
#include "tok/internal.h"
#include "tok/tok.h"

/* Reads one record from stdin into *buf; 1 on success, 0 at the end. */
static int next_record(char **buf, size_t *len)
{
    uint32_t n;
    if (fread(&n, 4, 1, stdin) != 1)
        return 0;
    *buf = xrealloc(*buf, (size_t)n + 1);
    if (n && fread(*buf, 1, n, stdin) != n) {
        fprintf(stderr, "tok_tool: short record\n");
        exit(1);
    }
    *len = n;
    return 1;
}

int main(int argc, char **argv)
{
    char *buf = NULL, err[256];
    size_t len;
    if ((argc == 2 || argc == 3) && !strcmp(argv[1], "split")) {
        int pre = argc == 2 || !strcmp(argv[2], "gpt2") ? TOK__PRE_GPT2
                  : !strcmp(argv[2], "llama3")          ? TOK__PRE_LLAMA3
                                                        : TOK__PRE_QWEN2;
        while (next_record(&buf, &len)) {
            for (size_t pos = 0; pos < len;) {
                size_t end = tok__pretok_next_kind(pre, (const uint8_t *)buf, len, pos);
                printf("%s%zu", pos ? " " : "", end - pos);
                pos = end;
            }
            printf("\n");
        }
        free(buf);
        return 0;
    }
    if (argc >= 5 && !strcmp(argv[1], "train")) {
        int n = argc - 4;
        const char **texts = xcalloc((size_t)n, sizeof *texts);
        size_t *lens = xcalloc((size_t)n, sizeof *lens);
        for (int i = 0; i < n; i++)
            if (core_read_file(argv[4 + i], (size_t)1 << 30, (char **)&texts[i], &lens[i]) < 0) {
                fprintf(stderr, "tok_tool: cannot read %s\n", argv[4 + i]);
                return 1;
            }
        tok_t *t = NULL;
        if (tok_train(texts, lens, (size_t)n, atoi(argv[2]), &t, err, sizeof err) < 0) {
            fprintf(stderr, "tok_tool: %s\n", err);
            return 1;
        }
        gguf_writer_t *w = gguf_writer_new();
        if (tok_to_gguf(t, w) < 0 || gguf_writer_write(w, argv[3], err, sizeof err) < 0) {
            fprintf(stderr, "tok_tool: writing: %s\n", err);
            return 1;
        }
        gguf_writer_free(&w);
        tok_free(&t);
        for (int i = 0; i < n; i++)
            free((char *)texts[i]);
        free(texts);
        free(lens);
        return 0;
    }
    if (argc == 3 && !strcmp(argv[1], "encode")) {
        gguf_t *g = NULL;
        tok_t *t = NULL;
        if (gguf_open(argv[2], &g, err, sizeof err) < 0 || tok_from_gguf(g, &t, err, sizeof err) < 0) {
            fprintf(stderr, "tok_tool: %s\n", err);
            return 1;
        }
        while (next_record(&buf, &len)) {
            int32_t *ids;
            size_t n;
            if (tok_encode(t, buf, len, false, &ids, &n) < 0)
                return 1;
            for (size_t i = 0; i < n; i++)
                printf("%s%d", i ? " " : "", ids[i]);
            printf("\n");
            free(ids);
        }
        free(buf);
        tok_free(&t);
        gguf_close(&g);
        return 0;
    }
    fprintf(stderr, "usage: tok_tool split [gpt2|llama3|qwen2] | train VOCAB OUT.gguf FILE... | encode MODEL.gguf\n");
    return 2;
}
