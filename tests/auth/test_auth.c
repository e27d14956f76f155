/* test_auth: unit tests of the auth module — argon2id password hashes, device tokens and the
 * failed-login limiter.
 *
 * Password hashing costs ~0.1 s and 64 MiB per call on purpose, so those tests hash only a
 * handful of times. The limiter tests that need a window to pass sleep 1.1 s with window_s = 1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "core/core.h"

static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int setup(void **state)
{
    (void)state;
    return auth_init() == 0 ? 0 : -1;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* ==================================================================================== */
/* passwords                                                                             */
/* ==================================================================================== */

static void test_password_hash_verify(void **state)
{
    (void)state;
    char h1[256], h2[256];
    assert_int_equal(auth_password_hash("correct horse battery staple", h1, sizeof h1), 0);
    assert_int_equal(strncmp(h1, "$argon2id$", 10), 0);
    assert_true(strlen(h1) < crypto_pwhash_STRBYTES);
    assert_null(strstr(h1, "correct")); /* the password itself is not in the hash */

    assert_true(auth_password_verify(h1, "correct horse battery staple"));
    assert_false(auth_password_verify(h1, "correct horse battery stapl"));
    assert_false(auth_password_verify(h1, "correct horse battery staple "));
    assert_false(auth_password_verify(h1, "Correct horse battery staple"));
    assert_false(auth_password_verify(h1, ""));

    /* a fresh salt each time: same password, different strings, both verify */
    assert_int_equal(auth_password_hash("correct horse battery staple", h2, sizeof h2), 0);
    assert_string_not_equal(h1, h2);
    assert_true(auth_password_verify(h2, "correct horse battery staple"));

    /* a damaged hash never verifies */
    h2[strlen(h2) - 2] ^= 1;
    assert_false(auth_password_verify(h2, "correct horse battery staple"));
}

static void test_password_empty_and_odd(void **state)
{
    (void)state;
    char h[crypto_pwhash_STRBYTES];
    assert_int_equal(auth_password_hash("", h, sizeof h), 0);
    assert_int_equal(strncmp(h, "$argon2id$", 10), 0);
    assert_true(auth_password_verify(h, ""));
    assert_false(auth_password_verify(h, " "));
    assert_false(auth_password_verify(h, "x"));

    /* non-ASCII and long passwords */
    char longpw[1025];
    memset(longpw, 'p', sizeof longpw - 1);
    longpw[sizeof longpw - 1] = '\0';
    assert_int_equal(auth_password_hash(longpw, h, sizeof h), 0);
    assert_true(auth_password_verify(h, longpw));
    longpw[1000] = 'q';
    assert_false(auth_password_verify(h, longpw));

    /* too small an output buffer is refused, not overflowed */
    char small[32];
    memset(small, 'Z', sizeof small);
    assert_true(auth_password_hash("pw", small, sizeof small) < 0);
    assert_int_equal(small[0], 'Z');
}

static void test_password_verify_garbage(void **state)
{
    (void)state;
    static const char *const bad[] = {"", "not a hash", "$argon2id$", "$argon2id$v=19$m=1,t=1,p=1$",
                                      "$argon2i$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$aGFzaA",
                                      "$2b$12$abcdefghijklmnopqrstuv"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_false(auth_password_verify(bad[i], ""));
        assert_false(auth_password_verify(bad[i], "password"));
    }
}

static void test_password_dummy_verify(void **state)
{
    (void)state;
    char h[crypto_pwhash_STRBYTES];
    assert_int_equal(auth_password_hash("real", h, sizeof h), 0);

    auth_password_dummy_verify("anything"); /* first call also builds the dummy hash */
    auth_password_dummy_verify("");

    int64_t t0 = core_mono_ns();
    assert_true(auth_password_verify(h, "real"));
    int64_t real_ns = core_mono_ns() - t0;
    t0 = core_mono_ns();
    auth_password_dummy_verify("persona-dummy-password-not");
    int64_t dummy_ns = core_mono_ns() - t0;
    /* It must burn a real verify's time (same cost parameters); a tenth is a loose bound that
     * still catches a dummy that returns at once. */
    if (dummy_ns * 10 < real_ns)
        fail_msg("dummy verify took %lld ns, a real one %lld ns", (long long)dummy_ns,
                 (long long)real_ns);
}

