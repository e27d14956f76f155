/* test_config: unit tests of the config module — defaults, the config file, PERSONA_<KEY>
 * environment variables and flags (in rising precedence), usage errors with their messages, and
 * damaged config files (random bytes, oversized, a line without '=').
 *
 * Every config_load runs with out/err captured by open_memstream, so messages can be checked,
 * and is followed by config_destroy (also after errors and --help), so the ASan build checks
 * that nothing leaks. The environment is cleared of every PERSONA_<KEY> and PERSONAD_CONFIG before
 * each test. Files go to $PERSONA_TEST_TMP. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/core.h"

/* ==================================================================================== */
/* helpers                                                                               */
/* ==================================================================================== */

static const char *const ENV_KEYS[] = {
    "PERSONA_HOST", "PERSONA_PORT", "PERSONA_DATA_DIR", "PERSONA_SIGNUP", "PERSONA_WORKERS",
    "PERSONA_REQUEST_THREADS", "PERSONA_MAX_UPLOAD_BYTES", "PERSONA_MAX_JSON_BYTES",
    "PERSONA_TLS_CERT", "PERSONA_TLS_KEY", "PERSONA_LOGIN_MAX_FAILURES",
    "PERSONA_LOGIN_MAX_FAILURES_ADDR", "PERSONA_LOGIN_WINDOW_S", "PERSONA_JOB_MAX_ATTEMPTS",
    "PERSONA_THUMBNAIL_SIZE", "PERSONA_LOG_LEVEL", "PERSONA_LOG_REQUESTS",
    "PERSONA_HTTP_TIMEOUT_S", "PERSONA_KEEPALIVE_TIMEOUT_S", "PERSONA_UPLOAD_QUEUE_KIB",
    "PERSONA_TEXTGEN", "PERSONA_TEXTGEN_URL", "PERSONA_TEXTGEN_MODEL",
    "PERSONA_TEXTGEN_FALLBACK_S", "PERSONAD_CONFIG"};

static int clean_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof ENV_KEYS / sizeof ENV_KEYS[0]; i++)
        unsetenv(ENV_KEYS[i]);
    return 0;
}

typedef struct {
    config_t cfg;
    int rc;
    char *out, *err;
} run_t;

/* config_load with argv = {"personad", args..., NULL}; NULL ends the list. */
static int load(run_t *r, ...)
{
    char *argv[64];
    int argc = 0;
    argv[argc++] = xstrdup("personad");
    va_list ap;
    va_start(ap, r);
    for (const char *a; (a = va_arg(ap, const char *));)
        argv[argc++] = xstrdup(a);
    va_end(ap);
    argv[argc] = NULL;

    size_t on = 0, en = 0;
    r->out = r->err = NULL;
    FILE *out = open_memstream(&r->out, &on);
    FILE *err = open_memstream(&r->err, &en);
    assert_non_null(out);
    assert_non_null(err);
    r->rc = config_load(&r->cfg, argc, argv, out, err);
    fclose(out);
    fclose(err);
    for (int i = 0; i < argc; i++)
        free(argv[i]);
    return r->rc;
}

static void done(run_t *r)
{
    config_destroy(&r->cfg);
    xfree(&r->out);
    xfree(&r->err);
}

/* Expects load to fail with -EINVAL and a message on err that mentions every given word. */
#define expect_error(words, ...)                                                                  \
    do {                                                                                          \
        run_t r_;                                                                                 \
        int rc_ = load(&r_, __VA_ARGS__, NULL);                                                   \
        if (rc_ != -EINVAL)                                                                       \
            fail_msg("%s:%d: config_load returned %d, want -EINVAL (err: %s)", __FILE__,        \
                     __LINE__, rc_, r_.err);                                                      \
        const char *const w_[] = {words};                                                         \
        for (size_t i_ = 0; i_ < sizeof w_ / sizeof w_[0]; i_++)                                  \
            if (!strstr(r_.err, w_[i_]))                                                          \
                fail_msg("%s:%d: message '%s' does not mention '%s'", __FILE__, __LINE__, r_.err, \
                         w_[i_]);                                                                 \
        assert_string_equal(r_.out, "");                                                          \
        done(&r_);                                                                                \
    } while (0)
