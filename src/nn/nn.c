/* nn: types and block formats (GGML's, bit for bit), f16 conversion, quantization, the one-time
 * initialisation that picks the kernels for this CPU, and the drivers of the typed products
 * (nn_matvec, nn_matmul) that split rows over a pool's threads. The kernels themselves live in
 * kern_*.c, the thread pool in pool.c, GEMM and OpenBLAS in gemm.c.
 *
 * Thread safety: everything here may be called from any thread once nn_init has run (every entry
 * point runs it through pthread_once). */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "nn/internal.h"

/* ==================================================================================== */
/* types                                                                                 */
/* ==================================================================================== */

bool nn_type_valid(uint32_t type)
{
    return type == NN_F32 || type == NN_F16 || type == NN_Q4_0 || type == NN_Q8_0;
}

const char *nn_type_name(nn_type_t type)
{
    switch (type) {
    case NN_F32: return "f32";
    case NN_F16: return "f16";
    case NN_Q4_0: return "q4_0";
    case NN_Q8_0: return "q8_0";
    }
    return "?";
}

int nn_type_parse(const char *name, nn_type_t *out)
{
    static const nn_type_t all[] = {NN_F32, NN_F16, NN_Q4_0, NN_Q8_0};
    if (!name)
        return -1;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcasecmp(name, nn_type_name(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    return -1;
}

size_t nn_type_block_elems(nn_type_t type)
{
    return type == NN_Q4_0 || type == NN_Q8_0 ? NN_QK : nn_type_valid(type) ? 1 : 0;
}

size_t nn_type_block_bytes(nn_type_t type)
{
    switch (type) {
    case NN_F32: return 4;
    case NN_F16: return 2;
    case NN_Q4_0: return sizeof(nn_block_q4_0);
    case NN_Q8_0: return sizeof(nn_block_q8_0);
    }
    return 0;
}

size_t nn_row_bytes(nn_type_t type, size_t n)
{
    size_t be = nn_type_block_elems(type);
    if (!be || n % be)
        return 0;
    return n / be * nn_type_block_bytes(type);
}

_Static_assert(sizeof(nn_block_q8_0) == 34, "q8_0 block layout");
_Static_assert(sizeof(nn_block_q4_0) == 18, "q4_0 block layout");

/* ==================================================================================== */
/* f16                                                                                   */
/* ==================================================================================== */

float nn_f16_to_f32(nn_f16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    float f;
    if (exp == 0) {
        /* zero or subnormal: mant * 2^-24 is exact in float */
        f = (float)mant * 0x1p-24f;
        memcpy(&bits, &f, 4);
        bits |= sign;
    } else if (exp == 31) {
        /* a NaN comes out quiet, as F16C's conversion makes it */
        bits = sign | 0x7f800000u | mant << 13 | (mant ? 0x400000u : 0);
    } else {
        bits = sign | (exp + 112) << 23 | mant << 13;
    }
    memcpy(&f, &bits, 4);
    return f;
}

nn_f16_t nn_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) /* NaN: quieted, top payload bits kept, as F16C does */
        return (nn_f16_t)(sign | 0x7e00 | ((ax >> 13) & 0x3ff));
    if (ax >= 0x477ff000u) /* >= 65520 rounds to infinity (and infinity itself) */
        return (nn_f16_t)(sign | 0x7c00);
    if (ax < 0x38800000u) {
        /* below the smallest normal half: adding 0.5 (whose ulp is 2^-24, the half subnormal
         * step) rounds to nearest even in hardware; the low bits are the half subnormal */
        float a, s = 0.5f;
        memcpy(&a, &ax, 4);
        s += a;
        uint32_t sb;
        memcpy(&sb, &s, 4);
        return (nn_f16_t)(sign | (sb - 0x3f000000u));
    }
    /* normal: rebias the exponent and round the 13 dropped bits to nearest even */
    uint32_t odd = (ax >> 13) & 1;
    ax += 0xc8000fffu + odd;
    return (nn_f16_t)(sign | ax >> 13);
}

/* ==================================================================================== */
/* quantization (ggml's reference quantizers)                                            */
/* ==================================================================================== */

