/* baseline_add(): the floor of the first whole window after warmup, and never again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "memward/policy/baseline.h"

#define S USEC_PER_SEC
#define MiB (1024ULL * 1024ULL)
#define SPAWNED (1000 * S)
#define WARMUP (30 * S)
#define WINDOW (60 * S)

static void add(struct baseline *b, usec_t since_spawn, uint64_t sample) {
        baseline_add(b, SPAWNED + since_spawn, SPAWNED, sample, WARMUP, WINDOW);
}

static void test_warmup_ignored(void **state) {
        struct baseline b = {};
        (void) state;

        /* An interpreter before it imported the app: tiny, and not the baseline. */
        add(&b, 0, MiB);
        add(&b, 29 * S, MiB);
        assert_true(b.started == 0);
        add(&b, 30 * S, 100 * MiB);
        assert_true(b.started == SPAWNED + 30 * S);
        assert_false(b.known);
}

static void test_floor_of_a_whole_window(void **state) {
        struct baseline b = {};
        (void) state;

        add(&b, 30 * S, 120 * MiB);
        add(&b, 50 * S, 100 * MiB);     /* the floor */
        add(&b, 70 * S, 150 * MiB);     /* a spike does not count */
        add(&b, 89 * S, 110 * MiB);
        assert_false(b.known);          /* 59 s of window */
        add(&b, 90 * S, 130 * MiB);
        assert_true(b.known);
        assert_true(b.value == 100 * MiB);

        /* Fixed from then on, whatever the worker does. */
        add(&b, 200 * S, 10 * MiB);
        add(&b, 300 * S, 900 * MiB);
        assert_true(b.value == 100 * MiB);
}

static void test_warmup_zero_and_clock_before_spawn(void **state) {
        struct baseline b = {};
        (void) state;

        baseline_add(&b, SPAWNED - S, SPAWNED, MiB, 0, WINDOW); /* a time before the spawn: ignored */
        assert_true(b.started == 0);
        baseline_add(&b, SPAWNED, SPAWNED, 5 * MiB, 0, WINDOW);
        assert_true(b.started == SPAWNED);
        baseline_add(&b, SPAWNED + WINDOW, SPAWNED, 7 * MiB, 0, WINDOW);
        assert_true(b.known);
        assert_true(b.value == 5 * MiB);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_warmup_ignored),
                cmocka_unit_test(test_floor_of_a_whole_window),
                cmocka_unit_test(test_warmup_zero_and_clock_before_spawn),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
