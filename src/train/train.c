/* train: the training run — presets and parameters, the data (tokenized documents cut into
 * windows, held-out eval windows, seeded batch order), the optimizer loop (AdamW, global-norm
 * clipping, warmup + cosine schedule, eval loss), checkpoints with resume, and the result file.
 * Runs on the caller's thread plus an nn pool of n_threads.
 *
 * States of a run (train_run):
 *   PREPARE  parameters checked, tokenizer trained or loaded, data tokenized, model allocated
 *   RESUMED  (optional) weights, moments and step read from <out>.ckpt       -> STEPPING
 *   STEPPING step = steps_done .. steps-1: batch(step) -> forward/backward -> clip -> AdamW;
 *            eval every eval_every; checkpoint every checkpoint_every; the callback may cancel
 *                                                     -> CANCELLED (checkpoint written, 1)
 *   DONE     final eval, the model file written, the checkpoint removed      (0)
 * Invariants: the batch of a step is a pure function of (seed, step, data), so a resumed run
 * sees the same batches as an uninterrupted one; nothing but the step and the tensors carries
 * state between steps. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "train/internal.h"

/* ==== presets and parameters ==== */

typedef struct {
    const char *name;
    int dim, layers, heads, ffn, ctx;
} preset_t;

static const preset_t PRESETS[] = {
    {"micro", 64, 2, 2, 192, 128}, /* tests and quick experiments */
    {"tiny", 128, 4, 4, 384, 256},  {"small", 256, 6, 8, 768, 256},
    {"base", 384, 8, 6, 1024, 512}, {"large", 640, 10, 10, 1728, 512},
};
static const char *const PRESET_NAMES[] = {"micro", "tiny", "small", "base", "large", NULL};

int train_preset(const char *name, int n_vocab, llm_config_t *out)
{
    for (size_t i = 0; name && i < sizeof PRESETS / sizeof PRESETS[0]; i++) {
        if (strcmp(PRESETS[i].name, name) != 0)
            continue;
        const preset_t *p = &PRESETS[i];
        *out = (llm_config_t){.n_vocab = n_vocab,
                              .n_ctx = p->ctx,
                              .dim = p->dim,
                              .n_layers = p->layers,
                              .n_heads = p->heads,
                              .n_kv_heads = p->heads,
                              .ffn_dim = p->ffn,
                              .rope_base = 10000.0f,
                              .norm_eps = 1e-5f,
                              .tied_output = false};
        return 0;
    }
    return -1;
}

const char *const *train_preset_names(void)
{
    return PRESET_NAMES;
}

void train_params_default(train_params_t *p)
{
    *p = (train_params_t){
        .preset = NULL,
        .base_model = NULL,
        .vocab_size = 1024,
        .steps = 200,
        .batch_size = 8,
        .seq_len = 0,
        .lr = 0,
        .min_lr_ratio = 0.1f,
        .warmup_steps = -1,
        .weight_decay = 0.1f,
        .beta1 = 0.9f,
        .beta2 = 0.95f,
        .adam_eps = 1e-8f,
        .grad_clip = 1.0f,
        .eval_fraction = 0.1f,
        .eval_every = 50,
        .checkpoint_every = 100,
        .resume = false,
        .seed = 1,
        .n_threads = 0,
        .model_name = NULL,
    };
}

/* Limits on what a caller (ultimately an API client) controls. */
enum {
    MAX_STEPS = 10000000,
    MAX_BATCH = 4096,
    MAX_THREADS = 256,
    MAX_EVAL_WINDOWS_BATCHES = 8, /* eval loss over at most 8 batches of windows */
};
#define MAX_TEXT_BYTES ((size_t)256 << 20) /* tokens are held in memory, 4 bytes each */

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        goto out;                                                                                  \
    } while (0)

static bool finite_in(float x, float lo, float hi)
{
    return isfinite(x) && x >= lo && x <= hi;
}

