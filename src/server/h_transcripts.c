/* server/h_transcripts.c: an item's transcript — GET (JSON, WebVTT or SRT) and PUT (a person's
 * correction, which replaces the transcript and the item's corpus passages). Request pool.
 *
 * Answers: 404 for an item that does not exist or is another account's, for an image or text
 * item, and for an item processed without a transcript (no audio track); 409 while the item is
 * queued or processing (the transcript is made by media.process) and for an item whose
 * processing failed. */
#include "server/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRANSCRIPT_MAX_SEGMENTS 10000
#define TRANSCRIPT_SEGMENT_MAX_BYTES 4000
#define TRANSCRIPT_MAX_MS ((json_int_t)48 * 3600 * 1000)

/* Copies text with every run of whitespace (and control characters) made one space, trimmed, so
 * no cue of the VTT/SRT output can be broken by a blank line in it. */
static char *squeeze(const char *text)
{
    size_t len = strlen(text), o = 0;
    char *out = xmalloc(len + 1);
    bool space = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (ch <= 0x20 || ch == 0x7f) {
            space = o > 0;
            continue;
        }
        if (space)
            out[o++] = ' ';
        space = false;
        out[o++] = (char)ch;
    }
    out[o] = '\0';
    return out;
}

/* Reads {"segments":[{start_ms,end_ms,text[,confidence][,words]}...]} into *t (words are not
 * read: only the segments' spans and text, which is what the subtitles and the corpus use).
 * stored: the transcript was written by us (recognition of up to 3 hours may have more segments
 * than a request may send), so the request bounds on counts and sizes do not apply.
 * Returns 0, or -EINVAL with the reason in why. */
static int parse_segments(json_t *segs, bool stored, asr_transcript_t *t, char *why, size_t whycap)
{
    memset(t, 0, sizeof *t);
    if (!json_is_array(segs)) {
        snprintf(why, whycap, "'segments' must be an array");
        return -EINVAL;
    }
    size_t n = json_array_size(segs);
    if (!stored && n > TRANSCRIPT_MAX_SEGMENTS) {
        snprintf(why, whycap, "at most %d segments", TRANSCRIPT_MAX_SEGMENTS);
        return -EINVAL;
    }
    t->segments = xcalloc(n ? n : 1, sizeof *t->segments);
    json_int_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(segs, i);
        json_t *js = json_object_get(s, "start_ms"), *je = json_object_get(s, "end_ms");
        json_t *jt = json_object_get(s, "text");
        if (!json_is_object(s) || !json_is_integer(js) || !json_is_integer(je) ||
            !json_is_string(jt)) {
            snprintf(why, whycap, "segment %zu needs integer 'start_ms' and 'end_ms' and a "
                     "string 'text'", i);
            goto bad;
        }
        json_int_t a = json_integer_value(js), b = json_integer_value(je);
        if (a < 0 || b < a || (!stored && b > TRANSCRIPT_MAX_MS) || a < prev) {
            snprintf(why, whycap, "segment %zu: 0 <= start_ms <= end_ms <= %lld, and segments in "
                     "order of start_ms", i, (long long)TRANSCRIPT_MAX_MS);
            goto bad;
        }
        const char *text = json_string_value(jt);
        if ((!stored && json_string_length(jt) > TRANSCRIPT_SEGMENT_MAX_BYTES) ||
            strlen(text) != json_string_length(jt)) {
            snprintf(why, whycap, "segment %zu: text is at most %d bytes, without NUL characters",
                     i, TRANSCRIPT_SEGMENT_MAX_BYTES);
            goto bad;
        }
        char *sq = squeeze(text);
        if (!*sq) {
            free(sq);
            snprintf(why, whycap, "segment %zu has no text", i);
            goto bad;
        }
        asr_segment_t *seg = &t->segments[t->n_segments++];
        seg->start_ms = a;
        seg->end_ms = b;
        seg->text = sq;
        json_t *jc = json_object_get(s, "confidence");
        seg->confidence = json_is_number(jc) ? (float)json_number_value(jc) : 1.0f;
        prev = a;
    }
    return 0;
bad:
    asr_transcript_free(t);
    return -EINVAL;
}

/* Looks the item up and answers 404/409/500 itself when it has no transcript to show or change.
 * Returns true with *m filled (cleared by the caller) when the caller may go on. */
static bool transcript_item(srv_req_t *r, store_media_t *m)
{
    int rc = store_media_get(r->srv->st, r->account_id, r->path_id, m);
    if (rc == -ENOENT) {
        srv_reply_error(r, 404, "not_found", "No such media item.");
        return false;
    }
    if (rc < 0) {
        srv_reply_error(r, 500, "internal", "Could not read the media item.");
        return false;
    }
    if (strcmp(m->kind, "audio") && strcmp(m->kind, "video")) {
        srv_reply_error(r, 404, "not_found", "A %s item has no transcript.", m->kind);
        return false;
    }
    if (m->status == STORE_MEDIA_FAILED) {
        srv_reply_error(r, 409, "failed", "The item failed to process, so it has no transcript: %s",
                        m->error ? m->error : "");
        return false;
    }
    if (m->status != STORE_MEDIA_READY) {
        srv_reply_error(r, 409, "not_ready",
                        "The item is still being processed; its transcript comes with it.");
        return false;
    }
    return true;
}

