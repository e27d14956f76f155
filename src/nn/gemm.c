/* nn gemm: single-precision GEMM for training and prompt processing.
 *
 * OpenBLAS is loaded at run time, not linked: Debian's OpenBLAS 0.3.21 does not recognise this
 * CPU family (AVX-512 Xeons newer than it) and falls back to its generic "Prescott" kernels, about
 * 5x slower than its SkylakeX ones. The kernel set is chosen from OPENBLAS_CORETYPE, which the
 * library reads only while it is being loaded, so a program linked against it would have loaded it
 * before main. Here nn_init sets OPENBLAS_CORETYPE from cpuid (unless the user set it), then
 * dlopens the library and checks its results against a naive reference for every transpose
 * combination and a few odd sizes; on any failure nn_sgemm uses the own kernels of the active ISA.
 *
 * Threads: OpenBLAS is told to use one thread; nn_sgemm splits C into row (or column) panels over
 * the pool's threads, each calling the single-threaded GEMM, so the 2 cores are never
 * oversubscribed by two thread pools, and the split depends only on the sizes and the thread
 * count, which makes the results reproducible for a given thread count. PERSONA_NN_BLAS=off skips
 * OpenBLAS entirely. */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/internal.h"

enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112 };
typedef void (*cblas_sgemm_fn)(int order, int ta, int tb, int M, int N, int K, float alpha,
                               const float *A, int lda, const float *B, int ldb, float beta,
                               float *C, int ldc);
typedef void (*set_threads_fn)(int n);
typedef char *(*get_str_fn)(void);

static cblas_sgemm_fn g_sgemm;
static bool g_force_own;

bool nn__blas_loaded(void)
{
    return g_sgemm != NULL;
}

void nn__sgemm_force_own(bool own)
{
    g_force_own = own;
}

/* Fills A, B, C with a reproducible pattern of small values. */
static void fill(float *p, size_t n, unsigned seed)
{
    uint32_t s = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (float)((int)(s >> 9) % 2001 - 1000) / 1000.0f;
    }
}

/* Compares gemm against a double-precision reference for the given sizes and transposes; lda,
 * ldb and ldc are padded so strides are exercised. 0 when all results are within tolerance. */
static int check_one(cblas_sgemm_fn gemm, bool ta, bool tb, int M, int N, int K)
{
    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 2;
    size_t na = (size_t)lda * (size_t)(ta ? K : M), nb = (size_t)ldb * (size_t)(tb ? N : K),
           nc = (size_t)ldc * (size_t)M;
    float *A = malloc(na * sizeof *A), *B = malloc(nb * sizeof *B), *C = malloc(nc * sizeof *C),
          *C0 = malloc(nc * sizeof *C0);
    int rc = -1;
    if (!A || !B || !C || !C0)
        goto out;
    fill(A, na, (unsigned)M);
    fill(B, nb, (unsigned)N + 7);
    fill(C, nc, (unsigned)K + 13);
    memcpy(C0, C, nc * sizeof *C);
    const float alpha = 0.75f, beta = -0.5f;
    gemm(CBLAS_ROW_MAJOR, ta ? CBLAS_TRANS : CBLAS_NO_TRANS, tb ? CBLAS_TRANS : CBLAS_NO_TRANS, M,
         N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0, mag = 0;
            for (int k = 0; k < K; k++) {
                double a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                double b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                s += a * b;
                mag += fabs(a * b);
            }
            double want = alpha * s + beta * C0[(size_t)i * ldc + j];
            double tol = 1e-5 * (mag + 1.0) + 1e-6;
            if (!(fabs(C[(size_t)i * ldc + j] - want) <= tol))
                goto out;
        }
    /* the padding between rows of C must be untouched */
    for (int i = 0; i < M; i++)
        for (int j = N; j < ldc; j++)
            if (memcmp(&C[(size_t)i * ldc + j], &C0[(size_t)i * ldc + j], sizeof(float)) != 0)
                goto out;
    rc = 0;
out:
    free(A);
    free(B);
    free(C);
    free(C0);
    return rc;
}

static int self_check(cblas_sgemm_fn gemm)
{
    static const int sizes[][3] = {{1, 1, 1}, {7, 5, 3}, {33, 17, 65}, {64, 64, 64},
                                   {100, 37, 129}, {5, 200, 48}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int t = 0; t < 4; t++)
            if (check_one(gemm, t & 1, t & 2, sizes[s][0], sizes[s][1], sizes[s][2]) != 0)
                return -1;
    return 0;
}

