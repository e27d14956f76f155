/* cli http: every request the client makes, over one reused libcurl easy handle (keep-alive).
 * JSON responses are read into memory up to 16 MiB; uploads stream from a FILE with a known
 * Content-Length (never chunked, no `Expect: 100-continue` wait); downloads stream a 2xx body
 * to a FILE while error bodies still come back into memory so their message can be shown.
 * Also the progress display (stderr, at most 10 redraws a second) and server error printing. */
#include <curl/curl.h>
#include <errno.h>
#include <string.h>

#include "cli/internal.h"

void cli__resp_init(cli__resp_t *r) {
    r->status = 0;
    core_buf_init(&r->body);
    r->json = NULL;
    r->downloaded = 0;
    r->error[0] = '\0';
}

void cli__resp_destroy(cli__resp_t *r) {
    core_buf_destroy(&r->body);
    json_decref(r->json);
    r->json = NULL;
    r->status = 0;
}

void cli__http_cleanup(cli__ctx_t *ctx) {
    if (ctx->curl)
        curl_easy_cleanup(ctx->curl);
    ctx->curl = NULL;
}

char *cli__urlencode(const char *s) {
    char *e = curl_easy_escape(NULL, s, (int)strlen(s));
    if (!e)
        abort(); /* only fails on allocation */
    char *r = xstrdup(e);
    curl_free(e);
    return r;
}

/* ======================================================================================
 * progress
 * ====================================================================================== */

void cli__progress_start(cli__progress_t *p, const char *label, bool tty) {
    memset(p, 0, sizeof *p);
    p->label = label;
    p->tty = tty;
    p->start_ns = core_mono_ns();
}

