/* cli ask: `persona ask TEXT...` — asks the persona a question (POST /v1/questions) and prints
 * the answer as it streams in (answer.delta events over the long-poll API, docs/api.md
 * "Events"), then a newline at answer.done. The stream is followed from the account's last seq
 * read *before* the question is posted, so no piece of the answer can slip past. Pieces that
 * overlap what was printed (a job rerun after a restart) print only their new part, whether
 * offsets count characters or bytes; when a piece is missing, the rest comes from answer.done,
 * so what is printed is always the whole answer.
 * With --json nothing is streamed: the final question object is printed. A server without the
 * events API is polled for the question's status instead. Single-threaded. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/internal.h"

/* ======================================================================================
 * answer bookkeeping
 * ====================================================================================== */

size_t cli__utf8_chars(const char *s) {
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++)
        if ((*p & 0xC0) != 0x80)
            n++;
    return n;
}

const char *cli__utf8_skip(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        if ((*p & 0xC0) != 0x80) {
            if (n == 0)
                break;
            n--;
        }
        p++;
    }
    return (const char *)p;
}

void cli__answer_init(cli__answer_t *a) {
    core_buf_init(&a->printed);
    a->chars = 0;
    a->unit = CLI__OFFSET_UNKNOWN;
    a->gap = false;
    a->last_nl = false;
}

void cli__answer_destroy(cli__answer_t *a) { core_buf_destroy(&a->printed); }

static const char *answer_take(cli__answer_t *a, const char *rest) {
    size_t n = strlen(rest);
    core_buf_append(&a->printed, rest, n);
    a->chars += cli__utf8_chars(rest);
    if (n > 0)
        a->last_nl = rest[n - 1] == '\n';
    return rest;
}

static bool is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

/* Where a piece at offset off (in unit u) starts in what was printed, as a byte index; false
 * when that is past the end or inside a character. */
static bool piece_start(const cli__answer_t *a, enum cli__offset_unit u, size_t off,
                        size_t *start) {
    const char *p = a->printed.data ? a->printed.data : "";
    if (u == CLI__OFFSET_CHARS) {
        if (off > a->chars)
            return false;
        *start = (size_t)(cli__utf8_skip(p, off) - p);
        return true;
    }
    if (off > a->printed.len || (off < a->printed.len && is_continuation((unsigned char)p[off])))
        return false;
    *start = off;
    return true;
}

const char *cli__answer_delta(cli__answer_t *a, int64_t offset, const char *text) {
    if (!text)
        text = "";
    const char *none = text + strlen(text);
    if (a->gap)
        return none;
    size_t off = offset > 0 ? (size_t)offset : 0;
    size_t tlen = strlen(text);
    static const enum cli__offset_unit order[] = {CLI__OFFSET_CHARS, CLI__OFFSET_BYTES};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        enum cli__offset_unit u = order[i];
        size_t start;
        if ((a->unit != CLI__OFFSET_UNKNOWN && a->unit != u) || !piece_start(a, u, off, &start))
            continue;
        /* the piece must agree with what was printed where they overlap */
        size_t overlap = a->printed.len - start;
        size_t cmp = overlap < tlen ? overlap : tlen;
        if (cmp > 0 && memcmp(a->printed.data + start, text, cmp) != 0)
            continue;
        if (a->chars != a->printed.len)
            a->unit = u; /* past a non-ASCII character only one unit fits */
        return overlap >= tlen ? none : answer_take(a, text + overlap);
    }
    a->gap = true;
    return none;
}

const char *cli__answer_done(cli__answer_t *a, const char *full) {
    if (!full)
        return "";
    a->gap = false;
    size_t n = strlen(full), skip = a->printed.len;
    if (skip > n)
        skip = n;
    /* what was printed should be the answer's start; if not, go on after as much of it,
     * without cutting a character */
    while (skip > 0 && skip < n && is_continuation((unsigned char)full[skip]))
        skip--;
    return answer_take(a, full + skip);
}

/* ======================================================================================
 * output
 * ====================================================================================== */

