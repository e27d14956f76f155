/* train_bench: training throughput of src/train for each preset (tiny..large) at 1 and 2
 * threads — tokens/s and achieved GFLOP/s over a fixed number of optimizer steps, through the
 * public train_run (AdamW, clipping and all), on a synthetic corpus.
 *
 * The first step is left out of the rates (page faults of the freshly allocated activations).
 * FLOPs per step: 6 x (matrix parameters incl. the output head) x tokens + attention
 * 12 x dim x layers x (pairs t >= s per sequence) — the formula documented in docs/training.md.
 *
 * Usage: train_bench [preset ...]   (default: tiny small base large) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "train/train.h"

typedef struct {
    int n;
    double t1, tn; /* seconds of step time after step 1 and after the last step */
    double tok_per_step, gflop_per_step;
    float loss;
} probe_t;

static int on_step(void *ud, const train_progress_t *p)
{
    probe_t *b = ud;
    /* the callback's rates are cumulative averages: recover the elapsed step time */
    double t = p->step * b->tok_per_step / p->tokens_per_s;
    if (b->n == 0)
        b->t1 = t;
    b->tn = t;
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
    printf("%-6s %8s %3s %6s %12s %9s %8s\n", "preset", "params", "thr", "steps", "tokens/s",
           "GFLOP/s", "s/step");
    int rc = 0;
    for (int i = 0; i < np; i++) {
        int steps = !strcmp(presets[i], "large")   ? 4
                    : !strcmp(presets[i], "base")  ? 6
                    : !strcmp(presets[i], "small") ? 10
                                                   : 20;
        for (int thr = 1; thr <= 2; thr++) {
            train_params_t p;
            train_params_default(&p);
            p.preset = presets[i];
            p.vocab_size = 1024;
            p.steps = steps;
            p.batch_size = 8;
            p.seq_len = 128;
            p.eval_every = 0;
            p.eval_fraction = 0;
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
            printf("%-6s %7.1fM %3d %6d %12.0f %9.1f %8.3f\n", p.preset, res.params / 1e6, thr,
                   steps, n * b.tok_per_step / dt, n * b.gflop_per_step / dt, dt / n);
            fflush(stdout);
        }
    }
    unlink(out);
    free(text);
    return rc;
}
