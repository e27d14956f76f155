/* nn AVX-512 kernels (F, BW, VL, DQ with FMA and F16C), compiled with function target attributes;
 * selected by nn_init when cpuid reports them all. Quantized dot products take two blocks per
 * 512-bit register and are reduced 16 blocks at a time (see the section below); VNNI is not
 * assumed. */
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn/internal.h"

#define NN_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")))

/* Bytes ahead of the weights being read that are prefetched into L2 (measured: 2-8 KiB equally
 * good, none ~15% slower from memory). Prefetches never fault, so running past the end is fine. */
#define NN_PREFETCH_AHEAD 4096

NN_AVX512 static float dot_f32(const float *a, const float *b, size_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        /* a is the weight row in nn_matvec: prefetched into L2 as in the quantized kernels */
        for (int l = 0; l < 256; l += 64)
            _mm_prefetch((const char *)(a + i) + NN_PREFETCH_AHEAD + l, _MM_HINT_T1);
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16)
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

NN_AVX512 static void axpy_f32(float a, const float *x, float *y, size_t n)
{
    __m512 va = _mm512_set1_ps(a);
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i,
                         _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m,
                              _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i),
                                              _mm512_maskz_loadu_ps(m, y + i)));
    }
}

NN_AVX512 static inline __m512 ld_f16(const nn_f16_t *p)
{
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}

NN_AVX512 static float dot_f16(const nn_f16_t *w, const float *x, size_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        _mm_prefetch((const char *)(w + i) + NN_PREFETCH_AHEAD, _MM_HINT_T1);
        _mm_prefetch((const char *)(w + i) + NN_PREFETCH_AHEAD + 64, _MM_HINT_T1);
        s0 = _mm512_fmadd_ps(ld_f16(w + i), _mm512_loadu_ps(x + i), s0);
        s1 = _mm512_fmadd_ps(ld_f16(w + i + 16), _mm512_loadu_ps(x + i + 16), s1);
        s2 = _mm512_fmadd_ps(ld_f16(w + i + 32), _mm512_loadu_ps(x + i + 32), s2);
        s3 = _mm512_fmadd_ps(ld_f16(w + i + 48), _mm512_loadu_ps(x + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16)
        s0 = _mm512_fmadd_ps(ld_f16(w + i), _mm512_loadu_ps(x + i), s0);
    float s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
    for (; i < n; i++)
        s += _cvtsh_ss(w[i]) * x[i];
    return s;
}

/* ---- quantized dot products, 16 blocks at a time ----
 * The int8 products of the blocks are summed (maddubs + madd) into int32 lanes of 512-bit
 * registers, several lanes per block; the registers of 16 blocks are then reduced, in integers,
 * to one register holding one exact sum per block, in a fixed lane order (LANE_Q8 / LANE_Q4
 * below); the block scales d_w (gathered) times d_x are applied once per 16 blocks with one
 * multiply-add. This keeps per-block scalar work (f16 scale conversion, broadcasts) out of the
 * inner loop.
 *   Q8_0: one register per block pair (lanes 0-7 block b, 8-15 block b+1).
 *   Q4_0: one register per quad of blocks: the 16 packed bytes of 4 blocks side by side, their
 *         low nibbles (elements 0-15) times x and their high nibbles (16-31) times x, summed in
 *         int16 before madd; 128-bit lane L holds block L of the quad. The nibbles are used
 *         unsigned, 0..15, and the -8 offset is taken off afterwards as 8 * sum(x).
 *
 * x layout made by xprep (nbp = nb rounded up to 16, padding zero):
 *   int8  qs[nbp*32]  Q8_0 weights: each block's 32 values in order; Q4_0 weights: per quad
 *                     of blocks b..b+3: x_b[0:16] .. x_b+3[0:16], then x_b[16:32] .. x_b+3[16:32]
 *   float d[nbp]      x's block scales, in lane order within each group of 16
 *   int32 s8[nbp]     8 * (sum of the block's values), same order (used by Q4_0) */
static const int LANE_Q8[16] = {0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15};
static const int LANE_Q4[16] = {0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15};

static size_t xprep_bytes(size_t nb)
{
    size_t nbp = (nb + 15) / 16 * 16;
    return nbp * 32 + nbp * 4 + nbp * 4;
}

static const void *xprep(nn_type_t wtype, const nn_block_q8_0 *xq, size_t nb, void *buf)
{
    size_t nbp = (nb + 15) / 16 * 16;
    int8_t *qs = buf;
    float *d = (float *)(qs + nbp * 32);
    int32_t *s8 = (int32_t *)(d + nbp);
    const int *lane = wtype == NN_Q4_0 ? LANE_Q4 : LANE_Q8;
    memset(buf, 0, xprep_bytes(nb));
    for (size_t b = 0; b < nb; b++) {
        if (wtype == NN_Q4_0) {
            size_t quad = b / 4 * 128, part = b % 4 * 16;
            memcpy(qs + quad + part, xq[b].qs, 16);
            memcpy(qs + quad + 64 + part, xq[b].qs + 16, 16);
        } else {
            memcpy(qs + b * 32, xq[b].qs, 32);
        }
    }
    for (size_t g = 0; g < nbp; g += 16)
        for (int i = 0; i < 16; i++) {
            size_t b = g + (size_t)lane[i];
            if (b >= nb)
                continue;
            int sum = 0;
            for (int j = 0; j < 32; j++)
                sum += xq[b].qs[j];
            d[g + (size_t)i] = nn_f16_to_f32(xq[b].d);
            s8[g + (size_t)i] = 8 * sum;
        }
    return buf;
}

/* d_w of up to 16 blocks (mask of valid lanes) in the given lane order, as floats */
NN_AVX512 static inline __m512 gather_d(const void *first_block, __m512i byte_offsets, __mmask16 m)
{
    __m512i raw =
        _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, byte_offsets, first_block, 1);
    return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(raw));
}

