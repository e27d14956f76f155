/* textgen/cli.c: the persona-textgen command line — `serve` (the service) and the offline
 * subcommands over the same engine: `train` (with a progress bar), `generate`, `quantize`,
 * `tokenize`. Exit status: 0 success, 1 failure, 2 usage error. Runs on the main thread. */
#include "textgen/textgen.h"

#include "train/train.h"

#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

static volatile sig_atomic_t interrupted;
static tg_server_t *running;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
    if (running)
        tg_server_stop(running);
}

static void catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* Strict integer / float option values. */
static int opt_int(const char *name, const char *v, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        fprintf(stderr, "persona-textgen: %s must be an integer from %ld to %ld\n", name, lo, hi);
        return -1;
    }
    *out = (int)x;
    return 0;
}

static int opt_float(const char *name, const char *v, double lo, double hi, float *out)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !(x >= lo && x <= hi)) {
        fprintf(stderr, "persona-textgen: %s must be a number from %g to %g\n", name, lo, hi);
        return -1;
    }
    *out = (float)x;
    return 0;
}

static int opt_u64(const char *name, const char *v, uint64_t *out)
{
    if (core_parse_u64(v, strlen(v), out) < 0) {
        fprintf(stderr, "persona-textgen: %s must be a non-negative integer\n", name);
        return -1;
    }
    return 0;
}

static void usage_main(FILE *f)
{
    fprintf(f,
            "usage: persona-textgen COMMAND [OPTIONS]\n"
            "\n"
            "The persona text generation service and its engine, offline.\n"
            "\n"
            "commands:\n"
            "  serve      the OpenAI-compatible HTTP service (models, chat, completions, files,\n"
            "             fine-tuning jobs)\n"
            "  train      train a model from scratch or continue one, on a .jsonl or .txt file\n"
            "  generate   generate text from a prompt or a chat message\n"
            "  quantize   rewrite a model with f32, f16, q8_0 or q4_0 matrices\n"
            "  tokenize   print the tokens of a text\n"
            "\n"
            "`persona-textgen COMMAND --help` describes each. Exit status: 0 success, 1 failure,\n"
            "2 usage error.\n");
}

/* ======================================================================================
 * serve
 * ====================================================================================== */

static void usage_serve(FILE *f)
{
    fprintf(f,
            "usage: persona-textgen serve --models DIR [--port N] [OPTIONS]\n"
            "\n"
            "Serves NAME.gguf files of DIR over an OpenAI-compatible API and prints\n"
            "`persona-textgen listening on http://HOST:PORT` once it accepts connections.\n"
            "\n"
            "  --models DIR        models folder (fine-tuned models are written there too;\n"
            "                      files and jobs are kept in DIR/.textgen/)\n"
            "  --port N            port, 0 picks a free one (default 8081)\n"
            "  --host H            listen address (default 127.0.0.1)\n"
            "  --api-key K         require Authorization: Bearer K on /v1/* (also\n"
            "                      PERSONA_TEXTGEN_API_KEY)\n"
            "  --threads T         inference threads (default: all cores)\n"
            "  --train-threads T   training threads (default: all cores)\n"
            "  --max-queue N       generations active or waiting; more get 503 (default 16)\n"
            "  --max-body-mib N    request body limit, uploads included (default 16)\n"
            "  --max-models N      models kept loaded (default 4)\n"
            "  --model-idle-s N    unload a model unused this long (default 600; 0 = never)\n"
            "  --max-jobs N        fine-tuning jobs kept (default 1000)\n"
            "  --max-files N       files kept (default 1000)\n"
            "  --log-level L       debug, info, warn or error (default info)\n"
            "  --quiet-requests    no line per request\n");
}

