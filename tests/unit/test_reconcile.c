/* The reconcile planner on hand-built views: rolling recycles, max_concurrent, first due
 * first served, stop-first, backoff, scale-down, the ready and graceful deadlines and
 * shutdown, with no process, no clock and no supervisor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memward/supervisor/reconcile.h"

#define S USEC_PER_SEC
#define MS USEC_PER_MSEC
#define NOW (10000 * S)
#define MAX_WORKERS 32
#define MAX_SLOTS 8

struct fixture {
        struct reconcile_worker workers[MAX_WORKERS];
        struct reconcile_slot slots[MAX_SLOTS];
        struct reconcile_view v;
        struct reconcile_plan p;
};

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof *f);
        assert_non_null(f);
        for (unsigned i = 0; i < MAX_SLOTS; i++)
                f->slots[i] = (struct reconcile_slot) { .active = RECONCILE_NONE, .replacement = RECONCILE_NONE };
        f->v = (struct reconcile_view) {
                .now = NOW,
                .target = 4,
                .config = {
                        .ready = READY_NOTIFY,
                        .ready_timeout = 60 * S,
                        .graceful_timeout = 30 * S,
                        .max_concurrent = 1,
                },
                .slots = f->slots,
                .n_slots = MAX_SLOTS,
                .workers = f->workers,
        };
        assert_int_equal(reconcile_plan_reserve(&f->p, MAX_WORKERS, MAX_SLOTS), 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        reconcile_plan_free(&f->p);
        free(f);
        return 0;
}

/* A worker in the slot, as its active one (or its replacement); ready workers were spawned
 * a minute ago and have no limits. Returns its index. */
static size_t add_worker(struct fixture *f, unsigned slot, enum worker_state state, bool replacement) {
        size_t i = f->v.n_workers++;
        assert_true(i < MAX_WORKERS);
        f->workers[i] = (struct reconcile_worker) {
                .slot = slot,
                .state = state,
                .spawned_at = state == WORKER_STARTING ? NOW - S : NOW - 60 * S,
                .last_watchdog = NOW - 60 * S,
                .still_due = true,
        };
        if (replacement)
                f->slots[slot].replacement = i;
        else
                f->slots[slot].active = i;
        return i;
}

/* A ready worker in every slot up to the target. */
static void fill_ready(struct fixture *f) {
        for (unsigned i = 0; i < f->v.target; i++)
                add_worker(f, i, WORKER_READY, false);
}

static void mark(struct fixture *f, size_t i, enum recycle_reason reason, usec_t due_at) {
        f->workers[i].recycle_reason = reason;
        f->workers[i].recycle_due_at = due_at;
}

static void plan(struct fixture *f) {
        assert_int_equal(reconcile_plan(&f->v, &f->p), 0);
}

/* Recycles in flight once the last plan is carried out. */
static unsigned in_flight_after(const struct fixture *f) {
        struct reconcile_view after = f->v;
        after.workers = f->p.workers;
        after.n_workers = f->p.n_workers;
        after.slots = f->p.slots;
        return reconcile_recycles_in_flight(&after);
}

/* The plan as one line, "start_recycle:2 stop:2:stop_first spawn:3", for messages. */
static const char *describe(const struct fixture *f) {
        static char buf[1024];
        size_t n = 0;

        buf[0] = '\0';
        for (size_t i = 0; i < f->p.n_actions && n < sizeof buf - 64; i++) {
                const struct reconcile_action *a = &f->p.actions[i];
                n += (size_t) snprintf(buf + n, sizeof buf - n, "%s%s:%u%s%s", i ? " " : "",
                                       reconcile_action_kind_to_string(a->kind), a->slot,
                                       a->kind == RECONCILE_STOP ? ":" : "",
                                       a->kind == RECONCILE_STOP ? reconcile_stop_to_string(a->stop) : "");
        }
        return buf;
}

/* Fails at the caller's line when the plan is not want. */
#define assert_plan(f, want) assert_plan_at(f, want, __FILE__, __LINE__)
static void assert_plan_at(const struct fixture *f, const char *want, const char *file, int line) {
        const char *got = describe(f);
        if (strcmp(got, want) != 0) {
                print_error("plan \"%s\", want \"%s\"\n", got, want);
                _fail(file, line);
        }
}

/* ---- filling slots ------------------------------------------------------------------ */

/* Empty slots up to the target get a worker, each once its backoff is over; the earliest
 * backoff is the next deadline, and a slot beyond the target stays empty. */
