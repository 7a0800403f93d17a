/* The recycle policy is pure: every rule is checked here with exact numbers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <sys/wait.h>

#include "memward/policy/policy.h"

#define SEC USEC_PER_SEC

static struct policy_worker_view view(void) {
        return (struct policy_worker_view) {
                .now = 1000 * SEC,
                .spawned_at = 900 * SEC,
                .last_watchdog = 999 * SEC,
        };
}

static void test_no_rules_no_recycle(void **state) {
        (void) state;
        struct policy_worker_view v = view();
        v.requests = 1000000;
        assert_int_equal(policy_evaluate(&v), RECYCLE_NONE);
        assert_true(policy_next_deadline(&v) == USEC_INFINITY);
}

static void test_max_requests(void **state) {
        (void) state;
        struct policy_worker_view v = view();
        v.request_limit = 53;
        v.requests = 52;
        assert_int_equal(policy_evaluate(&v), RECYCLE_NONE);
        v.requests = 53;
        assert_int_equal(policy_evaluate(&v), RECYCLE_MAX_REQUESTS);
        v.requests = 60;
        assert_int_equal(policy_evaluate(&v), RECYCLE_MAX_REQUESTS);
}

static void test_max_lifetime(void **state) {
        (void) state;
        struct policy_worker_view v = view();
        v.lifetime_limit = 101 * SEC;
        assert_int_equal(policy_evaluate(&v), RECYCLE_NONE);
        assert_true(policy_next_deadline(&v) == 1001 * SEC);
        v.now = 1001 * SEC;
        assert_int_equal(policy_evaluate(&v), RECYCLE_MAX_LIFETIME);
}

static void test_watchdog_first(void **state) {
        (void) state;
        struct policy_worker_view v = view();
        v.watchdog = 5 * SEC;
        v.request_limit = 10;
        v.requests = 10;
        v.last_watchdog = 996 * SEC;
        /* A due max_requests recycle is still reported while the pings come. */
        assert_int_equal(policy_evaluate(&v), RECYCLE_MAX_REQUESTS);
        v.last_watchdog = 995 * SEC;
        assert_int_equal(policy_evaluate(&v), RECYCLE_WATCHDOG);
        v.last_watchdog = 999 * SEC;
        v.requests = 0;
        assert_true(policy_next_deadline(&v) == 1004 * SEC);
}

static void test_draw_limit_bounds(void **state) {
        (void) state;
        uint64_t rng = 42;
        assert_true(policy_draw_limit(0, 10, 12345) == 0);
        assert_true(policy_draw_limit(50, 0, 12345) == 50);
        assert_true(policy_draw_limit(50, 10, 0) == 50);
        assert_true(policy_draw_limit(50, 10, 10) == 60);
        assert_true(policy_draw_limit(50, 10, 11) == 50);
        assert_true(policy_draw_limit(UINT64_MAX - 1, 10, 5) == UINT64_MAX);
        for (int i = 0; i < 100000; i++) {
                uint64_t l = policy_draw_limit(50, 10, policy_random_next(&rng));
                assert_true(l >= 50 && l <= 60);
        }
}

static void test_draw_limit_distribution(void **state) {
        (void) state;
        uint64_t rng = 7, counts[11] = {};
        const int n = 110000;
        for (int i = 0; i < n; i++)
                counts[policy_draw_limit(1000, 10, policy_random_next(&rng)) - 1000]++;
        /* Every value of [base, base+jitter] drawn about equally: within 5% of n/11. */
        for (int i = 0; i < 11; i++) {
                assert_true(counts[i] > 9500);
                assert_true(counts[i] < 10500);
        }
}

static void test_backoff(void **state) {
        (void) state;
        usec_t ms = USEC_PER_MSEC;
        assert_true(policy_backoff(100 * ms, 2000 * ms, 0) == 0);
        assert_true(policy_backoff(100 * ms, 2000 * ms, 1) == 100 * ms);
        assert_true(policy_backoff(100 * ms, 2000 * ms, 2) == 200 * ms);
        assert_true(policy_backoff(100 * ms, 2000 * ms, 5) == 1600 * ms);
        assert_true(policy_backoff(100 * ms, 2000 * ms, 6) == 2000 * ms);
        assert_true(policy_backoff(100 * ms, 2000 * ms, 1000) == 2000 * ms);
}

static void test_reason_names(void **state) {
        (void) state;
        assert_string_equal(recycle_reason_to_string(RECYCLE_MAX_REQUESTS), "max_requests");
        assert_string_equal(recycle_reason_to_string(RECYCLE_RETAINED), "retained");
        assert_string_equal(recycle_reason_to_string(RECYCLE_OOM), "oom");
        assert_string_equal(recycle_reason_to_string(_RECYCLE_REASON_MAX), "unknown");
        for (int r = 0; r < _RECYCLE_REASON_MAX; r++)
                assert_string_not_equal(recycle_reason_to_string(r), "unknown");
}

