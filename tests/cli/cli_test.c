/* cli_test: unit tests of the cli module's helpers — option parsing, the config file (parse,
 * atomic save with mode 0600, round trip), kind guessing and the output formatting helpers. */
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_opts),       cmocka_unit_test(test_parse_id),
        cmocka_unit_test(test_config_parse),     cmocka_unit_test(test_config_save_load),
        cmocka_unit_test(test_config_default_path), cmocka_unit_test(test_guess_kind),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
