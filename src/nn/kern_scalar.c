/* nn scalar kernels: the portable reference implementation of every kernel in the table, used on
 * CPUs without AVX2 and (through PERSONA_NN_ISA=scalar) as the baseline in tests. The SIMD files
 * call nn__quantize_row_q8_0 and nn__sgemm_naive from here for pieces they do not vectorise.
 * Accumulation orders are fixed by the code below (never by threads). */
#include <string.h>

#include "nn/internal.h"

static float dot_f32(const float *a, const float *b, size_t n)
{
    /* four partial sums: a bit more accurate than one, and the compiler can pipeline them */
    float s[4] = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int j = 0; j < 4; j++)
            s[j] += a[i + j] * b[i + j];
    for (; i < n; i++)
        s[0] += a[i] * b[i];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

static void axpy_f32(float a, const float *x, float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] += a * x[i];
}

static float dot_f16(const nn_f16_t *w, const float *x, size_t n)
{
    float s[4] = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int j = 0; j < 4; j++)
            s[j] += nn_f16_to_f32(w[i + j]) * x[i + j];
    for (; i < n; i++)
        s[0] += nn_f16_to_f32(w[i]) * x[i];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

static float dot_q8_0(const nn_block_q8_0 *w, const void *xv, size_t nb)
{
    const nn_block_q8_0 *x = xv;
    float sum = 0.0f;
    for (size_t b = 0; b < nb; b++) {
        int sumi = 0;
        for (int j = 0; j < NN_QK; j++)
            sumi += w[b].qs[j] * x[b].qs[j];
        sum += (float)sumi * (nn_f16_to_f32(w[b].d) * nn_f16_to_f32(x[b].d));
    }
    return sum;
}

static float dot_q4_0(const nn_block_q4_0 *w, const void *xv, size_t nb)
{
    const nn_block_q8_0 *x = xv;
    float sum = 0.0f;
    for (size_t b = 0; b < nb; b++) {
        int sumi = 0;
        for (int j = 0; j < NN_QK / 2; j++) {
            int lo = (w[b].qs[j] & 0x0f) - 8, hi = (w[b].qs[j] >> 4) - 8;
            sumi += lo * x[b].qs[j] + hi * x[b].qs[j + NN_QK / 2];
        }
        sum += (float)sumi * (nn_f16_to_f32(w[b].d) * nn_f16_to_f32(x[b].d));
    }
    return sum;
}

static void f16_to_f32_row(const nn_f16_t *src, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = nn_f16_to_f32(src[i]);
}

static void deq_q8_0_row(const nn_block_q8_0 *src, float *dst, size_t n)
{
    for (size_t b = 0; b < n / NN_QK; b++) {
        float d = nn_f16_to_f32(src[b].d);
        for (int j = 0; j < NN_QK; j++)
            dst[b * NN_QK + j] = (float)src[b].qs[j] * d;
    }
}

static void deq_q4_0_row(const nn_block_q4_0 *src, float *dst, size_t n)
{
    for (size_t b = 0; b < n / NN_QK; b++) {
        float d = nn_f16_to_f32(src[b].d);
        for (int j = 0; j < NN_QK / 2; j++) {
            dst[b * NN_QK + j] = (float)((src[b].qs[j] & 0x0f) - 8) * d;
            dst[b * NN_QK + j + NN_QK / 2] = (float)((src[b].qs[j] >> 4) - 8) * d;
        }
    }
}

/* C = alpha*op(A)op(B) + beta*C, row-major. i-k-j order so the inner loop streams rows of B and
 * C when B is not transposed; beta == 0 overwrites C (NaN in C does not propagate, as in BLAS). */
void nn__sgemm_naive(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc)
{
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * (size_t)ldc;
        for (int j = 0; j < N; j++)
            c[j] = beta == 0.0f ? 0.0f : beta * c[j];
        if (!tb) {
            for (int k = 0; k < K; k++) {
                float a = alpha * (ta ? A[(size_t)k * (size_t)lda + (size_t)i]
                                      : A[(size_t)i * (size_t)lda + (size_t)k]);
                const float *b = B + (size_t)k * (size_t)ldb;
                for (int j = 0; j < N; j++)
                    c[j] += a * b[j];
            }
        } else {
            for (int j = 0; j < N; j++) {
                const float *b = B + (size_t)j * (size_t)ldb;
                float s = 0.0f;
                for (int k = 0; k < K; k++)
                    s += (ta ? A[(size_t)k * (size_t)lda + (size_t)i]
                             : A[(size_t)i * (size_t)lda + (size_t)k]) *
                         b[k];
                c[j] += alpha * s;
            }
        }
    }
}

const nn__kernels_t nn__kernels_scalar = {
    .name = "scalar",
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
