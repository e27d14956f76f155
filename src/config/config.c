/* config/config.c: the option table and the three sources (file, environment, flags) that fill
 * config_t. One table drives parsing, --help and validation, so a new key is one line. */
#include "config/config.h"

#include "core/core.h"

#include <ctype.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum opt_type { OPT_STR, OPT_INT, OPT_SIZE, OPT_BOOL, OPT_DOUBLE };

typedef struct opt {
    const char *key;
    enum opt_type type;
    size_t offset;
    const char *def;
    const char *help;
} opt_t;

#define O(k, t, d, h) {#k, t, offsetof(config_t, k), d, h}
static const opt_t options[] = {
    O(host, OPT_STR, "127.0.0.1", "address to listen on (0.0.0.0 for every interface)"),
    O(port, OPT_INT, "8080", "TCP port; 0 picks a free one and prints it"),
    O(data_dir, OPT_STR, "./data", "folder for the SQLite database and the blob store"),
    O(signup, OPT_STR, "first", "who may create an account: open | first | closed"),
    O(workers, OPT_INT, "0", "media job threads (0 = number of cores)"),
    O(request_threads, OPT_INT, "0", "API request threads (0 = number of cores)"),
    O(max_upload_bytes, OPT_SIZE, "4G", "largest accepted upload body (413 above it)"),
    O(max_json_bytes, OPT_SIZE, "64K", "largest accepted JSON request body"),
    O(tls_cert, OPT_STR, "", "PEM certificate file; with tls_key, serve HTTPS"),
    O(tls_key, OPT_STR, "", "PEM private key file"),
    O(trusted_proxies, OPT_STR, "",
      "comma-separated proxy addresses (e.g. 127.0.0.1) whose X-Forwarded-For names the client"),
    O(login_max_failures, OPT_INT, "5", "failed logins per username per window before 429"),
    O(login_max_failures_addr, OPT_INT, "20", "failed logins per client address per window"),
    O(login_window_s, OPT_INT, "300", "window of the failed-login limits, seconds"),
    O(job_max_attempts, OPT_INT, "3", "times a job is started before it is failed"),
    O(thumbnail_size, OPT_INT, "320", "longer side of thumbnails, pixels"),
    O(asr_threads, OPT_INT, "2", "speech recognition threads per transcribed item (1..64)"),
    O(log_level, OPT_STR, "info", "debug | info | warn | error"),
    O(log_requests, OPT_BOOL, "true", "one log line per HTTP request"),
    O(http_timeout_s, OPT_INT, "30", "idle timeout while a request is being received"),
    O(keepalive_timeout_s, OPT_INT, "60", "idle keep-alive connections are closed after this"),
    O(upload_queue_kib, OPT_INT, "4096", "upload bytes buffered in memory before pausing reads"),
    O(ws_queue_events, OPT_INT, "1024",
      "unsent events a WebSocket client may fall behind by before it is closed (4008)"),
    O(ws_ping_idle_s, OPT_INT, "30",
      "a WebSocket client silent this long is pinged; dropped without a pong by 2x + 10 s"),
    O(event_retention_days, OPT_INT, "30", "events older than this many days are pruned (0: never)"),
    O(event_retention_max, OPT_INT, "100000",
      "per account, only the newest this many events are kept (0: all)"),
    O(textgen, OPT_STR, "",
      "URL of an OpenAI-compatible text generation service (persona-textgen); unset: answers "
      "quote the corpus"),
    O(textgen_api_key, OPT_STR, "", "API key of the text generation service"),
    O(textgen_model, OPT_STR, "",
      "model that answers for accounts without a trained one (unset: quotes until trained)"),
    O(textgen_base_model, OPT_STR, "scratch-tiny",
      "what training starts from: a model id, or scratch-tiny|small|base|large"),
    O(textgen_train_steps, OPT_INT, "300", "training steps when `persona train` does not say"),
    O(textgen_fallback_s, OPT_INT, "60",
      "a question unanswered this long because the service is down is answered by quoting"),
    O(textgen_timeout_s, OPT_INT, "120", "longest single request to the text generation service"),
    O(textgen_retry_min_ms, OPT_INT, "1000", "first retry delay while the service is down"),
    O(textgen_retry_max_ms, OPT_INT, "30000", "longest retry delay (the delay doubles up to it)"),
    O(textgen_max_tokens, OPT_INT, "128", "longest generated answer, in tokens"),
    O(face_models, OPT_STR, "",
      "folder of the face-api models (unset: <data_dir>/models/face-api); without them, items "
      "are processed without faces and /v1/faces answers 503"),
    O(face_detector, OPT_STR, "tiny",
      "face detector of media.process and the API's default: tiny | ssd"),
    O(face_frame_rate, OPT_DOUBLE, "2", "video frames sampled per second for faces (0.01..30)"),
    O(face_threads, OPT_INT, "2", "threads of one face analysis (1..64)"),
    O(face_contexts, OPT_INT, "2",
      "face analyses run at once, jobs and requests together (1..64; each holds its buffers)"),
    O(face_identity_threshold, OPT_DOUBLE, "0.5",
      "a track joins the nearest identity closer than this (Euclidean descriptor distance)"),
    O(face_max_pixels, OPT_SIZE, "48M", "largest picture or frame analyzed for faces, in pixels"),
    O(face_max_image_bytes, OPT_SIZE, "32M", "largest request body of the /v1/faces calls"),
    O(face_max_frames, OPT_INT, "7200", "video frames analyzed per item at most (an hour at 2 per second)"),
    O(face_max_faces, OPT_INT, "50", "faces kept per picture or frame, best first (1..1000)"),
};
#undef O
#define NOPTS (sizeof options / sizeof options[0])

