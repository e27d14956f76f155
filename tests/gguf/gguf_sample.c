/* gguf_sample: test tool for the interop check with tests/tools/gguf_read.py. Writes one GGUF
 * file with src/gguf's writer — every value type, arrays of every element type including strings
 * (UTF-8 and binary), tensors of the four types, alignment from argv — and prints to stdout, in
 * gguf_read.py's JSON form, what it meant to write (from its own values, not by reading the file
 * back), so the script can compare an independent reader's view with the writer's intent.
 *
 * usage: gguf_sample OUT.gguf [ALIGNMENT] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/core.h"
#include "gguf/gguf.h"
#include "nn/nn.h"

static core_buf_t js;
static int n_items;

static void sep(void)
{
    if (n_items++)
        core_buf_puts(&js, ", ");
}

/* A GGUF string in gguf_read.py's form: a JSON string when it is UTF-8 without NUL, else
 * {"hex": "..."}. */
static void json_str(const char *s, size_t len)
{
    if (!core_utf8_valid(s, len)) {
        char *hex = xmalloc(2 * len + 1);
        core_hex((const uint8_t *)s, len, hex);
        core_buf_printf(&js, "{\"hex\": \"%s\"}", hex);
        free(hex);
        return;
    }
    core_buf_puts(&js, "\"");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            core_buf_printf(&js, "\\%c", c);
        else if (c < 0x20)
            core_buf_printf(&js, "\\u%04x", c);
        else
            core_buf_append(&js, &s[i], 1);
    }
    core_buf_puts(&js, "\"");
}

static void kv_head(const char *key, const char *type)
{
    sep();
    core_buf_puts(&js, "{\"key\": ");
    json_str(key, strlen(key));
    core_buf_printf(&js, ", \"type\": \"%s\", \"value\": ", type);
}

