/* cli events: the account's event stream over the long-poll API (GET /v1/events?after=N&wait=S,
 * docs/api.md "Events"), shared by `persona ask` and `persona watch`, the one-line rendering of
 * an event, and `persona watch` itself: events live, one per line, until SIGINT/SIGTERM (exit 0);
 * when the server goes away it reconnects with backoff (0.5 s doubling to 30 s) and resumes
 * after the last seq it printed, so nothing is lost or printed twice while the server keeps the
 * events. Single-threaded; the signal handler only sets a flag that the transfer checks. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/internal.h"

/* ======================================================================================
 * the long poll
 * ====================================================================================== */

int64_t cli__jid(const json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    if (json_is_integer(v))
        return json_integer_value(v) > 0 ? (int64_t)json_integer_value(v) : 0;
    uint64_t id = 0;
    const char *s = json_string_value(v);
    if (s && core_parse_u64(s, strlen(s), &id) == 0)
        return (int64_t)id;
    return 0;
}

int cli__events_poll(cli__ctx_t *ctx, int64_t after, int wait_s,
                     const volatile sig_atomic_t *cancel, cli__resp_t *resp, char *why,
                     size_t why_cap) {
    char path[96];
    if (wait_s < 0)
        wait_s = 0;
    snprintf(path, sizeof path, "/v1/events?after=%lld&wait=%d", (long long)after, wait_s);
    cli__req_t req = {.method = "GET",
                      .path = path,
                      .auth = true,
                      .timeout_s = wait_s + 15L,
                      .cancel = cancel,
                      .quiet = true};
    why[0] = '\0';
    int rc = cli__request(ctx, &req, resp);
    if (rc == -ECANCELED)
        return -ECANCELED;
    if (rc == -EPERM)
        return -EPROTO; /* not logged in: printed */
    if (rc < 0) {
        snprintf(why, why_cap, "%s", resp->error[0] ? resp->error : "no response");
        return -EAGAIN;
    }
    long st = resp->status;
    if (st >= 500 || st == 429 || st == 408) {
        snprintf(why, why_cap, "HTTP %ld from %s", st, ctx->server);
        return -EAGAIN;
    }
    if (st == 404)
        return -ENOTSUP;
    if (!cli__resp_ok(ctx, resp, "events"))
        return -EPROTO;
    if (!json_is_array(json_object_get(resp->json, "events"))) {
        fprintf(stderr, "persona: the server's answer to %s has no 'events' array\n", path);
        return -EPROTO;
    }
    return 0;
}

/* ======================================================================================
 * one event as a line
 * ====================================================================================== */

/* Appends s with DEL and the C1 controls (U+0080-U+009F) replaced by '?': JSON quoting already
 * escapes the C0 controls, and a terminal must not see any of them raw. */
static void append_display(core_buf_t *b, const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == 0x7f) {
            core_buf_puts(b, "?");
        } else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
            core_buf_puts(b, "?");
            p++;
        } else if (*p < 0x20) {
            core_buf_puts(b, "?");
        } else {
            core_buf_append(b, p, 1);
        }
    }
}

/* A string that reads unambiguously without quotes: a word like "ready" or "answer.done". */
static bool is_bare_word(const char *s) {
    if (!*s)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '.' || *s == '_' || *s == '-' || *s == ':' || *s == '/'))
            return false;
    return true;
}

/* Integers and bare words as they are, other strings JSON-quoted (always, with quote), other
 * values as compact JSON. */
static void append_value(core_buf_t *b, const json_t *v, bool quote) {
    if (json_is_integer(v)) {
        core_buf_printf(b, "%lld", (long long)json_integer_value(v));
        return;
    }
    if (!quote && json_is_string(v) && is_bare_word(json_string_value(v))) {
        core_buf_puts(b, json_string_value(v));
        return;
    }
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    append_display(b, s ? s : "?");
    free(s);
}

char *cli__event_line(const json_t *ev) {
    core_buf_t b;
    core_buf_init(&b);
    core_buf_printf(&b, "%lld ", (long long)cli__jint(ev, "seq", 0));
    const char *type = cli__jstr(ev, "type", "?");
    char clean[64];
    core_buf_puts(&b, cli__clean(type, 40, clean, sizeof clean));
    static const struct {
        const char *key, *label;
    } ids[] = {{"question_id", "question"}, {"media_id", "media"}};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        json_t *v = json_object_get(ev, ids[i].key);
        if (v) {
            core_buf_printf(&b, " %s=", ids[i].label);
            append_value(&b, v, false);
        }
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)ev, k, v) {
        if (strcmp(k, "seq") == 0 || strcmp(k, "type") == 0 || strcmp(k, "question_id") == 0 ||
            strcmp(k, "media_id") == 0 || strcmp(k, "text") == 0)
            continue;
        core_buf_puts(&b, " ");
        append_display(&b, k);
        core_buf_puts(&b, "=");
        append_value(&b, v, false);
    }
    json_t *text = json_object_get(ev, "text");
    if (text) {
        core_buf_puts(&b, " text=");
        append_value(&b, text, true);
    }
    return core_buf_steal(&b);
}

/* ======================================================================================
 * persona watch
 * ====================================================================================== */

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

