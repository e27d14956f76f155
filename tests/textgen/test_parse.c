/* tests/textgen/test_parse.c: the pure parsers of persona-textgen — completion request bodies,
 * fine-tuning JSONL files, .txt corpora, multipart/form-data uploads, SSE framing, model names,
 * the API key check and the error shape — fed valid, truncated, empty, huge and random input:
 * a clear error, never a crash (ASan/UBSan watch the rest). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "textgen/textgen.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define ROUNDS 300
#else
#define ROUNDS 3000
#endif

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static const char chat_body[] =
    "{\"model\":\"m1\",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
    "{\"role\":\"user\",\"content\":\"hello\"}],\"stream\":true,\"max_tokens\":12,"
    "\"temperature\":0,\"top_p\":0.5,\"top_k\":3,\"min_p\":0.1,\"repeat_penalty\":1.2,"
    "\"seed\":7,\"stop\":[\"\\n\\n\",\"END\"]}";

static void test_chat_ok(void **state)
{
    (void)state;
    tg_gen_req_t r;
    tg_error_t e;
    assert_int_equal(tg_gen_req_parse(chat_body, strlen(chat_body), true, 16, &r, &e), 0);
    assert_string_equal(r.model, "m1");
    assert_int_equal(r.n_messages, 2);
    assert_string_equal(r.messages[0].role, "system");
    assert_string_equal(r.messages[1].content, "hello");
    assert_true(r.stream);
    assert_int_equal(r.max_tokens, 12);
    assert_true(r.sampling.temperature == 0.0f);
    assert_true(r.sampling.top_p == 0.5f);
    assert_int_equal(r.sampling.top_k, 3);
    assert_int_equal(r.sampling.seed, 7);
    assert_int_equal(r.n_stop, 2);
    assert_string_equal(r.stop[1], "END");
    tg_gen_req_destroy(&r);
    tg_gen_req_destroy(&r); /* idempotent */

    const char *c = "{\"model\":\"m\",\"prompt\":\"once upon\",\"max_completion_tokens\":5,"
                    "\"stop\":\"x\"}";
    assert_int_equal(tg_gen_req_parse(c, strlen(c), false, 16, &r, &e), 0);
    assert_string_equal(r.prompt, "once upon");
    assert_false(r.stream);
    assert_int_equal(r.max_tokens, 5);
    assert_int_equal(r.n_stop, 1);
    tg_gen_req_destroy(&r);

    const char *parts = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
                        "[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]}]}";
    assert_int_equal(tg_gen_req_parse(parts, strlen(parts), true, 16, &r, &e), 0);
    assert_string_equal(r.messages[0].content, "ab");
    tg_gen_req_destroy(&r);
}

static void expect_400(const char *body, bool chat, const char *code)
{
    tg_gen_req_t r;
    tg_error_t e;
    int rc = tg_gen_req_parse(body, strlen(body), chat, 4, &r, &e);
    if (rc == 0)
        fail_msg("accepted: %s", body);
    assert_int_equal(e.status, 400);
    if (code)
        assert_string_equal(e.code, code);
    assert_true(strlen(e.message) > 0);
}

static void test_chat_bad(void **state)
{
    (void)state;
    expect_400("", true, "invalid_json");
    expect_400("{", true, "invalid_json");
    expect_400("[]", true, "invalid_json");
    expect_400("null", true, "invalid_json");
    expect_400("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", true,
               "missing_required_parameter");
    expect_400("{\"model\":1,\"messages\":[]}", true, "invalid_type");
    expect_400("{\"model\":\"m\",\"messages\":[]}", true, "invalid_value");
    expect_400("{\"model\":\"m\",\"messages\":{}}", true, "invalid_value");
    expect_400("{\"model\":\"m\",\"messages\":[1]}", true, "invalid_type");
    expect_400("{\"model\":\"m\",\"messages\":[{\"role\":\"pirate\",\"content\":\"x\"}]}", true,
               "invalid_value");
    expect_400("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":5}]}", true,
               "invalid_type");
    expect_400("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"<|im_start|>x\"}]}",
               true, "invalid_value");
    /* more messages than allowed (4 here) */
    expect_400("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"1\"},"
               "{\"role\":\"user\",\"content\":\"2\"},{\"role\":\"user\",\"content\":\"3\"},"
               "{\"role\":\"user\",\"content\":\"4\"},{\"role\":\"user\",\"content\":\"5\"}]}",
               true, "invalid_value");
    const char *m = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],";
    char b[512];
    const char *bad_fields[] = {
        "\"stream\":1}",       "\"max_tokens\":0}",      "\"max_tokens\":-5}",
        "\"max_tokens\":1.5}", "\"max_tokens\":99999999}", "\"temperature\":3}",
        "\"temperature\":\"hot\"}", "\"top_p\":2}",      "\"top_k\":-1}",
        "\"min_p\":-0.1}",     "\"repeat_penalty\":0}",  "\"seed\":-1}",
        "\"stop\":5}",         "\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}", "\"stop\":[\"\"]}",
        "\"stop\":[1]}",       "\"n\":2}",
        "\"stop\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
    };
    for (size_t i = 0; i < sizeof bad_fields / sizeof bad_fields[0]; i++) {
        snprintf(b, sizeof b, "%s%s", m, bad_fields[i]);
        expect_400(b, true, NULL);
    }
    expect_400("{\"model\":\"m\",\"prompt\":5}", false, "invalid_value");
    expect_400("{\"model\":\"m\"}", false, "invalid_value");
    expect_400("{\"model\":\"m\",\"prompt\":\"a\\u0000b\"}", false, NULL);
    expect_400("{\"model\":\"m\",\"model\":\"n\",\"prompt\":\"a\"}", false, "invalid_json");
}

