/* test_train_run: whole training runs through train_run — a micro model overfits a few sentences
 * and src/llm's greedy generation from the corpus' first words reproduces the rest; the same
 * seed gives a byte-identical file; cancel at step k + resume gives the file of an uninterrupted
 * run; training continues from an F16 copy of a model (and refuses a Q8_0 one); bad parameters
 * and damaged base models fail with a reason and write nothing; the result file holds only the
 * standard tensors and keys.
 *
 * Files live under $PERSONA_TEST_TMP (a fresh folder per run of the program). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "llm/llm.h"
#include "train/train.h"

static char dir[512];

static char *path_of(const char *name)
{
    return xasprintf("%s/%s", dir, name);
}

static bool exists(const char *p)
{
    return access(p, F_OK) == 0;
}

static bool same_file(const char *a, const char *b)
{
    char *da = NULL, *db = NULL;
    size_t la = 0, lb = 0;
    assert_int_equal(core_read_file(a, (size_t)1 << 30, &da, &la), 0);
    assert_int_equal(core_read_file(b, (size_t)1 << 30, &db, &lb), 0);
    bool same = la == lb && memcmp(da, db, la) == 0;
    free(da);
    free(db);
    return same;
}

static const char *CORPUS[] = {
    "The lighthouse keeper wrote every evening about the colour of the sea.",
    "On Sundays she baked bread with rosemary and gave half of it to the neighbours.",
    "Her brother repaired old radios in a workshop that smelled of solder and tea.",
};
#define N_CORPUS (sizeof CORPUS / sizeof CORPUS[0])

static size_t corpus_lens[N_CORPUS];

static void micro_params(train_params_t *p, int steps)
{
    train_params_default(p);
    p->preset = "micro";
    p->vocab_size = 300;
    p->steps = steps;
    p->batch_size = 4;
    p->seq_len = 32;
    p->eval_every = 0;
    p->checkpoint_every = 0;
    p->n_threads = 2;
    p->model_name = "test-persona";
}

static int run(const train_params_t *p, const char *out, train_progress_fn fn, void *ud,
               train_result_t *res, char *err, size_t errlen)
{
    return train_run(p, CORPUS, corpus_lens, N_CORPUS, out, fn, ud, res, err, errlen);
}

/* ==== overfit + generation ==== */

typedef struct {
    int calls, last_step;
    float first_loss, last_loss, first_lr, peak_lr;
    bool eval_nan_before, monotonic, rates_ok;
} watch_t;

static int watch(void *ud, const train_progress_t *p)
{
    watch_t *w = ud;
    if (w->calls == 0) {
        w->first_loss = p->train_loss;
        w->first_lr = p->lr;
        w->eval_nan_before = isnan(p->eval_loss);
        w->monotonic = true;
        w->rates_ok = true;
    }
    if (p->step != w->last_step + 1)
        w->monotonic = false;
    if (!(p->tokens_per_s > 0 && p->gflops > 0 && p->eta_s >= 0))
        w->rates_ok = false;
    if (p->lr > w->peak_lr)
        w->peak_lr = p->lr;
    w->last_step = p->step;
    w->last_loss = p->train_loss;
    w->calls++;
    return 0;
}

static char *generate_special(const llm_model_t *m, const char *prompt, int max_tokens,
                              bool parse_special)
{
    llm_gen_params_t gp;
    memset(&gp, 0, sizeof gp);
    gp.parse_special = parse_special;
    llm_sampling_default(&gp.sampling);
    gp.sampling.temperature = 0;
    gp.sampling.repeat_penalty = 1.0f;
    gp.max_tokens = max_tokens;
    llm_gen_t *g = NULL;
    char err[256];
    assert_int_equal(llm_gen_new(m, prompt, strlen(prompt), &gp, &g, err, sizeof err), 0);
    core_buf_t out;
    core_buf_init(&out);
    int st;
    do {
        const char *t = NULL;
        size_t n = 0;
        st = llm_gen_step(g, NULL, &t, &n);
        assert_true(st >= 0);
        core_buf_append(&out, t, n);
    } while (st == LLM_GEN_RUNNING);
    llm_gen_free(&g);
    return core_buf_steal(&out);
}

static char *generate(const llm_model_t *m, const char *prompt, int max_tokens)
{
    return generate_special(m, prompt, max_tokens, false);
}

