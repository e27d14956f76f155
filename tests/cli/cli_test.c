/* cli_test: unit tests of the cli module's helpers — option parsing, the config file (parse,
 * atomic save with mode 0600, round trip), kind guessing and the output formatting helpers, and
 * for `ask`/`watch`: the answer's delta bookkeeping (offsets, overlap, gaps, UTF-8), the event
 * line format, and their command lines (usage errors, help, failures before any answer). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/internal.h"

static void test_parse_opts(void **state) {
    (void)state;
    const char *title = NULL, *out = NULL;
    bool wait = false;
    const cli__opt_t opts[] = {
        {"title", 't', CLI__VALUE, &title},
        {"wait", 'w', CLI__FLAG, &wait},
        {"output", 'o', CLI__VALUE, &out},
        {0},
    };
    char *argv[] = {"a.mp4", "--title", "hello world", "b.png", "-w", "-ofile", "--", "--x"};
    char *pos[8];
    int npos = 0;
    assert_int_equal(cli__parse_opts("t", 8, argv, opts, false, pos, &npos), 0);
    assert_int_equal(npos, 3);
    assert_string_equal(pos[0], "a.mp4");
    assert_string_equal(pos[1], "b.png");
    assert_string_equal(pos[2], "--x");
    assert_string_equal(title, "hello world");
    assert_string_equal(out, "file");
    assert_true(wait);

    char *argv2[] = {"--title=x=y", "-o", "f2"};
    assert_int_equal(cli__parse_opts("t", 3, argv2, opts, false, pos, &npos), 0);
    assert_string_equal(title, "x=y");
    assert_string_equal(out, "f2");
    assert_int_equal(npos, 0);

    char *bad1[] = {"--nope"};
    assert_int_equal(cli__parse_opts("t", 1, bad1, opts, false, pos, &npos), -EINVAL);
    char *bad2[] = {"--title"};
    assert_int_equal(cli__parse_opts("t", 1, bad2, opts, false, pos, &npos), -EINVAL);
    char *bad3[] = {"--wait=1"};
    assert_int_equal(cli__parse_opts("t", 1, bad3, opts, false, pos, &npos), -EINVAL);
    char *help[] = {"x", "--help"};
    assert_int_equal(cli__parse_opts("t", 2, help, opts, false, pos, &npos), CLI__HELP);

    /* global flags stop at the command: what follows belongs to it */
    char *glob[] = {"--wait", "media", "--title", "x"};
    wait = false;
    assert_int_equal(cli__parse_opts("", 4, glob, opts, true, pos, &npos), 0);
    assert_true(wait);
    assert_int_equal(npos, 3);
    assert_string_equal(pos[0], "media");
    assert_string_equal(pos[1], "--title");

    /* "-" alone is a positional (stdout) */
    char *dash[] = {"-o", "-", "-"};
    assert_int_equal(cli__parse_opts("t", 3, dash, opts, false, pos, &npos), 0);
    assert_string_equal(out, "-");
    assert_int_equal(npos, 1);
}

static void test_parse_id(void **state) {
    (void)state;
    uint64_t id = 0;
    assert_int_equal(cli__parse_id("42", "id", &id), 0);
    assert_int_equal(id, 42);
    assert_int_equal(cli__parse_id("0", "id", &id), -EINVAL);
    assert_int_equal(cli__parse_id("-1", "id", &id), -EINVAL);
    assert_int_equal(cli__parse_id("4x", "id", &id), -EINVAL);
    assert_int_equal(cli__parse_id("", "id", &id), -EINVAL);
}

static void test_config_parse(void **state) {
    (void)state;
    cli__config_t cfg;
    cli__config_init(&cfg);
    int bad = 0;
    const char *text = "# comment\n\n  server =  http://h:1/  \r\ntoken=pst_abc\nextra = a = b\n"
                       "token = pst_new";
    assert_int_equal(cli__config_parse(text, &cfg, &bad), 0);
    assert_string_equal(cli__config_get(&cfg, "server"), "http://h:1/");
    assert_string_equal(cli__config_get(&cfg, "token"), "pst_new");
    assert_string_equal(cli__config_get(&cfg, "extra"), "a = b");
    assert_null(cli__config_get(&cfg, "nope"));
    assert_int_equal(cfg.n, 3);
    cli__config_set(&cfg, "token", NULL);
    assert_null(cli__config_get(&cfg, "token"));
    assert_int_equal(cfg.n, 2);
    cli__config_destroy(&cfg);

    cli__config_init(&cfg);
    assert_int_equal(cli__config_parse("a = 1\njust words\n", &cfg, &bad), -EINVAL);
    assert_int_equal(bad, 2);
    assert_int_equal(cli__config_parse("= value\n", &cfg, &bad), -EINVAL);
    assert_int_equal(bad, 1);
    cli__config_destroy(&cfg);
}

