/* cli util: the option parser every command uses, id parsing, usage errors, and the small
 * formatting helpers of the human-readable output (sizes, times, sanitised strings, JSON
 * accessors), plus the extension → kind/MIME table of uploads. */
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cli/internal.h"

/* ======================================================================================
 * options
 * ====================================================================================== */

static const cli__opt_t *find_long(const cli__opt_t *opts, const char *name, size_t len) {
    for (const cli__opt_t *o = opts; o && o->name; o++)
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
            return o;
    return NULL;
}

static const cli__opt_t *find_short(const cli__opt_t *opts, char c) {
    for (const cli__opt_t *o = opts; o && o->name; o++)
        if (o->short_name && o->short_name == c)
            return o;
    return NULL;
}

int cli__parse_opts(const char *cmd, int argc, char **argv, const cli__opt_t *opts,
                    bool stop_at_positional, char **pos, int *npos) {
    *npos = 0;
    bool only_pos = false;
    for (int i = 0; i < argc; i++) {
        char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] == '\0') {
            pos[(*npos)++] = a;
            if (stop_at_positional)
                only_pos = true;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = true;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            return CLI__HELP;

        const cli__opt_t *o;
        const char *inline_val = NULL;
        if (a[1] == '-') {
            const char *name = a + 2;
            const char *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            o = find_long(opts, name, len);
            if (!o) {
                cli__usage_error(cmd, "unknown option '--%.*s'", (int)len, name);
                return -EINVAL;
            }
            if (eq)
                inline_val = eq + 1;
        } else {
            o = find_short(opts, a[1]);
            if (!o) {
                cli__usage_error(cmd, "unknown option '-%c'", a[1]);
                return -EINVAL;
            }
            if (a[2])
                inline_val = a + 2;
        }
        if (o->kind == CLI__FLAG) {
            if (inline_val) {
                cli__usage_error(cmd, "option '--%s' takes no value", o->name);
                return -EINVAL;
            }
            *(bool *)o->out = true;
            continue;
        }
        if (!inline_val) {
            if (i + 1 >= argc) {
                cli__usage_error(cmd, "option '--%s' needs a value", o->name);
                return -EINVAL;
            }
            inline_val = argv[++i];
        }
        *(const char **)o->out = inline_val;
    }
    return 0;
}

int cli__parse_id(const char *s, const char *what, uint64_t *out) {
    uint64_t v = 0;
    if (!s || core_parse_u64(s, strlen(s), &v) < 0 || v == 0) {
        fprintf(stderr, "persona: '%s' is not a valid %s (a positive number)\n", s ? s : "",
                what);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

int cli__usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("persona: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (cmd && *cmd)
        fprintf(stderr, "\nTry 'persona %s --help'.\n", cmd);
    else
        fputs("\nTry 'persona --help'.\n", stderr);
    return CLI_EXIT_USAGE;
}

/* ======================================================================================
 * output
 * ====================================================================================== */

void cli__print_json(const json_t *j) {
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s) {
        puts(s);
        free(s);
    }
    fflush(stdout);
}

const char *cli__human_size(uint64_t n, char *out, size_t cap) {
    static const char *units[] = {"B", "kB", "MB", "GB", "TB"};
    if (n < 1000) {
        snprintf(out, cap, "%llu B", (unsigned long long)n);
        return out;
    }
    double v = (double)n;
    int u = 0;
    while (v >= 1000.0 && u < 4) {
        v /= 1000.0;
        u++;
    }
    snprintf(out, cap, v < 10 ? "%.1f %s" : "%.0f %s", v, units[u]);
    return out;
}

const char *cli__human_time(int64_t ms, char *out, size_t cap) {
    if (ms <= 0) {
        snprintf(out, cap, "-");
        return out;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!localtime_r(&t, &tm) || strftime(out, cap, "%Y-%m-%d %H:%M", &tm) == 0)
        snprintf(out, cap, "%lld", (long long)ms);
    return out;
}

const char *cli__clean(const char *s, size_t width, char *out, size_t cap) {
    size_t o = 0, chars = 0;
    if (cap == 0)
        return out;
    for (const unsigned char *p = (const unsigned char *)s; p && *p && o + 5 < cap; p++) {
        bool lead = (*p & 0xC0) != 0x80; /* count characters, not UTF-8 continuation bytes */
        if (lead && width && chars == width) {
            if (o > 0 && width > 1) {
                /* back off the last character to make room for the cut mark */
                do
                    o--;
                while (o > 0 && ((unsigned char)out[o] & 0xC0) == 0x80);
            }
            out[o++] = '~';
            break;
        }
        if (lead)
            chars++;
        out[o++] = (*p < 0x20 || *p == 0x7f) ? '?' : (char)*p;
    }
    out[o] = '\0';
    return out;
}

const char *cli__jstr(const json_t *o, const char *key, const char *dflt) {
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : dflt;
}

int64_t cli__jint(const json_t *o, const char *key, int64_t dflt) {
    json_t *v = json_object_get(o, key);
    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    if (json_is_real(v))
        return (int64_t)json_real_value(v);
    return dflt;
}

/* ======================================================================================
 * kinds
 * ====================================================================================== */

static const struct {
    const char *ext, *kind, *mime;
} kinds[] = {
    {"mp4", "video", "video/mp4"},        {"mov", "video", "video/quicktime"},
    {"mkv", "video", "video/x-matroska"}, {"webm", "video", "video/webm"},
    {"avi", "video", "video/x-msvideo"},  {"m4a", "audio", "audio/mp4"},
    {"mp3", "audio", "audio/mpeg"},       {"wav", "audio", "audio/wav"},
    {"ogg", "audio", "audio/ogg"},        {"opus", "audio", "audio/opus"},
    {"flac", "audio", "audio/flac"},      {"aac", "audio", "audio/aac"},
    {"png", "image", "image/png"},        {"jpg", "image", "image/jpeg"},
    {"jpeg", "image", "image/jpeg"},      {"webp", "image", "image/webp"},
    {"gif", "image", "image/gif"},        {"bmp", "image", "image/bmp"},
    {"txt", "text", "text/plain; charset=utf-8"},
    {"md", "text", "text/markdown; charset=utf-8"},
};

int cli__guess_kind(const char *filename, const char **kind, const char **mime) {
    const char *base = strrchr(filename, '/');
    base = base ? base + 1 : filename;
    const char *dot = strrchr(base, '.');
    if (!dot || dot == base || !dot[1])
        return -ENOENT;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (strcasecmp(dot + 1, kinds[i].ext) == 0) {
            *kind = kinds[i].kind;
            *mime = kinds[i].mime;
            return 0;
        }
    }
    return -ENOENT;
}

const char *cli__ext_for_mime(const char *mime) {
    if (!mime)
        return NULL;
    size_t n = strcspn(mime, ";");
    while (n > 0 && mime[n - 1] == ' ')
        n--;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        size_t m = strcspn(kinds[i].mime, ";");
        if (m == n && strncasecmp(mime, kinds[i].mime, n) == 0)
            return kinds[i].ext;
    }
    return NULL;
}

bool cli__valid_kind(const char *kind) {
    return kind && (strcmp(kind, "video") == 0 || strcmp(kind, "audio") == 0 ||
                    strcmp(kind, "image") == 0 || strcmp(kind, "text") == 0);
}
