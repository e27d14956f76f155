/* test_gguf: unit tests of src/gguf — write -> read round trips (every value type, arrays of every
 * element type including strings, tensors of the four types, alignment 64), re-writing what was
 * read gives the same bytes, writer semantics (insertion order, replace in place, padding, atomic
 * write), and the reader against damaged input: every truncation and every flipped byte of a
 * valid file, random bytes and random mutations, empty input, and hand-made files with huge
 * counts and lengths, offsets past the end, misaligned and overlapping tensors, unknown types,
 * versions 1 and 4. Damaged input must fail with a reason and never read out of bounds: each
 * buffer is its own malloc of exactly its size, so ASan sees any over-read.
 *
 * Files go under $PERSONA_TEST_TMP (a fresh folder per run). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "gguf/gguf.h"
#include "nn/nn.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

/* ==================================================================================== */
/* helpers                                                                               */
/* ==================================================================================== */

static char *g_dir;

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static char *tmp_path(const char *name)
{
    return xasprintf("%s/%s", g_dir, name);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
    /* xorshift64*: fixed seed, so a failure reproduces */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static void read_whole(const char *path, uint8_t **data, size_t *len)
{
    char *buf = NULL;
    assert_int_equal(core_read_file(path, 1 << 30, &buf, len), 0);
    *data = (uint8_t *)buf;
}

/* Opens a private copy of exactly n bytes: any read past them is an ASan error. Returns rc and
 * checks that a failure came with a reason. */
static int open_copy(const uint8_t *data, size_t n, char *err, size_t errlen)
{
    uint8_t *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    if (n)
        memcpy(copy, data, n);
    gguf_t *g = NULL;
    err[0] = '\0';
    int rc = gguf_open_memory(copy, n, &g, err, errlen);
    if (rc == 0) {
        assert_non_null(g);
        /* touch everything the accessors hand out */
        for (size_t i = 0; i < gguf_kv_count(g); i++) {
            const char *k = gguf_kv_key(g, i);
            assert_non_null(k);
            assert_int_equal(gguf_find_key(g, k), (int)i);
            size_t cnt;
            if (gguf_get_arr_str_count(g, k, &cnt))
                for (size_t j = 0; j < cnt; j++) {
                    const char *s;
                    size_t len;
                    assert_true(gguf_get_arr_str(g, k, j, &s, &len));
                    volatile uint8_t x = 0;
                    for (size_t b = 0; b < len; b++)
                        x ^= (uint8_t)s[b];
                    (void)x;
                }
        }
        for (size_t i = 0; i < gguf_tensor_count(g); i++) {
            const gguf_tensor_t *t = gguf_tensor(g, i);
            volatile uint8_t x = 0;
            x ^= ((const uint8_t *)t->data)[0];
            x ^= ((const uint8_t *)t->data)[t->size - 1];
            (void)x;
            assert_ptr_equal(gguf_find_tensor(g, t->name), t);
        }
        gguf_close(&g);
    } else {
        assert_true(rc < 0);
        assert_null(g);
        assert_true(err[0] != '\0');
    }
    free(copy);
    return rc;
}

/* ==================================================================================== */
/* a sample file with every kind of value and tensor                                    */
/* ==================================================================================== */

enum { T_ROWS = 3, T_COLS = 64 };
static float f32_data[T_ROWS * T_COLS];
static nn_f16_t f16_data[T_COLS * 2];
static uint8_t q8_data[34 * 2 * 2 * 2];   /* ne = {64, 2, 2}: 2 blocks per row, 4 rows */
static uint8_t q4_data[18 * 1 * 5];       /* ne = {32, 5} */

static const char *strs[] = {"", "hello", "wörld", "\xff\xfe binary", "x"};
static const size_t strs_len[] = {0, 5, 6, 10, 1};
static const char bin_str[] = {'a', 0, 'b', (char)0xc3};

static void fill_data(void)
{
    for (size_t i = 0; i < sizeof f32_data / sizeof f32_data[0]; i++)
        f32_data[i] = (float)i * 0.25f - 3.0f;
    for (size_t i = 0; i < sizeof f16_data / sizeof f16_data[0]; i++)
        f16_data[i] = (nn_f16_t)(0x3c00 + i);
    for (size_t i = 0; i < sizeof q8_data; i++)
        q8_data[i] = (uint8_t)(i * 7 + 1);
    for (size_t i = 0; i < sizeof q4_data; i++)
        q4_data[i] = (uint8_t)(i * 13 + 5);
}

static gguf_writer_t *sample_writer(uint32_t alignment)
{
    fill_data();
    gguf_writer_t *w = gguf_writer_new();
    assert_non_null(w);
    assert_int_equal(gguf_writer_set_str(w, "general.architecture", "llama", 5), 0);
    if (alignment)
        assert_int_equal(gguf_writer_set_u32(w, "general.alignment", alignment), 0);
    uint8_t u8 = 250;
    int8_t i8 = -100;
    uint16_t u16 = 65000;
    int16_t i16 = -32000;
    int64_t i64 = INT64_MIN + 5;
    double f64 = -1.0 / 3.0;
    assert_int_equal(gguf_writer_set_val(w, "t.u8", GGUF_UINT8, &u8), 0);
    assert_int_equal(gguf_writer_set_val(w, "t.i8", GGUF_INT8, &i8), 0);
    assert_int_equal(gguf_writer_set_val(w, "t.u16", GGUF_UINT16, &u16), 0);
    assert_int_equal(gguf_writer_set_val(w, "t.i16", GGUF_INT16, &i16), 0);
    assert_int_equal(gguf_writer_set_u32(w, "t.u32", 4000000000u), 0);
    assert_int_equal(gguf_writer_set_i32(w, "t.i32", -2000000000), 0);
    assert_int_equal(gguf_writer_set_f32(w, "t.f32", 1.5f), 0);
    assert_int_equal(gguf_writer_set_bool(w, "t.bool", true), 0);
    assert_int_equal(gguf_writer_set_str(w, "t.str", bin_str, sizeof bin_str), 0);
    assert_int_equal(gguf_writer_set_u64(w, "t.u64", UINT64_MAX), 0);
    assert_int_equal(gguf_writer_set_val(w, "t.i64", GGUF_INT64, &i64), 0);
    assert_int_equal(gguf_writer_set_val(w, "t.f64", GGUF_FLOAT64, &f64), 0);

    uint8_t a_u8[] = {0, 1, 255};
    int8_t a_i8[] = {-128, 0, 127};
    uint16_t a_u16[] = {1, 65535};
    int16_t a_i16[] = {-32768, 32767};
    uint32_t a_u32[] = {0, 1, UINT32_MAX};
    int32_t a_i32[] = {INT32_MIN, -1, INT32_MAX};
    float a_f32[] = {0.0f, -0.0f, 1e-30f, 3.4e38f};
    uint8_t a_bool[] = {1, 0, 1};
    uint64_t a_u64[] = {UINT64_MAX, 0};
    int64_t a_i64[] = {INT64_MIN, INT64_MAX};
    double a_f64[] = {1e300, -2.5};
    assert_int_equal(gguf_writer_set_arr(w, "a.u8", GGUF_UINT8, a_u8, 3), 0);
    assert_int_equal(gguf_writer_set_arr(w, "a.i8", GGUF_INT8, a_i8, 3), 0);
    assert_int_equal(gguf_writer_set_arr(w, "a.u16", GGUF_UINT16, a_u16, 2), 0);
    assert_int_equal(gguf_writer_set_arr(w, "a.i16", GGUF_INT16, a_i16, 2), 0);
    assert_int_equal(gguf_writer_set_arr(w, "a.u32", GGUF_UINT32, a_u32, 3), 0);
    assert_int_equal(gguf_writer_set_arr(w, "a.i32", GGUF_INT32, a_i32, 3), 0);
    assert_int_equal(gguf_writer_set_arr(w, "a.f32", GGUF_FLOAT32, a_f32, 4), 0);
    assert_int_equal(gguf_writer_set_arr(w, "a.bool", GGUF_BOOL, a_bool, 3), 0);
    assert_int_equal(gguf_writer_set_arr(w, "a.u64", GGUF_UINT64, a_u64, 2), 0);
    assert_int_equal(gguf_writer_set_arr(w, "a.i64", GGUF_INT64, a_i64, 2), 0);
    assert_int_equal(gguf_writer_set_arr(w, "a.f64", GGUF_FLOAT64, a_f64, 2), 0);
    assert_int_equal(gguf_writer_set_arr(w, "a.empty", GGUF_INT32, NULL, 0), 0);
    assert_int_equal(gguf_writer_set_arr_str(w, "a.str", strs, strs_len, 5), 0);

    uint64_t ne_f32[] = {T_COLS, T_ROWS}, ne_f16[] = {T_COLS, 2}, ne_q8[] = {64, 2, 2},
             ne_q4[] = {32, 5};
    assert_int_equal(gguf_writer_add_tensor(w, "w.f32", NN_F32, 2, ne_f32, f32_data), 0);
    assert_int_equal(gguf_writer_add_tensor(w, "w.f16", NN_F16, 2, ne_f16, f16_data), 0);
    assert_int_equal(gguf_writer_add_tensor(w, "w.q8_0", NN_Q8_0, 3, ne_q8, q8_data), 0);
    assert_int_equal(gguf_writer_add_tensor(w, "w.q4_0", NN_Q4_0, 2, ne_q4, q4_data), 0);
    return w;
}

static void write_sample(const char *path, uint32_t alignment)
{
    gguf_writer_t *w = sample_writer(alignment);
    char err[256];
    assert_int_equal(gguf_writer_write(w, path, err, sizeof err), 0);
    gguf_writer_free(&w);
    assert_null(w);
}

static void check_sample(const gguf_t *g, size_t align)
{
    assert_int_equal(gguf_version(g), 3);
    assert_int_equal(gguf_alignment(g), align);
    assert_int_equal(gguf_kv_count(g), align != 32 ? 27 : 26);
    assert_string_equal(gguf_kv_key(g, 0), "general.architecture");
    const char *s;
    size_t len;
    assert_true(gguf_get_str(g, "general.architecture", &s, &len));
    assert_int_equal(len, 5);
    assert_memory_equal(s, "llama", 5);
    assert_true(gguf_get_str(g, "t.str", &s, &len));
    assert_int_equal(len, sizeof bin_str);
    assert_memory_equal(s, bin_str, sizeof bin_str);

    uint32_t u32;
    int64_t i64;
    float f;
    double d;
    bool b;
    assert_true(gguf_get_u32(g, "t.u8", &u32) && u32 == 250);
    assert_true(gguf_get_i64(g, "t.i8", &i64) && i64 == -100);
    assert_false(gguf_get_u32(g, "t.i8", &u32)); /* negative: does not fit */
    assert_true(gguf_get_u32(g, "t.u16", &u32) && u32 == 65000);
    assert_true(gguf_get_i64(g, "t.i16", &i64) && i64 == -32000);
    assert_true(gguf_get_u32(g, "t.u32", &u32) && u32 == 4000000000u);
    assert_true(gguf_get_i64(g, "t.i32", &i64) && i64 == -2000000000);
    assert_true(gguf_get_f32(g, "t.f32", &f) && f == 1.5f);
    assert_true(gguf_get_bool(g, "t.bool", &b) && b);
    assert_false(gguf_get_i64(g, "t.u64", &i64)); /* UINT64_MAX does not fit */
    assert_false(gguf_get_u32(g, "t.u64", &u32));
    assert_true(gguf_get_i64(g, "t.i64", &i64) && i64 == INT64_MIN + 5);
    assert_true(gguf_get_f64(g, "t.f64", &d) && d == -1.0 / 3.0);
    assert_false(gguf_get_f32(g, "t.u32", &f)); /* wrong type */
    assert_false(gguf_get_str(g, "t.u32", &s, &len));
    assert_false(gguf_get_bool(g, "missing", &b));
    assert_int_equal(gguf_find_key(g, "missing"), -1);
    assert_int_equal(gguf_kv_type(g, (size_t)gguf_find_key(g, "t.i16")), GGUF_INT16);

    gguf_vtype_t et;
    size_t n;
    const void *data;
    assert_true(gguf_get_arr(g, "a.i64", &et, &n, &data));
    assert_int_equal(et, GGUF_INT64);
    assert_int_equal(n, 2);
    int64_t v64[2];
    memcpy(v64, data, sizeof v64);
    assert_true(v64[0] == INT64_MIN && v64[1] == INT64_MAX);
    assert_true(gguf_get_arr(g, "a.f32", &et, &n, &data));
    float vf[4];
    memcpy(vf, data, sizeof vf);
    assert_true(et == GGUF_FLOAT32 && n == 4 && vf[3] == 3.4e38f && signbit(vf[1]));
    assert_true(gguf_get_arr(g, "a.empty", &et, &n, &data) && n == 0 && et == GGUF_INT32);
    assert_false(gguf_get_arr(g, "a.str", &et, &n, &data)); /* strings have their own getter */
    assert_true(gguf_get_arr_str_count(g, "a.str", &n) && n == 5);
    for (size_t i = 0; i < 5; i++) {
        assert_true(gguf_get_arr_str(g, "a.str", i, &s, &len));
        assert_int_equal(len, strs_len[i]);
        assert_memory_equal(s, strs[i], len);
    }
    assert_false(gguf_get_arr_str(g, "a.str", 5, &s, &len));

    assert_int_equal(gguf_tensor_count(g), 4);
    const gguf_tensor_t *t = gguf_find_tensor(g, "w.f32");
    assert_non_null(t);
    assert_int_equal(t->type, NN_F32);
    assert_int_equal(t->n_dims, 2);
    assert_true(t->ne[0] == T_COLS && t->ne[1] == T_ROWS && t->ne[2] == 1 && t->ne[3] == 1);
    assert_int_equal(t->size, sizeof f32_data);
    assert_memory_equal(t->data, f32_data, sizeof f32_data);
    t = gguf_find_tensor(g, "w.f16");
    assert_true(t && t->type == NN_F16 && t->size == sizeof f16_data);
    assert_memory_equal(t->data, f16_data, sizeof f16_data);
    t = gguf_find_tensor(g, "w.q8_0");
    assert_true(t && t->type == NN_Q8_0 && t->n_dims == 3 && t->size == sizeof q8_data);
    assert_memory_equal(t->data, q8_data, sizeof q8_data);
    t = gguf_find_tensor(g, "w.q4_0");
    assert_true(t && t->type == NN_Q4_0 && t->ne[1] == 5 && t->size == sizeof q4_data);
    assert_memory_equal(t->data, q4_data, sizeof q4_data);
    assert_null(gguf_find_tensor(g, "w.none"));
    for (size_t i = 0; i < 4; i++)
        assert_int_equal((uintptr_t)((const uint8_t *)gguf_tensor(g, i)->data -
                                     (const uint8_t *)gguf_tensor(g, 0)->data) % align, 0);
    assert_string_equal(gguf_tensor(g, 0)->name, "w.f32"); /* insertion order */
    assert_string_equal(gguf_tensor(g, 3)->name, "w.q4_0");
}

/* ==================================================================================== */
/* round trips                                                                          */
/* ==================================================================================== */

static void test_roundtrip(void **state)
{
    (void)state;
    uint32_t aligns[] = {0, 64, 1, 4096};
    for (size_t a = 0; a < 4; a++) {
        char *p1 = tmp_path("rt1.gguf"), *p2 = tmp_path("rt2.gguf");
        write_sample(p1, aligns[a]);
        size_t align = aligns[a] ? aligns[a] : 32;
        gguf_t *g = NULL;
        char err[256];
        assert_int_equal(gguf_open(p1, &g, err, sizeof err), 0);
        check_sample(g, align);

        /* copy everything into a new writer: the bytes must come out identical */
        gguf_writer_t *w = gguf_writer_new();
        assert_int_equal(gguf_writer_copy_kv(w, g, NULL), 0);
        for (size_t i = 0; i < gguf_tensor_count(g); i++) {
            const gguf_tensor_t *t = gguf_tensor(g, i);
            assert_int_equal(gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data),
                             0);
        }
        assert_int_equal(gguf_writer_write(w, p2, err, sizeof err), 0);
        gguf_writer_free(&w);
        uint8_t *b1, *b2;
        size_t n1, n2;
        read_whole(p1, &b1, &n1);
        read_whole(p2, &b2, &n2);
        assert_int_equal(n1, n2);
        assert_memory_equal(b1, b2, n1);
        /* the file ends at the padded end of the last tensor, and the padding is zeros */
        assert_int_equal(n1 % align, 0);
        const gguf_tensor_t *last = gguf_tensor(g, 3);
        gguf_t *g2 = NULL;
        assert_int_equal(gguf_open_memory(b1, n1, &g2, err, sizeof err), 0);
        last = gguf_tensor(g2, 3);
        size_t end = (size_t)((const uint8_t *)last->data - b1) + last->size;
        assert_true(end <= n1 && n1 - end < align);
        for (size_t i = end; i < n1; i++)
            assert_int_equal(b1[i], 0);
        for (size_t i = 0; i < 4; i++)
            assert_int_equal((size_t)((const uint8_t *)gguf_tensor(g2, i)->data - b1) % align, 0);
        gguf_close(&g2);
        free(b1);
        free(b2);
        gguf_close(&g);
        assert_null(g);
        free(p1);
        free(p2);
    }
}

