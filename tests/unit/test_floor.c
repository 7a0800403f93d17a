/* The sliding-window floor: transient spikes never lift it, kept memory does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "memward/policy/floor.h"

#define S USEC_PER_SEC
#define MiB (1024ULL * 1024ULL)

static void test_no_floor_before_a_full_window(void **state) {
        (void) state;
        struct floor_window f;
        uint64_t v;
        floor_window_init(&f, 60 * S);
        assert_false(floor_window_get(&f, 100 * S, &v));
        for (usec_t t = 100; t < 159; t++)
                floor_window_add(&f, t * S, 300 * MiB);
        assert_false(floor_window_get(&f, 159 * S, &v));
        floor_window_add(&f, 160 * S, 300 * MiB);
        assert_true(floor_window_get(&f, 160 * S, &v));
        assert_true(v == 300 * MiB);
}

static void test_spikes_do_not_lift_the_floor(void **state) {
        (void) state;
        struct floor_window f;
        uint64_t v;
        floor_window_init(&f, 10 * S);
        /* 50 MiB baseline, 200 MiB for 1 s every 5 s. */
        for (usec_t t = 1; t <= 120; t++) {
                floor_window_add(&f, t * S, t % 5 == 0 ? 250 * MiB : 50 * MiB);
                if (t > 12) {
                        assert_true(floor_window_get(&f, t * S, &v));
                        assert_true(v == 50 * MiB);
                }
        }
}

static void test_kept_memory_lifts_it_after_one_window(void **state) {
        (void) state;
        struct floor_window f;
        uint64_t v;
        floor_window_init(&f, 16 * S);
        for (usec_t t = 1; t <= 40; t++)
                floor_window_add(&f, t * S, 50 * MiB);
        /* From t=41 the worker keeps 250 MiB. */
        usec_t lifted = 0;
        for (usec_t t = 41; t <= 80; t++) {
                floor_window_add(&f, t * S, 250 * MiB);
                assert_true(floor_window_get(&f, t * S, &v));
                if (v == 250 * MiB && !lifted)
                        lifted = t;
        }
        /* Exactly one window later, give or take one bucket (window/16 = 1 s). */
        assert_true(lifted >= 41 + 15 && lifted <= 41 + 16);
}

static void test_floor_falls_when_memory_is_freed(void **state) {
        (void) state;
        struct floor_window f;
        uint64_t v;
        floor_window_init(&f, 8 * S);
        for (usec_t t = 1; t <= 20; t++)
                floor_window_add(&f, t * S, 400 * MiB);
        floor_window_add(&f, 21 * S, 100 * MiB);
        assert_true(floor_window_get(&f, 21 * S, &v));
        assert_true(v == 100 * MiB);
}

static void test_gap_in_samples(void **state) {
        (void) state;
        struct floor_window f;
        uint64_t v;
        floor_window_init(&f, 4 * S);
        floor_window_add(&f, 1 * S, 10);
        floor_window_add(&f, 6 * S, 20);
        assert_true(floor_window_get(&f, 6 * S, &v));
        assert_true(v == 20);
        /* No sample inside the window at all: no floor rather than a stale one. */
        assert_false(floor_window_get(&f, 100 * S, &v));
}

static void test_fine_sampling(void **state) {
        (void) state;
        struct floor_window f;
        uint64_t v, want = UINT64_MAX;
        floor_window_init(&f, 1 * S);
        /* 100 ms ticks over 30 s of a slowly rising value: the floor is the value a window ago. */
        for (usec_t t = 1; t <= 300; t++) {
                floor_window_add(&f, t * 100000, t);
                if (floor_window_get(&f, t * 100000, &v))
                        want = v;
        }
        assert_true(want >= 290 && want <= 292);
}

static void test_boundary_floor_k1(void **state) {
        (void) state;
        struct boundary_floor b = {};
        uint64_t v;
        assert_false(boundary_floor_get(&b, 1, &v));
        boundary_floor_add(&b, 300 * MiB);
        assert_true(boundary_floor_get(&b, 1, &v));
        assert_true(v == 300 * MiB);
        boundary_floor_add(&b, 40 * MiB);
        assert_true(boundary_floor_get(&b, 1, &v));
        assert_true(v == 40 * MiB);
        assert_false(boundary_floor_get(&b, 0, &v));
}

static void test_boundary_floor_last_k(void **state) {
        (void) state;
        struct boundary_floor b = {};
        uint64_t v;
        const uint64_t readings[] = { 10, 500, 300, 200, 400, 250 };
        for (size_t i = 0; i < 6; i++)
                boundary_floor_add(&b, readings[i]);
        assert_true(boundary_floor_get(&b, 3, &v));
        assert_true(v == 200); /* min of 200, 400, 250 */
        assert_true(boundary_floor_get(&b, 6, &v));
        assert_true(v == 10);
        assert_false(boundary_floor_get(&b, 7, &v));
}

static void test_boundary_floor_wraps(void **state) {
        (void) state;
        struct boundary_floor b = {};
        uint64_t v;
        for (uint64_t i = 0; i < 1000; i++)
                boundary_floor_add(&b, 1000 - i);
        assert_int_equal(b.n, BOUNDARY_READINGS_MAX);
        assert_true(boundary_floor_get(&b, BOUNDARY_READINGS_MAX, &v));
        assert_true(v == 1);
        assert_true(boundary_floor_get(&b, 2, &v));
        assert_true(v == 1);
        assert_false(boundary_floor_get(&b, BOUNDARY_READINGS_MAX + 1, &v));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_no_floor_before_a_full_window),
                cmocka_unit_test(test_spikes_do_not_lift_the_floor),
                cmocka_unit_test(test_kept_memory_lifts_it_after_one_window),
                cmocka_unit_test(test_floor_falls_when_memory_is_freed),
                cmocka_unit_test(test_gap_in_samples),
                cmocka_unit_test(test_fine_sampling),
                cmocka_unit_test(test_boundary_floor_k1),
                cmocka_unit_test(test_boundary_floor_last_k),
                cmocka_unit_test(test_boundary_floor_wraps),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
