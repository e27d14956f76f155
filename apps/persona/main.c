/* persona: the command-line client. All of it lives in src/cli (see cli.h). */
#include "cli/cli.h"

int main(int argc, char **argv) { return cli_main(argc, argv); }
