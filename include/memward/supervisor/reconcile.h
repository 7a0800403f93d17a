/* The reconcile planner: what the supervisor should do now, decided from a read-only
 * snapshot of its slots and workers. No I/O, no clock, no allocation: the caller builds a
 * struct reconcile_view (supervisor.c does it after every event), calls reconcile_plan()
 * and carries the actions out in order -- spawning, signalling and logging are all the
 * caller's. So the rules of rolling recycles (replacement first, max_concurrent, first due
 * first served, stop-first, backoff, scale-down, the ready and graceful deadlines) are
 * unit tested on hand-built views, without a process.
 *
 * One plan is one pass of decisions, in this order:
 *   1. per worker: ready_delay passed (READY; a replacement then takes its slot over and
 *      the old worker stops), ready_timeout passed (STOP, SIGKILL), a policy rule fired
 *      (MARK_RECYCLE: policy_evaluate()) or a worker will reach its request limit within
 *      its slot's start-up time (MARK_RECYCLE max_requests, ahead: policy_prestart_due()),
 *      graceful_timeout passed (STOP, SIGKILL); during shutdown only the last;
 *   2. a worker at its request limit whose replacement is still starting: STOP stop_first;
 *   3. workers of slots beyond the target (SIGTTOU, a reload that lowered workers.count):
 *      STOP, but never the last ready worker;
 *   4. empty slots up to the target, out of their backoff: SPAWN;
 *   5. due recycles: a queued worker at its request limit starts now, whatever
 *      max_concurrent says, and stops first (START_RECYCLE, STOP); the others at most
 *      max_concurrent in flight, first due first served (START_RECYCLE, and STOP right
 *      after it for memory_stop_first); a queued memory recycle whose turn comes and
 *      that is no longer due: CANCEL_RECYCLE. A group_high recycle whose turn comes in a
 *      plan that stops workers in 3 waits for the next plan (next is now): its still_due
 *      counted their memory, which the stops give back, and the next view judges it
 *      on the group without them -- no restart for a budget the scale-down meets.
 * Later steps see what earlier ones planned (a worker marked in 1 can start in 5). When
 * an action fails (a spawn), the caller plans again: the view then shows the slot's
 * backoff, and another slot may go.
 *
 * recycle.max_requests is a bound. A recycle takes a replacement's start-up (often a
 * second or two) and, under sustained load, recycles queue behind max_concurrent, so a
 * worker that only started its recycle at its limit served on well past it. Now:
 *   - ahead: a worker whose remaining requests, at its current rate, run out within its
 *     slot's last start-up time (with a margin) is due now, so that its replacement is
 *     ready by the time it reaches the limit. The replacement takes over when it is
 *     ready, as in every recycle, so a life ends a little before its limit: by the
 *     requests of the margin. (Keeping the old worker on to its limit beside its ready
 *     replacement was tried: the kernel hands new connections on a shared socket mostly
 *     to the newest waiter, so the old worker hardly advanced while its replacement used
 *     up its own limit);
 *   - at the limit: a worker whose replacement is not ready stops at once (stop-first);
 *     its replacement is started then if it was not, past max_concurrent, and the
 *     recycle no longer counts against max_concurrent, so that others can start ahead.
 *     The worker finishes the requests it has (SIGTERM) and takes no new ones.
 * The price is capacity, never the bound: when the prediction was wrong (a start-up
 * slower than the last, a burst, a recycle queued behind max_concurrent), the slot is
 * down for the rest of its replacement's start-up. max_concurrent still bounds the
 * recycles started ahead (each keeps an extra worker alive while its replacement starts)
 * and memory recycles (whose point is to spread the load); a limit reached neither waits
 * for it nor holds a place in it: stopping first adds no worker. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memward/base/units.h"
#include "memward/config/config.h"
#include "memward/policy/policy.h"
#include "memward/supervisor/worker.h"

/* No worker: an empty slot position. */
#define RECONCILE_NONE SIZE_MAX