static void test_fill_respects_backoff(void **state) {
        struct fixture *f = *state;

        add_worker(f, 0, WORKER_READY, false);
        f->slots[1].respawn_at = NOW + 2 * S;   /* backing off */
        f->slots[2].respawn_at = NOW;           /* just over */
        f->slots[3].respawn_at = NOW + 5 * S;
        plan(f);
        assert_plan(f, "spawn:2");
        assert_true(f->p.next == NOW + 2 * S);
        /* The plan's own view: slot 2 now has a worker, starting. */
        assert_true(f->p.slots[2].active == 1);
        assert_int_equal(f->p.workers[1].state, WORKER_STARTING);

        /* Once the backoffs are over, both go; a spawned worker's ready timeout is the
         * next deadline. */
        f->v.now = NOW + 5 * S;
        plan(f);
        assert_plan(f, "spawn:1 spawn:2 spawn:3");
        assert_true(f->p.next == NOW + 5 * S + 60 * S);

        /* A slot with a starting worker, or a replacement alone, is not empty. */
        add_worker(f, 1, WORKER_STARTING, false);
        add_worker(f, 2, WORKER_STARTING, true);
        plan(f);
        assert_plan(f, "spawn:3");
}

/* ---- max_concurrent and first due, first served ------------------------------------- */

static void test_max_concurrent(void **state) {
        struct fixture *f = *state;

        fill_ready(f);
        mark(f, 0, RECYCLE_MAX_REQUESTS, NOW - 1 * S);
        mark(f, 1, RECYCLE_RELOAD, NOW - 3 * S);
        mark(f, 2, RECYCLE_MAX_LIFETIME, NOW - 2 * S);
        mark(f, 3, RECYCLE_WATCHDOG, NOW - 4 * S);

        /* One at a time: the first due. */
        plan(f);
        assert_plan(f, "start_recycle:3");
        assert_true(f->p.workers[3].recycle_started);
        assert_int_equal(f->p.workers[f->p.slots[3].replacement].state, WORKER_STARTING);
        assert_true(f->p.slots[3].recycle_pending);

        /* Two: the two first due, in that order. */
        f->v.config.max_concurrent = 2;
        plan(f);
        assert_plan(f, "start_recycle:3 start_recycle:1");

        /* With one in flight already, one more. */
        f->workers[3].recycle_started = true;
        add_worker(f, 3, WORKER_STARTING, true);
        plan(f);
        assert_plan(f, "start_recycle:1");

        /* With two in flight, none, whatever is due. */
        f->workers[1].recycle_started = true;
        add_worker(f, 1, WORKER_STARTING, true);
        plan(f);
        assert_plan(f, "");
        assert_int_equal(reconcile_recycles_in_flight(&f->v), 2);

        /* A slot in backoff is skipped, and the next one goes. */
        f->v.config.max_concurrent = 3;
        f->slots[2].respawn_at = NOW + 3 * S;
        plan(f);
        assert_plan(f, "start_recycle:0");
        assert_true(f->p.next == NOW + 3 * S);
}

/* A worker due by a policy rule is marked and, with room, started in the same plan. */
static void test_policy_marks_and_starts(void **state) {
        struct fixture *f = *state;

        fill_ready(f);
        f->workers[1].lifetime_limit = 30 * S;      /* spawned a minute ago */
        plan(f);
        assert_plan(f, "mark_recycle:1 start_recycle:1");
        assert_int_equal(f->p.actions[0].reason, RECYCLE_MAX_LIFETIME);
        assert_true(f->p.workers[1].recycle_due_at == NOW);

        /* One at its request limit goes too, first, and outside max_concurrent
         * (test_request_limit_*). */
        f->workers[2].request_limit = 100;
        f->workers[2].requests = 100;
        plan(f);
        assert_plan(f, "mark_recycle:1 mark_recycle:2 start_recycle:2 stop:2:stop_first start_recycle:1");
        assert_true(f->p.actions[3].at_limit);
        assert_int_equal(f->p.actions[1].reason, RECYCLE_MAX_REQUESTS);
        /* A starting worker or one already marked is not judged. */
        f->workers[1].recycle_reason = RECYCLE_RELOAD;
        f->workers[1].recycle_due_at = NOW - S;
        f->workers[2].state = WORKER_STARTING;
        f->workers[2].spawned_at = NOW - S;
        plan(f);
        assert_plan(f, "start_recycle:1");
}

/* Sustained load: every recycled worker is due again right away, so a rule that picked by
 * anything but due time (the lowest slot, the oldest worker) would keep picking the same
 * slots. Slot 3 becomes due last and must still get its turn before anyone goes twice. */
