/* tok/unicode.c: the text side of GPT-2's pre-tokenizer, by hand instead of a regex library —
 * UTF-8 decoding that never loses a byte, code point classes (letters and numbers from the
 * generated tables in unicode_tables.c, white space from Unicode's White_Space property), the
 * splitter for
 *     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * (alternatives tried in order at each position, as a backtracking regex engine does), and
 * GPT-2's byte-to-unicode table. Pure functions; any thread. */
#include "tok/internal.h"

static bool in_ranges(const tok__range_t *r, size_t n, uint32_t cp)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < r[mid].lo)
            hi = mid;
        else if (cp > r[mid].hi)
            lo = mid + 1;
        else
            return true;
    }
    return false;
}

int tok__cp_class(uint32_t cp)
{
    if (cp < 0x80) {
        if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z'))
            return TOK__CLS_LETTER;
        if (cp >= '0' && cp <= '9')
            return TOK__CLS_NUMBER;
        if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D))
            return TOK__CLS_SPACE;
        return TOK__CLS_OTHER;
    }
    /* White_Space (PropList.txt): stable and short, so kept here rather than generated */
    if (cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
        cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000)
        return TOK__CLS_SPACE;
    if (in_ranges(tok__letter_ranges, tok__letter_ranges_n, cp))
        return TOK__CLS_LETTER;
    if (in_ranges(tok__number_ranges, tok__number_ranges_n, cp))
        return TOK__CLS_NUMBER;
    return TOK__CLS_OTHER;
}