static bool skip_t(const char *key)
{
    return key[0] == 't';
}

static void test_writer_semantics(void **state)
{
    (void)state;
    char err[256];
    char *p = tmp_path("sem.gguf");
    gguf_writer_t *w = gguf_writer_new();
    assert_int_equal(gguf_writer_set_u32(w, "b", 1), 0);
    assert_int_equal(gguf_writer_set_str(w, "a", "x", 1), 0);
    assert_int_equal(gguf_writer_set_u32(w, "c", 3), 0);
    /* a repeated key replaces its value where it stands, even with another type */
    assert_int_equal(gguf_writer_set_str(w, "b", "two", 3), 0);
    /* bad arguments */
    assert_int_equal(gguf_writer_set_u32(w, "general.alignment", 48), -1);
    assert_int_equal(gguf_writer_set_u32(w, "general.alignment", 0), -1);
    assert_int_equal(gguf_writer_set_u32(w, "", 1), -1);
    assert_int_equal(gguf_writer_set_u32(w, NULL, 1), -1);
    assert_int_equal(gguf_writer_set_arr(w, "x", GGUF_STRING, "a", 1), -1);
    assert_int_equal(gguf_writer_set_arr(w, "x", GGUF_ARRAY, "a", 1), -1);
    uint8_t bad_bool = 2;
    assert_int_equal(gguf_writer_set_val(w, "x", GGUF_BOOL, &bad_bool), -1);
    assert_int_equal(gguf_writer_set_val(w, "x", GGUF_STRING, "a"), -1);
    uint64_t ne[] = {31, 1};
    float fdata[64] = {0};
    assert_int_equal(gguf_writer_add_tensor(w, "q", NN_Q8_0, 1, ne, fdata), -1); /* not a block */
    assert_int_equal(gguf_writer_add_tensor(w, "q", 7, 1, ne, fdata), -1);       /* unknown type */
    assert_int_equal(gguf_writer_add_tensor(w, "q", NN_F32, 0, ne, fdata), -1);
    assert_int_equal(gguf_writer_add_tensor(w, "q", NN_F32, 5, ne, fdata), -1);
    uint64_t ne0[] = {0};
    assert_int_equal(gguf_writer_add_tensor(w, "q", NN_F32, 1, ne0, fdata), -1);
    char longname[80];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(gguf_writer_add_tensor(w, longname, NN_F32, 1, ne, fdata), -1);
    longname[63] = '\0';
    assert_int_equal(gguf_writer_add_tensor(w, longname, NN_F32, 1, ne, fdata), 0);
    assert_int_equal(gguf_writer_add_tensor(w, longname, NN_F32, 1, ne, fdata), -1); /* dup */
    assert_int_equal(gguf_writer_write(w, p, err, sizeof err), 0);
    gguf_writer_free(&w);

    gguf_t *g = NULL;
    assert_int_equal(gguf_open(p, &g, err, sizeof err), 0);
    assert_int_equal(gguf_kv_count(g), 3);
    assert_string_equal(gguf_kv_key(g, 0), "b");
    assert_string_equal(gguf_kv_key(g, 1), "a");
    assert_string_equal(gguf_kv_key(g, 2), "c");
    const char *s;
    size_t len;
    assert_true(gguf_get_str(g, "b", &s, &len) && len == 3 && !memcmp(s, "two", 3));
    assert_int_equal(gguf_tensor(g, 0)->size, 31 * 4);

    /* copy_kv with a filter, and a copied key replaced afterwards */
    w = gguf_writer_new();
    assert_int_equal(gguf_writer_set_u32(w, "t.first", 1), 0);
    assert_int_equal(gguf_writer_copy_kv(w, g, skip_t), 0);
    assert_int_equal(gguf_writer_set_u32(w, "a", 9), 0);
    char *p2 = tmp_path("sem2.gguf");
    assert_int_equal(gguf_writer_write(w, p2, err, sizeof err), 0);
    gguf_writer_free(&w);
    gguf_close(&g);
    assert_int_equal(gguf_open(p2, &g, err, sizeof err), 0);
    assert_int_equal(gguf_kv_count(g), 4);
    assert_string_equal(gguf_kv_key(g, 0), "t.first");
    assert_string_equal(gguf_kv_key(g, 2), "a");
    uint32_t u;
    assert_true(gguf_get_u32(g, "a", &u) && u == 9);
    assert_int_equal(gguf_tensor_count(g), 0);
    gguf_close(&g);

    /* a failed write leaves nothing behind */
    w = gguf_writer_new();
    char *bad = tmp_path("no/such/dir/x.gguf");
    assert_int_equal(gguf_writer_write(w, bad, err, sizeof err), -1);
    assert_true(err[0] != '\0');
    /* a non-u32 alignment that slipped in through set_val is refused at write time */
    uint64_t a64 = 64;
    assert_int_equal(gguf_writer_set_val(w, "general.alignment", GGUF_UINT64, &a64), 0);
    assert_int_equal(gguf_writer_write(w, p2, err, sizeof err), -1);
    assert_non_null(strstr(err, "alignment"));
    gguf_writer_free(&w);
    gguf_writer_free(&w); /* NULL-safe */
    gguf_close(&g);
    DIR *d = opendir(g_dir);
    struct dirent *de;
    while ((de = readdir(d)))
        assert_null(strstr(de->d_name, ".tmp-"));
    closedir(d);
    free(bad);
    free(p);
    free(p2);
}

