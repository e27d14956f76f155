/* config: personad's settings. Sources in rising precedence: built-in defaults, a `key = value`
 * file (--config FILE or PERSONAD_CONFIG; the client owns PERSONA_CONFIG), PERSONA_<KEY> environment variables, command-line flags
 * (--key value or --key=value; dashes and underscores are interchangeable). Every key is listed
 * with its default by `personad --help` and in docs/config.md. */
#ifndef PERSONA_CONFIG_H
#define PERSONA_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct config {
    char *host;                 /* listen address */
    int port;                   /* 0 = pick a free port */
    char *data_dir;             /* SQLite database and blobs */
    char *signup;               /* open | first | closed */
    int workers;                /* media job threads; 0 = number of cores */
    int request_threads;        /* API handler threads; 0 = number of cores */
    uint64_t max_upload_bytes;  /* POST /v1/media body limit */
    uint64_t max_json_bytes;    /* JSON request body limit */
    char *tls_cert;             /* PEM certificate: TLS when set with tls_key */
    char *trusted_proxies;      /* comma-separated addresses whose X-Forwarded-For is believed */
    char *tls_key;
    int login_max_failures;     /* per username, within login_window_s */
    int login_max_failures_addr;/* per client address, within login_window_s */
    int login_window_s;
    int job_max_attempts;
    int thumbnail_size;
    int asr_threads;            /* speech recognition threads per item, 1..64 */
    char *log_level;
    bool log_requests;
    int http_timeout_s;
    int keepalive_timeout_s;
    int upload_queue_kib;       /* bytes of an upload buffered before flow control pauses it */
    int ws_queue_events;        /* unsent events a WebSocket client may fall behind by */
    int ws_ping_idle_s;         /* a WebSocket silent this long gets a ping; dropped at 2x + 10 s */
    int event_retention_days;   /* events older than this are pruned (0: never) */
    int event_retention_max;    /* per account, only the newest this many are kept (0: all) */
    char *textgen;              /* URL of an OpenAI-compatible service; "" = extractive answers */
    char *textgen_api_key;      /* sent as Authorization: Bearer; "" for none */
    char *textgen_model;        /* answers with this until an account has trained; "" = extractive */
    char *textgen_base_model;   /* what `persona train` starts from */
    int textgen_train_steps;    /* training steps when the request does not say */
    int textgen_fallback_s;     /* unanswered this long (service down): answered extractively */
    int textgen_timeout_s;      /* one request to the service */
    int textgen_retry_min_ms;   /* backoff while the service is down: doubles from min ... */
    int textgen_retry_max_ms;   /* ... to max */
    int textgen_max_tokens;     /* longest generated answer */
    char *face_models;          /* face-api model folder; "" = <data_dir>/models/face-api */
    char *face_detector;        /* tiny | ssd */
    double face_frame_rate;     /* video frames per second analyzed for faces */
    int face_threads;           /* threads per face analysis */
    int face_contexts;          /* face analyses at once (jobs and requests) */
    double face_identity_threshold; /* descriptor distance that joins an identity */
    uint64_t face_max_pixels;   /* largest picture/frame analyzed */
    uint64_t face_max_image_bytes; /* request body limit of /v1/faces */
    int face_max_frames;        /* frames analyzed per video item */
    int face_max_faces;         /* faces kept per picture/frame */
    char *config_file;          /* the file that was read, if any */
} config_t;

/* Fills cfg from defaults, file, environment and argv. Returns 0; 1 if --help or --version was
 * printed (exit 0); -EINVAL on a usage error after printing why on err (exit 2). */
int config_load(config_t *cfg, int argc, char **argv, FILE *out, FILE *err);
void config_destroy(config_t *cfg);
void config_print_help(FILE *out);

#endif
