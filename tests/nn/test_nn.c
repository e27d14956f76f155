/* test_nn: unit tests of src/nn — type table, f16 conversion of every bit pattern against the
 * compiler's _Float16 (and F16C where present), quantize->dequantize error bounds and the Q8_0
 * quantizer's exact rounding in every ISA, every product kernel in every ISA this CPU has
 * (switched in-process; AVX-512 with and without VNNI) against a double-precision reference with
 * odd sizes, both paths of nn_matmul (integer kernels and dequantize + GEMM) and their agreement
 * with nn_matvec, sgemm with all transposes, alpha/beta and padded strides through OpenBLAS and
 * the own kernels, single-threaded GEMMs run concurrently, the thread pool with 1..4 threads,
 * and bit-identical results across runs and thread counts. Work is scaled down under the
 * sanitizers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <immintrin.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/internal.h"

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

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd32(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 16);
}

/* uniform in [-1, 1) */
static float rndf(void)
{
    return (float)((double)rnd32() / 2147483648.0 - 1.0);
}

static void fill_rand(float *p, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++)
        p[i] = rndf() * scale;
}

static const nn_type_t all_types[] = {NN_F32, NN_F16, NN_Q8_0, NN_Q4_0};

static int isa_count(void)
{
    return (int)nn__isa_best() + 1;
}

/* Kernel variants to test: every ISA the CPU has, and AVX-512 once more with VNNI if present. */
static int variant_count(void)
{
    bool vnni = nn__isa_best() == NN__ISA_AVX512 && nn__avx512_vnni(true);
    nn__avx512_vnni(false);
    return isa_count() + (vnni ? 1 : 0);
}

static void set_variant(int v)
{
    bool vnni = v >= isa_count();
    assert_int_equal(nn__set_isa(vnni ? NN__ISA_AVX512 : (nn__isa_t)v), 0);
    assert_int_equal(nn__avx512_vnni(vnni), vnni);
}

static void set_best(void)
{
    nn__set_isa(nn__isa_best());
    nn__avx512_vnni(true);
}

/* quantizes rows of W (rows x cols, F32) to `type`; malloc'd */
static void *make_weights(nn_type_t type, const float *W, size_t rows, size_t cols)
{
    size_t rb = nn_row_bytes(type, cols);
    uint8_t *q = malloc(rows * rb);
    assert_non_null(q);
    for (size_t r = 0; r < rows; r++)
        nn_quantize_row(type, W + r * cols, q + r * rb, cols);
    return q;
}

/* ==================================================================================== */
/* types                                                                                 */
/* ==================================================================================== */

static void test_types(void **state)
{
    (void)state;
    assert_int_equal(nn_init(), 0);
    assert_true(nn_type_valid(0) && nn_type_valid(1) && nn_type_valid(2) && nn_type_valid(8));
    assert_false(nn_type_valid(3) || nn_type_valid(7) || nn_type_valid(9) || nn_type_valid(~0u));
    for (size_t i = 0; i < 4; i++) {
        nn_type_t t = all_types[i], back;
        assert_int_equal(nn_type_parse(nn_type_name(t), &back), 0);
        assert_int_equal(back, t);
    }
    nn_type_t t;
    assert_int_equal(nn_type_parse("Q4_0", &t), 0);
    assert_int_equal(t, NN_Q4_0);
    assert_int_equal(nn_type_parse("q5_0", &t), -1);
    assert_int_equal(nn_type_parse("", &t), -1);
    assert_int_equal(nn_type_parse(NULL, &t), -1);
    assert_int_equal(nn_type_block_bytes(NN_F32), 4);
    assert_int_equal(nn_type_block_bytes(NN_F16), 2);
    assert_int_equal(nn_type_block_bytes(NN_Q4_0), 18);
    assert_int_equal(nn_type_block_bytes(NN_Q8_0), 34);
    assert_int_equal(nn_type_block_elems(NN_Q8_0), 32);
    assert_int_equal(nn_type_block_elems(NN_F16), 1);
    assert_int_equal(nn_row_bytes(NN_Q4_0, 64), 36);
    assert_int_equal(nn_row_bytes(NN_Q4_0, 33), 0);
    assert_int_equal(nn_row_bytes(NN_F16, 33), 66);
    assert_int_equal(nn_row_bytes(NN_Q8_0, 4096), 128 * 34);
    assert_int_equal(nn_row_bytes((nn_type_t)5, 32), 0);
    const char *info = nn_backend_info();
    assert_non_null(strstr(info, "isa="));
    print_message("nn backend: %s\n", info);
}

