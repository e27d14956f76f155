/* personad: the persona backend. A thin main over src/server: read the configuration, start the
 * server, serve until SIGINT/SIGTERM, shut down cleanly. Exit status: 0 success, 2 usage error,
 * 1 otherwise. */
#include "config/config.h"
#include "core/core.h"
#include "server/server.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

static server_t *running;

static void on_signal(int sig)
{
    (void)sig;
    if (running)
        server_stop(running);
}

int main(int argc, char **argv)
{
    config_t cfg;
    int rc = config_load(&cfg, argc, argv, stdout, stderr);
    if (rc != 0) {
        config_destroy(&cfg);
        return rc > 0 ? 0 : 2;
    }
    signal(SIGPIPE, SIG_IGN);
    /* Every WebSocket client is a file descriptor: raise the soft limit to 65,536 where the
     * hard limit allows (libwebsockets sizes its tables from it when the context is created). */
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < 65536) {
        nofile.rlim_cur = nofile.rlim_max < 65536 ? nofile.rlim_max : 65536;
        setrlimit(RLIMIT_NOFILE, &nofile);
    }
    server_t *s = NULL;
    if ((rc = server_new(&cfg, &s)) < 0) {
        fprintf(stderr, "personad: could not start: %s\n", core_strerror(rc));
        config_destroy(&cfg);
        return 1;
    }
    running = s;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    rc = server_run(s);
    core_log(CORE_LOG_INFO, "shutdown", "rc=%d", rc);
    running = NULL;
    server_free(&s);
    config_destroy(&cfg);
    return rc < 0 ? 1 : 0;
}
