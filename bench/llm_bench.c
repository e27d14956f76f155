/* llm_bench: prompt processing and generation speed of src/llm, measured like llama-bench
 * (pp: one batch of --pp tokens into an empty cache; tg: --tg tokens one at a time into an empty
 * cache, logits of each computed, no sampling), for the three shapes with random
 * weights, in each weight type, at each thread count. Also measures the memory read bandwidth
 * and prints the generation ceiling it implies: bytes of weights read per token / bandwidth.
 *
 *   llm_bench [--shapes A,B,C] [--types f32,f16,q8_0,q4_0] [--threads 1,2] [--pp 128] [--tg 64]
 *             [--reps 2] [--bw GB/s] [--csv]
 * --bw skips the bandwidth measurement and uses the figure given for every thread count.
 * Every figure is the best of --reps runs. Output heads are tied (the issue's ~15M / ~110M / ~1B
 * parameter counts are those of tied models, like llama2.c's stories15M and stories110M). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llm/llm.h"

typedef struct {
    const char *name;
    llm_config_t c;
} shape_t;

static const shape_t shapes[] = {
    {"A", {32000, 256, 288, 6, 6, 6, 768, 10000.0f, 1e-5f, true}},
    {"B", {32000, 1024, 768, 12, 12, 12, 2048, 10000.0f, 1e-5f, true}},
    {"C", {32000, 1024, 2048, 16, 32, 8, 8192, 10000.0f, 1e-5f, true}},
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU time of the whole process: with one thread, tokens per CPU-second is what the wall clock
 * would show on an idle machine, so it is printed beside the wall-clock rate when others share
 * the cores. With more threads, waiting workers spin and count, so it is not shown. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int usage(void)
{
    fprintf(stderr, "usage: llm_bench [--shapes A,B,C] [--types f32,f16,q8_0,q4_0] [--threads 1,2] "
                    "[--pp N] [--tg N] [--reps N] [--bw GB/s] [--csv]\n");
    return 2;
}

/* Bytes of weights one generated token reads: every layer matrix, the head, one embedding row. */
static double weight_bytes(const llm_config_t *c, nn_type_t t)
{
    double d = c->dim, f = c->ffn_dim, kd = (double)c->dim / c->n_heads * c->n_kv_heads;
    double per_el = (double)nn_row_bytes(t, 32 * 1024) / (32 * 1024);
    double layer = (2 * d * d + 2 * d * kd + 3 * d * f) * per_el + 2 * d * 4;
    return c->n_layers * layer + (double)c->n_vocab * d * per_el + d * per_el + d * 4;
}

/* Read bandwidth with n threads: dot products over a 512 MiB buffer, split by the pool. */
typedef struct {
    const float *a;
    size_t n;
    float out[64];
} bw_job_t;

static void bw_task(void *arg, int ti, int nt)
{
    bw_job_t *j = arg;
    size_t per = j->n / (size_t)nt;
    j->out[ti] = nn_dot_f32(j->a + per * (size_t)ti, j->a + per * (size_t)ti, per);
}

static double bandwidth(nn_pool_t *pool)
{
    size_t n = (size_t)128 << 20;
    float *a = malloc(n * sizeof *a);
    if (!a)
        return 0;
    for (size_t i = 0; i < n; i++)
        a[i] = (float)(i & 7);
    bw_job_t j = {a, n, {0}};
    double best = 0;
    for (int r = 0; r < 3; r++) {
        double t0 = now_s();
        nn_pool_run(pool, bw_task, &j);
        double gbs = (double)n * 4 / (now_s() - t0) / 1e9;
        if (gbs > best)
            best = gbs;
    }
    free(a);
    return best;
}

