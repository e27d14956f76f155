/* server/h_faces.c: the DeepFace-style face calls — POST /v1/faces/{detect,represent,verify,
 * analyze,find} — and GET /v1/media/{id}/faces (what media.process stored for an item).
 *
 * Request pool: decoding and inference run on the request threads (never on the event loop),
 * each analysis on a context taken from the process's pool (jobs/faces.c), so at most
 * face_contexts analyses run at once and a request waits for a free one.
 *
 * A picture comes as the raw body (image/jpeg, image/png, image/x-portable-pixmap or
 * application/octet-stream), as ?media_id=N[&at_ms=T] (an image item, or the frame of a video
 * item on screen at T ms), or as a JSON body {"media_id":N[,"at_ms":T]} or {"data":"<base64>"}.
 * verify takes {"img1":<picture>,"img2":<picture>} in a JSON body, each picture one of those
 * JSON forms. Answers: no face: 200 with "faces":[]; an undecodable picture: 400 with the image
 * module's reason; over face_max_pixels: 413; no models: 503 with how to fix it. */
#include "server/internal.h"

#include "face/face.h"
#include "image/image.h"
#include "media/media.h"

#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIND_DEFAULT_LIMIT 5
#define FIND_MAX_LIMIT 100

void srv_reply_faces_json(srv_req_t *r, int status, json_t *obj)
{
    /* 8 significant digits: a float32 descriptor to within 1e-7 relative, and pixels rounded
     * to 0.01 print as such (not as 80.810000000000002). */
    char *text = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(8));
    json_decref(obj);
    if (!text) {
        srv_reply_error(r, 500, "internal", "Could not encode the response.");
        return;
    }
    size_t n = strlen(text);
    text = xrealloc(text, n + 2);
    text[n++] = '\n';
    text[n] = '\0';
    srv_reply_text(r, status, "application/json", text, n);
}

/* ======================================================================================
 * face objects
 * ====================================================================================== */

/* Floats rounded to what is meaningful (pixels to 0.01, probabilities to 1e-4), so a face
 * object is not three times longer than it needs to be. */
static json_t *num(double v, double unit)
{
    return json_real(round(v / unit) * unit);
}

static json_t *box_json(float x, float y, float w, float h)
{
    return json_pack("{s:o, s:o, s:o, s:o}", "x", num(x, 0.01), "y", num(y, 0.01), "w",
                     num(w, 0.01), "h", num(h, 0.01));
}

static json_t *expressions_json(const float *e)
{
    json_t *o = json_object();
    for (int i = 0; i < FACE_EXPRESSION_COUNT; i++)
        json_object_set_new(o, face_expression_names[i], num(e[i], 1e-4));
    return o;
}

static json_t *descriptor_json(const float *d)
{
    json_t *a = json_array();
    for (int k = 0; k < FACE_DESCRIPTOR_DIM; k++)
        json_array_append_new(a, json_real(d[k]));
    return a;
}

/* The face object of docs/api.md: box and score, and what was computed of the rest. */
static json_t *face_json(const face_t *f)
{
    json_t *o = json_object();
    json_object_set_new(o, "box", box_json(f->box.x, f->box.y, f->box.w, f->box.h));
    json_object_set_new(o, "score", num(f->score, 1e-4));
    if (f->have & FACE_WANT_LANDMARKS) {
        json_t *a = json_array();
        for (int i = 0; i < FACE_LANDMARK_COUNT; i++)
            json_array_append_new(a, json_pack("[o, o]", num(f->landmarks[i].x, 0.01),
                                               num(f->landmarks[i].y, 0.01)));
        json_object_set_new(o, "landmarks", a);
    }
    if (f->have & FACE_WANT_DESCRIPTOR)
        json_object_set_new(o, "descriptor", descriptor_json(f->descriptor));
    if (f->have & FACE_WANT_AGE_GENDER) {
        json_object_set_new(o, "age", num(f->age, 0.01));
        json_object_set_new(o, "gender", json_string(f->male ? "male" : "female"));
        json_object_set_new(o, "gender_probability", num(f->gender_probability, 1e-4));
    }
    if (f->have & FACE_WANT_EXPRESSIONS)
        json_object_set_new(o, "expressions", expressions_json(f->expressions));
    return o;
}

