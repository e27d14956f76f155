/* cli auth: `persona signup`, `login`, `logout` and `whoami`. Credentials come from flags,
 * the terminal (password without echo, via termios) or, for scripts, the first line of stdin
 * (--password-stdin) or PERSONA_PASSWORD. A successful login writes the server URL and the
 * token into the config file; logout revokes this device (best effort) and removes the token.
 * Passwords are wiped from memory once sent. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli/internal.h"

/* ======================================================================================
 * reading credentials
 * ====================================================================================== */

/* The terminal state to restore if a signal arrives while echo is off. */
static struct termios saved_tio;
static volatile sig_atomic_t echo_off;

static void restore_echo_and_die(int sig) {
    if (echo_off)
        tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Reads one line of at most cap-2 bytes from f into buf, without its line end. Returns 0,
 * -ENODATA at end of input with nothing read, or -E2BIG for a longer line. */
static int read_line(FILE *f, char *buf, size_t cap) {
    if (!fgets(buf, (int)cap, f))
        return -ENODATA;
    size_t n = strlen(buf);
    if (n > 0 && buf[n - 1] == '\n')
        buf[--n] = '\0';
    else if (n == cap - 1 && !feof(f))
        return -E2BIG;
    if (n > 0 && buf[n - 1] == '\r')
        buf[--n] = '\0';
    return 0;
}

/* Prompts on stderr and reads a line from the terminal on stdin, echo off when secret. */
static int prompt(const char *label, bool secret, char *buf, size_t cap) {
    struct sigaction sa = {.sa_handler = restore_echo_and_die}, old_int, old_term;
    struct termios tio;
    bool changed = false;
    fputs(label, stderr);
    fflush(stderr);
    if (secret && tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
        tio = saved_tio;
        tio.c_lflag &= ~(tcflag_t)ECHO;
        tio.c_lflag |= ECHONL;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, &old_int);
        sigaction(SIGTERM, &sa, &old_term);
        echo_off = 1;
        changed = tcsetattr(STDIN_FILENO, TCSANOW, &tio) == 0;
    }
    int rc = read_line(stdin, buf, cap);
    if (secret && echo_off) {
        if (changed)
            tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
        echo_off = 0;
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
    }
    return rc;
}

typedef struct creds {
    char username[128];
    char password[CLI__MAX_PASSWORD + 2];
} creds_t;

/* Fills c from the flags, the environment, stdin or the terminal. confirm asks for the
 * password twice on a terminal (signup). Returns a CLI_EXIT_* status (0: got both). */
static int get_creds(const char *cmd, const char *username, bool password_stdin, bool confirm,
                     creds_t *c) {
    bool tty = isatty(STDIN_FILENO);
    int rc;
    if (!username)
        username = getenv("PERSONA_USERNAME");
    if (username && *username) {
        if (strlen(username) >= sizeof c->username)
            return cli__usage_error(cmd, "the username is too long");
        strcpy(c->username, username);
    } else if (tty && !password_stdin) {
        if (prompt("Username: ", false, c->username, sizeof c->username) < 0 ||
            !c->username[0]) {
            fprintf(stderr, "persona: no username given\n");
            return CLI_EXIT_FAIL;
        }
    } else {
        return cli__usage_error(cmd, "give --username (not on a terminal)");
    }

    const char *env = getenv("PERSONA_PASSWORD");
    if (password_stdin) {
        rc = read_line(stdin, c->password, sizeof c->password);
        if (rc == -E2BIG) {
            fprintf(stderr, "persona: the password is longer than %d bytes\n",
                    CLI__MAX_PASSWORD);
            return CLI_EXIT_FAIL;
        }
        if (rc < 0 || !c->password[0]) {
            fprintf(stderr, "persona: no password on standard input\n");
            return CLI_EXIT_FAIL;
        }
    } else if (env && *env) {
        if (strlen(env) > CLI__MAX_PASSWORD) {
            fprintf(stderr, "persona: PERSONA_PASSWORD is longer than %d bytes\n",
                    CLI__MAX_PASSWORD);
            return CLI_EXIT_FAIL;
        }
        strcpy(c->password, env);
    } else if (tty) {
        rc = prompt("Password: ", true, c->password, sizeof c->password);
        if (rc < 0 || !c->password[0]) {
            fprintf(stderr, rc == -E2BIG ? "persona: the password is too long\n"
                                         : "persona: no password given\n");
            return CLI_EXIT_FAIL;
        }
        if (confirm) {
            char again[sizeof c->password];
            rc = prompt("Repeat password: ", true, again, sizeof again);
            bool same = rc == 0 && strcmp(again, c->password) == 0;
            explicit_bzero(again, sizeof again);
            if (!same) {
                fprintf(stderr, "persona: the passwords differ\n");
                return CLI_EXIT_FAIL;
            }
        }
    } else {
        return cli__usage_error(cmd, "no password: use --password-stdin or PERSONA_PASSWORD "
                                     "(not on a terminal)");
    }
    return CLI_EXIT_OK;
}

