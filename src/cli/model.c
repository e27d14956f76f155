/* cli model: `persona train [--steps N] [--base MODEL] [--wait]` asks personad to train the
 * account's text generation model (POST /v1/persona/train) and, with --wait, shows its progress
 * (GET /v1/persona/model, twice a second) until the model is ready or the training failed;
 * `persona model` shows the account's model and its latest training. Single-threaded. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/internal.h"

#define WAIT_POLL_MS 500

static const char train_help[] =
    "Usage: persona train [--steps N] [--base MODEL] [--wait]\n"
    "\n"
    "Trains the persona's text generation model on the account's texts and transcripts; once\n"
    "it is ready, questions are answered by it. personad needs a text generation service\n"
    "(personad --textgen URL).\n"
    "\n"
    "  --steps N      training steps (default: personad's textgen_train_steps)\n"
    "  --base MODEL   start from this model (default: personad's textgen_base_model,\n"
    "                 e.g. scratch-tiny)\n"
    "  --wait         show the progress until the model is ready (exit 0) or the training\n"
    "                 failed (exit 1)\n";

static const char model_help[] =
    "Usage: persona model\n"
    "\n"
    "Shows the account's text generation model: the one answering questions, and the status,\n"
    "step and losses of the latest training.\n";

static void print_loss(const json_t *o, const char *key, const char *label) {
    json_t *v = json_object_get(o, key);
    if (json_is_number(v))
        printf(" %s %.3f", label, json_number_value(v));
}

static void print_model(const json_t *m) {
    char when[64];
    printf("status: %s\n", cli__jstr(m, "status", "?"));
    printf("model: %s\n", cli__jstr(m, "model", "(none trained)"));
    printf("answers with: %s\n", cli__jstr(m, "answers_with", "(quotes from your own words)"));
    if (cli__jint(m, "steps", 0) > 0) {
        printf("training: step %lld/%lld", (long long)cli__jint(m, "step", 0),
               (long long)cli__jint(m, "steps", 0));
        print_loss(m, "train_loss", "train loss");
        print_loss(m, "eval_loss", "eval loss");
        printf("\n");
    }
    const char *err = cli__jstr(m, "error", NULL);
    if (err)
        printf("error: %s\n", err);
    if (cli__jint(m, "updated_at", 0))
        printf("updated: %s\n", cli__human_time(cli__jint(m, "updated_at", 0), when, sizeof when));
}

static int get_model(cli__ctx_t *ctx, cli__resp_t *resp) {
    cli__resp_destroy(resp);
    cli__resp_init(resp);
    return cli__call(ctx, "GET", "/v1/persona/model", NULL, true, resp);
}

/* Polls until the training job_id ends. Returns the exit status. */
static int wait_training(cli__ctx_t *ctx, int64_t job_id) {
    cli__resp_t resp;
    cli__resp_init(&resp);
    int status = CLI_EXIT_FAIL;
    int64_t last_step = -1;
    bool drawn = false;
    for (;;) {
        if (get_model(ctx, &resp) < 0)
            goto out;
        const json_t *m = resp.json;
        const char *st = cli__jstr(m, "status", "");
        int64_t job = cli__jint(m, "job", 0);
        if (job_id && job != job_id) {
            fprintf(stderr, "persona: another training replaced this one (job %lld)\n",
                    (long long)job);
            goto out;
        }
        int64_t step = cli__jint(m, "step", 0), steps = cli__jint(m, "steps", 0);
        if (!ctx->json && step != last_step && steps > 0) {
            fprintf(stderr, "%straining: step %lld/%lld", ctx->tty_err ? "\r" : "",
                    (long long)step, (long long)steps);
            json_t *loss = json_object_get(m, "train_loss");
            if (json_is_number(loss))
                fprintf(stderr, " loss %.3f", json_number_value(loss));
            fprintf(stderr, "%s", ctx->tty_err ? "   " : "\n");
            drawn = true;
            last_step = step;
        }
        if (strcmp(st, "ready") == 0 || strcmp(st, "failed") == 0) {
            if (drawn && ctx->tty_err)
                fprintf(stderr, "\n");
            if (ctx->json) {
                cli__print_json(m);
            } else if (strcmp(st, "ready") == 0) {
                printf("model ready: %s\n", cli__jstr(m, "model", "?"));
            } else {
                fprintf(stderr, "persona: the training failed: %s\n",
                        cli__jstr(m, "error", "(no reason given)"));
            }
            status = strcmp(st, "ready") == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
            goto out;
        }
        struct timespec ts = {0, WAIT_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
out:
    cli__resp_destroy(&resp);
    return status;
}

int cli__cmd_train(cli__ctx_t *ctx, int argc, char **argv) {
    const char *steps = NULL, *base = NULL;
    bool wait = false;
    const cli__opt_t opts[] = {{"steps", 0, CLI__VALUE, &steps},
                               {"base", 0, CLI__VALUE, &base},
                               {"wait", 'w', CLI__FLAG, &wait},
                               {0}};
    char **pos = xcalloc((size_t)argc + 1, sizeof *pos);
    int npos = 0, status = CLI_EXIT_FAIL;
    json_t *body = json_object();
    cli__resp_t resp;
    cli__resp_init(&resp);
    int rc = cli__parse_opts("train", argc, argv, opts, false, pos, &npos);
    if (rc == CLI__HELP) {
        fputs(train_help, stdout);
        status = CLI_EXIT_OK;
        goto out;
    }
    if (rc < 0 || npos > 0) {
        status = rc < 0 ? CLI_EXIT_USAGE : cli__usage_error("train", "unexpected argument '%s'",
                                                            pos[0]);
        goto out;
    }
    if (steps) {
        uint64_t n;
        if (cli__parse_id(steps, "--steps", &n) < 0 || n > 1000000) {
            status = cli__usage_error("train", "--steps must be a whole number from 1 to 1000000");
            goto out;
        }
        json_object_set_new(body, "steps", json_integer((json_int_t)n));
    }
    if (base)
        json_object_set_new(body, "base_model", json_string(base));
    cli__req_t req = {.method = "POST", .path = "/v1/persona/train", .json = body, .auth = true,
                      .timeout_s = 60};
    if (cli__request(ctx, &req, &resp) < 0)
        goto out;
    int64_t job_id = cli__jint(resp.json, "job_id", 0);
    if (resp.status == 409 && wait &&
        strcmp(cli__jstr(json_object_get(resp.json, "error"), "code", ""),
               "training_in_progress") == 0) {
        /* Already training: wait for that one. */
        fprintf(stderr, "persona: a training is already running; waiting for it\n");
        status = wait_training(ctx, 0);
        goto out;
    }
    if (!cli__resp_ok(ctx, &resp, "train"))
        goto out;
    if (!wait) {
        if (ctx->json)
            cli__print_json(resp.json);
        else
            printf("training queued (job %lld); see `persona model`\n", (long long)job_id);
        status = CLI_EXIT_OK;
        goto out;
    }
    status = wait_training(ctx, job_id);
out:
    cli__resp_destroy(&resp);
    json_decref(body);
    free(pos);
    return status;
}

int cli__cmd_model(cli__ctx_t *ctx, int argc, char **argv) {
    const cli__opt_t opts[] = {{0}};
    char **pos = xcalloc((size_t)argc + 1, sizeof *pos);
    int npos = 0, status = CLI_EXIT_FAIL;
    cli__resp_t resp;
    cli__resp_init(&resp);
    int rc = cli__parse_opts("model", argc, argv, opts, false, pos, &npos);
    if (rc == CLI__HELP) {
        fputs(model_help, stdout);
        status = CLI_EXIT_OK;
        goto out;
    }
    if (rc < 0 || npos > 0) {
        status = rc < 0 ? CLI_EXIT_USAGE : cli__usage_error("model", "unexpected argument '%s'",
                                                            pos[0]);
        goto out;
    }
    if (get_model(ctx, &resp) < 0)
        goto out;
    if (ctx->json)
        cli__print_json(resp.json);
    else
        print_model(resp.json);
    status = CLI_EXIT_OK;
out:
    cli__resp_destroy(&resp);
    free(pos);
    return status;
}