json_t *srv_stored_face_json(const store_face_t *f)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(f->id));
    json_object_set_new(o, "media_id", json_integer(f->media_id));
    json_object_set_new(o, "ts_ms", json_integer(f->ts_ms));
    json_object_set_new(o, "box", box_json(f->x, f->y, f->w, f->h));
    json_object_set_new(o, "score", num(f->score, 1e-4));
    if (f->has_landmarks) {
        json_t *a = json_array();
        for (int i = 0; i < STORE_FACE_LANDMARKS; i++)
            json_array_append_new(a, json_pack("[o, o]", num(f->landmarks[2 * i], 0.01),
                                               num(f->landmarks[2 * i + 1], 0.01)));
        json_object_set_new(o, "landmarks", a);
    }
    if (f->has_descriptor)
        json_object_set_new(o, "descriptor", descriptor_json(f->descriptor));
    if (f->has_attributes) {
        json_object_set_new(o, "age", num(f->age, 0.01));
        json_object_set_new(o, "gender", json_string(f->male ? "male" : "female"));
        json_object_set_new(o, "gender_probability", num(f->gender_probability, 1e-4));
        json_object_set_new(o, "expressions", expressions_json(f->expressions));
    }
    json_object_set_new(o, "track_id", f->track_id ? json_integer(f->track_id) : json_null());
    json_object_set_new(o, "identity_id",
                        f->identity_id ? json_integer(f->identity_id) : json_null());
    return o;
}

/* ======================================================================================
 * pictures in
 * ====================================================================================== */

/* Replies for a failed decode: 413 over the pixel limit, 400 for a bad picture. */
static void reply_image_error(srv_req_t *r, int rc, const char *what, const char *why)
{
    if (rc == CORE_ELIMIT)
        srv_reply_error(r, 413, "image_too_large", "%s is too large: %s.", what, why);
    else if (rc == CORE_EBADMEDIA || rc == CORE_EDECODE || rc == -EINVAL)
        srv_reply_error(r, 400, "invalid_image", "%s could not be decoded: %s.", what, why);
    else
        srv_reply_error(r, 500, "internal", "%s could not be read: %s.", what, why);
}

static bool picture_from_bytes(srv_req_t *r, const void *data, size_t len, const char *what,
                               image_t *img)
{
    char why[300] = "";
    if (len == 0) {
        srv_reply_error(r, 400, "invalid_image", "%s is empty: send a JPEG or PNG picture.", what);
        return false;
    }
    int rc = image_decode(data, len, (long long)r->srv->cfg->face_max_pixels, img, why, sizeof why);
    if (rc < 0) {
        reply_image_error(r, rc, what, why);
        return false;
    }
    return true;
}

/* The frame of a video on screen at a time: media_sample_frames at rate 1000/at_ms hands over
 * the frames at 0 and at at_ms; the second is kept. */
typedef struct frame_grab {
    image_t *img;
    int got;
} frame_grab_t;

static int grab_frame(void *ud, const uint8_t *rgb, int width, int height, int64_t pts_ms)
{
    (void)pts_ms;
    frame_grab_t *g = ud;
    image_free(g->img);
    int rc = image_alloc(g->img, width, height);
    if (rc < 0)
        return rc;
    memcpy(g->img->rgb, rgb, (size_t)width * (size_t)height * 3);
    g->got++;
    return 0;
}

/* The item's duration from its probe facts, in ms (INT64_MAX when unknown). */
static int64_t probe_duration_ms(const store_media_t *m)
{
    json_t *p = m->probe_json ? json_loads(m->probe_json, 0, NULL) : NULL;
    json_t *d = json_object_get(p, "duration");
    int64_t ms = json_is_number(d) ? (int64_t)(json_number_value(d) * 1000.0) : INT64_MAX;
    json_decref(p);
    return ms;
}