#define W(...) __VA_ARGS__

static char *tmp_path(const char *name)
{
    const char *base = getenv("PERSONA_TEST_TMP");
    if (!base || !*base)
        base = "/tmp/persona-test-config";
    assert_int_equal(core_mkdirs(base), 0);
    return xasprintf("%s/%s", base, name);
}

static char *write_tmp(const char *name, const void *data, size_t n)
{
    char *path = tmp_path(name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n)
        assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
    return path;
}

static char *write_text(const char *name, const char *text)
{
    return write_tmp(name, text, strlen(text));
}

/* ==================================================================================== */
/* defaults and flags                                                                    */
/* ==================================================================================== */

static void test_defaults(void **state)
{
    (void)state;
    run_t r;
    assert_int_equal(load(&r, NULL), 0);
    assert_string_equal(r.cfg.host, "127.0.0.1");
    assert_int_equal(r.cfg.port, 8080);
    assert_string_equal(r.cfg.data_dir, "./data");
    assert_string_equal(r.cfg.signup, "first");
    assert_int_equal(r.cfg.workers, 0);
    assert_int_equal(r.cfg.request_threads, 0);
    assert_int_equal(r.cfg.max_upload_bytes, 4ULL << 30);
    assert_int_equal(r.cfg.max_json_bytes, 64 << 10);
    assert_string_equal(r.cfg.tls_cert, "");
    assert_string_equal(r.cfg.tls_key, "");
    assert_int_equal(r.cfg.login_max_failures, 5);
    assert_int_equal(r.cfg.login_max_failures_addr, 20);
    assert_int_equal(r.cfg.login_window_s, 300);
    assert_int_equal(r.cfg.job_max_attempts, 3);
    assert_int_equal(r.cfg.thumbnail_size, 320);
    assert_string_equal(r.cfg.log_level, "info");
    assert_true(r.cfg.log_requests);
    assert_int_equal(r.cfg.http_timeout_s, 30);
    assert_int_equal(r.cfg.keepalive_timeout_s, 60);
    assert_int_equal(r.cfg.upload_queue_kib, 4096);
    assert_null(r.cfg.config_file);
    assert_string_equal(r.out, "");
    assert_string_equal(r.err, "");
    done(&r);
}