void nn__quantize_row_q8_0(const float *src, nn_block_q8_0 *dst, size_t n)
{
    for (size_t b = 0; b < n / NN_QK; b++) {
        const float *x = src + b * NN_QK;
        float amax = 0.0f;
        for (int j = 0; j < NN_QK; j++)
            amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        dst[b].d = nn_f32_to_f16(d);
        for (int j = 0; j < NN_QK; j++) {
            /* the clamp only matters for non-finite input, where the cast would be undefined */
            float v = roundf(x[j] * id);
            v = v != v ? 0.0f : fminf(127.0f, fmaxf(-127.0f, v));
            dst[b].qs[j] = (int8_t)v;
        }
    }
}

void nn__quantize_x_q8_0(const float *src, nn_block_q8_0 *dst, size_t n)
{
    if (nn__k->quantize_q8_0)
        nn__k->quantize_q8_0(src, dst, n);
    else
        nn__quantize_row_q8_0(src, dst, n);
}

static void quantize_row_q4_0(const float *src, nn_block_q4_0 *dst, size_t n)
{
    for (size_t b = 0; b < n / NN_QK; b++) {
        const float *x = src + b * NN_QK;
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < NN_QK; j++)
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        float d = max / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        dst[b].d = nn_f32_to_f16(d);
        for (int j = 0; j < NN_QK / 2; j++) {
            float v0 = x[j] * id + 8.5f, v1 = x[NN_QK / 2 + j] * id + 8.5f;
            v0 = v0 != v0 ? 8.0f : fminf(15.0f, fmaxf(0.0f, v0));
            v1 = v1 != v1 ? 8.0f : fminf(15.0f, fmaxf(0.0f, v1));
            dst[b].qs[j] = (uint8_t)((int)v0 | (int)v1 << 4);
        }
    }
}

void nn_quantize_row(nn_type_t type, const float *src, void *dst, size_t n)
{
    switch (type) {
    case NN_F32: memcpy(dst, src, n * sizeof(float)); break;
    case NN_F16:
        for (size_t i = 0; i < n; i++)
            ((nn_f16_t *)dst)[i] = nn_f32_to_f16(src[i]);
        break;
    case NN_Q8_0:
        nn_init();
        nn__quantize_x_q8_0(src, dst, n);
        break;
    case NN_Q4_0: quantize_row_q4_0(src, dst, n); break;
    }
}

void nn_dequantize_row(nn_type_t type, const void *src, float *dst, size_t n)
{
    nn_init();
    switch (type) {
    case NN_F32: memcpy(dst, src, n * sizeof(float)); break;
    case NN_F16: nn__k->f16_to_f32_row(src, dst, n); break;
    case NN_Q8_0: nn__k->deq_q8_0_row(src, dst, n); break;
    case NN_Q4_0: nn__k->deq_q4_0_row(src, dst, n); break;
    }
}

/* ==================================================================================== */
/* initialisation and dispatch                                                           */
/* ==================================================================================== */

const nn__kernels_t *nn__k = &nn__kernels_scalar;
static nn__isa_t g_isa = NN__ISA_SCALAR;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_init_rc;
static char g_info[256];
static char g_blas_info[160];

nn__isa_t nn__isa_best(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        return NN__ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        __builtin_cpu_supports("f16c"))
        return NN__ISA_AVX2;
    return NN__ISA_SCALAR;
}

static const nn__kernels_t *table_of(nn__isa_t isa)
{
    return isa == NN__ISA_AVX512 ? &nn__kernels_avx512
           : isa == NN__ISA_AVX2 ? &nn__kernels_avx2
                                 : &nn__kernels_scalar;
}

static bool g_vnni_on;

static void update_info(void)
{
    snprintf(g_info, sizeof g_info, "isa=%s%s %s", nn__k->name,
             nn__k == &nn__kernels_avx512 && g_vnni_on ? "+vnni" : "", g_blas_info);
}

int nn__set_isa(nn__isa_t isa)
{
    nn_init();
    if (isa > nn__isa_best())
        return -1;
    g_isa = isa;
    nn__k = table_of(isa);
    update_info();
    return 0;
}

nn__isa_t nn__get_isa(void)
{
    nn_init();
    return g_isa;
}