static bool picture_from_media(srv_req_t *r, int64_t media_id, int64_t at_ms, const char *what,
                               image_t *img)
{
    store_media_t m = {0};
    char path[4096], why[300] = "";
    bool ok = false;
    int rc = store_media_get(r->srv->st, r->account_id, media_id, &m);
    if (rc == -ENOENT) {
        srv_reply_error(r, 404, "not_found", "There is no media item %lld.", (long long)media_id);
        return false;
    }
    if (rc < 0) {
        srv_reply_error(r, 500, "internal", "Could not read the media item.");
        return false;
    }
    if (strcmp(m.kind, "image") && strcmp(m.kind, "video")) {
        srv_reply_error(r, 400, "no_picture", "Media item %lld is %s: it has no picture.",
                        (long long)media_id, m.kind);
        goto out;
    }
    if (store_blob_path(r->srv->st, m.sha256, path, sizeof path) < 0) {
        srv_reply_error(r, 500, "internal", "The item's file is missing from the blob store.");
        goto out;
    }
    long long max_pixels = (long long)r->srv->cfg->face_max_pixels;
    if (!strcmp(m.kind, "image")) {
        rc = image_load(path, max_pixels, img, why, sizeof why);
    } else {
        /* media_sample_frames samples at most 60 frames/s: earlier than 17 ms is frame 0. */
        bool first = at_ms < 17;
        frame_grab_t g = {.img = img};
        rc = media_sample_frames(path, first ? 1.0 : 1000.0 / (double)at_ms, max_pixels,
                                 first ? 1 : 2, grab_frame, &g, NULL, why, sizeof why);
        /* One frame for a later time: frame 0 was also the nearest to at_ms (a sample is
         * never handed over twice), unless at_ms is past the end. */
        if (rc == 0 && (g.got == 0 || (!first && at_ms > probe_duration_ms(&m)))) {
            srv_reply_error(r, 400, "invalid_field",
                            "at_ms %lld is past the end of media item %lld.", (long long)at_ms,
                            (long long)media_id);
            goto out;
        }
    }
    if (rc < 0) {
        reply_image_error(r, rc, what, why);
        goto out;
    }
    ok = true;
out:
    store_media_clear(&m);
    if (!ok)
        image_free(img);
    return ok;
}

/* A picture given in JSON: {"media_id":N[,"at_ms":T]} or {"data":"<base64>"} (a data: URL's
 * prefix is allowed). */
