/* cli main: the `persona` program's entry — global flags (--server, --token, --json,
 * --config), the run context (config file < PERSONA_* environment < flags), and dispatch to
 * the commands. Exit status: 0 success, 2 usage error, 1 anything else. */
#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/internal.h"

static const char usage_text[] =
    "Usage: persona [GLOBAL OPTIONS] COMMAND [ARGS]\n"
    "\n"
    "The command-line client of persona: log in, submit recordings, ask the persona, manage\n"
    "media and devices.\n"
    "\n"
    "Commands:\n"
    "  signup   create an account and log in\n"
    "  login    log this device in and remember the token\n"
    "  logout   forget the token and revoke this device\n"
    "  whoami   show the account and device of the token\n"
    "  upload   upload video, audio, image or text files\n"
    "  media    list, show, wait for, download or delete media\n"
    "  devices  add, list or revoke devices\n"
    "  ask      ask the persona a question; the answer prints as it streams in\n"
    "  watch    print the account's events live\n"
    "  train    train the persona's text generation model on the account's words\n"
    "  model    show the account's text generation model and its training\n"
    "  voice    show or change the account's speech synthesis voice\n"
    "  say      synthesize text into a WAV or Ogg/Opus file\n"
    "  transcript  print an item's transcript (text, JSON, WebVTT or SRT)\n"
    "  faces    detect, analyze, verify or find faces in pictures\n"
    "  identities  list or name the people found in the account's media\n"
    "  help     show the help of a command\n"
    "\n"
    "Global options (before the command):\n"
    "  --server URL    personad's address (env PERSONA_SERVER; default " CLI__DEFAULT_SERVER ")\n"
    "  --token T       bearer token (env PERSONA_TOKEN; default: from the config file)\n"
    "  --json          print the server's JSON objects instead of tables\n"
    "  --config FILE   config file (env PERSONA_CONFIG; default\n"
    "                  $XDG_CONFIG_HOME/persona/config or ~/.config/persona/config)\n"
    "  --help, --version\n"
    "\n"
    "Every command takes --help. Exit status: 0 success, 1 failure, 2 usage error.\n";

static const struct {
    const char *name;
    int (*fn)(cli__ctx_t *, int, char **);
} commands[] = {
    {"signup", cli__cmd_signup}, {"login", cli__cmd_login},   {"logout", cli__cmd_logout},
    {"whoami", cli__cmd_whoami}, {"upload", cli__cmd_upload}, {"media", cli__cmd_media},
    {"devices", cli__cmd_devices}, {"ask", cli__cmd_ask},         {"watch", cli__cmd_watch},
    {"train", cli__cmd_train},   {"model", cli__cmd_model},
    {"voice", cli__cmd_voice},   {"say", cli__cmd_say},
    {"transcript", cli__cmd_transcript},
    {"faces", cli__cmd_faces},   {"identities", cli__cmd_identities},
};

int cli__ctx_save_config(cli__ctx_t *ctx) {
    if (!ctx->config_path) {
        fprintf(stderr, "persona: no config file to write (set HOME, PERSONA_CONFIG or "
                        "--config)\n");
        return -ENOENT;
    }
    int rc = cli__config_save(ctx->config_path, &ctx->cfg);
    if (rc < 0)
        fprintf(stderr, "persona: cannot write %s: %s\n", ctx->config_path, core_strerror(rc));
    return rc;
}

/* Strips trailing slashes; checks the scheme. Returns a malloc'd URL or NULL (printed). */
static char *normalize_server(const char *url) {
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        cli__usage_error("", "server URL '%s' must start with http:// or https://", url);
        return NULL;
    }
    char *s = xstrdup(url);
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '/')
        s[--n] = '\0';
    return s;
}

static void ctx_destroy(cli__ctx_t *ctx) {
    cli__http_cleanup(ctx);
    cli__config_destroy(&ctx->cfg);
    xfree(&ctx->server);
    xfree(&ctx->token);
    xfree(&ctx->config_path);
}

static const char *env_nonempty(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

int cli_main(int argc, char **argv) {
    const char *server = NULL, *token = NULL, *config = NULL;
    bool json = false, version = false;
    const cli__opt_t opts[] = {
        {"server", 0, CLI__VALUE, &server}, {"token", 0, CLI__VALUE, &token},
        {"config", 0, CLI__VALUE, &config}, {"json", 0, CLI__FLAG, &json},
        {"version", 'V', CLI__FLAG, &version}, {0},
    };
    int npos = 0, status = CLI_EXIT_FAIL;
    char **pos = xcalloc((size_t)(argc > 0 ? argc : 1), sizeof *pos);
    cli__ctx_t ctx = {0};
    cli__config_init(&ctx.cfg);

    int rc = cli__parse_opts("", argc - 1, argv + 1, opts, true, pos, &npos);
    if (rc == CLI__HELP) {
        fputs(usage_text, stdout);
        status = CLI_EXIT_OK;
        goto out;
    }
    if (rc < 0) {
        status = CLI_EXIT_USAGE;
        goto out;
    }
    if (version) {
        printf("persona %s\n", PERSONA_VERSION);
        status = CLI_EXIT_OK;
        goto out;
    }
    if (npos == 0) {
        fputs(usage_text, stderr);
        status = CLI_EXIT_USAGE;
        goto out;
    }

    const char *cmd = pos[0];
    int cargc = npos - 1;
    char **cargv = pos + 1;
    char *help_argv[] = {"--help", NULL};
    if (strcmp(cmd, "help") == 0) {
        if (cargc == 0) {
            fputs(usage_text, stdout);
            status = CLI_EXIT_OK;
            goto out;
        }
        cmd = cargv[0];
        cargc = 1;
        cargv = help_argv;
    }
    int (*fn)(cli__ctx_t *, int, char **) = NULL;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, cmd) == 0)
            fn = commands[i].fn;
    if (!fn) {
        status = cli__usage_error("", "unknown command '%s'", cmd);
        goto out;
    }

    ctx.json = json;
    ctx.tty_err = isatty(STDERR_FILENO);
    ctx.config_path = config ? xstrdup(config) : cli__config_default_path();
    if (ctx.config_path) {
        int bad_line = 0;
        rc = cli__config_load(ctx.config_path, &ctx.cfg, &bad_line);
        if (rc == -EINVAL) {
            fprintf(stderr, "persona: %s:%d: expected 'key = value'\n", ctx.config_path,
                    bad_line);
            goto out;
        }
        if (rc < 0) {
            fprintf(stderr, "persona: cannot read %s: %s\n", ctx.config_path,
                    core_strerror(rc));
            goto out;
        }
    }
    if (!server)
        server = env_nonempty("PERSONA_SERVER");
    if (!server)
        server = cli__config_get(&ctx.cfg, "server");
    if (!server || !*server)
        server = CLI__DEFAULT_SERVER;
    if (!(ctx.server = normalize_server(server))) {
        status = CLI_EXIT_USAGE;
        goto out;
    }
    if (!token)
        token = env_nonempty("PERSONA_TOKEN");
    if (!token)
        token = cli__config_get(&ctx.cfg, "token");
    if (token && *token)
        ctx.token = xstrdup(token);

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "persona: cannot initialise libcurl\n");
        goto out;
    }
    status = fn(&ctx, cargc, cargv);
    ctx_destroy(&ctx);
    curl_global_cleanup();
out:
    ctx_destroy(&ctx);
    free(pos);
    fflush(stdout);
    if (ferror(stdout) && status == CLI_EXIT_OK) {
        fprintf(stderr, "persona: cannot write the output\n");
        status = CLI_EXIT_FAIL;
    }
    return status;
}
