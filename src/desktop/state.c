/* desktop state: the state file — the last seq handled for good and the answers still open
 * after it (see the invariants in internal.h). Text, one `key = value` per line:
 *     seq = 42
 *     answer = <qid> <spoken bytes> <done 0|1> <first seq> <last seq>
 * Saved atomically (temporary file, fsync, rename, folder fsync) by the worker thread. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "desktop/internal.h"

void desk__state_init(desk__state_t *st) { memset(st, 0, sizeof *st); }

void desk__state_destroy(desk__state_t *st) {
    free(st->recs);
    desk__state_init(st);
}

desk__qrec_t *desk__state_find(desk__state_t *st, const char *qid) {
    for (size_t i = 0; i < st->n; i++)
        if (strcmp(st->recs[i].qid, qid) == 0)
            return &st->recs[i];
    return NULL;
}

desk__qrec_t *desk__state_get(desk__state_t *st, const char *qid, int64_t seq) {
    desk__qrec_t *r = desk__state_find(st, qid);
    if (r)
        return r;
    st->recs = xrealloc(st->recs, (st->n + 1) * sizeof *st->recs);
    r = &st->recs[st->n++];
    memset(r, 0, sizeof *r);
    snprintf(r->qid, sizeof r->qid, "%s", qid);
    r->first_seq = r->last_seq = seq;
    return r;
}

bool desk__state_advance(desk__state_t *st, int64_t handled) {
    int64_t target = handled;
    for (size_t i = 0; i < st->n; i++)
        if (!st->recs[i].done && st->recs[i].first_seq - 1 < target)
            target = st->recs[i].first_seq - 1;
    bool changed = false;
    if (target > st->seq) {
        st->seq = target;
        changed = true;
    }
    size_t o = 0;
    for (size_t i = 0; i < st->n; i++) {
        desk__qrec_t *r = &st->recs[i];
        if (r->done && r->last_seq <= st->seq) {
            changed = true;
            continue;
        }
        st->recs[o++] = *r;
    }
    st->n = o;
    return changed;
}

bool desk__state_check(const desk__state_t *st) {
    if (st->seq < 0)
        return false;
    for (size_t i = 0; i < st->n; i++) {
        const desk__qrec_t *r = &st->recs[i];
        if (!r->qid[0] || r->first_seq <= 0 || r->last_seq < r->first_seq)
            return false;
        if (r->first_seq <= st->seq && r->last_seq <= st->seq)
            return false;
        for (size_t j = i + 1; j < st->n; j++)
            if (strcmp(r->qid, st->recs[j].qid) == 0)
                return false;
    }
    return true;
}

char *desk__state_format(const desk__state_t *st) {
    core_buf_t b;
    core_buf_init(&b);
    core_buf_puts(&b, "# persona-desktop state: events up to seq are spoken; do not edit while it "
                      "runs\n");
    core_buf_printf(&b, "seq = %" PRId64 "\n", st->seq);
    for (size_t i = 0; i < st->n; i++) {
        const desk__qrec_t *r = &st->recs[i];
        core_buf_printf(&b, "answer = %s %zu %d %" PRId64 " %" PRId64 "\n", r->qid, r->spoken,
                        r->done ? 1 : 0, r->first_seq, r->last_seq);
    }
    return core_buf_steal(&b);
}

static int parse_i64(const char *s, int64_t *out) {
    uint64_t v;
    if (core_parse_u64(s, strlen(s), &v) < 0)
        return -EINVAL;
    *out = (int64_t)v;
    return 0;
}

int desk__state_parse(const char *text, desk__state_t *st) {
    desk__state_t tmp;
    desk__state_init(&tmp);
    char *copy = xstrdup(text), *save = NULL;
    int rc = 0;
    bool have_seq = false;
    /* strtok_r skips empty lines, which is what we want here */
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        while (*line == ' ' || *line == '\t')
            line++;
        if (!*line || *line == '#' || *line == '\r')
            continue;
        char key[16], a[DESK__QID_MAX], b[24], c[4], d[24], e[24], extra[2];
        if (sscanf(line, "seq = %23s %1s", b, extra) == 1) {
            if (parse_i64(b, &tmp.seq) < 0)
                goto bad;
            have_seq = true;
        } else if (sscanf(line, "%15s = %63s %23s %3s %23s %23s %1s", key, a, b, c, d, e, extra) ==
                       6 &&
                   strcmp(key, "answer") == 0) {
            int64_t spoken, first, last;
            if (parse_i64(b, &spoken) < 0 || parse_i64(d, &first) < 0 || parse_i64(e, &last) < 0 ||
                (strcmp(c, "0") != 0 && strcmp(c, "1") != 0) || desk__state_find(&tmp, a))
                goto bad;
            desk__qrec_t *r = desk__state_get(&tmp, a, first);
            r->spoken = (size_t)spoken;
            r->done = c[0] == '1';
            r->last_seq = last;
        } else
            goto bad;
    }
    if (!have_seq || !desk__state_check(&tmp))
        goto bad;
    desk__state_destroy(st);
    *st = tmp;
    free(copy);
    return 0;
bad:
    rc = -EINVAL;
    desk__state_destroy(&tmp);
    free(copy);
    return rc;
}

int desk__state_load(const char *path, desk__state_t *st) {
    char *text = NULL;
    size_t len = 0;
    int rc = core_read_file(path, DESK__MAX_STATE, &text, &len);
    if (rc == -ENOENT) {
        desk__state_destroy(st);
        return 0;
    }
    if (rc < 0)
        return rc;
    rc = strlen(text) == len ? desk__state_parse(text, st) : -EINVAL;
    free(text);
    return rc;
}

int desk__state_save(const char *path, const desk__state_t *st) {
    char *text = desk__state_format(st);
    core_chunk_t chunk = {text, strlen(text)};
    char *dir = xstrdup(path), *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = '\0';
    int rc = core_mkdirs(slash ? dir : ".");
    if (rc == 0)
        rc = core_write_file_atomic(path, &chunk, 1, 0600);
    free(dir);
    free(text);
    return rc;
}

char *desk__state_default_path(void) {
    const char *env = getenv("XDG_STATE_HOME");
    if (env && *env)
        return xasprintf("%s/persona/desktop-state", env);
    env = getenv("HOME");
    if (env && *env)
        return xasprintf("%s/.local/state/persona/desktop-state", env);
    return NULL;
}