/* ==================================================================================== */
/* damaged input                                                                        */
/* ==================================================================================== */

static void sample_bytes(uint8_t **data, size_t *len, size_t *needed)
{
    char *p = tmp_path("fuzz.gguf");
    write_sample(p, 0);
    read_whole(p, data, len);
    gguf_t *g = NULL;
    char err[256];
    assert_int_equal(gguf_open_memory(*data, *len, &g, err, sizeof err), 0);
    const gguf_tensor_t *last = gguf_tensor(g, gguf_tensor_count(g) - 1);
    *needed = (size_t)((const uint8_t *)last->data - *data) + last->size;
    gguf_close(&g);
    free(p);
}

static void test_truncated(void **state)
{
    (void)state;
    uint8_t *data;
    size_t len, needed;
    char err[256];
    sample_bytes(&data, &len, &needed);
    for (size_t n = 0; n < len; n++) {
        int rc = open_copy(data, n, err, sizeof err);
        if (n < needed)
            assert_true(rc < 0);
        else
            assert_int_equal(rc, 0); /* only the last tensor's zero padding is missing */
    }
    assert_int_equal(open_copy(data, 0, err, sizeof err), -EINVAL);
    assert_string_equal(err, "empty file");
    free(data);
}

static void test_flipped(void **state)
{
    (void)state;
    uint8_t *data;
    size_t len, needed;
    char err[256];
    sample_bytes(&data, &len, &needed);
    const uint8_t xors[] = {0xff, 0x01, 0x80, 0x40};
    size_t ok = 0, failed = 0;
    for (size_t x = 0; x < sizeof xors; x++)
        for (size_t i = 0; i < len; i++) {
            data[i] ^= xors[x];
            if (open_copy(data, len, err, sizeof err) == 0)
                ok++;
            else
                failed++;
            data[i] ^= xors[x];
        }
    /* both outcomes must occur: flips in tensor data are harmless, flips in counts are not */
    assert_true(ok > 0 && failed > 0);
    free(data);
}