static void test_first_due_first_served(void **state) {
        struct fixture *f = *state;
        usec_t due[4] = { NOW, NOW + 100 * MS, NOW + 200 * MS, NOW + 900 * MS };
        unsigned picks[4] = {}, order[12];

        fill_ready(f);
        for (unsigned i = 0; i < 4; i++)
                f->workers[i].spawned_at = NOW - (unsigned) (4 - i) * 60 * S; /* slot 3 the youngest */
        for (unsigned round = 0; round < 12; round++) {
                f->v.now = NOW + S + round * 2 * S;
                for (unsigned i = 0; i < 4; i++)
                        mark(f, i, RECYCLE_MAX_REQUESTS, due[i]);
                plan(f);
                assert_int_equal(f->p.n_actions, 1);
                assert_int_equal(f->p.actions[0].kind, RECONCILE_START_RECYCLE);
                unsigned slot = f->p.actions[0].slot;
                order[round] = slot;
                picks[slot]++;
                /* Its replacement is ready by the next round and, under load, due again at once. */
                due[slot] = f->v.now + S;
        }
        for (unsigned round = 0; round < 12; round++)
                assert_int_equal(order[round], round % 4);
        for (unsigned i = 0; i < 4; i++)
                assert_int_equal(picks[i], 3);
}

/* ---- stop-first ------------------------------------------------------------------------ */

/* memory_stop_first stops the old worker right after its replacement is spawned -- and
 * the slot still counts against max_concurrent until a worker is ready there again:
 * while the replacement starts, after the old worker is gone, through the backoff of a
 * replacement that failed, and while a fresh worker starts there. Otherwise every due
 * slot would go down at once (test_recycle_scheduling has the real thing). */
static void test_stop_first_in_flight_until_ready(void **state) {
        struct fixture *f = *state;

        f->v.target = 3;
        f->v.config.memory_stop_first = true;
        fill_ready(f);
        mark(f, 0, RECYCLE_RETAINED, NOW - 3 * S);
        mark(f, 1, RECYCLE_GROWTH, NOW - 2 * S);
        mark(f, 2, RECYCLE_GROUP_HIGH, NOW - 1 * S);

        plan(f);
        assert_plan(f, "start_recycle:0 stop:0:stop_first");
        assert_int_equal(f->p.workers[0].state, WORKER_STOPPING);
        assert_true(f->p.next == NOW + 30 * S);        /* its SIGKILL, at graceful_timeout */

        /* The plan carried out: the old worker stops, its replacement starts. */
        f->workers[0].state = WORKER_STOPPING;
        f->workers[0].kill_at = NOW + 30 * S;
        f->workers[0].recycle_started = true;
        size_t r = add_worker(f, 0, WORKER_STARTING, true);
        f->slots[0].recycle_pending = true;
        plan(f);
        assert_plan(f, "");
        assert_int_equal(reconcile_recycles_in_flight(&f->v), 1);

        /* The old worker is gone: its slot still counts. */
        f->workers[0] = f->workers[r];
        f->v.n_workers--;
        f->slots[0].active = RECONCILE_NONE;
        f->slots[0].replacement = 0;
        plan(f);
        assert_plan(f, "");
        assert_int_equal(reconcile_recycles_in_flight(&f->v), 1);

        /* The replacement crashed: the slot backs off, and still counts. */
        f->slots[0].replacement = RECONCILE_NONE;
        f->workers[0] = f->workers[--f->v.n_workers];   /* the last one moves into its place */
        f->slots[f->workers[0].slot].active = 0;
        f->slots[0].respawn_at = NOW + 5 * S;
        plan(f);
        assert_plan(f, "");
        assert_int_equal(reconcile_recycles_in_flight(&f->v), 1);
        assert_true(f->p.next == NOW + 5 * S);

        /* Backoff over: a fresh worker, starting; still one in flight. */
        f->v.now = NOW + 5 * S;
        plan(f);
        assert_plan(f, "spawn:0");
        size_t fresh = add_worker(f, 0, WORKER_STARTING, false);
        f->workers[fresh].spawned_at = f->v.now;
        plan(f);
        assert_plan(f, "");

        /* Ready: the slot serves again, and the next memory recycle goes. */
        f->workers[fresh].state = WORKER_READY;
        f->slots[0].recycle_pending = false;
        assert_int_equal(reconcile_recycles_in_flight(&f->v), 0);
        plan(f);
        assert_plan(f, "start_recycle:1 stop:1:stop_first");
}

/* Stop-first is for memory reasons only: a max_requests recycle is replacement first. */
static void test_stop_first_only_for_memory(void **state) {
        struct fixture *f = *state;

        f->v.config.memory_stop_first = true;
        f->v.config.max_concurrent = 2;
        fill_ready(f);
        mark(f, 0, RECYCLE_MAX_REQUESTS, NOW - 2 * S);
        mark(f, 1, RECYCLE_PRESSURE, NOW - 1 * S);
        plan(f);
        assert_plan(f, "start_recycle:0 start_recycle:1 stop:1:stop_first");
        f->v.config.memory_stop_first = false;
        plan(f);
        assert_plan(f, "start_recycle:0 start_recycle:1");
}

/* ---- judged again at its turn -------------------------------------------------------- */

/* A queued memory recycle that is no longer due is cancelled when its turn comes -- not
 * while others fill max_concurrent -- and pressure stands. */
