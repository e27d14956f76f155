/* test_store.h: helpers shared by the store's test files (defined in test_store.c), and the
 * test groups of the other files, which test_store.c's main runs. */
#ifndef PERSONA_TEST_STORE_H
#define PERSONA_TEST_STORE_H

#include <stdint.h>

#include "store/store.h"

/* A fresh, empty folder for one test under $PERSONA_TEST_TMP (malloc'd). */
char *fresh_dir(const char *name);
store_t *open_store(const char *dir);
int64_t new_account(store_t *st, const char *name);
/* The first column of the first row of sql, run on <dir>/persona.db directly. */
int64_t sql_int(const char *dir, const char *sql);
void sql_exec(const char *dir, const char *sql);
extern const char SHA_A[65], SHA_B[65];

/* Each runs its cmocka group and returns the number of failed tests. */
int run_search_tests(void);  /* test_store_search.c */
int run_event_tests(void);   /* test_store_events.c */
int run_model_tests(void);   /* test_store_models.c */

#endif