/* ======================================================================================
 * login
 * ====================================================================================== */

/* POST /v1/sessions and remember the token. With print, prints the result. Returns a CLI_EXIT_*
 * status; *session (if given) receives the server's object (caller decrefs). */
static int do_login(cli__ctx_t *ctx, const creds_t *c, const char *device_name, bool print,
                    json_t **session) {
    char host[64] = "";
    char *dflt_name = NULL;
    int status = CLI_EXIT_FAIL;
    cli__resp_t resp;
    cli__resp_init(&resp);

    if (!device_name) {
        if (gethostname(host, sizeof host - 1) < 0 || !host[0])
            strcpy(host, "unknown");
        dflt_name = xasprintf("persona-cli@%s", host);
        device_name = dflt_name;
    }
    json_t *body = json_pack("{s:s, s:s, s:s}", "username", c->username, "password",
                             c->password, "device_name", device_name);
    if (!body) {
        fprintf(stderr, "persona: the username, password and device name must be UTF-8\n");
        goto out;
    }
    int rc = cli__call(ctx, "POST", "/v1/sessions", body, false, &resp);
    /* jansson holds a copy of the password: wipe it before freeing */
    json_t *pw = json_object_get(body, "password");
    if (pw)
        explicit_bzero((char *)json_string_value(pw), json_string_length(pw));
    json_decref(body);
    if (rc < 0)
        goto out;
    const char *token = cli__jstr(resp.json, "token", NULL);
    if (!token) {
        fprintf(stderr, "persona: the server's answer has no token\n");
        goto out;
    }
    cli__config_set(&ctx->cfg, "server", ctx->server);
    cli__config_set(&ctx->cfg, "token", token);
    if (cli__ctx_save_config(ctx) < 0)
        goto out;
    xfree(&ctx->token);
    ctx->token = xstrdup(token);
    if (print) {
        if (ctx->json)
            cli__print_json(resp.json);
        else
            printf("logged in as %s on %s (device %lld)\n", c->username, ctx->server,
                   (long long)cli__jint(resp.json, "device_id", 0));
    }
    if (session)
        *session = json_incref(resp.json);
    status = CLI_EXIT_OK;
out:
    cli__resp_destroy(&resp);
    free(dflt_name);
    return status;
}

static const char login_help[] =
    "Usage: persona login [--username U] [--password-stdin] [--device-name N]\n"
    "\n"
    "Logs this device in (POST /v1/sessions) and stores the server URL and the token in the\n"
    "config file (mode 0600). On a terminal it asks for what is missing (the password without\n"
    "echo). Elsewhere the password comes from the first line of standard input\n"
    "(--password-stdin) or from PERSONA_PASSWORD; the username from --username or\n"
    "PERSONA_USERNAME.\n"
    "\n"
    "  --username U       account name\n"
    "  --password-stdin   read the password from the first line of standard input\n"
    "  --device-name N    name of this device (default persona-cli@HOSTNAME)\n";