NN_AVX512 static inline __mmask16 lane_mask(const int lane[16], size_t m)
{
    return _mm512_cmplt_epi32_mask(_mm512_loadu_si512(lane), _mm512_set1_epi32((int)m));
}

NN_AVX512 static inline __m512i lane_offsets(const int lane[16], int block_bytes)
{
    return _mm512_mullo_epi32(_mm512_loadu_si512(lane), _mm512_set1_epi32(block_bytes));
}

NN_AVX512 static inline __m256i ld_q8(const nn_block_q8_0 *w, bool present)
{
    return present ? _mm256_loadu_si256((const __m256i *)w->qs) : _mm256_setzero_si256();
}

/* the 16 packed bytes of blocks w[0..3] side by side; blocks at or past `m` read as zero */
NN_AVX512 static inline __m512i ld_q4_quad(const nn_block_q4_0 *w, size_t m)
{
    __m512i z = _mm512_castsi128_si512(m > 0 ? _mm_loadu_si128((const __m128i *)w[0].qs)
                                             : _mm_setzero_si128());
    if (m > 1)
        z = _mm512_mask_broadcast_i32x4(z, 0x00f0, _mm_loadu_si128((const __m128i *)w[1].qs));
    if (m > 2)
        z = _mm512_mask_broadcast_i32x4(z, 0x0f00, _mm_loadu_si128((const __m128i *)w[2].qs));
    if (m > 3)
        z = _mm512_mask_broadcast_i32x4(z, 0xf000, _mm_loadu_si128((const __m128i *)w[3].qs));
    return z;
}

#define NN_AVX512_VNNI                                                                             \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c")))

#define ROWS_FN NN_AVX512 static inline __attribute__((always_inline))
#define ROWS_NAME(x) x
#define ROWS_VNNI 0
#include "nn/kern_avx512_rows.h"
#undef ROWS_FN
#undef ROWS_NAME
#undef ROWS_VNNI
#define ROWS_FN NN_AVX512_VNNI static inline __attribute__((always_inline))
#define ROWS_NAME(x) x##_vnni
#define ROWS_VNNI 1
#include "nn/kern_avx512_rows.h"
#undef ROWS_FN
#undef ROWS_NAME
#undef ROWS_VNNI

/* whether the kernels below use the VNNI instantiation (set by nn__avx512_vnni) */
static bool g_vnni;

bool nn__avx512_vnni(bool on)
{
    __builtin_cpu_init();
    g_vnni = on && __builtin_cpu_supports("avx512vnni");
    return g_vnni;
}

NN_AVX512_VNNI static float dot_q8_0_vnni(const nn_block_q8_0 *w, const void *xv, size_t nb)
{
    float y;
    q8_rows_vnni(w, xv, 0, nb, 1, &y, 1);
    return y;
}

