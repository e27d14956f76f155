/* cli/faces.c: `persona faces detect|represent|analyze|find|verify FILE...` — pictures sent to
 * POST /v1/faces/<verb> and the faces printed as a table (or the server's JSON with --json) —
 * and `persona identities [name ID NAME [--persona] | persona ID]` over /v1/identities.
 *
 * A picture is sent as the request body with its type from the file name (image/jpeg,
 * image/png, image/x-portable-pixmap); verify sends both pictures base64-encoded in one JSON
 * body ({"img1":{"data":..},"img2":{"data":..}}), as docs/api.md describes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cli/internal.h"

#define FACES_MAX_FILE (64u << 20) /* the server refuses more anyway (face_max_image_bytes) */

static const char faces_help[] =
    "Usage: persona faces detect|represent|analyze FILE... [--detector tiny|ssd] [--json]\n"
    "       persona faces find FILE... [--detector tiny|ssd] [--metric euclidean|cosine] [--json]\n"
    "       persona faces verify FILE1 FILE2 [--detector tiny|ssd] [--metric euclidean|cosine]\n"
    "                                        [--json]\n"
    "\n"
    "Face analysis of JPEG or PNG pictures by the server (nothing is stored):\n"
    "  detect     the faces: box (x,y,w,h in pixels) and detector score\n"
    "  represent  also each face's 128-number descriptor (with --json)\n"
    "  analyze    also age, gender and the most likely of the 7 expressions\n"
    "  find       for each face, the closest faces of the account's gallery (the faces found\n"
    "             in its uploaded media): item, time, identity and distance\n"
    "  verify     whether the best face of FILE1 and of FILE2 are the same person (Euclidean\n"
    "             distance of their descriptors below 0.6)\n"
    "--detector picks the detector (default: the server's face_detector); --metric the distance\n"
    "of find and verify (default euclidean, same person below 0.6; cosine: below 0.085); --json\n"
    "prints the server's answer, one JSON object per file.\n";

static const char identities_help[] =
    "Usage: persona identities [--json]\n"
    "       persona identities name ID NAME [--persona]\n"
    "       persona identities unname ID\n"
    "       persona identities persona ID\n"
    "       persona identities merge ID INTO\n"
    "\n"
    "The people found in the account's media: processing groups the faces of photos and videos\n"
    "into identities. With no subcommand, lists them: id, name, faces, items, and which one is\n"
    "the persona (the account's own person). `name` names one (with --persona also marks it the\n"
    "persona), `unname` removes the name, `persona` marks it the persona (at most one is),\n"
    "`merge` moves every face of identity ID to identity INTO (one person found as two).\n";

/* ======================================================================================
 * pictures
 * ====================================================================================== */