static void test_overfit_and_generate(void **state)
{
    (void)state;
    train_params_t p;
    micro_params(&p, 300);
    p.vocab_size = 400; /* near word-level on this corpus: each sentence fits in one window */
    p.lr = 5e-3f;
    p.eval_fraction = 0; /* every window is trained on: the model must learn all of it */
    p.eval_every = 100;
    p.weight_decay = 0;
    char *out = path_of("overfit.gguf"), err[256] = "";
    watch_t w = {0};
    train_result_t res;
    int rc = run(&p, out, watch, &w, &res, err, sizeof err);
    if (rc != 0)
        print_error("train_run: %s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(w.calls, 300);
    assert_true(w.monotonic && w.rates_ok && w.eval_nan_before);
    assert_true(w.first_lr < w.peak_lr); /* warmup */
    assert_true(w.first_loss > 4.0f);    /* ~ln(300) at the start */
    print_message("overfit: loss %.3f -> %.4f, eval %.4f, %.1f s, %.2f GFLOP/s\n",
                  (double)w.first_loss, (double)res.train_loss, (double)res.eval_loss, res.seconds,
                  res.gflops);
    /* the floor is ln(3)/32 = 0.034: at position 0 (BOS) any of the 3 sentences may follow */
    assert_true(res.train_loss < 0.05f);
    assert_int_equal(res.steps_done, 300);
    assert_true(res.params > 50000);
    char *ck = xasprintf("%s.ckpt", out);
    assert_false(exists(ck)); /* removed when done */
    free(ck);

    /* the file: only standard tensors, our metadata, the tokenizer with the chat template */
    gguf_t *g = NULL;
    assert_int_equal(gguf_open(out, &g, err, sizeof err), 0);
    for (size_t i = 0; i < gguf_tensor_count(g); i++) {
        const char *name = gguf_tensor(g, i)->name;
        assert_true(strncmp(name, "blk.", 4) == 0 || strcmp(name, "token_embd.weight") == 0 ||
                    strcmp(name, "output_norm.weight") == 0 || strcmp(name, "output.weight") == 0);
        assert_int_equal(gguf_tensor(g, i)->type, NN_F32);
    }
    assert_int_equal(gguf_tensor_count(g), 1 + 2 * 9 + 2);
    const char *s;
    size_t sl;
    assert_true(gguf_get_str(g, "general.name", &s, &sl) && sl == 12 &&
                !memcmp(s, "test-persona", 12));
    assert_true(gguf_get_str(g, "general.architecture", &s, &sl) && sl == 5 &&
                !memcmp(s, "llama", 5));
    assert_true(gguf_find_key(g, "tokenizer.chat_template") >= 0);
    assert_true(gguf_find_key(g, "train.step") < 0);
    gguf_close(&g);

    /* an independent reader of the format (tests/tools/gguf_read.py) reads the whole file and
     * sees the same: the llama keys, the tokenizer, standard tensors only */
    char *json = path_of("overfit.json");
    char *cmd = xasprintf("python3 '%s' '%s' --no-data > '%s'", TRAIN_GGUF_READ_PY, out, json);
    assert_int_equal(system(cmd), 0);
    char *js = NULL;
    size_t jl = 0;
    assert_int_equal(core_read_file(json, (size_t)64 << 20, &js, &jl), 0);
    assert_non_null(strstr(js, "\"general.architecture\""));
    assert_non_null(strstr(js, "\"llama.rope.freq_base\""));
    assert_non_null(strstr(js, "\"tokenizer.ggml.merges\""));
    assert_non_null(strstr(js, "\"blk.1.ffn_down.weight\""));
    assert_null(strstr(js, "adam_"));
    free(js), free(cmd), free(json);

    /* greedy generation with the inference engine reproduces each sentence */
    llm_model_t *m = NULL;
    assert_int_equal(llm_load(out, &m, err, sizeof err), 0);
    static const char *prompts[] = {"The lighthouse keeper", "On Sundays she", "Her brother"};
    for (size_t i = 0; i < N_CORPUS; i++) {
        char *text = generate(m, prompts[i], 40);
        const char *want = CORPUS[i] + strlen(prompts[i]);
        print_message("prompt \"%s\" -> \"%s\"\n", prompts[i], text);
        assert_true(strncmp(text, want, strlen(want)) == 0);
        free(text);
    }
    llm_free(&m);
    free(out);
}

/* ==== determinism, cancel + resume ==== */

typedef struct {
    int cancel_at;
} cancel_t;

static int cancel_cb(void *ud, const train_progress_t *p)
{
    const cancel_t *c = ud;
    return p->step == c->cancel_at;
}

/* loss_from: chat examples whose user turn is context. The model learns to answer each question
 * (greedy generation after the assistant header gives the answer and stops at <|im_end|>), and
 * the loss it reports is over the answers only. */
static void test_loss_from_chat(void **state)
{
    (void)state;
    static const char *Q[] = {"Where did you grow up?", "What did your grandmother bake?",
                              "What did you paint blue?"};
    static const char *A[] = {"By the sea in Brighton.", "Rye bread with caraway seeds.",
                              "An old steel bicycle."};
    enum { NQ = 3 };
    char *texts[NQ];
    size_t lens[NQ], from[NQ];
    for (int i = 0; i < NQ; i++) {
        char *ctx = xasprintf("<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n", Q[i]);
        texts[i] = xasprintf("%s%s<|im_end|>\n", ctx, A[i]);
        lens[i] = strlen(texts[i]);
        from[i] = strlen(ctx);
        free(ctx);
    }
    train_params_t p;
    micro_params(&p, 250);
    p.vocab_size = 400;
    p.lr = 5e-3f;
    p.eval_fraction = 0;
    p.weight_decay = 0;
    p.loss_from = from;
    char *out = path_of("loss_from.gguf"), err[256] = "";
    train_result_t res;
    int rc = train_run(&p, (const char *const *)texts, lens, NQ, out, NULL, NULL, &res, err,
                       sizeof err);
    if (rc != 0)
        print_error("train_run: %s\n", err);
    assert_int_equal(rc, 0);
    print_message("loss_from: final loss %.4f over the answers\n", (double)res.train_loss);
    assert_true(res.train_loss < 0.05f); /* the answers are fully determined by the questions */
    llm_model_t *m = NULL;
    assert_int_equal(llm_load(out, &m, err, sizeof err), 0);
    for (int i = 0; i < NQ; i++) {
        char *prompt = xasprintf("<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n", Q[i]);
        char *text = generate_special(m, prompt, 40, true);
        print_message("%s -> \"%s\"\n", Q[i], text);
        assert_string_equal(text, A[i]);
        free(text), free(prompt);
    }
    llm_free(&m);
    /* the same texts with everything but EOS as context: only "stop here" is learned */
    for (int i = 0; i < NQ; i++)
        from[i] = lens[i];
    micro_params(&p, 20);
    p.loss_from = from;
    assert_int_equal(train_run(&p, (const char *const *)texts, lens, NQ, out, NULL, NULL, &res,
                               err, sizeof err), 0);
    assert_true(isfinite(res.train_loss));
    for (int i = 0; i < NQ; i++)
        free(texts[i]);
    free(out);
}

static void test_same_seed_same_file(void **state)
{
    (void)state;
    train_params_t p;
    micro_params(&p, 12);
    p.eval_every = 5;
    char *a = path_of("det_a.gguf"), *b = path_of("det_b.gguf"), *c = path_of("det_c.gguf");
    char err[256];
    assert_int_equal(run(&p, a, NULL, NULL, NULL, err, sizeof err), 0);
    assert_int_equal(run(&p, b, NULL, NULL, NULL, err, sizeof err), 0);
    assert_true(same_file(a, b));
    p.seed = 2; /* and another seed gives another model */
    assert_int_equal(run(&p, c, NULL, NULL, NULL, err, sizeof err), 0);
    assert_false(same_file(a, c));
    free(a), free(b), free(c);
}

static void test_cancel_resume(void **state)
{
    (void)state;
    train_params_t p;
    micro_params(&p, 14);
    p.eval_every = 4;
    char *full = path_of("full.gguf"), *part = path_of("part.gguf");
    char *ckpt = xasprintf("%s.ckpt", part), err[256];
    assert_int_equal(run(&p, full, NULL, NULL, NULL, err, sizeof err), 0);

    cancel_t cc = {6};
    train_result_t res;
    assert_int_equal(run(&p, part, cancel_cb, &cc, &res, err, sizeof err), 1);
    assert_int_equal(res.steps_done, 6);
    assert_true(exists(ckpt));
    assert_false(exists(part));

    /* a resume with other parameters is refused and leaves the checkpoint */
    p.resume = true;
    p.lr = 5e-3f;
    assert_int_equal(run(&p, part, NULL, NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "checkpoint"));
    assert_true(exists(ckpt));
    p.lr = 0;

    /* cancel again later, resume again, then finish */
    cc.cancel_at = 10;
    assert_int_equal(run(&p, part, cancel_cb, &cc, &res, err, sizeof err), 1);
    assert_int_equal(res.steps_done, 10);
    watch_t w = {.last_step = 10};
    if (run(&p, part, watch, &w, &res, err, sizeof err) != 0)
        print_error("resume: %s\n", err);
    assert_int_equal(w.calls, 4); /* steps 11..14 only */
    assert_true(w.monotonic);
    assert_true(same_file(full, part));
    assert_false(exists(ckpt));

    /* a checkpoint resumes under another thread count too (a valid run, not bit-identical) */
    cc.cancel_at = 5;
    assert_int_equal(run(&p, part, cancel_cb, &cc, &res, err, sizeof err), 1);
    p.n_threads = 1;
    w = (watch_t){.last_step = 5};
    assert_int_equal(run(&p, part, watch, &w, &res, err, sizeof err), 0);
    assert_int_equal(w.calls, 9);
    assert_true(exists(part) && !exists(ckpt));
    p.n_threads = 2;

    /* a damaged checkpoint is an error with a reason, not a crash */
    cc.cancel_at = 3;
    assert_int_equal(run(&p, part, cancel_cb, &cc, &res, err, sizeof err), 1);
    FILE *f = fopen(ckpt, "r+b");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    assert_int_equal(ftruncate(fileno(f), sz / 2), 0);
    fclose(f);
    assert_int_equal(run(&p, part, NULL, NULL, NULL, err, sizeof err), -1);
    assert_true(strlen(err) > 0);
    unlink(ckpt);
    free(full), free(part), free(ckpt);
}

/* ==== continuing from F16, refusing Q8_0 ==== */

static void test_continue_from_f16(void **state)
{
    (void)state;
    train_params_t p;
    micro_params(&p, 40);
    p.lr = 3e-3f;
    char *f32 = path_of("base32.gguf"), *f16 = path_of("base16.gguf"), *q8 = path_of("base8.gguf");
    char *cont = path_of("cont.gguf"), err[256];
    train_result_t r0, r1;
    assert_int_equal(run(&p, f32, NULL, NULL, &r0, err, sizeof err), 0);
    assert_int_equal(llm_quantize_file(f32, f16, NN_F16, err, sizeof err), 0);
    assert_int_equal(llm_quantize_file(f32, q8, NN_Q8_0, err, sizeof err), 0);

    train_params_t c;
    micro_params(&c, 20);
    c.preset = NULL;
    c.base_model = f16;
    c.lr = 1e-3f;
    c.model_name = "continued";
    int rc = run(&c, cont, NULL, NULL, &r1, err, sizeof err);
    if (rc != 0)
        print_error("continue: %s\n", err);
    assert_int_equal(rc, 0);
    /* it continued: the loss starts where the base left off, not from scratch (~ln 300) */
    print_message("base loss %.3f, continued loss %.3f\n", (double)r0.train_loss,
                  (double)r1.train_loss);
    assert_true(r1.train_loss < r0.train_loss + 0.5f);
    llm_model_t *a = NULL, *b = NULL;
    assert_int_equal(llm_load(f32, &a, err, sizeof err), 0);
    assert_int_equal(llm_load(cont, &b, err, sizeof err), 0);
    assert_int_equal(llm_model_type(b), NN_F32);
    assert_int_equal(llm_model_config(a)->dim, llm_model_config(b)->dim);
    assert_int_equal(llm_model_config(a)->n_vocab, llm_model_config(b)->n_vocab);
    assert_int_equal(tok_vocab_size(llm_model_tok(a)), tok_vocab_size(llm_model_tok(b)));
    llm_free(&a);
    llm_free(&b);

    c.base_model = q8;
    assert_int_equal(run(&c, cont, NULL, NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "F32 or F16"));

    /* a tied model (no output.weight: the head is the embedding), as other tools write them:
     * the base file without its head, trained on; the result stays tied and loads */
    char *tied = path_of("tied.gguf"), *tied_out = path_of("tied_out.gguf");
    gguf_t *g = NULL;
    assert_int_equal(gguf_open(f32, &g, err, sizeof err), 0);
    gguf_writer_t *w = gguf_writer_new();
    assert_int_equal(gguf_writer_copy_kv(w, g, NULL), 0);
    for (size_t i = 0; i < gguf_tensor_count(g); i++) {
        const gguf_tensor_t *t = gguf_tensor(g, i);
        if (strcmp(t->name, "output.weight") != 0)
            assert_int_equal(
                gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data), 0);
    }
    assert_int_equal(gguf_writer_write(w, tied, err, sizeof err), 0);
    gguf_writer_free(&w);
    gguf_close(&g);
    c.base_model = tied;
    rc = run(&c, tied_out, NULL, NULL, &r1, err, sizeof err);
    if (rc != 0)
        print_error("tied: %s\n", err);
    assert_int_equal(rc, 0);
    assert_true(isfinite(r1.train_loss));
    assert_int_equal(gguf_open(tied_out, &g, err, sizeof err), 0);
    assert_null(gguf_find_tensor(g, "output.weight"));
    assert_non_null(gguf_find_tensor(g, "token_embd.weight"));
    gguf_close(&g);
    assert_int_equal(llm_load(tied_out, &b, err, sizeof err), 0);
    assert_true(llm_model_config(b)->tied_output);
    llm_free(&b);
    free(tied), free(tied_out);
    free(f32), free(f16), free(q8), free(cont);
}

