/* persona-textgen: the text generation service and its offline tools. A thin main over
 * src/textgen (tg_main parses the subcommand). Exit status: 0 success, 2 usage error, 1
 * otherwise. */
#include "textgen/textgen.h"

int main(int argc, char **argv)
{
    return tg_main(argc, argv);
}