/* ==================================================================================== */
/* tokens                                                                                */
/* ==================================================================================== */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_token_new_shape(void **state)
{
    (void)state;
    enum { N = 1000 };
    static char tokens[N][AUTH_TOKEN_LEN + 1];
    char *sorted[N];
    int seen[256] = {0};
    for (int i = 0; i < N; i++) {
        char *t = tokens[i];
        uint8_t hash[32], again[32], direct[32];
        memset(t, 'Z', AUTH_TOKEN_LEN + 1);
        auth_token_new(t, hash);
        assert_int_equal(strlen(t), AUTH_TOKEN_LEN);
        assert_int_equal(strncmp(t, AUTH_TOKEN_PREFIX, 4), 0);
        for (size_t k = 4; k < AUTH_TOKEN_LEN; k++) {
            if (!strchr(B64URL, t[k]))
                fail_msg("token '%s': '%c' is not base64url", t, t[k]);
            seen[(unsigned char)t[k]]++;
        }
        assert_int_equal(auth_token_hash(t, strlen(t), again), 0);
        assert_memory_equal(hash, again, 32);
        crypto_hash_sha256(direct, (const unsigned char *)t, AUTH_TOKEN_LEN);
        assert_memory_equal(hash, direct, 32);
        sorted[i] = t;
    }
    qsort(sorted, N, sizeof sorted[0], cmp_str);
    for (int i = 1; i < N; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0)
            fail_msg("duplicate token %s", sorted[i]);
    /* 43 000 random characters: every one of the 64 symbols (incl. '-' and '_') shows up */
    for (const char *c = B64URL; *c; c++)
        if (!seen[(unsigned char)*c])
            fail_msg("'%c' never appeared in 1000 tokens", *c);
}

static void test_token_hash_rejects(void **state)
{
    (void)state;
    char t[AUTH_TOKEN_LEN + 2];
    uint8_t hash[32], h2[32];
    auth_token_new(t, hash);

    uint8_t untouched[32];
    memset(untouched, 0xEE, sizeof untouched);

    memcpy(h2, untouched, 32);
    assert_int_equal(auth_token_hash("", 0, h2), -EINVAL);
    assert_memory_equal(h2, untouched, 32);
    assert_int_equal(auth_token_hash("pst_", 4, h2), -EINVAL);
    assert_int_equal(auth_token_hash(t, AUTH_TOKEN_LEN - 1, h2), -EINVAL);
    assert_memory_equal(h2, untouched, 32);

    char longer[AUTH_TOKEN_LEN + 2];
    memcpy(longer, t, AUTH_TOKEN_LEN);
    longer[AUTH_TOKEN_LEN] = 'A';
    longer[AUTH_TOKEN_LEN + 1] = '\0';
    assert_int_equal(auth_token_hash(longer, AUTH_TOKEN_LEN + 1, h2), -EINVAL);

    /* wrong prefix, same length */
    static const char *const prefixes[] = {"pat_", "PST_", "pst-", "xst_", "pst ", "\0st_"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        char w[AUTH_TOKEN_LEN + 1];
        memcpy(w, t, sizeof w);
        memcpy(w, prefixes[i], 4);
        memcpy(h2, untouched, 32);
        assert_int_equal(auth_token_hash(w, AUTH_TOKEN_LEN, h2), -EINVAL);
        assert_memory_equal(h2, untouched, 32);
    }

    /* a bad character at every position after the prefix */
    static const char badc[] = {'+', '/', '=', ' ', '.', '~', '\0', '\n', '\x80', '\xff'};
    for (size_t pos = 4; pos < AUTH_TOKEN_LEN; pos++) {
        for (size_t k = 0; k < sizeof badc; k++) {
            char w[AUTH_TOKEN_LEN + 1];
            memcpy(w, t, sizeof w);
            w[pos] = badc[k];
            if (auth_token_hash(w, AUTH_TOKEN_LEN, h2) != -EINVAL)
                fail_msg("byte 0x%02x at %zu accepted", (unsigned char)badc[k], pos);
        }
    }

    /* a well-shaped token we never issued still hashes (the lookup then fails) */
    char other[AUTH_TOKEN_LEN + 1];
    memcpy(other, t, sizeof other);
    other[10] = other[10] == 'A' ? 'B' : 'A';
    assert_int_equal(auth_token_hash(other, AUTH_TOKEN_LEN, h2), 0);
    assert_memory_not_equal(h2, hash, 32);
    assert_int_equal(auth_token_hash(t, AUTH_TOKEN_LEN, h2), 0);
    assert_memory_equal(h2, hash, 32);
}

/* ==================================================================================== */
/* limiter                                                                               */
/* ==================================================================================== */