static void test_config_save_load(void **state) {
    (void)state;
    const char *base = getenv("PERSONA_TEST_TMP");
    char *dir = xasprintf("%s/cfg-%d/sub", base ? base : "/tmp", (int)getpid());
    char *path = xasprintf("%s/config", dir);
    cli__config_t cfg, back;
    cli__config_init(&cfg);
    cli__config_init(&back);
    cli__config_set(&cfg, "server", "http://127.0.0.1:9");
    cli__config_set(&cfg, "token", "pst_xyz");
    assert_int_equal(cli__config_save(path, &cfg), 0);

    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    int bad = 0;
    assert_int_equal(cli__config_load(path, &back, &bad), 0);
    assert_string_equal(cli__config_get(&back, "server"), "http://127.0.0.1:9");
    assert_string_equal(cli__config_get(&back, "token"), "pst_xyz");

    /* overwrite: still one file, no temporaries left behind */
    cli__config_set(&cfg, "token", NULL);
    assert_int_equal(cli__config_save(path, &cfg), 0);
    cli__config_destroy(&back);
    cli__config_init(&back);
    assert_int_equal(cli__config_load(path, &back, &bad), 0);
    assert_null(cli__config_get(&back, "token"));
    char *cmd = xasprintf("test $(ls -A '%s' | wc -l) -eq 1", dir);
    assert_int_equal(system(cmd), 0);

    /* a missing file is an empty config */
    cli__config_destroy(&back);
    cli__config_init(&back);
    char *missing = xasprintf("%s/none", dir);
    assert_int_equal(cli__config_load(missing, &back, &bad), 0);
    assert_int_equal(back.n, 0);

    unlink(path);
    rmdir(dir);
    free(missing);
    free(cmd);
    cli__config_destroy(&cfg);
    cli__config_destroy(&back);
    free(path);
    free(dir);
}

static void test_config_default_path(void **state) {
    (void)state;
    char *p;
    setenv("PERSONA_CONFIG", "/x/cfg", 1);
    p = cli__config_default_path();
    assert_string_equal(p, "/x/cfg");
    free(p);
    unsetenv("PERSONA_CONFIG");
    setenv("XDG_CONFIG_HOME", "/xdg", 1);
    p = cli__config_default_path();
    assert_string_equal(p, "/xdg/persona/config");
    free(p);
    unsetenv("XDG_CONFIG_HOME");
    setenv("HOME", "/home/u", 1);
    p = cli__config_default_path();
    assert_string_equal(p, "/home/u/.config/persona/config");
    free(p);
}

static void test_guess_kind(void **state) {
    (void)state;
    const char *kind, *mime;
    assert_int_equal(cli__guess_kind("/a/b/clip.MP4", &kind, &mime), 0);
    assert_string_equal(kind, "video");
    assert_string_equal(mime, "video/mp4");
    assert_int_equal(cli__guess_kind("x.m4a", &kind, &mime), 0);
    assert_string_equal(kind, "audio");
    assert_int_equal(cli__guess_kind("x.jpeg", &kind, &mime), 0);
    assert_string_equal(kind, "image");
    assert_string_equal(mime, "image/jpeg");
    assert_int_equal(cli__guess_kind("notes.md", &kind, &mime), 0);
    assert_string_equal(kind, "text");
    assert_int_equal(cli__guess_kind("x.bin", &kind, &mime), -ENOENT);
    assert_int_equal(cli__guess_kind(".mp4", &kind, &mime), -ENOENT);
    assert_int_equal(cli__guess_kind("dir.mp4/file", &kind, &mime), -ENOENT);
    assert_int_equal(cli__guess_kind("x.", &kind, &mime), -ENOENT);
    assert_true(cli__valid_kind("text"));
    assert_false(cli__valid_kind("movie"));
    assert_string_equal(cli__ext_for_mime("audio/mp4"), "m4a");
    assert_string_equal(cli__ext_for_mime("text/plain; charset=utf-8"), "txt");
    assert_string_equal(cli__ext_for_mime("text/plain"), "txt");
    assert_null(cli__ext_for_mime("application/x-nope"));
}

