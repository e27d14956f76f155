/* cli internal: what the files of the cli module share — the run context, the option parser,
 * the config file, the HTTP layer over libcurl, progress display and output formatting.
 * Everything here runs on the program's only thread. Names are cli__*. */
#ifndef PERSONA_CLI_INTERNAL_H
#define PERSONA_CLI_INTERNAL_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cli/cli.h"
#include "core/core.h"

#define CLI__DEFAULT_SERVER "http://127.0.0.1:8080"
#define CLI__MAX_RESPONSE (16u << 20) /* bodies read into memory; downloads stream to disk */
#define CLI__MAX_CONFIG (64u << 10)
#define CLI__MAX_PASSWORD 1024

/* ======================================================================================
 * config file: `key = value` lines, `#` comments. Unknown keys are kept when it is saved.
 * ====================================================================================== */
typedef struct cli__kv {
    char *key;
    char *value;
} cli__kv_t;

typedef struct cli__config {
    cli__kv_t *items;
    size_t n;
} cli__config_t;

void cli__config_init(cli__config_t *cfg);
void cli__config_destroy(cli__config_t *cfg);
/* Parses text into cfg (appending). Returns 0, or -EINVAL with *bad_line set to the 1-based
 * number of the first line that is neither blank, a comment nor `key = value`. */
int cli__config_parse(const char *text, cli__config_t *cfg, int *bad_line);
/* Loads path into cfg. A missing file is an empty config (0). Returns 0, -EINVAL (bad line,
 * *bad_line set), -EFBIG or another -errno. */
int cli__config_load(const char *path, cli__config_t *cfg, int *bad_line);
/* Value of key, or NULL. Borrowed from cfg. */
const char *cli__config_get(const cli__config_t *cfg, const char *key);
/* Sets key to value (copied); value NULL removes the key. */
void cli__config_set(cli__config_t *cfg, const char *key, const char *value);
/* Writes cfg to path atomically (temporary file in the same folder, mode 0600, fsync,
 * rename), creating the folder (0700) if needed. Returns 0 or -errno; on failure the old file
 * is untouched. */
int cli__config_save(const char *path, const cli__config_t *cfg);
/* Default config path: $PERSONA_CONFIG, else $XDG_CONFIG_HOME/persona/config, else
 * $HOME/.config/persona/config. Returns a malloc'd string (caller frees), or NULL when none of
 * these variables is set. */
char *cli__config_default_path(void);

/* ======================================================================================
 * run context
 * ====================================================================================== */
typedef struct cli__ctx {
    char *server;      /* base URL without trailing slash; owned */
    char *token;       /* bearer token or NULL; owned */
    char *config_path; /* owned; NULL if none could be determined */
    cli__config_t cfg; /* the config file as loaded */
    bool json;         /* --json: machine-readable output */
    bool tty_err;      /* stderr is a terminal: progress bars */
    void *curl;        /* CURL *, lazily created; owned */
} cli__ctx_t;

/* Saves ctx->cfg to ctx->config_path; prints the reason and returns -errno on failure. */
int cli__ctx_save_config(cli__ctx_t *ctx);

/* ======================================================================================
 * command-line options
 * ====================================================================================== */
enum cli__opt_kind { CLI__FLAG, CLI__VALUE };

typedef struct cli__opt {
    const char *name; /* long name without the dashes */
    char short_name;  /* or 0 */
    enum cli__opt_kind kind;
    void *out; /* bool * for CLI__FLAG, const char ** for CLI__VALUE (borrowed from argv) */
} cli__opt_t;

#define CLI__HELP 1
/* Parses argv[0..argc) of command cmd against opts (terminated by a zeroed entry). Options
 * may come anywhere among the positionals unless stop_at_positional; `--` ends the options.
 * Positionals are stored in pos (capacity argc), their count in *npos. `--help`/`-h` is always
 * known. Returns 0, CLI__HELP when help was asked for, or -EINVAL after printing why on
 * stderr. */
int cli__parse_opts(const char *cmd, int argc, char **argv, const cli__opt_t *opts,
                    bool stop_at_positional, char **pos, int *npos);
/* Parses a positive decimal id. Returns 0 or -EINVAL after printing why (naming what). */
int cli__parse_id(const char *s, const char *what, uint64_t *out);
/* Prints "persona: <msg>\nTry 'persona <cmd> --help'." on stderr; returns CLI_EXIT_USAGE. */
int cli__usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ======================================================================================
 * HTTP
 * ====================================================================================== */