static void test_random(void **state)
{
    (void)state;
    uint8_t *data;
    size_t len, needed;
    char err[256];
    sample_bytes(&data, &len, &needed);
    int iters = SANITIZED ? 3000 : 20000;
    uint8_t *buf = malloc(len + 64);
    for (int it = 0; it < iters; it++) {
        size_t n;
        if (it % 3 == 0) {
            /* pure noise, sometimes behind a valid header so the parser gets past it */
            n = rnd() % 512;
            for (size_t i = 0; i < n; i++)
                buf[i] = (uint8_t)rnd();
            if (it % 2 && n >= 24) {
                memcpy(buf, "GGUF\x03\0\0\0", 8);
                uint64_t nt = rnd() % 4, nk = rnd() % 6;
                memcpy(buf + 8, &nt, 8);
                memcpy(buf + 16, &nk, 8);
            }
        } else {
            /* a few random mutations of the valid file */
            n = len;
            memcpy(buf, data, len);
            int k = 1 + (int)(rnd() % 4);
            for (int j = 0; j < k; j++) {
                size_t at = rnd() % len;
                switch (rnd() % 3) {
                case 0: buf[at] = (uint8_t)rnd(); break;
                case 1: buf[at] ^= (uint8_t)(1u << (rnd() % 8)); break;
                default: /* overwrite 8 bytes with a boundary value */
                    if (at + 8 <= len) {
                        static const uint64_t vals[] = {0, 1, 0xffffffffffffffffull,
                                                        0x7fffffffffffffffull, 0x100000000ull,
                                                        32, 31, 1u << 30};
                        memcpy(buf + at, &vals[rnd() % 8], 8);
                    }
                }
            }
            if (rnd() % 4 == 0)
                n = rnd() % (len + 1);
        }
        (void)open_copy(buf, n, err, sizeof err);
    }
    free(buf);
    free(data);
}

