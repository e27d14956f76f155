/* core/util.c: time, text (UTF-8 validation, strict number parsing, hex) and file helpers. */
#include "core/core.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int64_t core_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t core_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void core_iso8601(int64_t ms, char out[32])
{
    /* Floor division, so times before the epoch get a positive millisecond field. */
    int64_t sec = ms / 1000, frac = ms % 1000;
    if (frac < 0) {
        frac += 1000;
        sec--;
    }
    time_t s = (time_t)sec;
    struct tm tm = {0}; /* stays zero if gmtime_r fails on an absurd year */
    gmtime_r(&s, &tm);
    /* Fields are clamped to their ranges so the result always fits in 32 bytes. */
    snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (tm.tm_year + 1900) % 10000,
             (tm.tm_mon + 1) % 100, tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
             tm.tm_sec % 100, (int)frac);
}

bool core_utf8_valid(const void *buf, size_t len)
{
    const unsigned char *s = buf;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i <= n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n + 1;
    }
    return true;
}

int core_parse_u64(const char *s, size_t len, uint64_t *out)
{
    if (!s || len == 0 || len > 19)
        return len > 19 ? -ERANGE : -EINVAL;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > (uint64_t)INT64_MAX)
        return -ERANGE;
    *out = v;
    return 0;
}

int core_parse_size(const char *s, uint64_t *out)
{
    size_t len = strlen(s);
    uint64_t mult = 1;
    if (len > 0) {
        switch (s[len - 1]) {
        case 'k': case 'K': mult = 1ULL << 10; len--; break;
        case 'm': case 'M': mult = 1ULL << 20; len--; break;
        case 'g': case 'G': mult = 1ULL << 30; len--; break;
        case 't': case 'T': mult = 1ULL << 40; len--; break;
        default: break;
        }
    }
    uint64_t v;
    int rc = core_parse_u64(s, len, &v);
    if (rc < 0)
        return -EINVAL;
    if (v > (uint64_t)INT64_MAX / mult)
        return -EINVAL;
    *out = v * mult;
    return 0;
}

void core_hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

int core_mkdirs(const char *path)
{
    char tmp[PATH_MAX];
    if (!*path)
        return -ENOENT;
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
        return -ENAMETOOLONG;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
        return -errno;
    struct stat st;
    if (stat(tmp, &st) < 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

int core_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

int core_read_file(const char *path, size_t max, char **out, size_t *len)
{
    int rc = 0;
    char *data = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto out;
    }
    if ((uint64_t)st.st_size > max) {
        rc = -EFBIG;
        goto out;
    }
    data = malloc((size_t)st.st_size + 1);
    if (!data) {
        rc = -ENOMEM;
        goto out;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, data + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            goto out;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    data[got] = '\0';
    *out = data;
    data = NULL;
    if (len)
        *len = got;
out:
    free(data);
    close(fd);
    return rc;
}

int core_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int core_write_file_atomic(const char *path, const core_chunk_t *chunks, size_t n, unsigned mode)
{
    int rc = 0, fd = -1;
    char *tmp = NULL;
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        dir[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        strcpy(dir, ".");
    tmp = xasprintf("%s.tmp-XXXXXX", path);
    if ((fd = mkstemp(tmp)) < 0) { /* mkstemp creates with mode 0600 */
        rc = -errno;
        xfree(&tmp);
        goto out;
    }
    if (fchmod(fd, (mode_t)mode) < 0) {
        rc = -errno;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (chunks[i].len && (rc = core_write_all(fd, chunks[i].data, chunks[i].len)) < 0)
            goto out;
    if (fsync(fd) < 0) {
        rc = -errno;
        goto out;
    }
    rc = close(fd) < 0 ? -errno : 0;
    fd = -1;
    if (rc < 0)
        goto out;
    if (rename(tmp, path) < 0) {
        rc = -errno;
        goto out;
    }
    xfree(&tmp); /* renamed: nothing left to remove */
    (void)core_fsync_dir(dir);
out:
    if (fd >= 0)
        close(fd);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    free(dir);
    return rc;
}

uint64_t core_fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}