static void test_format(void **state) {
    (void)state;
    char buf[64];
    assert_string_equal(cli__human_size(999, buf, sizeof buf), "999 B");
    assert_string_equal(cli__human_size(1500, buf, sizeof buf), "1.5 kB");
    assert_string_equal(cli__human_size(25000000, buf, sizeof buf), "25 MB");
    assert_string_equal(cli__human_time(0, buf, sizeof buf), "-");
    assert_string_equal(cli__clean("a\tb\x1b[2J", 0, buf, sizeof buf), "a?b?[2J");
    assert_string_equal(cli__clean("abcdef", 4, buf, sizeof buf), "abc~");
    assert_string_equal(cli__clean("abcd", 4, buf, sizeof buf), "abcd");
    /* widths count characters, not bytes, and never cut a UTF-8 sequence */
    assert_string_equal(cli__clean("éééé", 3, buf, sizeof buf), "éé~");
    char *enc = cli__urlencode("a b/é&");
    assert_string_equal(enc, "a%20b%2F%C3%A9%26");
    free(enc);

    json_t *o = json_pack("{s:s, s:I, s:f}", "s", "v", "i", (json_int_t)7, "r", 2.9);
    assert_string_equal(cli__jstr(o, "s", "d"), "v");
    assert_string_equal(cli__jstr(o, "i", "d"), "d");
    assert_int_equal(cli__jint(o, "i", -1), 7);
    assert_int_equal(cli__jint(o, "r", -1), 2);
    assert_int_equal(cli__jint(o, "nope", -1), -1);
    assert_int_equal(cli__jint(NULL, "i", -1), -1);
    json_decref(o);
}


static void test_utf8_chars(void **state) {
    (void)state;
    assert_int_equal(cli__utf8_chars(""), 0);
    assert_int_equal(cli__utf8_chars("abc"), 3);
    assert_int_equal(cli__utf8_chars("é🙂x"), 3);
    assert_string_equal(cli__utf8_skip("é🙂x", 0), "é🙂x");
    assert_string_equal(cli__utf8_skip("é🙂x", 1), "🙂x");
    assert_string_equal(cli__utf8_skip("é🙂x", 2), "x");
    assert_string_equal(cli__utf8_skip("é🙂x", 3), "");
    assert_string_equal(cli__utf8_skip("é🙂x", 99), "");
}

static void test_answer_in_order(void **state) {
    (void)state;
    cli__answer_t a;
    cli__answer_init(&a);
    assert_string_equal(cli__answer_delta(&a, 0, "About the sea, "), "About the sea, ");
    assert_int_equal(a.chars, 15);
    assert_string_equal(cli__answer_delta(&a, 15, "you said: "), "you said: ");
    assert_string_equal(cli__answer_delta(&a, 25, "waves."), "waves.");
    assert_false(a.gap);
    /* everything was streamed: done adds nothing */
    assert_string_equal(cli__answer_done(&a, "About the sea, you said: waves."), "");
    assert_int_equal(a.chars, 31);
    assert_false(a.last_nl);
    cli__answer_destroy(&a);
}

static void test_answer_overlap(void **state) {
    (void)state;
    cli__answer_t a;
    cli__answer_init(&a);
    assert_string_equal(cli__answer_delta(&a, 0, "Hello "), "Hello ");
    assert_string_equal(cli__answer_delta(&a, 6, "wor"), "wor");
    /* a rerun job starts again from 0: only what is new prints */
    assert_string_equal(cli__answer_delta(&a, 0, "Hello "), "");
    assert_string_equal(cli__answer_delta(&a, 6, "world"), "ld");
    assert_int_equal(a.chars, 11);
    /* the same piece twice prints once */
    assert_string_equal(cli__answer_delta(&a, 6, "world"), "");
    assert_string_equal(cli__answer_delta(&a, 11, "!\n"), "!\n");
    assert_true(a.last_nl);
    assert_string_equal(cli__answer_done(&a, "Hello world!\n"), "");
    cli__answer_destroy(&a);
    /* negative offsets count as 0; NULL text is nothing */
    cli__answer_init(&a);
    assert_string_equal(cli__answer_delta(&a, -5, "ab"), "ab");
    assert_string_equal(cli__answer_delta(&a, 1, NULL), "");
    assert_string_equal(cli__answer_done(&a, NULL), "");
    cli__answer_destroy(&a);
}