/* ==================================================================================== */
/* f16                                                                                   */
/* ==================================================================================== */

__attribute__((target("f16c"))) static nn_f16_t f16c_from_f32(float f)
{
    return (nn_f16_t)_cvtss_sh(f, 0);
}

__attribute__((target("f16c"))) static float f16c_to_f32(nn_f16_t h)
{
    return _cvtsh_ss(h);
}

static nn_f16_t ref_from_f32(float f)
{
    _Float16 h = (_Float16)f; /* the compiler's conversion rounds to nearest even */
    nn_f16_t bits;
    memcpy(&bits, &h, 2);
    return bits;
}

static void check_f32_to_f16(float f, bool f16c)
{
    nn_f16_t got = nn_f32_to_f16(f);
    if (f != f) {
        /* NaN stays NaN with its sign; F16C keeps the top payload bits and sets the quiet bit */
        assert_true((got & 0x7c00) == 0x7c00 && (got & 0x3ff) != 0);
        assert_int_equal(got & 0x8000, signbit(f) ? 0x8000 : 0);
        if (f16c)
            assert_int_equal(got, f16c_from_f32(f));
        return;
    }
    nn_f16_t want = ref_from_f32(f);
    if (got != want)
        fail_msg("f32 %a (0x%08x): got 0x%04x want 0x%04x", (double)f, 0, got, want);
    if (f16c)
        assert_int_equal(got, f16c_from_f32(f));
}

static void test_f16(void **state)
{
    (void)state;
    bool f16c = __builtin_cpu_supports("f16c");
    /* every half: to float is exact, and back gives the same bits (NaN: a NaN) */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = nn_f16_to_f32((nn_f16_t)h);
        _Float16 hh;
        uint16_t hb = (uint16_t)h;
        memcpy(&hh, &hb, 2);
        float want = (float)hh;
        if (f != f) {
            assert_true(want != want);
            assert_true((h & 0x7c00) == 0x7c00 && (h & 0x3ff));
        } else {
            assert_memory_equal(&f, &want, 4);
            assert_int_equal(nn_f32_to_f16(f), h);
        }
        if (f16c) {
            float g = f16c_to_f32((nn_f16_t)h);
            assert_memory_equal(&f, &g, 4);
        }
        check_f32_to_f16(f, f16c);
        /* the floats next to each half, and the midpoints to its neighbour, test rounding */
        uint32_t fb;
        memcpy(&fb, &f, 4);
        for (int d = -2; d <= 2; d++) {
            uint32_t nb = fb + (uint32_t)d;
            float g;
            memcpy(&g, &nb, 4);
            check_f32_to_f16(g, f16c);
        }
        if ((h & 0x7c00) != 0x7c00) {
            float next = nn_f16_to_f32((nn_f16_t)(h + 1));
            if (next == next && !isinf(next) && signbit(next) == signbit(f))
                check_f32_to_f16((float)(((double)f + (double)next) / 2), f16c);
        }
    }
    /* random bit patterns: huge, tiny, NaN payloads */
    for (int i = 0; i < (SANITIZED ? 200000 : 2000000); i++) {
        uint32_t b = rnd32() ^ rnd32() << 16;
        float f;
        memcpy(&f, &b, 4);
        check_f32_to_f16(f, f16c);
    }
    assert_int_equal(nn_f32_to_f16(65504.0f), 0x7bff);
    assert_int_equal(nn_f32_to_f16(65519.996f), 0x7bff);
    assert_int_equal(nn_f32_to_f16(65520.0f), 0x7c00);
    assert_int_equal(nn_f32_to_f16(-INFINITY), 0xfc00);
    assert_int_equal(nn_f32_to_f16(0x1p-25f), 0x0000); /* tie to even: 0 */
    assert_int_equal(nn_f32_to_f16(0x1.8p-24f), 0x0002);
    assert_int_equal(nn_f32_to_f16(-0.0f), 0x8000);
}