int cli__cmd_login(cli__ctx_t *ctx, int argc, char **argv) {
    const char *username = NULL, *device_name = NULL;
    bool password_stdin = false;
    const cli__opt_t opts[] = {
        {"username", 'u', CLI__VALUE, &username},
        {"password-stdin", 0, CLI__FLAG, &password_stdin},
        {"device-name", 0, CLI__VALUE, &device_name},
        {0},
    };
    char *pos[argc + 1];
    int npos;
    int rc = cli__parse_opts("login", argc, argv, opts, false, pos, &npos);
    if (rc == CLI__HELP)
        return fputs(login_help, stdout), CLI_EXIT_OK;
    if (rc < 0)
        return CLI_EXIT_USAGE;
    if (npos > 0)
        return cli__usage_error("login", "unexpected argument '%s'", pos[0]);

    creds_t c;
    memset(&c, 0, sizeof c);
    int status = get_creds("login", username, password_stdin, false, &c);
    if (status == CLI_EXIT_OK)
        status = do_login(ctx, &c, device_name, true, NULL);
    explicit_bzero(&c, sizeof c);
    return status;
}

/* ======================================================================================
 * signup
 * ====================================================================================== */

static const char signup_help[] =
    "Usage: persona signup [--username U] [--password-stdin] [--device-name N]\n"
    "\n"
    "Creates an account (POST /v1/accounts), then logs in as `persona login` does.\n"
    "Credentials are read as for login; on a terminal the password is asked twice.\n"
    "With --json it prints {\"account\":{…},\"session\":{…}} (the server's two objects).\n"
    "\n"
    "  --username U       account name (1-64 of A-Z a-z 0-9 . _ -)\n"
    "  --password-stdin   read the password from the first line of standard input\n"
    "  --device-name N    name of this device (default persona-cli@HOSTNAME)\n";

int cli__cmd_signup(cli__ctx_t *ctx, int argc, char **argv) {
    const char *username = NULL, *device_name = NULL;
    bool password_stdin = false;
    const cli__opt_t opts[] = {
        {"username", 'u', CLI__VALUE, &username},
        {"password-stdin", 0, CLI__FLAG, &password_stdin},
        {"device-name", 0, CLI__VALUE, &device_name},
        {0},
    };
    char *pos[argc + 1];
    int npos;
    int rc = cli__parse_opts("signup", argc, argv, opts, false, pos, &npos);
    if (rc == CLI__HELP)
        return fputs(signup_help, stdout), CLI_EXIT_OK;
    if (rc < 0)
        return CLI_EXIT_USAGE;
    if (npos > 0)
        return cli__usage_error("signup", "unexpected argument '%s'", pos[0]);

    creds_t c;
    memset(&c, 0, sizeof c);
    cli__resp_t resp;
    cli__resp_init(&resp);
    json_t *session = NULL;
    int status = get_creds("signup", username, password_stdin, true, &c);
    if (status != CLI_EXIT_OK)
        goto out;
    status = CLI_EXIT_FAIL;
    json_t *body = json_pack("{s:s, s:s}", "username", c.username, "password", c.password);
    if (!body) {
        fprintf(stderr, "persona: the username and password must be UTF-8\n");
        goto out;
    }
    rc = cli__call(ctx, "POST", "/v1/accounts", body, false, &resp);
    json_t *pw = json_object_get(body, "password");
    if (pw)
        explicit_bzero((char *)json_string_value(pw), json_string_length(pw));
    json_decref(body);
    if (rc < 0)
        goto out;
    if (!ctx->json)
        printf("created account %s (id %lld)\n", c.username,
               (long long)cli__jint(resp.json, "id", 0));
    status = do_login(ctx, &c, device_name, !ctx->json, &session);
    if (status == CLI_EXIT_OK && ctx->json) {
        json_t *both = json_pack("{s:O, s:O}", "account", resp.json ? resp.json : json_null(),
                                 "session", session);
        cli__print_json(both);
        json_decref(both);
    }
out:
    json_decref(session);
    cli__resp_destroy(&resp);
    explicit_bzero(&c, sizeof c);
    return status;
}

