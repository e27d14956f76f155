/* nn AVX-512 kernels (F, BW, VL, DQ with FMA and F16C), compiled with function target attributes;
 * selected by nn_init when cpuid reports them all. Quantized dot products take two blocks per
 * 512-bit register and are reduced 16 blocks at a time (see the section below); VNNI is not
 * assumed. */
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "nn/internal.h"

#define NN_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")))

NN_AVX512 static float dot_f32(const float *a, const float *b, size_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
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
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
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

/* int8 products of a Q8_0 block pair: abs(w) times x with w's sign (there is no vpsignb) */
NN_AVX512 static inline __m512i q8_pair(__m512i w, __m512i x)
{
    __m512i aw = _mm512_abs_epi8(w);
    __m512i sx = _mm512_mask_sub_epi8(x, _mm512_movepi8_mask(w), _mm512_setzero_si512(), x);
    return _mm512_madd_epi16(_mm512_maddubs_epi16(aw, sx), _mm512_set1_epi16(1));
}

/* Q4_0 quad: 16 packed bytes of 4 blocks in q; 16 int32 sums, 4 per block (lane L: block L) */
NN_AVX512 static inline __m512i q4_quad(__m512i q, const int8_t *x)
{
    const __m512i m = _mm512_set1_epi8(0x0f);
    __m512i lo = _mm512_and_si512(q, m), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m);
    /* each maddubs sum is at most 2*15*127 = 3810, so two of them add up safely in int16 */
    __m512i s = _mm512_add_epi16(_mm512_maddubs_epi16(lo, _mm512_load_si512(x)),
                                 _mm512_maddubs_epi16(hi, _mm512_load_si512(x + 64)));
    return _mm512_madd_epi16(s, _mm512_set1_epi16(1));
}

/* Four quad registers -> 16 block sums, lane 4L+j holding block 4j+L (LANE_Q4) */
NN_AVX512 static inline __m512i reduce4(const __m512i v[4])
{
    __m512i t0 = _mm512_add_epi32(_mm512_unpacklo_epi32(v[0], v[1]),
                                  _mm512_unpackhi_epi32(v[0], v[1]));
    __m512i t1 = _mm512_add_epi32(_mm512_unpacklo_epi32(v[2], v[3]),
                                  _mm512_unpackhi_epi32(v[2], v[3]));
    return _mm512_add_epi32(_mm512_unpacklo_epi64(t0, t1), _mm512_unpackhi_epi64(t0, t1));
}

/* Eight Q8_0 pair registers -> 16 block sums in LANE_Q8 order */
NN_AVX512 static inline __m512i reduce8(const __m512i v[8])
{
    __m512i t[4], u[2];
    for (int i = 0; i < 4; i++)
        t[i] = _mm512_add_epi32(_mm512_unpacklo_epi32(v[2 * i], v[2 * i + 1]),
                                _mm512_unpackhi_epi32(v[2 * i], v[2 * i + 1]));
    for (int i = 0; i < 2; i++)
        u[i] = _mm512_add_epi32(_mm512_unpacklo_epi64(t[2 * i], t[2 * i + 1]),
                                _mm512_unpackhi_epi64(t[2 * i], t[2 * i + 1]));
    return _mm512_add_epi32(_mm512_shuffle_i32x4(u[0], u[1], _MM_SHUFFLE(2, 0, 2, 0)),
                            _mm512_shuffle_i32x4(u[0], u[1], _MM_SHUFFLE(3, 1, 3, 1)));
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

NN_AVX512 static float dot_q8_0(const nn_block_q8_0 *w, const void *xv, size_t nb)
{
    size_t nbp = (nb + 15) / 16 * 16;
    const int8_t *xqs = xv;
    const float *xd = (const float *)(xqs + nbp * 32);
    const __m512i offs = lane_offsets(LANE_Q8, sizeof *w);
    __m512 acc = _mm512_setzero_ps();
    __m512i v[8];
    for (size_t g = 0; g < nb; g += 16) {
        size_t m = nb - g < 16 ? nb - g : 16;
        const nn_block_q8_0 *wb = w + g;
        const int8_t *xb = xqs + g * 32;
        if (m == 16) {
            for (int k = 0; k < 8; k++) {
                __m512i wz = _mm512_inserti64x4(
                    _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)wb[2 * k].qs)),
                    _mm256_loadu_si256((const __m256i *)wb[2 * k + 1].qs), 1);
                v[k] = q8_pair(wz, _mm512_load_si512(xb + 64 * k));
            }
        } else {
            for (int k = 0; k < 8; k++) {
                size_t b0 = 2 * (size_t)k;
                if (b0 >= m) {
                    v[k] = _mm512_setzero_si512();
                    continue;
                }
                __m512i wz = _mm512_inserti64x4(_mm512_castsi256_si512(ld_q8(wb + b0, b0 < m)),
                                                ld_q8(wb + b0 + 1, b0 + 1 < m), 1);
                v[k] = q8_pair(wz, _mm512_load_si512(xb + 64 * k));
            }
        }
        __m512i s = reduce8(v);
        __m512 sc = _mm512_mul_ps(gather_d(&wb->d, offs, m == 16 ? 0xffff : lane_mask(LANE_Q8, m)),
                                  _mm512_load_ps(xd + g));
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), sc, acc);
    }
    return _mm512_reduce_add_ps(acc);
}

