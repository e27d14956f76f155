/* desktop main: persona-desktop's entry — options (config file < PERSONA_* environment <
 * flags), the state file, then the worker thread and the WebSocket loop. Exit status: 0 on a
 * signal or after --once's answer, 2 for usage errors, 1 otherwise. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "desktop/internal.h"

static const char usage_text[] =
    "Usage: persona-desktop --server URL --token T [OPTIONS]\n"
    "\n"
    "The desktop client service of persona: holds a WebSocket to personad, and speaks each\n"
    "answer of the account aloud on the default audio output (PulseAudio, else ALSA), or writes\n"
    "it as answer-<question id>.wav when there is no audio output or --out-dir is given.\n"
    "\n"
    "Options:\n"
    "  --server URL     personad's address, http(s):// or ws(s):// (env PERSONA_SERVER)\n"
    "  --token T        a desktop device token (env PERSONA_TOKEN)\n"
    "  --out-dir DIR    write one WAV per answer into DIR instead of playing it\n"
    "  --once           exit after the next answer is spoken or written\n"
    "  --voice V        espeak-ng voice (default " SPEECH_DEFAULT_VOICE ")\n"
    "  --rate N         words per minute, 80-450 (default 175)\n"
    "  --pitch N        0-99 (default 50)\n"
    "  --volume N       0-200 (default 100)\n"
    "  --no-stream      wait for the whole answer instead of speaking sentence by sentence\n"
    "  --state FILE     where the last handled event is kept (default\n"
    "                   $XDG_STATE_HOME/persona/desktop-state or\n"
    "                   ~/.local/state/persona/desktop-state)\n"
    "  --config FILE    config file of `key = value` lines: server, token, out_dir, voice,\n"
    "                   rate, pitch, volume, stream, state, log_level (env\n"
    "                   PERSONA_DESKTOP_CONFIG; default $XDG_CONFIG_HOME/persona/desktop.conf\n"
    "                   or ~/.config/persona/desktop.conf)\n"
    "  --log-level L    debug, info, warn or error (default info)\n"
    "  --help, --version\n"
    "\n"
    "Exit status: 0 success, 1 failure, 2 usage error.\n";

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

/* ---- the config file: `key = value` lines, `#` comments ------------------------------ */
#define N_KEYS 10
static const char *const keys[N_KEYS] = {"server", "token",  "out_dir", "voice", "rate",
                                         "pitch",  "volume", "stream",  "state", "log_level"};

static int key_index(const char *k, size_t n) {
    for (int i = 0; i < N_KEYS; i++)
        if (strlen(keys[i]) == n && strncmp(keys[i], k, n) == 0)
            return i;
    return -1;
}

static bool blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

/* Reads path into vals[key] (malloc'd). A missing file is fine unless required. Returns 0,
 * or prints why and returns -1. */
static int load_config(const char *path, bool required, char *vals[N_KEYS]) {
    char *text = NULL;
    size_t len = 0;
    int rc = core_read_file(path, 64u << 10, &text, &len);
    if (rc == -ENOENT && !required)
        return 0;
    if (rc < 0) {
        fprintf(stderr, "persona-desktop: cannot read %s: %s\n", path, core_strerror(rc));
        return -1;
    }
    int line = 0;
    for (char *p = text; *p;) {
        line++;
        char *end = strchr(p, '\n');
        if (!end)
            end = p + strlen(p);
        char *s = p, *e = end;
        p = *end ? end + 1 : end;
        while (s < e && blank(*s))
            s++;
        while (e > s && blank(e[-1]))
            e--;
        if (s == e || *s == '#')
            continue;
        char *eq = memchr(s, '=', (size_t)(e - s));
        char *ke = eq;
        while (eq && ke > s && blank(ke[-1]))
            ke--;
        int k = eq ? key_index(s, (size_t)(ke - s)) : -1;
        if (k < 0) {
            fprintf(stderr, "persona-desktop: %s:%d: expected 'key = value' with a known key\n",
                    path, line);
            free(text);
            return -1;
        }
        char *vs = eq + 1;
        while (vs < e && blank(*vs))
            vs++;
        free(vals[k]);
        vals[k] = xstrndup(vs, (size_t)(e - vs));
    }
    free(text);
    return 0;
}

static char *default_config_path(void) {
    const char *env = getenv("PERSONA_DESKTOP_CONFIG");
    if (env && *env)
        return xstrdup(env);
    env = getenv("XDG_CONFIG_HOME");
    if (env && *env)
        return xasprintf("%s/persona/desktop.conf", env);
    env = getenv("HOME");
    if (env && *env)
        return xasprintf("%s/.config/persona/desktop.conf", env);
    return NULL;
}

static int usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "persona-desktop: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'persona-desktop --help'.\n");
    return DESK_EXIT_USAGE;
}