static void test_flags(void **state)
{
    (void)state;
    run_t r;
    assert_int_equal(load(&r, "--port", "0", NULL), 0);
    assert_int_equal(r.cfg.port, 0);
    done(&r);

    assert_int_equal(load(&r, "--port=123", NULL), 0);
    assert_int_equal(r.cfg.port, 123);
    done(&r);

    assert_int_equal(load(&r, "--port", "65535", NULL), 0);
    assert_int_equal(r.cfg.port, 65535);
    done(&r);

    assert_int_equal(load(&r, "--data-dir", "/srv/a", NULL), 0);
    assert_string_equal(r.cfg.data_dir, "/srv/a");
    done(&r);
    assert_int_equal(load(&r, "--data_dir", "/srv/b", NULL), 0);
    assert_string_equal(r.cfg.data_dir, "/srv/b");
    done(&r);
    assert_int_equal(load(&r, "--data_dir=/srv/c", NULL), 0);
    assert_string_equal(r.cfg.data_dir, "/srv/c");
    done(&r);
    assert_int_equal(load(&r, "--login-max_failures-addr=7", NULL), 0);
    assert_int_equal(r.cfg.login_max_failures_addr, 7);
    done(&r);

    assert_int_equal(load(&r, "--host", "0.0.0.0", "--signup=open", "--workers", "4",
                          "--request-threads=2", "--max-upload-bytes", "10M",
                          "--max_json_bytes=512K", "--tls-cert", "c.pem", "--tls-key", "k.pem",
                          "--log-level", "debug", "--log-requests=off", "--thumbnail-size",
                          "16", "--upload-queue-kib", "64", NULL),
                     0);
    assert_string_equal(r.cfg.host, "0.0.0.0");
    assert_string_equal(r.cfg.signup, "open");
    assert_int_equal(r.cfg.workers, 4);
    assert_int_equal(r.cfg.request_threads, 2);
    assert_int_equal(r.cfg.max_upload_bytes, 10 << 20);
    assert_int_equal(r.cfg.max_json_bytes, 512 << 10);
    assert_string_equal(r.cfg.tls_cert, "c.pem");
    assert_string_equal(r.cfg.tls_key, "k.pem");
    assert_string_equal(r.cfg.log_level, "debug");
    assert_false(r.cfg.log_requests);
    assert_int_equal(r.cfg.thumbnail_size, 16);
    assert_int_equal(r.cfg.upload_queue_kib, 64);
    assert_string_equal(r.err, "");
    done(&r);

    /* the last occurrence wins; values may contain '=' and be empty */
    assert_int_equal(load(&r, "--port", "1", "--port=2", "--host=a=b", "--data-dir=", NULL), 0);
    assert_int_equal(r.cfg.port, 2);
    assert_string_equal(r.cfg.host, "a=b");
    assert_string_equal(r.cfg.data_dir, "");
    done(&r);

    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(load(&r, "--log-requests", no[i], NULL), 0);
        assert_false(r.cfg.log_requests);
        done(&r);
        assert_int_equal(load(&r, "--log-requests=false", "--log-requests", yes[i], NULL), 0);
        assert_true(r.cfg.log_requests);
        done(&r);
    }
}