size_t tok__utf8_next(const uint8_t *s, size_t n, uint32_t *cp)
{
    uint8_t b = s[0];
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    size_t len;
    uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (b >= 0xC2 && b <= 0xDF)
        len = 2;
    else if (b >= 0xE0 && b <= 0xEF) {
        len = 3;
        if (b == 0xE0)
            lo = 0xA0; /* no overlongs */
        else if (b == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (b >= 0xF0 && b <= 0xF4) {
        len = 4;
        if (b == 0xF0)
            lo = 0x90;
        else if (b == 0xF4)
            hi = 0x8F; /* <= U+10FFFF */
    } else {
        goto bad;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        goto bad;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            goto bad;
    uint32_t c = b & (0x7F >> len);
    for (size_t i = 1; i < len; i++)
        c = (c << 6) | (s[i] & 0x3F);
    *cp = c;
    return len;
bad:
    *cp = 0xFFFD;
    return 1;
}

size_t tok__utf8_put(uint32_t cp, uint8_t *out)
{
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | (cp >> 6));
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (cp >> 12));
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | (cp >> 18));
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* The class of the character at pos, and its end. */
static int class_at(const uint8_t *s, size_t n, size_t pos, size_t *end)
{
    uint32_t cp;
    *end = pos + tok__utf8_next(s + pos, n - pos, &cp);
    return tok__cp_class(cp);
}

/* End of the run of characters of class cls starting at pos. */
static size_t run_end(const uint8_t *s, size_t n, size_t pos, int cls)
{
    while (pos < n) {
        size_t e;
        if (class_at(s, n, pos, &e) != cls)
            break;
        pos = e;
    }
    return pos;
}

size_t tok__pretok_next(const uint8_t *s, size_t n, size_t pos)
{
    /* 's|'t|'re|'ve|'m|'ll|'d (case-sensitive, as in GPT-2) */
    if (s[pos] == '\'' && pos + 1 < n) {
        uint8_t c = s[pos + 1];
        if (c == 's' || c == 't' || c == 'm' || c == 'd')
            return pos + 2;
        if (pos + 2 < n) {
            uint8_t d = s[pos + 2];
            if ((c == 'r' && d == 'e') || (c == 'v' && d == 'e') || (c == 'l' && d == 'l'))
                return pos + 3;
        }
    }
    /* ' ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+': the class of the first character after an
     * optional space decides which one matches, and the run of that class is the match */
    size_t start = pos, e;
    if (s[pos] == ' ' && pos + 1 < n)
        start = pos + 1;
    int cls = class_at(s, n, start, &e);
    if (cls != TOK__CLS_SPACE)
        return run_end(s, n, e, cls);
    /* '\s+(?!\S)|\s+': a run of white space, minus its last character when that one is followed
     * by something else (the regex backtracks one character so the next piece gets it) */
    size_t last = pos, end = pos, k = 0;
    while (end < n) {
        size_t ce;
        if (class_at(s, n, end, &ce) != TOK__CLS_SPACE)
            break;
        last = end;
        end = ce;
        k++;
    }
    if (end == n || k < 2)
        return end;
    return last;
}

static bool is_crlf(const uint8_t *s, size_t n, size_t pos)
{
    (void)n;
    return s[pos] == '\r' || s[pos] == '\n';
}

static int lower_ascii(uint8_t c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* Llama 3's and Qwen2's splitter; see internal.h. */
static size_t pretok_llama3(const uint8_t *s, size_t n, size_t pos, size_t max_digits)
{
    size_t e, e2;
    /* (?i:'s|'t|'re|'ve|'m|'ll|'d) */
    if (s[pos] == '\'' && pos + 1 < n) {
        int c = lower_ascii(s[pos + 1]);
        if (c == 's' || c == 't' || c == 'm' || c == 'd')
            return pos + 2;
        if (pos + 2 < n) {
            int d = lower_ascii(s[pos + 2]);
            if ((c == 'r' && d == 'e') || (c == 'v' && d == 'e') || (c == 'l' && d == 'l'))
                return pos + 3;
        }
    }
    int cls = class_at(s, n, pos, &e);
    /* [^\r\n\p{L}\p{N}]?\p{L}+ */
    if (cls == TOK__CLS_LETTER)
        return run_end(s, n, e, TOK__CLS_LETTER);
    if (cls != TOK__CLS_NUMBER && !is_crlf(s, n, pos) && e < n &&
        class_at(s, n, e, &e2) == TOK__CLS_LETTER)
        return run_end(s, n, e2, TOK__CLS_LETTER);
    /* \p{N}{1,3} */
    if (cls == TOK__CLS_NUMBER) {
        for (size_t k = 1; k < max_digits && e < n && class_at(s, n, e, &e2) == TOK__CLS_NUMBER; k++)
            e = e2;
        return e;
    }
    /* ' ?[^\s\p{L}\p{N}]+[\r\n]*' */
    size_t start = pos;
    if (s[pos] == ' ' && pos + 1 < n)
        start = pos + 1;
    size_t ce;
    if (class_at(s, n, start, &ce) == TOK__CLS_OTHER) {
        size_t end = run_end(s, n, ce, TOK__CLS_OTHER);
        while (end < n && is_crlf(s, n, end))
            end++;
        return end;
    }
    /* the white-space run from pos; \s*[\r\n]+ takes it up to its last \r or \n */
    size_t last = pos, end = pos, k = 0, after_nl = 0;
    while (end < n) {
        if (class_at(s, n, end, &ce) != TOK__CLS_SPACE)
            break;
        if (is_crlf(s, n, end))
            after_nl = ce;
        last = end;
        end = ce;
        k++;
    }
    if (after_nl)
        return after_nl;
    /* \s+(?!\S)|\s+ */
    if (end == n || k < 2)
        return end;
    return last;
}

size_t tok__pretok_next_kind(int pre, const uint8_t *s, size_t n, size_t pos)
{
    switch (pre) {
    case TOK__PRE_LLAMA3: return pretok_llama3(s, n, pos, 3);
    case TOK__PRE_QWEN2: return pretok_llama3(s, n, pos, 1);
    default: return tok__pretok_next(s, n, pos);
    }
}

/* GPT-2's bytes_to_unicode(): printable Latin-1 bytes stand for themselves, the others (control
 * characters, space, DEL, NBSP, soft hyphen) for 256, 257, ... in byte order. */
static bool byte_printable(int b)
{
    return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
}

uint32_t tok__byte_cp(uint8_t b)
{
    if (byte_printable(b))
        return b;
    uint32_t k = 0;
    for (int i = 0; i < b; i++)
        if (!byte_printable(i))
            k++;
    return 256 + k;
}

int tok__cp_byte(uint32_t cp)
{
    if (cp < 256)
        return byte_printable((int)cp) ? (int)cp : -1;
    uint32_t k = 0;
    for (int i = 0; i < 256; i++)
        if (!byte_printable(i) && 256 + k++ == cp)
            return i;
    return -1;
}
