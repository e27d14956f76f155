/* llm internals shared by the module's files (model.c, eval.c, sample.c, gen.c) and by its unit
 * tests, which build models with hand-made weights through these structs.
 *
 * Dimension legend used in shape comments:
 *   D = dim, F = ffn_dim, V = n_vocab, H = n_heads, K = n_kv_heads, S = head_dim = D / H,
 *   KD = K * S (width of the K and V projections), T = context positions, n = batch rows.
 * A matrix "[in, out]" is GGUF's shape (ne[0] = in): `out` rows of `in` elements each. */
#ifndef PERSONA_LLM_INTERNAL_H
#define PERSONA_LLM_INTERNAL_H

#include "core/core.h"
#include "llm/llm.h"

/* One weight matrix: its element type and rows in the mapping (or in owned memory). */
typedef struct {
    nn_type_t type;
    const void *data;
} llm__mat_t;

typedef struct {
    const float *attn_norm; /* [D] */
    llm__mat_t attn_q;      /* [D, D] */
    llm__mat_t attn_k;      /* [D, KD] */
    llm__mat_t attn_v;      /* [D, KD] */
    llm__mat_t attn_output; /* [D, D] */
    const float *ffn_norm;  /* [D] */
    llm__mat_t ffn_gate;    /* [D, F] */
    llm__mat_t ffn_up;      /* [D, F] */
    llm__mat_t ffn_down;    /* [F, D] */
    /* Matrices that lie back to back in memory with one type, usable as one product of
     * D + 2 KD (q, k, v) or 2 F (gate, up) rows: generation then wakes the pool once for them. */
    bool fused_qkv, fused_gate_up;
} llm__layer_t;

struct llm_model {
    llm_config_t c;
    nn_type_t type;            /* the most common matrix type */
    gguf_t *g;                 /* the mapped file, or NULL for a model made in memory */
    tok_t *tok;                /* owned */
    llm__mat_t tok_embd;       /* [D, V] */
    const float *output_norm;  /* [D] */
    llm__mat_t output;         /* [D, V]; == tok_embd when tied */
    llm__layer_t *layers;      /* n_layers */
    /* Memory of a model made in memory (llm_random): one block per tensor, freed with it. */
    void **owned;
    size_t n_owned;
};

/* xoshiro256** seeded through splitmix64: the one PRNG of the module (random weights, sampling),
 * so that a seed means the same stream everywhere. */
typedef struct {
    uint64_t s[4];
} llm__rng_t;
static inline uint64_t llm__splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static inline void llm__rng_seed(llm__rng_t *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = llm__splitmix64(&seed);
}
static inline uint64_t llm__rng_next(llm__rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t x = s[1] * 5;
    uint64_t res = ((x << 7) | (x >> 57)) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return res;
}
/* Uniform in [0, 1) with 24 bits, exact in float. */
static inline float llm__rng_float(llm__rng_t *r)
{
    return (float)(llm__rng_next(r) >> 40) * (1.0f / 16777216.0f);
}

/* Sets each layer's fused_* flags from where its matrices lie. */
void llm__fuse(llm_model_t *m);

/* The byte-level tokenizer llm_random uses when it is given none. */
int llm__byte_tok(tok_t **out);

/* Writes the UTF-8-clean part of raw bytes: complete, valid sequences are copied; invalid bytes
 * become U+FFFD; an incomplete sequence at the end that could still become valid is left (its
 * length is returned in *held) unless flush is set, in which case it becomes U+FFFD too. */
void llm__utf8_clean(const char *raw, size_t len, bool flush, core_buf_t *out, size_t *held);

#endif