static void init_once(void)
{
    nn__isa_t best = nn__isa_best(), isa = best;
    const char *want = getenv("PERSONA_NN_ISA");
    if (want && *want) {
        if (strcmp(want, "scalar") == 0)
            isa = NN__ISA_SCALAR;
        else if (strcmp(want, "avx2") == 0)
            isa = NN__ISA_AVX2;
        else if (strcmp(want, "avx512") == 0)
            isa = NN__ISA_AVX512;
        else {
            fprintf(stderr, "nn: PERSONA_NN_ISA=%s is not scalar, avx2 or avx512\n", want);
            g_init_rc = -1;
        }
        if (isa > best) {
            fprintf(stderr, "nn: PERSONA_NN_ISA=%s: this CPU lacks it\n", want);
            isa = best;
            g_init_rc = -1;
        }
    }
    g_isa = isa;
    nn__k = table_of(isa);
    const char *vnni = getenv("PERSONA_NN_VNNI");
    g_vnni_on = nn__avx512_vnni(!(vnni && strcmp(vnni, "0") == 0));
    /* OpenBLAS missing or wrong is not fatal: the own GEMM takes over, and the info line says so */
    nn__blas_load(g_blas_info, sizeof g_blas_info);
    update_info();
}

int nn_init(void)
{
    pthread_once(&g_once, init_once);
    return g_init_rc;
}

const char *nn_backend_info(void)
{
    nn_init();
    return g_info;
}

float nn_dot_f32(const float *a, const float *b, size_t n)
{
    nn_init();
    return nn__k->dot_f32(a, b, n);
}

void nn_axpy_f32(float a, const float *x, float *y, size_t n)
{
    nn_init();
    nn__k->axpy_f32(a, x, y, n);
}

/* ==================================================================================== */
/* matvec                                                                                */
/* ==================================================================================== */

typedef struct {
    nn_type_t type;
    const uint8_t *W;
    size_t rows, cols, row_bytes;
    const float *x;
    const void *xq;
    float *y;
    const nn__kernels_t *k;
} matvec_ctx;

/* Row ranges are cut at multiples of 16 rows so threads write separate cache lines of y. */
static void split_rows(size_t rows, int i, int n, size_t *r0, size_t *r1)
{
    size_t units = (rows + 15) / 16;
    size_t u0 = units * (size_t)i / (size_t)n, u1 = units * (size_t)(i + 1) / (size_t)n;
    *r0 = u0 * 16 > rows ? rows : u0 * 16;
    *r1 = u1 * 16 > rows ? rows : u1 * 16;
}

static void matvec_task(void *arg, int ti, int nt)
{
    const matvec_ctx *c = arg;
    size_t r0, r1;
    split_rows(c->rows, ti, nt, &r0, &r1);
    const nn__kernels_t *k = c->k;
    size_t nb = c->cols / NN_QK;
    for (size_t r = r0; r < r1; r++) {
        const void *w = c->W + r * c->row_bytes;
        switch (c->type) {
        case NN_F32: c->y[r] = k->dot_f32(w, c->x, c->cols); break;
        case NN_F16: c->y[r] = k->dot_f16(w, c->x, c->cols); break;
        case NN_Q8_0: c->y[r] = k->dot_q8_0(w, c->xq, nb); break;
        case NN_Q4_0: c->y[r] = k->dot_q4_0(w, c->xq, nb); break;
        }
    }
}

void nn_matvec(nn_pool_t *pool, nn_type_t type, const void *W, size_t rows, size_t cols,
               const float *x, float *y)
{
    nn_init();
    matvec_ctx c = {type, W, rows, cols, nn_row_bytes(type, cols), x, NULL, y, nn__k};
    /* x quantized once for all rows; small rows use the stack (generation calls this often) */
    _Alignas(64) uint8_t stack[16384];
    uint8_t *heap = NULL;
    if (type == NN_Q8_0 || type == NN_Q4_0) {
        size_t nb = cols / NN_QK, qbytes = (nb * sizeof(nn_block_q8_0) + 63) / 64 * 64;
        size_t pbytes = nn__k->xprep_bytes ? nn__k->xprep_bytes(nb) : 0;
        uint8_t *buf = stack;
        if (qbytes + pbytes > sizeof stack) {
            heap = aligned_alloc(64, qbytes + pbytes);
            if (!heap)
                abort(); /* allocation failures abort, as xmalloc does elsewhere */
            buf = heap;
        }
        nn_block_q8_0 *xq = (nn_block_q8_0 *)buf;
        nn__quantize_x_q8_0(x, xq, cols);
        c.xq = pbytes ? nn__k->xprep(type, xq, nb, buf + qbytes) : xq;
    }
    if (!pool || nn_pool_threads(pool) == 1 || rows < 32)
        matvec_task(&c, 0, 1);
    else
        nn_pool_run(pool, matvec_task, &c);
    free(heap);
}