/* ==================================================================================== */
/* quantization                                                                          */
/* ==================================================================================== */

static void test_quantize_bounds(void **state)
{
    (void)state;
    enum { N = 32 * 64 };
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y), *y2 = malloc(N * sizeof *y2);
    uint8_t *q = malloc(N * sizeof(float)); /* room for any type */
    assert_true(x && y && y2 && q);
    for (int trial = 0; trial < 40; trial++) {
        float scale = trial < 10 ? 1.0f : trial < 20 ? 1e-3f : trial < 30 ? 300.0f : 1e-6f;
        fill_rand(x, N, scale);
        if (trial % 5 == 0) /* some blocks all zero, some with one spike */
            for (int j = 0; j < 32; j++)
                x[j] = 0.0f, x[64 + j] = j == 5 ? scale * 7 : 0.0f;
        for (int t = 2; t < 4; t++) {
            nn_type_t type = all_types[t];
            nn_quantize_row(type, x, q, N);
            nn__set_isa(NN__ISA_SCALAR);
            nn_dequantize_row(type, q, y, N);
            for (int b = 0; b < N / 32; b++) {
                const nn_f16_t d16 = type == NN_Q8_0 ? ((nn_block_q8_0 *)q)[b].d
                                                     : ((nn_block_q4_0 *)q)[b].d;
                double d = fabs((double)nn_f16_to_f32(d16)), amax = 0;
                for (int j = 0; j < 32; j++)
                    amax = fmax(amax, fabs(x[b * 32 + j]));
                /* d/2 from rounding, plus the f16 rounding of d times the largest |q| (d can be
                 * an f16 subnormal for tiny blocks, so this is not a relative 2^-11) */
                double dref = amax / (type == NN_Q8_0 ? 127.0 : 8.0);
                double qmax = type == NN_Q8_0 ? 127 : 8;
                double tiny = qmax * fabs(dref - d) * 1.001 + amax * 1e-6 + 1e-30;
                double tol = d / 2 + tiny;
                for (int j = 0; j < 32; j++) {
                    double err = fabs((double)y[b * 32 + j] - x[b * 32 + j]);
                    /* Q4_0's grid is -8..7 times d: the value opposite the extreme may clip at
                     * 7d, one full step (ggml's format does that too) */
                    double lim = tol;
                    if (type == NN_Q4_0 && fabs(x[b * 32 + j]) > 7 * d)
                        lim = d + tiny;
                    if (!(err <= lim))
                        fail_msg("%s block %d elem %d: x=%g y=%g d=%g", nn_type_name(type), b, j,
                                 (double)x[b * 32 + j], (double)y[b * 32 + j], d);
                }
            }
            /* every ISA dequantizes to the same bits */
            for (int isa = 1; isa < isa_count(); isa++) {
                nn__set_isa((nn__isa_t)isa);
                nn_dequantize_row(type, q, y2, N);
                assert_memory_equal(y, y2, N * sizeof *y);
            }
            set_best();
        }
        /* F16 rows: within half an ulp */
        nn_quantize_row(NN_F16, x, q, N);
        nn_dequantize_row(NN_F16, q, y, N);
        for (int j = 0; j < N; j++)
            assert_true(fabs((double)y[j] - x[j]) <= fabs(x[j]) * 0x1p-11 + 0x1p-25);
    }
    /* ggml's exact rounding: Q8_0 of 0..31 (amax 31, d = 31/127) and Q4_0 of -8..-1 scaled */
    for (int j = 0; j < 32; j++)
        x[j] = (float)j;
    nn_quantize_row(NN_Q8_0, x, q, 32);
    const nn_block_q8_0 *b8 = (const nn_block_q8_0 *)q;
    assert_int_equal(b8->d, nn_f32_to_f16(31.0f / 127.0f));
    for (int j = 0; j < 32; j++)
        assert_int_equal(b8->qs[j], (int)roundf(j * (127.0f / 31.0f)));
    for (int j = 0; j < 32; j++)
        x[j] = (float)(j % 16) - 8.0f;
    nn_quantize_row(NN_Q4_0, x, q, 32);
    const nn_block_q4_0 *b4 = (const nn_block_q4_0 *)q;
    assert_int_equal(b4->d, nn_f32_to_f16(1.0f)); /* max = -8, d = -8/-8 */
    for (int j = 0; j < 16; j++)
        assert_int_equal(b4->qs[j], j | j << 4);
    /* halves round away from zero, as roundf (d = 127/127 = 1 makes q = round(x)) */
    static const float ties[8] = {127.0f, 2.5f, -3.5f, 0.49999997f, -0.5f, 126.5f, -1.5f, 0.5f};
    static const int8_t tie_q[8] = {127, 3, -4, 0, -1, 127, -2, 1};
    for (int j = 0; j < 32; j++)
        x[j] = j < 8 ? ties[j] : 0.0f;
    for (int v = 0; v < variant_count(); v++) {
        set_variant(v);
        nn_quantize_row(NN_Q8_0, x, q, 32);
        assert_int_equal(b8->d, nn_f32_to_f16(1.0f));
        for (int j = 0; j < 8; j++)
            assert_int_equal(b8->qs[j], tie_q[j]);
    }
    set_best();
    /* every ISA's Q8_0 quantizer gives the reference's bits, on random data at many scales and on
     * blocks with NaN and infinities */
    {
        nn_block_q8_0 *ref = malloc((N / 32) * sizeof *ref);
        assert_non_null(ref);
        for (int trial = 0; trial < 20; trial++) {
            fill_rand(x, N, trial % 4 == 0 ? 1e-30f : trial % 4 == 1 ? 1e30f : 1.0f + trial);
            if (trial % 3 == 0)
                x[5] = NAN, x[40] = INFINITY, x[77] = -INFINITY, x[99] = -NAN;
            nn__quantize_row_q8_0(x, ref, N);
            for (int v = 0; v < variant_count(); v++) {
                set_variant(v);
                nn_quantize_row(NN_Q8_0, x, q, N);
                assert_memory_equal(q, ref, (N / 32) * sizeof *ref);
            }
        }
        set_best();
        free(ref);
    }
    /* non-finite input must not crash or hit undefined casts */
    x[3] = NAN;
    x[7] = INFINITY;
    nn_quantize_row(NN_Q8_0, x, q, 32);
    nn_quantize_row(NN_Q4_0, x, q, 32);
    free(x);
    free(y);
    free(y2);
    free(q);
}