/* the 16 packed bytes of blocks w[0..3] side by side; blocks at or past `m` read as zero */
NN_AVX512 static inline __m512i ld_q4_quad(const nn_block_q4_0 *w, size_t m)
{
    __m512i z = _mm512_castsi128_si512(m > 0 ? _mm_loadu_si128((const __m128i *)w[0].qs)
                                             : _mm_setzero_si128());
    if (m > 1)
        z = _mm512_inserti32x4(z, _mm_loadu_si128((const __m128i *)w[1].qs), 1);
    if (m > 2)
        z = _mm512_inserti32x4(z, _mm_loadu_si128((const __m128i *)w[2].qs), 2);
    if (m > 3)
        z = _mm512_inserti32x4(z, _mm_loadu_si128((const __m128i *)w[3].qs), 3);
    return z;
}

NN_AVX512 static float dot_q4_0(const nn_block_q4_0 *w, const void *xv, size_t nb)
{
    size_t nbp = (nb + 15) / 16 * 16;
    const int8_t *xqs = xv;
    const float *xd = (const float *)(xqs + nbp * 32);
    const int32_t *xs8 = (const int32_t *)(xd + nbp);
    const __m512i offs = lane_offsets(LANE_Q4, sizeof *w);
    __m512 acc = _mm512_setzero_ps();
    __m512i v[4];
    for (size_t g = 0; g < nb; g += 16) {
        size_t m = nb - g < 16 ? nb - g : 16;
        const nn_block_q4_0 *wb = w + g;
        const int8_t *xb = xqs + g * 32;
        if (m == 16) {
            for (int k = 0; k < 4; k++) {
                const nn_block_q4_0 *q = wb + 4 * k;
                __m512i z = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)q[0].qs));
                z = _mm512_inserti32x4(z, _mm_loadu_si128((const __m128i *)q[1].qs), 1);
                z = _mm512_inserti32x4(z, _mm_loadu_si128((const __m128i *)q[2].qs), 2);
                z = _mm512_inserti32x4(z, _mm_loadu_si128((const __m128i *)q[3].qs), 3);
                v[k] = q4_quad(z, xb + 128 * k);
            }
        } else {
            for (int k = 0; k < 4; k++) {
                size_t b0 = 4 * (size_t)k, left = m > b0 ? m - b0 : 0;
                if (!left) {
                    v[k] = _mm512_setzero_si512();
                    continue;
                }
                v[k] = q4_quad(ld_q4_quad(wb + b0, left), xb + 128 * k);
            }
        }
        /* sum((q-8)*x) = sum(q*x) - 8*sum(x), exact in int32; padding blocks give 0 - 0 */
        __m512i s = _mm512_sub_epi32(reduce4(v), _mm512_load_si512(xs8 + g));
        __m512 sc = _mm512_mul_ps(gather_d(&wb->d, offs, m == 16 ? 0xffff : lane_mask(LANE_Q4, m)),
                                  _mm512_load_ps(xd + g));
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), sc, acc);
    }
    return _mm512_reduce_add_ps(acc);
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
 * The classic packed scheme: op(B) in panels of 32 columns and op(A) (times alpha) in panels of 6
 * rows, both k-major and zero-padded, for blocks of KC x NC and MC x KC; a 6x32 micro-kernel
 * keeps 12 accumulators in registers. Each element of C gets its KC-blocks added in order, so
 * the result depends on K only, not on how M or N are split over threads. */
#define G_MR 6
#define G_NR 32
#define G_KC 256
#define G_MC 96
#define G_NC 2048

NN_AVX512 static void micro_6x32(int kc, const float *Ap, const float *Bp, float *C, int ldc,
                                 int mr, int nr)
{
    __m512 c[G_MR][2];
#pragma GCC unroll 6
    for (int r = 0; r < G_MR; r++)
        c[r][0] = c[r][1] = _mm512_setzero_ps();
    for (int k = 0; k < kc; k++) {
        __m512 b0 = _mm512_load_ps(Bp + k * G_NR), b1 = _mm512_load_ps(Bp + k * G_NR + 16);
#pragma GCC unroll 6
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
                        micro_6x32(kc, Ap + (size_t)ip * kc, Bp + (size_t)jp * kc,
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
    .xprep_bytes = xprep_bytes,
    .xprep = xprep,
    .f16_to_f32_row = f16_to_f32_row,
    .deq_q8_0_row = deq_q8_0_row,
    .deq_q4_0_row = deq_q4_0_row,
    .sgemm = sgemm_own,
};