#define CLI__RATE_SAMPLES 20 /* the rate shown is over the last 2 s of redraws */
typedef struct cli__progress {
    const char *label; /* borrowed */
    bool tty;          /* draw a bar on stderr */
    int64_t start_ns;
    int64_t last_draw_ns;
    bool drawn;
    bool complete; /* 100% drawn: nothing more to show while the server answers */
    int nsamples;  /* ring of (time, bytes) at each redraw, for the rate */
    int64_t sample_ns[CLI__RATE_SAMPLES];
    uint64_t sample_bytes[CLI__RATE_SAMPLES];
} cli__progress_t;

typedef struct cli__req {
    const char *method; /* GET, POST, DELETE */
    const char *path;   /* "/v1/…" with its query string, already URL-encoded */
    json_t *json;       /* request body as JSON, or NULL; borrowed */
    bool auth;          /* send the bearer token (fails early when there is none) */
    /* streamed upload: the body is upload_size bytes read from upload */
    FILE *upload;
    uint64_t upload_size;
    const char *content_type;
    /* streamed download: a 2xx body goes to download instead of memory */
    FILE *download;
    cli__progress_t *progress; /* or NULL */
    long timeout_s;            /* whole-request limit; 0: none (streams use a stall limit) */
    /* when set and non-zero (a signal handler sets it), the transfer is abandoned within about
     * a second and cli__request returns -ECANCELED without printing anything */
    const volatile sig_atomic_t *cancel;
    bool quiet; /* network failures are not printed, only left in resp->error */
} cli__req_t;

typedef struct cli__resp {
    long status;     /* HTTP status, 0 when no response came */
    core_buf_t body; /* the body read into memory (not for 2xx downloads) */
    json_t *json;    /* body parsed when it is JSON, else NULL; owned */
    uint64_t downloaded;
    char error[256]; /* why no response came (when cli__request failed), else "" */
} cli__resp_t;

void cli__resp_init(cli__resp_t *r);
void cli__resp_destroy(cli__resp_t *r);

/* Performs req. Returns 0 when a response arrived (whatever its status), or a negative code
 * after printing why on stderr (connection refused, DNS, timeout, response too large, local
 * write error). */
int cli__request(cli__ctx_t *ctx, const cli__req_t *req, cli__resp_t *resp);
/* True for 2xx. Otherwise prints `persona: [prefix: ]<message> (<code>, HTTP <status>)` from
 * the server's error object (or a generic line for a non-JSON body) and returns false. */
bool cli__resp_ok(const cli__ctx_t *ctx, const cli__resp_t *resp, const char *prefix);
/* cli__request + cli__resp_ok for JSON calls. Returns 0 for 2xx, -1 otherwise (printed). */
int cli__call(cli__ctx_t *ctx, const char *method, const char *path, json_t *body, bool auth,
              cli__resp_t *resp);
/* URL-encodes s. Returns a malloc'd string; caller frees. */
char *cli__urlencode(const char *s);
/* Releases the curl handle. */
void cli__http_cleanup(cli__ctx_t *ctx);

/* Progress display on stderr, redrawn at most 10 times a second. */
void cli__progress_start(cli__progress_t *p, const char *label, bool tty);
void cli__progress_update(cli__progress_t *p, uint64_t now, uint64_t total);
void cli__progress_finish(cli__progress_t *p);

/* ======================================================================================
 * output helpers
 * ====================================================================================== */
/* Prints j compactly on one line on stdout. */
void cli__print_json(const json_t *j);
/* "1.2 MB" style (powers of 1000) into out. */
const char *cli__human_size(uint64_t n, char *out, size_t cap);
/* Local time "2026-11-25 22:58" for ms since the epoch ("-" for 0/absent). */
const char *cli__human_time(int64_t ms, char *out, size_t cap);
/* Copies s into out with control characters replaced by '?', truncated to width characters
 * with a trailing "~" when cut (width 0: no limit). */
const char *cli__clean(const char *s, size_t width, char *out, size_t cap);
/* Accessors that tolerate missing or mistyped members. */
const char *cli__jstr(const json_t *o, const char *key, const char *dflt);
int64_t cli__jint(const json_t *o, const char *key, int64_t dflt);

/* ======================================================================================
 * media kinds
 * ====================================================================================== */
/* Kind ("video", "audio", "image", "text") and MIME type guessed from a file name's extension
 * (case-insensitive). Returns 0, or -ENOENT for an unknown extension. Outputs are static. */
int cli__guess_kind(const char *filename, const char **kind, const char **mime);
bool cli__valid_kind(const char *kind);
/* File extension for a MIME type of the table above (parameters ignored), or NULL. */
const char *cli__ext_for_mime(const char *mime);

/* ======================================================================================
 * events and answers (docs/api.md: Questions, Events)
 * ====================================================================================== */
