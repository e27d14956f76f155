/* server/metrics.c: request counters by (route, method, status), a latency histogram by route,
 * and bytes received. Recorded on the loop thread, rendered on a worker: a mutex guards both.
 * The table is bounded: routes come from the route table (plus "unmatched"), so its size is
 * fixed by the code, not by clients. */
#include "server/internal.h"

#include <stdlib.h>
#include <string.h>

#define METRICS_MAX_SERIES 256
#define METRICS_MAX_ROUTES 32
static const double buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                 0.1,    0.25,  0.5,    1,     2.5,  5,     10};
#define NBUCKETS (sizeof buckets / sizeof buckets[0])

typedef struct series {
    const char *route; /* static strings from the route table */
    char method[8];
    int status;
    uint64_t count;
} series_t;

typedef struct route_hist {
    const char *route;
    uint64_t bucket[NBUCKETS];
    uint64_t count;
    double sum;
} route_hist_t;

struct srv_metrics {
    pthread_mutex_t mu;
    series_t series[METRICS_MAX_SERIES];
    int n_series;
    route_hist_t hist[METRICS_MAX_ROUTES];
    int n_hist;
    uint64_t bytes_in;
};

srv_metrics_t *srv_metrics_new(void)
{
    srv_metrics_t *m = xcalloc(1, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    return m;
}

void srv_metrics_free(srv_metrics_t **pm)
{
    if (!pm || !*pm)
        return;
    pthread_mutex_destroy(&(*pm)->mu);
    free(*pm);
    *pm = NULL;
}

void srv_metrics_record(srv_metrics_t *m, const char *route, const char *method, int status,
                        double seconds, uint64_t bytes_in)
{
    pthread_mutex_lock(&m->mu);
    m->bytes_in += bytes_in;
    series_t *s = NULL;
    for (int i = 0; i < m->n_series; i++) {
        series_t *c = &m->series[i];
        if (c->route == route && c->status == status && !strcmp(c->method, method)) {
            s = c;
            break;
        }
    }
    if (!s && m->n_series < METRICS_MAX_SERIES) {
        s = &m->series[m->n_series++];
        s->route = route;
        snprintf(s->method, sizeof s->method, "%s", method);
        s->status = status;
    }
    if (s)
        s->count++;
    route_hist_t *h = NULL;
    for (int i = 0; i < m->n_hist; i++)
        if (m->hist[i].route == route)
            h = &m->hist[i];
    if (!h && m->n_hist < METRICS_MAX_ROUTES) {
        h = &m->hist[m->n_hist++];
        h->route = route;
    }
    if (h) {
        for (size_t b = 0; b < NBUCKETS; b++)
            if (seconds <= buckets[b])
                h->bucket[b]++;
        h->count++;
        h->sum += seconds;
    }
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_render(srv_metrics_t *m, core_buf_t *out)
{
    pthread_mutex_lock(&m->mu);
    core_buf_puts(out, "# HELP persona_http_requests_total HTTP requests by route, method and "
                       "status.\n# TYPE persona_http_requests_total counter\n");
    for (int i = 0; i < m->n_series; i++)
        core_buf_printf(out,
                        "persona_http_requests_total{route=\"%s\",method=\"%s\",status=\"%d\"} "
                        "%llu\n",
                        m->series[i].route, m->series[i].method, m->series[i].status,
                        (unsigned long long)m->series[i].count);
    core_buf_puts(out, "# HELP persona_http_request_duration_seconds Time from request headers "
                       "to the last byte of the answer.\n"
                       "# TYPE persona_http_request_duration_seconds histogram\n");
    for (int i = 0; i < m->n_hist; i++) {
        const route_hist_t *h = &m->hist[i];
        for (size_t b = 0; b < NBUCKETS; b++)
            core_buf_printf(out,
                            "persona_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} "
                            "%llu\n",
                            h->route, buckets[b], (unsigned long long)h->bucket[b]);
        core_buf_printf(out,
                        "persona_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} "
                        "%llu\n"
                        "persona_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
                        "persona_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
                        h->route, (unsigned long long)h->count, h->route, h->sum, h->route,
                        (unsigned long long)h->count);
    }
    core_buf_printf(out, "# HELP persona_http_bytes_in_total Request body bytes received.\n"
                         "# TYPE persona_http_bytes_in_total counter\n"
                         "persona_http_bytes_in_total %llu\n",
                    (unsigned long long)m->bytes_in);
    pthread_mutex_unlock(&m->mu);
}