/* The parameters that do not depend on the model. */
static int check_params(const train_params_t *p, char *err, size_t errlen)
{
    if (!p->preset == !p->base_model)
        return snprintf(err, errlen, "give either a preset or a base model"), -1;
    if (p->preset) {
        llm_config_t c;
        if (train_preset(p->preset, 1024, &c) != 0)
            return snprintf(err, errlen, "unknown preset \"%s\" (micro, tiny, small, base, large)",
                            p->preset),
                   -1;
        if (p->vocab_size < 259 || p->vocab_size > 65536)
            return snprintf(err, errlen, "vocab_size %d out of range [259, 65536]", p->vocab_size),
                   -1;
    }
    if (p->steps < 1 || p->steps > MAX_STEPS)
        return snprintf(err, errlen, "steps %d out of range [1, %d]", p->steps, MAX_STEPS), -1;
    if (p->batch_size < 1 || p->batch_size > MAX_BATCH)
        return snprintf(err, errlen, "batch_size %d out of range [1, %d]", p->batch_size,
                        MAX_BATCH),
               -1;
    if (p->seq_len < 0)
        return snprintf(err, errlen, "seq_len %d is negative", p->seq_len), -1;
    if (!(p->lr == 0 || finite_in(p->lr, 1e-9f, 10.0f)))
        return snprintf(err, errlen, "lr %g out of range (0, 10]", (double)p->lr), -1;
    if (!finite_in(p->min_lr_ratio, 0, 1))
        return snprintf(err, errlen, "min_lr_ratio %g out of range [0, 1]",
                        (double)p->min_lr_ratio),
               -1;
    if (p->warmup_steps < -1 || p->warmup_steps > p->steps)
        return snprintf(err, errlen, "warmup_steps %d out of range [0, steps]", p->warmup_steps),
               -1;
    if (!finite_in(p->weight_decay, 0, 10))
        return snprintf(err, errlen, "weight_decay %g out of range [0, 10]",
                        (double)p->weight_decay),
               -1;
    if (!finite_in(p->beta1, 0, 0.9999999f) || !finite_in(p->beta2, 0, 0.9999999f))
        return snprintf(err, errlen, "beta1/beta2 must be in [0, 1)"), -1;
    if (!finite_in(p->adam_eps, 1e-30f, 1))
        return snprintf(err, errlen, "adam_eps %g out of range (0, 1]", (double)p->adam_eps), -1;
    if (!finite_in(p->grad_clip, 0, 1e9f))
        return snprintf(err, errlen, "grad_clip %g must be >= 0", (double)p->grad_clip), -1;
    if (!finite_in(p->eval_fraction, 0, 0.5f))
        return snprintf(err, errlen, "eval_fraction %g out of range [0, 0.5]",
                        (double)p->eval_fraction),
               -1;
    if (p->eval_every < 0 || p->checkpoint_every < 0)
        return snprintf(err, errlen, "eval_every and checkpoint_every must be >= 0"), -1;
    if (p->n_threads < 0 || p->n_threads > MAX_THREADS)
        return snprintf(err, errlen, "n_threads %d out of range [0, %d]", p->n_threads,
                        MAX_THREADS),
               -1;
    return 0;
}

/* ==== data ==== */

typedef struct {
    int32_t *stream; /* BOS doc EOS BOS doc EOS ... */
    uint8_t *learn;  /* per stream token: 1 = predicted, 0 = context; NULL = all predicted */
    size_t n_stream;
    size_t *starts;                    /* window starts: seq_len + 1 tokens each */
    size_t n_windows, n_train, n_eval; /* starts[0..n_train) train, then eval */
    int32_t *ids, *tgt;                /* B x T batch buffers */
    uint32_t *perm;                    /* the current epoch's order of train windows */
    int64_t perm_epoch;
} data_t;

static void data_free(data_t *d)
{
    free(d->stream);
    free(d->learn);
    free(d->starts);
    free(d->ids);
    free(d->tgt);
    free(d->perm);
    memset(d, 0, sizeof *d);
}

static void shuffle(uint32_t *a, size_t n, uint64_t *rng)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(train__rng_next(rng) % i);
        uint32_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

/* Tokens of text i: with a loss_from offset inside the text, the context before it and the rest
 * are tokenized apart (so no token straddles the boundary) and *n_context is the context's
 * count. NULL on out of memory. */