static void test_help_version(void **state)
{
    (void)state;
    run_t r;
    assert_int_equal(load(&r, "--help", NULL), 1);
    assert_non_null(strstr(r.out, "usage: personad"));
    assert_non_null(strstr(r.out, "--config FILE"));
    assert_non_null(strstr(r.out, "--data-dir"));
    assert_non_null(strstr(r.out, "--max-upload-bytes"));
    assert_non_null(strstr(r.out, "(default: 8080)"));
    assert_null(strstr(r.out, "--data_dir")); /* flags are shown with dashes */
    assert_string_equal(r.err, "");
    done(&r);

    assert_int_equal(load(&r, "-h", NULL), 1);
    assert_non_null(strstr(r.out, "usage: personad"));
    done(&r);

    /* --help wins over anything else on the line, even errors */
    assert_int_equal(load(&r, "--port", "1", "--bogus", "--help", NULL), 1);
    assert_non_null(strstr(r.out, "usage: personad"));
    done(&r);

    assert_int_equal(load(&r, "--version", NULL), 1);
    char want[64];
    snprintf(want, sizeof want, "personad %s\n", PERSONA_VERSION);
    assert_string_equal(r.out, want);
    done(&r);

    /* config_print_help lists every key of config_t */
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    config_print_help(f);
    fclose(f);
    static const char *const flags[] = {
        "--host", "--port", "--data-dir", "--signup", "--workers", "--request-threads",
        "--max-upload-bytes", "--max-json-bytes", "--tls-cert", "--tls-key",
        "--login-max-failures ", "--login-max-failures-addr", "--login-window-s",
        "--job-max-attempts", "--thumbnail-size", "--log-level", "--log-requests",
        "--http-timeout-s", "--keepalive-timeout-s", "--upload-queue-kib"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (!strstr(buf, flags[i]))
            fail_msg("--help does not list %s", flags[i]);
    free(buf);
}

/* ==================================================================================== */
/* file and environment                                                                  */
/* ==================================================================================== */

static void test_file(void **state)
{
    (void)state;
    char *path = write_text("good.conf", "# persona test config\n"
                                         "\n"
                                         "   \n"
                                         "port = 9001\n"
                                         "  data-dir=/var/lib/persona  \n"
                                         "\tsignup =closed\r\n"
                                         "host = 10.0.0.1 \n"
                                         "   # indented comment = with equals\n"
                                         "max_upload_bytes = 1G\n"
                                         "log_requests = no\n"
                                         "tls_cert = /etc/c.pem\n"
                                         "TLS_KEY = /etc/k.pem\n"
                                         "log_level=warn"); /* no newline at the end */
    run_t r;
    assert_int_equal(load(&r, "--config", path, NULL), 0);
    assert_int_equal(r.cfg.port, 9001);
    assert_string_equal(r.cfg.data_dir, "/var/lib/persona");
    assert_string_equal(r.cfg.signup, "closed");
    assert_string_equal(r.cfg.host, "10.0.0.1");
    assert_int_equal(r.cfg.max_upload_bytes, 1ULL << 30);
    assert_false(r.cfg.log_requests);
    assert_string_equal(r.cfg.tls_cert, "/etc/c.pem");
    assert_string_equal(r.cfg.tls_key, "/etc/k.pem");
    assert_string_equal(r.cfg.log_level, "warn");
    assert_string_equal(r.cfg.config_file, path);
    assert_string_equal(r.err, "");
    done(&r);

    assert_int_equal(load(&r, "--config=" "", NULL), 0); /* empty: no file */
    assert_null(r.cfg.config_file);
    done(&r);

    char *arg = xasprintf("--config=%s", path);
    assert_int_equal(load(&r, arg, NULL), 0);
    assert_int_equal(r.cfg.port, 9001);
    done(&r);

    /* PERSONAD_CONFIG names the file when no --config is given; --config wins over it */
    char *other = write_text("other.conf", "port = 4242\n");
    setenv("PERSONAD_CONFIG", path, 1);
    assert_int_equal(load(&r, NULL), 0);
    assert_int_equal(r.cfg.port, 9001);
    assert_string_equal(r.cfg.config_file, path);
    done(&r);
    assert_int_equal(load(&r, "--config", other, NULL), 0);
    assert_int_equal(r.cfg.port, 4242);
    assert_string_equal(r.cfg.data_dir, "./data");
    done(&r);
    unsetenv("PERSONAD_CONFIG");

    /* the client's variable is not ours */
    setenv("PERSONA_CONFIG", path, 1);
    assert_int_equal(load(&r, NULL), 0);
    assert_int_equal(r.cfg.port, 8080);
    done(&r);
    unsetenv("PERSONA_CONFIG");

    free(other);
    free(arg);
    free(path);
}

static void test_precedence(void **state)
{
    (void)state;
    char *path = write_text("prec.conf", "port = 7000\ndata_dir = /from/file\nworkers = 3\n");
    run_t r;

    setenv("PERSONA_PORT", "9000", 1);
    assert_int_equal(load(&r, NULL), 0); /* env over default */
    assert_int_equal(r.cfg.port, 9000);
    done(&r);

    assert_int_equal(load(&r, "--config", path, NULL), 0); /* env over file */
    assert_int_equal(r.cfg.port, 9000);
    assert_string_equal(r.cfg.data_dir, "/from/file");
    assert_int_equal(r.cfg.workers, 3);
    done(&r);

    setenv("PERSONA_DATA_DIR", "/from/env", 1);
    assert_int_equal(load(&r, "--config", path, "--port", "1", NULL), 0); /* flag over env */
    assert_int_equal(r.cfg.port, 1);
    assert_string_equal(r.cfg.data_dir, "/from/env");
    assert_int_equal(r.cfg.workers, 3);
    done(&r);

    assert_int_equal(load(&r, "--data-dir=/from/flag", "--config", path, NULL), 0);
    assert_string_equal(r.cfg.data_dir, "/from/flag"); /* order on the line does not matter */
    assert_int_equal(r.cfg.port, 9000);
    done(&r);

    setenv("PERSONA_LOG_REQUESTS", "off", 1);
    setenv("PERSONA_MAX_JSON_BYTES", "1M", 1);
    assert_int_equal(load(&r, NULL), 0);
    assert_false(r.cfg.log_requests);
    assert_int_equal(r.cfg.max_json_bytes, 1 << 20);
    done(&r);

    /* a bad environment value is an error naming the variable */
    setenv("PERSONA_PORT", "eighty", 1);
    expect_error(W("PERSONA_PORT", "eighty"), "--port", "1");
    setenv("PERSONA_MAX_JSON_BYTES", "lots", 1);
    setenv("PERSONA_PORT", "80", 1);
    expect_error(W("PERSONA_MAX_JSON_BYTES", "lots"), "--port", "1");
    clean_env(NULL);
    free(path);
}

/* ==================================================================================== */
/* errors                                                                                */
/* ==================================================================================== */

static void test_flag_errors(void **state)
{
    (void)state;
    expect_error(W("--bogus"), "--bogus", "1");
    expect_error(W("--bogus=1"), "--bogus=1");
    expect_error(W("-p"), "-p", "80");
    expect_error(W("serve"), "serve");
    expect_error(W("'--'"), "--");
    expect_error(W("--port", "needs a value"), "--port");
    expect_error(W("--data-dir", "needs a value"), "--port", "1", "--data-dir");
    expect_error(W("--config", "needs a value"), "--config");

    expect_error(W("port", "abc"), "--port", "abc");
    expect_error(W("port", "-1"), "--port", "-1");
    expect_error(W("port"), "--port=");
    expect_error(W("port", "12x"), "--port", "12x");
    expect_error(W("port", "1.5"), "--port", "1.5");
    expect_error(W("port", "99999999999999999999"), "--port", "99999999999999999999");
    expect_error(W("workers", "1000001"), "--workers", "1000001");
    expect_error(W("port", "65535"), "--port", "65536"); /* "must be 0..65535" */
    expect_error(W("port"), "--port", "1000000");

    expect_error(W("max_upload_bytes", "12Q"), "--max-upload-bytes", "12Q");
    expect_error(W("max_json_bytes", "-1"), "--max-json-bytes=-1");
    expect_error(W("max_upload_bytes", "99999999999T"), "--max-upload-bytes",
                 "99999999999T");
    expect_error(W("log_requests", "maybe"), "--log-requests", "maybe");
    expect_error(W("log_requests", "TRUE"), "--log-requests", "TRUE");
    expect_error(W("signup", "everyone"), "--signup", "everyone");
    expect_error(W("signup"), "--signup", "");
    expect_error(W("tls_cert", "tls_key"), "--tls-cert", "c.pem");
    expect_error(W("tls_cert", "tls_key"), "--tls-key", "k.pem");
    expect_error(W("log_level"), "--log-level", "verbose");
    expect_error(W("job_max_attempts"), "--job-max-attempts", "0");
    expect_error(W("thumbnail_size"), "--thumbnail-size", "15");
    expect_error(W("upload_queue_kib"), "--upload-queue-kib", "63");
}

static void test_file_errors(void **state)
{
    (void)state;
    char *missing = tmp_path("does-not-exist.conf");
    remove(missing);
    expect_error(W(missing), "--config", missing);
    free(missing);

    char *p = write_text("unknown.conf", "port = 1\nbogus_key = 2\n");
    expect_error(W("bogus_key", "line 2"), "--config", p);
    free(p);

    /* line numbers count blank lines and comments too */
    p = write_text("lines.conf", "# comment\n\nport = 1\n\n\nwhat = 2\n");
    expect_error(W("'what'", "line 6"), "--config", p);
    free(p);
    p = write_text("lines2.conf", "\n\n\nport = nope\n");
    expect_error(W("port", "nope", "line 4"), "--config", p);
    free(p);

    p = write_text("noeq.conf", "port = 1\njust some words\n");
    expect_error(W("expected key = value", "line 2"), "--config", p);
    free(p);

    p = write_text("badint.conf", "workers = many\n");
    expect_error(W("workers", "many"), "--config", p);
    free(p);
    p = write_text("badsize.conf", "max_upload_bytes = 4 G\n");
    expect_error(W("max_upload_bytes", "4 G"), "--config", p);
    free(p);
    p = write_text("badbool.conf", "log_requests = sometimes\n");
    expect_error(W("log_requests", "sometimes"), "--config", p);
    free(p);
    p = write_text("signup.conf", "signup = invite\n");
    expect_error(W("signup", "invite"), "--config", p);
    free(p);
    p = write_text("tls.conf", "tls_cert = /etc/c.pem\n");
    expect_error(W("tls_cert", "tls_key"), "--config", p);
    free(p);
    p = write_text("port.conf", "port = 70000\n");
    expect_error(W("port"), "--config", p);
    free(p);
    p = write_text("trunc.conf", "port = 1\nhost =");
    {
        run_t r; /* "host =" sets an empty host: allowed, the listener reports it later */
        assert_int_equal(load(&r, "--config", p, NULL), 0);
        assert_string_equal(r.cfg.host, "");
        done(&r);
    }
    free(p);
    p = write_text("trunc2.conf", "port = 1\nport");
    expect_error(W("expected key = value", "line 2"), "--config", p);
    free(p);
    /* "config" is not a key of the file */
    p = write_text("nested.conf", "config = other.conf\n");
    expect_error(W("config"), "--config", p);
    free(p);
}

static void test_file_garbage(void **state)
{
    (void)state;
    /* 2 MiB: over the 1 MiB limit, refused without reading */
    size_t big = 2u << 20;
    char *data = xmalloc(big);
    for (size_t i = 0; i < big; i++)
        data[i] = (i % 64 == 63) ? '\n' : '#';
    char *p = write_tmp("huge.conf", data, big);
    expect_error(W("cannot read", "huge.conf"), "--config", p);
    free(p);

    /* exactly 1 MiB of comments is fine */
    p = write_tmp("mib.conf", data, 1u << 20);
    run_t r;
    assert_int_equal(load(&r, "--config", p, NULL), 0);
    assert_int_equal(r.cfg.port, 8080);
    done(&r);
    free(p);

    /* one 1 MiB line without '=' or newline */
    memset(data, 'x', 1u << 20);
    p = write_tmp("oneline.conf", data, 1u << 20);
    expect_error(W("expected key = value", "line 1"), "--config", p);
    free(p);

    /* a key longer than any message buffer */
    memset(data, 'k', 100000);
    memcpy(data + 100000, " = 1\n", 5);
    p = write_tmp("longkey.conf", data, 100005);
    expect_error(W("unknown key"), "--config", p);
    free(p);

    /* random bytes: an error with a message (or, by chance, nothing to apply), never a crash */
    uint64_t x = 0x1234567887654321ULL;
    int errors = 0;
    for (int round = 0; round < 200; round++) {
        size_t n = 1 + (size_t)(round * 37 % 8192);
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            data[i] = round % 2 ? (char)(x & 0xff) : " =#\n\tabcport0123456789"[x % 22];
        }
        p = write_tmp("random.conf", data, n);
        int rc = load(&r, "--config", p, NULL);
        if (rc != 0 && rc != -EINVAL)
            fail_msg("round %d: rc %d", round, rc);
        if (rc == -EINVAL) {
            errors++;
            assert_true(strlen(r.err) > 0);
            assert_non_null(strstr(r.err, "personad: "));
        }
        done(&r);
        free(p);
    }
    assert_true(errors > 150);
    free(data);
}