static bool picture_from_json(srv_req_t *r, json_t *spec, const char *what, image_t *img)
{
    json_t *jm = json_object_get(spec, "media_id"), *jd = json_object_get(spec, "data");
    json_t *ja = json_object_get(spec, "at_ms");
    if (!json_is_object(spec) || (jm != NULL) == (jd != NULL)) {
        srv_reply_error(r, 400, "invalid_field",
                        "%s must be an object with either \"media_id\" (and optionally \"at_ms\") "
                        "or \"data\" (the picture in base64).", what);
        return false;
    }
    if (jm) {
        if (!json_is_integer(jm) || json_integer_value(jm) < 1 ||
            (ja && (!json_is_integer(ja) || json_integer_value(ja) < 0))) {
            srv_reply_error(r, 400, "invalid_field",
                            "%s: \"media_id\" must be a positive whole number and \"at_ms\" one "
                            ">= 0.", what);
            return false;
        }
        return picture_from_media(r, json_integer_value(jm), ja ? json_integer_value(ja) : 0,
                                  what, img);
    }
    if (!json_is_string(jd)) {
        srv_reply_error(r, 400, "invalid_field", "%s: \"data\" must be a base64 string.", what);
        return false;
    }
    const char *b64 = json_string_value(jd);
    size_t len = json_string_length(jd);
    if (!strncmp(b64, "data:", 5)) {
        const char *comma = memchr(b64, ',', len);
        if (comma) {
            len -= (size_t)(comma + 1 - b64);
            b64 = comma + 1;
        }
    }
    size_t cap = len / 4 * 3 + 3, n = 0;
    unsigned char *bin = malloc(cap ? cap : 1);
    if (!bin) {
        srv_reply_error(r, 500, "internal", "Out of memory.");
        return false;
    }
    bool ok = false;
    if (sodium_base642bin(bin, cap, b64, len, " \r\n\t", &n, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0)
        srv_reply_error(r, 400, "invalid_field", "%s: \"data\" is not valid base64.", what);
    else
        ok = picture_from_bytes(r, bin, n, what, img);
    free(bin);
    return ok;
}

static bool body_is_json(const srv_req_t *r)
{
    return r->content_type && !strncasecmp(r->content_type, "application/json", 16);
}

/* Reads ?name= as a whole number in [lo, hi] (absent: def). Replies 400 and returns false for
 * anything else. */
static bool query_int(srv_req_t *r, const char *name, int64_t lo, int64_t hi, int64_t def,
                      int64_t *out)
{
    const char *v = srv_query(r, name);
    uint64_t u;
    *out = def;
    if (!v)
        return true;
    if (core_parse_u64(v, strlen(v), &u) < 0 || (int64_t)u < lo || (int64_t)u > hi) {
        srv_reply_error(r, 400, "invalid_query", "'%s' must be a whole number from %lld to %lld.",
                        name, (long long)lo, (long long)hi);
        return false;
    }
    *out = (int64_t)u;
    return true;
}

/* The picture of a single-picture call: ?media_id, a JSON body, or the raw body. */
static bool request_picture(srv_req_t *r, image_t *img)
{
    int64_t media_id, at_ms;
    if (!query_int(r, "media_id", 1, INT64_MAX, 0, &media_id) ||
        !query_int(r, "at_ms", 0, INT64_MAX, 0, &at_ms))
        return false;
    if (media_id)
        return picture_from_media(r, media_id, at_ms, "The picture", img);
    if (body_is_json(r)) {
        json_t *o = srv_body_object(r);
        if (!o)
            return false;
        bool ok = picture_from_json(r, o, "The body", img);
        json_decref(o);
        return ok;
    }
    if (r->body.len == 0) {
        srv_reply_error(r, 400, "invalid_image",
                        "Send a picture: a JPEG or PNG body, ?media_id=N, or a JSON body "
                        "{\"media_id\":N} or {\"data\":\"<base64>\"}.");
        return false;
    }
    return picture_from_bytes(r, r->body.data, r->body.len, "The picture", img);
}

/* ======================================================================================
 * analysis
 * ====================================================================================== */

/* 503 unless the engine is loaded. */
static bool engine_ready(srv_req_t *r)
{
    const char *why = jobs_faces_unavailable(r->srv->faces);
    if (!why)
        return true;
    srv_reply_error(r, 503, "faces_unavailable", "Face analysis is unavailable: %s.", why);
    return false;
}

static bool request_detector(srv_req_t *r, face_detector_t *out)
{
    const char *v = srv_query(r, "detector");
    *out = jobs_faces_config(r->srv->faces)->detector;
    if (v && face_detector_parse(v, out) < 0) {
        srv_reply_error(r, 400, "invalid_query", "'detector' must be tiny or ssd.");
        return false;
    }
    return true;
}

/* ?metric=euclidean|cosine (default euclidean) and ?threshold=T (default: the metric's
 * same-person threshold, 0.6 or 0.085). */
static bool request_comparison(srv_req_t *r, bool *cosine, double *threshold)
{
    const char *m = srv_query(r, "metric");
    const char *tq = srv_query(r, "threshold");
    *cosine = false;
    if (m && strcmp(m, "cosine") == 0)
        *cosine = true;
    else if (m && strcmp(m, "euclidean") != 0) {
        srv_reply_error(r, 400, "invalid_query", "'metric' must be euclidean or cosine.");
        return false;
    }
    /* rounded to 6 digits so the answer says 0.6, not 0.60000002 */
    *threshold = round((*cosine ? FACE_SAME_PERSON_COSINE_THRESHOLD : FACE_SAME_PERSON_THRESHOLD) *
                       1e6) / 1e6;
    if (tq) {
        char *end;
        *threshold = strtod(tq, &end);
        if (end == tq || *end || !(*threshold > 0 && *threshold <= 2)) {
            srv_reply_error(r, 400, "invalid_query", "'threshold' must be a number in (0, 2].");
            return false;
        }
    }
    return true;
}

static const char *metric_name(bool cosine)
{
    return cosine ? "cosine" : "euclidean";
}

static float descriptor_distance(bool cosine, const float *a, const float *b)
{
    return cosine ? face_cosine_distance(a, b) : face_distance(a, b);
}

/* Analyzes img with want; *faces is malloc'd (face_max_faces entries). */
static bool analyze(srv_req_t *r, const image_t *img, face_detector_t det, unsigned want,
                    face_t **faces, int *n)
{
    jobs_faces_t *jf = r->srv->faces;
    int max = jobs_faces_config(jf)->max_faces;
    face_options_t opt = face_options_default();
    opt.detector = det;
    opt.max_faces = max;
    opt.want = want;
    *faces = malloc((size_t)max * sizeof **faces);
    *n = 0;
    if (!*faces) {
        srv_reply_error(r, 500, "internal", "Out of memory.");
        return false;
    }
    face_ctx_t *ctx = NULL;
    char err[300] = "";
    int rc = jobs_faces_take(jf, &ctx);
    if (rc == 0) {
        rc = face_analyze(ctx, img, &opt, *faces, max, n, err, sizeof err);
        jobs_faces_give(jf, ctx);
    }
    if (rc < 0) {
        srv_reply_error(r, 500, "analysis_failed", "Face analysis failed: %s.",
                        *err ? err : core_strerror(rc));
        free(*faces);
        *faces = NULL;
        return false;
    }
    return true;
}

static json_t *result_json(const face_t *faces, int n, const image_t *img, face_detector_t det,
                           int64_t t0)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, face_json(&faces[i]));
    return json_pack("{s:o, s:i, s:i, s:s, s:s, s:f}", "faces", a, "width", img->width, "height",
                     img->height, "model", "face-api", "detector", face_detector_name(det), "ms",
                     (double)(core_mono_ns() - t0) / 1e6);
}

