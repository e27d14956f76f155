/* server/h_ops.c: operations endpoints — health (on the loop: no database) and Prometheus
 * metrics (on the pool: it reads job counts from the database). */
#include "server/internal.h"

#include <stdio.h>

void srv_h_health(srv_req_t *r)
{
    char *body = xasprintf("{\"status\":\"ok\",\"version\":\"%s\",\"uptime_s\":%lld}\n",
                           PERSONA_VERSION,
                           (long long)((core_now_ms() - r->srv->started_ms) / 1000));
    srv_reply_text(r, 200, "application/json", body, strlen(body));
}

void srv_h_metrics(srv_req_t *r)
{
    server_t *s = r->srv;
    core_buf_t out;
    core_buf_init(&out);
    srv_metrics_render(s->metrics, &out);
    int64_t counts[STORE_JOB_NSTATES] = {0};
    if (store_job_counts(s->st, counts) == 0) {
        core_buf_puts(&out, "# HELP persona_jobs Jobs in the persistent queue by state.\n"
                            "# TYPE persona_jobs gauge\n");
        for (int i = 0; i < STORE_JOB_NSTATES; i++)
            core_buf_printf(&out, "persona_jobs{state=\"%s\"} %lld\n",
                            store_job_state_name((store_job_state_t)i), (long long)counts[i]);
    }
    core_buf_printf(&out, "# HELP persona_uploads_in_progress Uploads being received.\n"
                          "# TYPE persona_uploads_in_progress gauge\n"
                          "persona_uploads_in_progress %d\n",
                    atomic_load(&s->uploads_in_progress));
    size_t n = out.len;
    srv_reply_text(r, 200, "text/plain; version=0.0.4", core_buf_steal(&out), n);
}
