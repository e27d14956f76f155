/* llm: the llama-family decoder-only transformer for inference — model files, KV cache, batched
 * prompt processing, sampling, the chat template and a step-wise generator.
 *
 * Architecture ("llama" in GGUF): token embedding; per layer RMSNorm -> attention with rotary
 * position embeddings (llama.cpp's "normal" rope: pairs (x[2i], x[2i+1]) rotated by
 * pos * base^(-2i/head_dim)) and grouped-query attention -> residual; RMSNorm -> SwiGLU
 * feed-forward (down(silu(gate(x)) * up(x))) -> residual; final RMSNorm; output head (its own
 * `output.weight`, or the embedding when that is absent = tied).
 *
 * GGUF keys read and written (llama.cpp's names): general.architecture = "llama", general.name,
 * llama.vocab_size, llama.context_length, llama.embedding_length, llama.block_count,
 * llama.feed_forward_length, llama.attention.head_count, llama.attention.head_count_kv,
 * llama.rope.dimension_count, llama.rope.freq_base, llama.attention.layer_norm_rms_epsilon,
 * general.file_type; tokenizer keys: see src/tok. Tensor names: token_embd.weight,
 * blk.N.{attn_norm,attn_q,attn_k,attn_v,attn_output,ffn_norm,ffn_gate,ffn_up,ffn_down}.weight,
 * output_norm.weight, output.weight (optional). Norm weights are F32; matrices any nn type
 * (GGUF shape [in, out], i.e. `out` rows of `in` elements).
 *
 * Chat template: ChatML — "<|im_start|>{role}\n{content}<|im_end|>\n" per message, then
 * "<|im_start|>assistant\n" to ask for an answer; generation stops at <|im_end|>, <|im_start|>
 * (the model begins another message) or EOS. The
 * Jinja form of it is stored as tokenizer.chat_template so other tools apply the same.
 *
 * Threads: an llm_model_t is immutable after load and shared; an llm_ctx_t (one sequence's KV
 * cache and scratch) and an llm_gen_t belong to one thread at a time. */
#ifndef PERSONA_LLM_H
#define PERSONA_LLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf/gguf.h"
#include "nn/nn.h"
#include "tok/tok.h"

typedef struct {
    int n_vocab;
    int n_ctx;      /* trained context length */
    int dim;        /* embedding length */
    int n_layers;
    int n_heads;
    int n_kv_heads; /* divides n_heads */
    int ffn_dim;
    float rope_base;  /* default 10000 */
    float norm_eps;   /* default 1e-5 */
    bool tied_output; /* no output.weight: the head is token_embd */
} llm_config_t;

/* Checks a configuration (positive sizes, dim % n_heads, n_heads % n_kv_heads, even head_dim,
 * dims multiples of 32). 0, or -1 with the reason in err. */
int llm_config_check(const llm_config_t *c, char *err, size_t errlen);
/* Parameter count of a model of this shape. */
uint64_t llm_config_params(const llm_config_t *c);
/* Writes the llama.* and general.architecture keys for c into w. */
int llm_config_to_gguf(const llm_config_t *c, gguf_writer_t *w);
int llm_config_from_gguf(const gguf_t *g, llm_config_t *c, char *err, size_t errlen);
/* Tensor name for layer il (-1 for non-layer tensors), e.g. llm_tensor_name(buf, n, 3, "attn_q")
 * -> "blk.3.attn_q.weight", llm_tensor_name(buf, n, -1, "output_norm") -> "output_norm.weight". */
void llm_tensor_name(char *buf, size_t n, int il, const char *what);

typedef struct llm_model llm_model_t;

/* Maps a GGUF file and checks every tensor's name, type and shape. The tokenizer comes from the
 * file. 0, or -1 with a one-line reason. */
int llm_load(const char *path, llm_model_t **out, char *err, size_t errlen);
/* A model with random weights of the given type (benchmarks, tests); tok may be NULL (then a
 * byte-level tokenizer without merges is made, n_vocab must be >= 259) and is taken over. */
int llm_random(const llm_config_t *c, nn_type_t type, uint64_t seed, tok_t *tok, llm_model_t **out);
void llm_free(llm_model_t **m); /* NULL-safe */
const llm_config_t *llm_model_config(const llm_model_t *m);
const tok_t *llm_model_tok(const llm_model_t *m);
nn_type_t llm_model_type(const llm_model_t *m); /* the type of its matrices (the most common) */
/* Writes the model to path as GGUF (atomically): the llama.* keys, the tokenizer, and for a loaded
 * model every other key of its file; tensors in llama.cpp's order. 0, or -1 with err. */