/* Hand-made files: a tiny builder for raw bytes. */
static void put32(core_buf_t *b, uint32_t v)
{
    core_buf_append(b, &v, 4);
}
static void put64(core_buf_t *b, uint64_t v)
{
    core_buf_append(b, &v, 8);
}
static void putstr(core_buf_t *b, const char *s)
{
    put64(b, strlen(s));
    core_buf_puts(b, s);
}
static void header(core_buf_t *b, uint32_t version, uint64_t nt, uint64_t nkv)
{
    core_buf_reset(b);
    core_buf_append(b, "GGUF", 4);
    put32(b, version);
    put64(b, nt);
    put64(b, nkv);
}
static void tinfo(core_buf_t *b, const char *name, uint32_t type, uint64_t ne0, uint64_t ne1,
                  uint64_t off)
{
    putstr(b, name);
    put32(b, 2);
    put64(b, ne0);
    put64(b, ne1);
    put32(b, type);
    put64(b, off);
}
static void pad_to(core_buf_t *b, size_t align)
{
    while (b->len % align)
        core_buf_append(b, "", 1);
}
static void zeros(core_buf_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        core_buf_append(b, "", 1);
}

static void expect_fail(core_buf_t *b, const char *reason)
{
    char err[256];
    int rc = open_copy((const uint8_t *)b->data, b->len, err, sizeof err);
    if (rc == 0 || !strstr(err, reason))
        fail_msg("expected failure '%s', got rc=%d err='%s'", reason, rc, err);
}