static void test_queued_memory_recycle_cancelled_at_its_turn(void **state) {
        struct fixture *f = *state;

        fill_ready(f);
        mark(f, 0, RECYCLE_RETAINED, NOW - 3 * S);
        mark(f, 1, RECYCLE_PRESSURE, NOW - 2 * S);
        mark(f, 2, RECYCLE_GROUP_HIGH, NOW - 1 * S);
        f->workers[0].still_due = false;
        f->workers[1].still_due = false;        /* ignored: pressure stands */
        f->workers[2].still_due = false;

        /* Not its turn: max_concurrent is full. */
        f->workers[3].recycle_reason = RECYCLE_RELOAD;
        f->workers[3].recycle_started = true;
        add_worker(f, 3, WORKER_STARTING, true);
        plan(f);
        assert_plan(f, "");

        /* Its turn. */
        f->v.config.max_concurrent = 2;
        plan(f);
        assert_plan(f, "cancel_recycle:0 cancel_recycle:2 start_recycle:1");
        assert_int_equal(f->p.workers[0].recycle_reason, RECYCLE_NONE);
        assert_true(f->p.workers[0].recycle_due_at == 0);
}

/* A group_high recycle was judged, like every queued one, on the group as the view shows
 * it: with the workers of the slots a reload just removed, which this plan stops. Their
 * memory is about to be given back, so its turn waits for the plan after the stops,
 * whose view judges it on the group without them -- and no later-due recycle takes its
 * place meanwhile. Without them the group is under group_high: cancelled, no restart. */
static void test_group_high_judged_after_scale_down(void **state) {
        struct fixture *f = *state;

        fill_ready(f);
        mark(f, 0, RECYCLE_GROUP_HIGH, NOW - 2 * S);
        mark(f, 1, RECYCLE_RETAINED, NOW - 1 * S);
        f->v.target = 2;        /* a reload: workers.count 4 -> 2 */
        plan(f);
        assert_plan(f, "stop:2:scale_down stop:3:scale_down");
        assert_true(f->p.next == NOW);

        /* The stops carried out: the next plan, at once, has the judgement without them. */
        for (size_t i = 2; i < 4; i++) {
                f->workers[i].state = WORKER_STOPPING;
                f->workers[i].kill_at = NOW + 30 * S;
        }
        f->workers[0].still_due = false;
        plan(f);
        assert_plan(f, "cancel_recycle:0 start_recycle:1");

        /* Still over without them: it goes, first due first served. */
        f->workers[0].still_due = true;
        plan(f);
        assert_plan(f, "start_recycle:0");
}

/* At its request limit in such a plan it goes at once, counted as what surely holds. */
static void test_group_high_at_limit_during_scale_down(void **state) {
        struct fixture *f = *state;

        fill_ready(f);
        mark(f, 0, RECYCLE_GROUP_HIGH, NOW - 2 * S);
        f->workers[0].request_limit = 100;
        f->workers[0].requests = 100;
        f->v.target = 2;
        plan(f);
        assert_plan(f, "stop:2:scale_down stop:3:scale_down cancel_recycle:0 mark_recycle:0 start_recycle:0 "
                       "stop:0:stop_first");
        assert_int_equal(f->p.actions[3].reason, RECYCLE_MAX_REQUESTS);
}

/* ---- scale-down ------------------------------------------------------------------------ */

/* Workers of slots beyond the target stop (replacements too), but never the last ready
 * worker: with the wanted slot empty or still starting, the unwanted one serves on until
 * a worker is ready there. */
static void test_scale_down(void **state) {
        struct fixture *f = *state;

        fill_ready(f);
        add_worker(f, 3, WORKER_STARTING, true);
        f->v.target = 2;
        plan(f);
        assert_plan(f, "stop:2:scale_down stop:3:scale_down stop:3:scale_down");
        assert_true(f->p.next == NOW + 30 * S);
        /* One scale_down recycle per slot: its serving worker's, not its replacement's. */
        assert_true(f->p.actions[0].counts);
        assert_true(f->p.actions[1].counts);
        assert_false(f->p.actions[2].counts);
        for (size_t i = 2; i < f->v.n_workers; i++)
                assert_int_equal(f->p.workers[i].state, WORKER_STOPPING);
        /* Stopped already: nothing more. */
        for (size_t i = 2; i < f->v.n_workers; i++) {
                f->workers[i].state = WORKER_STOPPING;
                f->workers[i].kill_at = NOW + 30 * S;
        }
        plan(f);
        assert_plan(f, "");

        /* A slot whose worker was stopped first (a memory recycle): its replacement is
         * what the slot loses, and counts. */
        f->workers[2].state = WORKER_READY;
        f->workers[4].state = WORKER_STARTING;
        f->workers[4].spawned_at = NOW - S;
        plan(f);
        assert_plan(f, "stop:2:scale_down stop:3:scale_down");
        assert_true(f->p.actions[0].counts);
        assert_true(f->p.actions[1].counts);
}

