/* train_bench: training throughput of src/train for each preset (tiny..large) at 1 and 2
 * threads — tokens/s and achieved GFLOP/s over a fixed number of optimizer steps, through the
 * public train_run (AdamW, clipping and all), on a synthetic corpus.
 *
 * The first step is left out of the rates (page faults of the freshly allocated activations).
 * FLOPs per step: 6 x (matrix parameters incl. the output head) x tokens + attention
 * 12 x dim x layers x (pairs t >= s per sequence) — the formula documented in docs/training.md.
 *
 * Next to each figure, "GEMM-only" is the rate of the same step's matrix products alone (forward,
 * dX and dW of every projection and the head, through nn_sgemm on the same thread count), measured
 * right after: on a shared machine the ratio of the two says how much the non-GEMM work costs
 * better than either figure alone. The "cpu" columns divide the same FLOPs by the process's CPU
 * time / threads instead of wall time: what an unloaded machine would show if our threads never
 * waited for a core (the pool spins while it waits, so idle waits still count as CPU time).
 *
 * Usage: train_bench [preset ...]   (default: tiny small base large) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nn/nn.h"
#include "train/train.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* CPU seconds of the whole process (all threads). */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One product of a step: forward Y = X W^T, dX = dY W, dW = dY^T X. */
static double product(nn_pool_t *pool, int N, int in, int out, float *X, float *W, float *Y,
                      float *dX, float *dW)
{
    nn_sgemm(pool, false, true, N, out, in, 1, X, in, W, in, 0, Y, out);
    nn_sgemm(pool, false, false, N, in, out, 1, Y, out, W, in, 0, dX, in);
    nn_sgemm(pool, true, false, out, in, N, 1, Y, out, X, in, 0, dW, in);
    return 6.0 * N * in * out;
}

/* GFLOP/s of one step's matrix products alone (after a warm-up round); *cpu_est gets the rate
 * over CPU time x threads (see main). */
static double gemm_only(const llm_config_t *c, int N, int threads, double *cpu_est)
{
    nn_pool_t *pool = NULL;
    if (nn_pool_create(threads, &pool) != 0)
        return NAN;
    size_t D = c->dim, F = c->ffn_dim, V = 1024, KD = D / c->n_heads * c->n_kv_heads;
    size_t wide = F > V ? F : V;
    float *X = calloc((size_t)N * wide, 4), *Y = calloc((size_t)N * wide, 4),
          *dX = calloc((size_t)N * wide, 4), *W = calloc(wide * D, 4), *dW = calloc(wide * D, 4);
    double best = 0;
    for (int rep = 0; X && Y && dX && W && dW && rep < 2; rep++) {
        double t0 = now_s(), c0 = cpu_s(), fl = 0;
        for (int l = 0; l < c->n_layers; l++) {
            fl += product(pool, N, (int)D, (int)D, X, W, Y, dX, dW);
            fl += product(pool, N, (int)D, (int)KD, X, W, Y, dX, dW);
            fl += product(pool, N, (int)D, (int)KD, X, W, Y, dX, dW);
            fl += product(pool, N, (int)D, (int)D, X, W, Y, dX, dW);
            fl += product(pool, N, (int)D, (int)F, X, W, Y, dX, dW);
            fl += product(pool, N, (int)D, (int)F, X, W, Y, dX, dW);
            fl += product(pool, N, (int)F, (int)D, X, W, Y, dX, dW);
        }
        fl += product(pool, N, (int)D, (int)V, X, W, Y, dX, dW);
        double r = fl / (now_s() - t0) / 1e9;
        if (rep > 0) {
            best = r;
            *cpu_est = fl / ((cpu_s() - c0) / threads) / 1e9;
        }
    }
    free(X), free(Y), free(dX), free(W), free(dW);
    nn_pool_free(&pool);
    return best;
}

typedef struct {
    int n;
    double t1, tn; /* seconds of step time after step 1 and after the last step */
    double c1, cn; /* process CPU seconds at the same moments */
    double tok_per_step, gflop_per_step;
    float loss;
} probe_t;

static int on_step(void *ud, const train_progress_t *p)
{
    probe_t *b = ud;
    /* the callback's rates are cumulative averages: recover the elapsed step time */
    double t = p->step * b->tok_per_step / p->tokens_per_s;
    if (b->n == 0) {
        b->t1 = t;
        b->c1 = cpu_s();
    }
    b->tn = t;
    b->cn = cpu_s();
    b->n++;
    b->loss = p->train_loss;
    return 0;
}