/* ======================================================================================
 * logout, whoami
 * ====================================================================================== */

static const char logout_help[] =
    "Usage: persona logout\n"
    "\n"
    "Revokes this device on the server (GET /v1/me, DELETE /v1/devices/ID; best effort) and\n"
    "removes the token from the config file.\n";

int cli__cmd_logout(cli__ctx_t *ctx, int argc, char **argv) {
    char *pos[argc + 1];
    int npos;
    int rc = cli__parse_opts("logout", argc, argv, NULL, false, pos, &npos);
    if (rc == CLI__HELP)
        return fputs(logout_help, stdout), CLI_EXIT_OK;
    if (rc < 0)
        return CLI_EXIT_USAGE;
    if (npos > 0)
        return cli__usage_error("logout", "unexpected argument '%s'", pos[0]);
    if (!ctx->token) {
        fprintf(stderr, "persona: not logged in\n");
        return CLI_EXIT_OK;
    }

    bool revoked = false;
    cli__resp_t resp;
    cli__resp_init(&resp);
    if (cli__call(ctx, "GET", "/v1/me", NULL, true, &resp) == 0) {
        int64_t id = cli__jint(resp.json, "device_id", 0);
        if (id > 0) {
            char path[64];
            snprintf(path, sizeof path, "/v1/devices/%lld", (long long)id);
            revoked = cli__call(ctx, "DELETE", path, NULL, true, &resp) == 0;
        }
    }
    cli__resp_destroy(&resp);
    if (!revoked)
        fprintf(stderr, "persona: could not revoke this device on the server; forgetting its "
                        "token anyway\n");

    int status = CLI_EXIT_OK;
    if (cli__config_get(&ctx->cfg, "token")) {
        cli__config_set(&ctx->cfg, "token", NULL);
        if (cli__ctx_save_config(ctx) < 0)
            status = CLI_EXIT_FAIL;
    }
    if (status == CLI_EXIT_OK) {
        if (ctx->json)
            printf("{\"logged_out\":true,\"revoked\":%s}\n", revoked ? "true" : "false");
        else
            printf("logged out%s\n", revoked ? " (device revoked)" : "");
    }
    return status;
}

static const char whoami_help[] = "Usage: persona whoami\n"
                                  "\n"
                                  "Shows the account and device of the token (GET /v1/me).\n";

int cli__cmd_whoami(cli__ctx_t *ctx, int argc, char **argv) {
    char *pos[argc + 1];
    int npos;
    int rc = cli__parse_opts("whoami", argc, argv, NULL, false, pos, &npos);
    if (rc == CLI__HELP)
        return fputs(whoami_help, stdout), CLI_EXIT_OK;
    if (rc < 0)
        return CLI_EXIT_USAGE;
    if (npos > 0)
        return cli__usage_error("whoami", "unexpected argument '%s'", pos[0]);
    cli__resp_t resp;
    cli__resp_init(&resp);
    int status = CLI_EXIT_FAIL;
    if (cli__call(ctx, "GET", "/v1/me", NULL, true, &resp) == 0) {
        char name[128];
        const char *user = cli__jstr(resp.json, "username", NULL);
        if (ctx->json)
            cli__print_json(resp.json);
        else
            printf("%s%saccount %lld, device %lld on %s\n",
                   user ? cli__clean(user, 0, name, sizeof name) : "", user ? ": " : "",
                   (long long)cli__jint(resp.json, "account_id", 0),
                   (long long)cli__jint(resp.json, "device_id", 0), ctx->server);
        status = CLI_EXIT_OK;
    }
    cli__resp_destroy(&resp);
    return status;
}
