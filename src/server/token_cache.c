/* server/token_cache.c: a small cache of recently verified device tokens, so that most
 * authenticated requests skip the database lookup.
 *
 * Keyed by the token's SHA-256 (the token itself is never kept); entries live 30 s at most and
 * are dropped at once when their device is revoked (srv_token_cache_forget_device), which is
 * enough because one process owns a data directory (the store's lock). Fixed size, direct-mapped:
 * a flood of tokens evicts entries but cannot grow memory. Thread-safe (one mutex). */
#include "server/internal.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_SLOTS 4096
#define CACHE_TTL_MS 30000

typedef struct cache_entry {
    uint8_t hash[32];
    int64_t account_id, device_id, last_seen_at;
    int64_t expires_at; /* 0 = empty */
} cache_entry_t;

struct srv_token_cache {
    pthread_mutex_t mu;
    cache_entry_t slots[CACHE_SLOTS];
};

srv_token_cache_t *srv_token_cache_new(void)
{
    srv_token_cache_t *c = xcalloc(1, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

void srv_token_cache_free(srv_token_cache_t **pc)
{
    if (!pc || !*pc)
        return;
    pthread_mutex_destroy(&(*pc)->mu);
    sodium_memzero((*pc)->slots, sizeof (*pc)->slots);
    free(*pc);
    *pc = NULL;
}

static cache_entry_t *slot_for(srv_token_cache_t *c, const uint8_t hash[32])
{
    uint32_t i;
    memcpy(&i, hash, sizeof i); /* the hash is uniformly distributed already */
    return &c->slots[i % CACHE_SLOTS];
}

bool srv_token_cache_get(srv_token_cache_t *c, const uint8_t hash[32], int64_t *account_id,
                         int64_t *device_id, int64_t *last_seen_at)
{
    int64_t now = core_now_ms();
    bool hit = false;
    pthread_mutex_lock(&c->mu);
    cache_entry_t *e = slot_for(c, hash);
    if (e->expires_at > now && sodium_memcmp(e->hash, hash, 32) == 0) {
        *account_id = e->account_id;
        *device_id = e->device_id;
        *last_seen_at = e->last_seen_at;
        hit = true;
    }
    pthread_mutex_unlock(&c->mu);
    return hit;
}

void srv_token_cache_put(srv_token_cache_t *c, const uint8_t hash[32], int64_t account_id,
                         int64_t device_id, int64_t last_seen_at)
{
    pthread_mutex_lock(&c->mu);
    cache_entry_t *e = slot_for(c, hash);
    memcpy(e->hash, hash, 32);
    e->account_id = account_id;
    e->device_id = device_id;
    e->last_seen_at = last_seen_at;
    e->expires_at = core_now_ms() + CACHE_TTL_MS;
    pthread_mutex_unlock(&c->mu);
}

void srv_token_cache_forget_device(srv_token_cache_t *c, int64_t device_id)
{
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < CACHE_SLOTS; i++)
        if (c->slots[i].device_id == device_id)
            memset(&c->slots[i], 0, sizeof c->slots[i]);
    pthread_mutex_unlock(&c->mu);
}
