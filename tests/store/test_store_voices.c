/* test_store_voices: unit tests of store/voices.c — an account without settings reads -ENOENT,
 * a put is read back and a second put replaces it, each account has its own row, an unknown
 * account or an empty voice is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "store/store.h"

static void test_voices(void **state)
{
    (void)state;
    char dir[512];
    const char *base = getenv("PERSONA_TEST_TMP");
    snprintf(dir, sizeof dir, "%s/voices-%d", base && *base ? base : "/tmp/persona-test-voices",
             (int)getpid());
    assert_int_equal(core_mkdirs(dir), 0);
    store_t *st = NULL;
    int64_t alice = 0, bob = 0;
    assert_int_equal(store_open(dir, &st), 0);
    assert_int_equal(store_account_create(st, "alice", "$argon2id$fake", false, &alice), 0);
    assert_int_equal(store_account_create(st, "bob", "$argon2id$fake", false, &bob), 0);

    store_voice_t v;
    assert_int_equal(store_voice_get(st, alice, &v), -ENOENT);
    store_voice_t a = {.voice = "de", .rate = 300, .pitch = 70, .volume = 150};
    assert_int_equal(store_voice_put(st, alice, &a), 0);
    assert_int_equal(store_voice_get(st, alice, &v), 0);
    assert_string_equal(v.voice, "de");
    assert_int_equal(v.rate, 300);
    assert_int_equal(v.pitch, 70);
    assert_int_equal(v.volume, 150);
    assert_true(v.updated_at > 0);
    a = (store_voice_t){.voice = "en-us+f3", .rate = 80, .pitch = 0, .volume = 0};
    assert_int_equal(store_voice_put(st, alice, &a), 0);
    assert_int_equal(store_voice_get(st, alice, &v), 0);
    assert_string_equal(v.voice, "en-us+f3");
    assert_int_equal(v.rate, 80);
    assert_int_equal(v.volume, 0);
    /* bob has none of it */
    assert_int_equal(store_voice_get(st, bob, &v), -ENOENT);
    store_voice_t b = {.voice = "fr-fr", .rate = 200, .pitch = 50, .volume = 100};
    assert_int_equal(store_voice_put(st, bob, &b), 0);
    assert_int_equal(store_voice_get(st, alice, &v), 0);
    assert_string_equal(v.voice, "en-us+f3");
    /* refused */
    assert_int_equal(store_voice_put(st, 999999, &b), -ENOENT);
    store_voice_t empty = {.voice = "", .rate = 175, .pitch = 50, .volume = 100};
    assert_int_equal(store_voice_put(st, alice, &empty), -EINVAL);
    store_free(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_voices)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
