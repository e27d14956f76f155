/* test_core: unit tests of the core module — UTF-8 validation (table cases and a fuzz loop
 * checked against a reference decoder written here from the Unicode standard's table of
 * well-formed byte sequences), strict number parsing, hex, growable buffers, xasprintf, log
 * value quoting, mkdir -p, whole-file reads, the thread pool, ISO 8601 time and core_strerror.
 *
 * File tests work under $PERSONA_TEST_TMP/<test> (a fresh folder each). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"

/* ==================================================================================== */
/* helpers                                                                               */
/* ==================================================================================== */

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* A fresh, empty folder path for one test (malloc'd); the folder itself is not created. */
static char *fresh_dir(const char *name)
{
    const char *base = getenv("PERSONA_TEST_TMP");
    if (!base || !*base)
        base = "/tmp/persona-test-core";
    assert_int_equal(core_mkdirs(base), 0);
    char *dir = xasprintf("%s/%s", base, name);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return dir;
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n)
        assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* xorshift64*: a small deterministic generator, so a failing fuzz case can be replayed. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

/* ==================================================================================== */
/* UTF-8                                                                                 */
/* ==================================================================================== */

#define U8(lit) core_utf8_valid(lit, sizeof(lit) - 1)

static void test_utf8_table(void **state)
{
    (void)state;
    /* valid */
    assert_true(core_utf8_valid("", 0));
    assert_true(core_utf8_valid(NULL, 0));
    assert_true(U8("hello, world ~\x7f"));
    assert_true(U8("\x01"));
    assert_true(U8("\xc2\x80"));                 /* U+0080, smallest 2-byte */
    assert_true(U8("\xc3\xa9t\xc3\xa9"));       /* "été" */
    assert_true(U8("\xdf\xbf"));                 /* U+07FF */
    assert_true(U8("\xe0\xa0\x80"));             /* U+0800, smallest 3-byte */
    assert_true(U8("\xe2\x82\xac"));             /* € */
    assert_true(U8("\xed\x9f\xbf"));             /* U+D7FF, just below the surrogates */
    assert_true(U8("\xee\x80\x80"));             /* U+E000, just above them */
    assert_true(U8("\xef\xbf\xbf"));             /* U+FFFF */
    assert_true(U8("\xf0\x90\x80\x80"));         /* U+10000, smallest 4-byte */
    assert_true(U8("\xf0\x9f\x98\x80"));         /* 😀 */
    assert_true(U8("\xf4\x8f\xbf\xbf"));         /* U+10FFFF, the largest */
    assert_true(U8("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z"));

    /* NUL is rejected anywhere */
    assert_false(U8("\0"));
    assert_false(U8("ab\0cd"));
    assert_false(U8("\xc3\xa9\0"));
    assert_false(U8("\xc0\x80")); /* "modified UTF-8" NUL is an overlong */

    /* overlongs */
    assert_false(U8("\xc0\x80"));
    assert_false(U8("\xc1\xbf"));
    assert_false(U8("\xe0\x80\x80"));
    assert_false(U8("\xe0\x9f\xbf"));
    assert_false(U8("\xf0\x80\x80\x80"));
    assert_false(U8("\xf0\x8f\xbf\xbf"));

    /* surrogates */
    assert_false(U8("\xed\xa0\x80"));
    assert_false(U8("\xed\xbf\xbf"));
    assert_false(U8("\xed\xa0\xbd\xed\xb8\x80")); /* CESU-8 pair for U+1F600 */

    /* above U+10FFFF, and bytes that can never appear */
    assert_false(U8("\xf4\x90\x80\x80"));
    assert_false(U8("\xf5\x80\x80\x80"));
    assert_false(U8("\xf7\xbf\xbf\xbf"));
    assert_false(U8("\xf8\x88\x80\x80\x80"));
    assert_false(U8("\xfc\x84\x80\x80\x80\x80"));
    assert_false(U8("\xfe"));
    assert_false(U8("\xff"));

    /* truncated at the end */
    assert_false(U8("\xc3"));
    assert_false(U8("abc\xc3"));
    assert_false(U8("\xe2\x82"));
    assert_false(U8("abc\xe2"));
    assert_false(U8("\xf0\x9f\x98"));
    assert_false(U8("\xf0\x9f"));
    assert_false(U8("\xf0"));
    /* truncated in the middle (next byte is not a continuation) */
    assert_false(U8("\xc3" "a"));
    assert_false(U8("\xe2\x82" "a"));
    assert_false(U8("\xf0\x9f\x98" "a"));
    assert_false(U8("\xe2\x82\xc3\xa9"));

    /* lone continuation bytes */
    assert_false(U8("\x80"));
    assert_false(U8("\xbf"));
    assert_false(U8("a\x80"));
    assert_false(U8("\xc3\xa9\xa9"));
    assert_false(U8("\xe2\x82\xac\x80"));

    /* the length is respected: a valid prefix of an invalid buffer */
    const char *s = "ab\xc3\xa9\xff";
    assert_true(core_utf8_valid(s, 4));
    assert_false(core_utf8_valid(s, 5));
    assert_false(core_utf8_valid(s, 3)); /* cuts é in half */
}

/* Reference: Unicode 15, Table 3-7 "Well-Formed UTF-8 Byte Sequences", plus no NUL. */
static bool ref_utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char b = s[i];
        unsigned char lo = 0x80, hi = 0xBF;
        size_t n;
        if (b == 0x00)
            return false;
        else if (b <= 0x7F)
            n = 0;
        else if (b >= 0xC2 && b <= 0xDF)
            n = 1;
        else if (b == 0xE0)
            n = 2, lo = 0xA0;
        else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF)
            n = 2;
        else if (b == 0xED)
            n = 2, hi = 0x9F;
        else if (b == 0xF0)
            n = 3, lo = 0x90;
        else if (b >= 0xF1 && b <= 0xF3)
            n = 3;
        else if (b == 0xF4)
            n = 3, hi = 0x8F;
        else
            return false;
        if (i + n >= len && n > 0)
            return false;
        for (size_t k = 1; k <= n; k++) {
            unsigned char c = s[i + k];
            unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
            if (c < l || c > h)
                return false;
        }
        i += n + 1;
    }
    return true;
}

