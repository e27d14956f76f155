/* server/h_accounts.c: accounts, sessions (a mobile device logging in) and devices. Runs on the
 * request pool. Passwords are hashed with argon2id; tokens are shown once and stored hashed. */
#include "server/internal.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

static bool valid_username(const char *u)
{
    size_t n = strlen(u);
    if (n < 1 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)u[i]) && u[i] != '.' && u[i] != '_' && u[i] != '-')
            return false;
    return true;
}

/* Reads a required string field; replies 400 and returns NULL when missing. */
static const char *field_string(srv_req_t *r, json_t *o, const char *name, size_t maxlen)
{
    json_t *v = json_object_get(o, name);
    if (!json_is_string(v)) {
        srv_reply_error(r, 400, "invalid_field", "The field '%s' is required and must be a string.",
                        name);
        return NULL;
    }
    if (json_string_length(v) > maxlen || strlen(json_string_value(v)) != json_string_length(v)) {
        srv_reply_error(r, 400, "invalid_field", "The field '%s' is too long or contains NUL.",
                        name);
        return NULL;
    }
    return json_string_value(v);
}

static json_t *token_json(int64_t device_id, const char *token, const char *name, const char *kind)
{
    return json_pack("{s:I, s:s, s:s, s:s}", "device_id", (json_int_t)device_id, "token", token,
                     "name", name, "kind", kind);
}

void srv_h_account_create(srv_req_t *r)
{
    server_t *s = r->srv;
    json_t *o = srv_body_object(r);
    if (!o)
        return;
    const char *user = field_string(r, o, "username", 64);
    const char *pass = user ? field_string(r, o, "password", 1024) : NULL;
    if (!user || !pass)
        goto out;
    if (!valid_username(user)) {
        srv_reply_error(r, 400, "invalid_field",
                        "A username is 1 to 64 letters, digits, '.', '_' or '-'.");
        goto out;
    }
    if (strlen(pass) < 8) {
        srv_reply_error(r, 400, "invalid_field", "A password needs at least 8 characters.");
        goto out;
    }
    if (!strcmp(s->cfg->signup, "closed")) {
        srv_reply_error(r, 403, "signup_closed", "This server does not accept new accounts.");
        goto out;
    }
    char hash[crypto_pwhash_STRBYTES];
    if (auth_password_hash(pass, hash, sizeof hash) < 0) {
        srv_reply_error(r, 503, "busy", "Could not hash the password now; try again.");
        goto out;
    }
    int64_t id = 0;
    int rc = store_account_create(s->st, user, hash, !strcmp(s->cfg->signup, "first"), &id);
    if (rc == -EEXIST)
        srv_reply_error(r, 409, "username_taken", "That username is taken.");
    else if (rc == -EPERM)
        srv_reply_error(r, 403, "signup_closed",
                        "This server already has its account; ask its owner, or start personad "
                        "with --signup open.");
    else if (rc < 0)
        srv_reply_error(r, 500, "internal", "Could not create the account.");
    else {
        r->account_id = id;
        srv_reply_json(r, 201, json_pack("{s:I, s:s}", "id", (json_int_t)id, "username", user));
    }
out:
    json_decref(o);
}