static int32_t *encode_doc(const tok_t *tok, const char *text, size_t len, size_t loss_from,
                           size_t *n_out, size_t *n_context)
{
    int32_t *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    *n_context = 0;
    if (loss_from == 0 || loss_from >= len) {
        if (tok_encode(tok, text, len, true, &a, &na) != 0)
            return NULL;
        *n_out = na;
        *n_context = loss_from >= len && loss_from > 0 ? na : 0;
        return a;
    }
    if (tok_encode(tok, text, loss_from, true, &a, &na) != 0 ||
        tok_encode(tok, text + loss_from, len - loss_from, true, &b, &nb) != 0) {
        free(a);
        return NULL;
    }
    int32_t *all = malloc((na + nb + 1) * sizeof *all);
    if (all) {
        memcpy(all, a, na * sizeof *a);
        memcpy(all + na, b, nb * sizeof *b);
        *n_out = na + nb;
        *n_context = na;
    }
    free(a);
    free(b);
    return all;
}

static int data_build(data_t *d, const tok_t *tok, const char *const *texts, const size_t *lens,
                      const size_t *loss_from, size_t n, int T, int B, int n_vocab,
                      float eval_fraction, uint64_t seed, char *err, size_t errlen)
{
    int rc = -1;
    core_buf_t buf;   /* int32 tokens as bytes */
    core_buf_t learn; /* one byte per token, with loss_from */
    core_buf_init(&buf);
    core_buf_init(&learn);
    memset(d, 0, sizeof *d);
    int bos = tok_bos(tok), eos = tok_eos(tok);
    size_t total = 0;
    size_t *doc_len = calloc(n, sizeof *doc_len); /* tokens of each document in the stream */
    if (!doc_len)
        FAIL("out of memory");
    for (size_t i = 0; i < n; i++) {
        if (!texts[i] && lens[i])
            FAIL("text %zu is NULL", i);
        total += lens[i];
        if (total > MAX_TEXT_BYTES)
            FAIL("the texts are larger than %zu MiB", MAX_TEXT_BYTES >> 20);
        if (lens[i] == 0)
            continue;
        size_t nid = 0, nctx = 0;
        int32_t *ids = encode_doc(tok, texts[i], lens[i], loss_from ? loss_from[i] : 0, &nid, &nctx);
        if (!ids)
            FAIL("tokenizing text %zu failed (out of memory)", i);
        for (size_t j = 0; j < nid; j++)
            if (ids[j] < 0 || ids[j] >= n_vocab) {
                int bad = ids[j];
                free(ids);
                FAIL("token id %d of text %zu is outside the model's vocabulary (%d)", bad, i,
                     n_vocab);
            }
        if (bos >= 0)
            core_buf_append(&buf, &bos, sizeof bos);
        core_buf_append(&buf, ids, nid * sizeof *ids);
        if (eos >= 0)
            core_buf_append(&buf, &eos, sizeof eos);
        if (loss_from) { /* BOS and the context are not predicted; the rest and EOS are */
            size_t n_ctx = nctx + (bos >= 0), n_all = nid + (bos >= 0) + (eos >= 0);
            for (size_t j = 0; j < n_all; j++) {
                uint8_t on = j >= n_ctx;
                core_buf_append(&learn, &on, 1);
            }
        }
        doc_len[i] = nid + (bos >= 0) + (eos >= 0);
        free(ids);
    }
    size_t ns = buf.len / sizeof(int32_t);
    if (ns < 2 || total == 0)
        FAIL("no usable text to train on");
    if (bos >= n_vocab || eos >= n_vocab)
        FAIL("the tokenizer's BOS/EOS ids are outside the model's vocabulary (%d)", n_vocab);
    d->n_stream = ns;
    d->stream = (int32_t *)core_buf_steal(&buf);
    if (loss_from)
        d->learn = (uint8_t *)core_buf_steal(&learn);

    /* Windows start at every document's start and every T tokens inside a document, so each
     * document is seen from its BOS at position 0 — the way a prompt is run at inference. The
     * stream is read cyclically (the last EOS is followed by the first BOS), which also serves
     * corpora shorter than one window. */
    size_t cap = ns / T + n + 1;
    d->starts = malloc(cap * sizeof *d->starts);
    if (!d->starts)
        FAIL("out of memory for the data windows");
    size_t nw = 0, pos = 0;
    for (size_t i = 0; i < n; i++) {
        if (lens[i] == 0)
            continue;
        size_t end = pos + doc_len[i];
        for (size_t st = pos; st < end && nw < cap; st += (size_t)T)
            if (end - st > 1 || st == pos) /* a window's targets start after st */
                d->starts[nw++] = st;
        pos = end;
    }
    d->n_windows = nw;
    d->perm = malloc(d->n_windows * sizeof *d->perm);
    d->ids = malloc((size_t)B * T * sizeof *d->ids);
    d->tgt = malloc((size_t)B * T * sizeof *d->tgt);
    if (!d->perm || !d->ids || !d->tgt)
        FAIL("out of memory for the data windows");
    /* held-out windows: a seeded choice, at least one when there are two or more */
    uint64_t rng = seed ^ 0xda7a5e1ec7ed0001ULL;
    size_t ne = (size_t)((double)eval_fraction * d->n_windows);
    if (ne == 0 && d->n_windows >= 2 && eval_fraction > 0)
        ne = 1;
    for (size_t w = 0; w < d->n_windows; w++)
        d->perm[w] = (uint32_t)w;
    shuffle(d->perm, d->n_windows, &rng);
    size_t *tmp = malloc(d->n_windows * sizeof *tmp);
    if (!tmp)
        FAIL("out of memory for the data windows");
    for (size_t w = 0; w < d->n_windows; w++)
        tmp[w] = d->starts[d->perm[w]];
    free(d->starts);
    d->starts = tmp;
    d->n_eval = ne;
    d->n_train = d->n_windows - ne;
    d->perm_epoch = -1;
    rc = 0;
out:
    core_buf_destroy(&buf);
    core_buf_destroy(&learn);
    free(doc_len);
    if (rc != 0)
        data_free(d);
    return rc;
}