/* ==================================================================================== */
/* products                                                                              */
/* ==================================================================================== */

/* Checks y[r] for one input row x against double-precision sums over the dequantized weights Wd.
 * The kernels see x quantized to Q8_0 for quantized W (xq_used) — the tolerance covers both that
 * and float accumulation. */
static void check_row(nn_type_t type, const float *Wd, size_t rows, size_t cols, const float *x,
                      const float *y, bool x_quantized, const char *what)
{
    float *xq = malloc(cols * sizeof *xq);
    uint8_t *qb = malloc(nn_row_bytes(NN_Q8_0, cols));
    assert_true(xq && qb);
    if (x_quantized && (type == NN_Q8_0 || type == NN_Q4_0)) {
        nn_quantize_row(NN_Q8_0, x, qb, cols);
        nn_dequantize_row(NN_Q8_0, qb, xq, cols);
    } else {
        memcpy(xq, x, cols * sizeof *xq);
    }
    for (size_t r = 0; r < rows; r++) {
        double s = 0, mag = 0;
        for (size_t j = 0; j < cols; j++) {
            s += (double)Wd[r * cols + j] * xq[j];
            mag += fabs((double)Wd[r * cols + j] * xq[j]);
        }
        double tol = 2e-6 * mag * (1 + log2((double)cols)) + 1e-6;
        if (!(fabs(y[r] - s) <= tol))
            fail_msg("%s %s isa=%s rows=%zu cols=%zu r=%zu: got %.9g want %.9g (tol %g)", what,
                     nn_type_name(type), nn__k->name, rows, cols, r, (double)y[r], s, tol);
    }
    free(xq);
    free(qb);
}

static const size_t test_cols[] = {32, 64, 96, 160, 288, 768, 1056, 4096};

