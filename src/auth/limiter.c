/* auth/limiter.c: failed-login counting per key (a username or a client address) in a fixed-size
 * open-addressed table. Each entry keeps the failure count of the current window; the window
 * starts at the first failure. The table is bounded (4096 entries): when full, the oldest entry
 * is reused, so a flood of distinct keys cannot exhaust memory. */
#include "auth/auth.h"

#include "core/core.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIMITER_SLOTS 4096
#define LIMITER_KEY 96

typedef struct limiter_entry {
    char key[LIMITER_KEY];
    int failures;
    int64_t window_start_ms;
} limiter_entry_t;

struct auth_limiter {
    pthread_mutex_t mu;
    int max_failures;
    int64_t window_ms;
    limiter_entry_t slots[LIMITER_SLOTS];
};

auth_limiter_t *auth_limiter_new(int max_failures, int window_s)
{
    auth_limiter_t *l = xcalloc(1, sizeof *l);
    pthread_mutex_init(&l->mu, NULL);
    l->max_failures = max_failures;
    l->window_ms = (int64_t)window_s * 1000;
    return l;
}

void auth_limiter_free(auth_limiter_t **pl)
{
    if (!pl || !*pl)
        return;
    pthread_mutex_destroy(&(*pl)->mu);
    free(*pl);
    *pl = NULL;
}

static uint64_t key_hash(const char *key)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h;
}

/* Finds key's live entry, or (create) a free/expired/oldest slot for it. Called locked. */
static limiter_entry_t *find(auth_limiter_t *l, const char *key, bool create, int64_t now)
{
    size_t start = key_hash(key) % LIMITER_SLOTS;
    limiter_entry_t *victim = NULL;
    for (size_t i = 0; i < 64; i++) {
        limiter_entry_t *e = &l->slots[(start + i) % LIMITER_SLOTS];
        bool expired = e->key[0] && now - e->window_start_ms >= l->window_ms;
        if (e->key[0] && !expired && strncmp(e->key, key, LIMITER_KEY - 1) == 0)
            return e;
        if (!e->key[0] || expired) {
            if (!victim || victim->key[0])
                victim = e;
        } else if (!victim || (victim->key[0] && e->window_start_ms < victim->window_start_ms)) {
            victim = e;
        }
    }
    if (!create)
        return NULL;
    snprintf(victim->key, LIMITER_KEY, "%s", key);
    victim->failures = 0;
    victim->window_start_ms = now;
    return victim;
}

int auth_limiter_check(auth_limiter_t *l, const char *key)
{
    int64_t now = core_now_ms();
    int wait = 0;
    pthread_mutex_lock(&l->mu);
    limiter_entry_t *e = find(l, key, false, now);
    if (e && e->failures >= l->max_failures) {
        int64_t left = e->window_start_ms + l->window_ms - now;
        wait = (int)((left + 999) / 1000);
        if (wait < 1)
            wait = 1;
    }
    pthread_mutex_unlock(&l->mu);
    return wait;
}

void auth_limiter_fail(auth_limiter_t *l, const char *key)
{
    int64_t now = core_now_ms();
    pthread_mutex_lock(&l->mu);
    limiter_entry_t *e = find(l, key, true, now);
    e->failures++;
    pthread_mutex_unlock(&l->mu);
}

void auth_limiter_reset(auth_limiter_t *l, const char *key)
{
    pthread_mutex_lock(&l->mu);
    limiter_entry_t *e = find(l, key, false, core_now_ms());
    if (e)
        memset(e, 0, sizeof *e);
    pthread_mutex_unlock(&l->mu);
}
