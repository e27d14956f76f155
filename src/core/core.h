/* core: the small things every module shares — allocation that aborts on exhaustion, growable
 * buffers, error codes and their messages, key=value logging on stderr, a thread pool, UTF-8
 * validation, time and file helpers. No module-specific knowledge lives here.
 *
 * Errors: functions return 0 or a negative code: a negative errno, or one of the CORE_E* codes
 * below. core_strerror() names either. */
#ifndef PERSONA_CORE_H
#define PERSONA_CORE_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- error codes (negative; below the errno range) ---- */
enum {
    CORE_EBADMEDIA = -10001, /* content is not media of the declared kind */
    CORE_EDECODE = -10002,   /* media decoding failed part way */
    CORE_ESQL = -10003,      /* database error */
    CORE_EUTF8 = -10004,     /* text is not valid UTF-8 */
    CORE_ELIMIT = -10005,    /* a configured limit was exceeded */
};
/* Returns a static string describing err (a negative errno or a CORE_E* code). */
const char *core_strerror(int err);

/* ---- memory: small allocations abort on exhaustion; size-by-input allocations must not use
 * these (use malloc and return -ENOMEM). ---- */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);            /* NULL in, NULL out */
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Frees *p and sets it to NULL; NULL-safe. */
void xfree(void *pp);

/* ---- growable byte buffer, always NUL-terminated ---- */
typedef struct core_buf {
    char *data;
    size_t len;
    size_t cap;
} core_buf_t;
void core_buf_init(core_buf_t *b);
void core_buf_destroy(core_buf_t *b);
void core_buf_reset(core_buf_t *b);
void core_buf_append(core_buf_t *b, const void *p, size_t n);
void core_buf_puts(core_buf_t *b, const char *s);
void core_buf_printf(core_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the data to the caller (free() it) and leaves b empty. */
char *core_buf_steal(core_buf_t *b);

/* ---- logging: one line per event on stderr: ts=... level=... event=... then key=value ---- */
enum core_log_level { CORE_LOG_DEBUG, CORE_LOG_INFO, CORE_LOG_WARN, CORE_LOG_ERROR };
void core_log_set_level(enum core_log_level level);
/* Parses "debug|info|warn|error"; returns 0 or -EINVAL. */
int core_log_parse_level(const char *s, enum core_log_level *out);
/* fmt gives the key=value pairs after event; values with spaces should be quoted by the caller
 * with core_log_quote. */
void core_log(enum core_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Writes s into out as a log value: bare if it has no space/quote/=, else "quoted\"escaped";
 * truncated to fit cap. Returns out. */
const char *core_log_quote(const char *s, char *out, size_t cap);

/* ---- time ---- */
int64_t core_now_ms(void);       /* wall clock, ms since the epoch */
int64_t core_mono_ns(void);      /* monotonic clock, ns */
void core_iso8601(int64_t ms, char out[32]); /* 2026-11-25T22:58:32.123Z */

/* ---- thread pool: fixed threads over one FIFO. ---- */
typedef struct core_pool core_pool_t;
typedef void (*core_task_fn)(void *arg);
/* Starts nthreads threads named name-N. Returns NULL on failure to start any thread. */
core_pool_t *core_pool_new(int nthreads, const char *name);
/* Queues fn(arg). Thread-safe. Returns 0, or -ESHUTDOWN once the pool is stopping. */
int core_pool_submit(core_pool_t *pool, core_task_fn fn, void *arg);
/* Runs every queued task, joins the threads and frees the pool; NULL-safe. */
void core_pool_free(core_pool_t **pool);
int core_pool_size(const core_pool_t *pool);
/* Number of online CPUs, at least 1. */
int core_ncpu(void);

/* ---- text ---- */
/* True if buf[0..len) is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF) and has no
 * NUL byte. */
bool core_utf8_valid(const void *buf, size_t len);

/* ---- hashing ---- */
#define CORE_FNV1A_INIT 0xcbf29ce484222325ULL
/* FNV-1a of n bytes continuing from h (start with CORE_FNV1A_INIT): a stable, non-cryptographic
 * fingerprint (file and run identities, hash tables). */
uint64_t core_fnv1a(uint64_t h, const void *p, size_t n);
/* Strict decimal parse of an unsigned 63-bit integer: digits only, no sign, no spaces, no
 * overflow. Returns 0 or -EINVAL / -ERANGE. */
int core_parse_u64(const char *s, size_t len, uint64_t *out);
/* Parses "123", "64K", "10M", "2G" (powers of 1024). Returns 0 or -EINVAL. */
int core_parse_size(const char *s, uint64_t *out);
/* Lowercase hex of n bytes into out (2n+1 chars). */
void core_hex(const uint8_t *in, size_t n, char *out);

/* ---- files ---- */
/* mkdir -p with mode 0700 for created components. Returns 0 or -errno. */
int core_mkdirs(const char *path);
/* fsync a directory so a rename inside it is durable. */
int core_fsync_dir(const char *dir);
/* One piece of a file written by core_write_file_atomic. */
typedef struct core_chunk {
    const void *data;
    size_t len;
} core_chunk_t;
/* Writes the chunks, in order, to path so that readers see the old file or the whole new one,
 * never a part: a temp file beside path with the given mode, fsync, rename, fsync of the folder.
 * The folder must exist (-ENOENT otherwise). Returns 0 or -errno; on failure path is untouched and
 * no temp file is left. */
int core_write_file_atomic(const char *path, const core_chunk_t *chunks, size_t n, unsigned mode);
/* write(2) until all n bytes are written (EINTR retried). Returns 0 or -errno. */
int core_write_all(int fd, const void *p, size_t n);
/* Reads a whole file of at most max bytes into a NUL-terminated malloc'd buffer. Returns 0,
 * -errno, or -EFBIG when larger than max. */
int core_read_file(const char *path, size_t max, char **out, size_t *len);

#endif