static void check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "gguf_sample: %s failed\n", what);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: gguf_sample OUT.gguf [ALIGNMENT]\n");
        return 2;
    }
    uint32_t align = argc == 3 ? (uint32_t)strtoul(argv[2], NULL, 10) : 0;
    gguf_writer_t *w = gguf_writer_new();
    core_buf_init(&js);
    core_buf_puts(&js, "{\"version\": 3, \"metadata\": [");

    check(gguf_writer_set_str(w, "general.architecture", "llama", 5), "arch");
    kv_head("general.architecture", "string");
    json_str("llama", 5);
    core_buf_puts(&js, "}");
    if (align) {
        check(gguf_writer_set_u32(w, "general.alignment", align), "alignment");
        kv_head("general.alignment", "u32");
        core_buf_printf(&js, "%u}", align);
    }
    uint8_t u8 = 200;
    int8_t i8 = -7;
    uint16_t u16 = 60000;
    int16_t i16 = -12345;
    int64_t i64 = -1234567890123456789ll;
    double f64 = 6.02214076e23;
    check(gguf_writer_set_val(w, "s.u8", GGUF_UINT8, &u8), "u8");
    kv_head("s.u8", "u8");
    core_buf_printf(&js, "%u}", u8);
    check(gguf_writer_set_val(w, "s.i8", GGUF_INT8, &i8), "i8");
    kv_head("s.i8", "i8");
    core_buf_printf(&js, "%d}", i8);
    check(gguf_writer_set_val(w, "s.u16", GGUF_UINT16, &u16), "u16");
    kv_head("s.u16", "u16");
    core_buf_printf(&js, "%u}", u16);
    check(gguf_writer_set_val(w, "s.i16", GGUF_INT16, &i16), "i16");
    kv_head("s.i16", "i16");
    core_buf_printf(&js, "%d}", i16);
    check(gguf_writer_set_u32(w, "s.u32", 3000000000u), "u32");
    kv_head("s.u32", "u32");
    core_buf_puts(&js, "3000000000}");
    check(gguf_writer_set_i32(w, "s.i32", -3), "i32");
    kv_head("s.i32", "i32");
    core_buf_puts(&js, "-3}");
    check(gguf_writer_set_f32(w, "s.f32", 0.1f), "f32");
    kv_head("s.f32", "f32");
    core_buf_printf(&js, "%.17g}", (double)0.1f);
    check(gguf_writer_set_bool(w, "s.bool", false), "bool");
    kv_head("s.bool", "bool");
    core_buf_puts(&js, "false}");
    const char bin[] = "tab\there \"q\" \\ \xe2\x82\xac";
    check(gguf_writer_set_str(w, "s.str", bin, sizeof bin - 1), "str");
    kv_head("s.str", "string");
    json_str(bin, sizeof bin - 1);
    core_buf_puts(&js, "}");
    check(gguf_writer_set_u64(w, "s.u64", UINT64_MAX), "u64");
    kv_head("s.u64", "u64");
    core_buf_puts(&js, "18446744073709551615}");
    check(gguf_writer_set_val(w, "s.i64", GGUF_INT64, &i64), "i64");
    kv_head("s.i64", "i64");
    core_buf_printf(&js, "%lld}", (long long)i64);
    check(gguf_writer_set_val(w, "s.f64", GGUF_FLOAT64, &f64), "f64");
    kv_head("s.f64", "f64");
    core_buf_printf(&js, "%.17g}", f64);

    /* arrays: one of each element type */
    uint8_t a_u8[] = {0, 128, 255};
    int8_t a_i8[] = {-128, 127};
    uint16_t a_u16[] = {65535, 1};
    int16_t a_i16[] = {-32768, 5};
    uint32_t a_u32[] = {UINT32_MAX, 0, 7};
    int32_t a_i32[] = {INT32_MIN, INT32_MAX};
    float a_f32[] = {-2.5f, 1e-10f};
    uint8_t a_bool[] = {0, 1, 1};
    uint64_t a_u64[] = {1, UINT64_MAX};
    int64_t a_i64[] = {INT64_MIN, 3};
    double a_f64[] = {-0.5, 1e-300};
    check(gguf_writer_set_arr(w, "a.u8", GGUF_UINT8, a_u8, 3), "a.u8");
    kv_head("a.u8", "array");
    core_buf_puts(&js, "{\"type\": \"u8\", \"items\": [0, 128, 255]}}");
    check(gguf_writer_set_arr(w, "a.i8", GGUF_INT8, a_i8, 2), "a.i8");
    kv_head("a.i8", "array");
    core_buf_puts(&js, "{\"type\": \"i8\", \"items\": [-128, 127]}}");
    check(gguf_writer_set_arr(w, "a.u16", GGUF_UINT16, a_u16, 2), "a.u16");
    kv_head("a.u16", "array");
    core_buf_puts(&js, "{\"type\": \"u16\", \"items\": [65535, 1]}}");
    check(gguf_writer_set_arr(w, "a.i16", GGUF_INT16, a_i16, 2), "a.i16");
    kv_head("a.i16", "array");
    core_buf_puts(&js, "{\"type\": \"i16\", \"items\": [-32768, 5]}}");
    check(gguf_writer_set_arr(w, "a.u32", GGUF_UINT32, a_u32, 3), "a.u32");
    kv_head("a.u32", "array");
    core_buf_puts(&js, "{\"type\": \"u32\", \"items\": [4294967295, 0, 7]}}");
    check(gguf_writer_set_arr(w, "a.i32", GGUF_INT32, a_i32, 2), "a.i32");
    kv_head("a.i32", "array");
    core_buf_puts(&js, "{\"type\": \"i32\", \"items\": [-2147483648, 2147483647]}}");
    check(gguf_writer_set_arr(w, "a.f32", GGUF_FLOAT32, a_f32, 2), "a.f32");
    kv_head("a.f32", "array");
    core_buf_printf(&js, "{\"type\": \"f32\", \"items\": [%.17g, %.17g]}}", (double)a_f32[0],
                    (double)a_f32[1]);
    check(gguf_writer_set_arr(w, "a.bool", GGUF_BOOL, a_bool, 3), "a.bool");
    kv_head("a.bool", "array");
    core_buf_puts(&js, "{\"type\": \"bool\", \"items\": [false, true, true]}}");
    check(gguf_writer_set_arr(w, "a.u64", GGUF_UINT64, a_u64, 2), "a.u64");
    kv_head("a.u64", "array");
    core_buf_puts(&js, "{\"type\": \"u64\", \"items\": [1, 18446744073709551615]}}");
    check(gguf_writer_set_arr(w, "a.i64", GGUF_INT64, a_i64, 2), "a.i64");
    kv_head("a.i64", "array");
    core_buf_puts(&js, "{\"type\": \"i64\", \"items\": [-9223372036854775808, 3]}}");
    check(gguf_writer_set_arr(w, "a.f64", GGUF_FLOAT64, a_f64, 2), "a.f64");
    kv_head("a.f64", "array");
    core_buf_printf(&js, "{\"type\": \"f64\", \"items\": [%.17g, %.17g]}}", a_f64[0], a_f64[1]);
    const char *strs[] = {"", "plain", "\xd0\x9f\xd1\x80\xd0\xb8", "nul\0in", "\xff\x80"};
    const size_t lens[] = {0, 5, 6, 6, 2};
    check(gguf_writer_set_arr_str(w, "a.str", strs, lens, 5), "a.str");
    kv_head("a.str", "array");
    core_buf_puts(&js, "{\"type\": \"string\", \"items\": [");
    for (int i = 0; i < 5; i++) {
        if (i)
            core_buf_puts(&js, ", ");
        json_str(strs[i], lens[i]);
    }
    core_buf_puts(&js, "]}}");
    check(gguf_writer_set_arr(w, "a.empty", GGUF_FLOAT32, NULL, 0), "a.empty");
    kv_head("a.empty", "array");
    core_buf_puts(&js, "{\"type\": \"f32\", \"items\": []}}");

    /* tensors of the four types; data is a deterministic byte pattern */
    struct {
        const char *name;
        uint32_t type, n_dims;
        uint64_t ne[4];
    } ts[] = {
        {"token_embd.weight", NN_F32, 2, {8, 3, 1, 1}},
        {"blk.0.attn_q.weight", NN_F16, 2, {16, 4, 1, 1}},
        {"blk.0.ffn_up.weight", NN_Q8_0, 3, {64, 2, 3, 1}},
        {"output.weight", NN_Q4_0, 4, {32, 2, 2, 2}},
    };
    core_buf_puts(&js, "], \"tensors\": [");
    n_items = 0;
    uint64_t off = 0, a = align ? align : 32;
    uint8_t *datas[4];
    for (int i = 0; i < 4; i++) {
        size_t size = nn_row_bytes((nn_type_t)ts[i].type, ts[i].ne[0]) * ts[i].ne[1] *
                      ts[i].ne[2] * ts[i].ne[3];
        datas[i] = xmalloc(size);
        for (size_t j = 0; j < size; j++)
            datas[i][j] = (uint8_t)(j * 31 + (size_t)i * 17 + (j >> 8));
        check(gguf_writer_add_tensor(w, ts[i].name, ts[i].type, ts[i].n_dims, ts[i].ne, datas[i]),
              ts[i].name);
        unsigned char md[32];
        unsigned int mdlen = 0;
        EVP_Digest(datas[i], size, md, &mdlen, EVP_sha256(), NULL);
        char hex[65];
        core_hex(md, 32, hex);
        sep();
        core_buf_printf(&js, "{\"name\": \"%s\", \"type\": %u, \"dims\": [", ts[i].name,
                        ts[i].type);
        for (uint32_t d = 0; d < ts[i].n_dims; d++)
            core_buf_printf(&js, "%s%llu", d ? ", " : "", (unsigned long long)ts[i].ne[d]);
        core_buf_printf(&js, "], \"offset\": %llu, \"size\": %zu, \"sha256\": \"%s\"}",
                        (unsigned long long)off, size, hex);
        off = (off + size + a - 1) / a * a;
    }
    core_buf_printf(&js, "], \"alignment\": %llu}\n", (unsigned long long)a);

    char err[256];
    if (gguf_writer_write(w, argv[1], err, sizeof err) < 0) {
        fprintf(stderr, "gguf_sample: %s\n", err);
        return 1;
    }
    fputs(js.data, stdout);
    gguf_writer_free(&w);
    for (int i = 0; i < 4; i++)
        free(datas[i]);
    core_buf_destroy(&js);
    return 0;
}
