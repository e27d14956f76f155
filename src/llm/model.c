/* llm model files: the configuration and its GGUF keys, loading a mapped GGUF file with every
 * tensor checked, models with random weights, saving and re-typing (quantizing) model files.
 *
 * A loaded model uses its weights in place in the read-only mapping (no copy); a random model
 * owns one malloc'd block per tensor. Either way the model is immutable once returned, so any
 * number of threads may evaluate it at once. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/internal.h"

/* Bounds on what a file may claim, far above any model this engine can run on a CPU, so that
 * sizes computed from them cannot overflow. */
#define LLM_MAX_DIM 65536
#define LLM_MAX_FFN (1 << 20)
#define LLM_MAX_VOCAB (1 << 20)
#define LLM_MAX_LAYERS 1024
#define LLM_MAX_CTX (1 << 20)

static const char *const llm_layer_mats[] = {"attn_q", "attn_k", "attn_v", "attn_output",
                                             "ffn_gate", "ffn_up", "ffn_down"};
#define LLM_N_LAYER_MATS 7

/* ================================ configuration ================================ */

int llm_config_check(const llm_config_t *c, char *err, size_t errlen)
{
    if (c->n_vocab <= 0 || c->n_vocab > LLM_MAX_VOCAB || c->n_ctx <= 0 || c->n_ctx > LLM_MAX_CTX ||
        c->dim <= 0 || c->dim > LLM_MAX_DIM || c->n_layers <= 0 || c->n_layers > LLM_MAX_LAYERS ||
        c->n_heads <= 0 || c->n_heads > c->dim || c->n_kv_heads <= 0 || c->ffn_dim <= 0 ||
        c->ffn_dim > LLM_MAX_FFN) {
        snprintf(err, errlen,
                 "configuration out of range: vocab %d, context %d, dim %d, layers %d, heads %d/%d, "
                 "ffn %d",
                 c->n_vocab, c->n_ctx, c->dim, c->n_layers, c->n_heads, c->n_kv_heads, c->ffn_dim);
        return -1;
    }
    if (c->dim % c->n_heads != 0 || c->n_heads % c->n_kv_heads != 0) {
        snprintf(err, errlen, "heads (%d) must divide dim (%d), and kv heads (%d) must divide heads",
                 c->n_heads, c->dim, c->n_kv_heads);
        return -1;
    }
    if ((c->dim / c->n_heads) % 2 != 0) {
        snprintf(err, errlen, "head dimension %d is odd", c->dim / c->n_heads);
        return -1;
    }
    if (c->dim % NN_QK != 0 || c->ffn_dim % NN_QK != 0) {
        snprintf(err, errlen, "dim %d and ffn %d must be multiples of %d", c->dim, c->ffn_dim, NN_QK);
        return -1;
    }
    if (!(c->rope_base > 0.0f) || !isfinite(c->rope_base) || !(c->norm_eps > 0.0f) ||
        !isfinite(c->norm_eps)) {
        snprintf(err, errlen, "rope base %g and norm epsilon %g must be positive", c->rope_base,
                 c->norm_eps);
        return -1;
    }
    return 0;
}

uint64_t llm_config_params(const llm_config_t *c)
{
    uint64_t d = (uint64_t)c->dim, f = (uint64_t)c->ffn_dim, v = (uint64_t)c->n_vocab;
    uint64_t kd = d / (uint64_t)c->n_heads * (uint64_t)c->n_kv_heads;
    uint64_t layer = d + d * d + 2 * d * kd + d * d + d + 3 * d * f;
    return v * d + (uint64_t)c->n_layers * layer + d + (c->tied_output ? 0 : v * d);
}