static void test_scale_down_never_the_last_worker(void **state) {
        struct fixture *f = *state;

        /* SIGTTOU from 2 to 1 while slot 0 backs off after a crash. */
        f->v.target = 1;
        size_t last = add_worker(f, 1, WORKER_READY, false);
        f->slots[0].respawn_at = NOW + 2 * S;
        plan(f);
        assert_plan(f, "");
        assert_true(f->p.next == NOW + 2 * S);

        /* Slot 0 starts: still the last ready worker. */
        f->v.now = NOW + 2 * S;
        plan(f);
        assert_plan(f, "spawn:0");
        size_t w0 = add_worker(f, 0, WORKER_STARTING, false);
        f->workers[w0].spawned_at = f->v.now;
        plan(f);
        assert_plan(f, "");

        /* Slot 0 is ready: now it goes. */
        f->workers[w0].state = WORKER_READY;
        plan(f);
        assert_plan(f, "stop:1:scale_down");
        assert_true(f->p.actions[0].worker == last);

        /* Two unwanted slots and none wanted ready: one of them goes, one serves on. */
        f->workers[w0].state = WORKER_STARTING;
        add_worker(f, 2, WORKER_READY, false);
        plan(f);
        assert_plan(f, "stop:1:scale_down");
        f->v.n_workers--;
        f->slots[2].active = RECONCILE_NONE;

        /* A worker that is not ready yet is no capacity: it goes even when none is ready. */
        f->workers[w0].state = WORKER_STARTING;
        f->workers[last].state = WORKER_STARTING;
        f->workers[last].spawned_at = f->v.now;
        plan(f);
        assert_plan(f, "stop:1:scale_down");
}

/* ---- deadlines ------------------------------------------------------------------------- */

static void test_ready_timeout_and_delay(void **state) {
        struct fixture *f = *state;

        f->v.target = 2;
        size_t late = add_worker(f, 0, WORKER_STARTING, false);
        size_t early = add_worker(f, 1, WORKER_STARTING, false);
        f->workers[late].spawned_at = NOW - 60 * S;
        f->workers[early].spawned_at = NOW - 60 * S + 1;
        plan(f);
        assert_plan(f, "stop:0:ready_timeout");
        assert_true(f->p.workers[late].killed);
        assert_int_equal(f->p.workers[late].state, WORKER_STOPPING);
        /* The other's timeout is next; a SIGKILLed worker has no deadline left. */
        assert_true(f->p.next == NOW + 1);

        /* workers.ready: a delay. Ready once it has passed; the delay is a deadline. */
        f->v.config.ready = READY_DELAY;
        f->v.config.ready_delay = 2 * S;
        f->workers[late].spawned_at = NOW - 2 * S;
        f->workers[early].spawned_at = NOW - 1 * S;
        plan(f);
        assert_plan(f, "ready:0");
        assert_true(f->p.next == NOW + 1 * S);
}

/* Template mode: a worker not forked yet has neither a ready delay nor a ready timeout
 * here (nor a deadline), however long it has waited: the template's timeouts bound it,
 * and a READY could not be carried out without a pid. Once forked, both apply again. */
static void test_unforked_worker_waits(void **state) {
        struct fixture *f = *state;

        f->v.target = 1;
        f->v.config.ready = READY_DELAY;
        f->v.config.ready_delay = 2 * S;
        size_t w = add_worker(f, 0, WORKER_STARTING, false);
        f->workers[w].spawned_at = NOW - 120 * S;
        f->workers[w].unforked = true;
        plan(f);
        assert_plan(f, "");
        assert_true(f->p.next == USEC_INFINITY);

        f->workers[w].unforked = false;
        f->workers[w].spawned_at = NOW - 1 * S;
        plan(f);
        assert_plan(f, "");
        assert_true(f->p.next == NOW + 1 * S);
}

/* One slot, under a 2 s ready delay, halfway through a recycle: its old worker READY and
 * marked for reason 3 s ago, its replacement STARTING since spawned_at. Returns the old
 * worker's index, *ret_replacement the replacement's. */
static size_t recycle_in_flight(struct fixture *f, enum recycle_reason reason, usec_t spawned_at,
                                size_t *ret_replacement) {
        f->v.target = 1;
        f->v.config.ready = READY_DELAY;
        f->v.config.ready_delay = 2 * S;
        size_t old = add_worker(f, 0, WORKER_READY, false);
        mark(f, old, reason, NOW - 3 * S);
        f->workers[old].recycle_started = true;
        size_t r = add_worker(f, 0, WORKER_STARTING, true);
        f->workers[r].spawned_at = spawned_at;
        f->slots[0].recycle_pending = true;
        *ret_replacement = r;
        return old;
}