NN_AVX512_VNNI static float dot_q4_0_vnni(const nn_block_q4_0 *w, const void *xv, size_t nb)
{
    float y;
    q4_rows_vnni(w, xv, 0, nb, 1, &y, 1);
    return y;
}

NN_AVX512_VNNI static void rows_q8_0_vnni(const nn_block_q8_0 *w, const void *xp, size_t ps,
                                          size_t nb, int R, float *y, size_t ys)
{
    switch (R) {
    case 1: q8_rows_vnni(w, xp, ps, nb, 1, y, ys); break;
    case 2: q8_rows_vnni(w, xp, ps, nb, 2, y, ys); break;
    case 3: q8_rows_vnni(w, xp, ps, nb, 3, y, ys); break;
    default: q8_rows_vnni(w, xp, ps, nb, 4, y, ys); break;
    }
}

NN_AVX512_VNNI static void rows_q4_0_vnni(const nn_block_q4_0 *w, const void *xp, size_t ps,
                                          size_t nb, int R, float *y, size_t ys)
{
    switch (R) {
    case 1: q4_rows_vnni(w, xp, ps, nb, 1, y, ys); break;
    case 2: q4_rows_vnni(w, xp, ps, nb, 2, y, ys); break;
    case 3: q4_rows_vnni(w, xp, ps, nb, 3, y, ys); break;
    default: q4_rows_vnni(w, xp, ps, nb, 4, y, ys); break;
    }
}

NN_AVX512 static float dot_q8_0(const nn_block_q8_0 *w, const void *xv, size_t nb)
{
    if (g_vnni)
        return dot_q8_0_vnni(w, xv, nb);
    float y;
    q8_rows(w, xv, 0, nb, 1, &y, 1);
    return y;
}

NN_AVX512 static float dot_q4_0(const nn_block_q4_0 *w, const void *xv, size_t nb)
{
    if (g_vnni)
        return dot_q4_0_vnni(w, xv, nb);
    float y;
    q4_rows(w, xv, 0, nb, 1, &y, 1);
    return y;
}

NN_AVX512 static void rows_q8_0(const nn_block_q8_0 *w, const void *xp, size_t ps, size_t nb,
                                int R, float *y, size_t ys)
{
    if (g_vnni) {
        rows_q8_0_vnni(w, xp, ps, nb, R, y, ys);
        return;
    }
    switch (R) {
    case 1: q8_rows(w, xp, ps, nb, 1, y, ys); break;
    case 2: q8_rows(w, xp, ps, nb, 2, y, ys); break;
    case 3: q8_rows(w, xp, ps, nb, 3, y, ys); break;
    default: q8_rows(w, xp, ps, nb, 4, y, ys); break;
    }
}

NN_AVX512 static void rows_q4_0(const nn_block_q4_0 *w, const void *xp, size_t ps, size_t nb,
                                int R, float *y, size_t ys)
{
    if (g_vnni) {
        rows_q4_0_vnni(w, xp, ps, nb, R, y, ys);
        return;
    }
    switch (R) {
    case 1: q4_rows(w, xp, ps, nb, 1, y, ys); break;
    case 2: q4_rows(w, xp, ps, nb, 2, y, ys); break;
    case 3: q4_rows(w, xp, ps, nb, 3, y, ys); break;
    default: q4_rows(w, xp, ps, nb, 4, y, ys); break;
    }
}

/* ggml's reference Q8_0 quantizer, bit for bit: the same IEEE operations (amax, amax/127, 1/d,
 * x*id) and roundf's half-away-from-zero rounding done exactly as trunc(v) plus one where the
 * (exact) remainder is at least one half; NaN gives 0 and the clamp to +-127 as in the scalar
 * code. */
NN_AVX512 static inline __m128i q8_round16(__m512 v)
{
    __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_sub_ps(v, t);
    __mmask16 up = _mm512_cmp_ps_mask(_mm512_abs_ps(f), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    __m512 one = _mm512_or_ps(_mm512_set1_ps(1.0f),
                              _mm512_and_ps(v, _mm512_castsi512_ps(_mm512_set1_epi32(INT32_MIN))));
    t = _mm512_mask_add_ps(t, up, t, one);
    t = _mm512_min_ps(_mm512_max_ps(t, _mm512_set1_ps(-127.0f)), _mm512_set1_ps(127.0f));
    t = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, v, _CMP_ORD_Q), t); /* NaN -> 0 */
    return _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(t));
}