static void test_matvec(void **state)
{
    (void)state;
    nn_pool_t *pool2 = NULL, *pool3 = NULL;
    assert_int_equal(nn_pool_create(2, &pool2), 0);
    assert_int_equal(nn_pool_create(3, &pool3), 0);
    size_t maxc = 4096, maxr = 67;
    float *W = malloc(maxr * maxc * sizeof *W), *Wd = malloc(maxr * maxc * sizeof *Wd);
    float *x = malloc(maxc * sizeof *x), *y = malloc(maxr * sizeof *y),
          *y1 = malloc(maxr * sizeof *y1);
    assert_true(W && Wd && x && y && y1);
    for (int v = 0; v < variant_count(); v++) {
        set_variant(v);
        for (size_t ci = 0; ci < sizeof test_cols / sizeof test_cols[0]; ci++) {
            size_t cols = test_cols[ci];
            for (size_t rows = 1; rows <= maxr; rows += (cols >= 1024 ? 22 : 3)) {
                if (SANITIZED && cols >= 1024 && rows > 1 && rows < 67)
                    continue;
                fill_rand(W, rows * cols, 1.0f);
                fill_rand(x, cols, 2.0f);
                for (size_t t = 0; t < 4; t++) {
                    nn_type_t type = all_types[t];
                    void *Wq = make_weights(type, W, rows, cols);
                    for (size_t r = 0; r < rows; r++)
                        nn_dequantize_row(type, (uint8_t *)Wq + r * nn_row_bytes(type, cols),
                                          Wd + r * cols, cols);
                    nn_matvec(NULL, type, Wq, rows, cols, x, y1);
                    check_row(type, Wd, rows, cols, x, y1, true, "matvec");
                    /* any thread count gives the same bits */
                    nn_matvec(pool2, type, Wq, rows, cols, x, y);
                    assert_memory_equal(y, y1, rows * sizeof *y);
                    nn_matvec(pool3, type, Wq, rows, cols, x, y);
                    assert_memory_equal(y, y1, rows * sizeof *y);
                    free(Wq);
                }
            }
        }
    }
    set_best();
    nn_pool_free(&pool2);
    nn_pool_free(&pool3);
    nn_pool_free(&pool2); /* NULL-safe */
    free(W);
    free(Wd);
    free(x);
    free(y);
    free(y1);
}

static void test_matmul(void **state)
{
    (void)state;
    nn_pool_t *pool2 = NULL;
    assert_int_equal(nn_pool_create(2, &pool2), 0);
    static const size_t shapes[][3] = {/* rows, cols, n */
                                       {1, 32, 1},    {5, 64, 3},   {67, 96, 4},
                                       {40, 544, 2},  {19, 1056, 7}, {3, 32, 6},
                                       {33, 288, 17}, {200, 288, 9}, {130, 768, 33},
                                       {17, 4096, 5}, {300, 160, 64}};
    for (int v = 0; v < variant_count(); v++) {
        set_variant(v);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            size_t rows = shapes[s][0], cols = shapes[s][1], n = shapes[s][2];
            if (SANITIZED && rows * cols * n > 300 * 160 * 16)
                continue;
            float *W = malloc(rows * cols * sizeof *W), *Wd = malloc(rows * cols * sizeof *Wd),
                  *X = malloc(n * cols * sizeof *X), *Y = malloc(n * rows * sizeof *Y),
                  *Y2 = malloc(n * rows * sizeof *Y2);
            assert_true(W && Wd && X && Y && Y2);
            fill_rand(W, rows * cols, 0.5f);
            fill_rand(X, n * cols, 1.0f);
            /* the automatic choice of path, then GEMM only, then the integer kernels only */
            static const size_t modes[] = {SIZE_MAX, 0, 100000};
            for (int mode = 0; mode < 3; mode++) {
                nn__matmul_int_max_n = modes[mode];
                for (size_t t = 0; t < 4; t++) {
                    nn_type_t type = all_types[t];
                    void *Wq = make_weights(type, W, rows, cols);
                    for (size_t r = 0; r < rows; r++)
                        nn_dequantize_row(type, (uint8_t *)Wq + r * nn_row_bytes(type, cols),
                                          Wd + r * cols, cols);
                    nn_matmul(NULL, type, Wq, rows, cols, X, n, Y);
                    /* small batches go through matvec, larger ones through GEMM or the integer
                     * kernels; matvec and the integer kernels see x quantized */
                    bool xq = nn__matmul_quantizes_x(type, cols, n);
                    for (size_t i = 0; i < n; i++)
                        check_row(type, Wd, rows, cols, X + i * cols, Y + i * rows, xq,
                                  "matmul");
                    if (xq) /* quantized x: the batch gives the bits of one row at a time */
                        for (size_t i = 0; i < n; i++) {
                            nn_matvec(NULL, type, Wq, rows, cols, X + i * cols, Y2);
                            assert_memory_equal(Y2, Y + i * rows, rows * sizeof *Y);
                        }
                    nn_matmul(pool2, type, Wq, rows, cols, X, n, Y2);
                    assert_memory_equal(Y, Y2, n * rows * sizeof *Y);
                    free(Wq);
                }
            }
            nn__matmul_int_max_n = SIZE_MAX;
            free(W);
            free(Wd);
            free(X);
            free(Y);
            free(Y2);
        }
    }
    set_best();
    nn_pool_free(&pool2);
}