/* One worker process as the planner sees it: the fields of struct worker its rules read. */
struct reconcile_worker {
        unsigned slot;
        enum worker_state state;
        usec_t spawned_at;
        /* workers.mode template: STARTING with no process yet (queued for the template, or
         * its SPAWN in flight). No ready delay or timeout runs for it here: the template's
         * own timeouts bound it (supervisor.c), and a READY for a worker without a pid could
         * not be carried out. */
        bool unforked;
        /* STARTING, seen exited before its exit was reaped (a READY=1 ignored): no ready
         * delay or timeout for it either; the reap, next, judges it. */
        bool exited;
        usec_t last_watchdog;           /* ready time until the first WATCHDOG=1 */
        usec_t kill_at;                 /* STOPPING: SIGKILL to the group at this time */
        bool killed;                    /* SIGKILL sent */
        uint64_t requests;
        uint64_t request_limit;         /* 0 = no limit */
        usec_t lifetime_limit;          /* 0 = no limit */
        enum recycle_reason recycle_reason;     /* != NONE: to be replaced */
        bool recycle_started;           /* its replacement was spawned (or it was stopped first) */
        usec_t recycle_due_at;          /* when the recycle was decided: first due, first served */
        /* A queued memory recycle (retained, growth, group_high) judged again by the caller
         * with this view's now: still over its limit. The planner cancels one that is not
         * when its turn comes (step 5), so the judgement itself stays the policy's
         * (policy_judge_memory(), policy_group_over_high()). Read for those reasons only. */
        bool still_due;
        struct policy_rate request_rate;        /* from its X_REQUESTS reports */
};

struct reconcile_slot {
        size_t active;                  /* index into the view's workers, or RECONCILE_NONE */
        size_t replacement;             /* the same, for the worker that takes over when ready */
        usec_t respawn_at;              /* no spawn into this slot before (backoff) */
        bool recycle_pending;           /* a recycle began here; until a worker is ready here again */
        bool recycle_at_limit;          /* ... and stopped its worker at its request limit before the
                                         * replacement was ready (STOP .at_limit) */
        usec_t startup;                 /* the last spawn to READY=1 here; 0: none yet */
};

/* The configuration the rules read (struct memward_config's workers and recycle). */
struct reconcile_config {
        enum ready_mode ready;
        usec_t ready_delay;             /* READY_DELAY only */
        usec_t ready_timeout;
        usec_t graceful_timeout;
        usec_t watchdog;                /* 0 = off */
        unsigned max_concurrent;        /* >= 1 */
        bool memory_stop_first;
};

struct reconcile_view {
        usec_t now;                     /* CLOCK_MONOTONIC */
        bool shutting_down;
        unsigned target;                /* wanted workers: slots 0..target-1 */
        struct reconcile_config config;
        const struct reconcile_slot *slots;     /* n_slots >= target */
        size_t n_slots;
        const struct reconcile_worker *workers; /* every live child, in any order */
        size_t n_workers;
};

enum reconcile_action_kind {
        RECONCILE_READY,                /* .worker: its workers.ready delay has passed */
        RECONCILE_MARK_RECYCLE,         /* .worker is due for .reason (a policy rule) */
        RECONCILE_STOP,                 /* .worker, as .stop says */
        RECONCILE_SPAWN,                /* a fresh worker into the empty .slot */
        RECONCILE_START_RECYCLE,        /* spawn the replacement of .worker into its .slot */
        RECONCILE_CANCEL_RECYCLE,       /* .worker's queued memory recycle: no longer due at its turn */
        _RECONCILE_ACTION_KIND_MAX,
};

enum reconcile_stop {
        RECONCILE_STOP_SCALE_DOWN,      /* its slot is beyond the target: stop_signal */
        RECONCILE_STOP_READY_TIMEOUT,   /* not ready within ready_timeout: SIGKILL to its group; a failure */
        RECONCILE_STOP_GRACEFUL_TIMEOUT, /* still alive graceful_timeout after its stop: SIGKILL to its group */
        RECONCILE_STOP_FIRST,           /* before its replacement is ready (memory_stop_first, a request
                                         * limit reached): only once that was spawned */
        _RECONCILE_STOP_MAX,
};