#define MiB (1024ULL * 1024ULL)

static void test_memory_needs_a_floor(void **state) {
        (void) state;
        struct policy_memory_view v = { .has_floor = false, .floor = 900 * MiB, .retained_max = 100 * MiB };
        assert_int_equal(policy_evaluate_memory(&v), RECYCLE_NONE);
        v.has_floor = true;
        assert_int_equal(policy_evaluate_memory(&v), RECYCLE_RETAINED);
}

static void test_retained_threshold_is_strict(void **state) {
        (void) state;
        struct policy_memory_view v = { .has_floor = true, .floor = 100 * MiB, .retained_max = 100 * MiB };
        assert_int_equal(policy_evaluate_memory(&v), RECYCLE_NONE);
        v.floor++;
        assert_int_equal(policy_evaluate_memory(&v), RECYCLE_RETAINED);
        v.retained_max = 0;
        assert_int_equal(policy_evaluate_memory(&v), RECYCLE_NONE);
}

/* A request longer than the window must not look retained: the request-end floor wins
 * whenever there is a fresh one, even when the window's minimum is higher. */
static void test_retained_floor_prefers_request_end(void **state) {
        (void) state;
        uint64_t floor = 0;
        bool boundary = false;
        struct policy_floors f = { .has_window = true, .window = 300 * MiB, .has_boundary = true, .boundary = 20 * MiB };

        assert_true(policy_retained_floor(&f, &floor, &boundary));
        assert_true(floor == 20 * MiB);
        assert_true(boundary);

        /* Stale or too few request-end readings: the window judges. */
        f.has_boundary = false;
        assert_true(policy_retained_floor(&f, &floor, &boundary));
        assert_true(floor == 300 * MiB);
        assert_false(boundary);

        /* A young worker that reports requests is judged before its first whole window. */
        f = (struct policy_floors) { .has_boundary = true, .boundary = 150 * MiB };
        assert_true(policy_retained_floor(&f, &floor, &boundary));
        assert_true(floor == 150 * MiB && boundary);

        f = (struct policy_floors) {};
        floor = 7;
        assert_false(policy_retained_floor(&f, &floor, &boundary));
        assert_true(floor == 7);
}

static void test_growth_vs_baseline(void **state) {
        (void) state;
        struct policy_memory_view v = { .has_floor = true, .floor = 249 * MiB, .growth_max = 2.5 };
        assert_int_equal(policy_evaluate_memory(&v), RECYCLE_NONE); /* no baseline yet */
        v.has_baseline = true;
        v.baseline = 100 * MiB;
        assert_int_equal(policy_evaluate_memory(&v), RECYCLE_NONE);
        v.floor = 250 * MiB;
        assert_int_equal(policy_evaluate_memory(&v), RECYCLE_NONE);
        v.floor = 251 * MiB;
        assert_int_equal(policy_evaluate_memory(&v), RECYCLE_GROWTH);
        /* retained wins when both fire: it is the absolute rule. */
        v.retained_max = 200 * MiB;
        assert_int_equal(policy_evaluate_memory(&v), RECYCLE_RETAINED);
}

/* The walk the supervisor does over its workers: the index of the victim, or -1. */
static int pick_victim(const struct policy_candidate *c, size_t n, uint64_t min_retained) {
        struct policy_victim v = {};
        int victim = -1;

        for (size_t i = 0; i < n; i++)
                if (policy_victim_offer(&v, &c[i], min_retained))
                        victim = (int) i;
        return victim;
}

static void test_victim_largest_floor(void **state) {
        (void) state;
        struct policy_candidate c[] = {
                { .eligible = true, .has_floor = true, .floor = 100 * MiB, .spawned_at = 1 },
                { .eligible = true, .has_floor = true, .floor = 300 * MiB, .spawned_at = 5 },
                { .eligible = false, .has_floor = true, .floor = 900 * MiB, .spawned_at = 0 },
                { .eligible = true, .has_floor = false, .floor = 800 * MiB, .spawned_at = 0 },
                { .eligible = true, .has_floor = true, .floor = 200 * MiB, .spawned_at = 2 },
        };
        assert_int_equal(pick_victim(c, 5, 0), 1);
        assert_int_equal(pick_victim(c, 5, 301 * MiB), -1);
        assert_int_equal(pick_victim(c, 0, 0), -1);
}