static void test_dot_axpy(void **state)
{
    (void)state;
    float a[1031], b[1031], y[1031], y0[1031];
    for (int v = 0; v < variant_count(); v++) {
        set_variant(v);
        for (size_t n = 0; n <= 1031; n += (n < 40 ? 1 : 97)) {
            fill_rand(a, n, 1.0f);
            fill_rand(b, n, 1.0f);
            fill_rand(y, n, 1.0f);
            memcpy(y0, y, sizeof y);
            double s = 0, mag = 0;
            for (size_t i = 0; i < n; i++)
                s += (double)a[i] * b[i], mag += fabs((double)a[i] * b[i]);
            float got = nn_dot_f32(a, b, n);
            assert_true(fabs(got - s) <= 1e-6 * mag * 8 + 1e-7);
            nn_axpy_f32(-0.375f, a, y, n);
            for (size_t i = 0; i < n; i++)
                assert_true(fabs(y[i] - (y0[i] - 0.375 * a[i])) <= 1e-6);
        }
    }
    set_best();
}

/* VNNI and plain AVX-512 quantized kernels compute the same integer sums: same bits. */
static void test_vnni_same_bits(void **state)
{
    (void)state;
    if (variant_count() <= isa_count()) {
        print_message("no AVX-512 VNNI here: nothing to compare\n");
        return;
    }
    static const size_t shapes[][3] = {{37, 288, 5}, {16, 2048, 9}, {5, 4096, 1}, {33, 544, 4}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t rows = shapes[s][0], cols = shapes[s][1], n = shapes[s][2];
        float *W = malloc(rows * cols * 4), *X = malloc(n * cols * 4), *Y1 = malloc(n * rows * 4),
              *Y2 = malloc(n * rows * 4);
        assert_true(W && X && Y1 && Y2);
        fill_rand(W, rows * cols, 1.0f);
        fill_rand(X, n * cols, 3.0f);
        for (int t = 2; t < 4; t++) {
            void *Wq = make_weights(all_types[t], W, rows, cols);
            set_variant(isa_count() - 1);
            nn_matmul(NULL, all_types[t], Wq, rows, cols, X, n, Y1);
            set_variant(isa_count());
            nn_matmul(NULL, all_types[t], Wq, rows, cols, X, n, Y2);
            assert_memory_equal(Y1, Y2, n * rows * 4);
            free(Wq);
        }
        free(W);
        free(X);
        free(Y1);
        free(Y2);
    }
    set_best();
}

/* ==================================================================================== */
/* sgemm                                                                                 */
/* ==================================================================================== */

