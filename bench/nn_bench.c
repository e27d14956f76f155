/* nn_bench: speed of the nn kernels on this machine, as one table — the memory read bandwidth at
 * 1 and 2 threads (the ceiling of generation), sgemm GFLOP/s (1024^3 and the training-like
 * 4096x640x640), nn_matvec GB/s and ns per call per type for a 2048x8192 and a 768x2048 matrix,
 * the same streamed from memory (as a percentage of the measured ceiling), and nn_matmul for
 * a batch of 128 rows. Runs in well under a minute (`make bench`).
 * With one thread it also gives the figure from the thread's CPU time, which the neighbours on
 * a shared machine disturb much less than the wall clock.
 * Usage: nn_bench [seconds per measurement, default 0.25] */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn/nn.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double g_min_s = 0.25;

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU seconds per call of the calling thread in the last TIME_IT's fastest round: with one
 * thread this is the kernel's own cost, little changed by neighbours taking turns on the core. */
static double g_cpu_per_call;

/* Runs `call` (after one warm-up) in 5 rounds of g_min_s/5 each and returns the seconds per call
 * of the fastest round: the machine is shared, and the best round is the least disturbed. */
#define TIME_IT(call)                                                                              \
    ({                                                                                             \
        call;                                                                                      \
        double _best = 1e30;                                                                       \
        g_cpu_per_call = 1e30;                                                                     \
        for (int _r = 0; _r < 5; _r++) {                                                           \
            double _t0 = now_s(), _c0 = thread_cpu_s(), _t;                                        \
            long _n = 0;                                                                           \
            do {                                                                                   \
                call;                                                                              \
                _n++;                                                                              \
            } while ((_t = now_s() - _t0) < g_min_s / 5);                                          \
            double _c = (thread_cpu_s() - _c0) / (double)_n;                                       \
            if (_t / (double)_n < _best)                                                           \
                _best = _t / (double)_n;                                                           \
            if (_c < g_cpu_per_call)                                                               \
                g_cpu_per_call = _c;                                                               \
        }                                                                                          \
        _best;                                                                                     \
    })

static void fill(float *p, size_t n)
{
    uint32_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (float)((int)(s >> 8) % 2000 - 1000) / 1000.0f;
    }
}

/* ---- memory bandwidth: each thread sums its part of a buffer far larger than the caches ---- */
typedef struct {
    const float *buf;
    size_t n;
    float out[64];
} bw_ctx;

__attribute__((target("avx2"))) static float sum_avx2(const float *p, size_t n)
{
    __m256 a = _mm256_setzero_ps(), b = a, c = a, d = a;
    for (size_t i = 0; i + 32 <= n; i += 32) {
        /* prefetching into L2 as the kernels do: the ceiling is what a read loop can reach */
        _mm_prefetch((const char *)(p + i) + 4096, _MM_HINT_T1);
        _mm_prefetch((const char *)(p + i) + 4096 + 64, _MM_HINT_T1);
        a = _mm256_add_ps(a, _mm256_load_ps(p + i));
        b = _mm256_add_ps(b, _mm256_load_ps(p + i + 8));
        c = _mm256_add_ps(c, _mm256_load_ps(p + i + 16));
        d = _mm256_add_ps(d, _mm256_load_ps(p + i + 24));
    }
    float t[8];
    _mm256_storeu_ps(t, _mm256_add_ps(_mm256_add_ps(a, b), _mm256_add_ps(c, d)));
    return t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
}

static void bw_task(void *arg, int i, int n)
{
    bw_ctx *c = arg;
    size_t per = c->n / (size_t)n / 32 * 32;
    c->out[i] = sum_avx2(c->buf + per * (size_t)i, per);
}

