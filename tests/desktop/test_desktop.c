/* test_desktop: unit tests of the desktop module's pure parts — event JSON parsing (good,
 * bad and hostile frames), the state file (round trip, damaged files, atomic saves that leave
 * no temporary file and keep the old file on failure, advancing past finished answers),
 * rebuilding an answer from deltas (offsets in characters, overlap after a rerun, gaps), the
 * reconnect backoff's bounds, and server URL parsing. Files go under $PERSONA_TEST_TMP. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "desktop/internal.h"

/* ---- events ----------------------------------------------------------------------- */
static int parse(const char *s, desk__event_t *ev) { return desk__event_parse(s, strlen(s), ev); }

static void test_event_parse(void **state) {
    (void)state;
    desk__event_t ev;
    assert_int_equal(parse("{\"seq\":7,\"type\":\"answer.delta\",\"question_id\":4,\"offset\":12,"
                           "\"text\":\"h\\u00e9llo\"}", &ev), 0);
    assert_int_equal(ev.type, DESK__EV_DELTA);
    assert_int_equal(ev.seq, 7);
    assert_string_equal(ev.qid, "4");
    assert_int_equal(ev.offset, 12);
    assert_string_equal(ev.text, "h\xC3\xA9llo");
    assert_int_equal(ev.text_len, 6);
    desk__event_clear(&ev);

    assert_int_equal(parse("{\"seq\":8,\"type\":\"answer.done\",\"question_id\":\"q-9\","
                           "\"text\":\"All of it.\",\"passages\":2}", &ev), 0);
    assert_int_equal(ev.type, DESK__EV_DONE);
    assert_string_equal(ev.qid, "q-9");
    assert_string_equal(ev.text, "All of it.");
    desk__event_clear(&ev);

    assert_int_equal(parse("{\"seq\":9,\"type\":\"answer.failed\",\"question_id\":4,"
                           "\"error\":\"boom\"}", &ev), 0);
    assert_int_equal(ev.type, DESK__EV_FAILED);
    assert_string_equal(ev.error, "boom");
    desk__event_clear(&ev);

    assert_int_equal(parse("{\"seq\":10,\"type\":\"media.updated\",\"media_id\":3}", &ev), 0);
    assert_int_equal(ev.type, DESK__EV_OTHER);
    desk__event_clear(&ev);
    assert_int_equal(parse("{\"type\":\"model.ready\",\"seq\":11,\"x\":[1,2]}", &ev), 0);
    assert_int_equal(ev.type, DESK__EV_OTHER);
    desk__event_clear(&ev);

    /* a NUL inside the text keeps its length */
    assert_int_equal(parse("{\"seq\":1,\"type\":\"answer.done\",\"question_id\":1,"
                           "\"text\":\"a\\u0000b\"}", &ev), 0);
    assert_int_equal(ev.text_len, 3);
    desk__event_clear(&ev);

    const char *bad[] = {
        "", "null", "[]", "{}", "not json", "{\"seq\":1}", "{\"type\":\"answer.done\"}",
        "{\"seq\":0,\"type\":\"x\"}", "{\"seq\":-3,\"type\":\"x\"}", "{\"seq\":\"1\",\"type\":\"x\"}",
        "{\"seq\":1.5,\"type\":\"x\"}", "{\"seq\":1,\"type\":5}",
        "{\"seq\":1,\"type\":\"answer.done\",\"text\":\"x\"}",
        "{\"seq\":1,\"type\":\"answer.done\",\"question_id\":1}",
        "{\"seq\":1,\"type\":\"answer.done\",\"question_id\":1,\"text\":3}",
        "{\"seq\":1,\"type\":\"answer.delta\",\"question_id\":1,\"text\":\"x\"}",
        "{\"seq\":1,\"type\":\"answer.delta\",\"question_id\":1,\"offset\":-1,\"text\":\"x\"}",
        "{\"seq\":1,\"type\":\"answer.done\",\"question_id\":\"../etc\",\"text\":\"x\"}",
        "{\"seq\":1,\"type\":\"answer.done\",\"question_id\":\"a/b\",\"text\":\"x\"}",
        "{\"seq\":1,\"type\":\"answer.done\",\"question_id\":\"..\",\"text\":\"x\"}",
        "{\"seq\":1,\"type\":\"answer.done\",\"question_id\":0,\"text\":\"x\"}",
        "{\"seq\":1,\"type\":\"answer.done\",\"question_id\":\"\",\"text\":\"x\"}",
        "{\"seq\":1,\"type\":\"answer.done\",\"question_id\":"
        "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"text\":\"x\"}",
        "{\"seq\":1,\"seq\":2,\"type\":\"x\"}",
        "{\"seq\":1,\"type\":\"answer.done\",\"question_id\":1,\"text\":\"\xff\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&ev, 0x5A, sizeof ev);
        assert_int_equal(parse(bad[i], &ev), -EINVAL);
        assert_null(ev.text);
    }
    /* random bytes never crash */
    uint64_t x = 88172645463325252ull;
    char buf[256];
    for (int r = 0; r < 2000; r++) {
        size_t n = (size_t)(x % sizeof buf);
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[i] = "{}\":,0123456789seqtypanswer.dl \\u"[x % 34];
        }
        if (desk__event_parse(buf, n, &ev) == 0)
            desk__event_clear(&ev);
    }
}

