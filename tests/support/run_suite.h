/* The one main() tail every Check suite shares: run the suite, report, turn the failure
 * count into an exit status.  Header only; include after <check.h>. */
#ifndef CONVBN_TESTS_RUN_SUITE_H
#define CONVBN_TESTS_RUN_SUITE_H

#include <check.h>
#include <stdlib.h>

/* Runs every test of suite (which it frees); returns EXIT_SUCCESS or EXIT_FAILURE. */
static inline int run_suite(Suite *suite)
{
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