static void expect_ok(core_buf_t *b)
{
    char err[256];
    int rc = open_copy((const uint8_t *)b->data, b->len, err, sizeof err);
    if (rc != 0)
        fail_msg("expected success, got '%s'", err);
}

static void test_handmade(void **state)
{
    (void)state;
    core_buf_t b;
    core_buf_init(&b);

    /* a valid minimal file with two tensors, as the base of the variations */
    header(&b, 3, 2, 0);
    tinfo(&b, "a", NN_F32, 4, 2, 0);
    tinfo(&b, "b", NN_F32, 8, 1, 32);
    pad_to(&b, 32);
    zeros(&b, 64);
    expect_ok(&b);
    header(&b, 2, 0, 0); /* version 2 reads too */
    expect_ok(&b);

    header(&b, 1, 0, 0);
    expect_fail(&b, "unsupported GGUF version 1");
    header(&b, 4, 0, 0);
    expect_fail(&b, "unsupported GGUF version 4");
    header(&b, 0x03000000, 0, 0);
    expect_fail(&b, "big-endian");
    core_buf_reset(&b);
    core_buf_puts(&b, "GGUX\x03\0\0\0");
    expect_fail(&b, "bad magic");
    core_buf_reset(&b);
    core_buf_puts(&b, "GG");
    expect_fail(&b, "bad magic");

    /* huge counts */
    header(&b, 3, UINT64_MAX, 0);
    expect_fail(&b, "over the limit");
    header(&b, 3, 0, (uint64_t)1 << 40);
    expect_fail(&b, "over the limit");
    header(&b, 3, 1000, 1000); /* within limits, but the file cannot hold them */
    expect_fail(&b, "larger than the file");

    /* huge string length */
    header(&b, 3, 0, 1);
    put64(&b, UINT64_MAX);
    core_buf_puts(&b, "key and then some padding to look plausible");
    expect_fail(&b, "over the limit");
    header(&b, 3, 0, 1);
    put64(&b, 1000);
    core_buf_puts(&b, "short key, and more bytes after it");
    expect_fail(&b, "past the end");
    /* empty key, key with NUL */
    header(&b, 3, 0, 1);
    putstr(&b, "");
    put32(&b, GGUF_UINT8);
    core_buf_append(&b, "\1", 1);
    zeros(&b, 16);
    expect_fail(&b, "empty");
    header(&b, 3, 0, 1);
    put64(&b, 3);
    core_buf_append(&b, "a\0b", 3);
    put32(&b, GGUF_UINT8);
    core_buf_append(&b, "\1", 1);
    zeros(&b, 16);
    expect_fail(&b, "NUL");

    /* huge array lengths, of numbers and of strings; nested and unknown element types */
    const uint32_t elems[] = {GGUF_UINT8, GGUF_UINT64, GGUF_STRING};
    for (int i = 0; i < 3; i++) {
        header(&b, 3, 0, 1);
        putstr(&b, "arr");
        put32(&b, GGUF_ARRAY);
        put32(&b, elems[i]);
        put64(&b, (uint64_t)1 << 62);
        zeros(&b, 64);
        expect_fail(&b, "past the end");
    }
    header(&b, 3, 0, 1);
    putstr(&b, "arr");
    put32(&b, GGUF_ARRAY);
    put32(&b, GGUF_ARRAY);
    put64(&b, 1);
    zeros(&b, 64);
    expect_fail(&b, "nested");
    header(&b, 3, 0, 1);
    putstr(&b, "arr");
    put32(&b, GGUF_ARRAY);
    put32(&b, 13);
    put64(&b, 1);
    zeros(&b, 64);
    expect_fail(&b, "unknown element type 13");
    header(&b, 3, 0, 1);
    putstr(&b, "v");
    put32(&b, 99);
    zeros(&b, 64);
    expect_fail(&b, "unknown value type 99");
    header(&b, 3, 0, 1);
    putstr(&b, "v");
    put32(&b, GGUF_BOOL);
    core_buf_append(&b, "\2", 1);
    zeros(&b, 16);
    expect_fail(&b, "bool");

    /* duplicate keys; bad alignments */
    header(&b, 3, 0, 2);
    putstr(&b, "k");
    put32(&b, GGUF_UINT8);
    core_buf_append(&b, "\1", 1);
    putstr(&b, "k");
    put32(&b, GGUF_UINT8);
    core_buf_append(&b, "\1", 1);
    expect_fail(&b, "duplicate key");
    const uint32_t aligns[] = {0, 3, 48, 0x80000000u};
    for (int i = 0; i < 4; i++) {
        header(&b, 3, 0, 1);
        putstr(&b, "general.alignment");
        put32(&b, GGUF_UINT32);
        put32(&b, aligns[i]);
        expect_fail(&b, "alignment");
    }
    header(&b, 3, 0, 1);
    putstr(&b, "general.alignment");
    put32(&b, GGUF_UINT64);
    put64(&b, 32);
    expect_fail(&b, "alignment");

    /* tensors: offsets past the end, misaligned, overlapping; unknown types; bad shapes */
    header(&b, 3, 1, 0);
    tinfo(&b, "a", NN_F32, 4, 2, 64);
    pad_to(&b, 32);
    zeros(&b, 64);
    expect_fail(&b, "past the end");
    header(&b, 3, 1, 0);
    tinfo(&b, "a", NN_F32, 4, 2, UINT64_MAX - 31);
    pad_to(&b, 32);
    zeros(&b, 64);
    expect_fail(&b, "past the end");
    header(&b, 3, 1, 0);
    tinfo(&b, "a", NN_F32, 4, 2, 8);
    pad_to(&b, 32);
    zeros(&b, 64);
    expect_fail(&b, "not a multiple of the alignment");
    header(&b, 3, 2, 0);
    tinfo(&b, "a", NN_F32, 16, 1, 0);
    tinfo(&b, "b", NN_F32, 4, 1, 32);
    pad_to(&b, 32);
    zeros(&b, 128);
    expect_fail(&b, "overlap");
    header(&b, 3, 2, 0);
    tinfo(&b, "a", NN_F32, 4, 1, 0);
    tinfo(&b, "a", NN_F32, 4, 1, 32);
    pad_to(&b, 32);
    zeros(&b, 128);
    expect_fail(&b, "duplicate tensor");
    const uint32_t types[] = {3, 7, 9, 30, 0xffffffffu};
    for (int i = 0; i < 5; i++) {
        header(&b, 3, 1, 0);
        tinfo(&b, "a", types[i], 32, 1, 0);
        pad_to(&b, 32);
        zeros(&b, 256);
        expect_fail(&b, "unsupported type");
    }
    header(&b, 3, 1, 0);
    tinfo(&b, "a", NN_Q8_0, 16, 1, 0); /* half a block */
    pad_to(&b, 32);
    zeros(&b, 64);
    expect_fail(&b, "whole blocks");
    header(&b, 3, 1, 0);
    tinfo(&b, "a", NN_F32, 0, 1, 0);
    pad_to(&b, 32);
    zeros(&b, 64);
    expect_fail(&b, "dimension 0");
    header(&b, 3, 1, 0);
    tinfo(&b, "a", NN_F32, (uint64_t)1 << 32, (uint64_t)1 << 32, 0); /* product overflows 2^64 */
    pad_to(&b, 32);
    zeros(&b, 64);
    expect_fail(&b, "dimension");
    header(&b, 3, 1, 0);
    tinfo(&b, "a", NN_F32, 32, 4, 0); /* 512 bytes: larger than the file */
    pad_to(&b, 32);
    zeros(&b, 64);
    expect_fail(&b, "larger than the file");
    header(&b, 3, 1, 0);
    putstr(&b, "a");
    put32(&b, 5); /* too many dims */
    zeros(&b, 128);
    expect_fail(&b, "dimensions");
    header(&b, 3, 1, 0);
    putstr(&b, "a");
    put32(&b, 0);
    zeros(&b, 128);
    expect_fail(&b, "dimensions");
    char longname[65];
    memset(longname, 'x', 64);
    longname[64] = '\0';
    header(&b, 3, 1, 0);
    tinfo(&b, longname, NN_F32, 4, 1, 0);
    pad_to(&b, 32);
    zeros(&b, 64);
    expect_fail(&b, "at most 63");
    core_buf_destroy(&b);
}

