/* cli: the `persona` command-line client — everything a mobile device does against personad's
 * HTTP API (docs/api.md): sign up, log in, upload media with progress, list and fetch media,
 * manage devices. Single-threaded; it owns one libcurl handle per run and the config file
 * (key = value lines, written atomically with mode 0600).
 *
 * The program apps/persona/main.c is a thin wrapper around cli_main(). */
#ifndef PERSONA_CLI_H
#define PERSONA_CLI_H

/* Exit statuses of cli_main(). */
enum {
    CLI_EXIT_OK = 0,    /* success */
    CLI_EXIT_FAIL = 1,  /* the server refused, a file failed, the network failed, … */
    CLI_EXIT_USAGE = 2, /* bad command line */
};

/* Runs the `persona` program with argv (argv[0] is the program name; borrowed). Prints
 * results on stdout and messages on stderr. Returns one of the CLI_EXIT_* statuses. */
int cli_main(int argc, char **argv);

#endif