static int cmd_serve(int argc, char **argv)
{
    tg_config_t cfg;
    tg_config_default(&cfg);
    cfg.port = 8081;
    cfg.api_key = getenv("PERSONA_TEXTGEN_API_KEY");
    static const struct option opts[] = {
        {"models", required_argument, 0, 'm'},     {"port", required_argument, 0, 'p'},
        {"host", required_argument, 0, 'H'},       {"api-key", required_argument, 0, 'k'},
        {"threads", required_argument, 0, 't'},    {"train-threads", required_argument, 0, 'T'},
        {"max-queue", required_argument, 0, 'q'},  {"max-body-mib", required_argument, 0, 'b'},
        {"max-models", required_argument, 0, 'M'}, {"max-jobs", required_argument, 0, 'J'},
        {"model-idle-s", required_argument, 0, 'I'},
        {"max-files", required_argument, 0, 'F'},  {"log-level", required_argument, 0, 'l'},
        {"quiet-requests", no_argument, 0, 'Q'},   {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int c, mib = 16;
    enum core_log_level lvl = CORE_LOG_INFO;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'm': cfg.models_dir = optarg; break;
        case 'p': bad = opt_int("--port", optarg, 0, 65535, &cfg.port); break;
        case 'H': cfg.host = optarg; break;
        case 'k': cfg.api_key = optarg; break;
        case 't': bad = opt_int("--threads", optarg, 0, 256, &cfg.threads); break;
        case 'T': bad = opt_int("--train-threads", optarg, 0, 256, &cfg.train_threads); break;
        case 'q': bad = opt_int("--max-queue", optarg, 1, 4096, &cfg.max_queue); break;
        case 'b': bad = opt_int("--max-body-mib", optarg, 1, 4096, &mib); break;
        case 'M': bad = opt_int("--max-models", optarg, 1, 64, &cfg.max_models); break;
        case 'I': bad = opt_int("--model-idle-s", optarg, 0, 1 << 30, &cfg.model_idle_s); break;
        case 'J': bad = opt_int("--max-jobs", optarg, 1, 100000, &cfg.max_jobs); break;
        case 'F': bad = opt_int("--max-files", optarg, 1, 100000, &cfg.max_files); break;
        case 'l':
            if (core_log_parse_level(optarg, &lvl) < 0) {
                fprintf(stderr, "persona-textgen: --log-level must be debug, info, warn or error\n");
                bad = -1;
            }
            break;
        case 'Q': cfg.log_requests = false; break;
        case 'h': usage_serve(stdout); return 0;
        default: usage_serve(stderr); return 2;
        }
        if (bad)
            return 2;
    }
    if (optind < argc || !cfg.models_dir) {
        fprintf(stderr, "persona-textgen serve: %s\n",
                optind < argc ? "unexpected argument" : "--models DIR is required");
        usage_serve(stderr);
        return 2;
    }
    cfg.max_body_bytes = (uint64_t)mib << 20;
    core_log_set_level(lvl);
    signal(SIGPIPE, SIG_IGN);
    tg_server_t *s = NULL;
    int rc = tg_server_new(&cfg, &s);
    if (rc < 0) {
        fprintf(stderr, "persona-textgen: could not start: %s\n", core_strerror(rc));
        return 1;
    }
    running = s;
    catch_signals();
    printf("persona-textgen listening on http://%s:%d\n", cfg.host, tg_server_port(s));
    fflush(stdout);
    rc = tg_server_run(s);
    core_log(CORE_LOG_INFO, "shutdown", "rc=%d", rc);
    running = NULL;
    tg_server_free(&s);
    return rc < 0 ? 1 : 0;
}

/* ======================================================================================
 * train
 * ====================================================================================== */

static void usage_train(FILE *f)
{
    fprintf(f,
            "usage: persona-textgen train --data FILE --out MODEL.gguf [OPTIONS]\n"
            "\n"
            "Trains a model on FILE: .jsonl (lines with \"messages\", \"prompt\"+\"completion\" or\n"
            "\"text\") or plain text (documents separated by blank lines). Ctrl-C writes a\n"
            "checkpoint (MODEL.gguf.ckpt) and exits; --resume continues from it.\n"
            "\n"
            "  --preset NAME     from scratch: tiny, small, base or large (default tiny)\n"
            "  --base M.gguf     continue training this F32/F16 model instead\n"
            "  --steps N         optimizer steps (default 200)\n"
            "  --batch N         sequences per step (default 8)\n"
            "  --seq N           tokens per sequence (default min(context, 128))\n"
            "  --lr X            peak learning rate (default 1e-3 from scratch, 1e-4 continuing)\n"
            "  --vocab N         tokenizer size from scratch (default 1024)\n"
            "  --seed N          random seed (default 1)\n"
            "  --threads N       threads (default: all cores)\n"
            "  --eval-every N    steps between eval losses (default 50)\n"
            "  --resume          continue from MODEL.gguf.ckpt\n"
            "  --quiet           no progress output\n");
}

typedef struct {
    bool tty, quiet;
    bool printed; /* the first step is always shown (a resumed run starts past 1) */
    int every;
    int last_len;
} progress_ui_t;