/* Sleeps ms milliseconds, or less when a stop is requested. */
static void sleep_unless_stopped(long ms) {
    while (ms > 0 && !stop_requested) {
        long step = ms < 100 ? ms : 100;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

static const char watch_help[] =
    "Usage: persona watch [--after N] [--json]\n"
    "\n"
    "Prints the account's events as they happen (GET /v1/events, long-poll), one per line:\n"
    "  SEQ TYPE [question=ID] [media=ID] [KEY=VALUE...] [text=\"...\"]\n"
    "for example\n"
    "  41 answer.delta question=7 offset=0 text=\"About the sea, you said: \"\n"
    "  42 answer.done question=7 passages=2 text=\"About the sea, you said: ...\"\n"
    "  43 media.updated media=12 status=ready error=null\n"
    "With --json, each event is printed as the server's JSON object, one per line.\n"
    "Runs until interrupted (Ctrl-C: exit 0). When the server goes away it reconnects with\n"
    "backoff (up to 30 s) and resumes after the last event printed.\n"
    "\n"
    "  --after N   start after event N (0: everything the server still keeps);\n"
    "              default: only events from now on\n"
    "  --json      print the raw JSON events\n";

/* Prints the events of one long-poll answer with seq > *last, advancing *last. Returns 0, or
 * -EIO when stdout fails. */
static int print_events(const cli__ctx_t *ctx, const json_t *events, int64_t *last) {
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev) {
        int64_t seq = cli__jint(ev, "seq", 0);
        if (seq <= *last)
            continue; /* never twice */
        *last = seq;
        if (ctx->json) {
            cli__print_json(ev);
        } else {
            char *line = cli__event_line(ev);
            puts(line);
            free(line);
        }
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "persona: cannot write the output\n");
        return -EIO;
    }
    return 0;
}

static int watch_run(cli__ctx_t *ctx, int64_t after) {
    int status = CLI_EXIT_FAIL;
    char why[300];
    cli__resp_t resp;
    cli__resp_init(&resp);
    long backoff_ms = 500;
    bool lost = false;

    for (;;) {
        if (stop_requested) {
            status = CLI_EXIT_OK;
            break;
        }
        /* right after an outage, a quick poll: to say at once that the server is back */
        int rc = cli__events_poll(ctx, after, lost ? 0 : 25, &stop_requested, &resp, why,
                                  sizeof why);
        if (rc == -ECANCELED || stop_requested) {
            status = CLI_EXIT_OK;
            break;
        }
        if (rc == -ENOTSUP) {
            fprintf(stderr, "persona: the server at %s has no events API (HTTP 404)\n",
                    ctx->server);
            break;
        }
        if (rc == -EPROTO)
            break;
        if (rc == -EAGAIN) {
            fprintf(stderr, "persona: lost the server (%s); retrying in %.1f s\n", why,
                    (double)backoff_ms / 1000.0);
            lost = true;
            sleep_unless_stopped(backoff_ms);
            backoff_ms = backoff_ms * 2 > 30000 ? 30000 : backoff_ms * 2;
            continue;
        }
        if (lost) {
            fprintf(stderr, "persona: reconnected; resuming after event %lld\n",
                    (long long)after);
            lost = false;
        }
        backoff_ms = 500;
        json_t *events = json_object_get(resp.json, "events");
        int64_t last_seq = cli__jint(resp.json, "last_seq", -1);
        if (json_array_size(events) == 0 && last_seq >= 0 && last_seq < after) {
            /* seqs are never reused: a server whose log ends before ours lost its data */
            fprintf(stderr, "persona: the server's events end at %lld, before %lld: its event "
                            "log was reset; following from %lld\n",
                    (long long)last_seq, (long long)after, (long long)last_seq);
            after = last_seq;
        }
        if (print_events(ctx, events, &after) < 0)
            break;
    }
    cli__resp_destroy(&resp);
    return status;
}

int cli__cmd_watch(cli__ctx_t *ctx, int argc, char **argv) {
    const char *after_s = NULL;
    bool json = false;
    const cli__opt_t opts[] = {
        {"after", 'a', CLI__VALUE, &after_s},
        {"json", 0, CLI__FLAG, &json},
        {0},
    };
    char *pos[argc + 1];
    int npos;
    int rc = cli__parse_opts("watch", argc, argv, opts, false, pos, &npos);
    if (rc == CLI__HELP)
        return fputs(watch_help, stdout), CLI_EXIT_OK;
    if (rc < 0)
        return CLI_EXIT_USAGE;
    if (npos > 0)
        return cli__usage_error("watch", "unexpected argument '%s'", pos[0]);
    uint64_t after = 0;
    if (after_s && core_parse_u64(after_s, strlen(after_s), &after) < 0)
        return cli__usage_error("watch", "--after must be an event number (0 or more), not "
                                         "'%s'", after_s);
    if (json)
        ctx->json = true;

    struct sigaction sa = {.sa_handler = on_stop_signal}, old_int, old_term;
    sigemptyset(&sa.sa_mask);
    stop_requested = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    int status = CLI_EXIT_FAIL;
    if (!after_s) {
        /* from now on: the current last seq, at once (nothing is after the largest seq) */
        char why[300];
        cli__resp_t resp;
        cli__resp_init(&resp);
        rc = cli__events_poll(ctx, CLI__SEQ_MAX, 0, &stop_requested, &resp, why, sizeof why);
        int64_t last = cli__jint(resp.json, "last_seq", -1);
        cli__resp_destroy(&resp);
        if (rc == -ECANCELED) {
            status = CLI_EXIT_OK;
            goto out;
        }
        if (rc == -EAGAIN) {
            fprintf(stderr, "persona: cannot reach the server at %s: %s\n", ctx->server, why);
            goto out;
        }
        if (rc == -ENOTSUP) {
            fprintf(stderr, "persona: the server at %s has no events API (HTTP 404)\n",
                    ctx->server);
            goto out;
        }
        if (rc < 0)
            goto out;
        if (last < 0) {
            fprintf(stderr, "persona: the server's events answer has no 'last_seq'\n");
            goto out;
        }
        after = (uint64_t)last;
    }
    status = watch_run(ctx, (int64_t)after);
out:
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    return status;
}
