/* jobs/media_process.c: the media.process job (first half of Data Processing): separate the
 * audio and video tracks by stream copy, decode the audio to 16 kHz mono PCM, and make a JPEG
 * thumbnail; each result becomes a blob and an artifact of the item. The audio is transcribed
 * (jobs/transcribe.c): the transcript replaces the item's earlier one and its corpus passages.
 * Images and video frames go through face analysis (jobs/faces.c): the item's faces, tracks and
 * identities replace its earlier ones; a failure there is kept as the item's faces status.
 *
 * Idempotent: artifacts are stored with store_artifact_put (replace by name), blobs are content
 * addressed, and temporary files live in the store's tmp/ (emptied at start), so running the job
 * again after a crash gives the same rows and files as running it once. */
#include "jobs/jobs.h"

#include "core/core.h"
#include "media/media.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Moves the file at tmp_path into the blob store and records it as artifact name of the item. */
static int keep_artifact(store_t *st, int64_t media_id, const char *name, const char *tmp_path,
                         const char *mime, const char *ext, json_t *info)
{
    store_artifact_t a = {0};
    a.media_id = media_id;
    snprintf(a.name, sizeof a.name, "%s", name);
    snprintf(a.mime, sizeof a.mime, "%s", mime);
    snprintf(a.ext, sizeof a.ext, "%s", ext);
    int rc = store_blob_put_file(st, tmp_path, a.sha256, &a.size);
    if (rc < 0)
        return rc;
    a.info_json = info ? json_dumps(info, JSON_COMPACT) : NULL;
    rc = store_artifact_put(st, &a);
    free(a.info_json);
    return rc;
}

static json_t *track_info(const media_track_file_t *t)
{
    return json_pack("{s:s, s:f}", "codec", t->codec, "duration", t->duration);
}

int jobs_run_media_process(store_t *st, const store_job_t *job, const jobs_config_t *cfg)
{
    int thumbnail_size = cfg->thumbnail_size;
    store_media_t m = {0};
    media_track_file_t audio = {0}, video = {0};
    char *prefix = NULL, *pcm_path = NULL, *thumb_path = NULL;
    char err[512] = "";
    char in_path[4096];
    int rc = store_media_get(st, job->account_id, job->media_id, &m);
    if (rc == -ENOENT) /* deleted while queued: nothing to do */
        return store_job_finish(st, job, "the item was deleted");
    if (rc < 0)
        return rc;
    if ((rc = store_blob_path(st, m.sha256, in_path, sizeof in_path)) < 0) {
        snprintf(err, sizeof err, "the original file is missing from the blob store");
        goto out;
    }
    bool is_av = !strcmp(m.kind, "video") || !strcmp(m.kind, "audio");
    bool wants_thumb = !strcmp(m.kind, "video") || !strcmp(m.kind, "image");

    if (is_av) {
        prefix = store_temp_path(st, "");
        if ((rc = media_split(in_path, prefix, &audio, &video, err, sizeof err)) < 0)
            goto out;
        if (audio.present) {
            json_t *info = track_info(&audio);
            rc = keep_artifact(st, m.id, "audio", audio.path, audio.mime, audio.ext, info);
            json_decref(info);
            if (rc < 0)
                goto store_failed;
            pcm_path = store_temp_path(st, ".wav");
            double secs = 0;
            if ((rc = media_decode_pcm16k(in_path, pcm_path, &secs, err, sizeof err)) < 0)
                goto out;
            /* Transcribed from the temp file, before keep_artifact moves it into the blobs. */
            if ((rc = jobs_transcribe(st, cfg, m.account_id, m.id, pcm_path, err, sizeof err)) < 0)
                goto out;
            info = json_pack("{s:s, s:i, s:i, s:i, s:f}", "codec", "pcm_s16le", "sample_rate",
                             16000, "channels", 1, "bits", 16, "duration", secs);
            rc = keep_artifact(st, m.id, "pcm", pcm_path, "audio/wav", "wav", info);
            json_decref(info);
            if (rc < 0)
                goto store_failed;
        }
        if (video.present) {
            json_t *info = track_info(&video);
            rc = keep_artifact(st, m.id, "video", video.path, video.mime, video.ext, info);
            json_decref(info);
            if (rc < 0)
                goto store_failed;
        }
        if (!audio.present && !video.present) {
            rc = CORE_EBADMEDIA;
            snprintf(err, sizeof err, "the file has no audio or video track to separate");
            goto out;
        }
    }
    if (wants_thumb) {
        thumb_path = store_temp_path(st, ".jpg");
        if ((rc = media_thumbnail(in_path, thumb_path, thumbnail_size, err, sizeof err)) < 0)
            goto out;
        json_t *info = json_pack("{s:i}", "max_side", thumbnail_size);
        rc = keep_artifact(st, m.id, "thumbnail", thumb_path, "image/jpeg", "jpg", info);
        json_decref(info);
        if (rc < 0)
            goto store_failed;
    }
    /* Faces (jobs/faces.c) record their own outcome on the item and never fail it. */
    if (!strcmp(m.kind, "image") || video.present) {
        if ((rc = jobs_faces_process(st, cfg->faces, m.account_id, m.id, m.kind, in_path)) < 0)
            goto store_failed;
    }
    rc = 0;
    goto out;

store_failed:
    snprintf(err, sizeof err, "could not store a result: %s", core_strerror(rc));
out:
    /* Whatever is left in tmp/ (a failure part way) is removed here; on success the files were
     * moved into the blob store and these unlinks find nothing. */
    if (audio.present)
        unlink(audio.path);
    if (video.present)
        unlink(video.path);
    if (pcm_path)
        unlink(pcm_path);
    if (thumb_path)
        unlink(thumb_path);
    free(prefix);
    free(pcm_path);
    free(thumb_path);
    store_media_clear(&m);
    /* CORE_ESQL: the database failed; -ECANCELED: personad is stopping (faces). Either way
     * the job stays running and runs again after the restart. */
    if (rc < 0 && rc != CORE_ESQL && rc != -ECANCELED) {
        if (!*err)
            snprintf(err, sizeof err, "%s", core_strerror(rc));
        return store_job_finish(st, job, err);
    }
    if (rc < 0)
        return rc; /* left running; retried after restart */
    return store_job_finish(st, job, NULL);
}
