/* persona-desktop: the desktop client service. All of it lives in src/desktop (see desktop.h). */
#include "desktop/desktop.h"

int main(int argc, char **argv) { return desk_main(argc, argv); }