/* ---- state ------------------------------------------------------------------------ */
static char *tmp_path(const char *name) {
    const char *base = getenv("PERSONA_TEST_TMP");
    if (!base)
        base = "/tmp/persona-test-desktop";
    assert_int_equal(core_mkdirs(base), 0);
    return xasprintf("%s/%s", base, name);
}

static void test_state_round_trip(void **state) {
    (void)state;
    desk__state_t st, back;
    desk__state_init(&st);
    desk__state_init(&back);
    st.seq = 41;
    desk__qrec_t *r = desk__state_get(&st, "12", 42);
    r->spoken = 17;
    r->last_seq = 45;
    r = desk__state_get(&st, "13", 43);
    r->done = true;
    r->last_seq = 44;
    assert_true(desk__state_check(&st));
    char *text = desk__state_format(&st);
    assert_int_equal(desk__state_parse(text, &back), 0);
    free(text);
    assert_int_equal(back.seq, 41);
    assert_int_equal(back.n, 2);
    assert_int_equal(desk__state_find(&back, "12")->spoken, 17);
    assert_false(desk__state_find(&back, "12")->done);
    assert_true(desk__state_find(&back, "13")->done);
    assert_int_equal(desk__state_find(&back, "13")->last_seq, 44);

    char *path = tmp_path("sub/dir/state");
    assert_int_equal(desk__state_save(path, &st), 0); /* creates the folders */
    desk__state_destroy(&back);
    assert_int_equal(desk__state_load(path, &back), 0);
    assert_int_equal(back.seq, 41);
    assert_int_equal(back.n, 2);
    /* saved again and again: no temporary file is left behind */
    for (int i = 0; i < 20; i++) {
        st.seq = 41 + i % 2;
        assert_int_equal(desk__state_save(path, &st), 0);
    }
    char *dir = xstrdup(path);
    *strrchr(dir, '/') = '\0';
    DIR *d = opendir(dir);
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') {
            files++;
            assert_null(strstr(e->d_name, ".tmp-"));
        }
    closedir(d);
    assert_int_equal(files, 1);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);

    /* a failed save leaves the old file as it was */
    if (geteuid() != 0) {
        chmod(dir, 0500);
        st.seq = 99;
        assert_true(desk__state_save(path, &st) < 0);
        chmod(dir, 0700);
        desk__state_destroy(&back);
        assert_int_equal(desk__state_load(path, &back), 0);
        assert_int_equal(back.seq, 41);
    }
    char *blocked = tmp_path("afile");
    FILE *f = fopen(blocked, "w");
    fclose(f);
    char *under = xasprintf("%s/state", blocked); /* a file where the folder should be */
    assert_true(desk__state_save(under, &st) < 0);

    /* missing file: the empty state */
    char *none = tmp_path("no-such-state");
    desk__state_destroy(&back);
    assert_int_equal(desk__state_load(none, &back), 0);
    assert_int_equal(back.seq, 0);
    assert_int_equal(back.n, 0);

    free(none);
    free(under);
    free(blocked);
    free(dir);
    free(path);
    desk__state_destroy(&back);
    desk__state_destroy(&st);
}