/* detect, represent, analyze: one picture in, its faces out. */
static void single_picture(srv_req_t *r, unsigned want)
{
    int64_t t0 = core_mono_ns();
    image_t img = {0};
    face_t *faces = NULL;
    int n = 0;
    face_detector_t det;
    if (!engine_ready(r) || !request_detector(r, &det) || !request_picture(r, &img))
        goto out;
    if (!analyze(r, &img, det, want, &faces, &n))
        goto out;
    srv_reply_faces_json(r, 200, result_json(faces, n, &img, det, t0));
out:
    free(faces);
    image_free(&img);
}

void srv_h_faces_detect(srv_req_t *r)
{
    single_picture(r, FACE_WANT_LANDMARKS);
}

void srv_h_faces_represent(srv_req_t *r)
{
    single_picture(r, FACE_WANT_LANDMARKS | FACE_WANT_DESCRIPTOR);
}

void srv_h_faces_analyze(srv_req_t *r)
{
    single_picture(r, FACE_WANT_ALL);
}

/* ---- verify ---- */

/* The best face of one of verify's pictures, or a reply (422 when it has none). */
static bool verify_face(srv_req_t *r, json_t *body, const char *key, face_detector_t det,
                        face_t *out)
{
    image_t img = {0};
    face_t *faces = NULL;
    int n = 0;
    bool ok = false;
    json_t *spec = json_object_get(body, key);
    if (!spec) {
        srv_reply_error(r, 400, "invalid_field",
                        "verify needs a JSON body {\"img1\":{...},\"img2\":{...}}, each with "
                        "\"media_id\" or \"data\"; '%s' is missing.", key);
        return false;
    }
    if (!picture_from_json(r, spec, key, &img) ||
        !analyze(r, &img, det, FACE_WANT_LANDMARKS | FACE_WANT_DESCRIPTOR, &faces, &n))
        goto out;
    if (n == 0) {
        srv_reply_error(r, 422, "no_face", "No face was found in %s.", key);
        goto out;
    }
    *out = faces[0]; /* the most confident */
    ok = true;
out:
    free(faces);
    image_free(&img);
    return ok;
}