int nn__blas_load(char *info, size_t cap)
{
    const char *mode = getenv("PERSONA_NN_BLAS");
    if (mode && strcmp(mode, "off") == 0) {
        snprintf(info, cap, "blas=own (PERSONA_NN_BLAS=off)");
        return -1;
    }
    /* The library reads these only while loading; do not override a user's choice. If it is
     * already loaded (linked by someone else), they no longer matter and the check decides. */
    if (!getenv("OPENBLAS_CORETYPE")) {
        nn__isa_t best = nn__isa_best();
        if (best == NN__ISA_AVX512)
            setenv("OPENBLAS_CORETYPE", "SkylakeX", 0);
        else if (best == NN__ISA_AVX2)
            setenv("OPENBLAS_CORETYPE", "Haswell", 0);
    }
    if (!getenv("OPENBLAS_NUM_THREADS"))
        setenv("OPENBLAS_NUM_THREADS", "1", 0);
    void *h = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!h)
        h = dlopen("libopenblas.so", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(info, cap, "blas=own (no libopenblas)");
        return -1;
    }
    cblas_sgemm_fn gemm = (cblas_sgemm_fn)dlsym(h, "cblas_sgemm");
    set_threads_fn set_threads = (set_threads_fn)dlsym(h, "openblas_set_num_threads");
    get_str_fn get_config = (get_str_fn)dlsym(h, "openblas_get_config");
    get_str_fn get_core = (get_str_fn)dlsym(h, "openblas_get_corename");
    if (!gemm || !set_threads) {
        snprintf(info, cap, "blas=own (libopenblas lacks cblas_sgemm)");
        dlclose(h);
        return -1;
    }
    set_threads(1);
    if (self_check(gemm) != 0) {
        snprintf(info, cap, "blas=own (openblas failed its self-check)");
        dlclose(h);
        return -1;
    }
    const char *config = get_config ? get_config() : "openblas";
    const char *core = get_core ? get_core() : "?";
    /* the config string starts "OpenBLAS 0.3.21 DYNAMIC_ARCH ..."; keep the version */
    char ver[32] = "?";
    if (config && sscanf(config, "OpenBLAS %31s", ver) != 1)
        snprintf(ver, sizeof ver, "?");
    snprintf(info, cap, "blas=openblas-%s core=%s", ver, core ? core : "?");
    g_sgemm = gemm; /* the handle stays open for the life of the process */
    return 0;
}

/* One single-threaded GEMM on the calling thread, by OpenBLAS or the own kernels. */
static void gemm1(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc)
{
    if (g_sgemm && !g_force_own)
        g_sgemm(CBLAS_ROW_MAJOR, ta ? CBLAS_TRANS : CBLAS_NO_TRANS,
                tb ? CBLAS_TRANS : CBLAS_NO_TRANS, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else
        nn__k->sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

typedef struct {
    bool ta, tb, split_m;
    int M, N, K;
    float alpha, beta;
    const float *A, *B;
    int lda, ldb, ldc;
    float *C;
} sgemm_ctx;

static void sgemm_task(void *arg, int ti, int nt)
{
    const sgemm_ctx *c = arg;
    int total = c->split_m ? c->M : c->N;
    /* panels are multiples of 16 so each thread's part is whole vectors and cache lines */
    int units = (total + 15) / 16;
    int u0 = (int)((long)units * ti / nt), u1 = (int)((long)units * (ti + 1) / nt);
    int p0 = u0 * 16 > total ? total : u0 * 16, p1 = u1 * 16 > total ? total : u1 * 16;
    if (p1 <= p0)
        return;
    if (c->split_m) {
        const float *A = c->ta ? c->A + p0 : c->A + (size_t)p0 * (size_t)c->lda;
        gemm1(c->ta, c->tb, p1 - p0, c->N, c->K, c->alpha, A, c->lda, c->B, c->ldb, c->beta,
              c->C + (size_t)p0 * (size_t)c->ldc, c->ldc);
    } else {
        const float *B = c->tb ? c->B + (size_t)p0 * (size_t)c->ldb : c->B + p0;
        gemm1(c->ta, c->tb, c->M, p1 - p0, c->K, c->alpha, c->A, c->lda, B, c->ldb, c->beta,
              c->C + p0, c->ldc);
    }
}

void nn_sgemm(nn_pool_t *pool, bool trans_a, bool trans_b, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    nn_init();
    if (M <= 0 || N <= 0)
        return;
    if (K <= 0) { /* no product: C = beta*C, which BLAS would refuse for lda = 0 */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++)
                C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
        return;
    }
    int nt = nn_pool_threads(pool);
    double work = (double)M * N * (K > 0 ? K : 1);
    if (nt == 1 || work < 64.0 * 64 * 64 || (M < 32 && N < 32)) {
        gemm1(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    sgemm_ctx c = {trans_a, trans_b, M >= N, M, N, K, alpha, beta, A, B, lda, ldb, ldc, C};
    nn_pool_run(pool, sgemm_task, &c);
}