static int parse_int(const char *s, const char *what, int lo, int hi, int *out) {
    uint64_t v;
    if (!s || core_parse_u64(s, strlen(s), &v) < 0 || v < (uint64_t)lo || v > (uint64_t)hi) {
        fprintf(stderr, "persona-desktop: %s must be a number from %d to %d, not '%s'\n"
                        "Try 'persona-desktop --help'.\n", what, lo, hi, s ? s : "");
        return -1;
    }
    *out = (int)v;
    return 0;
}

int desk_main(int argc, char **argv) {
    enum { O_SERVER = 0, O_TOKEN, O_OUT, O_VOICE, O_RATE, O_PITCH, O_VOLUME, O_STREAM, O_STATE,
           O_LOG, O_CONFIG, O_ONCE, O_NOSTREAM, O_HELP, O_VERSION };
    static const struct option longopts[] = {
        {"server", required_argument, NULL, O_SERVER}, {"token", required_argument, NULL, O_TOKEN},
        {"out-dir", required_argument, NULL, O_OUT},   {"voice", required_argument, NULL, O_VOICE},
        {"rate", required_argument, NULL, O_RATE},     {"pitch", required_argument, NULL, O_PITCH},
        {"volume", required_argument, NULL, O_VOLUME}, {"state", required_argument, NULL, O_STATE},
        {"log-level", required_argument, NULL, O_LOG}, {"config", required_argument, NULL, O_CONFIG},
        {"once", no_argument, NULL, O_ONCE},           {"no-stream", no_argument, NULL, O_NOSTREAM},
        {"help", no_argument, NULL, O_HELP},           {"version", no_argument, NULL, O_VERSION},
        {NULL, 0, NULL, 0},
    };
    char *flags[N_KEYS] = {0}, *file[N_KEYS] = {0}, *config = NULL;
    char *vals[N_KEYS] = {0}; /* borrowed from flags, env or file */
    bool once = false;
    int status = DESK_EXIT_USAGE, c;
    desk__opts_t o;
    memset(&o, 0, sizeof o);
    desk__state_t st;
    desk__state_init(&st);
    desk__worker_t *w = NULL;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
        if (c == 'h' || c == O_HELP) {
            fputs(usage_text, stdout);
            status = DESK_EXIT_OK;
            goto out;
        }
        if (c == 'V' || c == O_VERSION) {
            printf("persona-desktop %s\n", PERSONA_VERSION);
            status = DESK_EXIT_OK;
            goto out;
        }
        if (c == '?' || c == ':') {
            status = optopt ? usage("option needs a value or is unknown: '%s'", argv[optind - 1])
                            : usage("unknown option '%s'", argv[optind - 1]);
            goto out;
        }
        if (c == O_CONFIG) {
            free(config);
            config = xstrdup(optarg);
        } else if (c == O_ONCE)
            once = true;
        else if (c == O_NOSTREAM) {
            free(flags[O_STREAM]);
            flags[O_STREAM] = xstrdup("false");
        } else {
            free(flags[c]);
            flags[c] = xstrdup(optarg);
        }
    }
    if (optind < argc) {
        status = usage("unexpected argument '%s'", argv[optind]);
        goto out;
    }

    bool required = config != NULL;
    if (!config)
        config = default_config_path();
    if (config && load_config(config, required, file) < 0)
        goto out;
    for (int i = 0; i < N_KEYS; i++)
        vals[i] = flags[i] ? flags[i] : file[i];
    const char *env;
    if (!flags[O_SERVER] && (env = getenv("PERSONA_SERVER")) && *env)
        vals[O_SERVER] = (char *)env;
    if (!flags[O_TOKEN] && (env = getenv("PERSONA_TOKEN")) && *env)
        vals[O_TOKEN] = (char *)env;

    enum core_log_level lvl = CORE_LOG_INFO;
    if (vals[O_LOG] && core_log_parse_level(vals[O_LOG], &lvl) < 0) {
        status = usage("log level must be debug, info, warn or error, not '%s'", vals[O_LOG]);
        goto out;
    }
    core_log_set_level(lvl);
    if (!vals[O_SERVER] || !*vals[O_SERVER]) {
        status = usage("no server: give --server URL (or PERSONA_SERVER)");
        goto out;
    }
    if (!vals[O_TOKEN] || !*vals[O_TOKEN]) {
        status = usage("no token: give --token T (or PERSONA_TOKEN, or token in the config "
                           "file); `persona devices add NAME --kind desktop` makes one");
        goto out;
    }
    for (const char *t = vals[O_TOKEN]; *t; t++)
        if ((unsigned char)*t <= ' ' || *t == 0x7F) {
            status = usage("the token has spaces or control characters");
            goto out;
        }
    bool tls;
    char *h = NULL, *p = NULL;
    int port;
    if (desk__parse_url(vals[O_SERVER], &tls, &h, &port, &p) < 0) {
        status = usage("server URL '%s' must look like http(s)://HOST[:PORT] or ws(s)://…",
                       vals[O_SERVER]);
        goto out;
    }
    free(h);
    free(p);

    speech_config_default(&o.speech);
    if ((vals[O_RATE] && parse_int(vals[O_RATE], "--rate", SPEECH_RATE_MIN, SPEECH_RATE_MAX,
                                   &o.speech.rate) < 0) ||
        (vals[O_PITCH] && parse_int(vals[O_PITCH], "--pitch", 0, 99, &o.speech.pitch) < 0) ||
        (vals[O_VOLUME] && parse_int(vals[O_VOLUME], "--volume", 0, 200, &o.speech.volume) < 0))
        goto out;
    o.stream = true;
    if (vals[O_STREAM]) {
        if (strcmp(vals[O_STREAM], "false") == 0 || strcmp(vals[O_STREAM], "0") == 0 ||
            strcmp(vals[O_STREAM], "no") == 0)
            o.stream = false;
        else if (strcmp(vals[O_STREAM], "true") != 0 && strcmp(vals[O_STREAM], "1") != 0 &&
                 strcmp(vals[O_STREAM], "yes") != 0) {
            status = usage("stream must be true or false, not '%s'", vals[O_STREAM]);
            goto out;
        }
    }
    o.server = xstrdup(vals[O_SERVER]);
    o.token = xstrdup(vals[O_TOKEN]);
    o.voice = xstrdup(vals[O_VOICE] && *vals[O_VOICE] ? vals[O_VOICE] : SPEECH_DEFAULT_VOICE);
    /* The account's voice, for what was not set here (see src/desktop/voice.c). */
    desk_voice_t av;
    if (desk__fetch_voice(o.server, o.token, &av) == 0) {
        if (!(vals[O_VOICE] && *vals[O_VOICE])) {
            free(o.voice);
            o.voice = xstrdup(av.voice);
        }
        if (!vals[O_RATE])
            o.speech.rate = av.rate;
        if (!vals[O_PITCH])
            o.speech.pitch = av.pitch;
        if (!vals[O_VOLUME])
            o.speech.volume = av.volume;
        core_log(CORE_LOG_INFO, "desktop.voice",
                 "source=account voice=%s rate=%d pitch=%d volume=%d", o.voice, o.speech.rate,
                 o.speech.pitch, o.speech.volume);
    } else {
        core_log(CORE_LOG_WARN, "desktop.voice",
                 "source=local error=\"the account's voice could not be read from the server\"");
    }
    o.speech.voice = o.voice;
    o.out_dir = vals[O_OUT] && *vals[O_OUT] ? xstrdup(vals[O_OUT]) : NULL;
    o.state_path = vals[O_STATE] && *vals[O_STATE] ? xstrdup(vals[O_STATE])
                                                   : desk__state_default_path();
    o.once = once;
    if (!o.state_path) {
        status = usage("no state file: give --state FILE (or set HOME)");
        goto out;
    }

    /* from here on, failures are not usage errors */
    status = DESK_EXIT_FAIL;
    int rc = speech_init();
    if (rc == 0) {
        int16_t *none = NULL;
        size_t z = 0;
        rc = speech_synthesize(&o.speech, "", 0, &none, &z, NULL);
    }
    if (rc < 0) {
        fprintf(stderr, "persona-desktop: voice '%s': %s\n", o.voice, speech_strerror(rc));
        status = rc == SPEECH_EVOICE ? DESK_EXIT_USAGE : DESK_EXIT_FAIL;
        goto out;
    }
    char q[512];
    rc = desk__state_load(o.state_path, &st);
    if (rc < 0) {
        core_log(CORE_LOG_ERROR, "desktop.state", "status=error path=%s error=\"%s\" hint=\"%s\"",
                 core_log_quote(o.state_path, q, sizeof q),
                 rc == -EINVAL ? "damaged state file" : core_strerror(rc),
                 "remove it to start over (answers still kept by the server are spoken again)");
        goto out;
    }
    /* A desktop without a state file starts with the answers that come from now on, rather
     * than speaking the account's whole retained history. */
    int64_t start_seq = access(o.state_path, F_OK) != 0 && errno == ENOENT ? -1 : st.seq;
    core_log(CORE_LOG_INFO, "desktop.start", "version=%s server=%s after=%lld out_dir=%s once=%d",
             PERSONA_VERSION, vals[O_SERVER], (long long)start_seq,
             o.out_dir ? core_log_quote(o.out_dir, q, sizeof q) : "-", o.once ? 1 : 0);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* the worker wakes the WebSocket loop when there is something to ack */
    rc = desk__worker_start(&o, &st, desk__client_notify, NULL, &w);
    if (rc < 0) {
        core_log(CORE_LOG_ERROR, "desktop.start", "status=error error=\"%s\"", core_strerror(rc));
        goto out;
    }
    status = desk__client_run(&o, w, start_seq, &g_stop);
    desk__worker_stop(&w);
    core_log(CORE_LOG_INFO, "desktop.exit", "status=%d", status);
out:
    desk__worker_stop(&w);
    desk__state_destroy(&st);
    for (int i = 0; i < N_KEYS; i++) {
        free(flags[i]);
        free(file[i]);
    }
    free(config);
    free(o.server);
    free(o.token);
    free(o.voice);
    free(o.out_dir);
    free(o.state_path);
    speech_shutdown();
    return status;
}