static void test_destroy(void **state)
{
    (void)state;
    char *p = write_text("destroy.conf", "host = h\ndata_dir = d\nsignup = open\n"
                                         "tls_cert = c\ntls_key = k\nlog_level = error\n");
    setenv("PERSONA_HOST", "env-host", 1);
    run_t r;
    /* every string key set from three sources: each replaced string is freed (ASan checks) */
    assert_int_equal(load(&r, "--config", p, "--host", "flag-host", "--data-dir", "x", NULL), 0);
    assert_string_equal(r.cfg.host, "flag-host");
    config_destroy(&r.cfg);
    assert_null(r.cfg.host);
    assert_null(r.cfg.data_dir);
    assert_null(r.cfg.signup);
    assert_null(r.cfg.tls_cert);
    assert_null(r.cfg.tls_key);
    assert_null(r.cfg.log_level);
    assert_null(r.cfg.config_file);
    config_destroy(&r.cfg); /* twice is harmless */
    xfree(&r.out);
    xfree(&r.err);

    /* after an error half way through the flags, destroy still frees what was set */
    assert_int_equal(load(&r, "--config", p, "--host", "x", "--port", "bad", NULL), -EINVAL);
    done(&r);
    assert_int_equal(load(&r, "--help", NULL), 1);
    done(&r);
    unsetenv("PERSONA_HOST");
    free(p);
}