static void test_state_damaged(void **state) {
    (void)state;
    const char *bad[] = {
        "", "# only a comment\n", "seq = x\n", "seq = -1\n", "seq = 1 2\n", "sequence = 4\n",
        "seq = 5\nanswer = 1 0 0 3\n",                       /* too few fields */
        "seq = 5\nanswer = 1 0 2 6 7\n",                     /* done not 0/1 */
        "seq = 5\nanswer = 1 0 0 6 7\nanswer = 1 0 0 8 9\n", /* twice */
        "seq = 5\nanswer = 1 0 1 2 3\n",                     /* entirely before seq */
        "seq = 5\nanswer = 1 0 0 9 7\n",                     /* last before first */
        "seq = 5\nanswer = a/b 0 0 6 7 8\n", "seq = 5\ngarbage\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        desk__state_t st;
        desk__state_init(&st);
        st.seq = 77;
        assert_int_equal(desk__state_parse(bad[i], &st), -EINVAL);
        assert_int_equal(st.seq, 77); /* untouched */
        desk__state_destroy(&st);
    }
    desk__state_t st;
    desk__state_init(&st);
    assert_int_equal(desk__state_parse("\n  # c\nseq = 5\r\n\nanswer = 7 3 0 6 8\n", &st), 0);
    assert_int_equal(st.seq, 5);
    assert_int_equal(st.n, 1);
    desk__state_destroy(&st);

    char *path = tmp_path("damaged");
    FILE *f = fopen(path, "w");
    fputs("seq = 3\n\x00garbage", f);
    fwrite("\0x", 1, 2, f);
    fclose(f);
    assert_int_equal(desk__state_load(path, &st), -EINVAL);
    free(path);
}

static void test_state_advance(void **state) {
    (void)state;
    desk__state_t st;
    desk__state_init(&st);
    /* nothing open: seq follows what was handled */
    assert_true(desk__state_advance(&st, 3));
    assert_int_equal(st.seq, 3);
    assert_false(desk__state_advance(&st, 3));
    /* answer A opens at 5, B at 6; A finishes at 7: held back to 5 (B still open) */
    desk__qrec_t *a = desk__state_get(&st, "A", 5);
    desk__state_advance(&st, 5);
    assert_int_equal(st.seq, 4);
    desk__state_get(&st, "B", 6);
    a = desk__state_find(&st, "A");
    a->done = true;
    a->last_seq = 7;
    desk__state_advance(&st, 7);
    assert_int_equal(st.seq, 5);
    assert_non_null(desk__state_find(&st, "A")); /* its done event (7) is after seq */
    assert_true(desk__state_check(&st));
    /* B finishes at 9: everything handled, records dropped */
    desk__qrec_t *b = desk__state_find(&st, "B");
    b->done = true;
    b->last_seq = 9;
    assert_true(desk__state_advance(&st, 9));
    assert_int_equal(st.seq, 9);
    assert_int_equal(st.n, 0);
    assert_true(desk__state_check(&st));
    desk__state_destroy(&st);
}

static void test_default_path(void **state) {
    (void)state;
    setenv("XDG_STATE_HOME", "/x/state", 1);
    char *p = desk__state_default_path();
    assert_string_equal(p, "/x/state/persona/desktop-state");
    free(p);
    unsetenv("XDG_STATE_HOME");
    setenv("HOME", "/home/u", 1);
    p = desk__state_default_path();
    assert_string_equal(p, "/home/u/.local/state/persona/desktop-state");
    free(p);
}

