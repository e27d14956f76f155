/* nn internal: what the files of src/nn share — the table of per-ISA kernels that nn_init fills
 * once, the scalar reference kernels every ISA falls back to, and hooks the unit tests use to
 * switch ISA in-process. Nothing here is part of the module's interface.
 *
 * Invariant: a kernel computes each output element with an order of operations that depends only
 * on the ISA and the sizes, never on which thread runs it or how rows are grouped, so results are
 * bit-identical for any thread count. */
#ifndef PERSONA_NN_INTERNAL_H
#define PERSONA_NN_INTERNAL_H

#include "nn/nn.h"

typedef enum { NN__ISA_SCALAR = 0, NN__ISA_AVX2 = 1, NN__ISA_AVX512 = 2 } nn__isa_t;

typedef struct {
    const char *name;
    float (*dot_f32)(const float *a, const float *b, size_t n);
    void (*axpy_f32)(float a, const float *x, float *y, size_t n);
    float (*dot_f16)(const nn_f16_t *w, const float *x, size_t n);
    /* nb blocks of 32. x is the input row quantized to Q8_0 — as nn_block_q8_0 blocks, or, when
     * the table has xprep, in the layout xprep made of them (into xprep_bytes(nb) bytes at a
     * 64-byte aligned buf; once per product, shared by all rows and threads). */
    float (*dot_q8_0)(const nn_block_q8_0 *w, const void *x, size_t nb);
    float (*dot_q4_0)(const nn_block_q4_0 *w, const void *x, size_t nb);
    /* Optional (NULL: the scalar reference): ggml's reference Q8_0 quantizer, bit for bit. */
    void (*quantize_q8_0)(const float *src, nn_block_q8_0 *dst, size_t n);
    size_t (*xprep_bytes)(size_t nb);
    const void *(*xprep)(nn_type_t wtype, const nn_block_q8_0 *xq, size_t nb, void *buf);
    /* Optional (NULL: nn_matmul takes the GEMM path): y[r*ys] = w . x_r for R = 1..4 rows of x
     * made by xprep at xp + r*ps, loading each weight block once for all R; bit-identical to the
     * dot kernel row by row. */
    void (*rows_q8_0)(const nn_block_q8_0 *w, const void *xp, size_t ps, size_t nb, int R,
                      float *y, size_t ys);
    void (*rows_q4_0)(const nn_block_q4_0 *w, const void *xp, size_t ps, size_t nb, int R,
                      float *y, size_t ys);
    /* Row conversions used by nn_matmul's GEMM path; n a multiple of 32 for quantized types. */
    void (*f16_to_f32_row)(const nn_f16_t *src, float *dst, size_t n);
    void (*deq_q8_0_row)(const nn_block_q8_0 *src, float *dst, size_t n);
    void (*deq_q4_0_row)(const nn_block_q4_0 *src, float *dst, size_t n);
    /* Own single-threaded GEMM for when OpenBLAS is absent or failed its check (row-major,
     * C = alpha*op(A)op(B) + beta*C). */
    void (*sgemm)(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc);
} nn__kernels_t;

extern const nn__kernels_t nn__kernels_scalar;
extern const nn__kernels_t nn__kernels_avx2;
extern const nn__kernels_t nn__kernels_avx512;

/* The active table (set by nn_init, changed only by nn__set_isa). */
extern const nn__kernels_t *nn__k;

/* Best ISA this CPU (and OS) supports. */
nn__isa_t nn__isa_best(void);
/* Tests: switch the kernels in-process. -1 if the CPU lacks it. Not thread-safe against
 * concurrent kernel calls. */
int nn__set_isa(nn__isa_t isa);
nn__isa_t nn__get_isa(void);
/* AVX-512 table: use VNNI (vpdpbusd) in the quantized kernels when the CPU has it (same bits,
 * faster). Returns whether it is now in use. nn_init turns it on unless PERSONA_NN_VNNI=0. */
bool nn__avx512_vnni(bool on);
/* Tests: force nn_sgemm to use the own kernels (true) or OpenBLAS when loaded (false). */
void nn__sgemm_force_own(bool own);
bool nn__blas_loaded(void);
/* Tests: whether nn_matmul with n rows of this type quantizes X to Q8_0 (integer path or n < 4)
 * rather than using F32 GEMM. */
bool nn__matmul_quantizes_x(nn_type_t type, size_t cols, size_t n);
/* nn_matmul takes the integer path (when the ISA has it) for batches of 2 up to a number of rows
 * that depends on the type and width of W, F32 GEMM above; SIZE_MAX (the default) means that
 * choice, any other value replaces it (tests use 0 and a large value to exercise both paths). */
extern size_t nn__matmul_int_max_n;

/* Scalar reference pieces shared by the SIMD files (tails, quantization of x). */
void nn__quantize_row_q8_0(const float *src, nn_block_q8_0 *dst, size_t n);
/* The same through the active table's kernel (identical bits, faster). */
void nn__quantize_x_q8_0(const float *src, nn_block_q8_0 *dst, size_t n);
void nn__sgemm_naive(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc);

/* gemm.c: load OpenBLAS (called once by nn_init). 0 when loaded and checked, -1 otherwise (the
 * own GEMM is used then). */
int nn__blas_load(char *info, size_t cap);

#endif