/* A corpus of pseudo-words, deterministic, large enough for several windows. */
static char *make_corpus(size_t bytes)
{
    static const char *syll[] = {"ka", "lo", "mi", "ne", "su", "ta", "ri", "po",
                                 "de", "va", "ch", "om", "el", "ur", "is", "an"};
    char *s = malloc(bytes + 16);
    if (!s)
        return NULL;
    uint64_t r = 12345;
    size_t n = 0;
    while (n < bytes) {
        r = r * 6364136223846793005ULL + 1442695040888963407ULL;
        int k = 1 + (int)((r >> 60) & 3);
        for (int i = 0; i < k; i++) {
            const char *y = syll[(r >> (4 * i + 20)) & 15];
            s[n++] = y[0];
            s[n++] = y[1];
        }
        s[n++] = ((r >> 40) & 15) == 0 ? '.' : ' ';
    }
    s[n] = 0;
    return s;
}

int main(int argc, char **argv)
{
    static const char *def[] = {"tiny", "small", "base", "large"};
    const char **presets = argc > 1 ? (const char **)argv + 1 : def;
    int np = argc > 1 ? argc - 1 : 4;
    char *text = make_corpus(40000);
    if (!text)
        return 1;
    const char *texts[1] = {text};
    size_t lens[1] = {strlen(text)};
    char out[] = "/tmp/train_bench_XXXXXX";
    int fd = mkstemp(out);
    if (fd < 0)
        return 1;
    close(fd);

    double loadavg[3] = {0};
    if (getloadavg(loadavg, 3) < 0)
        loadavg[0] = NAN;
    printf("train_bench: batch 8 x seq 128, vocab 1024, F32; load %.2f\n", loadavg[0]);
    printf("%s\n", nn_backend_info());
    printf("%-6s %8s %3s %5s %9s %8s %7s %7s %9s %8s %6s\n", "preset", "params", "thr", "steps",
           "tokens/s", "GFLOP/s", "s/step", "(cpu)", "GEMM-only", "(cpu)", "ratio");
    int rc = 0;
    for (int i = 0; i < np; i++) {
        int steps = !strcmp(presets[i], "large")   ? 3
                    : !strcmp(presets[i], "base")  ? 4
                    : !strcmp(presets[i], "small") ? 6
                                                   : 10;
        for (int thr = 1; thr <= 2; thr++) {
            train_params_t p;
            train_params_default(&p);
            p.preset = presets[i];
            p.vocab_size = 1024;
            p.steps = steps;
            p.batch_size = 8;
            p.seq_len = 128;
            p.eval_every = 0;
            p.eval_fraction = 0.001f; /* one held-out window: the final eval is one short batch */
            p.checkpoint_every = 0;
            p.n_threads = thr;
            llm_config_t c;
            if (train_preset(p.preset, 1024, &c) != 0) {
                fprintf(stderr, "unknown preset %s\n", p.preset);
                return 2;
            }
            double E = (double)c.dim / c.n_heads, T = 128, B = 8;
            double pmat = c.n_layers * (2.0 * c.dim * c.dim + 2.0 * E * c.n_kv_heads * c.dim +
                                        3.0 * c.dim * c.ffn_dim) +
                          1024.0 * c.dim;
            probe_t b = {.tok_per_step = B * T};
            b.gflop_per_step =
                (6 * pmat * B * T + 12.0 * c.dim * c.n_layers * B * T * (T + 1) / 2) / 1e9;
            train_result_t res;
            char err[256];
            if (train_run(&p, texts, lens, 1, out, on_step, &b, &res, err, sizeof err) != 0) {
                fprintf(stderr, "%s: %s\n", p.preset, err);
                rc = 1;
                continue;
            }
            double dt = b.tn - b.t1;
            int n = b.n - 1;
            double gf = n * b.gflop_per_step / dt;
            double gf_cpu = n * b.gflop_per_step / ((b.cn - b.c1) / thr);
            double ref_cpu = NAN, ref = gemm_only(&c, (int)(B * T), thr, &ref_cpu);
            printf("%-6s %7.1fM %3d %5d %9.0f %8.1f %7.3f %7.1f %9.1f %8.1f %5.0f%%\n", p.preset,
                   res.params / 1e6, thr, steps, n * b.tok_per_step / dt, gf, dt / n, gf_cpu, ref,
                   ref_cpu, 100 * gf_cpu / ref_cpu);
            fflush(stdout);
        }
    }
    unlink(out);
    free(text);
    return rc;
}