static void test_chat_truncated_random_huge(void **state)
{
    (void)state;
    size_t n = strlen(chat_body);
    for (size_t k = 0; k < n; k++) {
        tg_gen_req_t r;
        tg_error_t e;
        assert_int_equal(tg_gen_req_parse(chat_body, k, true, 16, &r, &e), -1);
        assert_int_equal(e.status, 400);
    }
    char buf[256];
    for (int round = 0; round < ROUNDS; round++) {
        size_t len = next_rand() % sizeof buf;
        for (size_t i = 0; i < len; i++)
            buf[i] = (char)next_rand();
        /* half the rounds mutate the valid body instead: deeper paths */
        if (round % 2) {
            len = n < sizeof buf ? n : sizeof buf;
            memcpy(buf, chat_body, len);
            for (int f = 0; f < 3; f++)
                buf[next_rand() % len] = (char)next_rand();
        }
        tg_gen_req_t r;
        tg_error_t e;
        if (tg_gen_req_parse(buf, len, round % 3 != 0, 16, &r, &e) == 0)
            tg_gen_req_destroy(&r);
        else
            assert_int_equal(e.status, 400);
    }
    /* a huge message is accepted (the body limit is the server's), deep nesting is not */
    size_t big = 4u << 20;
    char *huge = malloc(big + 200);
    int h = snprintf(huge, 200, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"");
    memset(huge + h, 'a', big);
    strcpy(huge + h + big, "\"}]}");
    tg_gen_req_t r;
    tg_error_t e;
    assert_int_equal(tg_gen_req_parse(huge, strlen(huge), true, 16, &r, &e), 0);
    assert_int_equal(strlen(r.messages[0].content), big);
    tg_gen_req_destroy(&r);
    memset(huge, '[', 100000);
    assert_int_equal(tg_gen_req_parse(huge, 100000, true, 16, &r, &e), -1);
    free(huge);
}

/* ---- JSONL ---- */

