/* server: personad's HTTP front — libwebsockets on one port (HTTP/1.1, TLS when configured),
 * the route table, request handlers, uploads streamed to the blob store, downloads with Range,
 * metrics and the request log.
 *
 * Threads: server_run() runs the libwebsockets event loop on the calling thread; handlers that
 * touch the database or the disk run on the server's request pool and hand their responses back
 * through lws_cancel_service(). server_stop() is async-signal-safe. */
#ifndef PERSONA_SERVER_H
#define PERSONA_SERVER_H

#include "config/config.h"

typedef struct server server_t;

/* Opens the store, starts the job workers and the listener. On success prints
 * "personad listening on http://HOST:PORT" to stdout (flushed) and returns 0 with *out.
 * cfg is borrowed and must outlive the server. */
int server_new(const config_t *cfg, server_t **out);
/* Serves until server_stop(). Returns 0, or a negative code if the loop failed. */
int server_run(server_t *s);
/* Asks server_run to return soon; safe from a signal handler. */
void server_stop(server_t *s);
/* Stops workers, closes the store, frees; NULL-safe. */
void server_free(server_t **s);
/* The port actually listened on (useful with port 0). */
int server_port(const server_t *s);

#endif