void srv_h_faces_verify(srv_req_t *r)
{
    int64_t t0 = core_mono_ns();
    face_detector_t det;
    json_t *body = NULL;
    face_t *a = NULL, *b = NULL;
    bool cosine;
    double threshold;
    if (!engine_ready(r) || !request_detector(r, &det) ||
        !request_comparison(r, &cosine, &threshold))
        goto out;
    if (!body_is_json(r)) {
        srv_reply_error(r, 415, "unsupported_media_type",
                        "verify takes a JSON body {\"img1\":{...},\"img2\":{...}} (Content-Type: "
                        "application/json).");
        goto out;
    }
    if (!(body = srv_body_object(r)))
        goto out;
    a = xmalloc(sizeof *a);
    b = xmalloc(sizeof *b);
    if (!verify_face(r, body, "img1", det, a) || !verify_face(r, body, "img2", det, b))
        goto out;
    float d = descriptor_distance(cosine, a->descriptor, b->descriptor);
    json_t *o = json_pack("{s:b, s:o, s:f, s:s, s:s, s:s, s:o, s:o, s:f}", "verified",
                          d < threshold, "distance", num(d, 1e-6), "threshold", threshold,
                          "model", "face-api", "detector", face_detector_name(det), "metric",
                          metric_name(cosine), "img1", face_json(a), "img2", face_json(b), "ms",
                          (double)(core_mono_ns() - t0) / 1e6);
    srv_reply_faces_json(r, 200, o);
out:
    free(a);
    free(b);
    json_decref(body);
}

/* ---- find ---- */

typedef struct find_match {
    float distance;
    store_face_t face; /* descriptor, box, media, identity */
} find_match_t;

typedef struct find_state {
    const face_t *query;
    int n_query;
    float threshold;
    bool cosine;
    int limit;
    find_match_t *matches; /* n_query x limit */
    int *n_matches;
} find_state_t;

/* Keeps, per query face, the best `limit` matches under the threshold, one per media item. */
static int find_visit(void *ud, const store_face_t *f)
{
    find_state_t *s = ud;
    for (int q = 0; q < s->n_query; q++) {
        float d = descriptor_distance(s->cosine, s->query[q].descriptor, f->descriptor);
        if (d >= s->threshold)
            continue;
        find_match_t *m = s->matches + (size_t)q * (size_t)s->limit;
        int *n = &s->n_matches[q];
        int slot = -1;
        for (int i = 0; i < *n && slot < 0; i++)
            if (m[i].face.media_id == f->media_id)
                slot = m[i].distance > d ? i : -2;
        if (slot == -2)
            continue; /* that item has a closer face already */
        if (slot < 0 && *n < s->limit)
            slot = (*n)++;
        if (slot < 0) {
            int worst = 0;
            for (int i = 1; i < *n; i++)
                if (m[i].distance > m[worst].distance)
                    worst = i;
            if (m[worst].distance <= d)
                continue;
            slot = worst;
        }
        m[slot].distance = d;
        m[slot].face = *f;
    }
    return 0;
}

static int by_distance(const void *a, const void *b)
{
    const find_match_t *x = a, *y = b;
    return (x->distance > y->distance) - (x->distance < y->distance);
}

static json_t *match_json(srv_req_t *r, const find_match_t *m)
{
    const store_face_t *f = &m->face;
    json_t *name = json_null();
    if (f->identity_id) {
        store_identity_t id;
        if (store_identity_get(r->srv->st, r->account_id, f->identity_id, &id) == 0 && id.name)
            name = json_string(id.name);
        store_identity_clear(&id);
    }
    return json_pack("{s:o, s:I, s:I, s:I, s:o, s:o, s:o}", "distance", num(m->distance, 1e-6),
                     "face_id", (json_int_t)f->id, "media_id", (json_int_t)f->media_id, "ts_ms",
                     (json_int_t)f->ts_ms, "box", box_json(f->x, f->y, f->w, f->h),
                     "identity_id", f->identity_id ? json_integer(f->identity_id) : json_null(),
                     "identity_name", name);
}