/* The text generation keys: defaults, --textgen URL, the URL's environment variable (not
 * PERSONA_TEXTGEN, which names the program in tests), and validation. */
static void test_textgen(void **state)
{
    (void)state;
    run_t r;
    assert_int_equal(load(&r, NULL), 0);
    assert_string_equal(r.cfg.textgen, "");
    assert_string_equal(r.cfg.textgen_model, "");
    assert_string_equal(r.cfg.textgen_base_model, "scratch-tiny");
    assert_int_equal(r.cfg.textgen_train_steps, 300);
    assert_int_equal(r.cfg.textgen_fallback_s, 60);
    assert_int_equal(r.cfg.textgen_retry_min_ms, 1000);
    assert_int_equal(r.cfg.textgen_retry_max_ms, 30000);
    done(&r);
    setenv("PERSONA_TEXTGEN", "/usr/bin/persona-textgen", 1);
    setenv("PERSONA_TEXTGEN_FALLBACK_S", "3", 1);
    assert_int_equal(load(&r, NULL), 0);
    assert_string_equal(r.cfg.textgen, "");
    assert_int_equal(r.cfg.textgen_fallback_s, 3);
    done(&r);
    setenv("PERSONA_TEXTGEN_URL", "http://127.0.0.1:8090", 1);
    assert_int_equal(load(&r, NULL), 0);
    assert_string_equal(r.cfg.textgen, "http://127.0.0.1:8090");
    done(&r);
    assert_int_equal(load(&r, "--textgen", "https://tg.example:9000/v1", "--textgen-model", "m1",
                          NULL),
                     0);
    assert_string_equal(r.cfg.textgen, "https://tg.example:9000/v1");
    assert_string_equal(r.cfg.textgen_model, "m1");
    done(&r);
    expect_error("textgen", "--textgen", "ftp://x");
    expect_error("textgen_retry_max_ms", "--textgen-retry-min-ms", "500",
                 "--textgen-retry-max-ms", "100");
    expect_error("textgen_train_steps", "--textgen-train-steps", "0");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, clean_env),
        cmocka_unit_test_setup(test_flags, clean_env),
        cmocka_unit_test_setup(test_help_version, clean_env),
        cmocka_unit_test_setup(test_file, clean_env),
        cmocka_unit_test_setup(test_precedence, clean_env),
        cmocka_unit_test_setup(test_flag_errors, clean_env),
        cmocka_unit_test_setup(test_file_errors, clean_env),
        cmocka_unit_test_setup(test_file_garbage, clean_env),
        cmocka_unit_test_setup(test_destroy, clean_env),
        cmocka_unit_test_setup(test_textgen, clean_env),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
