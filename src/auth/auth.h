/* auth: secrets. Password hashing (argon2id, libsodium), device tokens (256 random bits, only
 * their SHA-256 is stored), and the failed-login rate limiter.
 *
 * Threads: all functions are thread-safe. Password hashing takes ~0.1 s and 64 MiB on purpose:
 * call it from worker threads only. */
#ifndef PERSONA_AUTH_H
#define PERSONA_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Token text: "pst_" + 43 base64url characters + NUL. */
#define AUTH_TOKEN_LEN 47
#define AUTH_TOKEN_PREFIX "pst_"

/* Initialises libsodium. Returns 0 or -EIO. */
int auth_init(void);

/* Hashes password into out (argon2id, libsodium's encoded string). Returns 0, -ENOMEM. */
int auth_password_hash(const char *password, char *out, size_t outcap);
/* True when password matches the encoded hash (constant time in the password). */
bool auth_password_verify(const char *encoded_hash, const char *password);
/* Burns the same time as a verify, for unknown usernames, so timing does not reveal them. */
void auth_password_dummy_verify(const char *password);

/* A new random token in out (AUTH_TOKEN_LEN + 1 bytes) and its SHA-256 in hash. */
void auth_token_new(char out[AUTH_TOKEN_LEN + 1], uint8_t hash[32]);
/* SHA-256 of a presented token. Returns 0, or -EINVAL if it is not shaped like one of ours. */
int auth_token_hash(const char *token, size_t len, uint8_t hash[32]);

/* ---- failed-login limiter: counts failures per key within a sliding window ---- */
typedef struct auth_limiter auth_limiter_t;
auth_limiter_t *auth_limiter_new(int max_failures, int window_s);
void auth_limiter_free(auth_limiter_t **l);
/* 0 if key may try now; otherwise the seconds until it may (> 0). */
int auth_limiter_check(auth_limiter_t *l, const char *key);
void auth_limiter_fail(auth_limiter_t *l, const char *key);
/* Forgets key's failures (after a successful login). */
void auth_limiter_reset(auth_limiter_t *l, const char *key);

#endif
