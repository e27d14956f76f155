/* speech sentence: finds where the first sentence of a (possibly still growing) text ends, so
 * a streamed answer can be spoken sentence by sentence. Pure function; any thread. */
#include <string.h>
#include <strings.h>

#include "speech/speech.h"

static bool is_blank(unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* Length of an end mark at s[0..n): . ! ? (1), … 。 ！ ？ (3); 0 if none. *cjk for marks that
 * need no blank after them. */
static size_t end_mark(const unsigned char *s, size_t n, bool *cjk) {
    *cjk = false;
    if (s[0] == '.' || s[0] == '!' || s[0] == '?')
        return 1;
    if (n >= 3 && s[0] == 0xE2 && s[1] == 0x80 && s[2] == 0xA6)
        return 3; /* … */
    if (n >= 3 && ((s[0] == 0xE3 && s[1] == 0x80 && s[2] == 0x82) ||   /* 。 */
                   (s[0] == 0xEF && s[1] == 0xBC && (s[2] == 0x81 || s[2] == 0x9F)))) { /* ！？ */
        *cjk = true;
        return 3;
    }
    return 0;
}

/* Length of a closing quote or bracket at s[0..n), 0 if none. */
static size_t closer(const unsigned char *s, size_t n) {
    if (s[0] == '"' || s[0] == '\'' || s[0] == ')' || s[0] == ']' || s[0] == '}')
        return 1;
    if (n >= 2 && s[0] == 0xC2 && s[1] == 0xBB)
        return 2; /* » */
    if (n >= 3 && s[0] == 0xE2 && s[1] == 0x80 && (s[2] == 0x99 || s[2] == 0x9D))
        return 3; /* ’ ” */
    return 0;
}

/* True when the '.' at s[dot] follows an abbreviation or an initial, not a sentence's end. */
static bool after_abbreviation(const unsigned char *s, size_t dot) {
    static const char *const abbr[] = {"mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st",
                                       "vs", "e.g", "i.e", "cf", "approx", "no", "fig"};
    size_t b = dot;
    while (b > 0 && !is_blank(s[b - 1]) && s[b - 1] != '(' && s[b - 1] != '"')
        b--;
    size_t wlen = dot - b;
    if (wlen == 0)
        return false;
    if (wlen == 1 && ((s[b] >= 'A' && s[b] <= 'Z') || (s[b] >= 'a' && s[b] <= 'z')))
        return true; /* an initial: "J. Smith" */
    for (size_t i = 0; i < sizeof abbr / sizeof abbr[0]; i++)
        if (strlen(abbr[i]) == wlen && strncasecmp((const char *)s + b, abbr[i], wlen) == 0)
            return true;
    return false;
}

/* Cut point for a run of more than max bytes without an end: after the last blank or comma
 * within max, else at max backed up to a UTF-8 boundary. */
static size_t cut_long(const unsigned char *s, size_t max) {
    for (size_t i = max; i > 0; i--)
        if (is_blank(s[i - 1]) || s[i - 1] == ',')
            return i;
    size_t i = max;
    while (i > 0 && (s[i] & 0xC0) == 0x80)
        i--;
    return i > 0 ? i : max;
}

size_t speech_next_sentence(const char *text, size_t len, bool at_end, size_t max_bytes) {
    const unsigned char *s = (const unsigned char *)text;
    if (max_bytes == 0)
        max_bytes = 400;
    size_t i = 0;
    bool seen_word = false;
    while (i < len && i < max_bytes) {
        if (s[i] == '\n') {
            if (!seen_word) { /* leading blank lines belong to the next sentence */
                i++;
                continue;
            }
            size_t j = i + 1;
            while (j < len && is_blank(s[j]))
                j++;
            return j;
        }
        bool cjk;
        size_t m = end_mark(s + i, len - i, &cjk);
        if (m == 0) {
            if (!is_blank(s[i]))
                seen_word = true;
            i++;
            continue;
        }
        size_t j = i + m, k;
        bool more_cjk;
        while (j < len && (k = end_mark(s + j, len - j, &more_cjk)) > 0) { /* "?!", "..." */
            j += k;
            cjk = cjk || more_cjk;
        }
        while (j < len && (k = closer(s + j, len - j)) > 0)
            j += k;
        if (j == len) {
            if (at_end)
                return len;
            return 0; /* the next piece may show this was "3." of "3.5" */
        }
        if (cjk || is_blank(s[j])) {
            if (!cjk && s[i] == '.' && m == 1 && j == i + 1 && after_abbreviation(s, i)) {
                i = j;
                continue;
            }
            while (j < len && is_blank(s[j]))
                j++;
            return j;
        }
        seen_word = true;
        i = j;
    }
    if (len > max_bytes)
        return cut_long(s, max_bytes);
    return at_end ? len : 0;
}