static int on_train_progress(void *ud, const train_progress_t *p)
{
    progress_ui_t *ui = ud;
    if (!ui->quiet) {
        char eval[32] = "-";
        if (isfinite(p->eval_loss))
            snprintf(eval, sizeof eval, "%.4f", p->eval_loss);
        char eta[32];
        if (p->eta_s >= 3600)
            snprintf(eta, sizeof eta, "%dh%02dm", (int)(p->eta_s / 3600),
                     (int)fmod(p->eta_s / 60, 60));
        else
            snprintf(eta, sizeof eta, "%dm%02ds", (int)(p->eta_s / 60), (int)fmod(p->eta_s, 60));
        if (ui->tty) {
            int width = 24, fill = p->steps > 0 ? (int)((double)p->step * width / p->steps) : 0;
            char bar[32];
            for (int i = 0; i < width; i++)
                bar[i] = i < fill ? '#' : '.';
            bar[width] = '\0';
            int n = fprintf(stderr, "\r[%s] step %d/%d  loss %.4f  eval %s  %.0f tok/s  ETA %s", bar,
                            p->step, p->steps, p->train_loss, eval, p->tokens_per_s, eta);
            if (n < ui->last_len)
                fprintf(stderr, "%*s", ui->last_len - n, "");
            ui->last_len = n;
            fflush(stderr);
        } else if (p->step % ui->every == 0 || p->step == p->steps || !ui->printed) {
            ui->printed = true;
            fprintf(stderr, "train step=%d steps=%d loss=%.4f eval_loss=%s tokens_per_s=%.0f "
                    "eta_s=%.0f\n", p->step, p->steps, p->train_loss, eval, p->tokens_per_s,
                    p->eta_s);
        }
    }
    return interrupted ? 1 : 0;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcasecmp(s + n - k, suffix);
}

static int cmd_train(int argc, char **argv)
{
    train_params_t p;
    train_params_default(&p);
    const char *data = NULL, *out = NULL;
    bool quiet = false, preset_set = false;
    static const struct option opts[] = {
        {"data", required_argument, 0, 'd'},   {"out", required_argument, 0, 'o'},
        {"preset", required_argument, 0, 'P'}, {"base", required_argument, 0, 'B'},
        {"steps", required_argument, 0, 's'},  {"batch", required_argument, 0, 'b'},
        {"seq", required_argument, 0, 'S'},    {"lr", required_argument, 0, 'l'},
        {"vocab", required_argument, 0, 'v'},  {"seed", required_argument, 0, 'r'},
        {"threads", required_argument, 0, 't'}, {"eval-every", required_argument, 0, 'e'},
        {"resume", no_argument, 0, 'R'},       {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'd': data = optarg; break;
        case 'o': out = optarg; break;
        case 'P': p.preset = optarg; preset_set = true; break;
        case 'B': p.base_model = optarg; break;
        case 's': bad = opt_int("--steps", optarg, 1, 10000000, &p.steps); break;
        case 'b': bad = opt_int("--batch", optarg, 1, 4096, &p.batch_size); break;
        case 'S': bad = opt_int("--seq", optarg, 2, 1 << 20, &p.seq_len); break;
        case 'l': bad = opt_float("--lr", optarg, 1e-9, 10, &p.lr); break;
        case 'v': bad = opt_int("--vocab", optarg, 259, 65536, &p.vocab_size); break;
        case 'r': bad = opt_u64("--seed", optarg, &p.seed); break;
        case 't': bad = opt_int("--threads", optarg, 0, 256, &p.n_threads); break;
        case 'e': bad = opt_int("--eval-every", optarg, 0, 10000000, &p.eval_every); break;
        case 'R': p.resume = true; break;
        case 'q': quiet = true; break;
        case 'h': usage_train(stdout); return 0;
        default: usage_train(stderr); return 2;
        }
        if (bad)
            return 2;
    }
    if (optind < argc || !data || !out || (preset_set && p.base_model)) {
        fprintf(stderr, "persona-textgen train: %s\n",
                optind < argc ? "unexpected argument"
                : !data || !out ? "--data and --out are required"
                                : "--preset and --base exclude each other");
        usage_train(stderr);
        return 2;
    }
    if (!p.base_model && !p.preset)
        p.preset = "tiny";
    if (p.preset) {
        llm_config_t cfg;
        if (train_preset(p.preset, 1024, &cfg) < 0) {
            fprintf(stderr, "persona-textgen train: unknown preset '%s' (tiny, small, base, "
                    "large)\n", p.preset);
            return 2;
        }
    }
    char *bytes = NULL, err[512] = "";
    size_t len = 0;
    tg_texts_t texts = {0};
    int rc = core_read_file(data, (size_t)1 << 31, &bytes, &len), status = 1;
    if (rc < 0) {
        fprintf(stderr, "persona-textgen train: %s: %s\n", data, core_strerror(rc));
        goto out;
    }
    rc = ends_with(data, ".jsonl") || ends_with(data, ".ndjson")
             ? tg_jsonl_parse(bytes, len, 10000000, &texts, err, sizeof err)
             : tg_text_split(bytes, len, &texts, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "persona-textgen train: %s: %s\n", data, err);
        goto out;
    }
    progress_ui_t ui = {.tty = isatty(2), .quiet = quiet};
    ui.every = p.steps >= 20 ? p.steps / 20 : 1;
    catch_signals();
    train_result_t res;
    p.loss_from = texts.loss_from; /* chat and prompt/completion lines: learn the answers only */
    rc = train_run(&p, (const char *const *)texts.texts, texts.lens, texts.n, out,
                   on_train_progress, &ui, &res, err, sizeof err);
    if (ui.tty && !quiet)
        fputc('\n', stderr);
    if (rc < 0) {
        fprintf(stderr, "persona-textgen train: %s\n", err);
        goto out;
    }
    if (rc == 1) {
        fprintf(stderr, "persona-textgen train: interrupted; checkpoint written to %s.ckpt (run "
                "again with --resume to continue)\n", out);
        goto out;
    }
    fprintf(stderr, "persona-textgen train: wrote %s: %llu parameters, %d steps, loss %.4f, eval "
            "loss %.4f, %llu tokens in %.1f s (%.1f GFLOP/s)\n", out,
            (unsigned long long)res.params, res.steps_done, res.train_loss, res.eval_loss,
            (unsigned long long)res.tokens_trained, res.seconds, res.gflops);
    status = 0;
