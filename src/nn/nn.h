/* nn: the numeric kernels shared by persona's neural-network engines (the text transformer in
 * src/llm and src/train; the face networks later): tensor element types and their block formats,
 * a thread pool, typed matrix-vector and matrix-matrix products, and single-precision GEMM.
 *
 * Types and formats are GGML's, bit for bit, so GGUF files written by other tools can be used
 * directly from their mmapped bytes:
 *   NN_F32  = 0  plain floats
 *   NN_F16  = 1  IEEE half floats
 *   NN_Q4_0 = 2  blocks of 32: f16 scale d, 16 bytes; element j<16 is (lo nibble of qs[j]) - 8,
 *                element j+16 is (hi nibble of qs[j]) - 8, times d            (18 bytes/block)
 *   NN_Q8_0 = 8  blocks of 32: f16 scale d, 32 int8; element = q * d          (34 bytes/block)
 * Quantization rounds like ggml's reference quantizers (Q8_0: d = amax/127, q = round(x/d);
 * Q4_0: d = max/-8 where max is the signed value of largest magnitude, q = min(15, (int)(x/d + 8.5))).
 *
 * Matrices are row-major. A weight matrix W of `rows` x `cols` stores each row as
 * nn_row_bytes(type, cols) contiguous bytes (this is GGUF's layout with ne[0] = cols).
 *
 * Kernels: products are dispatched at nn_init() to AVX-512 (with VNNI when present), AVX2+FMA or
 * scalar code by what the CPU has (PERSONA_NN_ISA=scalar|avx2|avx512 forces one, for tests;
 * PERSONA_NN_VNNI=0 turns VNNI off, which changes speed only). nn_sgemm uses OpenBLAS with a
 * kernel set chosen reliably for this CPU and checked against a reference at init
 * (PERSONA_NN_BLAS=off: the own kernels). nn_init sets OPENBLAS_CORETYPE/OPENBLAS_NUM_THREADS
 * when unset, so call it early in main, before other threads use the environment.
 * docs/kernels.md has the details and measured figures.
 *
 * Threads: functions taking an nn_pool_t split their rows over the pool's threads; a NULL pool
 * means "the calling thread only". Results never depend on the thread count except where noted
 * (nn_sgemm: fixed for a given thread count). They do depend on the ISA. */
#ifndef PERSONA_NN_H
#define PERSONA_NN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    NN_F32 = 0,
    NN_F16 = 1,
    NN_Q4_0 = 2,
    NN_Q8_0 = 8,
} nn_type_t;

#define NN_QK 32 /* elements per quantized block */

typedef uint16_t nn_f16_t;
typedef struct {
    nn_f16_t d;
    int8_t qs[NN_QK];
} nn_block_q8_0;
typedef struct {
    nn_f16_t d;
    uint8_t qs[NN_QK / 2];
} nn_block_q4_0;

/* Loads kernels and OpenBLAS, runs the self-check. Idempotent and thread-safe; every other
 * function calls it as needed, so callers only need it to see errors early. 0 or -1. */
int nn_init(void);
/* One line for logs and benchmarks, e.g. "isa=avx512 blas=openblas-0.3.21 core=SkylakeX". */
const char *nn_backend_info(void);

/* ==== types ==== */
bool nn_type_valid(uint32_t type);              /* one of the four above */
const char *nn_type_name(nn_type_t type);       /* "f32", "f16", "q4_0", "q8_0" */
int nn_type_parse(const char *name, nn_type_t *out); /* inverse of nn_type_name, case-insensitive */
size_t nn_type_block_elems(nn_type_t type);     /* 1 for F32/F16, 32 for Q4_0/Q8_0 */
size_t nn_type_block_bytes(nn_type_t type);     /* 4, 2, 18, 34 */
/* Bytes of a row of n elements; 0 when n is not a multiple of the block size. */
size_t nn_row_bytes(nn_type_t type, size_t n);

float nn_f16_to_f32(nn_f16_t h);
nn_f16_t nn_f32_to_f16(float f); /* round to nearest even, like F16C */
/* n must be a multiple of nn_type_block_elems(type). */
void nn_quantize_row(nn_type_t type, const float *src, void *dst, size_t n);
void nn_dequantize_row(nn_type_t type, const void *src, float *dst, size_t n);

/* ==== thread pool ==== */
typedef struct nn_pool nn_pool_t;
/* n_threads counts the calling thread: a pool of 2 starts one extra thread. 0 = all cores. */
int nn_pool_create(int n_threads, nn_pool_t **out);
void nn_pool_free(nn_pool_t **pool); /* NULL-safe */
int nn_pool_threads(const nn_pool_t *pool); /* 1 for NULL */
/* Runs fn(ctx, i, n) on every thread i of n (the caller is thread 0) and returns when all are
 * done. One nn_pool_run at a time per pool (callers serialize). */
typedef void (*nn_task_fn)(void *ctx, int thread_index, int n_threads);
void nn_pool_run(nn_pool_t *pool, nn_task_fn fn, void *ctx);

/* ==== products with typed weights (inference) ==== */
/* y[r] = W[r] . x for r < rows. W is `rows` x `cols` of `type`; cols a multiple of the block size.
 * For quantized W, x is quantized to Q8_0 first (as llama.cpp does), F16 W uses F16C. */
void nn_matvec(nn_pool_t *pool, nn_type_t type, const void *W, size_t rows, size_t cols,
               const float *x, float *y);
/* Y[i][r] = W[r] . X[i] for i < n: a batch of n input rows (prompt processing). X is n x cols,
 * Y is n x rows, both dense row-major. Quantized W on AVX-512: integer kernels up to a batch size
 * that depends on the type and cols, giving exactly nn_matvec's bits row by row; F32 GEMM on
 * dequantized tiles above that (and for F32/F16 W from 4 rows). */
void nn_matmul(nn_pool_t *pool, nn_type_t type, const void *W, size_t rows, size_t cols,
               const float *X, size_t n, float *Y);

/* ==== dense single precision (training) ==== */
/* C = alpha * op(A) . op(B) + beta * C, row-major, op(X) = X or X^T; M x N result, K inner.
 * Runs on the pool's thread count. */
void nn_sgemm(nn_pool_t *pool, bool trans_a, bool trans_b, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* Small helpers both engines need. */
float nn_dot_f32(const float *a, const float *b, size_t n);
void nn_axpy_f32(float a, const float *x, float *y, size_t n); /* y += a*x */

#endif
