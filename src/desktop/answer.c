/* desktop answer: rebuilds an answer's text from its answer.delta events. Offsets count
 * characters (code points) of the answer before the piece; overlap from a rerun job is
 * skipped. Pure; runs on the worker thread. */
#include <string.h>

#include "desktop/internal.h"

void desk__answer_init(desk__answer_t *a, const char *qid) {
    memset(a, 0, sizeof *a);
    snprintf(a->qid, sizeof a->qid, "%s", qid);
    core_buf_init(&a->text);
}

void desk__answer_destroy(desk__answer_t *a) { core_buf_destroy(&a->text); }

static size_t count_chars(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            c++;
    return c;
}

/* Byte index after skipping k code points of s[0..n) (n when it has fewer). */
static size_t skip_chars(const char *s, size_t n, size_t k) {
    size_t i = 0;
    while (i < n && k > 0) {
        i++;
        while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80)
            i++;
        k--;
    }
    return i;
}

size_t desk__answer_delta(desk__answer_t *a, int64_t offset, const char *text, size_t len) {
    if (offset < 0)
        return 0;
    size_t off = (size_t)offset, skip;
    if (off == a->chars || off == a->text.len)
        skip = 0; /* contiguous, counted in characters or in bytes */
    else if (off < a->chars)
        skip = skip_chars(text, len, a->chars - off); /* overlap: keep only what is new */
    else {
        a->gap = true;
        return 0;
    }
    if (skip >= len)
        return 0;
    core_buf_append(&a->text, text + skip, len - skip);
    a->chars += count_chars(text + skip, len - skip);
    return len - skip;
}