NN_AVX512 static void quantize_q8_0(const float *src, nn_block_q8_0 *dst, size_t n)
{
    for (size_t b = 0; b < n / NN_QK; b++) {
        const float *x = src + b * NN_QK;
        __m512 x0 = _mm512_loadu_ps(x), x1 = _mm512_loadu_ps(x + 16);
        /* max(|x|, m) skips NaN like fmaxf: a NaN first operand gives the second */
        __m512 m = _mm512_max_ps(_mm512_abs_ps(x0), _mm512_setzero_ps());
        m = _mm512_max_ps(_mm512_abs_ps(x1), m);
        float amax = _mm512_reduce_max_ps(m);
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        dst[b].d = nn_f32_to_f16(d);
        __m512 vid = _mm512_set1_ps(id);
        _mm_storeu_si128((__m128i *)dst[b].qs, q8_round16(_mm512_mul_ps(x0, vid)));
        _mm_storeu_si128((__m128i *)(dst[b].qs + 16), q8_round16(_mm512_mul_ps(x1, vid)));
    }
}

NN_AVX512 static void f16_to_f32_row(const nn_f16_t *src, float *dst, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(dst + i, ld_f16(src + i));
    for (; i < n; i++)
        dst[i] = _cvtsh_ss(src[i]);
}

NN_AVX512 static void deq_q8_0_row(const nn_block_q8_0 *src, float *dst, size_t n)
{
    for (size_t b = 0; b < n / NN_QK; b++) {
        __m512 d = _mm512_set1_ps(_cvtsh_ss(src[b].d));
        __m256i q = _mm256_loadu_si256((const __m256i *)src[b].qs);
        float *o = dst + b * NN_QK;
        _mm512_storeu_ps(o, _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
                                                 _mm256_castsi256_si128(q)))));
        _mm512_storeu_ps(o + 16, _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
                                                      _mm256_extracti128_si256(q, 1)))));
    }
}

NN_AVX512 static void deq_q4_0_row(const nn_block_q4_0 *src, float *dst, size_t n)
{
    const __m128i m = _mm_set1_epi8(0x0f), eight = _mm_set1_epi8(8);
    for (size_t b = 0; b < n / NN_QK; b++) {
        __m512 d = _mm512_set1_ps(_cvtsh_ss(src[b].d));
        __m128i q = _mm_loadu_si128((const __m128i *)src[b].qs);
        __m128i lo = _mm_sub_epi8(_mm_and_si128(q, m), eight);
        __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), m), eight);
        float *o = dst + b * NN_QK;
        _mm512_storeu_ps(o, _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(lo))));
        _mm512_storeu_ps(o + 16, _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(hi))));
    }
}

/* ---- own GEMM (used when OpenBLAS is absent or failed its check) ----
 * The classic packed scheme: op(B) in panels of 32 columns and op(A) (times alpha) in panels of 8
 * rows, both k-major and zero-padded, for blocks of KC x NC and MC x KC; an 8x32 micro-kernel
 * keeps 16 accumulators in registers. Blocking measured with CPU time: 8x32, MC 128, KC 384 gave
 * ~145 GFLOP/s per core, 6x32/96/256 ~125 (OpenBLAS SkylakeX ~165). Each element of C gets its
 * KC-blocks added in order, so the result depends on K only, not on how M or N are split over
 * threads. */
#define G_MR 8
#define G_NR 32
#define G_KC 384
#define G_MC 128
#define G_NC 2048