static const opt_t *opt_find(const char *key, size_t len)
{
    for (size_t i = 0; i < NOPTS; i++) {
        const char *k = options[i].key;
        if (strlen(k) != len)
            continue;
        size_t j = 0;
        for (; j < len; j++) {
            char c = key[j] == '-' ? '_' : (char)tolower((unsigned char)key[j]);
            if (c != k[j])
                break;
        }
        if (j == len)
            return &options[i];
    }
    return NULL;
}

static int opt_set(config_t *cfg, const opt_t *o, const char *val, const char *source, FILE *err)
{
    void *field = (char *)cfg + o->offset;
    switch (o->type) {
    case OPT_STR: {
        char **s = field;
        free(*s);
        *s = xstrdup(val);
        return 0;
    }
    case OPT_INT: {
        char *end;
        errno = 0;
        long v = strtol(val, &end, 10);
        if (errno || end == val || *end || v < 0 || v > 1000000) {
            fprintf(err, "personad: %s: %s must be a whole number from 0 to 1000000, not '%s'\n",
                    source, o->key, val);
            return -EINVAL;
        }
        *(int *)field = (int)v;
        return 0;
    }
    case OPT_SIZE:
        if (core_parse_size(val, (uint64_t *)field) < 0) {
            fprintf(err, "personad: %s: %s must be a size like 512K, 64M or 4G, not '%s'\n",
                    source, o->key, val);
            return -EINVAL;
        }
        return 0;
    case OPT_DOUBLE: {
        char *end;
        errno = 0;
        double v = strtod(val, &end);
        if (errno || end == val || *end || !(v >= 0 && v <= 1e6)) {
            fprintf(err, "personad: %s: %s must be a number from 0 to 1000000, not '%s'\n",
                    source, o->key, val);
            return -EINVAL;
        }
        *(double *)field = v;
        return 0;
    }
    case OPT_BOOL:
        if (!strcmp(val, "true") || !strcmp(val, "1") || !strcmp(val, "yes") || !strcmp(val, "on"))
            *(bool *)field = true;
        else if (!strcmp(val, "false") || !strcmp(val, "0") || !strcmp(val, "no") ||
                 !strcmp(val, "off"))
            *(bool *)field = false;
        else {
            fprintf(err, "personad: %s: %s must be true or false, not '%s'\n", source, o->key, val);
            return -EINVAL;
        }
        return 0;
    }
    return -EINVAL;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

static int load_file(config_t *cfg, const char *path, FILE *err)
{
    char *text = NULL;
    int rc = core_read_file(path, 1 << 20, &text, NULL);
    if (rc < 0) {
        fprintf(err, "personad: cannot read config file %s: %s\n", path, core_strerror(rc));
        return -EINVAL;
    }
    int lineno = 0;
    /* Not strtok: it skips empty lines, and then line numbers in messages would be wrong. */
    char *next = text;
    for (char *line = next; line; line = next) {
        char *nl = strchr(line, '\n');
        next = nl ? nl + 1 : NULL;
        if (nl)
            *nl = '\0';
        lineno++;
        char *l = trim(line);
        if (*l == '\0' || *l == '#')
            continue;
        char *eq = strchr(l, '=');
        char where[PATH_MAX + 32];
        snprintf(where, sizeof where, "%s line %d", path, lineno);
        if (!eq) {
            fprintf(err, "personad: %s: expected key = value\n", where);
            rc = -EINVAL;
            break;
        }
        *eq = '\0';
        char *key = trim(l), *val = trim(eq + 1);
        const opt_t *o = opt_find(key, strlen(key));
        if (!o) {
            fprintf(err, "personad: %s: unknown key '%s'\n", where, key);
            rc = -EINVAL;
            break;
        }
        if ((rc = opt_set(cfg, o, val, where, err)) < 0)
            break;
    }
    free(text);
    return rc;
}

static int load_env(config_t *cfg, FILE *err)
{
    for (size_t i = 0; i < NOPTS; i++) {
        char name[64] = "PERSONA_";
        size_t n = strlen(name);
        for (const char *k = options[i].key; *k && n < sizeof name - 1; k++)
            name[n++] = (char)toupper((unsigned char)*k);
        name[n] = '\0';
        /* PERSONA_TEXTGEN names the persona-textgen program (tests, scripts): the service's
         * URL comes from PERSONA_TEXTGEN_URL instead. */
        if (strcmp(options[i].key, "textgen") == 0)
            snprintf(name, sizeof name, "PERSONA_TEXTGEN_URL");
        const char *v = getenv(name);
        if (v && opt_set(cfg, &options[i], v, name, err) < 0)
            return -EINVAL;
    }
    return 0;
}

void config_print_help(FILE *out)
{
    fprintf(out,
            "usage: personad [--config FILE] [--KEY VALUE]...\n"
            "\n"
            "The persona backend: REST API, WebSocket hub and media processing on one port.\n"
            "Settings come from defaults, the config file (key = value lines), PERSONA_KEY\n"
            "environment variables and flags, in rising precedence.\n\n"
            "  --config FILE                 config file (env PERSONAD_CONFIG)\n"
            "  --help, --version\n\n");
    for (size_t i = 0; i < NOPTS; i++) {
        char flag[48];
        snprintf(flag, sizeof flag, "--%s", options[i].key);
        for (char *p = flag + 2; *p; p++)
            if (*p == '_')
                *p = '-';
        fprintf(out, "  %-29s %s (default: %s)\n", flag, options[i].help,
                *options[i].def ? options[i].def : "unset");
    }
}

static int validate(const config_t *cfg, FILE *err)
{
    if (strcmp(cfg->signup, "open") && strcmp(cfg->signup, "first") && strcmp(cfg->signup, "closed")) {
        fprintf(err, "personad: signup must be open, first or closed, not '%s'\n", cfg->signup);
        return -EINVAL;
    }
    if (cfg->port > 65535) {
        fprintf(err, "personad: port must be 0..65535\n");
        return -EINVAL;
    }
    if ((*cfg->tls_cert != '\0') != (*cfg->tls_key != '\0')) {
        fprintf(err, "personad: tls_cert and tls_key must be set together\n");
        return -EINVAL;
    }
    enum core_log_level lvl;
    if (core_log_parse_level(cfg->log_level, &lvl) < 0) {
        fprintf(err, "personad: log_level must be debug, info, warn or error\n");
        return -EINVAL;
    }
    if (*cfg->textgen && strncmp(cfg->textgen, "http://", 7) != 0 &&
        strncmp(cfg->textgen, "https://", 8) != 0) {
        fprintf(err, "personad: textgen must be an http:// or https:// URL, not '%s'\n",
                cfg->textgen);
        return -EINVAL;
    }
    if (cfg->textgen_train_steps < 1 || cfg->textgen_timeout_s < 1 ||
        cfg->textgen_retry_min_ms < 1 || cfg->textgen_retry_max_ms < cfg->textgen_retry_min_ms ||
        cfg->textgen_max_tokens < 1) {
        fprintf(err, "personad: textgen_train_steps, textgen_timeout_s, textgen_retry_min_ms and "
                     "textgen_max_tokens >= 1, textgen_retry_max_ms >= textgen_retry_min_ms\n");
        return -EINVAL;
    }
    if (cfg->asr_threads < 1 || cfg->asr_threads > 64) {
        fprintf(err, "personad: asr_threads must be 1..64\n");
        return -EINVAL;
    }
    if (strcmp(cfg->face_detector, "tiny") && strcmp(cfg->face_detector, "ssd")) {
        fprintf(err, "personad: face_detector must be tiny or ssd, not '%s'\n", cfg->face_detector);
        return -EINVAL;
    }
    if (cfg->face_frame_rate < 0.01 || cfg->face_frame_rate > 30 || cfg->face_threads < 1 ||
        cfg->face_threads > 64 || cfg->face_contexts < 1 || cfg->face_contexts > 64 ||
        cfg->face_identity_threshold <= 0 || cfg->face_identity_threshold > 2 ||
        cfg->face_max_pixels < 1024 || cfg->face_max_image_bytes < 1024 ||
        cfg->face_max_frames < 1 || cfg->face_max_faces < 1 || cfg->face_max_faces > 1000) {
        fprintf(err, "personad: face_frame_rate 0.01..30, face_threads and face_contexts 1..64, "
                     "face_identity_threshold in (0, 2], face_max_pixels and face_max_image_bytes "
                     ">= 1K, face_max_frames >= 1, face_max_faces 1..1000\n");
        return -EINVAL;
    }
    if (cfg->job_max_attempts < 1 || cfg->thumbnail_size < 16 || cfg->upload_queue_kib < 64 ||
        cfg->ws_queue_events < 16 || cfg->ws_ping_idle_s < 1) {
        fprintf(err, "personad: job_max_attempts >= 1, thumbnail_size >= 16, upload_queue_kib >= 64, "
                     "ws_queue_events >= 16, ws_ping_idle_s >= 1\n");
        return -EINVAL;
    }
    return 0;
}

int config_load(config_t *cfg, int argc, char **argv, FILE *out, FILE *err)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < NOPTS; i++)
        if (opt_set(cfg, &options[i], options[i].def, "default", err) < 0)
            return -EINVAL;

    const char *file = getenv("PERSONAD_CONFIG");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            config_print_help(out);
            return 1;
        }
        if (!strcmp(argv[i], "--version")) {
            fprintf(out, "personad %s\n", PERSONA_VERSION);
            return 1;
        }
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            file = argv[i + 1];
        else if (!strncmp(argv[i], "--config=", 9))
            file = argv[i] + 9;
    }
    if (file && *file) {
        if (load_file(cfg, file, err) < 0)
            return -EINVAL;
        cfg->config_file = xstrdup(file);
    }
    if (load_env(cfg, err) < 0)
        return -EINVAL;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) {
            fprintf(err, "personad: unexpected argument '%s' (see --help)\n", a);
            return -EINVAL;
        }
        const char *key = a + 2, *eq = strchr(key, '=');
        size_t klen = eq ? (size_t)(eq - key) : strlen(key);
        const char *val = eq ? eq + 1 : NULL;
        bool is_config = klen == 6 && !strncmp(key, "config", 6);
        const opt_t *o = is_config ? NULL : opt_find(key, klen);
        if (!o && !is_config) {
            fprintf(err, "personad: unknown option '%s' (see --help)\n", a);
            return -EINVAL;
        }
        if (!val) {
            if (i + 1 >= argc) {
                fprintf(err, "personad: option '%s' needs a value\n", a);
                return -EINVAL;
            }
            val = argv[++i];
        }
        if (o && opt_set(cfg, o, val, "command line", err) < 0)
            return -EINVAL;
    }
    return validate(cfg, err);
}

void config_destroy(config_t *cfg)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (options[i].type == OPT_STR)
            xfree((char *)cfg + options[i].offset);
    xfree(&cfg->config_file);
}
