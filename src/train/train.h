/* train: training the llama-family model of src/llm on the CPU — forward and backward of every
 * op (embedding, RMSNorm, matmul, rope, causal grouped-query attention, SwiGLU, cross-entropy),
 * AdamW, gradient clipping by global norm, linear warmup + cosine decay, held-out evaluation,
 * checkpoint and resume.
 *
 * From scratch (a size preset, tokenizer trained on the texts) or continuing from an F32/F16 GGUF
 * model (its tokenizer and shape are kept). The result is a GGUF model file that src/llm (and
 * llama.cpp) loads: F32 weights, tokenizer and chat template included.
 *
 * Data: n texts (documents). Each is tokenized (control-token text such as "<|im_start|>" becomes
 * the control token), BOS-prefixed and EOS-terminated, and the documents are concatenated into one
 * stream, read cyclically. Windows of seq_len + 1 tokens (inputs and next-token targets) start at
 * every document's BOS and every seq_len tokens inside a document, so each document is learned
 * from position 0 as a prompt is run at inference. eval_fraction of the windows (at least one
 * when there are two or more; a seeded choice) is held out for the eval loss (over at most 8
 * batches). The batch of step s is a function of (seed, s) only: epochs of seeded shuffles.
 *
 * Determinism: for the same inputs, seed and thread count, the result file is identical byte for
 * byte (fixed summation orders; nn_sgemm is deterministic per thread count).
 *
 * Checkpoints: every checkpoint_every steps (and on cancel), `<out_path>.ckpt` is written
 * atomically — a GGUF with the model's keys, tokenizer and tensors plus `adam_m.*`/`adam_v.*`
 * tensors and train.step / train.seed / train.run_hash (the data order is a function of seed and
 * step, so that is the whole generator state). Run again with the same parameters and texts and
 * resume = true to continue from it; anything else is refused (run_hash). With the same thread
 * count too, the result is the file an uninterrupted run writes.
 * The checkpoint is removed when the run completes.
 *
 * Throughput (progress and result): FLOPs per step = 6 x (matrix parameters, output head
 * included, embedding lookup excluded) x tokens + 12 x dim x layers x (causal pairs
 * B * T(T+1)/2) for attention; divided by the time of the steps (not evals or checkpoints). */
#ifndef PERSONA_TRAIN_H
#define PERSONA_TRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llm/llm.h"

/* Presets for training from scratch (vocab excluded from the name's size):
 *   "micro" ~0.1M dim 64, 2 layers, 2 heads, ffn 192, ctx 128 (tests, quick experiments)
 *   "tiny"  ~1M  dim 128, 4 layers, 4 heads, ffn 384, ctx 256
 *   "small" ~6M  dim 256, 6 layers, 8 heads, ffn 768, ctx 256
 *   "base"  ~15M dim 384, 8 layers, 6 heads, ffn 1024, ctx 512
 *   "large" ~50M dim 640, 10 layers, 10 heads, ffn 1728, ctx 512
 * 0, or -1 for an unknown name. */
int train_preset(const char *name, int n_vocab, llm_config_t *out);
const char *const *train_preset_names(void); /* NULL-terminated */

typedef struct {
    const char *preset;    /* from scratch: a preset name; NULL when base_model is set */
    const char *base_model; /* continue from this GGUF (F32 or F16) */
    int vocab_size;        /* from scratch: tokenizer size (default 1024, range [259, 65536]) */
    int steps;             /* optimizer steps (default 200) */
    int batch_size;        /* sequences per step (default 8) */
    int seq_len;           /* tokens per sequence (0 = default: min(ctx, 256)) */
    float lr;              /* peak learning rate (0 = default: 1e-3 from scratch, 1e-4 continuing) */
    float min_lr_ratio;    /* cosine floor as a fraction of lr (default 0.1) */
    int warmup_steps;      /* -1 = default: steps / 10 */
    float weight_decay;    /* AdamW, default 0.1 (matrices only) */
    float beta1, beta2, adam_eps; /* 0.9, 0.95, 1e-8 */
    float grad_clip;       /* global norm, default 1.0; 0 = off */
    float eval_fraction;   /* default 0.1 */
    int eval_every;        /* steps between eval losses (default 50; 0 = only at the end) */
    int checkpoint_every;  /* default 100; 0 = only on cancel */
    bool resume;           /* continue from <out_path>.ckpt if it exists */
    uint64_t seed;         /* default 1 */
    int n_threads;         /* 0 = all cores */
    const char *model_name; /* general.name of the result (NULL = "persona") */
    /* Per text, a byte offset: the bytes before it are context that is read but not predicted
     * (no loss on those tokens: the system and user turns of a chat example, a prompt before its
     * completion); BOS is never predicted, EOS always. NULL: every token is predicted. */
    const size_t *loss_from;
} train_params_t;

void train_params_default(train_params_t *p);

typedef struct {
    int step, steps;
    float train_loss;  /* this step's mean cross-entropy */
    float eval_loss;   /* latest eval loss, NAN before the first (over the train windows when
                          nothing is held out) */
    float lr;
    double tokens_per_s; /* training throughput so far */
    double gflops;       /* achieved GFLOP/s (forward + backward matmul FLOPs / time) */
    double eta_s;
} train_progress_t;

/* Called after every step; nonzero stops training (a checkpoint is written, train_run returns
 * 1). */
typedef int (*train_progress_fn)(void *ud, const train_progress_t *p);

typedef struct {
    int steps_done;
    float train_loss, eval_loss;
    uint64_t params;
    uint64_t tokens_trained;
    double seconds;
    double gflops;
} train_result_t;

/* Trains and writes out_path. Texts are borrowed (at most 256 MiB in all). Returns 0 when done,
 * 1 when cancelled by the callback (checkpoint written, out_path not), -1 on error with a one-line
 * reason in err (bad parameters, no usable text, unreadable or quantized base model, a checkpoint
 * of another run, more memory than the machine has, I/O); out_path is not written on error. */
int train_run(const train_params_t *p, const char *const *texts, const size_t *lens, size_t n,
              const char *out_path, train_progress_fn progress, void *ud, train_result_t *res,
              char *err, size_t errlen);

#endif
