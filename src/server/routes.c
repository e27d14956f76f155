/* server/routes.c: the route table — every path personad answers, its handler, and where it runs
 * (event loop or request pool). Matching is by path segments; {id} takes a positive integer and
 * {name} a word of letters. */
#include "server/internal.h"

#include <stdio.h>
#include <string.h>

static const srv_route_t routes[] = {
    {"GET", "/v1/health", srv_h_health, SRV_ON_LOOP},
    {"GET", "/metrics", srv_h_metrics, 0},
    {"POST", "/v1/accounts", srv_h_account_create, SRV_JSON_BODY},
    {"POST", "/v1/sessions", srv_h_session_create, SRV_JSON_BODY},
    {"GET", "/v1/me", srv_h_me, SRV_AUTH},
    {"POST", "/v1/devices", srv_h_device_create, SRV_AUTH | SRV_JSON_BODY},
    {"GET", "/v1/devices", srv_h_device_list, SRV_AUTH},
    {"DELETE", "/v1/devices/{id}", srv_h_device_revoke, SRV_AUTH},
    {"POST", "/v1/media", NULL, SRV_UPLOAD},
    {"GET", "/v1/media", srv_h_media_list, SRV_AUTH},
    {"GET", "/v1/media/{id}", srv_h_media_get, SRV_AUTH},
    {"DELETE", "/v1/media/{id}", srv_h_media_delete, SRV_AUTH},
    {"GET", "/v1/media/{id}/transcript", srv_h_transcript_get, SRV_AUTH},
    {"PUT", "/v1/media/{id}/transcript", srv_h_transcript_put, SRV_AUTH | SRV_JSON_BODY},
    {"GET", "/v1/media/{id}/faces", srv_h_media_faces, SRV_AUTH},
    {"GET", "/v1/media/{id}/{name}", srv_h_media_download, SRV_AUTH},
    {"POST", "/v1/questions", srv_h_question_create, SRV_AUTH | SRV_JSON_BODY},
    {"GET", "/v1/questions", srv_h_question_list, SRV_AUTH},
    {"GET", "/v1/questions/{id}", srv_h_question_get, SRV_AUTH},
    {"GET", "/v1/events", srv_h_events, SRV_AUTH},
    {"POST", "/v1/persona/train", srv_h_model_train, SRV_AUTH | SRV_JSON_BODY},
    {"GET", "/v1/persona/model", srv_h_model_get, SRV_AUTH},
    {"GET", "/v1/voice", srv_h_voice_get, SRV_AUTH},
    {"PUT", "/v1/voice", srv_h_voice_put, SRV_AUTH | SRV_JSON_BODY},
    {"POST", "/v1/tts", srv_h_tts, SRV_AUTH | SRV_JSON_BODY},
    {"POST", "/v1/faces/detect", srv_h_faces_detect, SRV_AUTH | SRV_IMAGE_BODY},
    {"POST", "/v1/faces/represent", srv_h_faces_represent, SRV_AUTH | SRV_IMAGE_BODY},
    {"POST", "/v1/faces/verify", srv_h_faces_verify, SRV_AUTH | SRV_IMAGE_BODY},
    {"POST", "/v1/faces/analyze", srv_h_faces_analyze, SRV_AUTH | SRV_IMAGE_BODY},
    {"POST", "/v1/faces/find", srv_h_faces_find, SRV_AUTH | SRV_IMAGE_BODY},
    {"GET", "/v1/identities", srv_h_identity_list, SRV_AUTH},
    {"POST", "/v1/identities/{id}", srv_h_identity_update, SRV_AUTH | SRV_JSON_BODY},
    {"GET", "/v1/identities/{id}/faces", srv_h_identity_faces, SRV_AUTH},
    {"GET", "/v1/ws", srv_h_ws_plain, SRV_ON_LOOP},
};
#define NROUTES (sizeof routes / sizeof routes[0])

/* Matches one path against one pattern; fills id/name on success. */
static bool match(const char *pattern, const char *path, int64_t *id, char *name, size_t namecap)
{
    const char *p = pattern, *s = path;
    while (*p && *s) {
        if (*p == '{') {
            const char *pend = strchr(p, '}');
            const char *send = strchr(s, '/');
            size_t slen = send ? (size_t)(send - s) : strlen(s);
            if (!pend || slen == 0)
                return false;
            if (!strncmp(p, "{id}", 4)) {
                uint64_t v;
                if (core_parse_u64(s, slen, &v) < 0 || v == 0)
                    return false;
                *id = (int64_t)v;
            } else {
                if (slen >= namecap)
                    return false;
                for (size_t i = 0; i < slen; i++)
                    if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_'))
                        return false;
                memcpy(name, s, slen);
                name[slen] = '\0';
            }
            p = pend + 1;
            s += slen;
            continue;
        }
        if (*p != *s)
            return false;
        p++;
        s++;
    }
    /* A single trailing slash is tolerated: /v1/media/ is /v1/media. */
    return *p == '\0' && (*s == '\0' || (s[0] == '/' && s[1] == '\0'));
}

int srv_route_match(srv_req_t *r, char *allow, size_t allowcap)
{
    bool path_found = false;
    allow[0] = '\0';
    for (size_t i = 0; i < NROUTES; i++) {
        int64_t id = 0;
        char name[32] = "";
        if (!match(routes[i].pattern, r->path, &id, name, sizeof name))
            continue;
        if (!strcmp(routes[i].method, r->method)) {
            r->route = &routes[i];
            r->path_id = id;
            snprintf(r->path_name, sizeof r->path_name, "%s", name);
            return 0;
        }
        size_t used = strlen(allow);
        snprintf(allow + used, allowcap - used, "%s%s", used ? ", " : "", routes[i].method);
        path_found = true;
    }
    return path_found ? -EPERM : -ENOENT;
}

const char *srv_route_name(const srv_req_t *r)
{
    return r->route ? r->route->pattern : "unmatched";
}