/* ==================================================================================== */
/* matmul                                                                                */
/* ==================================================================================== */

/* The GEMM path: W is turned into F32 one tile of rows at a time (in a per-thread buffer of at
 * most about 4 MiB) and multiplied by all of X with a single-threaded GEMM; threads take whole
 * tiles, so the result does not depend on the thread count. Without an integer path, a batch of
 * a few rows goes row by row instead, through the matvec kernels. */
#define NN_MATMUL_MIN_ROWS 4

typedef struct {
    nn_type_t type;
    const uint8_t *W;
    size_t rows, cols, row_bytes, tile;
    const float *X;
    size_t n;
    float *Y;
    const nn__kernels_t *k;
} matmul_ctx;

static void matmul_task(void *arg, int ti, int nt)
{
    const matmul_ctx *c = arg;
    size_t ntiles = (c->rows + c->tile - 1) / c->tile;
    size_t t0 = ntiles * (size_t)ti / (size_t)nt, t1 = ntiles * (size_t)(ti + 1) / (size_t)nt;
    float *buf = NULL;
    if (c->type != NN_F32 && t1 > t0) {
        buf = malloc(c->tile * c->cols * sizeof(float));
        if (!buf)
            abort();
    }
    for (size_t t = t0; t < t1; t++) {
        size_t r0 = t * c->tile, nr = c->rows - r0 < c->tile ? c->rows - r0 : c->tile;
        const float *Wt;
        if (c->type == NN_F32) {
            Wt = (const float *)(c->W + r0 * c->row_bytes);
        } else {
            for (size_t r = 0; r < nr; r++) {
                const void *src = c->W + (r0 + r) * c->row_bytes;
                float *dst = buf + r * c->cols;
                if (c->type == NN_F16)
                    c->k->f16_to_f32_row(src, dst, c->cols);
                else if (c->type == NN_Q8_0)
                    c->k->deq_q8_0_row(src, dst, c->cols);
                else
                    c->k->deq_q4_0_row(src, dst, c->cols);
            }
            Wt = buf;
        }
        /* Y[:, r0:r0+nr] = X . Wt^T */
        nn_sgemm(NULL, false, true, (int)c->n, (int)nr, (int)c->cols, 1.0f, c->X, (int)c->cols,
                 Wt, (int)c->cols, 0.0f, c->Y + r0, (int)c->rows);
    }
    free(buf);
}

/* The integer path (when the ISA has row-group kernels): every row of X is quantized to Q8_0 and
 * laid out once (threads take rows of X), then threads take ranges of W rows; for a block of 16
 * W rows (kept in L1/L2) the X rows go by in groups of 4, each weight block loaded once per
 * group. Each output is computed exactly as nn_matvec computes it, so a batch gives the same
 * bits as the same rows one at a time, for any thread count. */
typedef struct {
    nn_type_t type;
    const uint8_t *W;
    size_t rows, cols, row_bytes, nb;
    const float *X;
    size_t n;
    float *Y;
    uint8_t *P;
    size_t ps;
    const nn__kernels_t *k;
} matmul_int_ctx;

static void matmul_prep_task(void *arg, int ti, int nt)
{
    const matmul_int_ctx *c = arg;
    size_t i0 = c->n * (size_t)ti / (size_t)nt, i1 = c->n * (size_t)(ti + 1) / (size_t)nt;
    if (i0 >= i1)
        return;
    nn_block_q8_0 *tmp = malloc(c->nb * sizeof *tmp);
    if (!tmp)
        abort();
    for (size_t i = i0; i < i1; i++) {
        nn__quantize_x_q8_0(c->X + i * c->cols, tmp, c->cols);
        c->k->xprep(c->type, tmp, c->nb, c->P + i * c->ps);
    }
    free(tmp);
}