/* ==== bad parameters ==== */

static void expect_fail(const train_params_t *p, const char *const *texts, const size_t *lens,
                        size_t n, const char *needle)
{
    char *out = path_of("bad.gguf"), err[256] = "";
    int rc = train_run(p, texts, lens, n, out, NULL, NULL, NULL, err, sizeof err);
    if (rc != -1 || !strstr(err, needle))
        print_error("rc %d, err \"%s\", wanted \"%s\"\n", rc, err, needle);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, needle));
    assert_false(exists(out));
    free(out);
}

static void test_bad_params(void **state)
{
    (void)state;
    train_params_t p;
    micro_params(&p, 5);
    train_params_t q = p;
    q.preset = "huge";
    expect_fail(&q, CORPUS, corpus_lens, N_CORPUS, "unknown preset");
    q = p;
    q.preset = NULL;
    expect_fail(&q, CORPUS, corpus_lens, N_CORPUS, "preset or a base model");
    q = p;
    q.base_model = "/nonexistent";
    expect_fail(&q, CORPUS, corpus_lens, N_CORPUS, "preset or a base model");
    q = p;
    q.seq_len = 129;
    expect_fail(&q, CORPUS, corpus_lens, N_CORPUS, "context length");
    q = p;
    q.vocab_size = 100;
    expect_fail(&q, CORPUS, corpus_lens, N_CORPUS, "vocab_size");
    q = p;
    q.vocab_size = 1 << 20;
    expect_fail(&q, CORPUS, corpus_lens, N_CORPUS, "vocab_size");
    q = p;
    q.steps = 0;
    expect_fail(&q, CORPUS, corpus_lens, N_CORPUS, "steps");
    q = p;
    q.lr = -1;
    expect_fail(&q, CORPUS, corpus_lens, N_CORPUS, "lr");
    q = p;
    q.lr = NAN;
    expect_fail(&q, CORPUS, corpus_lens, N_CORPUS, "lr");
    q = p;
    q.batch_size = 0;
    expect_fail(&q, CORPUS, corpus_lens, N_CORPUS, "batch_size");
    q = p;
    q.beta2 = 1.0f;
    expect_fail(&q, CORPUS, corpus_lens, N_CORPUS, "beta");
    q = p;
    q.eval_fraction = 0.9f;
    expect_fail(&q, CORPUS, corpus_lens, N_CORPUS, "eval_fraction");
    q = p;
    q.warmup_steps = 6;
    expect_fail(&q, CORPUS, corpus_lens, N_CORPUS, "warmup");
    q = p; /* activations of ~430 GiB: refused before anything is allocated */
    q.preset = "large";
    q.batch_size = 4096;
    q.seq_len = 512;
    expect_fail(&q, CORPUS, corpus_lens, N_CORPUS, "more than this machine has");
    q = p;
    q.n_threads = -1;
    expect_fail(&q, CORPUS, corpus_lens, N_CORPUS, "n_threads");
    /* no text */
    expect_fail(&p, CORPUS, corpus_lens, 0, "no text");
    const char *empty[] = {"", ""};
    size_t zero[] = {0, 0};
    expect_fail(&p, empty, zero, 2, "no text");

    /* too much text is refused before any of it is read (the lengths here are not real) */
    size_t huge[] = {(size_t)200 << 20, (size_t)100 << 20};
    expect_fail(&p, CORPUS, huge, 2, "larger than");
    size_t ovf[] = {SIZE_MAX, 2};
    expect_fail(&p, CORPUS, ovf, 2, "larger than");

    /* base models: missing, not a GGUF, random bytes, truncated */
    q = p;
    q.preset = NULL;
    q.base_model = "/nonexistent/model.gguf";
    expect_fail(&q, CORPUS, corpus_lens, N_CORPUS, "base model");
    char *junk = path_of("junk.gguf");
    FILE *f = fopen(junk, "wb");
    assert_non_null(f);
    uint64_t s = 99;
    for (int i = 0; i < 4096; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        fputc((int)(s >> 56), f);
    }
    fclose(f);
    q.base_model = junk;
    expect_fail(&q, CORPUS, corpus_lens, N_CORPUS, "base model");
    f = fopen(junk, "wb");
    fwrite("GGUF\x03\x00\x00\x00", 1, 8, f);
    fclose(f);
    expect_fail(&q, CORPUS, corpus_lens, N_CORPUS, "base model");
    free(junk);

    /* NULL arguments */
    char err[128];
    assert_int_equal(
        train_run(NULL, CORPUS, corpus_lens, N_CORPUS, "x", NULL, NULL, NULL, err, sizeof err), -1);
    assert_int_equal(
        train_run(&p, CORPUS, corpus_lens, N_CORPUS, NULL, NULL, NULL, NULL, err, sizeof err), -1);

    /* presets */
    llm_config_t c;
    assert_int_equal(train_preset("large", 1024, &c), 0);
    assert_int_equal(c.dim, 640);
    assert_true(llm_config_params(&c) > 45000000 && llm_config_params(&c) < 55000000);
    assert_int_equal(train_preset("nope", 1024, &c), -1);
    int np = 0;
    for (const char *const *n = train_preset_names(); *n; n++, np++)
        assert_int_equal(train_preset(*n, 1024, &c), 0);
    assert_int_equal(np, 5);
}