static const char *picture_mime(const char *file)
{
    const char *dot = strrchr(file, '.');
    if (!dot)
        return NULL;
    if (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"))
        return "image/jpeg";
    if (!strcasecmp(dot, ".png"))
        return "image/png";
    if (!strcasecmp(dot, ".ppm"))
        return "image/x-portable-pixmap";
    return NULL;
}

/* Reads a whole file. Returns 0 or -errno after printing why. */
static int read_picture(const char *file, char **data, size_t *len)
{
    int rc = core_read_file(file, FACES_MAX_FILE, data, len);
    if (rc < 0)
        fprintf(stderr, "persona: %s: %s\n", file,
                rc == -EFBIG ? "too large for a picture" : core_strerror(rc));
    return rc;
}

static char *base64(const unsigned char *in, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = xmalloc((n + 2) / 3 * 4 + 1), *o = out;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        *o++ = tab[v >> 18 & 63];
        *o++ = tab[v >> 12 & 63];
        *o++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? tab[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

/* ======================================================================================
 * tables
 * ====================================================================================== */

static void print_box(const json_t *face)
{
    const json_t *b = json_object_get(face, "box");
    printf("%6.0f %6.0f %5.0f %5.0f  %5.3f", json_number_value(json_object_get(b, "x")),
           json_number_value(json_object_get(b, "y")), json_number_value(json_object_get(b, "w")),
           json_number_value(json_object_get(b, "h")),
           json_number_value(json_object_get(face, "score")));
}

/* The most likely expression and its probability. */
static const char *top_expression(const json_t *face, double *p)
{
    const json_t *e = json_object_get(face, "expressions");
    const char *key, *best = "-";
    json_t *v;
    *p = 0;
    json_object_foreach((json_t *)e, key, v) {
        if (json_number_value(v) > *p) {
            *p = json_number_value(v);
            best = key;
        }
    }
    return best;
}

static void print_faces(const char *verb, const char *file, const json_t *res)
{
    const json_t *faces = json_object_get(res, "faces");
    char clean[256];
    printf("%s: %zu face%s (%lldx%lld, %s detector)\n", cli__clean(file, 60, clean, sizeof clean),
           json_array_size(faces), json_array_size(faces) == 1 ? "" : "s",
           (long long)cli__jint(res, "width", 0), (long long)cli__jint(res, "height", 0),
           cli__jstr(res, "detector", "?"));
    if (json_array_size(faces) == 0)
        return;
    bool attrs = !strcmp(verb, "analyze"), find = !strcmp(verb, "find");
    printf("  #      x      y     w     h  score%s\n",
           attrs ? "   age  gender        expression" : find ? "  matches" : "");
    size_t i;
    json_t *f;
    json_array_foreach(faces, i, f) {
        printf("%3zu ", i + 1);
        print_box(f);
        if (attrs) {
            double p;
            const char *e = top_expression(f, &p);
            printf("  %4.0f  %-6s %3.0f%%  %-9s %3.0f%%",
                   json_number_value(json_object_get(f, "age")), cli__jstr(f, "gender", "-"),
                   100 * json_number_value(json_object_get(f, "gender_probability")), e, 100 * p);
        }
        if (find) {
            const json_t *ms = json_object_get(f, "matches");
            size_t k;
            json_t *m;
            if (json_array_size(ms) == 0)
                printf("  (no match)");
            json_array_foreach(ms, k, m) {
                int64_t ts = cli__jint(m, "ts_ms", 0);
                const char *name = cli__jstr(m, "identity_name", NULL);
                printf("%s media %lld at %lld:%02lld", k ? "\n                                   "
                                                          "       "
                                                        : " ",
                       (long long)cli__jint(m, "media_id", 0), (long long)(ts / 60000),
                       (long long)(ts / 1000 % 60));
                if (name)
                    printf(" (%s)", cli__clean(name, 40, clean, sizeof clean));
                else if (cli__jint(m, "identity_id", 0))
                    printf(" (identity %lld)", (long long)cli__jint(m, "identity_id", 0));
                printf(" distance %.3f", json_number_value(json_object_get(m, "distance")));
            }
        }
        printf("\n");
    }
}

static void print_verify(const char *f1, const char *f2, const json_t *res)
{
    char c1[128], c2[128];
    double d = json_number_value(json_object_get(res, "distance"));
    double t = json_number_value(json_object_get(res, "threshold"));
    bool same = json_is_true(json_object_get(res, "verified"));
    printf("%s vs %s: distance %.4f (threshold %.3g): %s\n", cli__clean(f1, 50, c1, sizeof c1),
           cli__clean(f2, 50, c2, sizeof c2), d, t, same ? "same person" : "different people");
}

/* ======================================================================================
 * commands
 * ====================================================================================== */

/* /v1/faces/VERB with the options that were given as its query. */
static void faces_path(char *buf, size_t cap, const char *verb, const char *detector,
                       const char *metric)
{
    snprintf(buf, cap, "/v1/faces/%s%s%s%s%s%s", verb, detector || metric ? "?" : "",
             detector ? "detector=" : "", detector ? detector : "",
             detector && metric ? "&" : "", metric ? "metric=" : "");
    if (metric)
        snprintf(buf + strlen(buf), cap - strlen(buf), "%s", metric);
}

/* One picture through a verb. Returns a CLI_EXIT_* status. */
static int faces_one(cli__ctx_t *ctx, const char *verb, const char *file, const char *detector,
                     const char *metric)
{
    const char *mime = picture_mime(file);
    if (!mime) {
        fprintf(stderr, "persona: %s: not a .jpg, .jpeg, .png or .ppm file\n", file);
        return CLI_EXIT_FAIL;
    }
    struct stat st;
    FILE *f = fopen(file, "rb");
    if (!f || fstat(fileno(f), &st) < 0) {
        fprintf(stderr, "persona: %s: %s\n", file, strerror(errno));
        if (f)
            fclose(f);
        return CLI_EXIT_FAIL;
    }
    char path[96];
    faces_path(path, sizeof path, verb, detector, metric);
    cli__resp_t resp;
    cli__resp_init(&resp);
    cli__req_t req = {.method = "POST", .path = path, .auth = true, .upload = f,
                      .upload_size = (uint64_t)st.st_size, .content_type = mime,
                      .timeout_s = 300};
    int status = CLI_EXIT_FAIL;
    if (cli__request(ctx, &req, &resp) == 0 && cli__resp_ok(ctx, &resp, file)) {
        if (ctx->json)
            cli__print_json(resp.json);
        else
            print_faces(verb, file, resp.json);
        status = CLI_EXIT_OK;
    }
    cli__resp_destroy(&resp);
    fclose(f);
    return status;
}

static int faces_verify(cli__ctx_t *ctx, const char *f1, const char *f2, const char *detector,
                        const char *metric)
{
    char *d1 = NULL, *d2 = NULL, *b1 = NULL, *b2 = NULL;
    size_t n1 = 0, n2 = 0;
    int status = CLI_EXIT_FAIL;
    json_t *body = NULL;
    cli__resp_t resp;
    cli__resp_init(&resp);
    if (read_picture(f1, &d1, &n1) < 0 || read_picture(f2, &d2, &n2) < 0)
        goto out;
    b1 = base64((const unsigned char *)d1, n1);
    b2 = base64((const unsigned char *)d2, n2);
    body = json_pack("{s:{s:s}, s:{s:s}}", "img1", "data", b1, "img2", "data", b2);
    char path[96];
    faces_path(path, sizeof path, "verify", detector, metric);
    cli__req_t req = {.method = "POST", .path = path, .auth = true, .json = body,
                      .timeout_s = 300};
    if (cli__request(ctx, &req, &resp) < 0 || !cli__resp_ok(ctx, &resp, "verify"))
        goto out;
    if (ctx->json)
        cli__print_json(resp.json);
    else
        print_verify(f1, f2, resp.json);
    status = CLI_EXIT_OK;
out:
    cli__resp_destroy(&resp);
    json_decref(body);
    free(d1);
    free(d2);
    free(b1);
    free(b2);
    return status;
}

int cli__cmd_faces(cli__ctx_t *ctx, int argc, char **argv)
{
    static const char *const verbs[] = {"detect", "represent", "analyze", "find", "verify"};
    const char *detector = NULL, *metric = NULL;
    bool json = false;
    const cli__opt_t opts[] = {{"detector", 'd', CLI__VALUE, &detector},
                               {"metric", 0, CLI__VALUE, &metric},
                               {"json", 0, CLI__FLAG, &json}, {0}};
    char **pos = xcalloc((size_t)argc + 1, sizeof *pos);
    int npos = 0, status = CLI_EXIT_OK;
    int rc = cli__parse_opts("faces", argc, argv, opts, false, pos, &npos);
    if (rc == CLI__HELP) {
        fputs(faces_help, stdout);
        goto out;
    }
    if (rc < 0) {
        status = CLI_EXIT_USAGE;
        goto out;
    }
    ctx->json = ctx->json || json;
    const char *verb = npos > 0 ? pos[0] : "";
    bool known = false;
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        known = known || !strcmp(verb, verbs[i]);
    if (!known) {
        status = cli__usage_error("faces", "expected detect, represent, analyze, find or verify");
        goto out;
    }
    if (detector && strcmp(detector, "tiny") && strcmp(detector, "ssd")) {
        status = cli__usage_error("faces", "--detector is tiny or ssd");
        goto out;
    }
    if (metric && strcmp(metric, "euclidean") && strcmp(metric, "cosine")) {
        status = cli__usage_error("faces", "--metric is euclidean or cosine");
        goto out;
    }
    if (metric && strcmp(verb, "verify") && strcmp(verb, "find")) {
        status = cli__usage_error("faces", "--metric is for find and verify");
        goto out;
    }
    if (!strcmp(verb, "verify")) {
        if (npos != 3)
            status = cli__usage_error("faces", "verify takes two picture files");
        else
            status = faces_verify(ctx, pos[1], pos[2], detector, metric);
        goto out;
    }
    if (npos < 2) {
        status = cli__usage_error("faces", "expected at least one picture file");
        goto out;
    }
    for (int i = 1; i < npos; i++)
        if (faces_one(ctx, verb, pos[i], detector, metric) != CLI_EXIT_OK)
            status = CLI_EXIT_FAIL;
out:
    free(pos);
    return status;
}

static void print_identities(const json_t *res)
{
    const json_t *list = json_object_get(res, "identities");
    char clean[128];
    if (json_array_size(list) == 0) {
        printf("(no identities yet: upload photos or videos with faces)\n");
        return;
    }
    printf("%6s  %-30s %7s %6s  %s\n", "ID", "NAME", "FACES", "ITEMS", "PERSONA");
    size_t i;
    json_t *o;
    json_array_foreach(list, i, o) {
        printf("%6lld  %-30s %7lld %6lld  %s\n", (long long)cli__jint(o, "id", 0),
               cli__clean(cli__jstr(o, "name", "-"), 30, clean, sizeof clean),
               (long long)cli__jint(o, "face_count", 0), (long long)cli__jint(o, "media_count", 0),
               json_is_true(json_object_get(o, "is_persona")) ? "yes" : "");
    }
}

/* POST /v1/identities/ID with body; prints the identity. */
static int identity_update(cli__ctx_t *ctx, const char *id_text, json_t *body)
{
    uint64_t id;
    if (cli__parse_id(id_text, "identity ID", &id) < 0) {
        json_decref(body);
        return CLI_EXIT_USAGE;
    }
    char path[64];
    snprintf(path, sizeof path, "/v1/identities/%llu", (unsigned long long)id);
    cli__resp_t resp;
    cli__resp_init(&resp);
    int status = CLI_EXIT_FAIL;
    if (cli__call(ctx, "POST", path, body, true, &resp) == 0) {
        if (ctx->json) {
            cli__print_json(resp.json);
        } else {
            char clean[128];
            printf("identity %lld: %s%s\n", (long long)cli__jint(resp.json, "id", (int64_t)id),
                   cli__clean(cli__jstr(resp.json, "name", "(no name)"), 60, clean, sizeof clean),
                   json_is_true(json_object_get(resp.json, "is_persona")) ? " (the persona)" : "");
        }
        status = CLI_EXIT_OK;
    }
    cli__resp_destroy(&resp);
    json_decref(body);
    return status;
}

int cli__cmd_identities(cli__ctx_t *ctx, int argc, char **argv)
{
    bool persona = false, json = false;
    const cli__opt_t opts[] = {{"persona", 0, CLI__FLAG, &persona},
                               {"json", 0, CLI__FLAG, &json}, {0}};
    char **pos = xcalloc((size_t)argc + 1, sizeof *pos);
    int npos = 0, status = CLI_EXIT_FAIL;
    cli__resp_t resp;
    cli__resp_init(&resp);
    int rc = cli__parse_opts("identities", argc, argv, opts, false, pos, &npos);
    if (rc == CLI__HELP) {
        fputs(identities_help, stdout);
        status = CLI_EXIT_OK;
        goto out;
    }
    if (rc < 0) {
        status = CLI_EXIT_USAGE;
        goto out;
    }
    ctx->json = ctx->json || json;
    if (npos == 0) {
        if (cli__call(ctx, "GET", "/v1/identities", NULL, true, &resp) == 0) {
            if (ctx->json)
                cli__print_json(resp.json);
            else
                print_identities(resp.json);
            status = CLI_EXIT_OK;
        }
    } else if (!strcmp(pos[0], "name") && npos == 3) {
        json_t *body = json_pack("{s:s}", "name", pos[2]);
        if (persona)
            json_object_set_new(body, "is_persona", json_true());
        status = identity_update(ctx, pos[1], body);
    } else if (!strcmp(pos[0], "unname") && npos == 2) {
        status = identity_update(ctx, pos[1], json_pack("{s:n}", "name"));
    } else if (!strcmp(pos[0], "merge") && npos == 3) {
        uint64_t into;
        if (cli__parse_id(pos[2], "identity ID", &into) < 0)
            status = CLI_EXIT_USAGE;
        else
            status = identity_update(ctx, pos[1],
                                     json_pack("{s:I}", "merge_into", (json_int_t)into));
    } else if (!strcmp(pos[0], "persona") && npos == 2) {
        status = identity_update(ctx, pos[1], json_pack("{s:b}", "is_persona", 1));
    } else {
        status = cli__usage_error("identities",
                                  "expected no argument, name ID NAME, unname ID, persona ID or "
                                  "merge ID INTO");
    }
out:
    cli__resp_destroy(&resp);
    free(pos);
    return status;
}