static bool in_list(const char *list, const char *item)
{
    size_t n = strlen(item);
    for (const char *p = list; (p = strstr(p, item)) != NULL; p += n)
        if ((p == list || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
            return true;
    return false;
}

int main(int argc, char **argv)
{
    const char *shape_list = "A,B,C", *type_list = "f32,f16,q8_0,q4_0", *thread_list = "1,2";
    int pp = 128, tg = 64, reps = 2;
    double bw_given = 0;
    bool csv = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--csv")) {
            csv = true;
            continue;
        }
        if (!v)
            return usage();
        if (!strcmp(a, "--shapes"))
            shape_list = v;
        else if (!strcmp(a, "--types"))
            type_list = v;
        else if (!strcmp(a, "--threads"))
            thread_list = v;
        else if (!strcmp(a, "--pp"))
            pp = atoi(v);
        else if (!strcmp(a, "--tg"))
            tg = atoi(v);
        else if (!strcmp(a, "--bw"))
            bw_given = atof(v);
        else if (!strcmp(a, "--reps"))
            reps = atoi(v);
        else
            return usage();
        i++;
    }
    if (pp < 1 || tg < 1 || reps < 1)
        return usage();
    if (nn_init() != 0) {
        fprintf(stderr, "nn_init failed\n");
        return 1;
    }
    int thr[8], n_thr = 0;
    for (const char *p = thread_list; *p && n_thr < 8;) {
        thr[n_thr++] = atoi(p);
        p = strchr(p, ',');
        if (!p)
            break;
        p++;
    }
    double bw[8];
    for (int k = 0; k < n_thr; k++) {
        nn_pool_t *pool;
        if (nn_pool_create(thr[k], &pool))
            return 1;
        bw[k] = bw_given > 0 ? bw_given : bandwidth(pool);
        nn_pool_free(&pool);
    }
    FILE *la = fopen("/proc/loadavg", "r");
    char load[64] = "?";
    if (la) {
        if (!fgets(load, sizeof load, la))
            strcpy(load, "?");
        load[strcspn(load, "\n")] = '\0';
        fclose(la);
    }
    printf("# llm_bench: %s; pp %d, tg %d, best of %d; load %s\n", nn_backend_info(), pp, tg, reps,
           load);
    for (int k = 0; k < n_thr; k++)
        printf("# read bandwidth, %d thread(s): %.1f GB/s\n", thr[k], bw[k]);
    if (csv)
        printf("shape,type,threads,params_m,size_mib,pp_tps,tg_tps,tg_ceiling_tps,pp_cpu_tps,tg_cpu_tps\n");
    else
        printf("| shape | type | threads | params | size MiB | pp%d t/s | tg%d t/s | tg ceiling t/s | "
               "tg/ceiling | pp per CPU-s | tg per CPU-s |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
               pp, tg);
    fflush(stdout);
    static const nn_type_t types[] = {NN_F32, NN_F16, NN_Q8_0, NN_Q4_0};
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        if (!in_list(shape_list, shapes[si].name))
            continue;
        const llm_config_t *c = &shapes[si].c;
        int n_ctx = c->n_ctx < pp + tg ? pp + tg : c->n_ctx;
        for (size_t ti = 0; ti < 4; ti++) {
            nn_type_t t = types[ti];
            if (!in_list(type_list, nn_type_name(t)))
                continue;
            llm_model_t *m;
            double t0 = now_s();
            if (llm_random(c, t, 1, NULL, &m)) {
                fprintf(stderr, "shape %s %s: cannot make the model (memory?)\n", shapes[si].name,
                        nn_type_name(t));
                continue;
            }
            fprintf(stderr, "# shape %s %s: random weights in %.1f s\n", shapes[si].name,
                    nn_type_name(t), now_s() - t0);
            llm_ctx_t *ctx;
            float *logits = malloc((size_t)c->n_vocab * sizeof *logits);
            int32_t *toks = malloc((size_t)pp * sizeof *toks);
            if (llm_ctx_new(m, n_ctx, &ctx) || !logits || !toks) {
                fprintf(stderr, "out of memory\n");
                return 1;
            }
            for (int i = 0; i < pp; i++)
                toks[i] = (int32_t)((i * 7919 + 13) % c->n_vocab);
            for (int k = 0; k < n_thr; k++) {
                nn_pool_t *pool;
                if (nn_pool_create(thr[k], &pool))
                    return 1;
                double best_pp = 0, best_tg = 0, cpu_pp = 0, cpu_tg = 0;
                for (int r = 0; r < reps; r++) {
                    llm_ctx_reset(ctx);
                    double a = now_s(), ca = cpu_s();
                    if (llm_eval(ctx, pool, toks, (size_t)pp, logits))
                        return 1;
                    double s = now_s() - a, cs = cpu_s() - ca;
                    if (pp / s > best_pp)
                        best_pp = pp / s;
                    if (pp / cs > cpu_pp)
                        cpu_pp = pp / cs;
                    llm_ctx_reset(ctx);
                    int32_t tok = 1;
                    a = now_s();
                    ca = cpu_s();
                    for (int i = 0; i < tg; i++) {
                        if (llm_eval(ctx, pool, &tok, 1, logits))
                            return 1;
                        tok = (tok * 31 + 7) % c->n_vocab;
                    }
                    s = now_s() - a;
                    cs = cpu_s() - ca;
                    if (tg / s > best_tg)
                        best_tg = tg / s;
                    if (tg / cs > cpu_tg)
                        cpu_tg = tg / cs;
                }
                nn_pool_free(&pool);
                double wb = weight_bytes(c, t), ceil = bw[k] * 1e9 / wb;
                double params = (double)llm_config_params(c) / 1e6;
                if (thr[k] != 1)
                    cpu_pp = cpu_tg = 0;
                if (csv)
                    printf("%s,%s,%d,%.1f,%.0f,%.1f,%.2f,%.1f,%.1f,%.2f\n", shapes[si].name,
                           nn_type_name(t), thr[k], params, wb / 1048576, best_pp, best_tg, ceil,
                           cpu_pp, cpu_tg);
                else if (thr[k] == 1)
                    printf("| %s | %s | %d | %.1fM | %.0f | %.1f | %.2f | %.1f | %.0f%% | %.1f | %.2f |\n",
                           shapes[si].name, nn_type_name(t), thr[k], params, wb / 1048576, best_pp,
                           best_tg, ceil, 100 * best_tg / ceil, cpu_pp, cpu_tg);
                else
                    printf("| %s | %s | %d | %.1fM | %.0f | %.1f | %.2f | %.1f | %.0f%% | — | — |\n",
                           shapes[si].name, nn_type_name(t), thr[k], params, wb / 1048576, best_pp,
                           best_tg, ceil, 100 * best_tg / ceil);
                fflush(stdout);
            }
            llm_ctx_free(&ctx);
            free(logits);
            free(toks);
            llm_free(&m);
        }
    }
    return 0;
}