/* Answers the stored transcript t of item m in the requested format. */
static void reply_transcript(srv_req_t *r, const store_transcript_t *t, const char *format)
{
    core_buf_t b;
    core_buf_init(&b);
    if (!format || !strcmp(format, "json")) {
        /* t->json is our own {"segments":[...]}: the item's facts go in front of it. */
        core_buf_printf(&b, "{\"media_id\":%lld,\"corrected\":%s,\"created_at\":%lld,"
                        "\"updated_at\":%lld,", (long long)t->media_id,
                        t->corrected ? "true" : "false", (long long)t->created_at,
                        (long long)t->updated_at);
        core_buf_puts(&b, t->json[0] == '{' ? t->json + 1 : "\"segments\":[]}");
        core_buf_puts(&b, "\n");
        size_t len = b.len;
        srv_reply_text(r, 200, "application/json", core_buf_steal(&b), len);
        return;
    }
    json_t *o = json_loads(t->json, 0, NULL);
    asr_transcript_t at = {0};
    char why[160];
    if (!o || parse_segments(json_object_get(o, "segments"), true, &at, why, sizeof why) < 0) {
        json_decref(o);
        core_buf_destroy(&b);
        srv_reply_error(r, 500, "internal", "The stored transcript could not be read.");
        return;
    }
    json_decref(o);
    bool vtt = !strcmp(format, "vtt");
    if (vtt)
        asr_format_vtt(&at, &b);
    else
        asr_format_srt(&at, &b);
    asr_transcript_free(&at);
    size_t len = b.len;
    srv_reply_text(r, 200, vtt ? "text/vtt; charset=utf-8" : "application/x-subrip; charset=utf-8",
                   core_buf_steal(&b), len);
}

void srv_h_transcript_get(srv_req_t *r)
{
    const char *format = srv_query(r, "format");
    if (format && strcmp(format, "json") && strcmp(format, "vtt") && strcmp(format, "srt")) {
        srv_reply_error(r, 400, "invalid_query", "'format' is json, vtt or srt.");
        return;
    }
    store_media_t m = {0};
    store_transcript_t t = {0};
    if (!transcript_item(r, &m))
        goto out;
    int rc = store_transcript_get(r->srv->st, r->account_id, m.id, &t);
    if (rc == -ENOENT)
        srv_reply_error(r, 404, "not_found", "This item has no transcript (it has no audio "
                        "track, or was processed before transcription existed).");
    else if (rc < 0)
        srv_reply_error(r, 500, "internal", "Could not read the transcript.");
    else
        reply_transcript(r, &t, format);
out:
    store_transcript_clear(&t);
    store_media_clear(&m);
}

/* The item's duration in ms, from its PCM artifact (0 when unknown). */
static int64_t item_duration_ms(server_t *s, int64_t media_id)
{
    store_artifact_t a = {0};
    int64_t ms = 0;
    if (store_artifact_get(s->st, media_id, "pcm", &a) == 0 && a.info_json) {
        json_t *o = json_loads(a.info_json, 0, NULL);
        double d = json_number_value(json_object_get(o, "duration"));
        if (d > 0 && d < (double)TRANSCRIPT_MAX_MS / 1000)
            ms = (int64_t)(d * 1000 + 0.5);
        json_decref(o);
    }
    store_artifact_clear(&a);
    return ms;
}

void srv_h_transcript_put(srv_req_t *r)
{
    store_media_t m = {0};
    store_transcript_t t = {0};
    asr_transcript_t at = {0};
    char why[200];
    json_t *o = srv_body_object(r);
    if (!o)
        return;
    json_t *segs = json_object_get(o, "segments"), *text = json_object_get(o, "text");
    if ((segs != NULL) == (text != NULL)) {
        srv_reply_error(r, 400, "invalid_field",
                        "Send either 'segments' (an array of {start_ms, end_ms, text}) or 'text'.");
        goto out;
    }
    if (!transcript_item(r, &m))
        goto out;
    if (segs) {
        if (parse_segments(segs, false, &at, why, sizeof why) < 0) {
            srv_reply_error(r, 400, "invalid_field", "Bad transcript: %s.", why);
            goto out;
        }
    } else {
        const char *s = json_string_value(text);
        if (!s || strlen(s) != json_string_length(text)) {
            srv_reply_error(r, 400, "invalid_field", "'text' must be a string without NUL "
                            "characters.");
            goto out;
        }
        char *sq = squeeze(s);
        at.segments = xcalloc(1, sizeof *at.segments);
        if (*sq) {
            at.n_segments = 1;
            at.segments[0].end_ms = item_duration_ms(r->srv, m.id);
            at.segments[0].text = sq;
            at.segments[0].confidence = 1.0f;
        } else {
            free(sq); /* "" clears the transcript: the item has no speech */
        }
    }
    int rc = jobs_transcript_store(r->srv->st, r->account_id, m.id, &at, true);
    if (rc == -ENOENT) {
        srv_reply_error(r, 404, "not_found", "No such media item.");
        goto out;
    }
    if (rc < 0 || store_transcript_get(r->srv->st, r->account_id, m.id, &t) < 0) {
        srv_reply_error(r, 500, "internal", "Could not store the transcript.");
        goto out;
    }
    core_log(CORE_LOG_INFO, "transcript.corrected", "media=%lld segments=%zu", (long long)m.id,
             at.n_segments);
    reply_transcript(r, &t, "json");
out:
    asr_transcript_free(&at);
    store_transcript_clear(&t);
    store_media_clear(&m);
    json_decref(o);
}
