/* core/log.c: key=value log lines on stderr, one write(2) per line so lines from different
 * threads never interleave. Also core_strerror, which names our error codes. */
#include "core/core.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static _Atomic int log_level = CORE_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void core_log_set_level(enum core_log_level level)
{
    log_level = level;
}

int core_log_parse_level(const char *s, enum core_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum core_log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

void core_log(enum core_log_level level, const char *event, const char *fmt, ...)
{
    if ((int)level < log_level)
        return;
    char line[2048];
    char ts[32];
    core_iso8601(core_now_ms(), ts);
    int n = snprintf(line, sizeof line, "ts=%s level=%s event=%s", ts, level_names[level], event);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    if (fmt && *fmt && len < sizeof line - 2) {
        line[len++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + len, sizeof line - len, fmt, ap);
        va_end(ap);
        if (m > 0)
            len += (size_t)m < sizeof line - len ? (size_t)m : sizeof line - len - 1;
    }
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w; /* nowhere left to report a failed log write */
}

const char *core_log_quote(const char *s, char *out, size_t cap)
{
    if (cap == 0)
        return out;
    if (!s)
        s = "";
    bool plain = *s != '\0';
    for (const char *p = s; *p && plain; p++)
        if (*p == ' ' || *p == '"' || *p == '=' || (unsigned char)*p < 0x20)
            plain = false;
    if (plain) {
        snprintf(out, cap, "%s", s);
        return out;
    }
    if (cap < 3) { /* not even "" fits */
        out[0] = '\0';
        return out;
    }
    size_t o = 0;
    out[o++] = '"';
    for (const char *p = s; *p && o + 3 < cap; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20) {
            out[o++] = ' ';
        } else {
            out[o++] = (char)c;
        }
    }
    if (o + 1 < cap)
        out[o++] = '"';
    out[o] = '\0';
    return out;
}

const char *core_strerror(int err)
{
    switch (err) {
    case 0: return "success";
    case CORE_EBADMEDIA: return "not media of the expected kind";
    case CORE_EDECODE: return "media decoding failed";
    case CORE_ESQL: return "database error";
    case CORE_EUTF8: return "text is not valid UTF-8";
    case CORE_ELIMIT: return "a size limit was exceeded";
    default: break;
    }
    if (err < 0 && err > -4096)
        return strerror(-err);
    return "unknown error";
}
