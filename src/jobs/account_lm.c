/* jobs/account_lm.c: each account's personal vocabulary for speech recognition. Before an
 * account's recording is transcribed, its language model (<data_dir>/lm/<account_id>/, written by
 * asr_lm_build) is brought up to date with what the account has written: its text items and the
 * transcripts a person corrected. A hash of those texts is kept beside the model
 * (sources.hash), so the model is rebuilt only when they changed — the check costs one pass over
 * the account's passages, the rebuild about a second. An account with no such text has no model
 * and is recognized with the general one. */
#include "jobs/jobs.h"

#include "asr/asr.h"
#include "core/core.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LM_PAGE 500
#define LM_HASH_FILE "sources.hash"

/* Whether a passage is the account's own writing: a text item, or a transcript someone
 * corrected (a recognized transcript would only teach the model its own mistakes). */
static bool is_written(store_t *st, int64_t account_id, const store_passage_t *p,
                       int64_t *cached_media, bool *cached_corrected)
{
    if (strcmp(p->kind, "text") == 0)
        return true;
    if (p->media_id != *cached_media) {
        store_transcript_t t = {0};
        *cached_media = p->media_id;
        *cached_corrected = store_transcript_get(st, account_id, p->media_id, &t) == 0 &&
                            t.corrected;
        store_transcript_clear(&t);
    }
    return *cached_corrected;
}

int jobs_account_lm_refresh(store_t *st, const char *data_dir, int64_t account_id)
{
    int rc = 0;
    char **texts = NULL;
    size_t n = 0, cap = 0, bytes = 0;
    uint64_t h = CORE_FNV1A_INIT;
    int64_t cursor = 0, next = 0, cached_media = 0;
    bool cached_corrected = false;
    char *dir = NULL, *hash_path = NULL, *old = NULL;
    for (;;) {
        store_passage_t *list = NULL;
        size_t k = 0;
        if ((rc = store_corpus_list(st, account_id, cursor, LM_PAGE, &list, &k, &next)) < 0)
            goto out;
        for (size_t i = 0; i < k && bytes < ASR_LM_MAX_TEXT_BYTES; i++) {
            if (!is_written(st, account_id, &list[i], &cached_media, &cached_corrected))
                continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                texts = xrealloc(texts, cap * sizeof *texts);
            }
            size_t len = strlen(list[i].text);
            texts[n++] = xstrdup(list[i].text);
            bytes += len;
            h = core_fnv1a(h, list[i].text, len + 1);
        }
        store_passage_list_free(&list, k);
        if (k == 0)
            break;
        cursor = next;
    }
    dir = xasprintf("%s/lm/%" PRId64, data_dir, account_id);
    hash_path = xasprintf("%s/%s", dir, LM_HASH_FILE);
    char want[32];
    snprintf(want, sizeof want, "%016" PRIx64 "\n", h);
    size_t old_len = 0;
    if (n == 0 || (core_read_file(hash_path, 64, &old, &old_len) == 0 && strcmp(old, want) == 0))
        goto out; /* nothing written yet, or the model is up to date */
    if ((rc = core_mkdirs(dir)) < 0)
        goto out;
    asr_lm_options_t o;
    asr_lm_options_defaults(&o);
    int64_t t0 = core_now_ms();
    if ((rc = asr_lm_build((const char *const *)texts, n, dir, &o)) < 0) {
        core_log(CORE_LOG_WARN, "jobs.account_lm", "account=%" PRId64 " texts=%zu error=\"%s\"",
                 account_id, n, core_strerror(rc));
        goto out;
    }
    core_chunk_t c = {want, strlen(want)};
    rc = core_write_file_atomic(hash_path, &c, 1, 0600);
    core_log(CORE_LOG_INFO, "jobs.account_lm",
             "account=%" PRId64 " texts=%zu bytes=%zu ms=%" PRId64, account_id, n, bytes,
             core_now_ms() - t0);
out:
    for (size_t i = 0; i < n; i++)
        free(texts[i]);
    free(texts);
    free(dir);
    free(hash_path);
    free(old);
    return rc;
}