/* ==== edges: one-token text, one-token windows, windows longer than the corpus ==== */

static void test_edges(void **state)
{
    (void)state;
    const char *one[] = {"a"};
    size_t one_len[] = {1};
    char *out = path_of("edge.gguf"), err[256];
    train_params_t p;
    micro_params(&p, 3);
    p.seq_len = 1;
    p.batch_size = 1;
    assert_int_equal(train_run(&p, one, one_len, 1, out, NULL, NULL, NULL, err, sizeof err), 0);
    p.seq_len = 128; /* "<bos> a <eos>" read cyclically fills a 129-token window */
    p.batch_size = 3;
    train_result_t r;
    assert_int_equal(train_run(&p, one, one_len, 1, out, NULL, NULL, &r, err, sizeof err), 0);
    assert_true(isfinite(r.train_loss) && isfinite(r.eval_loss));
    llm_model_t *m = NULL;
    assert_int_equal(llm_load(out, &m, err, sizeof err), 0);
    llm_free(&m);
    free(out);
}

int main(void)
{
    const char *tmp = getenv("PERSONA_TEST_TMP");
    snprintf(dir, sizeof dir, "%s/run-%d", tmp ? tmp : "/tmp/test_train_run", (int)getpid());
    if (core_mkdirs(dir) != 0) {
        fprintf(stderr, "cannot create %s\n", dir);
        return 1;
    }
    for (size_t i = 0; i < N_CORPUS; i++)
        corpus_lens[i] = strlen(CORPUS[i]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_params),
        cmocka_unit_test(test_edges),           cmocka_unit_test(test_same_seed_same_file),
        cmocka_unit_test(test_cancel_resume),        cmocka_unit_test(test_continue_from_f16),
        cmocka_unit_test(test_overfit_and_generate), cmocka_unit_test(test_loss_from_chat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