static void test_open_errors(void **state)
{
    (void)state;
    gguf_t *g = NULL;
    char err[256];
    char *p = tmp_path("missing.gguf");
    assert_int_equal(gguf_open(p, &g, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "missing.gguf"));
    assert_int_equal(gguf_open(g_dir, &g, err, sizeof err), -EINVAL); /* a folder */
    FILE *f = fopen(p, "wb");
    fclose(f);
    assert_int_equal(gguf_open(p, &g, err, sizeof err), -EINVAL);
    assert_string_equal(err, "empty file");
    assert_null(g);
    gguf_close(&g);
    gguf_close(NULL);
    free(p);
}

int main(void)
{
    const char *base = getenv("PERSONA_TEST_TMP");
    if (!base || !*base)
        base = "/tmp/persona-test-gguf";
    if (core_mkdirs(base) < 0)
        return 1;
    g_dir = xasprintf("%s/gguf", base);
    nftw(g_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    if (core_mkdirs(g_dir) < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),   cmocka_unit_test(test_writer_semantics),
        cmocka_unit_test(test_truncated),   cmocka_unit_test(test_flipped),
        cmocka_unit_test(test_random),      cmocka_unit_test(test_handmade),
        cmocka_unit_test(test_open_errors),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(g_dir);
    return rc;
}