static void test_answer_gap(void **state) {
    (void)state;
    cli__answer_t a;
    cli__answer_init(&a);
    assert_string_equal(cli__answer_delta(&a, 0, "One. "), "One. ");
    /* the piece at 5 went missing: nothing more streams ... */
    assert_string_equal(cli__answer_delta(&a, 10, "Three. "), "");
    assert_true(a.gap);
    assert_string_equal(cli__answer_delta(&a, 5, "Two. "), "");
    /* ... and done gives the rest after what was printed */
    assert_string_equal(cli__answer_done(&a, "One. Two. Three. "), "Two. Three. ");
    assert_false(a.gap);
    assert_int_equal(a.chars, 17);
    cli__answer_destroy(&a);

    /* a piece that contradicts what was printed also stops the stream */
    cli__answer_init(&a);
    assert_string_equal(cli__answer_delta(&a, 0, "Alpha beta"), "Alpha beta");
    assert_string_equal(cli__answer_delta(&a, 6, "gamma"), "");
    assert_true(a.gap);
    assert_string_equal(cli__answer_done(&a, "Alpha beta gamma"), " gamma");
    cli__answer_destroy(&a);
}

static void test_answer_done_only(void **state) {
    (void)state;
    cli__answer_t a;
    cli__answer_init(&a);
    /* no deltas at all: done prints the whole answer */
    assert_string_equal(cli__answer_done(&a, "I have nothing about that yet."),
                        "I have nothing about that yet.");
    cli__answer_destroy(&a);
    /* deltas that stopped early: done prints the tail */
    cli__answer_init(&a);
    assert_string_equal(cli__answer_delta(&a, 0, "Part"), "Part");
    assert_string_equal(cli__answer_done(&a, "Part and whole"), " and whole");
    cli__answer_destroy(&a);
    /* a done that disagrees with what was printed never cuts a character */
    cli__answer_init(&a);
    assert_string_equal(cli__answer_delta(&a, 0, "abc"), "abc");
    assert_string_equal(cli__answer_done(&a, "xxé!"), "é!");
    cli__answer_destroy(&a);
}

static void test_answer_char_offsets(void **state) {
    (void)state;
    /* offsets in characters (docs/api.md) */
    cli__answer_t a;
    cli__answer_init(&a);
    assert_string_equal(cli__answer_delta(&a, 0, "Grüße 🙂 "), "Grüße 🙂 ");
    assert_int_equal(a.chars, 8);
    assert_int_equal(a.printed.len, 13);
    assert_string_equal(cli__answer_delta(&a, 8, "Köln"), "Köln");
    assert_int_equal(a.unit, CLI__OFFSET_CHARS);
    assert_string_equal(cli__answer_delta(&a, 6, "🙂 Köln."), ".");
    assert_string_equal(cli__answer_delta(&a, 0, "Grüße"), "");
    assert_false(a.gap);
    assert_string_equal(cli__answer_done(&a, "Grüße 🙂 Köln. 日本"), " 日本");
    assert_int_equal(a.chars, 16);
    cli__answer_destroy(&a);
}

static void test_answer_byte_offsets(void **state) {
    (void)state;
    /* offsets in bytes, as a server may count them: learned at the first piece that tells */
    cli__answer_t a;
    cli__answer_init(&a);
    assert_string_equal(cli__answer_delta(&a, 0, "Grüße 🙂 "), "Grüße 🙂 ");
    assert_string_equal(cli__answer_delta(&a, 13, "Köln"), "Köln");
    assert_int_equal(a.unit, CLI__OFFSET_BYTES);
    /* a rerun from the start, in bytes */
    assert_string_equal(cli__answer_delta(&a, 0, "Grüße 🙂 "), "");
    assert_string_equal(cli__answer_delta(&a, 13, "Köln."), ".");
    /* an offset inside a character fits nothing: the stream stops, done completes it */
    assert_string_equal(cli__answer_delta(&a, 3, "x"), "");
    assert_true(a.gap);
    assert_string_equal(cli__answer_done(&a, "Grüße 🙂 Köln. Ende"), " Ende");
    assert_string_equal(a.printed.data, "Grüße 🙂 Köln. Ende");
    cli__answer_destroy(&a);
}

