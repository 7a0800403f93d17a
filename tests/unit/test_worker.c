/* The worker record: names of states, and the order /metrics and /status list workers in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "memward/supervisor/worker.h"

static void test_list_sorted(void **state) {
        struct worker w[5] = {
                { .slot = 1, .generation = 4 }, { .slot = 0, .generation = 9 }, { .slot = 1, .generation = 2 },
                { .slot = 0, .generation = 3 }, { .slot = 2, .generation = 1 },
        };
        const struct worker **l = (const struct worker **) state; /* anything but NULL */
        size_t n = 7;

        /* No workers: no array. */
        assert_int_equal(worker_list_sorted(NULL, &l, &n), 0);
        assert_null(l);
        assert_int_equal(n, 0);

        for (size_t i = 0; i + 1 < 5; i++)
                w[i].next = &w[i + 1];
        assert_int_equal(worker_list_sorted(&w[0], &l, &n), 0);
        assert_int_equal(n, 5);
        assert_ptr_equal(l[0], &w[3]);
        assert_ptr_equal(l[1], &w[1]);
        assert_ptr_equal(l[2], &w[2]);
        assert_ptr_equal(l[3], &w[0]);
        assert_ptr_equal(l[4], &w[4]);
        free(l);
}

static void test_state_names(void **state) {
        (void) state;
        assert_string_equal(worker_state_to_string(WORKER_STARTING), "starting");
        assert_string_equal(worker_state_to_string(WORKER_READY), "ready");
        assert_string_equal(worker_state_to_string(WORKER_STOPPING), "stopping");
        assert_string_equal(worker_state_to_string(_WORKER_STATE_MAX), "unknown");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_list_sorted),
                cmocka_unit_test(test_state_names),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
