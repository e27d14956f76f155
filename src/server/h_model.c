/* server/h_model.c: the account's text generation model — POST /v1/persona/train queues a
 * model.train job (src/jobs/model_train.c), GET /v1/persona/model shows the latest training's
 * progress and the model questions are answered with. Request pool. */
#include "server/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRAIN_STEPS_MAX 1000000

static bool model_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 127)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == ':'))
            return false;
    }
    return true;
}

void srv_h_model_train(srv_req_t *r)
{
    const config_t *cfg = r->srv->cfg;
    json_t *o = NULL;
    if (!*cfg->textgen) {
        srv_reply_error(r, 409, "textgen_not_configured",
                        "No text generation service is configured: start personad with "
                        "--textgen URL to train a model.");
        return;
    }
    /* The body is optional: none means the defaults. */
    bool blank = true;
    for (size_t i = 0; i < r->body.len && blank; i++)
        blank = r->body.data[i] == ' ' || r->body.data[i] == '\n' || r->body.data[i] == '\r' ||
                r->body.data[i] == '\t';
    o = blank ? json_object() : srv_body_object(r);
    if (!o)
        return;
    const char *key;
    json_t *v;
    json_t *params = json_object();
    json_object_foreach(o, key, v) {
        if (strcmp(key, "steps") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 1 ||
                json_integer_value(v) > TRAIN_STEPS_MAX) {
                srv_reply_error(r, 400, "invalid_field",
                                "'steps' must be a whole number from 1 to %d.", TRAIN_STEPS_MAX);
                goto out;
            }
            json_object_set(params, "steps", v);
        } else if (strcmp(key, "base_model") == 0) {
            if (!json_is_string(v) || !model_id_ok(json_string_value(v))) {
                srv_reply_error(r, 400, "invalid_field",
                                "'base_model' must be a model id of 1 to 127 letters, digits and "
                                "'-_.:' (scratch-tiny, scratch-small, or a model the service "
                                "has).");
                goto out;
            }
            json_object_set(params, "base_model", v);
        } else {
            srv_reply_error(r, 400, "invalid_field",
                            "Unknown field '%.40s' (known: steps, base_model).", key);
            goto out;
        }
    }
    char *text = json_dumps(params, JSON_COMPACT);
    int64_t job_id = 0;
    int rc = text ? store_model_train_create(r->srv->st, r->account_id, text, &job_id) : -EINVAL;
    free(text);
    if (rc == -EBUSY) {
        srv_reply_error(r, 409, "training_in_progress",
                        "A training of this account is already queued or running (job %lld): "
                        "see GET /v1/persona/model.", (long long)job_id);
        goto out;
    }
    if (rc < 0) {
        srv_reply_error(r, 500, "internal", "Could not queue the training.");
        goto out;
    }
    jobs_wake(r->srv->jobs);
    srv_reply_json(r, 202, json_pack("{s:I, s:s}", "job_id", (json_int_t)job_id, "status",
                                     "queued"));
out:
    json_decref(params);
    json_decref(o);
}

void srv_h_model_get(srv_req_t *r)
{
    const config_t *cfg = r->srv->cfg;
    store_model_t m;
    int rc = store_model_get(r->srv->st, r->account_id, &m);
    if (rc < 0 && rc != -ENOENT) {
        srv_reply_error(r, 500, "internal", "Could not read the model.");
        return;
    }
    if (rc == -ENOENT)
        memset(&m, 0, sizeof m);
    /* What answers this account's questions now. */
    const char *answers_with = !*cfg->textgen ? NULL
                               : m.model[0]   ? m.model
                               : *cfg->textgen_model ? cfg->textgen_model
                                                     : NULL;
    json_t *o = json_pack("{s:s, s:s?, s:s?, s:I, s:I, s:o, s:o, s:o, s:s?, s:s?, s:s?, s:o}",
                          "status", store_model_status_name(m.status), "model",
                          m.model[0] ? m.model : NULL, "answers_with", answers_with, "step",
                          (json_int_t)m.step, "steps", (json_int_t)m.steps, "train_loss",
                          m.has_train_loss ? json_real(m.train_loss) : json_null(), "eval_loss",
                          m.has_eval_loss ? json_real(m.eval_loss) : json_null(), "job",
                          m.job_id ? json_integer(m.job_id) : json_null(), "remote_job",
                          m.remote_job[0] ? m.remote_job : NULL, "base_model",
                          m.base_model[0] ? m.base_model : NULL, "error",
                          m.error[0] ? m.error : NULL, "updated_at",
                          m.updated_at ? json_integer(m.updated_at) : json_null());
    srv_reply_json(r, 200, o);
}