/* A worker seen exited before its exit was reaped (its READY=1 ignored) gets no ready
 * delay, no ready timeout and no deadline: were it made ready, it would replace the worker
 * that serves; its reap, next, judges it. Its passed delay and timeout are no deadline
 * either: the loop's timer would fire at once, again and again, until the reap. Not yet
 * seen so, its delay applies. */
static void test_exited_worker_not_made_ready(void **state) {
        struct fixture *f = *state;
        size_t r, old = recycle_in_flight(f, RECYCLE_MAX_LIFETIME, NOW - 120 * S, &r);

        f->workers[r].exited = true;
        plan(f);
        assert_plan(f, "");
        assert_true(f->p.next > NOW);
        assert_true(f->p.slots[0].active == old);
        assert_int_equal(f->p.workers[old].state, WORKER_READY);

        f->workers[r].exited = false;
        f->workers[r].spawned_at = NOW - 2 * S;
        plan(f);
        assert_plan(f, "ready:0");
}

/* A replacement that becomes ready (here by its delay) takes over: the old worker is
 * stopped then, as the supervisor does when a worker says READY=1. */
static void test_ready_replacement_takes_over(void **state) {
        struct fixture *f = *state;
        size_t r, old = recycle_in_flight(f, RECYCLE_MAX_REQUESTS, NOW - 2 * S, &r);

        plan(f);
        assert_plan(f, "ready:0");
        assert_true(f->p.slots[0].active == r);
        assert_true(f->p.slots[0].replacement == RECONCILE_NONE);
        assert_false(f->p.slots[0].recycle_pending);
        assert_int_equal(f->p.workers[old].state, WORKER_STOPPING);
        assert_true(f->p.next == NOW + 30 * S);
}

static void test_graceful_timeout_kill(void **state) {
        struct fixture *f = *state;

        f->v.target = 1;
        add_worker(f, 0, WORKER_READY, false);
        size_t due = add_worker(f, 1, WORKER_STOPPING, false);
        size_t later = add_worker(f, 2, WORKER_STOPPING, false);
        size_t killed = add_worker(f, 3, WORKER_STOPPING, false);
        f->workers[due].kill_at = NOW;
        f->workers[later].kill_at = NOW + 7 * S;
        f->workers[killed].kill_at = NOW - S;
        f->workers[killed].killed = true;
        plan(f);
        assert_plan(f, "stop:1:graceful_timeout");
        assert_true(f->p.workers[due].killed);
        assert_true(f->p.next == NOW + 7 * S);
}

/* Shutting down: no spawn, no recycle, no policy, no ready timeout -- only the SIGKILLs
 * of workers that outlived graceful_timeout. */
static void test_shutting_down_plans_only_kills(void **state) {
        struct fixture *f = *state;

        f->v.shutting_down = true;
        size_t a = add_worker(f, 0, WORKER_STOPPING, false);
        size_t b = add_worker(f, 1, WORKER_STOPPING, false);
        f->workers[a].kill_at = NOW - 1;
        f->workers[b].kill_at = NOW + 3 * S;
        size_t starting = add_worker(f, 2, WORKER_STARTING, false);
        f->workers[starting].spawned_at = NOW - 120 * S;       /* past its ready timeout */
        size_t ready = add_worker(f, 3, WORKER_READY, false);
        f->workers[ready].request_limit = 1;
        f->workers[ready].requests = 5;
        f->workers[ready].lifetime_limit = 1 * S;
        size_t queued = add_worker(f, 4 % MAX_SLOTS, WORKER_READY, false);
        mark(f, queued, RECYCLE_RETAINED, NOW - S);
        f->workers[queued].still_due = false;
        f->v.target = 5;
        plan(f);
        assert_plan(f, "stop:0:graceful_timeout");
        assert_true(f->p.next == NOW + 3 * S);
}

/* The next deadline is the earliest of everything that can change the answer by itself. */
static void test_next_deadline(void **state) {
        struct fixture *f = *state;

        f->v.target = 3;
        f->v.config.watchdog = 20 * S;
        size_t w0 = add_worker(f, 0, WORKER_READY, false);
        size_t w1 = add_worker(f, 1, WORKER_READY, false);
        f->workers[w0].last_watchdog = NOW - 5 * S;            /* missed ping due in 15 s */
        f->workers[w1].last_watchdog = NOW;
        f->workers[w1].lifetime_limit = 70 * S;                /* spawned 60 s ago: 10 s */
        f->slots[2].respawn_at = NOW + 12 * S;
        plan(f);
        assert_plan(f, "");
        assert_true(f->p.next == NOW + 10 * S);

        /* A marked worker's policy deadlines no longer count. */
        mark(f, w1, RECYCLE_RELOAD, NOW - S);
        f->workers[w1].recycle_started = true;
        add_worker(f, 1, WORKER_STARTING, true);               /* its ready timeout: NOW - 1 s + 60 s */
        plan(f);
        assert_plan(f, "");
        assert_true(f->p.next == NOW + 12 * S);

        /* Nothing to wait for at all. */
        f->v.config.watchdog = 0;
        f->slots[2].respawn_at = 0;
        f->v.target = 2;
        f->v.n_workers = 1;
        f->slots[1].active = RECONCILE_NONE;
        f->slots[1].replacement = RECONCILE_NONE;
        f->v.target = 1;
        plan(f);
        assert_plan(f, "");
        assert_true(f->p.next == USEC_INFINITY);
}