NN_AVX512 static void micro_8x32(int kc, const float *Ap, const float *Bp, float *C, int ldc,
                                 int mr, int nr)
{
    __m512 c[G_MR][2];
#pragma GCC unroll 8
    for (int r = 0; r < G_MR; r++)
        c[r][0] = c[r][1] = _mm512_setzero_ps();
    for (int k = 0; k < kc; k++) {
        __m512 b0 = _mm512_load_ps(Bp + k * G_NR), b1 = _mm512_load_ps(Bp + k * G_NR + 16);
#pragma GCC unroll 8
        for (int r = 0; r < G_MR; r++) {
            __m512 a = _mm512_set1_ps(Ap[k * G_MR + r]);
            c[r][0] = _mm512_fmadd_ps(a, b0, c[r][0]);
            c[r][1] = _mm512_fmadd_ps(a, b1, c[r][1]);
        }
    }
    __mmask16 m0 = (__mmask16)(nr >= 16 ? 0xffff : (1u << nr) - 1);
    __mmask16 m1 = (__mmask16)(nr >= 32 ? 0xffff : nr <= 16 ? 0 : (1u << (nr - 16)) - 1);
    for (int r = 0; r < mr; r++) {
        float *cr = C + (size_t)r * (size_t)ldc;
        _mm512_mask_storeu_ps(cr, m0, _mm512_add_ps(_mm512_maskz_loadu_ps(m0, cr), c[r][0]));
        _mm512_mask_storeu_ps(cr + 16, m1,
                              _mm512_add_ps(_mm512_maskz_loadu_ps(m1, cr + 16), c[r][1]));
    }
}

NN_AVX512 static void sgemm_own(bool ta, bool tb, int M, int N, int K, float alpha, const float *A,
                                int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++)
            C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
    if (K <= 0 || alpha == 0.0f)
        return;
    float *Ap = aligned_alloc(64, (size_t)G_MC * G_KC * sizeof(float));
    float *Bp = aligned_alloc(64, (size_t)G_KC * G_NC * sizeof(float));
    if (!Ap || !Bp) {
        /* no memory for packing: the naive loops still give the right answer */
        free(Ap);
        free(Bp);
        nn__sgemm_naive(ta, tb, M, N, K, alpha, A, lda, B, ldb, 1.0f, C, ldc);
        return;
    }
    for (int jc = 0; jc < N; jc += G_NC) {
        int nc = N - jc < G_NC ? N - jc : G_NC;
        for (int pc = 0; pc < K; pc += G_KC) {
            int kc = K - pc < G_KC ? K - pc : G_KC;
            for (int jp = 0; jp < nc; jp += G_NR) {
                float *dst = Bp + (size_t)jp * kc;
                for (int k = 0; k < kc; k++)
                    for (int j = 0; j < G_NR; j++) {
                        int col = jc + jp + j, row = pc + k;
                        dst[k * G_NR + j] = jp + j >= nc ? 0.0f
                                            : tb ? B[(size_t)col * ldb + row]
                                                 : B[(size_t)row * ldb + col];
                    }
            }
            for (int ic = 0; ic < M; ic += G_MC) {
                int mc = M - ic < G_MC ? M - ic : G_MC;
                for (int ip = 0; ip < mc; ip += G_MR) {
                    float *dst = Ap + (size_t)ip * kc;
                    for (int k = 0; k < kc; k++)
                        for (int r = 0; r < G_MR; r++) {
                            int row = ic + ip + r, col = pc + k;
                            dst[k * G_MR + r] = ip + r >= mc ? 0.0f
                                                : alpha * (ta ? A[(size_t)col * lda + row]
                                                              : A[(size_t)row * lda + col]);
                        }
                }
                for (int jp = 0; jp < nc; jp += G_NR)
                    for (int ip = 0; ip < mc; ip += G_MR)
                        micro_8x32(kc, Ap + (size_t)ip * kc, Bp + (size_t)jp * kc,
                                   C + (size_t)(ic + ip) * ldc + jc + jp, ldc,
                                   mc - ip < G_MR ? mc - ip : G_MR,
                                   nc - jp < G_NR ? nc - jp : G_NR);
            }
        }
    }
    free(Ap);
    free(Bp);
}

const nn__kernels_t nn__kernels_avx512 = {
    .name = "avx512",
    .dot_f32 = dot_f32,
    .axpy_f32 = axpy_f32,
    .dot_f16 = dot_f16,
    .dot_q8_0 = dot_q8_0,
    .dot_q4_0 = dot_q4_0,
    .quantize_q8_0 = quantize_q8_0,
    .xprep_bytes = xprep_bytes,
    .xprep = xprep,
    .rows_q8_0 = rows_q8_0,
    .rows_q4_0 = rows_q4_0,
    .f16_to_f32_row = f16_to_f32_row,
    .deq_q8_0_row = deq_q8_0_row,
    .deq_q4_0_row = deq_q4_0_row,
    .sgemm = sgemm_own,
};
