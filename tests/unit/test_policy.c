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

static void test_rate(void **state) {
        (void) state;
        struct policy_rate r = {};
        const usec_t t = 1000 * SEC, ms = USEC_PER_MSEC;

        /* The first report starts the measurement; reports within the interval (one batch
         * of datagrams, read at one moment) do not make a rate. */
        policy_rate_update(&r, t, 10);
        assert_false(r.known);
        policy_rate_update(&r, t, 12);
        policy_rate_update(&r, t + 200 * ms, 30);
        assert_false(r.known);
        policy_rate_update(&r, t + 500 * ms, 60);       /* 50 in 0.5 s */
        assert_true(r.known);
        assert_float_equal(r.per_second, 100.0, 1e-9);
        /* Smoothed: after 1 s at 300/s, half way there (weight 1 / (1 + 1)). */
        policy_rate_update(&r, t + 1500 * ms, 360);
        assert_float_equal(r.per_second, 200.0, 1e-9);
        /* After a long pause the new rate is nearly all that counts. */
        policy_rate_update(&r, t + 101500 * ms, 460);   /* 100 in 100 s */
        assert_true(r.per_second > 1.0 && r.per_second < 4.0);
        /* A count that goes down starts the measurement again, keeping the estimate. */
        double before = r.per_second;
        policy_rate_update(&r, t + 102000 * ms, 5);
        assert_float_equal(r.per_second, before, 1e-9);
        policy_rate_update(&r, t + 103000 * ms, 55);
        assert_true(r.per_second > before);
}