static size_t put_cp(unsigned char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | cp >> 6);
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | cp >> 12);
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | cp >> 18);
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

static void test_utf8_reference_self_check(void **state)
{
    (void)state;
    /* The reference must agree with the table test before it may judge the fuzz loop. */
    assert_true(ref_utf8_valid((const unsigned char *)"\xf4\x8f\xbf\xbf", 4));
    assert_false(ref_utf8_valid((const unsigned char *)"\xf4\x90\x80\x80", 4));
    assert_false(ref_utf8_valid((const unsigned char *)"\xed\xa0\x80", 3));
    assert_false(ref_utf8_valid((const unsigned char *)"\xe0\x80\x80", 3));
    assert_false(ref_utf8_valid((const unsigned char *)"\xc3", 1));
    /* Every scalar value encodes to something both accept; every surrogate to something both
     * reject (put_cp encodes surrogates the "generalized" way). */
    unsigned char b[4];
    for (uint32_t cp = 1; cp <= 0x10FFFF; cp++) {
        size_t n = put_cp(b, cp);
        bool want = !(cp >= 0xD800 && cp <= 0xDFFF);
        if (ref_utf8_valid(b, n) != want || core_utf8_valid(b, n) != want)
            fail_msg("U+%04X: reference %d, core %d, want %d", cp, ref_utf8_valid(b, n),
                     core_utf8_valid(b, n), want);
    }
}

static void test_utf8_fuzz(void **state)
{
    (void)state;
    static const unsigned char interesting[] = {
        0x00, 0x01, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF,
        0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xF8, 0xFE, 0xFF};
    unsigned char buf[64];
    long valid = 0, invalid = 0;
    rng_state = 0x5EED5EEDULL;
    for (int iter = 0; iter < 100000; iter++) {
        size_t len = 0;
        switch (rng() % 3) {
        case 0: /* uniform random bytes */
            len = rng() % 16;
            for (size_t i = 0; i < len; i++)
                buf[i] = (unsigned char)rng();
            break;
        case 1: /* bytes from the boundary set */
            len = rng() % 16;
            for (size_t i = 0; i < len; i++)
                buf[i] = interesting[rng() % sizeof interesting];
            break;
        default: { /* valid code points, then maybe one mutation */
            int ncp = (int)(rng() % 8);
            for (int k = 0; k < ncp; k++) {
                uint32_t cp;
                switch (rng() % 4) {
                case 0: cp = 1 + (uint32_t)(rng() % 0x7F); break;
                case 1: cp = 0x80 + (uint32_t)(rng() % 0x780); break;
                case 2: cp = 0x800 + (uint32_t)(rng() % 0xF800); break;
                default: cp = 0x10000 + (uint32_t)(rng() % 0x100000); break;
                }
                len += put_cp(buf + len, cp);
            }
            if (len && rng() % 2) {
                size_t at = rng() % len;
                switch (rng() % 3) {
                case 0: buf[at] = (unsigned char)rng(); break;
                case 1: buf[at] = interesting[rng() % sizeof interesting]; break;
                default: len = at; break; /* truncate */
                }
            }
            break;
        }
        }
        bool want = ref_utf8_valid(buf, len);
        bool got = core_utf8_valid(buf, len);
        if (want != got) {
            char hex[2 * sizeof buf + 1];
            core_hex(buf, len, hex);
            fail_msg("iteration %d: bytes %s: core says %d, reference says %d", iter, hex, got,
                     want);
        }
        want ? valid++ : invalid++;
    }
    /* Both outcomes must be well represented or the loop proves little. */
    assert_true(valid > 20000);
    assert_true(invalid > 20000);
}

/* ==================================================================================== */
/* numbers and hex                                                                       */
/* ==================================================================================== */