static void check_line(const char *event_json, const char *want) {
    json_error_t err;
    json_t *ev = json_loads(event_json, 0, &err);
    assert_non_null(ev);
    char *line = cli__event_line(ev);
    assert_string_equal(line, want);
    free(line);
    json_decref(ev);
}

static void test_event_line(void **state) {
    (void)state;
    check_line("{\"seq\":41,\"type\":\"answer.delta\",\"question_id\":7,\"offset\":0,"
               "\"text\":\"About the sea, \"}",
               "41 answer.delta question=7 offset=0 text=\"About the sea, \"");
    check_line("{\"seq\":42,\"type\":\"answer.done\",\"text\":\"All.\\nDone é\",\"question_id\":7,"
               "\"passages\":2}",
               "42 answer.done question=7 passages=2 text=\"All.\\nDone é\"");
    check_line("{\"seq\":43,\"type\":\"answer.failed\",\"question_id\":\"8\","
               "\"error\":\"no passages: the index is gone\"}",
               "43 answer.failed question=8 error=\"no passages: the index is gone\"");
    check_line("{\"seq\":44,\"type\":\"media.updated\",\"media_id\":12,\"status\":\"ready\","
               "\"error\":null}",
               "44 media.updated media=12 status=ready error=null");
    /* no raw control characters reach the terminal, however they come */
    check_line("{\"seq\":45,\"type\":\"x\\u001b[2J\",\"text\":\"a\\u001bb\\u007fc\\u0085d\"}",
               "45 x?[2J text=\"a\\u001Bb?c?d\"");
    /* unknown types: their members as they are */
    check_line("{\"seq\":46,\"type\":\"model.ready\",\"model\":\"m1\",\"ok\":true,\"r\":1.5,"
               "\"tags\":[1,2],\"o\":{\"a\":1}}",
               "46 model.ready model=m1 ok=true r=1.5 tags=[1,2] o={\"a\":1}");
    check_line("{}", "0 ?");
}

static void test_jid(void **state) {
    (void)state;
    json_t *o = json_pack("{s:I, s:s, s:s, s:I, s:b}", "a", (json_int_t)7, "b", "12", "c", "1x",
                          "d", (json_int_t)-3, "e", 1);
    assert_int_equal(cli__jid(o, "a"), 7);
    assert_int_equal(cli__jid(o, "b"), 12);
    assert_int_equal(cli__jid(o, "c"), 0);
    assert_int_equal(cli__jid(o, "d"), 0);
    assert_int_equal(cli__jid(o, "e"), 0);
    assert_int_equal(cli__jid(o, "none"), 0);
    assert_int_equal(cli__jid(NULL, "a"), 0);
    json_decref(o);
}

/* Runs `persona ARGS...` (a NULL-terminated list) through cli_main with stdout and stderr sent to files (kept in
 * out/err, caller frees), against a server that is not there. */
static int run_cli(char **out, char **err, ...) {
    const char *base = getenv("PERSONA_TEST_TMP");
    char *dir = xasprintf("%s/run-%d", base ? base : "/tmp", (int)getpid());
    char *cmd = xasprintf("mkdir -p '%s'", dir);
    assert_int_equal(system(cmd), 0);
    char *cfg = xasprintf("%s/config", dir), *fo = xasprintf("%s/out", dir),
         *fe = xasprintf("%s/err", dir);
    setenv("PERSONA_CONFIG", cfg, 1);
    unsetenv("PERSONA_SERVER");
    unsetenv("PERSONA_TOKEN");
    char *argv[16];
    int argc = 0;
    argv[0] = "persona";
    va_list ap;
    va_start(ap, err);
    for (char *a; (a = va_arg(ap, char *)) != NULL && argc < 14;)
        argv[++argc] = a;
    va_end(ap);
    argv[argc + 1] = NULL;

    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    assert_non_null(freopen(fo, "w", stdout));
    assert_non_null(freopen(fe, "w", stderr));
    int rc = cli_main(argc + 1, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);

    size_t n;
    FILE *f = fopen(fo, "r");
    *out = xcalloc(1, 65536);
    n = fread(*out, 1, 65535, f);
    (*out)[n] = '\0';
    fclose(f);
    f = fopen(fe, "r");
    *err = xcalloc(1, 65536);
    n = fread(*err, 1, 65535, f);
    (*err)[n] = '\0';
    fclose(f);
    unlink(fo);
    unlink(fe);
    unlink(cfg);
    rmdir(dir);
    free(fo);
    free(fe);
    free(cfg);
    free(cmd);
    free(dir);
    return rc;
}