static void noop_task(void *arg, int i, int n)
{
    (void)arg, (void)i, (void)n;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        g_min_s = atof(argv[1]);
    if (nn_init() != 0)
        fprintf(stderr, "nn_init reported a problem\n");
    double load[3] = {0};
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3)
            load[0] = -1;
        fclose(f);
    }
    printf("nn_bench: %s; load %.2f %.2f %.2f\n", nn_backend_info(), load[0], load[1], load[2]);
    nn_pool_t *pools[3] = {NULL, NULL, NULL};
    if (nn_pool_create(1, &pools[1]) || nn_pool_create(2, &pools[2])) {
        fprintf(stderr, "pool creation failed\n");
        return 1;
    }

    /* memory bandwidth */
    size_t bw_n = (size_t)256 << 20 >> 2; /* 256 MiB */
    float *bw_buf = aligned_alloc(64, bw_n * sizeof(float));
    if (!bw_buf)
        return 1;
    fill(bw_buf, bw_n);
    printf("\n%-34s %10s %10s %10s\n", "memory read (256 MiB)", "1 thread", "1t (cpu)",
           "2 threads");
    printf("%-34s", "  GB/s");
    double bw_gbs[3] = {1, 1, 1};
    for (int t = 1; t <= 2; t++) {
        bw_ctx c = {.buf = bw_buf, .n = bw_n};
        double s = TIME_IT(nn_pool_run(pools[t], bw_task, &c));
        bw_gbs[t] = (double)bw_n * 4 / s / 1e9;
        printf(" %10.1f", bw_gbs[t]);
        if (t == 1)
            printf(" %10.1f", (double)bw_n * 4 / g_cpu_per_call / 1e9);
    }
    printf("\n");
    free(bw_buf);

    /* the cost of one nn_pool_run with an empty task: generation pays it ~10 times per layer */
    printf("\n%-34s %10s %10s\n", "pool run, empty task", "1 thread", "2 threads");
    printf("%-34s", "  ns per run");
    for (int t = 1; t <= 2; t++) {
        bw_ctx c = {.buf = NULL, .n = 0};
        double s = TIME_IT(nn_pool_run(pools[t], noop_task, &c));
        printf(" %10.0f", s * 1e9);
    }
    printf("\n");

    /* sgemm */
    printf("\n%-34s %10s %10s %10s\n", "sgemm GFLOP/s", "1 thread", "1t (cpu)", "2 threads");
    static const int gs[][3] = {{1024, 1024, 1024}, {4096, 640, 640}};
    for (int s = 0; s < 2; s++) {
        int M = gs[s][0], N = gs[s][1], K = gs[s][2];
        float *A = malloc((size_t)M * K * 4), *B = malloc((size_t)K * N * 4),
              *C = malloc((size_t)M * N * 4);
        if (!A || !B || !C)
            return 1;
        fill(A, (size_t)M * K);
        fill(B, (size_t)K * N);
        char label[64];
        snprintf(label, sizeof label, "  %dx%dx%d (NN)", M, N, K);
        printf("%-34s", label);
        for (int t = 1; t <= 2; t++) {
            double sec = TIME_IT(
                nn_sgemm(pools[t], false, false, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N));
            printf(" %10.1f", 2.0 * M * N * K / sec / 1e9);
            if (t == 1)
                printf(" %10.1f", 2.0 * M * N * K / g_cpu_per_call / 1e9);
        }
        printf("\n");
        free(A);
        free(B);
        free(C);
    }

    /* matvec and matmul per type */
    static const nn_type_t types[] = {NN_F32, NN_F16, NN_Q8_0, NN_Q4_0};
    static const size_t ms[][2] = {{2048, 8192}, {768, 2048}};
    printf("\n%-34s %10s %10s %10s %10s %10s\n", "matvec (rows x cols)", "1t GB/s", "1t (cpu)",
           "1t us", "2t GB/s", "2t us");
    for (int m = 0; m < 2; m++)
        for (int ti = 0; ti < 4; ti++) {
            size_t rows = ms[m][0], cols = ms[m][1], rb = nn_row_bytes(types[ti], cols);
            float *W = malloc(rows * cols * 4), *x = malloc(cols * 4), *y = malloc(rows * 4);
            uint8_t *Wq = malloc(rows * rb);
            if (!W || !x || !y || !Wq)
                return 1;
            fill(W, rows * cols);
            fill(x, cols);
            for (size_t r = 0; r < rows; r++)
                nn_quantize_row(types[ti], W + r * cols, Wq + r * rb, cols);
            char label[64];
            snprintf(label, sizeof label, "  %zux%zu %s", rows, cols, nn_type_name(types[ti]));
            printf("%-34s", label);
            for (int t = 1; t <= 2; t++) {
                double sec = TIME_IT(nn_matvec(pools[t], types[ti], Wq, rows, cols, x, y));
                printf(" %10.1f", (double)(rows * rb) / sec / 1e9);
                if (t == 1)
                    printf(" %10.1f", (double)(rows * rb) / g_cpu_per_call / 1e9);
                printf(" %10.1f", sec * 1e6);
            }
            printf("\n");
            free(W);
            free(x);
            free(y);
            free(Wq);
        }

    /* the same products streamed from memory: copies of the matrix adding up to more than the
     * bandwidth test's 256 MiB, used in turn, so the caches cannot hold them (generation of a
     * model bigger than the caches) */
    printf("\n%-34s %10s %10s %10s %10s\n", "matvec from memory (copies>256MiB)", "1t GB/s",
           "1t %ceil", "2t GB/s", "2t %ceil");
    for (int ti = 0; ti < 4; ti++) {
        size_t rows = 2048, cols = 8192, rb = nn_row_bytes(types[ti], cols), mb = rows * rb;
        size_t ncopy = ((size_t)288 << 20) / mb + 1;
        float *W = malloc(rows * cols * 4), *x = malloc(cols * 4), *y = malloc(rows * 4);
        uint8_t *Wq = malloc(mb * ncopy);
        if (!W || !x || !y || !Wq)
            return 1;
        fill(W, rows * cols);
        fill(x, cols);
        for (size_t r = 0; r < rows; r++)
            nn_quantize_row(types[ti], W + r * cols, Wq + r * rb, cols);
        for (size_t c = 1; c < ncopy; c++)
            memcpy(Wq + c * mb, Wq, mb);
        char label[64];
        snprintf(label, sizeof label, "  %zux%zu %s x%zu", rows, cols, nn_type_name(types[ti]),
                 ncopy);
        printf("%-34s", label);
        for (int t = 1; t <= 2; t++) {
            size_t next = 0;
            double sec = TIME_IT((nn_matvec(pools[t], types[ti], Wq + (next++ % ncopy) * mb, rows,
                                            cols, x, y)));
            printf(" %10.1f %9.0f%%", (double)mb / sec / 1e9,
                   100.0 * ((double)mb / sec / 1e9) / bw_gbs[t]);
        }
        printf("\n");
        free(W);
        free(x);
        free(y);
        free(Wq);
    }

    printf("\n%-34s %10s %10s %10s %10s %10s\n", "matmul, 128 rows of X", "1t GFLOP/s",
           "1t (cpu)", "1t ms", "2t GFLOP/s", "2t ms");
    static const size_t mm[][2] = {{288, 288}, {768, 288}, {768, 2048}, {2048, 768}, {32000, 288}};
    for (int m = 0; m < 5; m++)
        for (int ti = 0; ti < 4; ti++) {
            size_t rows = mm[m][0], cols = mm[m][1], n = 128, rb = nn_row_bytes(types[ti], cols);
            float *W = malloc(rows * cols * 4), *X = malloc(n * cols * 4),
                  *Y = malloc(n * rows * 4);
            uint8_t *Wq = malloc(rows * rb);
            if (!W || !X || !Y || !Wq)
                return 1;
            fill(W, rows * cols);
            fill(X, n * cols);
            for (size_t r = 0; r < rows; r++)
                nn_quantize_row(types[ti], W + r * cols, Wq + r * rb, cols);
            char label[64];
            snprintf(label, sizeof label, "  %zux%zu %s", rows, cols, nn_type_name(types[ti]));
            printf("%-34s", label);
            for (int t = 1; t <= 2; t++) {
                double sec = TIME_IT(nn_matmul(pools[t], types[ti], Wq, rows, cols, X, n, Y));
                printf(" %10.1f", 2.0 * rows * cols * n / sec / 1e9);
                if (t == 1)
                    printf(" %10.1f", 2.0 * rows * cols * n / g_cpu_per_call / 1e9);
                printf(" %10.2f", sec * 1e3);
            }
            printf("\n");
            free(W);
            free(X);
            free(Y);
            free(Wq);
        }
    nn_pool_free(&pools[1]);
    nn_pool_free(&pools[2]);
    return 0;
}