static int pu64(const char *s, uint64_t *v)
{
    *v = 424242;
    return core_parse_u64(s, strlen(s), v);
}

static void test_parse_u64(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(pu64("0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(pu64("1", &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(pu64("007", &v), 0);
    assert_int_equal(v, 7);
    assert_int_equal(pu64("000000000000000042", &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(pu64("1234567890123456789", &v), 0); /* 19 digits */
    assert_int_equal(v, 1234567890123456789ULL);
    assert_int_equal(pu64("9223372036854775807", &v), 0);
    assert_int_equal(v, (uint64_t)INT64_MAX);

    /* out of range: untouched output */
    static const char *const range[] = {"9223372036854775808", "9999999999999999999",
                                        "10000000000000000000", "18446744073709551615",
                                        "18446744073709551616", "123456789012345678901234"};
    for (size_t i = 0; i < sizeof range / sizeof range[0]; i++) {
        if (pu64(range[i], &v) != -ERANGE)
            fail_msg("'%s' should be -ERANGE", range[i]);
        assert_int_equal(v, 424242);
    }

    /* not a number */
    static const char *const bad[] = {"", "-1", "+1", "-0", " 1", "1 ", "1 2", "\t1", "12a",
                                      "a12", "0x10", "1e3", "1.0", "1,000", "١"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (pu64(bad[i], &v) != -EINVAL)
            fail_msg("'%s' should be -EINVAL", bad[i]);
        assert_int_equal(v, 424242);
    }
    assert_int_equal(core_parse_u64(NULL, 0, &v), -EINVAL);

    /* only len bytes are read */
    assert_int_equal(core_parse_u64("123456", 3, &v), 0);
    assert_int_equal(v, 123);
    assert_int_equal(core_parse_u64("12-34", 2, &v), 0);
    assert_int_equal(v, 12);
    assert_int_equal(core_parse_u64("1\0" "2", 3, &v), -EINVAL);
}

static void test_parse_size(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        uint64_t v;
    } ok[] = {
        {"0", 0},
        {"123", 123},
        {"0K", 0},
        {"1K", 1024},
        {"64K", 65536},
        {"64k", 65536},
        {"10M", 10ULL << 20},
        {"10m", 10ULL << 20},
        {"2G", 2ULL << 30},
        {"4g", 4ULL << 30},
        {"1T", 1ULL << 40},
        {"3t", 3ULL << 40},
        {"0012K", 12 << 10},
        {"9223372036854775807", (uint64_t)INT64_MAX},
        {"9007199254740991K", 9007199254740991ULL << 10},
        {"8796093022207M", 8796093022207ULL << 20},
        {"8589934591G", 8589934591ULL << 30},
        {"8388607T", 8388607ULL << 40},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint64_t v = 1;
        if (core_parse_size(ok[i].s, &v) != 0 || v != ok[i].v)
            fail_msg("'%s' should parse to %llu (got %llu)", ok[i].s, (unsigned long long)ok[i].v,
                     (unsigned long long)v);
    }
    static const char *const bad[] = {
        "", "K", "k", "M", "-1", "-1K", "+1K", " 1K", "1K ", "1 K", "1.5G", "1KB", "1KK", "1E",
        "1P", "1b", "G1", "0x10", "abc",
        /* overflow: the product does not fit in 63 bits */
        "9223372036854775808", "9007199254740992K", "8796093022208M", "8589934592G", "8388608T",
        "99999999999999999999T"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v = 777;
        if (core_parse_size(bad[i], &v) != -EINVAL)
            fail_msg("'%s' should be -EINVAL", bad[i]);
        assert_int_equal(v, 777);
    }
}

static void test_hex(void **state)
{
    (void)state;
    char out[16];
    memset(out, 'X', sizeof out);
    core_hex((const uint8_t *)"\x00\x01\x7f\x80\xab\xff", 6, out);
    assert_string_equal(out, "00017f80abff");
    assert_int_equal(out[13], 'X'); /* 2n+1 bytes written, no more */

    memset(out, 'X', sizeof out);
    core_hex(NULL, 0, out);
    assert_string_equal(out, "");
    assert_int_equal(out[1], 'X');

    uint8_t all[256];
    char big[513];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    core_hex(all, 256, big);
    assert_int_equal(strlen(big), 512);
    for (int i = 0; i < 256; i++) {
        unsigned x = 0;
        char two[3] = {big[2 * i], big[2 * i + 1], 0};
        assert_int_equal(sscanf(two, "%2x", &x), 1);
        assert_int_equal(x, (unsigned)i);
        assert_true(strchr("0123456789abcdef", big[2 * i]) != NULL);
    }
}

/* ==================================================================================== */
/* memory and buffers                                                                    */
/* ==================================================================================== */

static void test_buf(void **state)
{
    (void)state;
    core_buf_t b;
    core_buf_init(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);

    core_buf_append(&b, "abc", 3);
    assert_int_equal(b.len, 3);
    assert_string_equal(b.data, "abc");
    assert_true(b.cap >= 4);

    core_buf_append(&b, "x\0y", 3); /* binary data with a NUL inside */
    assert_int_equal(b.len, 6);
    assert_memory_equal(b.data, "abcx\0y", 7); /* plus the terminating NUL */

    core_buf_append(&b, "", 0);
    assert_int_equal(b.len, 6);
    assert_int_equal(b.data[6], '\0');

    core_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    size_t cap = b.cap;
    core_buf_puts(&b, "hello");
    core_buf_printf(&b, " %d-%s", 42, "world");
    assert_string_equal(b.data, "hello 42-world");
    assert_int_equal(b.len, strlen("hello 42-world"));
    assert_int_equal(b.cap, cap); /* reset keeps the allocation */

    /* growth across many small appends keeps every byte */
    core_buf_reset(&b);
    for (int i = 0; i < 10000; i++)
        core_buf_append(&b, &"0123456789"[i % 10], 1);
    assert_int_equal(b.len, 10000);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(b.data[i], '0' + i % 10);
    assert_int_equal(b.data[10000], '\0');
    assert_true(b.cap > b.len);

    char *s = core_buf_steal(&b);
    assert_non_null(s);
    assert_int_equal(strlen(s), 10000);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    free(s);

    /* steal from an empty buffer still hands back a string to free */
    s = core_buf_steal(&b);
    assert_non_null(s);
    assert_string_equal(s, "");
    free(s);

    core_buf_reset(&b); /* on a never-allocated buffer */
    assert_int_equal(b.len, 0);
    core_buf_destroy(&b);
    core_buf_destroy(&b); /* twice is fine: destroy re-inits */
    assert_null(b.data);
}

static void test_buf_printf_long(void **state)
{
    (void)state;
    /* lengths around the 256-byte stack buffer inside core_buf_printf */
    static const size_t lens[] = {0, 1, 254, 255, 256, 257, 511, 1000, 70000};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        size_t n = lens[k];
        char *arg = xmalloc(n + 1);
        for (size_t i = 0; i < n; i++)
            arg[i] = (char)('a' + i % 26);
        arg[n] = '\0';
        core_buf_t b;
        core_buf_init(&b);
        core_buf_puts(&b, "<");
        core_buf_printf(&b, "%s|%d", arg, 7);
        core_buf_printf(&b, "%s", ">");
        assert_int_equal(b.len, n + 4);
        assert_int_equal(strlen(b.data), n + 4);
        assert_int_equal(b.data[0], '<');
        assert_memory_equal(b.data + 1, arg, n);
        assert_string_equal(b.data + 1 + n, "|7>");
        assert_true(b.cap >= b.len + 1);
        core_buf_destroy(&b);
        free(arg);
    }
}

static void test_xalloc(void **state)
{
    (void)state;
    char *s = xasprintf("%s-%d-%05.1f", "x", 42, 3.25);
    assert_string_equal(s, "x-42-003.2");
    free(s);

    char big[5000];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    s = xasprintf("[%s]", big);
    assert_int_equal(strlen(s), sizeof big + 1);
    assert_int_equal(s[0], '[');
    assert_int_equal(s[sizeof big], ']');
    xfree(&s);
    assert_null(s);
    xfree(&s);   /* already NULL */
    xfree(NULL); /* NULL-safe */

    s = xasprintf("%s", "");
    assert_string_equal(s, "");
    free(s);

    assert_null(xstrdup(NULL));
    assert_null(xstrndup(NULL, 3));
    s = xstrndup("hello", 3);
    assert_string_equal(s, "hel");
    free(s);
    s = xstrndup("hi", 10);
    assert_string_equal(s, "hi");
    free(s);
    s = xstrdup("dup");
    assert_string_equal(s, "dup");
    free(s);

    int *z = xcalloc(100, sizeof *z);
    for (int i = 0; i < 100; i++)
        assert_int_equal(z[i], 0);
    z = xrealloc(z, 1000 * sizeof *z);
    assert_int_equal(z[99], 0);
    free(z);
    void *p = xmalloc(0); /* a real, freeable pointer */
    assert_non_null(p);
    free(p);
}

/* ==================================================================================== */
/* logging                                                                               */
/* ==================================================================================== */

static void test_log_level(void **state)
{
    (void)state;
    enum core_log_level l = CORE_LOG_ERROR;
    assert_int_equal(core_log_parse_level("debug", &l), 0);
    assert_int_equal(l, CORE_LOG_DEBUG);
    assert_int_equal(core_log_parse_level("info", &l), 0);
    assert_int_equal(l, CORE_LOG_INFO);
    assert_int_equal(core_log_parse_level("warn", &l), 0);
    assert_int_equal(l, CORE_LOG_WARN);
    assert_int_equal(core_log_parse_level("error", &l), 0);
    assert_int_equal(l, CORE_LOG_ERROR);
    assert_int_equal(core_log_parse_level("INFO", &l), -EINVAL);
    assert_int_equal(core_log_parse_level("", &l), -EINVAL);
    assert_int_equal(core_log_parse_level("warning", &l), -EINVAL);
    assert_int_equal(l, CORE_LOG_ERROR);
}

static const char *quote(const char *s, char *out, size_t cap)
{
    return core_log_quote(s, out, cap);
}

static void test_log_quote(void **state)
{
    (void)state;
    char out[128];
    assert_string_equal(quote("plain", out, sizeof out), "plain");
    assert_ptr_equal(quote("plain", out, sizeof out), out);
    assert_string_equal(quote("/v1/media?x=1", out, sizeof out), "\"/v1/media?x=1\"");
    assert_string_equal(quote("a\\b", out, sizeof out), "a\\b"); /* backslash alone: bare */
    assert_string_equal(quote("two words", out, sizeof out), "\"two words\"");
    assert_string_equal(quote("say \"hi\"", out, sizeof out), "\"say \\\"hi\\\"\"");
    assert_string_equal(quote("q\"", out, sizeof out), "\"q\\\"\"");
    assert_string_equal(quote("a b\\c", out, sizeof out), "\"a b\\\\c\"");
    assert_string_equal(quote("tab\there\nnl\r", out, sizeof out), "\"tab here nl \"");
    assert_string_equal(quote("\x1b[31m", out, sizeof out), "\" [31m\"");
    assert_string_equal(quote("", out, sizeof out), "\"\"");
    assert_string_equal(quote(NULL, out, sizeof out), "\"\"");
    assert_string_equal(quote("caf\xc3\xa9", out, sizeof out), "caf\xc3\xa9"); /* UTF-8 kept */

    /* cap 0 writes nothing */
    memset(out, 'Z', sizeof out);
    quote("x", out, 0);
    assert_int_equal(out[0], 'Z');
}

/* Decodes the inside of a quoted log value; false if it is not well formed. */
static bool unquote(const char *q, char *out)
{
    size_t n = strlen(q);
    if (n < 2 || q[0] != '"' || q[n - 1] != '"')
        return false;
    for (size_t i = 1; i < n - 1; i++) {
        if (q[i] == '"')
            return false;
        if (q[i] == '\\') {
            if (i + 1 >= n - 1 || (q[i + 1] != '"' && q[i + 1] != '\\'))
                return false;
            i++;
        }
        if ((unsigned char)q[i] < 0x20)
            return false;
        *out++ = q[i];
    }
    *out = '\0';
    return true;
}

static void test_log_quote_truncation(void **state)
{
    (void)state;
    static const char *const inputs[] = {
        "abcdefghijklmnop", "hello world, hello world", "\"\"\"\"\"\"\"\"\"\"", "a\"b\\c d\te=f",
        "x", "", "=", "\\\\ \\\\"};
    for (size_t k = 0; k < sizeof inputs / sizeof inputs[0]; k++) {
        const char *s = inputs[k];
        /* what the value means, with control characters as spaces */
        char meaning[64];
        size_t m = 0;
        for (const char *p = s; *p; p++)
            meaning[m++] = (unsigned char)*p < 0x20 ? ' ' : *p;
        meaning[m] = '\0';
        bool quoted = *s == '\0' || strpbrk(s, " \"=\t") != NULL;

        for (size_t cap = 1; cap <= 48; cap++) {
            char buf[64];
            memset(buf, 0xA5, sizeof buf);
            core_log_quote(s, buf, cap);
            for (size_t i = cap; i < sizeof buf; i++)
                if ((unsigned char)buf[i] != 0xA5)
                    fail_msg("input '%s' cap %zu: byte %zu written past the cap", s, cap, i);
            if (!memchr(buf, '\0', cap))
                fail_msg("input '%s' cap %zu: not NUL-terminated within cap", s, cap);
            size_t len = strlen(buf);
            assert_true(len < cap);
            if (!quoted) {
                assert_int_equal(strncmp(buf, s, len), 0);
                assert_int_equal(len, strlen(s) < cap ? strlen(s) : cap - 1);
                continue;
            }
            /* Quoted values are either whole-quoted (a prefix of the meaning, never half an
             * escape) or, when even "" does not fit, empty. */
            if (cap < 3) {
                if (len != 0)
                    fail_msg("input '%s' cap %zu: '%s' should be empty (\"\" does not fit)", s,
                             cap, buf);
                continue;
            }
            char inner[64];
            if (!unquote(buf, inner))
                fail_msg("input '%s' cap %zu: '%s' is not a well-formed quoted value", s, cap,
                         buf);
            assert_int_equal(strncmp(inner, meaning, strlen(inner)), 0);
            if (cap >= sizeof buf - 1)
                assert_string_equal(inner, meaning);
        }
    }
}

/* ==================================================================================== */
/* files                                                                                 */
/* ==================================================================================== */

static void test_mkdirs(void **state)
{
    (void)state;
    char *dir = fresh_dir("mkdirs");
    char *nested = xasprintf("%s/a/b/c/d", dir);
    assert_int_equal(core_mkdirs(nested), 0);
    struct stat st;
    assert_int_equal(stat(nested, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0077, 0); /* created 0700 */
    assert_int_equal(core_mkdirs(nested), 0); /* existing */
    assert_int_equal(core_mkdirs(dir), 0);

    char *slash = xasprintf("%s/e/f/", dir); /* trailing slash */
    assert_int_equal(core_mkdirs(slash), 0);
    char *ef = xasprintf("%s/e/f", dir);
    assert_int_equal(stat(ef, &st), 0);
    assert_true(S_ISDIR(st.st_mode));

    char *file = xasprintf("%s/file", dir);
    write_file(file, "x", 1);
    assert_int_equal(core_mkdirs(file), -ENOTDIR);
    char *under = xasprintf("%s/file/sub/dir", dir);
    assert_int_equal(core_mkdirs(under), -ENOTDIR);

    /* PATH_MAX or more: refused before touching the disk */
    size_t n = PATH_MAX + 10;
    char *longp = xmalloc(n + 1);
    memset(longp, 'a', n);
    for (size_t i = 0; i < n; i += 100)
        longp[i] = '/';
    longp[n] = '\0';
    assert_int_equal(core_mkdirs(longp), -ENAMETOOLONG);
    longp[PATH_MAX] = '\0'; /* exactly PATH_MAX chars: no room for the NUL */
    assert_int_equal(core_mkdirs(longp), -ENAMETOOLONG);

    assert_int_equal(core_mkdirs(""), -ENOENT);
    assert_int_equal(core_mkdirs("/"), 0);

    free(longp);
    free(under);
    free(file);
    free(ef);
    free(slash);
    free(nested);
    free(dir);
}

static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

static void test_write_file_atomic(void **state)
{
    (void)state;
    char *dir = fresh_dir("write_atomic");
    char *path = xasprintf("%s/sub/file", dir);
    core_chunk_t two[2] = {{"head:", 5}, {"body", 4}};
    /* the folder must exist */
    assert_int_equal(core_write_file_atomic(path, two, 2, 0600), -ENOENT);
    char *subdir = xasprintf("%s/sub", dir);
    assert_int_equal(core_mkdirs(subdir), 0);
    free(subdir);
    assert_int_equal(core_write_file_atomic(path, two, 2, 0600), 0);
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(core_read_file(path, 100, &data, &len), 0);
    assert_int_equal(len, 9);
    assert_memory_equal(data, "head:body", 9);
    xfree(&data);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* replacing: the new content whole, mode as asked, no temp file beside it */
    core_chunk_t one = {"x", 1};
    assert_int_equal(core_write_file_atomic(path, &one, 1, 0644), 0);
    assert_int_equal(core_read_file(path, 100, &data, &len), 0);
    assert_int_equal(len, 1);
    xfree(&data);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    char *sub = xasprintf("%s/sub", dir);
    assert_int_equal(count_entries(sub), 1);

    /* empty content */
    assert_int_equal(core_write_file_atomic(path, NULL, 0, 0600), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 0);

    /* a folder in the way: an error, the folder untouched, no temp file left */
    assert_int_equal(core_write_file_atomic(sub, &one, 1, 0600), -EISDIR);
    assert_int_equal(count_entries(dir), 1);
    assert_int_equal(count_entries(sub), 1);
    /* a parent that is a file: an error */
    char *under_file = xasprintf("%s/file/x", sub);
    assert_true(core_write_file_atomic(under_file, &one, 1, 0600) < 0);
    assert_int_equal(count_entries(sub), 1);
    free(under_file);
    free(sub);
    free(path);
    free(dir);
}

static void test_read_file(void **state)
{
    (void)state;
    char *dir = fresh_dir("read_file");
    assert_int_equal(core_mkdirs(dir), 0);
    char *data = (char *)0x1; /* must stay untouched on failure */
    size_t len = 99;

    char *missing = xasprintf("%s/missing", dir);
    assert_int_equal(core_read_file(missing, 100, &data, &len), -ENOENT);
    assert_ptr_equal(data, (char *)0x1);

    char *empty = xasprintf("%s/empty", dir);
    write_file(empty, NULL, 0);
    assert_int_equal(core_read_file(empty, 0, &data, &len), 0);
    assert_non_null(data);
    assert_int_equal(len, 0);
    assert_string_equal(data, "");
    free(data);

    char payload[1000];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (char)(i * 7);
    payload[10] = '\0'; /* binary content is returned as is */
    char *full = xasprintf("%s/full", dir);
    write_file(full, payload, sizeof payload);

    data = (char *)0x1;
    assert_int_equal(core_read_file(full, sizeof payload - 1, &data, &len), -EFBIG);
    assert_ptr_equal(data, (char *)0x1);
    assert_int_equal(core_read_file(full, 0, &data, &len), -EFBIG);

    assert_int_equal(core_read_file(full, sizeof payload, &data, &len), 0);
    assert_int_equal(len, sizeof payload);
    assert_memory_equal(data, payload, sizeof payload);
    assert_int_equal(data[sizeof payload], '\0');
    free(data);

    assert_int_equal(core_read_file(full, SIZE_MAX, &data, NULL), 0); /* len is optional */
    assert_memory_equal(data, payload, sizeof payload);
    free(data);

    free(full);
    free(empty);
    free(missing);
    free(dir);
}

static void test_fsync_dir(void **state)
{
    (void)state;
    char *dir = fresh_dir("fsync");
    assert_int_equal(core_mkdirs(dir), 0);
    assert_int_equal(core_fsync_dir(dir), 0);
    char *missing = xasprintf("%s/nope", dir);
    assert_int_equal(core_fsync_dir(missing), -ENOENT);
    free(missing);
    free(dir);
}

/* ==================================================================================== */
/* thread pool                                                                           */
/* ==================================================================================== */

#define POOL_TASKS 1000
static atomic_int pool_runs[POOL_TASKS];
static atomic_int pool_on_main;
static atomic_int pool_arrived;
static atomic_int pool_met;
static pthread_t pool_main;

static void wait_for_four(void)
{
    /* All four threads must be inside a task at once: proves the pool has 4 live threads. */
    atomic_fetch_add(&pool_arrived, 1);
    int64_t deadline = core_mono_ns() + 10LL * 1000000000;
    while (atomic_load(&pool_arrived) < 4 && core_mono_ns() < deadline)
        usleep(100);
    if (atomic_load(&pool_arrived) >= 4)
        atomic_fetch_add(&pool_met, 1);
}

static void pool_task(void *arg)
{
    intptr_t i = (intptr_t)arg;
    if (pthread_equal(pthread_self(), pool_main))
        atomic_fetch_add(&pool_on_main, 1);
    if (i < 4)
        wait_for_four();
    atomic_fetch_add(&pool_runs[i], 1);
}

static void test_pool_runs_each_once(void **state)
{
    (void)state;
    pool_main = pthread_self();
    atomic_store(&pool_on_main, 0);
    atomic_store(&pool_arrived, 0);
    atomic_store(&pool_met, 0);
    for (int i = 0; i < POOL_TASKS; i++)
        atomic_store(&pool_runs[i], 0);

    core_pool_t *pool = core_pool_new(4, "test");
    assert_non_null(pool);
    assert_int_equal(core_pool_size(pool), 4);
    for (intptr_t i = 0; i < POOL_TASKS; i++)
        assert_int_equal(core_pool_submit(pool, pool_task, (void *)i), 0);
    core_pool_free(&pool); /* drains the queue, then joins */
    assert_null(pool);

    for (int i = 0; i < POOL_TASKS; i++)
        if (atomic_load(&pool_runs[i]) != 1)
            fail_msg("task %d ran %d times", i, atomic_load(&pool_runs[i]));
    assert_int_equal(atomic_load(&pool_on_main), 0);
    assert_int_equal(atomic_load(&pool_met), 4);

    core_pool_free(&pool); /* NULL-safe */
    core_pool_free(NULL);
}

static atomic_int slow_done;
static void slow_task(void *arg)
{
    (void)arg;
    usleep(2000);
    atomic_fetch_add(&slow_done, 1);
}

static void test_pool_free_drains(void **state)
{
    (void)state;
    /* One thread, 50 slow tasks: free() is called while most are still queued. */
    atomic_store(&slow_done, 0);
    core_pool_t *pool = core_pool_new(0, NULL); /* < 1 thread means 1 */
    assert_non_null(pool);
    assert_int_equal(core_pool_size(pool), 1);
    for (int i = 0; i < 50; i++)
        assert_int_equal(core_pool_submit(pool, slow_task, NULL), 0);
    assert_true(atomic_load(&slow_done) < 50);
    core_pool_free(&pool);
    assert_int_equal(atomic_load(&slow_done), 50);
}

typedef struct {
    core_pool_t *pool;
    int accepted;
    int last_rc;
} resubmit_t;

static atomic_int noop_runs;
static void noop_task(void *arg)
{
    (void)arg;
    atomic_fetch_add(&noop_runs, 1);
}

/* Keeps submitting until the pool says it is stopping (or 10 s pass). */
static void resubmit_task(void *arg)
{
    resubmit_t *r = arg;
    int64_t deadline = core_mono_ns() + 10LL * 1000000000;
    while (core_mono_ns() < deadline) {
        r->last_rc = core_pool_submit(r->pool, noop_task, NULL);
        if (r->last_rc != 0)
            return;
        r->accepted++;
        usleep(500);
    }
}

static void test_pool_submit_while_stopping(void **state)
{
    (void)state;
    atomic_store(&noop_runs, 0);
    resubmit_t r = {0};
    r.pool = core_pool_new(2, "stop");
    assert_non_null(r.pool);
    assert_int_equal(core_pool_submit(r.pool, resubmit_task, &r), 0);
    usleep(5000);
    core_pool_t *p = r.pool;
    core_pool_free(&p); /* r.pool stays valid inside the task until free returns */
    assert_int_equal(r.last_rc, -ESHUTDOWN);
    /* everything accepted before the refusal still ran */
    assert_int_equal(atomic_load(&noop_runs), r.accepted);
}

static void test_ncpu(void **state)
{
    (void)state;
    assert_true(core_ncpu() >= 1);
}

/* ==================================================================================== */
/* time                                                                                  */
/* ==================================================================================== */

static void test_iso8601(void **state)
{
    (void)state;
    static const struct {
        int64_t ms;
        const char *want;
    } cases[] = {
        {0, "1970-01-01T00:00:00.000Z"},
        {1, "1970-01-01T00:00:00.001Z"},
        {999, "1970-01-01T00:00:00.999Z"},
        {1700000000123LL, "2023-11-14T22:13:20.123Z"},
        {951782400000LL, "2000-02-29T00:00:00.000Z"},
        {4102444799999LL, "2099-12-31T23:59:59.999Z"},
        {253402300799999LL, "9999-12-31T23:59:59.999Z"},
        /* before the epoch: floor, not truncation toward zero */
        {-1, "1969-12-31T23:59:59.999Z"},
        {-1000, "1969-12-31T23:59:59.000Z"},
        {-1001, "1969-12-31T23:59:58.999Z"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[32];
        memset(out, 'X', sizeof out);
        core_iso8601(cases[i].ms, out);
        if (strcmp(out, cases[i].want) != 0)
            fail_msg("%lld ms: got '%s', want '%s'", (long long)cases[i].ms, out, cases[i].want);
    }
    /* extreme inputs never overflow the 32-byte buffer */
    static const int64_t extreme[] = {INT64_MAX, INT64_MIN, INT64_MAX / 2, -INT64_MAX / 2};
    for (size_t i = 0; i < sizeof extreme / sizeof extreme[0]; i++) {
        char out[40];
        memset(out, 'X', sizeof out);
        core_iso8601(extreme[i], out);
        assert_non_null(memchr(out, '\0', 32));
        for (size_t k = 32; k < sizeof out; k++)
            assert_int_equal(out[k], 'X');
    }

    /* now: format round-trips through strptime and agrees with core_now_ms */
    int64_t now = core_now_ms();
    char out[32];
    core_iso8601(now, out);
    assert_int_equal(strlen(out), 24);
    struct tm tm = {0};
    char *end = strptime(out, "%Y-%m-%dT%H:%M:%S", &tm);
    assert_non_null(end);
    assert_int_equal(end[0], '.');
    assert_int_equal(atoi(end + 1), (int)(now % 1000));
    assert_int_equal((int64_t)timegm(&tm), now / 1000);
    assert_true(core_mono_ns() > 0);
}

/* ==================================================================================== */
/* errors                                                                                */
/* ==================================================================================== */

static void test_strerror(void **state)
{
    (void)state;
    const int codes[] = {CORE_EBADMEDIA, CORE_EDECODE, CORE_ESQL, CORE_EUTF8, CORE_ELIMIT};
    const char *seen[5];
    for (size_t i = 0; i < 5; i++) {
        const char *m = core_strerror(codes[i]);
        assert_non_null(m);
        assert_true(strlen(m) > 5);
        assert_string_not_equal(m, "unknown error");
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(m, seen[j]);
        seen[i] = m;
    }
    assert_non_null(strstr(core_strerror(CORE_EUTF8), "UTF-8"));
    assert_non_null(strstr(core_strerror(CORE_ESQL), "database"));
    assert_string_equal(core_strerror(0), "success");
    assert_string_equal(core_strerror(-ENOENT), strerror(ENOENT));
    assert_string_equal(core_strerror(-EINVAL), strerror(EINVAL));
    assert_string_equal(core_strerror(-EFBIG), strerror(EFBIG));
    assert_string_equal(core_strerror(-ESHUTDOWN), strerror(ESHUTDOWN));
    assert_string_equal(core_strerror(ENOENT), "unknown error"); /* positive is not ours */
    assert_string_equal(core_strerror(-10000), "unknown error");
    assert_string_equal(core_strerror(-10006), "unknown error");
    assert_string_equal(core_strerror(INT_MIN), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_table),
        cmocka_unit_test(test_utf8_reference_self_check),
        cmocka_unit_test(test_utf8_fuzz),
        cmocka_unit_test(test_parse_u64),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_buf),
        cmocka_unit_test(test_buf_printf_long),
        cmocka_unit_test(test_xalloc),
        cmocka_unit_test(test_log_level),
        cmocka_unit_test(test_log_quote),
        cmocka_unit_test(test_log_quote_truncation),
        cmocka_unit_test(test_mkdirs),
        cmocka_unit_test(test_read_file),
        cmocka_unit_test(test_fsync_dir),
        cmocka_unit_test(test_pool_runs_each_once),
        cmocka_unit_test(test_pool_free_drains),
        cmocka_unit_test(test_pool_submit_while_stopping),
        cmocka_unit_test(test_ncpu),
        cmocka_unit_test(test_iso8601),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_write_file_atomic),
    };
    return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