static void fmt_eta(double s, char *out, size_t cap) {
    if (s < 0 || s > 359999) {
        snprintf(out, cap, "--:--");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(out, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(out, cap, "%ld:%02ld", t / 60, t % 60);
}

/* Bytes per second over the samples in the ring (the whole transfer until it is full). */
static double progress_rate(const cli__progress_t *p, int64_t t, uint64_t now) {
    int64_t t0 = p->start_ns;
    uint64_t b0 = 0;
    if (p->nsamples >= CLI__RATE_SAMPLES) {
        int oldest = p->nsamples % CLI__RATE_SAMPLES;
        t0 = p->sample_ns[oldest];
        b0 = p->sample_bytes[oldest];
    }
    double el = (double)(t - t0) / 1e9;
    return el > 0 && now >= b0 ? (double)(now - b0) / el : 0;
}

static void progress_draw(cli__progress_t *p, int64_t t, uint64_t now, uint64_t total) {
    double rate = progress_rate(p, t, now);
    int slot = p->nsamples % CLI__RATE_SAMPLES;
    p->sample_ns[slot] = t;
    p->sample_bytes[slot] = now;
    p->nsamples++;

    char a[32], b[32], eta[32], label[48];
    int pct = total ? (int)(now * 100 / total) : 0;
    if (rate > 0 && total >= now)
        fmt_eta((double)(total - now) / rate, eta, sizeof eta);
    else
        snprintf(eta, sizeof eta, "--:--");
    cli__clean(p->label, 24, label, sizeof label);
    fprintf(stderr, "\r%-24s %3d%% %9s / %-9s %7.1f MB/s  ETA %s\x1b[K", label, pct,
            cli__human_size(now, a, sizeof a), cli__human_size(total, b, sizeof b), rate / 1e6,
            eta);
    fflush(stderr);
    p->drawn = true;
}

void cli__progress_update(cli__progress_t *p, uint64_t now, uint64_t total) {
    if (!p->tty || p->complete)
        return;
    int64_t t = core_mono_ns();
    bool done = total > 0 && now >= total;
    if (p->drawn && !done && t - p->last_draw_ns < 100000000) /* at most 10 redraws a second */
        return;
    p->last_draw_ns = t;
    progress_draw(p, t, now, total);
    p->complete = done;
}

void cli__progress_finish(cli__progress_t *p) {
    if (p->tty && p->drawn) {
        fputs("\r\x1b[K", stderr);
        fflush(stderr);
    }
    p->drawn = false;
}

/* ======================================================================================
 * transfer callbacks
 * ====================================================================================== */

typedef struct xfer {
    CURL *curl;
    const cli__req_t *req;
    cli__resp_t *resp;
    bool too_big;
    bool write_failed;
    int write_errno;
    bool read_failed;
    int read_errno;
} xfer_t;

static size_t on_write(char *data, size_t size, size_t nmemb, void *userp) {
    xfer_t *x = userp;
    size_t n = size * nmemb;
    if (x->req->download) {
        long code = 0;
        curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &code);
        if (code >= 200 && code < 300) {
            if (fwrite(data, 1, n, x->req->download) != n) {
                x->write_failed = true;
                x->write_errno = errno;
                return 0;
            }
            x->resp->downloaded += n;
            return n;
        }
    }
    if (x->resp->body.len + n > CLI__MAX_RESPONSE) {
        x->too_big = true;
        return 0;
    }
    core_buf_append(&x->resp->body, data, n);
    return n;
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *userp) {
    xfer_t *x = userp;
    size_t n = fread(buf, 1, size * nitems, x->req->upload);
    if (n == 0 && ferror(x->req->upload)) {
        x->read_failed = true;
        x->read_errno = errno;
        return CURL_READFUNC_ABORT;
    }
    return n;
}

static int on_progress(void *userp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
    xfer_t *x = userp;
    if (x->req->cancel && *x->req->cancel)
        return 1; /* abort the transfer */
    if (!x->req->progress)
        return 0;
    if (x->req->upload) /* ultotal is 0 until curl starts sending: the size is known */
        cli__progress_update(x->req->progress, (uint64_t)ulnow, x->req->upload_size);
    else if (dltotal > 0)
        cli__progress_update(x->req->progress, (uint64_t)dlnow, (uint64_t)dltotal);
    return 0;
}

/* ======================================================================================
 * requests
 * ====================================================================================== */

int cli__request(cli__ctx_t *ctx, const cli__req_t *req, cli__resp_t *resp) {
    int rc = 0;
    char *url = NULL, *auth = NULL, *ctype = NULL, *body = NULL;
    struct curl_slist *headers = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    xfer_t x = {.req = req, .resp = resp};

    if (req->auth && !ctx->token) {
        fprintf(stderr, "persona: not logged in (run 'persona login', or give --token or "
                        "PERSONA_TOKEN)\n");
        return -EPERM;
    }
    if (!ctx->curl) {
        ctx->curl = curl_easy_init();
        if (!ctx->curl) {
            fprintf(stderr, "persona: cannot initialise libcurl\n");
            return -ENOMEM;
        }
    }
    CURL *c = ctx->curl;
    x.curl = c;
    curl_easy_reset(c);
    resp->status = 0;
    core_buf_reset(&resp->body);
    json_decref(resp->json);
    resp->json = NULL;
    resp->downloaded = 0;
    resp->error[0] = '\0';

    url = xasprintf("%s%s", ctx->server, req->path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "persona/" PERSONA_VERSION);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 15L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
    if (req->timeout_s > 0) {
        curl_easy_setopt(c, CURLOPT_TIMEOUT, req->timeout_s);
    } else {
        /* streams may take long, but one that stalls for a minute is dead */
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    }
    /* never wait for 100-continue: the server answers early refusals itself */
    headers = curl_slist_append(headers, "Expect:");
    headers = curl_slist_append(headers, "Accept: application/json");
    if (req->auth) {
        auth = xasprintf("Authorization: Bearer %s", ctx->token);
        headers = curl_slist_append(headers, auth);
    }

    if (req->upload) {
        ctype = xasprintf("Content-Type: %s",
                          req->content_type ? req->content_type : "application/octet-stream");
        headers = curl_slist_append(headers, ctype);
        /* POST with a read callback and a known size: curl sends Content-Length, not chunked */
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->upload_size);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(c, CURLOPT_READDATA, &x);
    } else if (req->json) {
        body = json_dumps(req->json, JSON_COMPACT);
        if (!body) {
            rc = -ENOMEM;
            goto out;
        }
        headers = curl_slist_append(headers, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    if (strcmp(req->method, "GET") == 0)
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    else if (strcmp(req->method, "POST") != 0)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
    else if (!req->upload && !req->json) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    if (req->progress || req->cancel) {
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, &x);
    }

    CURLcode cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    if (req->progress)
        cli__progress_finish(req->progress);

    if (req->cancel && *req->cancel) {
        snprintf(resp->error, sizeof resp->error, "interrupted");
        rc = -ECANCELED;
        resp->status = 0;
        goto out;
    }
    if (x.too_big) {
        fprintf(stderr, "persona: the response from %s is larger than %u MiB; refused\n", url,
                CLI__MAX_RESPONSE >> 20);
        rc = -EFBIG;
        goto out;
    }
    if (x.write_failed) {
        fprintf(stderr, "persona: cannot write the download: %s\n", strerror(x.write_errno));
        rc = x.write_errno ? -x.write_errno : -EIO;
        goto out;
    }
    if (x.read_failed) {
        fprintf(stderr, "persona: cannot read the file being uploaded: %s\n",
                strerror(x.read_errno));
        rc = x.read_errno ? -x.read_errno : -EIO;
        goto out;
    }
    /* A server may refuse an upload part way (413, 415) and close: a response that did arrive
     * is worth more than the send error. */
    if (cc != CURLE_OK && !(resp->status >= 400 && resp->body.len > 0)) {
        const char *why = errbuf[0] ? errbuf : curl_easy_strerror(cc);
        snprintf(resp->error, sizeof resp->error, "%s", why);
        bool unreachable = cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST;
        if (!req->quiet && unreachable)
            fprintf(stderr, "persona: cannot reach the server at %s: %s (is personad running? "
                            "set --server or PERSONA_SERVER)\n",
                    ctx->server, why);
        else if (!req->quiet)
            fprintf(stderr, "persona: request to %s failed: %s\n", url, why);
        rc = -EIO;
        resp->status = 0;
        goto out;
    }
    if (resp->body.len > 0) {
        resp->json = json_loadb(resp->body.data, resp->body.len, 0, NULL);
    }
out:
    curl_slist_free_all(headers);
    free(body);
    free(ctype);
    free(auth);
    free(url);
    return rc;
}

bool cli__resp_ok(const cli__ctx_t *ctx, const cli__resp_t *resp, const char *prefix) {
    if (resp->status >= 200 && resp->status < 300)
        return true;
    const json_t *err = json_object_get(resp->json, "error");
    const char *msg = cli__jstr(err, "message", NULL);
    const char *code = cli__jstr(err, "code", NULL);
    char clean[512];
    fputs("persona: ", stderr);
    if (prefix)
        fprintf(stderr, "%s: ", prefix);
    if (msg)
        fprintf(stderr, "%s (%s, HTTP %ld)\n", cli__clean(msg, 0, clean, sizeof clean),
                code ? code : "error", resp->status);
    else if (resp->body.len > 0)
        fprintf(stderr, "HTTP %ld from %s: %s\n", resp->status, ctx->server,
                cli__clean(resp->body.data, 200, clean, sizeof clean));
    else
        fprintf(stderr, "HTTP %ld from %s\n", resp->status, ctx->server);
    return false;
}

int cli__call(cli__ctx_t *ctx, const char *method, const char *path, json_t *body, bool auth,
              cli__resp_t *resp) {
    cli__req_t req = {.method = method, .path = path, .json = body, .auth = auth,
                      .timeout_s = 120};
    if (cli__request(ctx, &req, resp) < 0)
        return -1;
    return cli__resp_ok(ctx, resp, NULL) ? 0 : -1;
}
