/* What the supervisor remembers of workers that came and went. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "memward/supervisor/history.h"

static void test_recycle_history(void **state) {
        (void) state;
        struct recycle_history h = {};

        assert_null(recycle_history_get(&h, 0));
        for (unsigned i = 0; i < 25; i++)
                recycle_history_push(&h, &(struct recycle_record) { .slot = i, .reason = RECYCLE_RETAINED });
        assert_true(h.total == 25);
        for (unsigned i = 0; i < RECYCLE_HISTORY_MAX; i++)
                assert_int_equal(recycle_history_get(&h, i)->slot, 24 - i);
        assert_null(recycle_history_get(&h, RECYCLE_HISTORY_MAX));
}

static void test_exit_how_names(void **state) {
        (void) state;
        assert_string_equal(worker_exit_how_to_string(WORKER_EXIT_EXIT), "exit");
        assert_string_equal(worker_exit_how_to_string(WORKER_EXIT_SIGNAL), "signal");
        assert_string_equal(worker_exit_how_to_string(WORKER_EXIT_OOM), "oom");
        assert_string_equal(worker_exit_how_to_string(_WORKER_EXIT_MAX), "unknown");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_recycle_history),
                cmocka_unit_test(test_exit_how_names),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
