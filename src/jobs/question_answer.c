/* jobs/question_answer.c: the question.answer job. Retrieves the account's most relevant
 * passages (FTS5, bm25); then either composes an extractive answer from the persona's own words
 * with the source of each passage, or — with a text generation service and a model (the
 * account's trained one, else textgen_model) — has the model answer from those passages
 * (retrieval-augmented generation) and streams what it writes. Either way: answer.delta events as
 * text becomes available, then answer.done with the whole text, committed in one transaction
 * with the question's end.
 *
 * An extractive answer is complete at once, so it goes out as one delta: every event costs a
 * frame to every desktop of the account (at 10,000 clients, one delta per sentence made the
 * fan-out 4x slower), and a client splits sentences itself to start speaking early. A generated
 * answer goes out as it comes, coalesced into pieces of at least DELTA_MIN_BYTES (or a sentence
 * end), for the same reason.
 *
 * The service down (unreachable, 5xx, 429, a stream cut short): the job is deferred with backoff
 * (store_job_defer: the worker is free meanwhile), and once textgen_fallback_s have passed since
 * the question was asked it is answered extractively with JOBS_NOTE_UNAVAILABLE. The service
 * refusing (4xx, e.g. a model that is gone, or a prompt too long even at its smallest): answered
 * extractively at once with JOBS_NOTE_REFUSED, and logged.
 *
 * Reruns: an extractive answer is deterministic, so a rerun after a crash emits the same deltas
 * with the same offsets, which clients drop as overlap. A generation is asked with the question's
 * id as its seed, so a service that honours seeds writes the same text again too; answer.done
 * always carries the whole final text. */
#include "jobs/jobs.h"

#include "core/core.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ANSWER_PASSAGES 3       /* passages quoted in an answer */
#define SEARCH_PASSAGES 5       /* passages retrieved and recorded */
#define PASSAGE_MAX_CHARS 600   /* a longer passage is cut at a sentence end */

static const char nothing_yet[] = "I have nothing about that yet.";

/* A time in an item as "02:13", or "1:02:03" from an hour on. */
static const char *time_in_item(double t, char out[32])
{
    long secs = t > 0 && t < 1e9 ? (long)t : 0;
    if (secs >= 3600)
        snprintf(out, 32, "%ld:%02ld:%02ld", secs / 3600, secs / 60 % 60, secs % 60);
    else
        snprintf(out, 32, "%02ld:%02ld", secs / 60, secs % 60);
    return out;
}