int llm_config_to_gguf(const llm_config_t *c, gguf_writer_t *w)
{
    int rc = 0;
    rc |= gguf_writer_set_str(w, "general.architecture", "llama", 5);
    rc |= gguf_writer_set_u32(w, "llama.vocab_size", (uint32_t)c->n_vocab);
    rc |= gguf_writer_set_u32(w, "llama.context_length", (uint32_t)c->n_ctx);
    rc |= gguf_writer_set_u32(w, "llama.embedding_length", (uint32_t)c->dim);
    rc |= gguf_writer_set_u32(w, "llama.block_count", (uint32_t)c->n_layers);
    rc |= gguf_writer_set_u32(w, "llama.feed_forward_length", (uint32_t)c->ffn_dim);
    rc |= gguf_writer_set_u32(w, "llama.attention.head_count", (uint32_t)c->n_heads);
    rc |= gguf_writer_set_u32(w, "llama.attention.head_count_kv", (uint32_t)c->n_kv_heads);
    rc |= gguf_writer_set_u32(w, "llama.rope.dimension_count", (uint32_t)(c->dim / c->n_heads));
    rc |= gguf_writer_set_f32(w, "llama.rope.freq_base", c->rope_base);
    rc |= gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", c->norm_eps);
    return rc ? -1 : 0;
}