static void test_limiter_basic(void **state)
{
    (void)state;
    auth_limiter_t *l = auth_limiter_new(3, 60);
    assert_non_null(l);
    assert_int_equal(auth_limiter_check(l, "u:alice"), 0);
    auth_limiter_fail(l, "u:alice");
    auth_limiter_fail(l, "u:alice");
    assert_int_equal(auth_limiter_check(l, "u:alice"), 0); /* 2 of 3 */
    auth_limiter_fail(l, "u:alice");
    int wait = auth_limiter_check(l, "u:alice");
    assert_true(wait > 0);
    assert_true(wait <= 60);
    assert_true(wait >= 58); /* the window started moments ago */
    auth_limiter_fail(l, "u:alice"); /* more failures keep it limited */
    assert_true(auth_limiter_check(l, "u:alice") > 0);
    assert_true(auth_limiter_check(l, "u:alice") <= 60);

    /* other keys are independent */
    assert_int_equal(auth_limiter_check(l, "u:bob"), 0);
    assert_int_equal(auth_limiter_check(l, "u:alic"), 0);
    assert_int_equal(auth_limiter_check(l, "u:alice2"), 0);
    auth_limiter_fail(l, "u:bob");
    auth_limiter_fail(l, "u:bob");
    auth_limiter_fail(l, "u:bob");
    assert_true(auth_limiter_check(l, "u:bob") > 0);

    /* reset forgets one key only */
    auth_limiter_reset(l, "u:alice");
    assert_int_equal(auth_limiter_check(l, "u:alice"), 0);
    assert_true(auth_limiter_check(l, "u:bob") > 0);
    auth_limiter_fail(l, "u:alice"); /* counting starts over */
    auth_limiter_fail(l, "u:alice");
    assert_int_equal(auth_limiter_check(l, "u:alice"), 0);
    auth_limiter_reset(l, "u:nobody"); /* unknown key: no effect */
    assert_true(auth_limiter_check(l, "u:bob") > 0);

    auth_limiter_free(&l);
    assert_null(l);
    auth_limiter_free(&l);
    auth_limiter_free(NULL);
}

static void test_limiter_max_one(void **state)
{
    (void)state;
    auth_limiter_t *l = auth_limiter_new(1, 300);
    assert_int_equal(auth_limiter_check(l, "a:10.0.0.1"), 0);
    auth_limiter_fail(l, "a:10.0.0.1");
    int wait = auth_limiter_check(l, "a:10.0.0.1");
    assert_true(wait > 0 && wait <= 300);
    auth_limiter_free(&l);
}

static void test_limiter_window_expiry(void **state)
{
    (void)state;
    auth_limiter_t *l = auth_limiter_new(2, 1);
    auth_limiter_fail(l, "k");
    auth_limiter_fail(l, "k");
    assert_int_equal(auth_limiter_check(l, "k"), 1);

    /* failures spread over two windows never add up */
    auth_limiter_fail(l, "spread");
    sleep_ms(1100);
    assert_int_equal(auth_limiter_check(l, "k"), 0); /* window over */
    auth_limiter_fail(l, "spread");
    assert_int_equal(auth_limiter_check(l, "spread"), 0);

    /* a new window counts from zero */
    auth_limiter_fail(l, "k");
    assert_int_equal(auth_limiter_check(l, "k"), 0);
    auth_limiter_fail(l, "k");
    assert_int_equal(auth_limiter_check(l, "k"), 1);
    auth_limiter_free(&l);
}

static void test_limiter_long_keys(void **state)
{
    (void)state;
    auth_limiter_t *l = auth_limiter_new(2, 60);
    char key[300];
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    auth_limiter_fail(l, key);
    auth_limiter_fail(l, key);
    assert_true(auth_limiter_check(l, key) > 0);
    assert_int_equal(auth_limiter_check(l, "k"), 0);
    auth_limiter_reset(l, key);
    assert_int_equal(auth_limiter_check(l, key), 0);
    auth_limiter_free(&l);
}

static void test_limiter_flood(void **state)
{
    (void)state;
    /* The table is fixed size: 100k distinct keys reuse slots instead of growing, and a key
     * seen after the flood is still counted and limited. */
    auth_limiter_t *l = auth_limiter_new(3, 60);
    char key[32];
    for (int i = 0; i < 100000; i++) {
        snprintf(key, sizeof key, "a:198.51.%d.%d", i / 256, i % 256);
        auth_limiter_fail(l, key);
        if (i % 3 == 0)
            auth_limiter_fail(l, key);
        if (i % 1000 == 0)
            assert_int_equal(auth_limiter_check(l, key), 0);
    }
    /* the most recent flood key is still tracked (2 failures so far) */
    snprintf(key, sizeof key, "a:198.51.%d.%d", 99999 / 256, 99999 % 256);
    auth_limiter_fail(l, key);
    assert_true(auth_limiter_check(l, key) > 0);

    assert_int_equal(auth_limiter_check(l, "u:fresh"), 0);
    auth_limiter_fail(l, "u:fresh");
    auth_limiter_fail(l, "u:fresh");
    assert_int_equal(auth_limiter_check(l, "u:fresh"), 0);
    auth_limiter_fail(l, "u:fresh");
    int wait = auth_limiter_check(l, "u:fresh");
    assert_true(wait > 0 && wait <= 60);

    auth_limiter_free(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_password_hash_verify),
        cmocka_unit_test(test_password_empty_and_odd),
        cmocka_unit_test(test_password_verify_garbage),
        cmocka_unit_test(test_password_dummy_verify),
        cmocka_unit_test(test_token_new_shape),
        cmocka_unit_test(test_token_hash_rejects),
        cmocka_unit_test(test_limiter_basic),
        cmocka_unit_test(test_limiter_max_one),
        cmocka_unit_test(test_limiter_window_expiry),
        cmocka_unit_test(test_limiter_long_keys),
        cmocka_unit_test(test_limiter_flood),
    };
    return cmocka_run_group_tests_name("auth", tests, setup, NULL);
}