static void test_jsonl(void **state)
{
    (void)state;
    const char *ok = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},"
                     "{\"role\":\"assistant\",\"content\":\"hello\"}]}\n"
                     "\n"
                     "{\"prompt\":\"2+2=\",\"completion\":\"4\"}\r\n"
                     "{\"text\":\"plain words\"}";
    tg_texts_t t;
    char err[256];
    assert_int_equal(tg_jsonl_parse(ok, strlen(ok), 10, &t, err, sizeof err), 0);
    assert_int_equal(t.n, 3);
    assert_non_null(strstr(t.texts[0], "<|im_start|>assistant\nhello<|im_end|>"));
    assert_string_equal(t.texts[1], "2+2=4");
    assert_string_equal(t.texts[2], "plain words");
    assert_int_equal(t.lens[2], 11);
    /* what is learned: the last assistant message (with its end marker), the completion, all */
    assert_string_equal(t.texts[0] + t.loss_from[0], "hello<|im_end|>");
    assert_string_equal(t.texts[1] + t.loss_from[1], "4");
    assert_int_equal(t.loss_from[2], 0);
    tg_texts_destroy(&t);
    assert_int_equal(tg_jsonl_parse(ok, strlen(ok), 10, NULL, err, sizeof err), 0);
    assert_int_equal(tg_jsonl_parse(ok, strlen(ok), 2, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "line 4"));

    struct {
        const char *in, *want;
    } bad[] = {
        {"", "empty"},
        {"\n\n  \n", "no lines"},
        {"{\"text\":\"a\"}\n{\"text\":\"b\"\n", "line 2"},
        {"{\"text\":\"a\"}\n[1]\n", "line 2: not a JSON object"},
        {"{\"text\":\"\"}", "line 1"},
        {"{\"prompt\":\"a\"}", "line 1"},
        {"{\"messages\":[]}", "line 1"},
        {"{\"messages\":[{\"role\":\"cat\",\"content\":\"x\"}]}", "line 1"},
        {"{\"messages\":[{\"role\":\"user\"}]}", "line 1"},
        {"{\"other\":1}", "line 1"},
        {"{\"text\":\"a\"}\n\n\n{\"text\":\"a\\u0000\"}", "line 4"},
        {"\xff\xfe", "UTF-8"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(tg_jsonl_parse(bad[i].in, strlen(bad[i].in), 10, &t, err, sizeof err), -1);
        if (!strstr(err, bad[i].want))
            fail_msg("case %zu: '%s' lacks '%s'", i, err, bad[i].want);
    }
    /* truncations of a valid file: accepted or a clear error */
    size_t n = strlen(ok);
    for (size_t k = 0; k <= n; k++) {
        if (tg_jsonl_parse(ok, k, 10, &t, err, sizeof err) == 0)
            tg_texts_destroy(&t);
        else
            assert_true(strlen(err) > 0);
    }
    char buf[300];
    for (int round = 0; round < ROUNDS; round++) {
        size_t len = next_rand() % sizeof buf;
        for (size_t i = 0; i < len; i++)
            buf[i] = round % 2 ? (char)next_rand() : "{}[]\":,\n tx"[next_rand() % 11];
        if (tg_jsonl_parse(buf, len, 50, &t, err, sizeof err) == 0)
            tg_texts_destroy(&t);
    }
    /* many lines: bounded by max_lines */
    size_t lines = 20000;
    char *many = malloc(lines * 13 + 1);
    for (size_t i = 0; i < lines; i++)
        memcpy(many + i * 13, "{\"text\":\"a\"}\n", 13);
    assert_int_equal(tg_jsonl_parse(many, lines * 13, 20000, &t, err, sizeof err), 0);
    assert_int_equal(t.n, lines);
    tg_texts_destroy(&t);
    assert_int_equal(tg_jsonl_parse(many, lines * 13, 19999, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "line 20000"));
    free(many);
}

static void test_text_split(void **state)
{
    (void)state;
    const char *in = "\n\nfirst para\nline two\n\n \t\nsecond\r\n\n\nthird";
    tg_texts_t t;
    char err[128];
    assert_int_equal(tg_text_split(in, strlen(in), &t, err, sizeof err), 0);
    assert_int_equal(t.n, 3);
    assert_string_equal(t.texts[0], "first para\nline two");
    assert_string_equal(t.texts[1], "second\r");
    assert_string_equal(t.texts[2], "third");
    tg_texts_destroy(&t);
    assert_int_equal(tg_text_split("", 0, &t, err, sizeof err), -1);
    assert_int_equal(tg_text_split("\n \n\n", 4, &t, err, sizeof err), -1);
    char buf[200];
    for (int round = 0; round < ROUNDS; round++) {
        size_t len = next_rand() % sizeof buf;
        for (size_t i = 0; i < len; i++)
            buf[i] = "ab \n\r\t"[next_rand() % 6];
        if (tg_text_split(buf, len, &t, err, sizeof err) == 0) {
            for (size_t i = 0; i < t.n; i++)
                assert_true(t.lens[i] > 0 && t.lens[i] <= len);
            tg_texts_destroy(&t);
        }
    }
}

/* ---- multipart ---- */

static const char mp_ct[] = "multipart/form-data; boundary=----XyZ";
static const char mp_body[] = "------XyZ\r\n"
                              "Content-Disposition: form-data; name=\"purpose\"\r\n"
                              "\r\n"
                              "fine-tune\r\n"
                              "------XyZ\r\n"
                              "Content-Disposition: form-data; name=\"file\"; filename=\"d.jsonl\"\r\n"
                              "Content-Type: application/octet-stream\r\n"
                              "\r\n"
                              "{\"text\":\"a\"}\n{\"text\":\"b\"}\n\r\n"
                              "------XyZ--\r\n";

