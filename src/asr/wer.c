/* asr/wer.c: the project's word error rate scoring: normalization (case, punctuation) and the
 * word-level Levenshtein distance, S + D + I over the reference words. Pure, any thread; memory is
 * the two token lists and one DP row. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "asr/asr.h"

#define WER_MAX_WORDS 100000

typedef struct wer_words {
    char *text; /* normalized copy, words NUL-separated */
    const char **w;
    size_t n;
} wer_words_t;

static int wer_is_word_char(unsigned char c)
{
    /* Bytes >= 0x80 belong to UTF-8 letters; keep them so non-ASCII words stay words. */
    return isalnum(c) || c == '\'' || c >= 0x80;
}

static int wer_split(const char *s, wer_words_t *out)
{
    size_t len = strlen(s), cap = 0;
    out->text = malloc(len + 1);
    if (!out->text)
        return -ENOMEM;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        out->text[i] = wer_is_word_char(c) ? (char)tolower(c) : '\0';
    }
    out->text[len] = '\0';
    for (size_t i = 0; i < len;) {
        if (!out->text[i]) {
            i++;
            continue;
        }
        /* A word is [i, j); quotes around it ('word') are punctuation, "it's" keeps its own. */
        size_t j = i;
        while (j < len && out->text[j])
            j++;
        size_t a = i, b = j;
        i = j;
        while (a < b && out->text[a] == '\'')
            a++;
        while (b > a && out->text[b - 1] == '\'')
            out->text[--b] = '\0';
        if (a == b)
            continue;
        if (out->n == WER_MAX_WORDS)
            return -E2BIG;
        if (out->n == cap) {
            cap = cap ? cap * 2 : 64;
            const char **nw = realloc(out->w, cap * sizeof *nw);
            if (!nw)
                return -ENOMEM;
            out->w = nw;
        }
        out->w[out->n++] = out->text + a;
    }
    return 0;
}

int asr_wer(const char *ref, const char *hyp, size_t *errors, size_t *ref_words)
{
    wer_words_t r = {0}, h = {0};
    size_t *row = NULL;
    int rc;

    if (!ref || !hyp || !errors || !ref_words)
        return -EINVAL;
    if ((rc = wer_split(ref, &r)) < 0 || (rc = wer_split(hyp, &h)) < 0)
        goto out;
    /* row[j]: edit distance between the first i reference words and the first j hypothesis
     * words; one row suffices. */
    row = malloc((h.n + 1) * sizeof *row);
    if (!row) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t j = 0; j <= h.n; j++)
        row[j] = j;
    for (size_t i = 1; i <= r.n; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= h.n; j++) {
            size_t up = row[j];
            size_t best = diag + (strcmp(r.w[i - 1], h.w[j - 1]) != 0);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    *errors = row[h.n];
    *ref_words = r.n;
    rc = 0;
out:
    free(row);
    free(r.text);
    free(r.w);
    free(h.text);
    free(h.w);
    return rc;
}