out:
    free(bytes);
    tg_texts_destroy(&texts);
    return status;
}

/* ======================================================================================
 * generate
 * ====================================================================================== */

static void usage_generate(FILE *f)
{
    fprintf(f,
            "usage: persona-textgen generate --model M.gguf (--prompt TEXT | --chat TEXT) [OPTIONS]\n"
            "\n"
            "Streams the generated text to stdout. --prompt continues TEXT as it is; --chat asks\n"
            "TEXT as a user message through the chat template.\n"
            "\n"
            "  --max-tokens N       tokens to generate (default 128)\n"
            "  --temperature X      0 = greedy (default 0.8)\n"
            "  --top-k N            (default 40, 0 = off)\n"
            "  --top-p X            (default 0.95)\n"
            "  --min-p X            (default 0.05)\n"
            "  --repeat-penalty X   (default 1.1)\n"
            "  --seed N             same seed, same text\n"
            "  --stop TEXT          stop at TEXT (up to 4)\n"
            "  --threads N          (default: all cores)\n");
}

static int cmd_generate(int argc, char **argv)
{
    const char *model_path = NULL, *prompt = NULL, *chat = NULL, *stop[TG_MAX_STOP];
    size_t n_stop = 0;
    int threads = 0;
    llm_gen_params_t gp;
    memset(&gp, 0, sizeof gp);
    llm_sampling_default(&gp.sampling);
    gp.max_tokens = 128;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},       {"prompt", required_argument, 0, 'p'},
        {"chat", required_argument, 0, 'c'},        {"max-tokens", required_argument, 0, 'n'},
        {"temperature", required_argument, 0, 'T'}, {"top-k", required_argument, 0, 'k'},
        {"top-p", required_argument, 0, 'P'},       {"min-p", required_argument, 0, 'M'},
        {"repeat-penalty", required_argument, 0, 'r'}, {"seed", required_argument, 0, 's'},
        {"stop", required_argument, 0, 'S'},        {"threads", required_argument, 0, 't'},
        {"help", no_argument, 0, 'h'},              {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'p': prompt = optarg; break;
        case 'c': chat = optarg; break;
        case 'n': bad = opt_int("--max-tokens", optarg, 1, 1 << 20, &gp.max_tokens); break;
        case 'T': bad = opt_float("--temperature", optarg, 0, 100, &gp.sampling.temperature); break;
        case 'k': bad = opt_int("--top-k", optarg, 0, 1 << 20, &gp.sampling.top_k); break;
        case 'P': bad = opt_float("--top-p", optarg, 0, 1, &gp.sampling.top_p); break;
        case 'M': bad = opt_float("--min-p", optarg, 0, 1, &gp.sampling.min_p); break;
        case 'r': bad = opt_float("--repeat-penalty", optarg, 0.01, 100, &gp.sampling.repeat_penalty); break;
        case 's': bad = opt_u64("--seed", optarg, &gp.sampling.seed); break;
        case 'S':
            if (n_stop == TG_MAX_STOP || !*optarg) {
                fprintf(stderr, "persona-textgen: at most %d non-empty --stop strings\n", TG_MAX_STOP);
                bad = -1;
            } else {
                stop[n_stop++] = optarg;
            }
            break;
        case 't': bad = opt_int("--threads", optarg, 0, 256, &threads); break;
        case 'h': usage_generate(stdout); return 0;
        default: usage_generate(stderr); return 2;
        }
        if (bad)
            return 2;
    }
    if (optind < argc || !model_path || !prompt == !chat) {
        fprintf(stderr, "persona-textgen generate: %s\n",
                optind < argc ? "unexpected argument"
                : !model_path ? "--model is required"
                              : "give one of --prompt and --chat");
        usage_generate(stderr);
        return 2;
    }
    gp.stop = stop;
    gp.n_stop = n_stop;
    llm_model_t *m = NULL;
    llm_gen_t *g = NULL;
    nn_pool_t *pool = NULL;
    char *text = NULL, err[256] = "";
    int status = 1;
    if (llm_load(model_path, &m, err, sizeof err) < 0) {
        fprintf(stderr, "persona-textgen generate: %s: %s\n", model_path, err);
        goto out;
    }
    if (chat) {
        llm_message_t msg = {"user", chat};
        text = llm_chat_prompt(&msg, 1, true);
        gp.parse_special = true;
    } else {
        text = xstrdup(prompt);
    }
    if (!text || llm_gen_new(m, text, strlen(text), &gp, &g, err, sizeof err) < 0) {
        fprintf(stderr, "persona-textgen generate: %s\n", err[0] ? err : "out of memory");
        goto out;
    }
    if (nn_pool_create(threads, &pool) < 0) {
        fprintf(stderr, "persona-textgen generate: cannot start threads\n");
        goto out;
    }
    int64_t t0 = core_mono_ns(), t1 = 0;
    int st;
    do {
        const char *piece = NULL;
        size_t len = 0;
        st = llm_gen_step(g, pool, &piece, &len);
        if (st < 0) {
            fprintf(stderr, "persona-textgen generate: evaluation failed\n");
            goto out;
        }
        if (!t1)
            t1 = core_mono_ns();
        if (len) {
            fwrite(piece, 1, len, stdout);
            fflush(stdout);
        }
    } while (st == LLM_GEN_RUNNING);
    fputc('\n', stdout);
    int64_t t2 = core_mono_ns();
    int nc = llm_gen_completion_tokens(g);
    core_log(CORE_LOG_INFO, "generate", "prompt_tokens=%d completion_tokens=%d prompt_ms=%.1f "
             "tokens_per_s=%.1f finish=%s", llm_gen_prompt_tokens(g), nc,
             (double)(t1 - t0) / 1e6, nc > 1 ? (nc - 1) / ((double)(t2 - t1) / 1e9) : 0.0,
             st == LLM_GEN_STOP ? "stop" : "length");
    status = 0;
