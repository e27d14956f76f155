/* desktop/voice.c: the account's voice for spoken answers. At start persona-desktop asks the
 * server for the voice chosen for the account (GET /v1/voice, set with `persona voice` or
 * PUT /v1/voice), so every desktop of the account speaks alike; settings given to
 * persona-desktop itself (flags, config file, environment) win over it. A server that cannot be
 * reached, or an answer that is not a voice, leaves the local settings as they are: speaking
 * with the default voice is better than not starting. */
#include "desktop/internal.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define VOICE_MAX_BODY (256u << 10) /* the answer lists ~130 voice names */
#define VOICE_TIMEOUT_S 5

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    core_buf_t *b = ud;
    if (b->len + size * n > VOICE_MAX_BODY)
        return 0; /* curl fails the transfer */
    core_buf_append(b, p, size * n);
    return size * n;
}

/* http(s)://HOST[:PORT] of a server given as http(s):// or ws(s)://, without a trailing path. */
static char *http_base(const char *server)
{
    const char *rest = server;
    const char *scheme = "http://";
    if (!strncmp(server, "wss://", 6) || !strncmp(server, "https://", 8))
        scheme = "https://";
    const char *sep = strstr(server, "://");
    rest = sep ? sep + 3 : server;
    size_t n = strcspn(rest, "/");
    return xasprintf("%s%.*s", scheme, (int)n, rest);
}

int desk__fetch_voice(const char *server, const char *token, desk_voice_t *out)
{
    int rc = -1;
    core_buf_t body;
    core_buf_init(&body);
    memset(out, 0, sizeof *out);
    char *base = http_base(server);
    char *url = xasprintf("%s/v1/voice", base);
    char *auth = xasprintf("Authorization: Bearer %s", token);
    struct curl_slist *hdr = curl_slist_append(NULL, auth);
    CURL *c = curl_easy_init();
    json_t *j = NULL;
    long status = 0;
    if (!c || !hdr)
        goto out;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)VOICE_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (curl_easy_perform(c) != CURLE_OK)
        goto out;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200 || !(j = json_loadb(body.data, body.len, 0, NULL)))
        goto out;
    json_t *v = json_object_get(j, "voice");
    json_t *r = json_object_get(j, "rate"), *p = json_object_get(j, "pitch");
    json_t *vol = json_object_get(j, "volume");
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) >= 64 ||
        !json_is_integer(r) || !json_is_integer(p) || !json_is_integer(vol))
        goto out;
    snprintf(out->voice, sizeof out->voice, "%s", json_string_value(v));
    out->rate = (int)json_integer_value(r);
    out->pitch = (int)json_integer_value(p);
    out->volume = (int)json_integer_value(vol);
    if (out->rate < SPEECH_RATE_MIN || out->rate > SPEECH_RATE_MAX || out->pitch < 0 ||
        out->pitch > 99 || out->volume < 0 || out->volume > 200)
        goto out;
    rc = 0;
out:
    json_decref(j);
    if (c)
        curl_easy_cleanup(c);
    curl_slist_free_all(hdr);
    core_buf_destroy(&body);
    free(auth);
    free(url);
    free(base);
    return rc;
}