/* ---- recycle.max_requests is a bound -------------------------------------------------- */

/* A worker with 100 requests/s, a limit of 1000 and a slot that started in 1 s: its lead is
 * 1.6 s (policy_prestart_due()), 160 requests. */
static size_t add_counted(struct fixture *f, unsigned slot, uint64_t requests) {
        size_t i = add_worker(f, slot, WORKER_READY, false);
        f->workers[i].request_limit = 1000;
        f->workers[i].requests = requests;
        f->workers[i].request_rate = (struct policy_rate) { .known = true, .per_second = 100.0, .since = NOW - S };
        f->slots[slot].startup = 1 * S;
        return i;
}

/* Ahead: due when the requests left run out within the lead; replacement first. */
static void test_request_limit_ahead(void **state) {
        struct fixture *f = *state;

        f->v.target = 2;
        size_t far = add_counted(f, 0, 800);
        size_t near = add_counted(f, 1, 850);
        plan(f);
        assert_plan(f, "mark_recycle:1 start_recycle:1");
        assert_int_equal(f->p.actions[0].reason, RECYCLE_MAX_REQUESTS);
        assert_true(f->p.actions[0].limit_expected_at == NOW + 1500 * MS);
        assert_int_equal(f->p.workers[near].state, WORKER_READY);     /* serves on */
        assert_int_equal(f->p.workers[far].recycle_reason, RECYCLE_NONE);

        /* No rate known yet, or no start-up measured and time enough: not yet. */
        f->workers[near].request_rate.known = false;
        plan(f);
        assert_plan(f, "");
        f->workers[near].request_rate.known = true;
        f->slots[1].startup = 0;
        plan(f);
        assert_plan(f, "");
}

/* At the limit with the replacement still starting: the old worker stops now. */
static void test_request_limit_stops_first(void **state) {
        struct fixture *f = *state;

        f->v.target = 1;
        size_t old = add_counted(f, 0, 999);
        mark(f, old, RECYCLE_MAX_REQUESTS, NOW - 1 * S);
        f->workers[old].recycle_started = true;
        add_worker(f, 0, WORKER_STARTING, true);
        f->slots[0].recycle_pending = true;
        plan(f);
        assert_plan(f, "");
        f->workers[old].requests = 1000;
        plan(f);
        assert_plan(f, "stop:0:stop_first");
        assert_true(f->p.actions[0].at_limit);
        /* The recycle no longer holds a place in max_concurrent: it adds no worker. */
        assert_true(f->p.slots[0].recycle_at_limit);
        assert_int_equal(in_flight_after(f), 0);

        /* Nor once the old worker is gone and its replacement starts. */
        f->workers[old].state = WORKER_STOPPING;
        f->workers[old].kill_at = NOW + 30 * S;
        f->slots[0].recycle_at_limit = true;
        assert_int_equal(reconcile_recycles_in_flight(&f->v), 0);
        f->slots[0].active = RECONCILE_NONE;
        f->workers[old].recycle_started = false;
        assert_int_equal(reconcile_recycles_in_flight(&f->v), 0);
        f->slots[0].recycle_at_limit = false;  /* a memory stop-first recycle does count */
        assert_int_equal(reconcile_recycles_in_flight(&f->v), 1);
}

/* A worker at its limit whose recycle is queued behind max_concurrent starts now, stopped
 * first; memory recycles still wait their turn, but not behind it. */