static void fill_window(const data_t *d, size_t start, int T, int32_t *ids, int32_t *tgt)
{
    size_t ns = d->n_stream;
    for (int i = 0; i < T; i++) {
        size_t next = (start + (size_t)i + 1) % ns;
        ids[i] = d->stream[(start + (size_t)i) % ns];
        tgt[i] = d->learn && !d->learn[next] ? -1 : d->stream[next];
    }
}

/* The batch of a step: epoch e = step*B / n_train visits the train windows in an order shuffled
 * by (seed, e), so the batch depends only on (seed, step). */
static void data_batch(data_t *d, uint64_t seed, int step, int B, int T)
{
    for (int b = 0; b < B; b++) {
        uint64_t idx = (uint64_t)step * B + b;
        int64_t epoch = (int64_t)(idx / d->n_train);
        if (epoch != d->perm_epoch) {
            for (size_t w = 0; w < d->n_train; w++)
                d->perm[w] = (uint32_t)w;
            uint64_t rng = seed * 0x9e3779b97f4a7c15ULL + (uint64_t)epoch + 1;
            shuffle(d->perm, d->n_train, &rng);
            d->perm_epoch = epoch;
        }
        size_t w = d->perm[idx % d->n_train];
        fill_window(d, d->starts[w], T, d->ids + (size_t)b * T, d->tgt + (size_t)b * T);
    }
}

/* ==== schedule, hash ==== */

static float lr_at(const train_params_t *p, float lr, int warmup, int step)
{
    if (step < warmup)
        return lr * (float)(step + 1) / (float)warmup;
    double span = p->steps - warmup;
    double prog = span > 0 ? (step - warmup) / span : 1.0;
    if (prog > 1)
        prog = 1;
    double mn = lr * (double)p->min_lr_ratio;
    return (float)(mn + (lr - mn) * 0.5 * (1.0 + cos(M_PI * prog)));
}

#define FNV_VAL(h, x)                                                                              \
    do {                                                                                           \
        __typeof__(x) v_ = (x);                                                                    \
        h = core_fnv1a(h, &v_, sizeof v_);                                                         \
    } while (0)