static void check_sgemm(nn_pool_t *pool, bool ta, bool tb, int M, int N, int K, float alpha,
                        float beta, int pad)
{
    int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    size_t na = (size_t)lda * (ta ? K : M), nb = (size_t)ldb * (tb ? N : K),
           nc = (size_t)ldc * M;
    float *A = malloc((na + 1) * 4), *B = malloc((nb + 1) * 4), *C = malloc(nc * 4),
          *C0 = malloc(nc * 4), *C2 = malloc(nc * 4);
    assert_true(A && B && C && C0 && C2);
    fill_rand(A, na, 1.0f);
    fill_rand(B, nb, 1.0f);
    fill_rand(C, nc, 1.0f);
    memcpy(C0, C, nc * 4);
    nn_sgemm(pool, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double s = 0, mag = 0;
            for (int k = 0; k < K; k++) {
                double a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                double b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                s += a * b, mag += fabs(a * b);
            }
            double want = alpha * s + beta * C0[(size_t)i * ldc + j];
            double tol = 4e-6 * (fabs(alpha) * mag * (1 + log2(K + 1.0)) + 1);
            double got = C[(size_t)i * ldc + j];
            if (!(fabs(got - want) <= tol))
                fail_msg("sgemm %s ta=%d tb=%d M=%d N=%d K=%d a=%g b=%g: [%d][%d] %g vs %g",
                         nn__blas_loaded() ? "blas" : "own", ta, tb, M, N, K, (double)alpha,
                         (double)beta, i, j, got, want);
        }
        for (int j = N; j < ldc; j++) /* padding untouched */
            assert_memory_equal(&C[(size_t)i * ldc + j], &C0[(size_t)i * ldc + j], 4);
    }
    /* determinism: the same call again gives the same bits */
    memcpy(C2, C0, nc * 4);
    nn_sgemm(pool, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C2, ldc);
    assert_memory_equal(C, C2, nc * 4);
    free(A);
    free(B);
    free(C);
    free(C0);
    free(C2);
}

static void test_sgemm(void **state)
{
    (void)state;
    nn_pool_t *pool2 = NULL, *pool3 = NULL;
    assert_int_equal(nn_pool_create(2, &pool2), 0);
    assert_int_equal(nn_pool_create(3, &pool3), 0);
    static const int sizes[][3] = {{1, 1, 1},     {1, 300, 7},   {300, 1, 5},  {2, 3, 300},
                                   {17, 31, 64},  {64, 64, 64},  {65, 97, 33}, {128, 48, 200},
                                   {300, 300, 9}, {37, 260, 129}, {250, 70, 300}, {5, 5, 0},
                                   {3, 2100, 20}, {9, 40, 800}};
    static const float ab[][2] = {{1.0f, 0.0f}, {0.5f, 1.0f}, {-1.25f, -0.75f}, {0.0f, 2.0f}};
    for (int own = 0; own < 2; own++) {
        nn__sgemm_force_own(own);
        for (int isa = own ? 0 : (int)nn__isa_best(); isa < isa_count(); isa++) {
            nn__set_isa((nn__isa_t)isa);
            for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
                int M = sizes[s][0], N = sizes[s][1], K = sizes[s][2];
                if (SANITIZED && (double)M * N * K > 1e6 && s % 2)
                    continue;
                for (int t = 0; t < 4; t++) {
                    int p = (int)((s + (size_t)t) % 4);
                    nn_pool_t *pool = p == 0 ? NULL : p == 1 ? pool2 : p == 2 ? pool3 : NULL;
                    check_sgemm(pool, t & 1, t & 2, M, N, K, ab[(s + t) % 4][0],
                                ab[(s + t) % 4][1], (int)(s % 3) * 3);
                }
            }
        }
    }
    nn__sgemm_force_own(false);
    set_best();
    /* random sizes 1..300 through the default path */
    for (int i = 0; i < (SANITIZED ? 6 : 24); i++) {
        int M = 1 + (int)(rnd32() % 300), N = 1 + (int)(rnd32() % 300),
            K = 1 + (int)(rnd32() % 300);
        check_sgemm(i % 2 ? pool2 : NULL, rnd32() & 1, rnd32() & 1, M, N, K, 1.0f,
                    i % 3 ? 0.0f : 1.0f, (int)(rnd32() % 5));
    }
    nn_pool_free(&pool2);
    nn_pool_free(&pool3);
}

/* Single-threaded GEMMs called at the same time from several threads (what nn_matmul and the
 * training engine's attention do): each must give the bits it gives alone. */
typedef struct {
    int M, N, K;
    const float *A, *B;
    float *C[4];
    int reps;
} conc_ctx;

static void conc_task(void *arg, int ti, int nt)
{
    (void)nt;
    conc_ctx *c = arg;
    for (int r = 0; r < c->reps; r++)
        nn_sgemm(NULL, r & 1, false, c->M, c->N, c->K, 1.0f, c->A, r & 1 ? c->M : c->K, c->B,
                 c->N, 0.0f, c->C[ti] + (size_t)(r & 1) * c->M * c->N, c->N);
}