/* Writes answer text to stdout as it is, but for control characters other than newline and
 * tab, which become '?' (an answer is the persona's words, not terminal commands). */
static void print_answer_text(const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
            c = '?';
        putchar(c);
    }
    fflush(stdout);
}

static const char *fmt_clock(double s, char *out, size_t cap) {
    long t = s > 0 ? (long)(s + 0.5) : 0;
    if (t >= 3600)
        snprintf(out, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(out, cap, "%ld:%02ld", t / 60, t % 60);
    return out;
}

/* "sources:" then one line per passage: title, item, time span in a recording, item date. */
static void print_sources(const json_t *q) {
    json_t *ps = json_object_get(q, "passages");
    printf("sources:\n");
    if (json_array_size(ps) == 0) {
        printf("  (none)\n");
        return;
    }
    size_t i;
    json_t *p;
    json_array_foreach(ps, i, p) {
        char title[128], when[64], a[32], b[32];
        double t0 = json_number_value(json_object_get(p, "t_start"));
        double t1 = json_number_value(json_object_get(p, "t_end"));
        printf("  %s (media %lld", cli__clean(cli__jstr(p, "title", "untitled"), 60, title,
                                                 sizeof title),
               (long long)cli__jid(p, "media_id"));
        if (t1 > 0)
            printf(" at %s-%s", fmt_clock(t0, a, sizeof a), fmt_clock(t1, b, sizeof b));
        printf(", %s)\n", cli__human_time(cli__jint(p, "created_at", 0), when, sizeof when));
    }
}

/* ======================================================================================
 * persona ask
 * ====================================================================================== */

static const char ask_help[] =
    "Usage: persona ask TEXT... [--timeout S] [--sources] [--json]\n"
    "\n"
    "Asks the persona a question (the words of TEXT joined by spaces) and prints the answer on\n"
    "stdout as it streams in, ending with a newline once it is complete.\n"
    "\n"
    "  --timeout S   give up after S seconds without the whole answer (default 60; 0: never)\n"
    "  --sources     after the answer, list the passages it came from (title, item, time)\n"
    "  --json        print the final question object (GET /v1/questions/ID) instead, with\n"
    "                its answer, passages and timings; nothing is streamed\n"
    "\n"
    "Exit status: 0 answered; 1 the question was refused (for example empty text), the answer\n"
    "failed or did not come in time; 2 usage error.\n";

typedef struct ask {
    cli__ctx_t *ctx;
    int64_t id;
    int64_t deadline_ns; /* 0: none */
    long timeout_s;
    bool stream;         /* print pieces as they come (not --json) */
    cli__answer_t ans;
    bool printed_any;
    char *error;         /* answer.failed's reason; owned */
} ask_t;

static long remaining_s(const ask_t *a) {
    if (!a->deadline_ns)
        return 25;
    int64_t left = a->deadline_ns - core_mono_ns();
    return left <= 0 ? 0 : (long)((left + 999999999) / 1000000000);
}

static void sleep_ms(long ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static void timeout_message(const ask_t *a) {
    if (a->printed_any && !a->ans.last_nl)
        putchar('\n');
    fflush(stdout);
    fprintf(stderr, "persona: no complete answer to question %lld after %ld s\n",
            (long long)a->id, a->timeout_s);
}

/* Handles one event of the stream. Returns 1 when the answer is complete, -1 when it failed,
 * 0 to go on. */
static int ask_event(ask_t *a, const json_t *ev) {
    if (cli__jid(ev, "question_id") != a->id)
        return 0;
    const char *type = cli__jstr(ev, "type", "");
    if (strcmp(type, "answer.delta") == 0) {
        const char *piece =
            cli__answer_delta(&a->ans, cli__jint(ev, "offset", 0), cli__jstr(ev, "text", ""));
        if (a->stream && *piece) {
            print_answer_text(piece);
            a->printed_any = true;
        }
        return 0;
    }
    if (strcmp(type, "answer.done") == 0) {
        const char *rest = cli__answer_done(&a->ans, cli__jstr(ev, "text", ""));
        if (a->stream) {
            print_answer_text(rest);
            if (!a->ans.last_nl)
                putchar('\n');
            fflush(stdout);
        }
        return 1;
    }
    if (strcmp(type, "answer.failed") == 0) {
        if (a->stream && a->printed_any && !a->ans.last_nl)
            putchar('\n');
        fflush(stdout);
        free(a->error);
        a->error = xstrdup(cli__jstr(ev, "error", "no reason given"));
        return -1;
    }
    return 0;
}

/* Follows the event stream after seq `after` until this question's answer is done or failed,
 * or the deadline. Returns 1 done, -1 failed, -ETIMEDOUT, -ENOTSUP (no events API) or -EPROTO
 * (printed). */
static int ask_follow(ask_t *a, int64_t after) {
    int rc;
    char why[300];
    long backoff_ms = 200;
    cli__resp_t resp;
    cli__resp_init(&resp);
    for (;;) {
        long left = remaining_s(a);
        if (left <= 0) {
            rc = -ETIMEDOUT;
            break;
        }
        rc = cli__events_poll(a->ctx, after, left < 25 ? (int)left : 25, NULL, &resp, why,
                              sizeof why);
        if (rc == -EAGAIN) {
            /* the server may be restarting: the answer still comes, keep trying */
            fprintf(stderr, "persona: %s; retrying\n", why);
            sleep_ms(backoff_ms);
            backoff_ms = backoff_ms * 2 > 5000 ? 5000 : backoff_ms * 2;
            continue;
        }
        if (rc < 0)
            break;
        backoff_ms = 200;
        size_t i;
        json_t *ev;
        json_array_foreach(json_object_get(resp.json, "events"), i, ev) {
            int64_t seq = cli__jint(ev, "seq", 0);
            if (seq <= after)
                continue;
            after = seq;
            if ((rc = ask_event(a, ev)) != 0)
                goto out;
        }
    }
out:
    cli__resp_destroy(&resp);
    return rc;
}

/* GET /v1/questions/ID into resp. Returns 0 or -1 (printed). */
static int get_question(ask_t *a, cli__resp_t *resp) {
    char path[64];
    snprintf(path, sizeof path, "/v1/questions/%lld", (long long)a->id);
    return cli__call(a->ctx, "GET", path, NULL, true, resp);
}

/* Without the events API: polls the question until it is answered or failed. Returns 1, -1
 * or -ETIMEDOUT / -EPROTO. */
static int ask_poll_question(ask_t *a) {
    int rc;
    long interval = 200;
    cli__resp_t resp;
    cli__resp_init(&resp);
    for (;;) {
        if (get_question(a, &resp) < 0) {
            rc = -EPROTO;
            break;
        }
        const char *st = cli__jstr(resp.json, "status", "");
        if (strcmp(st, "answered") == 0) {
            const char *rest = cli__answer_done(&a->ans, cli__jstr(resp.json, "answer", ""));
            if (a->stream) {
                print_answer_text(rest);
                if (!a->ans.last_nl)
                    putchar('\n');
                fflush(stdout);
            }
            rc = 1;
            break;
        }
        if (strcmp(st, "failed") == 0) {
            free(a->error);
            a->error = xstrdup(cli__jstr(resp.json, "error", "no reason given"));
            rc = -1;
            break;
        }
        if (a->deadline_ns && core_mono_ns() >= a->deadline_ns) {
            rc = -ETIMEDOUT;
            break;
        }
        sleep_ms(interval);
        interval = interval * 3 / 2 > 1000 ? 1000 : interval * 3 / 2;
    }
    cli__resp_destroy(&resp);
    return rc;
}

static int ask_run(cli__ctx_t *ctx, const char *text, long timeout_s, bool sources) {
    int status = CLI_EXIT_FAIL;
    char why[300];
    json_t *body = NULL;
    ask_t a = {.ctx = ctx, .timeout_s = timeout_s, .stream = !ctx->json};
    cli__answer_init(&a.ans);
    cli__resp_t resp;
    cli__resp_init(&resp);

    /* the stream's position before the question exists: its events all come after it */
    bool have_events = true;
    int64_t after = 0;
    int rc = cli__events_poll(ctx, CLI__SEQ_MAX, 0, NULL, &resp, why, sizeof why);
    if (rc == -ENOTSUP) {
        have_events = false;
    } else if (rc == -EAGAIN) {
        fprintf(stderr, "persona: cannot reach the server at %s: %s\n", ctx->server, why);
        goto out;
    } else if (rc < 0) {
        goto out;
    } else {
        after = cli__jint(resp.json, "last_seq", -1);
        if (after < 0) {
            fprintf(stderr, "persona: the server's events answer has no 'last_seq'\n");
            goto out;
        }
    }

    body = json_pack("{s:s}", "text", text);
    if (!body) {
        fprintf(stderr, "persona: the question must be UTF-8 text\n");
        goto out;
    }
    if (cli__call(ctx, "POST", "/v1/questions", body, true, &resp) < 0)
        goto out;
    a.id = cli__jid(resp.json, "id");
    if (a.id <= 0) {
        fprintf(stderr, "persona: the server's answer to the question has no 'id'\n");
        goto out;
    }
    if (timeout_s > 0)
        a.deadline_ns = core_mono_ns() + (int64_t)timeout_s * 1000000000;

    rc = have_events ? ask_follow(&a, after) : ask_poll_question(&a);
    if (rc == -ENOTSUP)
        rc = ask_poll_question(&a); /* the events API went away under us */
    if (rc == -ETIMEDOUT) {
        timeout_message(&a);
        goto out;
    }
    if (rc == -EPROTO)
        goto out;
    if (rc == -1) {
        char clean[1024];
        fprintf(stderr, "persona: question %lld failed: %s\n", (long long)a.id,
                cli__clean(a.error, 0, clean, sizeof clean));
    }
    if (ctx->json || sources) {
        if (get_question(&a, &resp) < 0)
            goto out;
        if (ctx->json)
            cli__print_json(resp.json);
        else if (rc == 1)
            print_sources(resp.json);
    }
    status = rc == 1 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
out:
    fflush(stdout);
    json_decref(body);
    free(a.error);
    cli__answer_destroy(&a.ans);
    cli__resp_destroy(&resp);
    return status;
}

int cli__cmd_ask(cli__ctx_t *ctx, int argc, char **argv) {
    const char *timeout_s = NULL;
    bool json = false, sources = false;
    const cli__opt_t opts[] = {
        {"timeout", 't', CLI__VALUE, &timeout_s},
        {"sources", 's', CLI__FLAG, &sources},
        {"json", 0, CLI__FLAG, &json},
        {0},
    };
    char *pos[argc + 1];
    int npos;
    int rc = cli__parse_opts("ask", argc, argv, opts, false, pos, &npos);
    if (rc == CLI__HELP)
        return fputs(ask_help, stdout), CLI_EXIT_OK;
    if (rc < 0)
        return CLI_EXIT_USAGE;
    if (npos == 0)
        return cli__usage_error("ask", "no question given");
    long timeout = 60;
    if (timeout_s) {
        uint64_t v;
        if (core_parse_u64(timeout_s, strlen(timeout_s), &v) < 0 || v > 86400)
            return cli__usage_error("ask", "--timeout must be 0 to 86400 seconds, not '%s'",
                                    timeout_s);
        timeout = (long)v;
    }
    if (json)
        ctx->json = true;
    if (ctx->json && sources)
        return cli__usage_error("ask", "--sources goes without --json (the JSON object has the "
                                       "passages)");
    /* the words of the question, as typed: an empty one is the server's to refuse */
    core_buf_t text;
    core_buf_init(&text);
    for (int i = 0; i < npos; i++) {
        if (i)
            core_buf_puts(&text, " ");
        core_buf_puts(&text, pos[i]);
    }
    int status = ask_run(ctx, text.data ? text.data : "", timeout, sources);
    core_buf_destroy(&text);
    return status;
}
