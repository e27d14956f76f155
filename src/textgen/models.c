/* textgen/models.c: the model cache. Models are NAME.gguf files in the models folder, loaded
 * (mmapped by src/llm) the first time a request names them and shared by every generation using
 * them. At most max_models stay loaded: loading one more unloads the least recently used model
 * that no generation holds. A file replaced on disk (new mtime) is loaded anew for new requests;
 * the old copy goes when its last user lets go. Runs on handler threads and the scheduler; one
 * mutex, never held while loading. */
#include "textgen/internal.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void tg__models_init(tg_models_t *c, const char *dir, int max)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    c->dir = xstrdup(dir);
    c->max = max > 0 ? max : 4;
}

static void model_free(tg_model_t *m)
{
    if (!m)
        return;
    llm_free(&m->model);
    free(m);
}

void tg__models_destroy(tg_models_t *c)
{
    for (int i = 0; i < c->n; i++)
        model_free(c->m[i]);
    free(c->m);
    free(c->dir);
    pthread_mutex_destroy(&c->mu);
    memset(c, 0, sizeof *c);
}

static int64_t file_mtime_ns(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
        return -1;
    return (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
}

static void remove_at(tg_models_t *c, int i)
{
    c->m[i] = c->m[--c->n];
}

/* Under mu: unloads idle models until there is room for one more. Returns the models taken out
 * (freed by the caller outside the lock). */
static int evict_locked(tg_models_t *c, tg_model_t **gone, int cap)
{
    int n_gone = 0;
    while (c->n >= c->max && n_gone < cap) {
        int lru = -1;
        for (int i = 0; i < c->n; i++)
            if (c->m[i]->refs == 0 && (lru < 0 || c->m[i]->last_used_ms < c->m[lru]->last_used_ms))
                lru = i;
        if (lru < 0)
            break; /* all in use: the cache grows past max until they are released */
        gone[n_gone++] = c->m[lru];
        remove_at(c, lru);
    }
    return n_gone;
}

int tg__models_acquire(tg_models_t *c, const char *name, tg_model_t **out, tg_error_t *err)
{
    *out = NULL;
    if (!tg_model_name_valid(name)) {
        tg_error_set(err, 404, "model_not_found", "The model '%.128s' does not exist.", name);
        return -1;
    }
    char *path = xasprintf("%s/%s.gguf", c->dir, name);
    int64_t mtime = file_mtime_ns(path);
    int rc = -1;
    if (mtime < 0) {
        tg_error_set(err, 404, "model_not_found", "The model '%s' does not exist.", name);
        goto out;
    }
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < c->n; i++) {
        tg_model_t *m = c->m[i];
        if (strcmp(m->name, name) != 0 || m->stale)
            continue;
        if (m->mtime_ns != mtime) {
            m->stale = true;
            if (m->refs == 0) {
                remove_at(c, i);
                model_free(m);
            }
            break;
        }
        m->refs++;
        m->last_used_ms = core_now_ms();
        *out = m;
        pthread_mutex_unlock(&c->mu);
        rc = 0;
        goto out;
    }
    pthread_mutex_unlock(&c->mu);

    /* Loading maps and checks the file: done outside the lock so other models stay usable. Two
     * requests for the same new model may both load it; the second copy is dropped. */
    char lerr[256] = "";
    llm_model_t *model = NULL;
    int64_t t0 = core_mono_ns();
    if (llm_load(path, &model, lerr, sizeof lerr) < 0) {
        core_log(CORE_LOG_ERROR, "model.load", "model=%s error=\"%s\"", name, lerr);
        tg_error_set(err, 500, "model_load_failed", "The model '%s' could not be loaded: %s", name,
                     lerr);
        goto out;
    }
    core_log(CORE_LOG_INFO, "model.load", "model=%s ms=%.1f", name,
             (double)(core_mono_ns() - t0) / 1e6);
    tg_model_t *gone[8];
    int n_gone;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < c->n; i++) {
        tg_model_t *m = c->m[i];
        if (!strcmp(m->name, name) && !m->stale && m->mtime_ns == mtime) {
            m->refs++;
            m->last_used_ms = core_now_ms();
            *out = m;
            break;
        }
    }
    if (*out) {
        pthread_mutex_unlock(&c->mu);
        llm_free(&model);
        rc = 0;
        goto out;
    }
    n_gone = evict_locked(c, gone, 8);
    tg_model_t *m = xcalloc(1, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", name);
    m->model = model;
    m->refs = 1;
    m->last_used_ms = core_now_ms();
    m->mtime_ns = mtime;
    c->m = xrealloc(c->m, (size_t)(c->n + 1) * sizeof *c->m);
    c->m[c->n++] = m;
    pthread_mutex_unlock(&c->mu);
    for (int i = 0; i < n_gone; i++) {
        core_log(CORE_LOG_INFO, "model.unload", "model=%s", gone[i]->name);
        model_free(gone[i]);
    }
    *out = m;
    rc = 0;
out:
    free(path);
    return rc;
}

void tg__models_release(tg_models_t *c, tg_model_t *m)
{
    if (!m)
        return;
    bool free_it = false;
    pthread_mutex_lock(&c->mu);
    m->refs--;
    m->last_used_ms = core_now_ms();
    if (m->refs == 0 && (m->stale || c->n > c->max)) {
        for (int i = 0; i < c->n; i++)
            if (c->m[i] == m) {
                remove_at(c, i);
                free_it = true;
                break;
            }
    }
    pthread_mutex_unlock(&c->mu);
    if (free_it)
        model_free(m);
}

void tg__models_sweep(tg_models_t *c, int64_t idle_ms)
{
    tg_model_t *gone[16];
    int n_gone = 0;
    int64_t now = core_now_ms();
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < c->n && n_gone < 16;) {
        tg_model_t *m = c->m[i];
        if (m->refs == 0 && now - m->last_used_ms >= idle_ms) {
            gone[n_gone++] = m;
            remove_at(c, i);
        } else {
            i++;
        }
    }
    pthread_mutex_unlock(&c->mu);
    for (int i = 0; i < n_gone; i++) {
        core_log(CORE_LOG_INFO, "model.unload", "model=%s reason=idle", gone[i]->name);
        model_free(gone[i]);
    }
}

json_t *tg__models_list(tg_models_t *c)
{
    json_t *data = json_array();
    DIR *d = opendir(c->dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n <= 5 || strcmp(e->d_name + n - 5, ".gguf") != 0)
            continue;
        char name[TG_MAX_MODEL_NAME + 1];
        if (n - 5 > TG_MAX_MODEL_NAME)
            continue;
        memcpy(name, e->d_name, n - 5);
        name[n - 5] = '\0';
        if (!tg_model_name_valid(name))
            continue;
        char *path = xasprintf("%s/%s", c->dir, e->d_name);
        struct stat st;
        int ok = stat(path, &st) == 0 && S_ISREG(st.st_mode);
        free(path);
        if (!ok)
            continue;
        json_array_append_new(data, json_pack("{s:s, s:s, s:I, s:s}", "id", name, "object",
                                              "model", "created", (json_int_t)st.st_mtim.tv_sec,
                                              "owned_by", "persona"));
        if (json_array_size(data) >= 10000)
            break;
    }
    if (d)
        closedir(d);
    return json_pack("{s:s, s:o}", "object", "list", "data", data);
}