int llm_save(const llm_model_t *m, const char *path, char *err, size_t errlen);
/* Rewrites a model file with matrices converted to type (F32, F16, Q8_0, Q4_0); norms stay F32,
 * all metadata is kept, general.file_type is updated. */
int llm_quantize_file(const char *in_path, const char *out_path, nn_type_t type, char *err,
                      size_t errlen);

/* ---- evaluation ---- */
typedef struct llm_ctx llm_ctx_t;
/* A KV cache for n_ctx positions (<= 0: the model's context length). */
int llm_ctx_new(const llm_model_t *m, int n_ctx, llm_ctx_t **out);
void llm_ctx_free(llm_ctx_t **c);
void llm_ctx_reset(llm_ctx_t *c);
int llm_ctx_pos(const llm_ctx_t *c);  /* tokens in the cache */
int llm_ctx_size(const llm_ctx_t *c); /* capacity */
/* Appends n tokens (a batch: matrix-matrix products), and writes the logits of the last one
 * into logits (n_vocab floats) when non-NULL. -1 if the cache would overflow or an id is out of
 * range. */
int llm_eval(llm_ctx_t *c, nn_pool_t *pool, const int32_t *tokens, size_t n, float *logits);

/* ---- sampling ---- */
typedef struct {
    float temperature;    /* 0 = greedy (argmax); default 0.8 */
    int top_k;            /* 0 = off; default 40 */
    float top_p;          /* 1 = off; default 0.95 */
    float min_p;          /* 0 = off; default 0.05 */
    float repeat_penalty; /* 1 = off; default 1.1, over the last repeat_last_n tokens */
    int repeat_last_n;    /* default 64 */
    uint64_t seed;        /* same seed, same tokens */
} llm_sampling_t;
void llm_sampling_default(llm_sampling_t *s);

typedef struct llm_sampler llm_sampler_t;
int llm_sampler_new(const llm_sampling_t *s, int n_vocab, llm_sampler_t **out);
void llm_sampler_free(llm_sampler_t **s);
/* Picks a token from logits (modified in place) given the tokens so far. */
int32_t llm_sample(llm_sampler_t *s, float *logits, const int32_t *history, size_t n_history);

/* ---- chat ---- */
typedef struct {
    const char *role; /* "system", "user", "assistant" */
    const char *content;
} llm_message_t;
/* The ChatML prompt for n messages (+ "<|im_start|>assistant\n" when add_assistant), malloc'd. */
char *llm_chat_prompt(const llm_message_t *msgs, size_t n, bool add_assistant);

/* ---- generation, one token per step so a scheduler can interleave requests ---- */
typedef struct {
    llm_sampling_t sampling;
    int max_tokens;          /* <= 0: until the context is full */
    const char *const *stop; /* stop strings (not included in the output), borrowed */
    size_t n_stop;
    bool parse_special;      /* control-token text in the prompt becomes control tokens */
} llm_gen_params_t;

typedef enum {
    LLM_GEN_RUNNING = 0,
    LLM_GEN_STOP,   /* EOS, <|im_end|> or a stop string */
    LLM_GEN_LENGTH, /* max_tokens or the context is full */
} llm_gen_state_t;

typedef struct llm_gen llm_gen_t;
/* Tokenizes the prompt (BOS added when the tokenizer says so). The context is the model's,
 * capped at 8192 positions. -1 with err for a prompt that leaves no room for an answer
 * ("prompt is N tokens, the context holds M"). */
int llm_gen_new(const llm_model_t *m, const char *prompt, size_t len, const llm_gen_params_t *p,
                llm_gen_t **out, char *err, size_t errlen);
void llm_gen_free(llm_gen_t **g);
/* Processes the next 256 tokens of the prompt (a long prompt takes several calls, with no text,
 * so that interleaved generations are not held up; the call that finishes it also makes the
 * first token) or one more token. Text that is final (whole UTF-8 characters, no longer a
 * possible prefix of a stop string) is appended to *text and *len (borrowed, valid until the
 * next call; may be empty). Returns the state after the step, or -1 on error. When the state is
 * not RUNNING, the remaining held-back text has been flushed. */
int llm_gen_step(llm_gen_t *g, nn_pool_t *pool, const char **text, size_t *len);
int llm_gen_prompt_tokens(const llm_gen_t *g);
int llm_gen_completion_tokens(const llm_gen_t *g);

#endif