static void test_victim_ties_go_to_the_oldest(void **state) {
        (void) state;
        struct policy_candidate c[] = {
                { .eligible = true, .has_floor = true, .floor = 300 * MiB, .spawned_at = 50 },
                { .eligible = true, .has_floor = true, .floor = 300 * MiB, .spawned_at = 10 },
                { .eligible = true, .has_floor = true, .floor = 300 * MiB, .spawned_at = 30 },
        };
        assert_int_equal(pick_victim(c, 3, 0), 1);
}

static void test_cooldown(void **state) {
        (void) state;
        assert_true(policy_cooldown_passed(5 * SEC, 0, 30 * SEC));
        assert_false(policy_cooldown_passed(40 * SEC, 11 * SEC, 30 * SEC));
        assert_true(policy_cooldown_passed(41 * SEC, 11 * SEC, 30 * SEC));
}

static void test_boundary_inflight_gating(void **state) {
        (void) state;
        const usec_t ms = USEC_PER_MSEC;
        /* No X_INFLIGHT (a sync worker) or 0 in flight: a reading counts. */
        assert_true(policy_boundary_accept(false, 0, 1000 * ms, 0, 50 * ms));
        assert_true(policy_boundary_accept(true, 0, 1000 * ms, 0, 50 * ms));
        /* Another request still running: its memory is not "kept". */
        assert_false(policy_boundary_accept(true, 1, 1000 * ms, 0, 50 * ms));
        assert_false(policy_boundary_accept(true, 7, 1000 * ms, 0, 50 * ms));
}

static void test_boundary_rate_limit(void **state) {
        (void) state;
        const usec_t ms = USEC_PER_MSEC;
        assert_false(policy_boundary_accept(false, 0, 1049 * ms, 1000 * ms, 50 * ms));
        assert_true(policy_boundary_accept(false, 0, 1050 * ms, 1000 * ms, 50 * ms));
        /* 10,000 reports a second become at most 20 readings a second. */
        usec_t last = 0;
        unsigned readings = 0;
        for (usec_t t = 1; t <= 10000; t++) {
                usec_t now = t * 100; /* every 100 us for 1 s */
                if (policy_boundary_accept(false, 0, now, last, 50 * ms)) {
                        readings++;
                        last = now;
                }
        }
        assert_int_equal(readings, 20);
        /* min_interval 0: every report is read. */
        assert_true(policy_boundary_accept(false, 0, 1000 * ms, 1000 * ms, 0));
}

/* A helper in the worker's leaf OOM-killed (a gunicorn arbiter's child, re-forked) does
 * not make the worker's own exit, much later, an OOM kill. */
static void test_exit_is_oom_only_when_the_worker_was_killed(void **state) {
        (void) state;
        /* The OOM killer's SIGKILL, with the leaf's counter up. */
        assert_true(policy_exit_is_oom(W_EXITCODE(0, SIGKILL), true, false));
        /* Recycled normally after a helper's OOM kill: exited, or stopped by its signal. */
        assert_false(policy_exit_is_oom(W_EXITCODE(0, 0), true, false));
        assert_false(policy_exit_is_oom(W_EXITCODE(1, 0), true, false));
        assert_false(policy_exit_is_oom(W_EXITCODE(0, SIGTERM), true, false));
        assert_false(policy_exit_is_oom(W_EXITCODE(0, SIGSEGV) | WCOREFLAG, true, false));
        /* SIGKILL from someone else with no OOM kill in the leaf. */
        assert_false(policy_exit_is_oom(W_EXITCODE(0, SIGKILL), false, false));
        /* memward's own SIGKILL (graceful_timeout, ready_timeout) after a helper's OOM kill. */
        assert_false(policy_exit_is_oom(W_EXITCODE(0, SIGKILL), true, true));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_no_rules_no_recycle),
                cmocka_unit_test(test_max_requests),
                cmocka_unit_test(test_max_lifetime),
                cmocka_unit_test(test_watchdog_first),
                cmocka_unit_test(test_draw_limit_bounds),
                cmocka_unit_test(test_draw_limit_distribution),
                cmocka_unit_test(test_backoff),
                cmocka_unit_test(test_reason_names),
                cmocka_unit_test(test_memory_needs_a_floor),
                cmocka_unit_test(test_retained_threshold_is_strict),
                cmocka_unit_test(test_growth_vs_baseline),
                cmocka_unit_test(test_victim_largest_floor),
                cmocka_unit_test(test_victim_ties_go_to_the_oldest),
                cmocka_unit_test(test_cooldown),
                cmocka_unit_test(test_retained_floor_prefers_request_end),
                cmocka_unit_test(test_boundary_inflight_gating),
                cmocka_unit_test(test_boundary_rate_limit),
                cmocka_unit_test(test_exit_is_oom_only_when_the_worker_was_killed),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