static void test_ask_watch_command_lines(void **state) {
    (void)state;
    char *out, *err;
#define RUN(want, ...)                                                                        \
    do {                                                                                      \
        int rc_ = run_cli(&out, &err, __VA_ARGS__, (char *)NULL);                                        \
        if (rc_ != (want))                                                                    \
            fail_msg("exit %d, wanted %d; stderr: %s", rc_, (want), err);                    \
    } while (0)
#define DONE()                                                                                \
    do {                                                                                      \
        free(out);                                                                            \
        free(err);                                                                            \
    } while (0)

    RUN(0, "ask", "--help");
    assert_non_null(strstr(out, "Usage: persona ask TEXT..."));
    DONE();
    RUN(0, "watch", "-h");
    assert_non_null(strstr(out, "Usage: persona watch"));
    DONE();
    RUN(0, "help", "ask");
    assert_non_null(strstr(out, "--timeout S"));
    DONE();
    RUN(0, "--help");
    assert_non_null(strstr(out, "  ask "));
    assert_non_null(strstr(out, "  watch "));
    DONE();

    RUN(2, "ask");
    assert_non_null(strstr(err, "no question given"));
    assert_non_null(strstr(err, "Try 'persona ask --help'."));
    DONE();
    RUN(2, "ask", "--timeout", "soon", "hello");
    assert_non_null(strstr(err, "--timeout must be 0 to 86400"));
    DONE();
    RUN(2, "ask", "--timeout", "-1", "hello");
    DONE();
    RUN(2, "ask", "--nope");
    assert_non_null(strstr(err, "unknown option '--nope'"));
    DONE();
    RUN(2, "ask", "--json", "--sources", "hi");
    assert_non_null(strstr(err, "--sources"));
    DONE();
    RUN(2, "--json", "ask", "--sources", "hi");
    DONE();
    RUN(2, "watch", "extra");
    assert_non_null(strstr(err, "unexpected argument 'extra'"));
    DONE();
    RUN(2, "watch", "--after", "x");
    assert_non_null(strstr(err, "--after must be"));
    DONE();
    RUN(2, "watch", "--after", "-2");
    DONE();
    RUN(2, "watch", "--json=1");
    DONE();

    /* well-formed, but no token / no server: exit 1 with the reason, nothing on stdout */
    RUN(1, "--server", "http://127.0.0.1:1", "ask", "hello");
    assert_non_null(strstr(err, "not logged in"));
    assert_string_equal(out, "");
    DONE();
    RUN(1, "--server", "http://127.0.0.1:1", "--token", "pst_x", "ask", "hello", "there");
    assert_non_null(strstr(err, "http://127.0.0.1:1"));
    assert_string_equal(out, "");
    DONE();
    RUN(1, "--server", "http://127.0.0.1:1", "--token", "pst_x", "watch", "--json");
    assert_non_null(strstr(err, "cannot reach the server at http://127.0.0.1:1"));
    DONE();
#undef RUN
#undef DONE
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_opts),       cmocka_unit_test(test_parse_id),
        cmocka_unit_test(test_config_parse),     cmocka_unit_test(test_config_save_load),
        cmocka_unit_test(test_config_default_path), cmocka_unit_test(test_guess_kind),
        cmocka_unit_test(test_format),           cmocka_unit_test(test_utf8_chars),
        cmocka_unit_test(test_answer_in_order),  cmocka_unit_test(test_answer_overlap),
        cmocka_unit_test(test_answer_gap),       cmocka_unit_test(test_answer_done_only),
        cmocka_unit_test(test_answer_char_offsets), cmocka_unit_test(test_answer_byte_offsets),
        cmocka_unit_test(test_event_line),
        cmocka_unit_test(test_jid),              cmocka_unit_test(test_ask_watch_command_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