out:
    llm_gen_free(&g);
    llm_free(&m);
    nn_pool_free(&pool);
    free(text);
    return status;
}

/* ======================================================================================
 * quantize, tokenize
 * ====================================================================================== */

static int cmd_quantize(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: persona-textgen quantize IN.gguf OUT.gguf TYPE\n\n"
               "Rewrites a model with its matrices in TYPE: f32, f16, q8_0 or q4_0 (norms stay\n"
               "f32; metadata and tokenizer are kept).\n");
        return 0;
    }
    nn_type_t type;
    if (argc != 4 || nn_type_parse(argv[3], &type) < 0) {
        fprintf(stderr, "usage: persona-textgen quantize IN.gguf OUT.gguf f32|f16|q8_0|q4_0\n");
        return 2;
    }
    char err[256] = "";
    if (llm_quantize_file(argv[1], argv[2], type, err, sizeof err) < 0) {
        fprintf(stderr, "persona-textgen quantize: %s\n", err);
        return 1;
    }
    return 0;
}

static void usage_tokenize(FILE *f)
{
    fprintf(f, "usage: persona-textgen tokenize (--model M.gguf | --train-vocab N --data FILE)\n"
               "                                [--special] TEXT\n\n"
               "Prints one line per token: its id, a tab, and its bytes as a JSON string (bytes\n"
               "of a token that holds part of a UTF-8 character are written \\xNN).\n"
               "--model uses the model's tokenizer; --train-vocab trains a byte-level BPE of N\n"
               "tokens on FILE (.jsonl or text, as `train` reads it) and uses that.\n"
               "With --special, control-token text (e.g. <|im_start|>) becomes those tokens.\n");
}

