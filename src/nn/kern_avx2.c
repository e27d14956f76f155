/* nn AVX2 kernels (AVX2 + FMA + F16C), compiled with function target attributes so the rest of
 * the program needs no -m flags; nn_init selects this table only when cpuid reports all three.
 * The quantized dot products are ggml's: x is Q8_0, each block's 32 products are summed in
 * integers (sign trick + maddubs + madd), then scaled by d_w*d_x into a float accumulator. */
#include <immintrin.h>

#include "nn/internal.h"

#define NN_AVX2 __attribute__((target("avx2,fma,f16c")))

/* Weights are prefetched this many bytes ahead into L2, as in the AVX-512 kernels (streaming
 * from memory the hardware prefetchers alone leave ~15% of the bandwidth unused). */
#define NN_PREFETCH_AHEAD 4096
#define NN_PF(p) _mm_prefetch((const char *)(p) + NN_PREFETCH_AHEAD, _MM_HINT_T1)

NN_AVX2 static inline float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

NN_AVX2 static float dot_f32(const float *a, const float *b, size_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        NN_PF(a + i);
        NN_PF(a + i + 16);
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float s = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

NN_AVX2 static void axpy_f32(float a, const float *x, float *y, size_t n)
{
    __m256 va = _mm256_set1_ps(a);
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i,
                         _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] += a * x[i];
}

NN_AVX2 static float dot_f16(const nn_f16_t *w, const float *x, size_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        NN_PF(w + i);
        s0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i))),
                             _mm256_loadu_ps(x + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i + 8))),
                             _mm256_loadu_ps(x + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i + 16))),
                             _mm256_loadu_ps(x + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i + 24))),
                             _mm256_loadu_ps(x + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i))),
                             _mm256_loadu_ps(x + i), s0);
    float s = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++)
        s += _cvtsh_ss(w[i]) * x[i];
    return s;
}

/* 32 int8 products of one block pair, as 8 int32 partial sums */
NN_AVX2 static inline __m256i block_dot(__m256i w, __m256i x)
{
    __m256i aw = _mm256_sign_epi8(w, w), sx = _mm256_sign_epi8(x, w);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(aw, sx), _mm256_set1_epi16(1));
}

NN_AVX2 static inline __m256i q4_bytes(const uint8_t *qs)
{
    __m128i q = _mm_loadu_si128((const __m128i *)qs), m = _mm_set1_epi8(0x0f);
    __m128i lo = _mm_and_si128(q, m), hi = _mm_and_si128(_mm_srli_epi16(q, 4), m);
    return _mm256_sub_epi8(_mm256_set_m128i(hi, lo), _mm256_set1_epi8(8));
}

NN_AVX2 static float dot_q8_0(const nn_block_q8_0 *w, const void *xv, size_t nb)
{
    const nn_block_q8_0 *x = xv;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    size_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        NN_PF(w + b);
        NN_PF((const char *)(w + b) + 64);
        __m256 d0 = _mm256_set1_ps(_cvtsh_ss(w[b].d) * _cvtsh_ss(x[b].d));
        __m256 d1 = _mm256_set1_ps(_cvtsh_ss(w[b + 1].d) * _cvtsh_ss(x[b + 1].d));
        __m256i p0 = block_dot(_mm256_loadu_si256((const __m256i *)w[b].qs),
                               _mm256_loadu_si256((const __m256i *)x[b].qs));
        __m256i p1 = block_dot(_mm256_loadu_si256((const __m256i *)w[b + 1].qs),
                               _mm256_loadu_si256((const __m256i *)x[b + 1].qs));
        acc0 = _mm256_fmadd_ps(d0, _mm256_cvtepi32_ps(p0), acc0);
        acc1 = _mm256_fmadd_ps(d1, _mm256_cvtepi32_ps(p1), acc1);
    }
    for (; b < nb; b++) {
        __m256 d = _mm256_set1_ps(_cvtsh_ss(w[b].d) * _cvtsh_ss(x[b].d));
        __m256i p = block_dot(_mm256_loadu_si256((const __m256i *)w[b].qs),
                              _mm256_loadu_si256((const __m256i *)x[b].qs));
        acc0 = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc0);
    }
    return hsum256(_mm256_add_ps(acc0, acc1));
}

NN_AVX2 static float dot_q4_0(const nn_block_q4_0 *w, const void *xv, size_t nb)
{
    const nn_block_q8_0 *x = xv;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    size_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        NN_PF(w + b);
        __m256 d0 = _mm256_set1_ps(_cvtsh_ss(w[b].d) * _cvtsh_ss(x[b].d));
        __m256 d1 = _mm256_set1_ps(_cvtsh_ss(w[b + 1].d) * _cvtsh_ss(x[b + 1].d));
        __m256i p0 = block_dot(q4_bytes(w[b].qs), _mm256_loadu_si256((const __m256i *)x[b].qs));
        __m256i p1 =
            block_dot(q4_bytes(w[b + 1].qs), _mm256_loadu_si256((const __m256i *)x[b + 1].qs));
        acc0 = _mm256_fmadd_ps(d0, _mm256_cvtepi32_ps(p0), acc0);
        acc1 = _mm256_fmadd_ps(d1, _mm256_cvtepi32_ps(p1), acc1);
    }
    for (; b < nb; b++) {
        __m256 d = _mm256_set1_ps(_cvtsh_ss(w[b].d) * _cvtsh_ss(x[b].d));
        __m256i p = block_dot(q4_bytes(w[b].qs), _mm256_loadu_si256((const __m256i *)x[b].qs));
        acc0 = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc0);
    }
    return hsum256(_mm256_add_ps(acc0, acc1));
}

NN_AVX2 static void f16_to_f32_row(const nn_f16_t *src, float *dst, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++)
        dst[i] = _cvtsh_ss(src[i]);
}

NN_AVX2 static void deq_q8_0_row(const nn_block_q8_0 *src, float *dst, size_t n)
{
    for (size_t b = 0; b < n / NN_QK; b++) {
        __m256 d = _mm256_set1_ps(_cvtsh_ss(src[b].d));
        for (int j = 0; j < NN_QK; j += 8) {
            __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(src[b].qs + j)));
            _mm256_storeu_ps(dst + b * NN_QK + j, _mm256_mul_ps(d, _mm256_cvtepi32_ps(q)));
        }
    }
}

NN_AVX2 static void deq_q4_0_row(const nn_block_q4_0 *src, float *dst, size_t n)
{
    for (size_t b = 0; b < n / NN_QK; b++) {
        __m256 d = _mm256_set1_ps(_cvtsh_ss(src[b].d));
        __m256i q = q4_bytes(src[b].qs);
        __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
        float *o = dst + b * NN_QK;
        _mm256_storeu_ps(o, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo))));
        _mm256_storeu_ps(o + 8, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(
                                                     _mm_srli_si128(lo, 8)))));
        _mm256_storeu_ps(o + 16, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi))));
        _mm256_storeu_ps(o + 24, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(
                                                      _mm_srli_si128(hi, 8)))));
    }
}

const nn__kernels_t nn__kernels_avx2 = {
    .name = "avx2",
    .dot_f32 = dot_f32,
    .axpy_f32 = axpy_f32,
    .dot_f16 = dot_f16,
    .dot_q8_0 = dot_q8_0,
    .dot_q4_0 = dot_q4_0,
    .f16_to_f32_row = f16_to_f32_row,
    .deq_q8_0_row = deq_q8_0_row,
    .deq_q4_0_row = deq_q4_0_row,
    .sgemm = nn__sgemm_naive,
};