/* Everything a resumed run must share with the run that wrote the checkpoint. */
static uint64_t run_hash(const train_params_t *p, const llm_config_t *c, float lr, int warmup,
                         int T, const data_t *d)
{
    uint64_t h = CORE_FNV1A_INIT;
    int ci[] = {c->n_vocab, c->n_ctx,      c->dim,     c->n_layers,
                c->n_heads, c->n_kv_heads, c->ffn_dim, c->tied_output};
    h = core_fnv1a(h, ci, sizeof ci);
    float cf[] = {c->rope_base, c->norm_eps, lr,          p->min_lr_ratio, p->weight_decay,
                  p->beta1,     p->beta2,    p->adam_eps, p->grad_clip};
    h = core_fnv1a(h, cf, sizeof cf);
    int pi[] = {p->steps, p->batch_size, T, warmup};
    h = core_fnv1a(h, pi, sizeof pi);
    FNV_VAL(h, p->seed);
    h = core_fnv1a(h, d->stream, d->n_stream * sizeof *d->stream);
    if (d->learn)
        h = core_fnv1a(h, d->learn, d->n_stream);
    return h & INT64_MAX; /* stored as a u64 key, read back through the i64 getter */
}

/* ==== files ==== */

enum { CKPT_VERSION = 1 };

static int add_model_tensors(gguf_writer_t *w, const train__model_t *mdl, const float *base,
                             const char *prefix)
{
    for (int i = 0; i < mdl->n_tensors; i++) {
        const train__tensor_t *t = &mdl->tensors[i];
        char name[96];
        snprintf(name, sizeof name, "%s%s", prefix, t->name);
        uint64_t ne[2] = {t->cols, t->rows};
        if (gguf_writer_add_tensor(w, name, NN_F32, t->rows == 1 ? 1 : 2, ne, base + t->off) != 0)
            return -1;
    }
    return 0;
}

static int write_model_kv(gguf_writer_t *w, const train__model_t *mdl, const tok_t *tok,
                          const char *name)
{
    if (llm_config_to_gguf(&mdl->c, w) != 0)
        return -1;
    if (gguf_writer_set_str(w, "general.name", name, strlen(name)) != 0)
        return -1;
    if (gguf_writer_set_u32(w, "general.file_type", 0) != 0) /* all F32 */
        return -1;
    return tok_to_gguf(tok, w);
}

static int write_model(const char *path, const train__model_t *mdl, const tok_t *tok,
                       const char *name, char *err, size_t errlen)
{
    int rc = -1;
    gguf_writer_t *w = gguf_writer_new();
    if (!w)
        FAIL("out of memory");
    if (write_model_kv(w, mdl, tok, name) != 0 || add_model_tensors(w, mdl, mdl->w, "") != 0)
        FAIL("building the model file failed");
    if (gguf_writer_write(w, path, err, errlen) != 0)
        goto out;
    rc = 0;
out:
    gguf_writer_free(&w);
    return rc;
}

static int write_ckpt(const char *path, const train__model_t *mdl, const tok_t *tok,
                      const char *name, int step, uint64_t seed, uint64_t hash, char *err,
                      size_t errlen)
{
    int rc = -1;
    gguf_writer_t *w = gguf_writer_new();
    if (!w)
        FAIL("out of memory");
    if (write_model_kv(w, mdl, tok, name) != 0 ||
        gguf_writer_set_u32(w, "train.version", CKPT_VERSION) != 0 ||
        gguf_writer_set_u32(w, "train.step", (uint32_t)step) != 0 ||
        gguf_writer_set_u64(w, "train.seed", seed) != 0 ||
        gguf_writer_set_u64(w, "train.run_hash", hash) != 0 ||
        add_model_tensors(w, mdl, mdl->w, "") != 0 ||
        add_model_tensors(w, mdl, mdl->m, "adam_m.") != 0 ||
        add_model_tensors(w, mdl, mdl->v, "adam_v.") != 0)
        FAIL("building the checkpoint failed");
    if (gguf_writer_write(w, path, err, errlen) != 0)
        goto out;
    rc = 0;
out:
    gguf_writer_free(&w);
    return rc;
}