static void test_request_limit_past_max_concurrent(void **state) {
        struct fixture *f = *state;

        f->v.target = 3;
        size_t busy = add_worker(f, 0, WORKER_READY, false);
        mark(f, busy, RECYCLE_RETAINED, NOW - 9 * S);
        f->workers[busy].recycle_started = true;
        add_worker(f, 0, WORKER_STARTING, true);
        size_t limit = add_counted(f, 1, 1000);
        mark(f, limit, RECYCLE_MAX_REQUESTS, NOW - 1 * S);
        size_t memory = add_worker(f, 2, WORKER_READY, false);
        mark(f, memory, RECYCLE_RETAINED, NOW - 5 * S);
        plan(f);
        assert_plan(f, "start_recycle:1 stop:1:stop_first");

        /* With slot 0 done, the memory recycle has max_concurrent's place. */
        size_t r0 = f->slots[0].replacement;
        f->workers[busy].recycle_started = false;
        f->workers[busy].recycle_reason = RECYCLE_NONE;
        f->slots[0].replacement = RECONCILE_NONE;
        f->workers[r0].state = WORKER_STOPPING;         /* out of the way */
        f->workers[r0].kill_at = NOW + 30 * S;
        plan(f);
        assert_plan(f, "start_recycle:1 stop:1:stop_first start_recycle:2");
        f->workers[busy].recycle_started = true;
        f->workers[busy].recycle_reason = RECYCLE_RETAINED;
        f->slots[0].replacement = r0;
        f->workers[r0].state = WORKER_STARTING;

        /* Not into a slot that backs off. */
        f->slots[1].respawn_at = NOW + 2 * S;
        plan(f);
        assert_plan(f, "");
        assert_true(f->p.next == NOW + 2 * S);
        f->slots[1].respawn_at = 0;

        /* Queued for memory it no longer holds, and past its request limit: a
         * max_requests recycle now. */
        mark(f, limit, RECYCLE_GROWTH, NOW - 1 * S);
        f->workers[limit].still_due = false;
        plan(f);
        assert_plan(f, "cancel_recycle:1 mark_recycle:1 start_recycle:1 stop:1:stop_first");
        assert_int_equal(f->p.actions[1].reason, RECYCLE_MAX_REQUESTS);
}

/* ---- the plan's room -------------------------------------------------------------------- */

static void test_plan_room(void **state) {
        struct fixture *f = *state;
        struct reconcile_plan small = {};

        fill_ready(f);
        assert_int_equal(reconcile_plan(&f->v, &small), -ENOBUFS);
        assert_int_equal(reconcile_plan_reserve(&small, f->v.n_workers, f->v.n_slots), 0);
        assert_int_equal(reconcile_plan(&f->v, &small), 0);
        reconcile_plan_free(&small);

        /* A full plan fits: every worker at its limit marked, started and stopped first,
         * every other slot spawned. */
        for (unsigned i = 0; i < 4; i++) {
                f->workers[i].requests = f->workers[i].request_limit = 1;
                f->workers[i].recycle_due_at = 0;
        }
        f->v.target = MAX_SLOTS;
        plan(f);
        assert_int_equal(f->p.n_actions, 4 * 3 + (MAX_SLOTS - 4));
}

/* A scale-down and a memory stop-first in one plan: the slot that stays keeps its
 * worker until the replacement is ready, or nothing would serve. */
static void test_scale_down_and_stop_first_leave_one_ready(void **state) {
        struct fixture *f = *state;
        f->v.target = 1;
        f->v.config.memory_stop_first = true;
        size_t a = add_worker(f, 0, WORKER_READY, false);
        add_worker(f, 1, WORKER_READY, false);
        mark(f, a, RECYCLE_RETAINED, NOW - S);
        plan(f);
        unsigned ready = 0;
        for (size_t i = 0; i < f->p.n_workers; i++)
                if (f->p.workers[i].state == WORKER_READY) ready++;
        assert_int_not_equal(ready, 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_fill_respects_backoff, setup, teardown),
                cmocka_unit_test_setup_teardown(test_max_concurrent, setup, teardown),
                cmocka_unit_test_setup_teardown(test_policy_marks_and_starts, setup, teardown),
                cmocka_unit_test_setup_teardown(test_first_due_first_served, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stop_first_in_flight_until_ready, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stop_first_only_for_memory, setup, teardown),
                cmocka_unit_test_setup_teardown(test_queued_memory_recycle_cancelled_at_its_turn, setup, teardown),
                cmocka_unit_test_setup_teardown(test_group_high_judged_after_scale_down, setup, teardown),
                cmocka_unit_test_setup_teardown(test_group_high_at_limit_during_scale_down, setup, teardown),
                cmocka_unit_test_setup_teardown(test_scale_down, setup, teardown),
                cmocka_unit_test_setup_teardown(test_scale_down_never_the_last_worker, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ready_timeout_and_delay, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unforked_worker_waits, setup, teardown),
                cmocka_unit_test_setup_teardown(test_exited_worker_not_made_ready, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ready_replacement_takes_over, setup, teardown),
                cmocka_unit_test_setup_teardown(test_graceful_timeout_kill, setup, teardown),
                cmocka_unit_test_setup_teardown(test_shutting_down_plans_only_kills, setup, teardown),
                cmocka_unit_test_setup_teardown(test_next_deadline, setup, teardown),
                cmocka_unit_test_setup_teardown(test_request_limit_ahead, setup, teardown),
                cmocka_unit_test_setup_teardown(test_request_limit_stops_first, setup, teardown),
                cmocka_unit_test_setup_teardown(test_request_limit_past_max_concurrent, setup, teardown),
                cmocka_unit_test_setup_teardown(test_plan_room, setup, teardown),
                cmocka_unit_test_setup_teardown(test_scale_down_and_stop_first_leave_one_ready, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
