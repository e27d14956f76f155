/* desktop backoff: delays between reconnect attempts — 0.5 s doubling to 30 s, each drawn at
 * random in [base/2, base] so that many clients cut off together do not return together. Pure
 * (xorshift state in the struct); runs on the WebSocket thread. */
#include "desktop/internal.h"

void desk__backoff_init(desk__backoff_t *b, uint64_t seed) {
    b->attempt = 0;
    b->rng = seed ? seed : 0x9E3779B97F4A7C15ull;
}

void desk__backoff_reset(desk__backoff_t *b) { b->attempt = 0; }

int64_t desk__backoff_base(const desk__backoff_t *b) {
    int64_t base = DESK__BACKOFF_MIN_MS;
    for (int i = 0; i < b->attempt && base < DESK__BACKOFF_MAX_MS; i++)
        base *= 2;
    return base < DESK__BACKOFF_MAX_MS ? base : DESK__BACKOFF_MAX_MS;
}

int64_t desk__backoff_next(desk__backoff_t *b) {
    int64_t base = desk__backoff_base(b);
    if (b->attempt < 64)
        b->attempt++;
    b->rng ^= b->rng << 13;
    b->rng ^= b->rng >> 7;
    b->rng ^= b->rng << 17;
    int64_t half = base / 2;
    return half + (int64_t)(b->rng % (uint64_t)(base - half + 1));
}