/* Copies tensor `name` (F32 or F16, rows x cols) from g into dst; -1 with err otherwise. */
static int read_tensor(const gguf_t *g, const char *name, const train__tensor_t *t, float *dst,
                       char *err, size_t errlen)
{
    const gguf_tensor_t *gt = gguf_find_tensor(g, name);
    if (!gt)
        return snprintf(err, errlen, "tensor %s is missing", name), -1;
    if (gt->type != NN_F32 && gt->type != NN_F16)
        return snprintf(err, errlen, "tensor %s is %s; training needs F32 or F16 weights", name,
                        nn_type_name((nn_type_t)gt->type)),
               -1;
    if (gt->ne[0] != t->cols || gt->ne[1] != t->rows || gt->ne[2] != 1 || gt->ne[3] != 1)
        return snprintf(err, errlen, "tensor %s has shape [%llu, %llu], expected [%zu, %zu]", name,
                        (unsigned long long)gt->ne[0], (unsigned long long)gt->ne[1], t->cols,
                        t->rows),
               -1;
    size_t n = t->rows * t->cols;
    if (gt->type == NN_F32) {
        memcpy(dst, gt->data, n * sizeof(float));
    } else {
        const unsigned char *src = gt->data;
        for (size_t i = 0; i < n; i++) {
            nn_f16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = nn_f16_to_f32(h);
        }
    }
    return 0;
}

static int read_weights(const gguf_t *g, train__model_t *mdl, float *base, const char *prefix,
                        char *err, size_t errlen)
{
    for (int i = 0; i < mdl->n_tensors; i++) {
        char name[96];
        snprintf(name, sizeof name, "%s%s", prefix, mdl->tensors[i].name);
        if (read_tensor(g, name, &mdl->tensors[i], base + mdl->tensors[i].off, err, errlen) != 0)
            return -1;
    }
    return 0;
}

static bool config_equal(const llm_config_t *a, const llm_config_t *b)
{
    return a->n_vocab == b->n_vocab && a->n_ctx == b->n_ctx && a->dim == b->dim &&
           a->n_layers == b->n_layers && a->n_heads == b->n_heads &&
           a->n_kv_heads == b->n_kv_heads && a->ffn_dim == b->ffn_dim &&
           a->tied_output == b->tied_output;
}

/* ==== the run ==== */

static double eval_loss(train__model_t *mdl, data_t *d, int B, int T)
{
    size_t n = d->n_eval ? d->n_eval : d->n_train; /* no held-out data: report the train loss */
    size_t off = d->n_eval ? d->n_train : 0;
    if (n > (size_t)B * MAX_EVAL_WINDOWS_BATCHES)
        n = (size_t)B * MAX_EVAL_WINDOWS_BATCHES;
    double sum = 0;
    for (size_t i = 0; i < n; i += (size_t)B) {
        int nb = (int)(n - i < (size_t)B ? n - i : (size_t)B);
        for (int b = 0; b < nb; b++)
            fill_window(d, d->starts[off + i + b], T, d->ids + (size_t)b * T,
                        d->tgt + (size_t)b * T);
        sum += train__model_step(mdl, d->ids, d->tgt, nb, false) * nb;
    }
    return sum / (double)n;
}