static void test_multipart(void **state)
{
    (void)state;
    tg_multipart_t mp;
    char err[256];
    assert_int_equal(tg_multipart_parse(mp_ct, mp_body, sizeof mp_body - 1, &mp, err, sizeof err), 0);
    assert_int_equal(mp.purpose_len, 9);
    assert_memory_equal(mp.purpose, "fine-tune", 9);
    assert_int_equal(mp.filename_len, 7);
    assert_memory_equal(mp.filename, "d.jsonl", 7);
    assert_int_equal(mp.file_len, 26);
    assert_memory_equal(mp.file, "{\"text\":\"a\"}\n{\"text\":\"b\"}\n", 26);
    /* quoted boundary, preamble */
    const char *ct2 = "multipart/form-data; boundary=\"b1\"";
    const char *b2 = "preamble\r\n--b1\r\nContent-Disposition: form-data; name=file\r\n\r\nX\r\n--b1--";
    assert_int_equal(tg_multipart_parse(ct2, b2, strlen(b2), &mp, err, sizeof err), 0);
    assert_int_equal(mp.file_len, 1);
    assert_null(mp.filename);

    assert_int_equal(tg_multipart_parse("multipart/form-data", mp_body, sizeof mp_body - 1, &mp,
                                        err, sizeof err), -1);
    assert_non_null(strstr(err, "boundary"));
    assert_int_equal(tg_multipart_parse(NULL, mp_body, sizeof mp_body - 1, &mp, err, sizeof err), -1);
    assert_int_equal(tg_multipart_parse(mp_ct, "", 0, &mp, err, sizeof err), -1);
    const char *nofile = "------XyZ\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\n"
                         "fine-tune\r\n------XyZ--\r\n";
    assert_int_equal(tg_multipart_parse(mp_ct, nofile, strlen(nofile), &mp, err, sizeof err), -1);
    assert_non_null(strstr(err, "file"));
    /* every truncation fails cleanly (the closing boundary is needed) */
    size_t n = sizeof mp_body - 1;
    for (size_t k = 0; k + 4 < n; k++) {
        int rc = tg_multipart_parse(mp_ct, mp_body, k, &mp, err, sizeof err);
        if (rc == 0)
            assert_true(mp.file + mp.file_len <= mp_body + k);
    }
    char buf[400];
    for (int round = 0; round < ROUNDS; round++) {
        size_t len = next_rand() % sizeof buf;
        if (round % 2) {
            len = n;
            memcpy(buf, mp_body, n);
            for (int f = 0; f < 4; f++)
                buf[next_rand() % n] = "-\r\n\"=;X"[next_rand() % 7];
        } else {
            for (size_t i = 0; i < len; i++)
                buf[i] = "-\r\nXyZ\":;= "[next_rand() % 11];
        }
        if (tg_multipart_parse(mp_ct, buf, len, &mp, err, sizeof err) == 0) {
            assert_true(mp.file >= buf && mp.file + mp.file_len <= buf + len);
            if (mp.purpose)
                assert_true(mp.purpose + mp.purpose_len <= buf + len);
        }
    }
}

/* ---- small pieces ---- */

static void test_misc(void **state)
{
    (void)state;
    assert_true(tg_model_name_valid("ft-scratch-tiny-abc_1.2"));
    assert_false(tg_model_name_valid(""));
    assert_false(tg_model_name_valid(NULL));
    assert_false(tg_model_name_valid("../etc/passwd"));
    assert_false(tg_model_name_valid("a/b"));
    assert_false(tg_model_name_valid(".hidden"));
    assert_false(tg_model_name_valid("a..b"));
    assert_false(tg_model_name_valid("sp ace"));
    char longname[200];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_false(tg_model_name_valid(longname));

    core_buf_t b;
    core_buf_init(&b);
    tg_sse_append(&b, "{\"a\":1}");
    tg_sse_append(&b, "[DONE]");
    assert_string_equal(b.data, "data: {\"a\":1}\n\ndata: [DONE]\n\n");
    core_buf_destroy(&b);

    assert_true(tg_auth_ok(NULL, NULL));
    assert_true(tg_auth_ok("anything", ""));
    assert_true(tg_auth_ok("Bearer sekrit", "sekrit"));
    assert_false(tg_auth_ok("Bearer sekri", "sekrit"));
    assert_false(tg_auth_ok("Bearer sekritt", "sekrit"));
    assert_false(tg_auth_ok("bearer sekrit", "sekrit"));
    assert_false(tg_auth_ok(NULL, "sekrit"));
    assert_false(tg_auth_ok("Bearer ", "sekrit"));

    tg_error_t e;
    tg_error_set(&e, 404, "model_not_found", "The model '%s' does not exist.", "x\"y");
    char *j = tg_error_json(&e);
    json_t *o = json_loads(j, 0, NULL);
    assert_non_null(o);
    json_t *err = json_object_get(o, "error");
    assert_string_equal(json_string_value(json_object_get(err, "code")), "model_not_found");
    assert_string_equal(json_string_value(json_object_get(err, "message")),
                        "The model 'x\"y' does not exist.");
    assert_true(json_is_null(json_object_get(err, "param")));
    assert_non_null(json_string_value(json_object_get(err, "type")));
    json_decref(o);
    free(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chat_ok),
        cmocka_unit_test(test_chat_bad),
        cmocka_unit_test(test_chat_truncated_random_huge),
        cmocka_unit_test(test_jsonl),
        cmocka_unit_test(test_text_split),
        cmocka_unit_test(test_multipart),
        cmocka_unit_test(test_misc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