struct reconcile_action {
        enum reconcile_action_kind kind;
        size_t worker;                  /* index into the view's workers; RECONCILE_NONE for SPAWN */
        unsigned slot;
        enum recycle_reason reason;     /* MARK_RECYCLE */
        usec_t limit_expected_at;       /* MARK_RECYCLE ahead of the request limit: when it is expected */
        enum reconcile_stop stop;       /* STOP */
        /* STOP stop_first: the worker is at its request limit. Its slot's recycle then no
         * longer counts against max_concurrent (recycle_at_limit): it adds no worker, and
         * holding a place there would only keep recycles that start ahead from running. */
        bool at_limit;
        /* STOP for scale_down: this stop is the slot's scale_down recycle, to be logged
         * (event=recycle) and counted -- once per slot: for the slot's serving worker, or
         * for its replacement when nothing else serves there. */
        bool counts;
};

/* "ready", "mark_recycle", "stop", "spawn", "start_recycle", "cancel_recycle"; for tests
 * and debugging. */
const char *reconcile_action_kind_to_string(enum reconcile_action_kind k);
/* "scale_down", "ready_timeout", "graceful_timeout", "stop_first". */
const char *reconcile_stop_to_string(enum reconcile_stop s);

/* A plan, and the room the planner works in. The caller reserves it once with
 * reconcile_plan_reserve() and reuses it: planning allocates nothing. */
struct reconcile_plan {
        struct reconcile_action *actions;       /* in the order to carry them out */
        size_t n_actions;
        /* The earliest time the answer can change without an event: a backoff ending, a
         * ready delay or timeout, a policy deadline (lifetime, watchdog), a SIGKILL due.
         * Taken from the workers as they will be once every action succeeded, a worker
         * the plan spawns included (spawned now, starting), so that nothing the plan
         * starts or stops waits for the next sample tick. USEC_INFINITY: none. */
        usec_t next;
        /* The workers and slots as they will be once every action succeeded: the view's
         * workers first, in their order, then the ones the plan spawns. */
        struct reconcile_worker *workers;
        size_t n_workers;
        struct reconcile_slot *slots;
        size_t n_slots;

        size_t action_capacity, worker_capacity, slot_capacity;
};

/* Actions one plan can hold for a view of this size: at most five per worker (a mark, a
 * stop, a cancel and a mark again, a start, the stop-first after it) and one spawn per
 * slot. */
#define RECONCILE_ACTIONS_MAX(n_workers, n_slots) (5 * (size_t) (n_workers) + (size_t) (n_slots))

/* Makes room for a view of up to n_workers workers and n_slots slots; grows, never
 * shrinks. Returns 0, or -ENOMEM with the plan as it was. */
int reconcile_plan_reserve(struct reconcile_plan *p, size_t n_workers, size_t n_slots);
void reconcile_plan_free(struct reconcile_plan *p);

/* Plans what to do now for the view (see the top of this file). Returns 0 with p's
 * actions, next, workers and slots filled in, or -ENOBUFS when p has less room than
 * reconcile_plan_reserve() with the view's sizes makes. Pure: the same view gives the
 * same plan. */
int reconcile_plan(const struct reconcile_view *v, struct reconcile_plan *p);

/* Recycles in flight: from the start of a recycle until the old worker is gone *and* a
 * worker is ready in its slot again. A worker whose replacement was spawned counts; so
 * does a slot up to the target whose recycle began (recycle_pending) and that has no
 * ready worker yet: with stop-first the old worker is gone early, and the slot must still
 * count while the replacement starts -- and while it waits out a backoff after a
 * replacement that failed -- or every due slot would go down at once. What max_concurrent
 * bounds. A recycle whose worker stopped at its request limit before its replacement was
 * ready does not count: it did not wait for max_concurrent, and it adds no worker. */
unsigned reconcile_recycles_in_flight(const struct reconcile_view *v);