int train_run(const train_params_t *p, const char *const *texts, const size_t *lens, size_t n,
              const char *out_path, train_progress_fn progress, void *ud, train_result_t *res,
              char *err, size_t errlen)
{
    int rc = -1;
    char dummy[8];
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = 0;
    nn_pool_t *pool = NULL;
    tok_t *tok = NULL;
    gguf_t *base = NULL, *ck = NULL;
    train__model_t mdl;
    memset(&mdl, 0, sizeof mdl);
    data_t d;
    memset(&d, 0, sizeof d);
    char *ckpt_path = NULL;
    train_result_t r = {0};
    int64_t t_start = core_mono_ns();

    if (!p || !out_path || (!texts && n > 0) || (!lens && n > 0))
        FAIL("missing parameters, texts or output path");
    if (check_params(p, err, errlen) != 0)
        goto out;
    if (n == 0)
        FAIL("no text to train on");
    if (nn_init() != 0)
        FAIL("the numeric kernels failed their self-check");
    ckpt_path = xasprintf("%s.ckpt", out_path);
    size_t total_len = 0;
    for (size_t i = 0; i < n; i++) {
        if (lens[i] > MAX_TEXT_BYTES || total_len + lens[i] > MAX_TEXT_BYTES)
            FAIL("the texts are larger than %zu MiB", MAX_TEXT_BYTES >> 20);
        if (lens[i] && !texts[i])
            FAIL("text %zu is NULL", i);
        total_len += lens[i];
    }
    if (total_len == 0)
        FAIL("no text to train on (all texts are empty)");
    if (p->resume && access(ckpt_path, F_OK) == 0 && gguf_open(ckpt_path, &ck, err, errlen) != 0) {
        char tmp[256];
        snprintf(tmp, sizeof tmp, "%s", err);
        FAIL("checkpoint %s: %s", ckpt_path, tmp);
    }

    /* ---- model shape and tokenizer ---- */
    llm_config_t c;
    if (p->base_model) {
        if (gguf_open(p->base_model, &base, err, errlen) != 0) {
            char tmp[256];
            snprintf(tmp, sizeof tmp, "%s", err);
            FAIL("base model %s: %s", p->base_model, tmp);
        }
        if (llm_config_from_gguf(base, &c, err, errlen) != 0)
            goto out;
        c.tied_output = gguf_find_tensor(base, "output.weight") == NULL;
        if (tok_from_gguf(base, &tok, err, errlen) != 0)
            goto out;
    } else if (ck) {
        /* the checkpoint carries the tokenizer trained at the start of the run */
        if (tok_from_gguf(ck, &tok, err, errlen) != 0)
            goto out;
        train_preset(p->preset, tok_vocab_size(tok), &c);
    } else {
        if (tok_train(texts, lens, n, p->vocab_size, &tok, err, errlen) != 0)
            goto out;
        train_preset(p->preset, tok_vocab_size(tok), &c);
    }
    if (tok_vocab_size(tok) > c.n_vocab)
        FAIL("the tokenizer has %d tokens but the model only %d", tok_vocab_size(tok), c.n_vocab);
    if (llm_config_check(&c, err, errlen) != 0)
        goto out;

    int T = p->seq_len ? p->seq_len : (c.n_ctx < 256 ? c.n_ctx : 256);
    if (T > c.n_ctx)
        FAIL("seq_len %d exceeds the model's context length %d", T, c.n_ctx);
    int B = p->batch_size;
    float lr = p->lr > 0 ? p->lr : (p->base_model ? 1e-4f : 1e-3f);
    int warmup = p->warmup_steps >= 0 ? p->warmup_steps : p->steps / 10;
    const char *name = p->model_name ? p->model_name : "persona";

    if (nn_pool_create(p->n_threads, &pool) != 0)
        FAIL("cannot start %d threads", p->n_threads);

    if (data_build(&d, tok, texts, lens, p->loss_from, n, T, B, c.n_vocab, p->eval_fraction,
                   p->seed, err, errlen) != 0)
        goto out;
    if (train__model_init(&mdl, &c, B, T, true, pool, err, errlen) != 0)
        goto out;
    uint64_t hash = run_hash(p, &c, lr, warmup, T, &d);

    int step0 = 0;
    if (ck) {
        uint32_t ver = 0, st = 0;
        int64_t ck_hash = -1;
        llm_config_t cc;
        if (!gguf_get_u32(ck, "train.version", &ver) || ver != CKPT_VERSION)
            FAIL("checkpoint %s: not a training checkpoint of version %d", ckpt_path, CKPT_VERSION);
        if (!gguf_get_u32(ck, "train.step", &st) || st > (uint32_t)p->steps)
            FAIL("checkpoint %s: bad step", ckpt_path);
        if (!gguf_get_i64(ck, "train.run_hash", &ck_hash) || (uint64_t)ck_hash != hash)
            FAIL("checkpoint %s was made with other parameters or texts; "
                 "remove it or run with the same ones",
                 ckpt_path);
        if (llm_config_from_gguf(ck, &cc, err, errlen) != 0)
            goto out;
        cc.tied_output = gguf_find_tensor(ck, "output.weight") == NULL;
        if (!config_equal(&cc, &c))
            FAIL("checkpoint %s was made for a model of another shape", ckpt_path);
        if (read_weights(ck, &mdl, mdl.w, "", err, errlen) != 0 ||
            read_weights(ck, &mdl, mdl.m, "adam_m.", err, errlen) != 0 ||
            read_weights(ck, &mdl, mdl.v, "adam_v.", err, errlen) != 0)
            goto out;
        step0 = (int)st;
        core_log(CORE_LOG_INFO, "train.resume", "step=%d", step0);
    } else if (base) {
        if (read_weights(base, &mdl, mdl.w, "", err, errlen) != 0)
            goto out;
    } else {
        train__model_init_weights(&mdl, p->seed);
    }
    gguf_close(&base);
    gguf_close(&ck);

    /* ---- steps ---- */
    double step_flops = train__step_flops(&c, B, T);
    r.params = mdl.n_params;
    double eval = NAN, last_loss = NAN, train_s = 0;
    int steps_run = 0;
    for (int step = step0; step < p->steps; step++) {
        int64_t t0 = core_mono_ns();
        data_batch(&d, p->seed, step, B, T);
        double loss = train__model_step(&mdl, d.ids, d.tgt, B, true);
        if (!isfinite(loss))
            FAIL("the loss diverged at step %d (lr %g too high?)", step + 1, (double)lr);
        float gscale = 1.0f;
        if (p->grad_clip > 0) {
            double norm = sqrt(train__sumsq(pool, mdl.g, mdl.n_params));
            if (norm > p->grad_clip)
                gscale = (float)(p->grad_clip / norm);
        }
        float lr_t = lr_at(p, lr, warmup, step);
        /* decay on matrices only: run AdamW tensor by tensor */
        for (int i = 0; i < mdl.n_tensors; i++) {
            const train__tensor_t *t = &mdl.tensors[i];
            train__adamw(pool, mdl.w + t->off, mdl.g + t->off, gscale, mdl.m + t->off,
                         mdl.v + t->off, t->rows * t->cols, lr_t, p->beta1, p->beta2, p->adam_eps,
                         t->matrix ? p->weight_decay : 0.0f, step + 1);
        }
        train_s += (double)(core_mono_ns() - t0) / 1e9;
        steps_run++;
        last_loss = loss;
        int done = step + 1;
        if ((p->eval_every > 0 && done % p->eval_every == 0) || done == p->steps)
            eval = eval_loss(&mdl, &d, B, T);
        if (progress) {
            train_progress_t pr = {.step = done,
                                   .steps = p->steps,
                                   .train_loss = (float)loss,
                                   .eval_loss = (float)eval,
                                   .lr = lr_t};
            pr.tokens_per_s = steps_run * (double)B * T / train_s;
            pr.gflops = steps_run * step_flops / train_s / 1e9;
            pr.eta_s = (p->steps - done) * train_s / steps_run;
            if (progress(ud, &pr) != 0) {
                if (write_ckpt(ckpt_path, &mdl, tok, name, done, p->seed, hash, err, errlen) != 0)
                    goto out;
                r.steps_done = done;
                rc = 1;
                goto out;
            }
        }
        if (p->checkpoint_every > 0 && done % p->checkpoint_every == 0 && done < p->steps)
            if (write_ckpt(ckpt_path, &mdl, tok, name, done, p->seed, hash, err, errlen) != 0)
                goto out;
    }
    if (steps_run == 0) /* resumed from a finished checkpoint */
        eval = eval_loss(&mdl, &d, B, T);
    if (write_model(out_path, &mdl, tok, name, err, errlen) != 0)
        goto out;
    unlink(ckpt_path);
    r.steps_done = p->steps;
    r.train_loss = (float)last_loss;
    r.eval_loss = (float)eval;
    r.tokens_trained = (uint64_t)p->steps * B * T;
    r.gflops = train_s > 0 ? steps_run * step_flops / train_s / 1e9 : 0;
    rc = 0;
out:
    r.seconds = (double)(core_mono_ns() - t_start) / 1e9;
    if (res)
        *res = r;
    if (rc < 0) {
        char q[512];
        core_log(CORE_LOG_WARN, "train.failed", "reason=%s", core_log_quote(err, q, sizeof q));
    }
    train__model_destroy(&mdl);
    data_free(&d);
    gguf_close(&base);
    gguf_close(&ck);
    tok_free(&tok);
    nn_pool_free(&pool);
    free(ckpt_path);
    return rc;
}
