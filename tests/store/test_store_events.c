#include "test_store.h"
int run_event_tests(void) { return 0; }