static int cmd_tokenize(int argc, char **argv)
{
    const char *model_path = NULL, *data = NULL;
    int vocab = 0;
    bool special = false;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},
        {"train-vocab", required_argument, 0, 'v'},
        {"data", required_argument, 0, 'd'},
        {"special", no_argument, 0, 's'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'd': data = optarg; break;
        case 'v':
            if (opt_int("--train-vocab", optarg, 259, 65536, &vocab) < 0)
                return 2;
            break;
        case 's': special = true; break;
        case 'h': usage_tokenize(stdout); return 0;
        default: usage_tokenize(stderr); return 2;
        }
    }
    if (!model_path == !vocab || !vocab != !data || optind != argc - 1) {
        usage_tokenize(stderr);
        return 2;
    }
    const char *text = argv[optind];
    llm_model_t *m = NULL;
    tok_t *trained = NULL;
    int32_t *ids = NULL;
    char *bytes = NULL;
    tg_texts_t texts = {0};
    size_t n = 0, len = 0;
    char err[256] = "";
    int status = 1;
    const tok_t *t;
    if (model_path) {
        if (llm_load(model_path, &m, err, sizeof err) < 0) {
            fprintf(stderr, "persona-textgen tokenize: %s: %s\n", model_path, err);
            goto out;
        }
        t = llm_model_tok(m);
    } else {
        int rc = core_read_file(data, (size_t)1 << 31, &bytes, &len);
        if (rc < 0) {
            fprintf(stderr, "persona-textgen tokenize: %s: %s\n", data, core_strerror(rc));
            goto out;
        }
        rc = ends_with(data, ".jsonl") || ends_with(data, ".ndjson")
                 ? tg_jsonl_parse(bytes, len, 10000000, &texts, err, sizeof err)
                 : tg_text_split(bytes, len, &texts, err, sizeof err);
        if (rc < 0 || tok_train((const char *const *)texts.texts, texts.lens, texts.n, vocab,
                                &trained, err, sizeof err) < 0) {
            fprintf(stderr, "persona-textgen tokenize: %s: %s\n", data, err);
            goto out;
        }
        t = trained;
    }
    if (tok_encode(t, text, strlen(text), special, &ids, &n) < 0) {
        fprintf(stderr, "persona-textgen tokenize: out of memory\n");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        size_t plen = 0;
        const char *piece = tok_piece(t, ids[i], &plen);
        /* a byte-level token may hold part of a character: such bytes are shown as \xNN */
        bool utf8 = core_utf8_valid(piece, plen);
        printf("%d\t\"", ids[i]);
        for (size_t k = 0; k < plen; k++) {
            unsigned char ch = (unsigned char)piece[k];
            if (ch == '"' || ch == '\\')
                printf("\\%c", ch);
            else if (ch < 0x20 || ch == 0x7f)
                printf("\\u%04x", ch);
            else if (ch >= 0x80 && !utf8)
                printf("\\x%02x", ch);
            else
                putchar(ch);
        }
        printf("\"\n");
    }
    status = 0;
out:
    free(ids);
    free(bytes);
    tg_texts_destroy(&texts);
    tok_free(&trained);
    llm_free(&m);
    return status;
}

int tg_main(int argc, char **argv)
{
    if (argc < 2) {
        usage_main(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage_main(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("persona-textgen %s\n", PERSONA_VERSION);
        return 0;
    }
    /* getopt_long sees the subcommand's own arguments, with the command as argv[0]. */
    argc--;
    argv++;
    optind = 1;
    if (!strcmp(cmd, "serve"))
        return cmd_serve(argc, argv);
    if (!strcmp(cmd, "train"))
        return cmd_train(argc, argv);
    if (!strcmp(cmd, "generate"))
        return cmd_generate(argc, argv);
    if (!strcmp(cmd, "quantize"))
        return cmd_quantize(argc, argv);
    if (!strcmp(cmd, "tokenize"))
        return cmd_tokenize(argc, argv);
    fprintf(stderr, "persona-textgen: unknown command '%s'\n", cmd);
    usage_main(stderr);
    return 2;
}