/* A required positive integer key that fits an int. */
static int llm_get_int(const gguf_t *g, const char *key, int *out, char *err, size_t errlen)
{
    int64_t v;
    if (!gguf_get_i64(g, key, &v)) {
        snprintf(err, errlen, "%s: missing or not an integer", key);
        return -1;
    }
    if (v <= 0 || v > (1 << 30)) {
        snprintf(err, errlen, "%s: %lld out of range", key, (long long)v);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int llm_config_from_gguf(const gguf_t *g, llm_config_t *c, char *err, size_t errlen)
{
    const char *arch;
    size_t alen;
    memset(c, 0, sizeof *c);
    if (!gguf_get_str(g, "general.architecture", &arch, &alen)) {
        snprintf(err, errlen, "general.architecture: missing");
        return -1;
    }
    if (alen != 5 || memcmp(arch, "llama", 5) != 0) {
        snprintf(err, errlen, "general.architecture: \"%.*s\" is not supported (only \"llama\")",
                 (int)(alen > 64 ? 64 : alen), arch);
        return -1;
    }
    if (llm_get_int(g, "llama.context_length", &c->n_ctx, err, errlen) ||
        llm_get_int(g, "llama.embedding_length", &c->dim, err, errlen) ||
        llm_get_int(g, "llama.block_count", &c->n_layers, err, errlen) ||
        llm_get_int(g, "llama.feed_forward_length", &c->ffn_dim, err, errlen) ||
        llm_get_int(g, "llama.attention.head_count", &c->n_heads, err, errlen))
        return -1;
    c->n_kv_heads = c->n_heads;
    if (gguf_find_key(g, "llama.attention.head_count_kv") >= 0 &&
        llm_get_int(g, "llama.attention.head_count_kv", &c->n_kv_heads, err, errlen))
        return -1;
    /* llama.cpp's converters often leave vocab_size out: the tokenizer's list, then the
     * embedding's shape, give it. */
    size_t nt;
    const gguf_tensor_t *embd = gguf_find_tensor(g, "token_embd.weight");
    if (gguf_find_key(g, "llama.vocab_size") >= 0) {
        if (llm_get_int(g, "llama.vocab_size", &c->n_vocab, err, errlen))
            return -1;
    } else if (embd && embd->n_dims == 2 && embd->ne[1] > 0 && embd->ne[1] <= LLM_MAX_VOCAB) {
        c->n_vocab = (int)embd->ne[1];
    } else if (gguf_get_arr_str_count(g, "tokenizer.ggml.tokens", &nt) && nt > 0 &&
               nt <= LLM_MAX_VOCAB) {
        c->n_vocab = (int)nt;
    } else {
        snprintf(err, errlen, "llama.vocab_size: missing, and no token list to count");
        return -1;
    }
    c->rope_base = 10000.0f;
    c->norm_eps = 1e-5f;
    if (gguf_find_key(g, "llama.rope.freq_base") >= 0 &&
        !gguf_get_f32(g, "llama.rope.freq_base", &c->rope_base)) {
        snprintf(err, errlen, "llama.rope.freq_base: not a number");
        return -1;
    }
    if (gguf_find_key(g, "llama.attention.layer_norm_rms_epsilon") >= 0 &&
        !gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &c->norm_eps)) {
        snprintf(err, errlen, "llama.attention.layer_norm_rms_epsilon: not a number");
        return -1;
    }
    if (llm_config_check(c, err, errlen))
        return -1;
    /* Partial rotary embeddings are not implemented: say so rather than compute nonsense. */
    if (gguf_find_key(g, "llama.rope.dimension_count") >= 0) {
        int rd;
        if (llm_get_int(g, "llama.rope.dimension_count", &rd, err, errlen))
            return -1;
        if (rd != c->dim / c->n_heads) {
            snprintf(err, errlen,
                     "llama.rope.dimension_count: %d, only rotary embeddings over the whole head "
                     "(%d) are supported",
                     rd, c->dim / c->n_heads);
            return -1;
        }
    }
    c->tied_output = gguf_find_tensor(g, "output.weight") == NULL;
    return 0;
}

void llm_tensor_name(char *buf, size_t n, int il, const char *what)
{
    if (il < 0)
        snprintf(buf, n, "%s.weight", what);
    else
        snprintf(buf, n, "blk.%d.%s.weight", il, what);
}

/* ================================ loading ================================ */

static void llm_shape_str(char *buf, size_t n, const uint64_t *ne, uint32_t n_dims)
{
    size_t off = 0;
    off += (size_t)snprintf(buf + off, n - off, "[");
    for (uint32_t i = 0; i < n_dims && off < n; i++)
        off += (size_t)snprintf(buf + off, n - off, "%s%llu", i ? ", " : "", (unsigned long long)ne[i]);
    if (off < n)
        snprintf(buf + off, n - off, "]");
}

/* Finds a tensor and checks its shape ([in] for a vector, [in, out] for a matrix) and type
 * (F32 when want_f32, else any nn type). */
static int llm_check_tensor(const gguf_t *g, const char *name, uint64_t in, uint64_t out,
                            bool want_f32, const gguf_tensor_t **res, char *err, size_t errlen)
{
    const gguf_tensor_t *t = gguf_find_tensor(g, name);
    if (!t) {
        snprintf(err, errlen, "%s: missing", name);
        return -1;
    }
    uint64_t want[2] = {in, out};
    uint32_t want_dims = out ? 2 : 1;
    /* Trailing dimensions of 1 are the same shape (some writers keep n_dims 2 for vectors). */
    uint32_t nd = t->n_dims;
    while (nd > want_dims && t->ne[nd - 1] == 1)
        nd--;
    if (nd != want_dims || t->ne[0] != want[0] || (want_dims == 2 && t->ne[1] != want[1])) {
        char got[96], exp[64];
        llm_shape_str(got, sizeof got, t->ne, t->n_dims);
        llm_shape_str(exp, sizeof exp, want, want_dims);
        snprintf(err, errlen, "%s: shape %s expected %s", name, got, exp);
        return -1;
    }
    if (want_f32 && t->type != NN_F32) {
        snprintf(err, errlen, "%s: type %s expected f32", name, nn_type_name((nn_type_t)t->type));
        return -1;
    }
    if (!nn_type_valid(t->type)) {
        snprintf(err, errlen, "%s: unsupported type %u", name, t->type);
        return -1;
    }
    /* Kernels read F32/F16 elements directly: their data must be aligned to the element. */
    size_t align = t->type == NN_F32 ? 4 : t->type == NN_F16 ? 2 : 1;
    if ((uintptr_t)t->data % align != 0) {
        snprintf(err, errlen, "%s: data not aligned to %zu bytes", name, align);
        return -1;
    }
    *res = t;
    return 0;
}

static int llm_check_mat(const gguf_t *g, const char *name, uint64_t in, uint64_t out,
                         llm__mat_t *m, char *err, size_t errlen)
{
    const gguf_tensor_t *t;
    if (llm_check_tensor(g, name, in, out, false, &t, err, errlen))
        return -1;
    m->type = (nn_type_t)t->type;
    m->data = t->data;
    return 0;
}

static int llm_check_vec(const gguf_t *g, const char *name, uint64_t n, const float **v, char *err,
                         size_t errlen)
{
    const gguf_tensor_t *t;
    if (llm_check_tensor(g, name, n, 0, true, &t, err, errlen))
        return -1;
    *v = t->data;
    return 0;
}

/* The most common type among the layer matrices (what a file is "in"). */
static nn_type_t llm_common_type(const llm_model_t *m)
{
    static const nn_type_t types[] = {NN_F32, NN_F16, NN_Q4_0, NN_Q8_0};
    int count[4] = {0};
    for (int l = 0; l < m->c.n_layers; l++) {
        const llm__mat_t *all[LLM_N_LAYER_MATS] = {
            &m->layers[l].attn_q,   &m->layers[l].attn_k, &m->layers[l].attn_v,
            &m->layers[l].attn_output, &m->layers[l].ffn_gate, &m->layers[l].ffn_up,
            &m->layers[l].ffn_down};
        for (int i = 0; i < LLM_N_LAYER_MATS; i++)
            for (int k = 0; k < 4; k++)
                if (all[i]->type == types[k])
                    count[k]++;
    }
    int best = 0;
    for (int k = 1; k < 4; k++)
        if (count[k] > count[best])
            best = k;
    return types[best];
}

/* Points every weight of m at the tensors of g, checking each. */
static int llm_bind(llm_model_t *m, const gguf_t *g, char *err, size_t errlen)
{
    const llm_config_t *c = &m->c;
    uint64_t d = (uint64_t)c->dim, f = (uint64_t)c->ffn_dim, v = (uint64_t)c->n_vocab;
    uint64_t kd = d / (uint64_t)c->n_heads * (uint64_t)c->n_kv_heads;
    char name[64];
    if (llm_check_mat(g, "token_embd.weight", d, v, &m->tok_embd, err, errlen) ||
        llm_check_vec(g, "output_norm.weight", d, &m->output_norm, err, errlen))
        return -1;
    if (c->tied_output)
        m->output = m->tok_embd;
    else if (llm_check_mat(g, "output.weight", d, v, &m->output, err, errlen))
        return -1;
    for (int l = 0; l < c->n_layers; l++) {
        llm__layer_t *L = &m->layers[l];
        llm__mat_t *mats[LLM_N_LAYER_MATS] = {&L->attn_q,   &L->attn_k, &L->attn_v, &L->attn_output,
                                              &L->ffn_gate, &L->ffn_up, &L->ffn_down};
        const uint64_t ins[LLM_N_LAYER_MATS] = {d, d, d, d, d, d, f};
        const uint64_t outs[LLM_N_LAYER_MATS] = {d, kd, kd, d, f, f, d};
        llm_tensor_name(name, sizeof name, l, "attn_norm");
        if (llm_check_vec(g, name, d, &L->attn_norm, err, errlen))
            return -1;
        llm_tensor_name(name, sizeof name, l, "ffn_norm");
        if (llm_check_vec(g, name, d, &L->ffn_norm, err, errlen))
            return -1;
        for (int i = 0; i < LLM_N_LAYER_MATS; i++) {
            llm_tensor_name(name, sizeof name, l, llm_layer_mats[i]);
            if (llm_check_mat(g, name, ins[i], outs[i], mats[i], err, errlen))
                return -1;
        }
    }
    m->type = llm_common_type(m);
    llm__fuse(m);
    return 0;
}

void llm__fuse(llm_model_t *m)
{
    const llm_config_t *c = &m->c;
    size_t d = (size_t)c->dim, f = (size_t)c->ffn_dim;
    size_t kd = d / (size_t)c->n_heads * (size_t)c->n_kv_heads;
    for (int l = 0; l < c->n_layers; l++) {
        llm__layer_t *L = &m->layers[l];
        nn_type_t t = L->attn_q.type;
        const uint8_t *q = L->attn_q.data, *k = L->attn_k.data, *v = L->attn_v.data;
        size_t rb = nn_row_bytes(t, d);
        L->fused_qkv = L->attn_k.type == t && L->attn_v.type == t && q + rb * d == k && k + rb * kd == v;
        t = L->ffn_gate.type;
        const uint8_t *g = L->ffn_gate.data, *u = L->ffn_up.data;
        L->fused_gate_up = L->ffn_up.type == t && g + nn_row_bytes(t, d) * f == u;
    }
}

int llm_load(const char *path, llm_model_t **out, char *err, size_t errlen)
{
    int rc = -1;
    llm_model_t *m = xcalloc(1, sizeof *m);
    *out = NULL;
    if (gguf_open(path, &m->g, err, errlen))
        goto out;
    if (llm_config_from_gguf(m->g, &m->c, err, errlen))
        goto out;
    m->layers = xcalloc((size_t)m->c.n_layers, sizeof *m->layers);
    if (llm_bind(m, m->g, err, errlen))
        goto out;
    if (tok_from_gguf(m->g, &m->tok, err, errlen))
        goto out;
    if (tok_vocab_size(m->tok) > m->c.n_vocab) {
        snprintf(err, errlen, "tokenizer has %d tokens, the model only %d", tok_vocab_size(m->tok),
                 m->c.n_vocab);
        goto out;
    }
    *out = m;
    m = NULL;
    rc = 0;
out:
    llm_free(&m);
    return rc;
}

void llm_free(llm_model_t **pm)
{
    llm_model_t *m = pm ? *pm : NULL;
    if (!m)
        return;
    gguf_close(&m->g);
    tok_free(&m->tok);
    for (size_t i = 0; i < m->n_owned; i++)
        free(m->owned[i]);
    free(m->owned);
    free(m->layers);
    free(m);
    *pm = NULL;
}

const llm_config_t *llm_model_config(const llm_model_t *m) { return &m->c; }
const tok_t *llm_model_tok(const llm_model_t *m) { return m->tok; }
nn_type_t llm_model_type(const llm_model_t *m) { return m->type; }

/* ================================ random models ================================ */

int llm__byte_tok(tok_t **out)
{
    char err[128];
    return tok_train(NULL, NULL, 0, 256 + 3, out, err, sizeof err);
}

typedef struct {
    nn_type_t type;
    size_t rows, cols;
    uint64_t seed, index;
    uint8_t *data;
    _Atomic int failed;
} llm_fill_job_t;

/* Rows of one matrix, split over the pool's threads; every row has its own stream (seed, index,
 * row), so the values do not depend on the thread count. */
static void llm_fill_task(void *arg, int ti, int nt)
{
    llm_fill_job_t *j = arg;
    size_t rb = nn_row_bytes(j->type, j->cols);
    size_t r0 = j->rows * (size_t)ti / (size_t)nt, r1 = j->rows * (size_t)(ti + 1) / (size_t)nt;
    float *row = malloc(j->cols * sizeof *row);
    if (!row) {
        j->failed = 1;
        return;
    }
    for (size_t i = r0; i < r1; i++) {
        llm__rng_t r;
        llm__rng_seed(&r, j->seed ^ (j->index * 0xD1B54A32D192ED03ull) ^ ((i + 1) * 0x8CB92BA72F3D8DD7ull));
        for (size_t k = 0; k < j->cols; k += 2) {
            /* Box-Muller: two normal values per pair of uniforms. */
            float u1 = llm__rng_float(&r), u2 = llm__rng_float(&r);
            float rad = 0.02f * sqrtf(-2.0f * logf(1.0f - u1));
            float a = 6.2831853f * u2;
            row[k] = rad * cosf(a);
            if (k + 1 < j->cols)
                row[k + 1] = rad * sinf(a);
        }
        if (j->type == NN_F32)
            memcpy(j->data + i * rb, row, rb);
        else
            nn_quantize_row(j->type, row, j->data + i * rb, j->cols);
    }
    free(row);
}

/* Fills a rows x cols matrix of type with N(0, 0.02) values; the same seed gives the same
 * underlying values whatever the type and thread count. -1 when out of memory. */
static int llm_random_fill(nn_pool_t *pool, nn_type_t type, size_t rows, size_t cols, uint64_t seed,
                           uint64_t index, uint8_t *data)
{
    llm_fill_job_t j = {type, rows, cols, seed, index, data, 0};
    if (pool)
        nn_pool_run(pool, llm_fill_task, &j);
    else
        llm_fill_task(&j, 0, 1);
    return j.failed ? -1 : 0;
}

static void *llm_random_mat(nn_pool_t *pool, nn_type_t type, size_t rows, size_t cols, uint64_t seed,
                            uint64_t index)
{
    uint8_t *data = malloc(nn_row_bytes(type, cols) * rows);
    if (data && llm_random_fill(pool, type, rows, cols, seed, index, data)) {
        free(data);
        data = NULL;
    }
    return data;
}

static void *llm_own(llm_model_t *m, void *p)
{
    if (p)
        m->owned[m->n_owned++] = p;
    return p;
}

int llm_random(const llm_config_t *cin, nn_type_t type, uint64_t seed, tok_t *tok, llm_model_t **out)
{
    char err[256];
    int rc = -1;
    llm_model_t *m = xcalloc(1, sizeof *m);
    nn_pool_t *pool = NULL;
    *out = NULL;
    m->tok = tok;
    m->c = *cin;
    const llm_config_t *c = &m->c;
    if (llm_config_check(c, err, sizeof err) || !nn_type_valid(type))
        goto out;
    if (!m->tok && llm__byte_tok(&m->tok))
        goto out;
    if (tok_vocab_size(m->tok) > c->n_vocab)
        goto out;
    size_t d = (size_t)c->dim, f = (size_t)c->ffn_dim, v = (size_t)c->n_vocab;
    size_t kd = d / (size_t)c->n_heads * (size_t)c->n_kv_heads;
    /* Every core draws weights (a 1B model takes about 20 s on one); without a pool, one does. */
    if (llm_config_params(c) > ((uint64_t)1 << 22) && nn_pool_create(0, &pool))
        pool = NULL;
    m->layers = xcalloc((size_t)c->n_layers, sizeof *m->layers);
    m->owned = xcalloc((size_t)c->n_layers * 9 + 3, sizeof *m->owned);
    uint64_t idx = 0;
    m->type = type;
    m->tok_embd.type = type;
    if (!(m->tok_embd.data = llm_own(m, llm_random_mat(pool, type, v, d, seed, idx++))))
        goto out;
    float *ones = llm_own(m, malloc(d * sizeof(float)));
    if (!ones)
        goto out;
    for (size_t i = 0; i < d; i++)
        ones[i] = 1.0f;
    m->output_norm = ones;
    if (c->tied_output) {
        m->output = m->tok_embd;
    } else {
        m->output.type = type;
        if (!(m->output.data = llm_own(m, llm_random_mat(pool, type, v, d, seed, idx++))))
            goto out;
    }
    for (int l = 0; l < c->n_layers; l++) {
        llm__layer_t *L = &m->layers[l];
        llm__mat_t *mats[LLM_N_LAYER_MATS] = {&L->attn_q,   &L->attn_k, &L->attn_v, &L->attn_output,
                                              &L->ffn_gate, &L->ffn_up, &L->ffn_down};
        const size_t ins[LLM_N_LAYER_MATS] = {d, d, d, d, d, d, f};
        const size_t outs[LLM_N_LAYER_MATS] = {d, kd, kd, d, f, f, d};
        /* Norm weights are shared: they are all ones and never written. */
        L->attn_norm = ones;
        L->ffn_norm = ones;
        /* q, k, v in one block and gate, up in another, as a file written in llama.cpp's order
         * maps them, so that generation can use one product for each group (llm__fuse). */
        size_t first[LLM_N_LAYER_MATS] = {1, 0, 0, 1, 1, 0, 1};
        uint8_t *block = NULL;
        for (int i = 0; i < LLM_N_LAYER_MATS; i++) {
            size_t rb = nn_row_bytes(type, ins[i]);
            if (first[i]) {
                size_t rows = outs[i];
                for (int k = i + 1; k < LLM_N_LAYER_MATS && !first[k]; k++)
                    rows += outs[k];
                if (!(block = llm_own(m, malloc(rb * rows))))
                    goto out;
            }
            mats[i]->type = type;
            mats[i]->data = block;
            if (llm_random_fill(pool, type, outs[i], ins[i], seed, idx++, block))
                goto out;
            block += rb * outs[i];
        }
    }
    llm__fuse(m);
    *out = m;
    m = NULL;
    rc = 0;
out:
    nn_pool_free(&pool);
    llm_free(&m); /* the tokenizer was taken over: it goes too */
    return rc;
}

/* ================================ saving ================================ */

/* llama.cpp's general.file_type for a model all of one type. */
static uint32_t llm_ftype(nn_type_t t)
{
    switch (t) {
    case NN_F32: return 0;
    case NN_F16: return 1;
    case NN_Q4_0: return 2;
    case NN_Q8_0: return 7;
    }
    return 0;
}

static int llm_add_mat(gguf_writer_t *w, const char *name, const llm__mat_t *m, uint64_t in,
                       uint64_t out)
{
    uint64_t ne[2] = {in, out};
    return gguf_writer_add_tensor(w, name, m->type, 2, ne, m->data);
}

static int llm_add_vec(gguf_writer_t *w, const char *name, const float *v, uint64_t n)
{
    uint64_t ne[1] = {n};
    return gguf_writer_add_tensor(w, name, NN_F32, 1, ne, v);
}

int llm_save(const llm_model_t *m, const char *path, char *err, size_t errlen)
{
    int rc = -1;
    gguf_writer_t *w = gguf_writer_new();
    const llm_config_t *c = &m->c;
    uint64_t d = (uint64_t)c->dim, f = (uint64_t)c->ffn_dim, v = (uint64_t)c->n_vocab;
    uint64_t kd = d / (uint64_t)c->n_heads * (uint64_t)c->n_kv_heads;
    char name[64];
    if (!w) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    /* A loaded model keeps whatever else its file said (name, license, template ...). */
    if (m->g && gguf_writer_copy_kv(w, m->g, NULL))
        goto oom;
    if (!m->g && gguf_writer_set_str(w, "general.name", "persona", 7))
        goto oom;
    if (llm_config_to_gguf(c, w) || gguf_writer_set_u32(w, "general.file_type", llm_ftype(m->type)) ||
        tok_to_gguf(m->tok, w))
        goto oom;
    if (llm_add_mat(w, "token_embd.weight", &m->tok_embd, d, v) ||
        llm_add_vec(w, "output_norm.weight", m->output_norm, d) ||
        (!c->tied_output && llm_add_mat(w, "output.weight", &m->output, d, v)))
        goto oom;
    for (int l = 0; l < c->n_layers; l++) {
        const llm__layer_t *L = &m->layers[l];
        const llm__mat_t *mats[LLM_N_LAYER_MATS] = {&L->attn_q,   &L->attn_k, &L->attn_v,
                                                    &L->attn_output, &L->ffn_gate, &L->ffn_up,
                                                    &L->ffn_down};
        const uint64_t ins[LLM_N_LAYER_MATS] = {d, d, d, d, d, d, f};
        const uint64_t outs[LLM_N_LAYER_MATS] = {d, kd, kd, d, f, f, d};
        llm_tensor_name(name, sizeof name, l, "attn_norm");
        if (llm_add_vec(w, name, L->attn_norm, d))
            goto oom;
        for (int i = 0; i < LLM_N_LAYER_MATS; i++) {
            llm_tensor_name(name, sizeof name, l, llm_layer_mats[i]);
            if (llm_add_mat(w, name, mats[i], ins[i], outs[i]))
                goto oom;
            if (i == 3) {
                llm_tensor_name(name, sizeof name, l, "ffn_norm");
                if (llm_add_vec(w, name, L->ffn_norm, d))
                    goto oom;
            }
        }
    }
    rc = gguf_writer_write(w, path, err, errlen);
    goto out;
oom:
    snprintf(err, errlen, "cannot build the GGUF metadata/tensors (out of memory?)");
out:
    gguf_writer_free(&w);
    return rc;
}

/* ================================ re-typing ================================ */

/* Whether a tensor of a loaded model is one of its weight matrices (re-typed), as opposed to
 * the norms and anything extra (copied as they are). */
static bool llm_is_matrix(const llm_model_t *m, const gguf_tensor_t *t)
{
    if (t->type != NN_F32 && t->type != NN_F16 && t->type != NN_Q8_0 && t->type != NN_Q4_0)
        return false;
    if (!strcmp(t->name, "token_embd.weight") || !strcmp(t->name, "output.weight"))
        return true;
    char name[64];
    for (int l = 0; l < m->c.n_layers; l++)
        for (int i = 0; i < LLM_N_LAYER_MATS; i++) {
            llm_tensor_name(name, sizeof name, l, llm_layer_mats[i]);
            if (!strcmp(t->name, name))
                return true;
        }
    return false;
}

int llm_quantize_file(const char *in_path, const char *out_path, nn_type_t type, char *err,
                      size_t errlen)
{
    int rc = -1;
    llm_model_t *m = NULL;
    gguf_writer_t *w = NULL;
    void **bufs = NULL;
    size_t n_bufs = 0;
    float *row = NULL;
    if (!nn_type_valid(type)) {
        snprintf(err, errlen, "type %d: not one of f32, f16, q8_0, q4_0", (int)type);
        return -1;
    }
    /* Loading checks the whole model first, so a damaged input fails before anything is written. */
    if (llm_load(in_path, &m, err, errlen))
        goto out;
    size_t nt = gguf_tensor_count(m->g);
    bufs = xcalloc(nt ? nt : 1, sizeof *bufs);
    row = xmalloc((size_t)(m->c.ffn_dim > m->c.dim ? m->c.ffn_dim : m->c.dim) * sizeof *row);
    if (!(w = gguf_writer_new()) || gguf_writer_copy_kv(w, m->g, NULL) ||
        gguf_writer_set_u32(w, "general.file_type", llm_ftype(type))) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nt; i++) {
        const gguf_tensor_t *t = gguf_tensor(m->g, i);
        const void *data = t->data;
        uint32_t ttype = t->type;
        if (llm_is_matrix(m, t) && t->type != (uint32_t)type) {
            size_t cols = t->ne[0], rows = t->ne[1] * t->ne[2] * t->ne[3];
            size_t src_rb = nn_row_bytes((nn_type_t)t->type, cols);
            size_t dst_rb = nn_row_bytes(type, cols);
            uint8_t *dst = malloc(dst_rb * rows);
            if (!dst) {
                snprintf(err, errlen, "%s: out of memory for %zu bytes", t->name, dst_rb * rows);
                goto out;
            }
            bufs[n_bufs++] = dst;
            for (size_t r = 0; r < rows; r++) {
                nn_dequantize_row((nn_type_t)t->type, (const uint8_t *)t->data + r * src_rb, row, cols);
                nn_quantize_row(type, row, dst + r * dst_rb, cols);
            }
            data = dst;
            ttype = type;
        }
        if (gguf_writer_add_tensor(w, t->name, ttype, t->n_dims, t->ne, data)) {
            snprintf(err, errlen, "%s: cannot add the tensor", t->name);
            goto out;
        }
    }
    rc = gguf_writer_write(w, out_path, err, errlen);
out:
    for (size_t i = 0; i < n_bufs; i++)
        free(bufs[i]);
    free(bufs);
    free(row);
    gguf_writer_free(&w);
    llm_free(&m);
    return rc;
}
