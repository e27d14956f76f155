/* nn pool: the thread pool of the kernels. The caller of nn_pool_run is thread 0; the pool owns
 * n-1 workers. A run costs microseconds because generation calls it about ten times per layer per
 * token: workers spin for a while on a generation counter before sleeping on it with a futex, and
 * the caller is woken the same way when the last worker finishes.
 *
 * Protocol (all atomics sequentially consistent, so "store A; load B" on one side and "store B;
 * load A" on the other cannot both miss):
 *   run:    fn/ctx set; pending = n-1; gen++ ; if (sleepers) futex_wake(gen)
 *   worker: waits for gen != seen (spin, then sleepers++, futex_wait(gen, seen), sleepers--);
 *           runs fn; if (--pending == 0 && caller_sleeping) futex_wake(pending)
 *   caller: runs fn(0); waits for pending == 0 (spin, then caller_sleeping = 1 and futex_wait).
 * Shutdown: stop = 1; gen++; wake all; join. */
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "nn/internal.h"

/* Spin iterations before sleeping: a pause costs about 140 cycles on Skylake-SP and later, so
 * this is about 50 us — long enough to cover the gaps between the products of one token, short
 * enough not to burn a shared core for long. */
#define NN_SPIN 1000

struct nn_pool {
    int n;
    pthread_t *threads;
    struct worker_arg *args;
    _Alignas(64) _Atomic uint32_t gen;
    _Atomic int sleepers;
    _Atomic int stop;
    nn_task_fn fn;
    void *ctx;
    _Alignas(64) _Atomic uint32_t pending;
    _Atomic int caller_sleeping;
};

struct worker_arg {
    nn_pool_t *pool;
    int index;
};

static void futex_wait(_Atomic uint32_t *addr, uint32_t val)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *addr)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void *worker_main(void *arg)
{
    struct worker_arg *wa = arg;
    nn_pool_t *p = wa->pool;
    uint32_t seen = 0;
    for (;;) {
        uint32_t g;
        int spins = 0;
        while ((g = atomic_load(&p->gen)) == seen) {
            if (++spins < NN_SPIN) {
                cpu_relax();
                continue;
            }
            atomic_fetch_add(&p->sleepers, 1);
            futex_wait(&p->gen, seen);
            atomic_fetch_sub(&p->sleepers, 1);
            spins = 0;
        }
        seen = g;
        if (atomic_load(&p->stop))
            break;
        p->fn(p->ctx, wa->index, p->n);
        if (atomic_fetch_sub(&p->pending, 1) == 1 && atomic_load(&p->caller_sleeping))
            futex_wake(&p->pending);
    }
    return NULL;
}

int nn_pool_create(int n_threads, nn_pool_t **out)
{
    *out = NULL;
    if (n_threads <= 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = nc > 0 ? (int)nc : 1;
    }
    if (n_threads > 256)
        return -1;
    nn_init();
    nn_pool_t *p = calloc(1, sizeof *p);
    if (!p)
        return -1;
    p->n = n_threads;
    if (n_threads > 1) {
        p->threads = calloc((size_t)n_threads, sizeof *p->threads);
        p->args = calloc((size_t)n_threads, sizeof *p->args);
        if (!p->threads || !p->args)
            goto fail;
        for (int i = 1; i < n_threads; i++) {
            p->args[i].pool = p;
            p->args[i].index = i;
            if (pthread_create(&p->threads[i], NULL, worker_main, &p->args[i]) != 0) {
                p->n = i; /* join the ones that started */
                goto fail;
            }
        }
    }
    *out = p;
    return 0;
fail:
    nn_pool_free(&p);
    return -1;
}

void nn_pool_free(nn_pool_t **pool)
{
    nn_pool_t *p = pool ? *pool : NULL;
    if (!p)
        return;
    if (p->threads) {
        atomic_store(&p->stop, 1);
        atomic_fetch_add(&p->gen, 1);
        futex_wake(&p->gen);
        for (int i = 1; i < p->n; i++)
            pthread_join(p->threads[i], NULL);
    }
    free(p->threads);
    free(p->args);
    free(p);
    *pool = NULL;
}

int nn_pool_threads(const nn_pool_t *pool)
{
    return pool ? pool->n : 1;
}

void nn_pool_run(nn_pool_t *pool, nn_task_fn fn, void *ctx)
{
    if (!pool || pool->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    nn_pool_t *p = pool;
    p->fn = fn;
    p->ctx = ctx;
    atomic_store(&p->caller_sleeping, 0);
    atomic_store(&p->pending, (uint32_t)(p->n - 1));
    atomic_fetch_add(&p->gen, 1);
    if (atomic_load(&p->sleepers) > 0)
        futex_wake(&p->gen);
    fn(ctx, 0, p->n);
    int spins = 0;
    uint32_t left;
    while ((left = atomic_load(&p->pending)) != 0) {
        if (++spins < NN_SPIN) {
            cpu_relax();
            continue;
        }
        atomic_store(&p->caller_sleeping, 1);
        futex_wait(&p->pending, left);
        spins = 0;
    }
}
