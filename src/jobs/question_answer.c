/* jobs/question_answer.c: the question.answer job — extractive answers until a text generation
 * service is configured. Retrieves the account's most relevant passages (FTS5, bm25), composes
 * the answer from the persona's own words with the source of each passage, and streams it:
 * answer.delta events as text becomes available, then answer.done with the whole text, committed
 * in one transaction with the question's end. An extractive answer is complete at once, so it
 * goes out as one delta: every event costs a frame to every desktop of the account (at 10,000
 * clients, one delta per sentence made the fan-out 4x slower), and a client splits sentences
 * itself to start speaking early.
 *
 * The streaming path is the one a generation service will use: text arrives in pieces, each piece
 * is an answer.delta with its offset. A rerun after a crash emits the same deltas again with the
 * same offsets (the extractive answer is deterministic), which clients drop as overlap. */
#include "jobs/jobs.h"

#include "core/core.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ANSWER_PASSAGES 3       /* passages quoted in an answer */
#define SEARCH_PASSAGES 5       /* passages retrieved and recorded */
#define PASSAGE_MAX_CHARS 600   /* a longer passage is cut at a sentence end */

static const char nothing_yet[] = "I have nothing about that yet.";

/* "at 02:13 in "walk"" style source of a passage. */
static void describe_source(const store_passage_t *p, core_buf_t *out)
{
    const char *title = p->title && *p->title ? p->title : "an untitled item";
    if (strcmp(p->kind, "text") != 0 && p->t_end > 0) {
        int secs = (int)p->t_start;
        core_buf_printf(out, "At %02d:%02d in \"%s\", you said: ", secs / 60, secs % 60, title);
    } else {
        core_buf_printf(out, "In \"%s\", you wrote: ", title);
    }
}

/* Appends the passage text, cut at the last sentence end before PASSAGE_MAX_CHARS. */
static void append_passage(core_buf_t *out, const char *text)
{
    size_t n = strlen(text);
    if (n > PASSAGE_MAX_CHARS) {
        size_t cut = 0;
        for (size_t i = 0; i < PASSAGE_MAX_CHARS; i++)
            if ((text[i] == '.' || text[i] == '!' || text[i] == '?') &&
                (text[i + 1] == ' ' || text[i + 1] == '\n'))
                cut = i + 1;
        if (cut == 0) /* no sentence end: cut at a UTF-8 boundary */
            for (cut = PASSAGE_MAX_CHARS; cut > 0 && ((unsigned char)text[cut] & 0xC0) == 0x80;)
                cut--;
        n = cut;
    }
    while (n > 0 && (text[n - 1] == ' ' || text[n - 1] == '\n'))
        n--;
    /* newlines inside a passage read as spaces when spoken */
    for (size_t i = 0; i < n; i++)
        core_buf_append(out, text[i] == '\n' ? " " : &text[i], 1);
    if (n > 0 && text[n - 1] != '.' && text[n - 1] != '!' && text[n - 1] != '?')
        core_buf_puts(out, ".");
}

static json_t *passages_json(const store_passage_t *list, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        const store_passage_t *p = &list[i];
        json_array_append_new(
            arr, json_pack("{s:I, s:s?, s:s, s:f, s:f, s:I, s:s, s:f}", "media_id",
                           (json_int_t)p->media_id, "title", p->title, "kind", p->kind,
                           "t_start", p->t_start, "t_end", p->t_end, "created_at",
                           (json_int_t)p->created_at, "text", p->text, "score", p->score));
    }
    return arr;
}

int jobs_run_question_answer(store_t *st, const store_job_t *job, const jobs_config_t *cfg)
{
    store_question_t q = {0};
    store_passage_t *list = NULL;
    size_t n = 0;
    core_buf_t answer;
    core_buf_init(&answer);
    char *passages = NULL, *timings = NULL, *done = NULL;
    int64_t t0 = core_mono_ns();
    int rc = store_question_get(st, job->account_id, job->question_id, &q);
    if (rc < 0) {
        rc = store_question_finish(st, job, NULL, NULL, NULL, "the question no longer exists",
                                   "{}", NULL);
        goto out;
    }
    if ((rc = store_corpus_search(st, job->account_id, q.text, SEARCH_PASSAGES, &list, &n)) < 0) {
        store_event_t ev = {0};
        char body[96];
        snprintf(body, sizeof body, "{\"question_id\":%lld,\"error\":\"search failed\"}",
                 (long long)q.id);
        rc = store_question_finish(st, job, NULL, NULL, NULL, "the corpus search failed", body, &ev);
        if (rc == 0 && cfg->on_event)
            cfg->on_event(cfg->event_ud, &ev);
        store_event_clear(&ev);
        goto out;
    }
    int64_t t_retrieved = core_mono_ns();

    if (n == 0) {
        core_buf_puts(&answer, nothing_yet);
    } else {
        for (size_t i = 0; i < n && i < ANSWER_PASSAGES; i++) {
            if (i)
                core_buf_puts(&answer, " ");
            describe_source(&list[i], &answer);
            append_passage(&answer, list[i].text);
        }
    }
    int64_t t_composed = core_mono_ns();

    /* Stream what there is: here the whole answer, as one answer.delta at offset 0. */
    int64_t first_delta_ns = 0;
    json_t *body = json_pack("{s:I, s:I, s:s%}", "question_id", (json_int_t)q.id, "offset",
                             (json_int_t)0, "text", answer.data, answer.len);
    char *delta = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (delta && jobs_emit(st, cfg, job->account_id, "answer.delta", delta) == 0)
        first_delta_ns = core_mono_ns();
    free(delta);

    json_t *pj = passages_json(list, n);
    passages = json_dumps(pj, JSON_COMPACT);
    json_decref(pj);
    double ms = 1e-6;
    json_t *tj = json_pack("{s:f, s:f, s:f, s:f}", "retrieve_ms", (double)(t_retrieved - t0) * ms,
                           "compose_ms", (double)(t_composed - t_retrieved) * ms,
                           "first_delta_ms",
                           first_delta_ns ? (double)(first_delta_ns - t0) * ms : 0.0,
                           "total_ms", (double)(core_mono_ns() - t0) * ms);
    timings = json_dumps(tj, JSON_COMPACT);
    json_decref(tj);
    json_t *dj = json_pack("{s:I, s:s, s:i}", "question_id", (json_int_t)q.id, "text",
                           answer.data, "passages", (int)n);
    done = json_dumps(dj, JSON_COMPACT);
    json_decref(dj);

    store_event_t ev = {0};
    rc = store_question_finish(st, job, answer.data, passages, timings, NULL, done, &ev);
    if (rc == 0 && cfg->on_event)
        cfg->on_event(cfg->event_ud, &ev);
    store_event_clear(&ev);
out:
    free(passages);
    free(timings);
    free(done);
    core_buf_destroy(&answer);
    store_passage_list_free(&list, n);
    store_question_clear(&q);
    return rc;
}