static void test_prestart(void **state) {
        (void) state;
        struct policy_rate r = { .known = true, .per_second = 100.0 };
        const usec_t ms = USEC_PER_MSEC;
        usec_t in = 0;

        /* 1 s start-up: lead 1.6 s, 160 requests at 100/s. */
        assert_false(policy_prestart_due(839, 1000, &r, 1000 * ms, &in));
        assert_true(policy_prestart_due(840, 1000, &r, 1000 * ms, &in));
        assert_true(in == 1600 * ms);
        assert_true(policy_prestart_due(999, 1000, &r, 1000 * ms, &in));
        assert_true(in == 10 * ms);
        /* At the limit it is policy_evaluate()'s: max_requests. */
        assert_false(policy_prestart_due(1000, 1000, &r, 1000 * ms, &in));
        /* No limit, no rate, a rate of 0: no prediction. */
        assert_false(policy_prestart_due(999, 0, &r, 1000 * ms, &in));
        struct policy_rate unknown = {}, idle = { .known = true };
        assert_false(policy_prestart_due(999, 1000, &unknown, 1000 * ms, &in));
        assert_false(policy_prestart_due(999, 1000, &idle, 1000 * ms, &in));
        /* Ready at once: only the slack, 10 requests at 100/s. */
        assert_false(policy_prestart_due(989, 1000, &r, 0, &in));
        assert_true(policy_prestart_due(990, 1000, &r, 0, &in));
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

static void test_start_limit(void **state) {
        (void) state;
        usec_t s = USEC_PER_SEC, now = 100 * s;
        /* A worker that exits 1 at once, backoff 100 ms doubling: 5 failures in 1.5 s. */
        usec_t crash_loop[] = { now - 1500000, now - 1400000, now - 1200000, now - 800000, now };
        struct policy_start_limit_verdict v;

        v = policy_start_limit(5, 10 * s, crash_loop, 5, 0, now);
        assert_true(v.hit);
        assert_int_equal(v.failures, 5);
        assert_true(v.span == 1500000);
        /* One fewer: not yet. */
        v = policy_start_limit(5, 10 * s, crash_loop + 1, 4, 0, now);
        assert_false(v.hit);
        assert_int_equal(v.failures, 4);
        /* A worker that serves: never, however many failures (a slot failing beside it). */
        v = policy_start_limit(5, 10 * s, crash_loop, 5, 1, now);
        assert_false(v.hit);
        assert_int_equal(v.failures, 5);
        /* Off. */
        assert_false(policy_start_limit(0, 10 * s, crash_loop, 5, 0, now).hit);
        /* Spread out more than the interval: only those within it count; the bound is
         * open (exactly interval ago is out). */
        usec_t spread[] = { now - 10 * s, now - 9 * s, now - 6 * s, now - 3 * s, now };
        v = policy_start_limit(5, 10 * s, spread, 5, 0, now);
        assert_false(v.hit);
        assert_int_equal(v.failures, 4);
        assert_true(v.span == 9 * s);
        /* Any order; a time after now (cannot be) is ignored. */
        usec_t shuffled[] = { now, now - 2 * s, now + s, now - s };
        v = policy_start_limit(3, 10 * s, shuffled, 4, 0, now);
        assert_true(v.hit);
        assert_int_equal(v.failures, 3);
        assert_true(v.span == 2 * s);
        /* None. */
        v = policy_start_limit(5, 10 * s, NULL, 0, 0, now);
        assert_false(v.hit);
        assert_true(v.failures == 0 && v.span == 0);
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

/* A worker 100 s old, both floors known and the request-end one fresh, no rule on. */
static struct policy_memory_input memory_input(void) {
        return (struct policy_memory_input) {
                .now = 1000 * SEC,
                .has_window = true,
                .window = 300 * MiB,
                .has_request_end = true,
                .request_end = 20 * MiB,
                .request_end_at = 999 * SEC,
                .retained_window = 60 * SEC,
        };
}

static void test_memory_needs_a_floor(void **state) {
        (void) state;
        struct policy_memory_input in = { .now = 1000 * SEC, .retained_window = 60 * SEC, .window = 900 * MiB,
                                          .request_end = 900 * MiB, .retained_max = 100 * MiB, .growth_max = 1.5,
                                          .has_baseline = true, .baseline = MiB };
        struct policy_memory_verdict v = policy_judge_memory(&in);
        assert_int_equal(v.reason, RECYCLE_NONE);
        assert_int_equal(v.figure.source, POLICY_FLOOR_NONE);
        assert_true(v.figure.floor == 0 && v.figure.ratio == 0);
        /* Only the baseline, which is no floor, is reported. */
        assert_true(v.figure.has_baseline && v.figure.baseline == MiB);

        in.has_window = true;
        v = policy_judge_memory(&in);
        assert_int_equal(v.reason, RECYCLE_RETAINED);
        assert_int_equal(v.figure.source, POLICY_FLOOR_WINDOW);
}

/* A request longer than the window must not look retained: the request-end floor wins
 * whenever there is a fresh one, even when the window's minimum is higher. */
static void test_floor_prefers_fresh_request_end(void **state) {
        (void) state;
        struct policy_memory_input in = memory_input();
        struct policy_memory_verdict v = policy_judge_memory(&in);

        assert_int_equal(v.reason, RECYCLE_NONE);
        assert_int_equal(v.figure.source, POLICY_FLOOR_REQUEST_END);
        assert_true(v.figure.floor == 20 * MiB);

        /* Lower than the window's, too: whichever is fresh counts, not the smaller. */
        in.request_end = 500 * MiB;
        v = policy_judge_memory(&in);
        assert_int_equal(v.figure.source, POLICY_FLOOR_REQUEST_END);
        assert_true(v.figure.floor == 500 * MiB);

        /* A young worker that reports requests is judged before its first whole window. */
        in.has_window = false;
        v = policy_judge_memory(&in);
        assert_int_equal(v.figure.source, POLICY_FLOOR_REQUEST_END);
        assert_true(v.figure.floor == 500 * MiB);
}

/* Request-end readings count while the newest is no older than retained_window: a worker
 * that stopped having quiet moments falls back to the window. */
static void test_floor_request_end_freshness(void **state) {
        (void) state;
        struct policy_memory_input in = memory_input();

        in.request_end_at = in.now - in.retained_window;         /* exactly a window old: still fresh */
        assert_int_equal(policy_judge_memory(&in).figure.source, POLICY_FLOOR_REQUEST_END);

        in.request_end_at--;                                      /* stale */
        struct policy_memory_verdict v = policy_judge_memory(&in);
        assert_int_equal(v.figure.source, POLICY_FLOOR_WINDOW);
        assert_true(v.figure.floor == 300 * MiB);

        in.has_window = false;                                    /* stale and no window: nothing */
        assert_int_equal(policy_judge_memory(&in).figure.source, POLICY_FLOOR_NONE);

        /* Never read at a request end, or fewer than K readings: the window judges. */
        in = memory_input();
        in.request_end_at = 0;
        assert_int_equal(policy_judge_memory(&in).figure.source, POLICY_FLOOR_WINDOW);
        in = memory_input();
        in.has_request_end = false;
        assert_int_equal(policy_judge_memory(&in).figure.source, POLICY_FLOOR_WINDOW);

        /* A reading stamped after now (never on one clock) is not trusted as fresh. */
        in = memory_input();
        in.request_end_at = in.now + 1;
        assert_int_equal(policy_judge_memory(&in).figure.source, POLICY_FLOOR_WINDOW);
}

static void test_retained_threshold_is_strict(void **state) {
        (void) state;
        struct policy_memory_input in = memory_input();
        in.has_request_end = false;
        in.window = 100 * MiB;
        in.retained_max = 100 * MiB;
        assert_int_equal(policy_judge_memory(&in).reason, RECYCLE_NONE);
        in.window++;
        struct policy_memory_verdict v = policy_judge_memory(&in);
        assert_int_equal(v.reason, RECYCLE_RETAINED);
        assert_int_equal(v.figure.source, POLICY_FLOOR_WINDOW);
        assert_true(v.figure.floor == 100 * MiB + 1);
        in.retained_max = 0;                                      /* off */
        v = policy_judge_memory(&in);
        assert_int_equal(v.reason, RECYCLE_NONE);
        /* The figure is there whether or not a rule fired. */
        assert_true(v.figure.floor == 100 * MiB + 1);
}

/* The request-end floor decides retained on its own, whatever the window says: below
 * the limit while the window is over it, and over it while the window is below. */
static void test_retained_on_the_floor_used(void **state) {
        (void) state;
        struct policy_memory_input in = memory_input();
        in.retained_max = 100 * MiB;                              /* window 300 MiB, request end 20 MiB */
        assert_int_equal(policy_judge_memory(&in).reason, RECYCLE_NONE);

        in.window = 10 * MiB;
        in.request_end = 150 * MiB;
        struct policy_memory_verdict v = policy_judge_memory(&in);
        assert_int_equal(v.reason, RECYCLE_RETAINED);
        assert_int_equal(v.figure.source, POLICY_FLOOR_REQUEST_END);
        assert_true(v.figure.floor == 150 * MiB);
}

static void test_growth_vs_baseline(void **state) {
        (void) state;
        struct policy_memory_input in = memory_input();
        in.has_request_end = false;
        in.window = 249 * MiB;
        in.growth_max = 2.5;
        struct policy_memory_verdict v = policy_judge_memory(&in);
        assert_int_equal(v.reason, RECYCLE_NONE);               /* no baseline yet */
        assert_false(v.figure.has_baseline);
        assert_true(v.figure.ratio == 0);

        in.has_baseline = true;
        in.baseline = 0;                                          /* a baseline of 0 judges nothing */
        v = policy_judge_memory(&in);
        assert_int_equal(v.reason, RECYCLE_NONE);
        assert_true(v.figure.ratio == 0);

        in.baseline = 100 * MiB;
        v = policy_judge_memory(&in);
        assert_int_equal(v.reason, RECYCLE_NONE);
        assert_true(v.figure.has_baseline && v.figure.baseline == 100 * MiB);
        assert_true(v.figure.ratio > 2.489 && v.figure.ratio < 2.491);
        in.window = 250 * MiB;                                    /* exactly 2.5 x: not over */
        assert_int_equal(policy_judge_memory(&in).reason, RECYCLE_NONE);
        in.window = 251 * MiB;
        v = policy_judge_memory(&in);
        assert_int_equal(v.reason, RECYCLE_GROWTH);
        assert_int_equal(v.figure.source, POLICY_FLOOR_WINDOW);
        assert_true(v.figure.floor == 251 * MiB && v.figure.baseline == 100 * MiB);
        assert_true(v.figure.ratio > 2.509 && v.figure.ratio < 2.511);

        in.growth_max = 0;                                        /* off */
        assert_int_equal(policy_judge_memory(&in).reason, RECYCLE_NONE);

        /* retained wins when both fire: it is the absolute rule. */
        in.growth_max = 2.5;
        in.retained_max = 200 * MiB;
        assert_int_equal(policy_judge_memory(&in).reason, RECYCLE_RETAINED);
}

/* A request-end reading that crosses growth_max recycles for growth at once: the
 * request-end floor is judged against the baseline exactly as the window's is, while
 * the window (still holding the samples from before the request) is far below. */
static void test_growth_at_request_end(void **state) {
        (void) state;
        struct policy_memory_input in = memory_input();
        in.window = 12 * MiB;
        in.has_baseline = true;
        in.baseline = 10 * MiB;
        in.growth_max = 3.0;
        in.request_end = 30 * MiB;                                /* exactly 3 x: not over */
        assert_int_equal(policy_judge_memory(&in).reason, RECYCLE_NONE);

        in.request_end = 110 * MiB;
        struct policy_memory_verdict v = policy_judge_memory(&in);
        assert_int_equal(v.reason, RECYCLE_GROWTH);
        assert_int_equal(v.figure.source, POLICY_FLOOR_REQUEST_END);
        assert_true(v.figure.floor == 110 * MiB && v.figure.baseline == 10 * MiB);
        assert_true(v.figure.ratio > 10.99 && v.figure.ratio < 11.01);

        /* The same reading gone stale: the window judges, and it has not grown. */
        in.request_end_at = in.now - in.retained_window - 1;
        v = policy_judge_memory(&in);
        assert_int_equal(v.reason, RECYCLE_NONE);
        assert_int_equal(v.figure.source, POLICY_FLOOR_WINDOW);
        assert_true(v.figure.floor == 12 * MiB);
}

static void test_floor_source_names(void **state) {
        (void) state;
        assert_string_equal(policy_floor_source_to_string(POLICY_FLOOR_NONE), "none");
        assert_string_equal(policy_floor_source_to_string(POLICY_FLOOR_WINDOW), "window");
        assert_string_equal(policy_floor_source_to_string(POLICY_FLOOR_REQUEST_END), "request_end");
        assert_string_equal(policy_floor_source_to_string(_POLICY_FLOOR_SOURCE_MAX), "unknown");
}

static void test_group_over_high(void **state) {
        (void) state;
        /* Off: never over, whatever the total. */
        assert_false(policy_group_over_high(UINT64_MAX, 0, 0));
        assert_false(policy_group_over_high(0, 0, 0));
        /* The total alone (the tick, a request end: everyone is in it). */
        assert_false(policy_group_over_high(200 * MiB, 0, 200 * MiB));
        assert_true(policy_group_over_high(200 * MiB + 1, 0, 200 * MiB));
        /* The others plus the worker whose queued recycle has its turn now. */
        assert_false(policy_group_over_high(150 * MiB, 50 * MiB, 200 * MiB));
        assert_true(policy_group_over_high(150 * MiB, 50 * MiB + 1, 200 * MiB));
        assert_true(policy_group_over_high(0, 201 * MiB, 200 * MiB));
        /* The sum saturates instead of wrapping to a small number. */
        assert_true(policy_group_over_high(UINT64_MAX, 1, 200 * MiB));
        assert_true(policy_group_over_high(UINT64_MAX - 1, UINT64_MAX - 1, UINT64_MAX - 1));
}

static void test_avg10_threshold(void **state) {
        (void) state;
        const usec_t ms = USEC_PER_MSEC;
        /* "some 150ms 2s": 7.5 % of the window. */
        struct policy_pressure_verdict v = policy_judge_avg10(7.49, 150 * ms, 2 * SEC);
        assert_false(v.over);
        assert_true(v.threshold > 7.499 && v.threshold < 7.501);
        assert_true(policy_judge_avg10(7.5, 150 * ms, 2 * SEC).over);       /* reaching it is enough */
        assert_true(policy_judge_avg10(80.0, 150 * ms, 2 * SEC).over);
        assert_false(policy_judge_avg10(0.0, 150 * ms, 2 * SEC).over);
        /* A stall as long as the window: only a full stall. */
        assert_false(policy_judge_avg10(99.99, 2 * SEC, 2 * SEC).over);
        assert_true(policy_judge_avg10(100.0, 2 * SEC, 2 * SEC).over);
        /* No window (pressure off): never over, no division by zero. */
        v = policy_judge_avg10(100.0, 0, 0);
        assert_false(v.over);
        assert_true(v.threshold == 0);
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

/* A worker that stopped itself at MEMWARD_MAX_REQUESTS is a max_requests recycle; an exit
 * short of it, or one that is not a clean exit, stays a failure. */
static void test_exit_at_request_limit_is_a_recycle(void **state) {
        (void) state;
        assert_true(policy_exit_at_request_limit(W_EXITCODE(0, 0), 30, 30));
        assert_true(policy_exit_at_request_limit(W_EXITCODE(0, 0), 31, 30));
        /* Its last report lost on a full notify socket. */
        assert_true(policy_exit_at_request_limit(W_EXITCODE(0, 0), 29, 30));
        assert_true(policy_exit_at_request_limit(W_EXITCODE(0, 0), 1, 1));
        assert_true(policy_exit_at_request_limit(W_EXITCODE(0, 0), 1, 2));
        /* Nothing served: a worker that exits at once is no recycle, whatever the limit. */
        assert_false(policy_exit_at_request_limit(W_EXITCODE(0, 0), 0, 1));
        /* Short of the limit: an unexpected exit. */
        assert_false(policy_exit_at_request_limit(W_EXITCODE(0, 0), 28, 30));
        assert_false(policy_exit_at_request_limit(W_EXITCODE(0, 0), 0, 30));
        /* At the limit, but it failed or was killed. */
        assert_false(policy_exit_at_request_limit(W_EXITCODE(1, 0), 30, 30));
        assert_false(policy_exit_at_request_limit(W_EXITCODE(255, 0), 30, 30));
        assert_false(policy_exit_at_request_limit(W_EXITCODE(0, SIGTERM), 30, 30));
        assert_false(policy_exit_at_request_limit(W_EXITCODE(0, SIGKILL), 30, 30));
        /* No limit drawn: never. */
        assert_false(policy_exit_at_request_limit(W_EXITCODE(0, 0), 1000, 0));
        assert_false(policy_exit_at_request_limit(W_EXITCODE(0, 0), 0, 0));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_no_rules_no_recycle),
                cmocka_unit_test(test_max_requests),
                cmocka_unit_test(test_rate),
                cmocka_unit_test(test_prestart),
                cmocka_unit_test(test_max_lifetime),
                cmocka_unit_test(test_watchdog_first),
                cmocka_unit_test(test_draw_limit_bounds),
                cmocka_unit_test(test_draw_limit_distribution),
                cmocka_unit_test(test_backoff),
                cmocka_unit_test(test_start_limit),
                cmocka_unit_test(test_reason_names),
                cmocka_unit_test(test_memory_needs_a_floor),
                cmocka_unit_test(test_floor_prefers_fresh_request_end),
                cmocka_unit_test(test_floor_request_end_freshness),
                cmocka_unit_test(test_retained_threshold_is_strict),
                cmocka_unit_test(test_retained_on_the_floor_used),
                cmocka_unit_test(test_growth_vs_baseline),
                cmocka_unit_test(test_growth_at_request_end),
                cmocka_unit_test(test_floor_source_names),
                cmocka_unit_test(test_group_over_high),
                cmocka_unit_test(test_avg10_threshold),
                cmocka_unit_test(test_victim_largest_floor),
                cmocka_unit_test(test_victim_ties_go_to_the_oldest),
                cmocka_unit_test(test_cooldown),
                cmocka_unit_test(test_boundary_inflight_gating),
                cmocka_unit_test(test_boundary_rate_limit),
                cmocka_unit_test(test_exit_is_oom_only_when_the_worker_was_killed),
                cmocka_unit_test(test_exit_at_request_limit_is_a_recycle),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