void srv_h_faces_find(srv_req_t *r)
{
    int64_t t0 = core_mono_ns();
    image_t img = {0};
    face_t *faces = NULL;
    int n = 0;
    int64_t limit;
    face_detector_t det;
    find_state_t s = {0};
    bool cosine;
    double threshold;
    if (!engine_ready(r) || !request_detector(r, &det) ||
        !request_comparison(r, &cosine, &threshold) ||
        !query_int(r, "limit", 1, FIND_MAX_LIMIT, FIND_DEFAULT_LIMIT, &limit))
        goto out;
    if (!request_picture(r, &img) ||
        !analyze(r, &img, det, FACE_WANT_LANDMARKS | FACE_WANT_DESCRIPTOR, &faces, &n))
        goto out;
    s.query = faces;
    s.n_query = n;
    s.threshold = (float)threshold;
    s.cosine = cosine;
    s.limit = (int)limit;
    s.matches = xcalloc((size_t)(n ? n : 1) * (size_t)limit, sizeof *s.matches);
    s.n_matches = xcalloc((size_t)(n ? n : 1), sizeof *s.n_matches);
    if (n > 0 && store_faces_scan(r->srv->st, r->account_id, find_visit, &s) < 0) {
        srv_reply_error(r, 500, "internal", "Could not read the face gallery.");
        goto out;
    }
    json_t *res = result_json(faces, n, &img, det, t0);
    json_t *arr = json_object_get(res, "faces");
    for (int q = 0; q < n; q++) {
        find_match_t *m = s.matches + (size_t)q * (size_t)limit;
        qsort(m, (size_t)s.n_matches[q], sizeof *m, by_distance);
        json_t *ma = json_array();
        for (int i = 0; i < s.n_matches[q]; i++)
            json_array_append_new(ma, match_json(r, &m[i]));
        json_object_set_new(json_array_get(arr, (size_t)q), "matches", ma);
    }
    json_object_set_new(res, "threshold", json_real(threshold));
    json_object_set_new(res, "metric", json_string(metric_name(cosine)));
    srv_reply_faces_json(r, 200, res);
out:
    free(s.matches);
    free(s.n_matches);
    free(faces);
    image_free(&img);
}

/* ======================================================================================
 * GET /v1/media/{id}/faces
 * ====================================================================================== */

void srv_h_media_faces(srv_req_t *r)
{
    store_face_t *faces = NULL;
    store_face_track_t *tracks = NULL;
    size_t nf = 0, nt = 0;
    store_faces_status_t fs = {0};
    int rc = store_faces_list_media(r->srv->st, r->account_id, r->path_id, &faces, &nf, &tracks,
                                    &nt);
    if (rc == -ENOENT) {
        srv_reply_error(r, 404, "not_found", "There is no such media item.");
        return;
    }
    if (rc < 0 || ((rc = store_faces_status_get(r->srv->st, r->account_id, r->path_id, &fs)) < 0 &&
                   rc != -ENOENT)) {
        srv_reply_error(r, 500, "internal", "Could not read the item's faces.");
        goto out;
    }
    bool has_status = rc == 0;
    /* The two long arrays can be left out: an hour of video is thousands of faces. */
    const char *qd = srv_query(r, "descriptors"), *ql = srv_query(r, "landmarks");
    bool no_desc = qd && !strcmp(qd, "false"), no_lmk = ql && !strcmp(ql, "false");
    json_t *fa = json_array(), *ta = json_array();
    for (size_t i = 0; i < nf; i++) {
        json_t *fo = srv_stored_face_json(&faces[i]);
        if (no_desc)
            json_object_del(fo, "descriptor");
        if (no_lmk)
            json_object_del(fo, "landmarks");
        json_array_append_new(fa, fo);
    }
    for (size_t i = 0; i < nt; i++)
        json_array_append_new(
            ta, json_pack("{s:I, s:I, s:I, s:i, s:o}", "id", (json_int_t)tracks[i].id, "start_ms",
                          (json_int_t)tracks[i].start_ms, "end_ms", (json_int_t)tracks[i].end_ms,
                          "face_count", tracks[i].face_count, "identity_id",
                          tracks[i].identity_id ? json_integer(tracks[i].identity_id)
                                                : json_null()));
    /* status null: not processed for faces yet (queued, or an audio/text item) */
    json_t *o = json_pack("{s:I, s:o, s:o, s:o, s:i, s:o, s:o}", "media_id",
                          (json_int_t)r->path_id, "status",
                          has_status ? json_string(fs.status) : json_null(), "error",
                          fs.error ? json_string(fs.error) : json_null(), "detector",
                          has_status && fs.detector[0] ? json_string(fs.detector) : json_null(),
                          "frames", fs.frames, "faces", fa, "tracks", ta);
    srv_reply_faces_json(r, 200, o);
out:
    store_faces_status_clear(&fs);
    free(faces);
    free(tracks);
}