static void matmul_int_task(void *arg, int ti, int nt)
{
    const matmul_int_ctx *c = arg;
    size_t r0, r1;
    split_rows(c->rows, ti, nt, &r0, &r1);
    for (size_t rb = r0; rb < r1; rb += 16) {
        size_t re = rb + 16 < r1 ? rb + 16 : r1;
        for (size_t i = 0; i < c->n; i += 4) {
            int R = c->n - i < 4 ? (int)(c->n - i) : 4;
            const uint8_t *xp = c->P + i * c->ps;
            float *y = c->Y + i * c->rows;
            for (size_t r = rb; r < re; r++) {
                const void *w = c->W + r * c->row_bytes;
                if (c->type == NN_Q8_0)
                    c->k->rows_q8_0(w, xp, c->ps, c->nb, R, y + r, c->rows);
                else
                    c->k->rows_q4_0(w, xp, c->ps, c->nb, R, y + r, c->rows);
            }
        }
    }
}

static bool has_int_path(const nn__kernels_t *k, nn_type_t type)
{
    return k->xprep_bytes &&
           ((type == NN_Q8_0 && k->rows_q8_0) || (type == NN_Q4_0 && k->rows_q4_0));
}

size_t nn__matmul_int_max_n = SIZE_MAX;

/* Up to how many rows of X the integer path beats dequantization + F32 GEMM, measured with CPU
 * time on this machine (docs/kernels.md): the integer kernels are best where W is wide (the
 * dequantized tile and its packing cost the GEMM path most) and for Q4_0 (half the bytes). */
static size_t int_path_max_n(nn_type_t type, size_t cols)
{
    if (nn__matmul_int_max_n != SIZE_MAX)
        return nn__matmul_int_max_n;
    if (type == NN_Q4_0)
        return cols >= 2048 ? 128 : cols >= 768 ? 64 : 32;
    return cols >= 2048 ? 64 : cols >= 768 ? 32 : 16;
}

static bool use_int_path(nn_type_t type, size_t cols, size_t n)
{
    return n >= 2 && n <= int_path_max_n(type, cols) && has_int_path(nn__k, type);
}

bool nn__matmul_quantizes_x(nn_type_t type, size_t cols, size_t n)
{
    nn_init();
    if (type != NN_Q8_0 && type != NN_Q4_0)
        return false;
    return n < NN_MATMUL_MIN_ROWS || use_int_path(type, cols, n);
}

static void matmul_int(nn_pool_t *pool, nn_type_t type, const void *W, size_t rows, size_t cols,
                       const float *X, size_t n, float *Y)
{
    size_t nb = cols / NN_QK, ps = nn__k->xprep_bytes(nb);
    matmul_int_ctx c = {type, W, rows, cols, nn_row_bytes(type, cols), nb, X, n, Y, NULL, ps,
                        nn__k};
    c.P = aligned_alloc(64, n * ps);
    if (!c.P)
        abort(); /* allocation failures abort, as xmalloc does elsewhere */
    nn_pool_run(pool, matmul_prep_task, &c);
    nn_pool_run(pool, matmul_int_task, &c);
    free(c.P);
}

void nn_matmul(nn_pool_t *pool, nn_type_t type, const void *W, size_t rows, size_t cols,
               const float *X, size_t n, float *Y)
{
    nn_init();
    if (use_int_path(type, cols, n)) {
        matmul_int(pool, type, W, rows, cols, X, n, Y);
        return;
    }
    if (n < NN_MATMUL_MIN_ROWS) {
        /* y rows are contiguous in Y with stride `rows` — exactly a matvec output */
        for (size_t i = 0; i < n; i++)
            nn_matvec(pool, type, W, rows, cols, X + i * cols, Y + i * rows);
        return;
    }
    /* Tiles: a multiple of 4 tiles of equal size (rounded to 8 rows), so 2 or 4 threads share
     * the work evenly, each at most about 4 MiB of F32 (fewer, larger GEMM calls are faster since
     * each call packs X again, but a dequantized tile should stay near L2). A function of the
     * shape only, never of the thread count. */
    size_t cap = (4u << 20) / sizeof(float) / (cols ? cols : 1);
    cap = cap < 64 ? 64 : cap;
    size_t ntiles = 4 * ((rows + 4 * cap - 1) / (4 * cap));
    size_t tile = (rows + ntiles - 1) / ntiles;
    tile = tile < 8 ? 8 : (tile + 7) / 8 * 8;
    matmul_ctx c = {type, W, rows, cols, nn_row_bytes(type, cols), tile, X, n, Y, nn__k};
    if (!pool || nn_pool_threads(pool) == 1)
        matmul_task(&c, 0, 1);
    else
        nn_pool_run(pool, matmul_task, &c);
}
