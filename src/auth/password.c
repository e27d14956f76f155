/* auth/password.c: argon2id password hashes and device tokens, both through libsodium. */
#include "auth/auth.h"

#include "core/core.h"

#include <sodium.h>
#include <string.h>

int auth_init(void)
{
    return sodium_init() < 0 ? -EIO : 0;
}

int auth_password_hash(const char *password, char *out, size_t outcap)
{
    if (outcap < crypto_pwhash_STRBYTES)
        return -ENOSPC;
    if (crypto_pwhash_str_alg(out, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13) != 0)
        return -ENOMEM;
    return 0;
}

bool auth_password_verify(const char *encoded_hash, const char *password)
{
    return crypto_pwhash_str_verify(encoded_hash, password, strlen(password)) == 0;
}

void auth_password_dummy_verify(const char *password)
{
    /* A fixed hash with the same cost parameters as real ones. */
    static char dummy[crypto_pwhash_STRBYTES];
    static bool ready;
    if (!ready) {
        /* Races here are harmless: every thread writes the same kind of value. */
        char tmp[crypto_pwhash_STRBYTES];
        if (auth_password_hash("persona-dummy-password", tmp, sizeof tmp) == 0) {
            memcpy(dummy, tmp, sizeof tmp);
            ready = true;
        }
    }
    if (ready)
        (void)auth_password_verify(dummy, password);
}

void auth_token_new(char out[AUTH_TOKEN_LEN + 1], uint8_t hash[32])
{
    uint8_t raw[32];
    randombytes_buf(raw, sizeof raw);
    memcpy(out, AUTH_TOKEN_PREFIX, 4);
    sodium_bin2base64(out + 4, AUTH_TOKEN_LEN + 1 - 4, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    crypto_hash_sha256(hash, (const unsigned char *)out, AUTH_TOKEN_LEN);
}

int auth_token_hash(const char *token, size_t len, uint8_t hash[32])
{
    if (len != AUTH_TOKEN_LEN || memcmp(token, AUTH_TOKEN_PREFIX, 4) != 0)
        return -EINVAL;
    for (size_t i = 4; i < len; i++) {
        char c = token[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return -EINVAL;
    }
    crypto_hash_sha256(hash, (const unsigned char *)token, len);
    return 0;
}