/* ---- answers ---------------------------------------------------------------------- */
static void test_answer_deltas(void **state) {
    (void)state;
    desk__answer_t a;
    desk__answer_init(&a, "1");
    assert_int_equal(desk__answer_delta(&a, 0, "Hello ", 6), 6);
    assert_int_equal(desk__answer_delta(&a, 6, "w\xC3\xB6rld", 6), 6); /* "wörld": 5 chars */
    assert_string_equal(a.text.data, "Hello w\xC3\xB6rld");
    assert_int_equal(a.chars, 11);
    /* offset in characters after non-ASCII */
    assert_int_equal(desk__answer_delta(&a, 11, ". Bye", 5), 5);
    assert_int_equal(a.chars, 16);
    /* a rerun sends the beginning again: only the new part is kept */
    assert_int_equal(desk__answer_delta(&a, 0, "Hello ", 6), 0);
    assert_int_equal(desk__answer_delta(&a, 6, "w\xC3\xB6rld. Bye now", 15), 4);
    assert_string_equal(a.text.data, "Hello w\xC3\xB6rld. Bye now");
    assert_false(a.gap);
    /* past the end: a gap, nothing appended */
    size_t len = a.text.len;
    assert_int_equal(desk__answer_delta(&a, 100, "later", 5), 0);
    assert_true(a.gap);
    assert_int_equal(a.text.len, len);
    assert_int_equal(desk__answer_delta(&a, -1, "x", 1), 0);
    desk__answer_destroy(&a);

    /* a server counting bytes is understood too */
    desk__answer_init(&a, "2");
    desk__answer_delta(&a, 0, "\xC3\xA9t\xC3\xA9 ", 6);
    assert_int_equal(desk__answer_delta(&a, 6, "ok", 2), 2);
    assert_string_equal(a.text.data, "\xC3\xA9t\xC3\xA9 ok");
    desk__answer_destroy(&a);
}

/* ---- backoff ---------------------------------------------------------------------- */
static void test_backoff(void **state) {
    (void)state;
    desk__backoff_t b;
    desk__backoff_init(&b, 12345);
    int64_t base = DESK__BACKOFF_MIN_MS;
    for (int i = 0; i < 40; i++) {
        assert_int_equal(desk__backoff_base(&b), base);
        int64_t d = desk__backoff_next(&b);
        assert_true(d >= base / 2 && d <= base);
        assert_true(d <= DESK__BACKOFF_MAX_MS);
        base = base * 2 > DESK__BACKOFF_MAX_MS ? DESK__BACKOFF_MAX_MS : base * 2;
    }
    assert_int_equal(desk__backoff_base(&b), DESK__BACKOFF_MAX_MS);
    desk__backoff_reset(&b);
    int64_t d = desk__backoff_next(&b);
    assert_true(d >= 250 && d <= 500);
    /* jitter: two clients seeded differently do not retry in step */
    desk__backoff_t c1, c2;
    desk__backoff_init(&c1, 1);
    desk__backoff_init(&c2, 2);
    int same = 0;
    for (int i = 0; i < 10; i++)
        same += desk__backoff_next(&c1) == desk__backoff_next(&c2);
    assert_true(same < 10);
}

/* ---- URLs ------------------------------------------------------------------------- */
static void test_parse_url(void **state) {
    (void)state;
    struct {
        const char *url;
        bool tls;
        const char *host;
        int port;
        const char *path;
    } ok[] = {
        {"http://127.0.0.1:8080", false, "127.0.0.1", 8080, ""},
        {"https://persona.example/", true, "persona.example", 443, ""},
        {"ws://h", false, "h", 80, ""},
        {"wss://h:9443/base//", true, "h", 9443, "/base"},
        {"http://[::1]:7000/p", false, "::1", 7000, "/p"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        bool tls;
        char *host, *path;
        int port;
        assert_int_equal(desk__parse_url(ok[i].url, &tls, &host, &port, &path), 0);
        assert_int_equal(tls, ok[i].tls);
        assert_string_equal(host, ok[i].host);
        assert_int_equal(port, ok[i].port);
        assert_string_equal(path, ok[i].path);
        free(host);
        free(path);
    }
    const char *bad[] = {"", "ftp://h", "http://", "http://:80", "http://h:0", "http://h:70000",
                         "http://h:x", "http://[::1", "http://h?x=1", "http://h/p#f", "h:80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bool tls;
        char *host, *path;
        int port;
        assert_int_equal(desk__parse_url(bad[i], &tls, &host, &port, &path), -EINVAL);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_parse),   cmocka_unit_test(test_state_round_trip),
        cmocka_unit_test(test_state_damaged), cmocka_unit_test(test_state_advance),
        cmocka_unit_test(test_default_path),  cmocka_unit_test(test_answer_deltas),
        cmocka_unit_test(test_backoff),       cmocka_unit_test(test_parse_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
