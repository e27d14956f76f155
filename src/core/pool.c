/* core/pool.c: a fixed-size thread pool over one FIFO of tasks.
 *
 * States: running -> stopping (core_pool_free called: no new submissions, queued tasks still
 * run) -> joined. Tasks never run on the submitting thread. */
#include "core/core.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct pool_task {
    core_task_fn fn;
    void *arg;
    struct pool_task *next;
} pool_task_t;

struct core_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pool_task_t *head, *tail;
    bool stopping;
    int nthreads;
    pthread_t *threads;
    char name[16];
};

static void *pool_thread(void *arg)
{
    core_pool_t *pool = arg;
    for (;;) {
        pthread_mutex_lock(&pool->mu);
        while (!pool->head && !pool->stopping)
            pthread_cond_wait(&pool->cv, &pool->mu);
        pool_task_t *t = pool->head;
        if (!t) {
            pthread_mutex_unlock(&pool->mu);
            return NULL;
        }
        pool->head = t->next;
        if (!pool->head)
            pool->tail = NULL;
        pthread_mutex_unlock(&pool->mu);
        t->fn(t->arg);
        free(t);
    }
}

core_pool_t *core_pool_new(int nthreads, const char *name)
{
    if (nthreads < 1)
        nthreads = 1;
    core_pool_t *pool = xcalloc(1, sizeof *pool);
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->cv, NULL);
    snprintf(pool->name, sizeof pool->name, "%s", name ? name : "pool");
    pool->threads = xcalloc((size_t)nthreads, sizeof *pool->threads);
    for (int i = 0; i < nthreads; i++) {
        if (pthread_create(&pool->threads[i], NULL, pool_thread, pool) != 0)
            break;
        char tname[32];
        snprintf(tname, sizeof tname, "%.10s-%d", pool->name, i & 0xff);
        tname[15] = 0;
        pthread_setname_np(pool->threads[i], tname);
        pool->nthreads++;
    }
    if (pool->nthreads == 0) {
        core_pool_free(&pool);
        return NULL;
    }
    return pool;
}

int core_pool_submit(core_pool_t *pool, core_task_fn fn, void *arg)
{
    pool_task_t *t = xmalloc(sizeof *t);
    t->fn = fn;
    t->arg = arg;
    t->next = NULL;
    pthread_mutex_lock(&pool->mu);
    if (pool->stopping) {
        pthread_mutex_unlock(&pool->mu);
        free(t);
        return -ESHUTDOWN;
    }
    if (pool->tail)
        pool->tail->next = t;
    else
        pool->head = t;
    pool->tail = t;
    pthread_cond_signal(&pool->cv);
    pthread_mutex_unlock(&pool->mu);
    return 0;
}

void core_pool_free(core_pool_t **pp)
{
    core_pool_t *pool = pp ? *pp : NULL;
    if (!pool)
        return;
    pthread_mutex_lock(&pool->mu);
    pool->stopping = true;
    pthread_cond_broadcast(&pool->cv);
    pthread_mutex_unlock(&pool->mu);
    for (int i = 0; i < pool->nthreads; i++)
        pthread_join(pool->threads[i], NULL);
    pthread_mutex_destroy(&pool->mu);
    pthread_cond_destroy(&pool->cv);
    free(pool->threads);
    free(pool);
    *pp = NULL;
}

int core_pool_size(const core_pool_t *pool)
{
    return pool->nthreads;
}

int core_ncpu(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}