#define CLI__SEQ_MAX INT64_MAX /* `after` that asks only for last_seq */

/* An id member given as a JSON integer or as a decimal string (the design brief shows
 * question ids as strings, docs/api.md as integers): its value, or 0 when absent/invalid. */
int64_t cli__jid(const json_t *o, const char *key);

/* One long-poll: GET /v1/events?after=AFTER&wait=WAIT_S (curl gives up WAIT_S + 15 s later).
 * Returns 0 with resp->json holding an object with an "events" array and resp->json's
 * "last_seq"; -EAGAIN for a failure worth retrying (no response, 5xx, 429, 408: nothing
 * printed, the reason in why); -ENOTSUP when the server has no events API (404, nothing
 * printed); -ECANCELED when *cancel was set; -EPROTO for any other answer (printed). */
int cli__events_poll(cli__ctx_t *ctx, int64_t after, int wait_s,
                     const volatile sig_atomic_t *cancel, cli__resp_t *resp, char *why,
                     size_t why_cap);
/* The human line of `persona watch` for one event, without the newline: "SEQ TYPE", then
 * question=ID and media=ID when present, then the other members in order as key=value (a word
 * such as `ready` bare, other strings JSON-quoted so control characters and trailing spaces
 * show, objects and arrays as compact JSON), `text` last and always quoted. Returns a malloc'd string; caller frees. */
char *cli__event_line(const json_t *ev);

/* Number of characters (UTF-8 lead bytes) in s. */
size_t cli__utf8_chars(const char *s);
/* s advanced past n characters, or to its end. */
const char *cli__utf8_skip(const char *s, size_t n);

/* What `persona ask` has printed of one answer. An answer.delta's offset says where its piece
 * starts in the answer; docs/api.md counts it in characters, and a server may count bytes: the
 * unit is learned from the first piece where the two differ (only one of them fits what was
 * printed; characters are tried first). A piece that overlaps what was printed (a job rerun
 * after a restart) prints only its new part; a piece past what was printed, or one that does
 * not match it, means something went missing: streaming stops there and answer.done supplies the
 * rest, so the printed whole is always the answer. */
enum cli__offset_unit { CLI__OFFSET_UNKNOWN, CLI__OFFSET_CHARS, CLI__OFFSET_BYTES };

typedef struct cli__answer {
    core_buf_t printed;         /* the answer as printed so far */
    size_t chars;               /* its length in characters */
    enum cli__offset_unit unit; /* what offsets count, once known */
    bool gap;                   /* a piece went missing: wait for answer.done */
    bool last_nl;               /* the last character printed is a newline */
} cli__answer_t;

void cli__answer_init(cli__answer_t *a);
void cli__answer_destroy(cli__answer_t *a);
/* The part of a delta (offset, text) still to print: a pointer into text ("" for none). Counts
 * it as printed. A negative offset counts as 0; NULL text as "". */
const char *cli__answer_delta(cli__answer_t *a, int64_t offset, const char *text);
/* The part of the whole answer still to print: a pointer into full. Counts it as printed. */
const char *cli__answer_done(cli__answer_t *a, const char *full);

/* ======================================================================================
 * commands: each gets the arguments after its name; returns a CLI_EXIT_* status
 * ====================================================================================== */
int cli__cmd_signup(cli__ctx_t *ctx, int argc, char **argv);
int cli__cmd_login(cli__ctx_t *ctx, int argc, char **argv);
int cli__cmd_logout(cli__ctx_t *ctx, int argc, char **argv);
int cli__cmd_whoami(cli__ctx_t *ctx, int argc, char **argv);
int cli__cmd_upload(cli__ctx_t *ctx, int argc, char **argv);
int cli__cmd_media(cli__ctx_t *ctx, int argc, char **argv);
int cli__cmd_devices(cli__ctx_t *ctx, int argc, char **argv);
int cli__cmd_ask(cli__ctx_t *ctx, int argc, char **argv);
int cli__cmd_watch(cli__ctx_t *ctx, int argc, char **argv);
int cli__cmd_train(cli__ctx_t *ctx, int argc, char **argv);
int cli__cmd_model(cli__ctx_t *ctx, int argc, char **argv);
int cli__cmd_voice(cli__ctx_t *ctx, int argc, char **argv);
int cli__cmd_say(cli__ctx_t *ctx, int argc, char **argv);
int cli__cmd_transcript(cli__ctx_t *ctx, int argc, char **argv);
int cli__cmd_faces(cli__ctx_t *ctx, int argc, char **argv);
int cli__cmd_identities(cli__ctx_t *ctx, int argc, char **argv);

#endif