static void test_sgemm_concurrent(void **state)
{
    (void)state;
    enum { M = 96, N = 80, K = 112 };
    float *A = malloc(M * K * 4), *B = malloc(K * N * 4), *ref = malloc(2 * M * N * 4);
    conc_ctx c = {M, N, K, A, B, {NULL}, SANITIZED ? 10 : 100};
    assert_true(A && B && ref);
    fill_rand(A, M * K, 1.0f);
    fill_rand(B, K * N, 1.0f);
    for (int t = 0; t < 4; t++) {
        c.C[t] = calloc(2 * M * N, 4);
        assert_non_null(c.C[t]);
    }
    for (int own = 0; own < 2; own++) {
        nn__sgemm_force_own(own);
        /* alone: A as M x K, and A's bytes read as a K x M matrix, transposed */
        nn_sgemm(NULL, false, false, M, N, K, 1.0f, A, K, B, N, 0.0f, ref, N);
        nn_sgemm(NULL, true, false, M, N, K, 1.0f, A, M, B, N, 0.0f, ref + M * N, N);
        nn_pool_t *pool = NULL;
        assert_int_equal(nn_pool_create(4, &pool), 0);
        nn_pool_run(pool, conc_task, &c);
        nn_pool_free(&pool);
        for (int t = 0; t < 4; t++)
            assert_memory_equal(c.C[t], ref, 2 * M * N * 4);
    }
    nn__sgemm_force_own(false);
    for (int t = 0; t < 4; t++)
        free(c.C[t]);
    free(A);
    free(B);
    free(ref);
}

/* ==================================================================================== */
/* pool                                                                                  */
/* ==================================================================================== */

typedef struct {
    _Atomic int calls[8];
    _Atomic int nseen;
    _Atomic long sum;
} pool_probe;

static void probe_task(void *arg, int i, int n)
{
    pool_probe *p = arg;
    atomic_fetch_add(&p->calls[i], 1);
    atomic_store(&p->nseen, n);
    atomic_fetch_add(&p->sum, i + 1);
}

static void test_pool(void **state)
{
    (void)state;
    assert_int_equal(nn_pool_threads(NULL), 1);
    for (int nt = 1; nt <= 4; nt++) {
        nn_pool_t *pool = NULL;
        assert_int_equal(nn_pool_create(nt, &pool), 0);
        assert_int_equal(nn_pool_threads(pool), nt);
        int runs = nt > 2 ? 2000 : 20000;
        if (SANITIZED)
            runs /= 10;
        pool_probe p;
        memset(&p, 0, sizeof p);
        for (int r = 0; r < runs; r++) {
            long before = atomic_load(&p.sum);
            nn_pool_run(pool, probe_task, &p);
            /* every thread has finished when run returns */
            assert_int_equal(atomic_load(&p.sum) - before, (long)nt * (nt + 1) / 2);
        }
        for (int i = 0; i < nt; i++)
            assert_int_equal(atomic_load(&p.calls[i]), runs);
        assert_int_equal(atomic_load(&p.nseen), nt);
        nn_pool_free(&pool);
        assert_null(pool);
    }
    nn_pool_t *pool = NULL;
    assert_int_equal(nn_pool_create(0, &pool), 0);
    assert_true(nn_pool_threads(pool) >= 1);
    nn_pool_free(&pool);
    assert_int_equal(nn_pool_create(100000, &pool), -1);
    assert_null(pool);
    pool_probe p;
    memset(&p, 0, sizeof p);
    nn_pool_run(NULL, probe_task, &p);
    assert_int_equal(atomic_load(&p.calls[0]), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_f16),
        cmocka_unit_test(test_quantize_bounds),
        cmocka_unit_test(test_dot_axpy),
        cmocka_unit_test(test_matvec),
        cmocka_unit_test(test_matmul),
        cmocka_unit_test(test_vnni_same_bits),
        cmocka_unit_test(test_sgemm),
        cmocka_unit_test(test_sgemm_concurrent),
        cmocka_unit_test(test_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