void srv_h_session_create(srv_req_t *r)
{
    server_t *s = r->srv;
    json_t *o = srv_body_object(r);
    if (!o)
        return;
    char *hash = NULL;
    const char *user = field_string(r, o, "username", 64);
    const char *pass = user ? field_string(r, o, "password", 1024) : NULL;
    if (!user || !pass)
        goto out;
    json_t *dn = json_object_get(o, "device_name");
    const char *dev_name = json_is_string(dn) && json_string_length(dn) > 0 &&
                                   json_string_length(dn) < 128 &&
                                   strlen(json_string_value(dn)) == json_string_length(dn)
                               ? json_string_value(dn) : "mobile";

    char ukey[80], akey[80];
    snprintf(ukey, sizeof ukey, "u:");
    for (size_t i = 0; user[i] && i < 64; i++)
        ukey[2 + i] = (char)tolower((unsigned char)user[i]), ukey[3 + i] = '\0';
    snprintf(akey, sizeof akey, "a:%s", r->peer);
    int wait_u = auth_limiter_check(s->limit_user, ukey);
    int wait_a = auth_limiter_check(s->limit_addr, akey);
    if (wait_u || wait_a) {
        int wait = wait_u > wait_a ? wait_u : wait_a;
        srv_resp_add_header(&r->resp, "retry-after:", "%d", wait);
        srv_reply_error(r, 429, "too_many_requests",
                        "Too many failed logins; try again in %d seconds.", wait);
        goto out;
    }

    int64_t account_id = 0;
    int rc = store_account_find(s->st, user, &account_id, &hash);
    bool ok;
    if (rc == 0) {
        ok = auth_password_verify(hash, pass);
    } else {
        auth_password_dummy_verify(pass);
        ok = false;
    }
    if (rc < 0 && rc != -ENOENT) {
        srv_reply_error(r, 500, "internal", "Could not check the credentials.");
        goto out;
    }
    if (!ok) {
        auth_limiter_fail(s->limit_user, ukey);
        auth_limiter_fail(s->limit_addr, akey);
        core_log(CORE_LOG_WARN, "auth.login_failed", "id=%s peer=%s", r->id, r->peer);
        srv_reply_error(r, 401, "invalid_credentials", "Wrong username or password.");
        goto out;
    }
    auth_limiter_reset(s->limit_user, ukey);
    char token[AUTH_TOKEN_LEN + 1];
    uint8_t th[32];
    auth_token_new(token, th);
    int64_t dev_id = 0;
    if (store_device_create(s->st, account_id, dev_name, "mobile", th, &dev_id) < 0) {
        srv_reply_error(r, 500, "internal", "Could not create the session.");
        goto out;
    }
    r->account_id = account_id;
    json_t *resp = token_json(dev_id, token, dev_name, "mobile");
    json_object_set_new(resp, "account_id", json_integer(account_id));
    srv_reply_json(r, 201, resp);
    sodium_memzero(token, sizeof token);
out:
    free(hash);
    json_decref(o);
}

void srv_h_me(srv_req_t *r)
{
    srv_reply_json(r, 200, json_pack("{s:I, s:I}", "account_id", (json_int_t)r->account_id,
                                     "device_id", (json_int_t)r->device_id));
}

void srv_h_device_create(srv_req_t *r)
{
    json_t *o = srv_body_object(r);
    if (!o)
        return;
    const char *name = field_string(r, o, "name", 127);
    json_t *k = json_object_get(o, "kind");
    const char *kind = json_is_string(k) ? json_string_value(k) : "desktop";
    if (!name)
        goto out;
    if (!*name || !core_utf8_valid(name, strlen(name))) {
        srv_reply_error(r, 400, "invalid_field", "A device needs a name (UTF-8, 1-127 bytes).");
        goto out;
    }
    if (strcmp(kind, "desktop") && strcmp(kind, "mobile")) {
        srv_reply_error(r, 400, "invalid_field", "The kind of a device is 'desktop' or 'mobile'.");
        goto out;
    }
    char token[AUTH_TOKEN_LEN + 1];
    uint8_t th[32];
    auth_token_new(token, th);
    int64_t id = 0;
    if (store_device_create(r->srv->st, r->account_id, name, kind, th, &id) < 0)
        srv_reply_error(r, 500, "internal", "Could not create the device.");
    else
        srv_reply_json(r, 201, token_json(id, token, name, kind));
    sodium_memzero(token, sizeof token);
out:
    json_decref(o);
}

void srv_h_device_list(srv_req_t *r)
{
    store_device_t *list = NULL;
    size_t n = 0;
    if (store_device_list(r->srv->st, r->account_id, &list, &n) < 0) {
        srv_reply_error(r, 500, "internal", "Could not list the devices.");
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        const store_device_t *d = &list[i];
        json_array_append_new(
            arr, json_pack("{s:I, s:s, s:s, s:I, s:I, s:b, s:b}", "id", (json_int_t)d->id, "name",
                           d->name, "kind", d->kind, "created_at", (json_int_t)d->created_at,
                           "last_seen_at", (json_int_t)d->last_seen_at, "revoked", d->revoked,
                           "current", d->id == r->device_id));
    }
    store_device_list_free(&list);
    srv_reply_json(r, 200, json_pack("{s:o}", "devices", arr));
}

void srv_h_device_revoke(srv_req_t *r)
{
    int rc = store_device_revoke(r->srv->st, r->account_id, r->path_id);
    if (rc == 0)
        srv_token_cache_forget_device(r->srv->tokens, r->path_id);
    if (rc == -ENOENT)
        srv_reply_error(r, 404, "not_found", "No such device.");
    else if (rc < 0)
        srv_reply_error(r, 500, "internal", "Could not revoke the device.");
    else
        srv_reply_empty(r, 204);
}