/* "at 02:13 in "walk"" style source of a passage (transcript passages carry their time span). */
static void describe_source(const store_passage_t *p, core_buf_t *out)
{
    const char *title = p->title && *p->title ? p->title : "an untitled item";
    if (strcmp(p->kind, "text") != 0 && p->t_end > 0) {
        char at[32];
        core_buf_printf(out, "At %s in \"%s\", you said: ", time_in_item(p->t_start, at), title);
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

/* ==== generation ==== */

#define DELTA_MIN_BYTES 24       /* a generated piece shorter than this waits for more ... */
#define DELTA_MAX_WAIT_NS 100000000 /* ... at most this long (and the first goes out at once) */
#define EMPTY_TRIES 4            /* a model that wrote nothing is asked again this many times */
#define PROMPT_QUESTION_MAX 2000 /* bytes of the question put in the prompt */
/* Passage bytes in the system prompt, tried in this order: a service that says the prompt does
 * not fit its context (400 context_length_exceeded) is asked again with less. */
static const int prompt_budgets[] = {3000, 1200, 400, 0};

/* The system message: who to be, and the passages, each quoted with its source. The training
 * examples (model_train.c) use the same, so a model trained on them is asked in the form it
 * learned. */
char *jobs__answer_system_prompt(const store_passage_t *list, size_t n, int budget)
{
    core_buf_t b;
    core_buf_init(&b);
    /* The smallest prompt (for a model with a short context) keeps only the role. */
    core_buf_puts(&b, budget == 0 ? "Answer as yourself, in the first person."
                                  : "You are the person whose own words are quoted below. "
                                    "Answer the question as yourself, in the first person, in a "
                                    "few sentences, using only what these passages say. If they "
                                    "do not cover it, say so.");
    size_t used = 0;
    for (size_t i = 0; i < n && budget > 0; i++) {
        core_buf_t one;
        core_buf_init(&one);
        const store_passage_t *p = &list[i];
        const char *title = p->title && *p->title ? p->title : "untitled";
        char at[32];
        if (strcmp(p->kind, "text") != 0 && p->t_end > 0)
            core_buf_printf(&one, "\n\n[%zu] You said, at %s in \"%s\": ", i + 1,
                            time_in_item(p->t_start, at), title);
        else
            core_buf_printf(&one, "\n\n[%zu] You wrote, in \"%s\": ", i + 1, title);
        append_passage(&one, p->text);
        bool fits = used + one.len <= (size_t)budget;
        if (fits) {
            core_buf_append(&b, one.data, one.len);
            used += one.len;
        }
        core_buf_destroy(&one);
        if (!fits)
            break;
    }
    return core_buf_steal(&b);
}

/* The question, cut at max bytes on a UTF-8 boundary. */
static char *prompt_question(const char *text, size_t max)
{
    size_t n = strlen(text);
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
            n--;
    }
    return xstrndup(text, n);
}

typedef struct stream {
    store_t *st;
    const jobs_config_t *cfg;
    int64_t account_id, question_id;
    core_buf_t pending;     /* received, not yet emitted */
    size_t emitted;         /* bytes of the answer already sent as deltas */
    int ndeltas;
    int64_t first_delta_ns, last_emit_ns;
} stream_t;

static int emit_pending(stream_t *s)
{
    if (s->pending.len == 0)
        return 0;
    json_t *body = json_pack("{s:I, s:I, s:s%}", "question_id", (json_int_t)s->question_id,
                             "offset", (json_int_t)s->emitted, "text", s->pending.data,
                             s->pending.len);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    int rc = text ? jobs_emit(s->st, s->cfg, s->account_id, "answer.delta", text) : -EINVAL;
    free(text);
    if (rc == 0) {
        if (!s->first_delta_ns)
            s->first_delta_ns = core_mono_ns();
        s->emitted += s->pending.len;
        s->ndeltas++;
        s->last_emit_ns = core_mono_ns();
    }
    core_buf_reset(&s->pending);
    return rc;
}

/* Coalesces pieces: the first goes out at once (a desktop starts speaking early), then a delta
 * per DELTA_MIN_BYTES, sentence end or DELTA_MAX_WAIT_NS, whichever comes first. */
static int on_piece(void *ud, const char *text, size_t len)
{
    stream_t *s = ud;
    core_buf_append(&s->pending, text, len);
    char last = s->pending.data[s->pending.len - 1];
    int64_t now = core_mono_ns();
    if (s->ndeltas == 0 || s->pending.len >= DELTA_MIN_BYTES || last == '.' || last == '!' ||
        last == '?' || last == '\n' || now - s->last_emit_ns >= DELTA_MAX_WAIT_NS)
        return emit_pending(s) < 0; /* a failed event append stops the generation */
    return 0;
}

/* Streams a generated answer. 0 with *answer_out (malloc'd); else an oai or store code with err
 * filled. */
static int generate(const jobs_config_t *cfg, const store_question_t *q, const char *model,
                    const store_passage_t *list, size_t n, char **answer_out, stream_t *s,
                    oai_error_t *err)
{
    int rc = OAI_EREJECTED, empties = 0;
    size_t b = 0;
    while (b < sizeof prompt_budgets / sizeof prompt_budgets[0]) {
        /* the smallest prompt cuts a long question too */
        char *question = prompt_question(q->text, prompt_budgets[b] ? PROMPT_QUESTION_MAX
                                                                    : PROMPT_QUESTION_MAX / 8);
        char *system = jobs__answer_system_prompt(list, n, prompt_budgets[b]);
        oai_message_t msgs[] = {{"system", system}, {"user", question}};
        /* The seed follows the question (a rerun writes the same text) and the try. */
        oai_chat_params_t params = {.max_tokens = cfg->textgen_max_tokens, .temperature = -1,
                                    .has_seed = true, .seed = q->id * 16 + empties};
        oai_chat_result_t res;
        core_buf_reset(&s->pending);
        rc = oai_chat_stream(cfg->textgen, model, msgs, 2, &params, on_piece, s, &res);
        free(system);
        free(question);
        if (rc == 0 && emit_pending(s) < 0)
            rc = CORE_ESQL;
        *err = res.err;
        bool empty = rc == 0 && s->emitted == 0;
        if (rc == 0 && !empty) {
            *answer_out = res.content;
            res.content = NULL;
        }
        oai_chat_result_clear(&res);
        if (empty && ++empties <= EMPTY_TRIES)
            continue; /* a small model sometimes ends at once: ask again, seeded differently */
        if (empty) {
            snprintf(err->code, sizeof err->code, "empty_answer");
            snprintf(err->message, sizeof err->message, "the model wrote nothing");
            return OAI_EREJECTED;
        }
        bool too_long = rc == OAI_EREJECTED && strcmp(err->code, "context_length_exceeded") == 0;
        if (!too_long || s->emitted > 0)
            break;
        b++;
    }
    return rc;
}

/* The model this account's questions are answered with: its trained one, else textgen_model;
 * "" for none. */
static void answer_model(store_t *st, const jobs_config_t *cfg, int64_t account_id,
                         char out[128])
{
    store_model_t m;
    out[0] = '\0';
    if (store_model_get(st, account_id, &m) == 0 && m.model[0])
        snprintf(out, 128, "%s", m.model);
    else if (cfg->textgen_model && *cfg->textgen_model)
        snprintf(out, 128, "%s", cfg->textgen_model);
}

int64_t jobs__backoff_ms(const jobs_config_t *cfg, int retries)
{
    int64_t lo = cfg->textgen_retry_min_ms > 0 ? cfg->textgen_retry_min_ms : 1000;
    int64_t hi = cfg->textgen_retry_max_ms > lo ? cfg->textgen_retry_max_ms : lo;
    int64_t d = lo;
    for (int i = 0; i < retries && d < hi; i++)
        d *= 2;
    return d < hi ? d : hi;
}

/* ==== the job ==== */

int jobs_run_question_answer(store_t *st, const store_job_t *job, const jobs_config_t *cfg)
{
    store_question_t q = {0};
    store_passage_t *list = NULL;
    size_t n = 0;
    core_buf_t answer;
    core_buf_init(&answer);
    char *passages = NULL, *timings = NULL, *done = NULL, *generated = NULL;
    const char *note = NULL;
    char model[128] = "";
    oai_error_t gen_err = {0};
    stream_t s = {.st = st, .cfg = cfg, .account_id = job->account_id};
    core_buf_init(&s.pending);
    int64_t t0 = core_mono_ns(), t_generated = 0;
    int rc = store_question_get(st, job->account_id, job->question_id, &q);
    if (rc < 0) {
        rc = store_question_finish(st, job, NULL, NULL, NULL, "the question no longer exists",
                                   "{}", NULL);
        goto out;
    }
    s.question_id = q.id;
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

    if (cfg->textgen)
        answer_model(st, cfg, job->account_id, model);
    if (model[0]) {
        rc = generate(cfg, &q, model, list, n, &generated, &s, &gen_err);
        t_generated = core_mono_ns();
        if (rc == 0) {
            core_buf_puts(&answer, generated);
        } else if (rc == OAI_EUNAVAILABLE &&
                   core_now_ms() < q.created_at + (int64_t)cfg->textgen_fallback_s * 1000) {
            /* Not lost, not answered yet: try again later, never past the fallback time. */
            int64_t delay = jobs__backoff_ms(cfg, job->retries);
            int64_t until_fallback = q.created_at + (int64_t)cfg->textgen_fallback_s * 1000 -
                                     core_now_ms();
            if (delay > until_fallback)
                delay = until_fallback > 0 ? until_fallback : 0;
            char why[600];
            snprintf(why, sizeof why, "text generation: %s", gen_err.message);
            core_log(CORE_LOG_WARN, "question.defer",
                     "question=%lld retries=%d delay_ms=%lld code=%s status=%d",
                     (long long)q.id, job->retries, (long long)delay, gen_err.code,
                     gen_err.http_status);
            rc = store_job_defer(st, job, delay, why);
            goto out;
        } else {
            char qm[300];
            core_log(CORE_LOG_WARN, "question.textgen_failed",
                     "question=%lld model=%s code=%s status=%d error=%s fallback=extractive",
                     (long long)q.id, model, gen_err.code, gen_err.http_status,
                     core_log_quote(gen_err.message, qm, sizeof qm));
            note = rc == OAI_EUNAVAILABLE ? JOBS_NOTE_UNAVAILABLE : JOBS_NOTE_REFUSED;
            model[0] = '\0';
        }
    }

    if (!model[0]) {
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
        if (note) {
            core_buf_puts(&answer, " ");
            core_buf_puts(&answer, note);
        }
        /* The whole answer as one delta at offset 0 (after a generation cut short, answer.done
         * is what counts: its text replaces the pieces). */
        core_buf_reset(&s.pending);
        s.emitted = 0;
        core_buf_append(&s.pending, answer.data, answer.len);
        emit_pending(&s);
    }
    int64_t t_composed = core_mono_ns();

    if (store_question_set_model(st, q.id, model[0] ? model : NULL) < 0)
        core_log(CORE_LOG_ERROR, "question.set_model", "question=%lld", (long long)q.id);

    json_t *pj = passages_json(list, n);
    passages = json_dumps(pj, JSON_COMPACT);
    json_decref(pj);
    double ms = 1e-6;
    json_t *tj = json_pack("{s:f, s:f, s:f, s:f}", "retrieve_ms", (double)(t_retrieved - t0) * ms,
                           "compose_ms", (double)(t_composed - t_retrieved) * ms,
                           "first_delta_ms",
                           s.first_delta_ns ? (double)(s.first_delta_ns - t0) * ms : 0.0,
                           "total_ms", (double)(core_mono_ns() - t0) * ms);
    if (tj && t_generated)
        json_object_set_new(tj, "generate_ms", json_real((double)(t_generated - t_retrieved) * ms));
    if (tj && job->retries)
        json_object_set_new(tj, "retries", json_integer(job->retries));
    timings = tj ? json_dumps(tj, JSON_COMPACT) : NULL;
    json_decref(tj);
    json_t *dj = json_pack("{s:I, s:s, s:i}", "question_id", (json_int_t)q.id, "text",
                           answer.data, "passages", (int)n);
    if (dj && model[0])
        json_object_set_new(dj, "model", json_string(model));
    if (dj && note)
        json_object_set_new(dj, "note", json_string(note));
    done = dj ? json_dumps(dj, JSON_COMPACT) : NULL;
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
    free(generated);
    core_buf_destroy(&s.pending);
    core_buf_destroy(&answer);
    store_passage_list_free(&list, n);
    store_question_clear(&q);
    return rc;
}
