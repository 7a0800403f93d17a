/* The reconcile planner: what the supervisor should do now, decided from a read-only
 * snapshot of its slots and workers. No I/O, no clock, no allocation: the caller builds a
 * struct reconcile_view (supervisor.c does it after every event), calls reconcile_plan()
 * and carries the actions out in order -- spawning, signalling and logging are all the
 * caller's. So the rules of rolling recycles (replacement first, max_concurrent, first due
 * first served, stop-first, backoff, scale-down, the ready and graceful deadlines) are
 * unit tested on hand-built views, without a process.
 *
 * One plan is what one pass of the old supervisor_reconcile() did, in the same order:
 *   1. per worker: ready_delay passed (READY), ready_timeout passed (STOP, SIGKILL),
 *      a policy rule fired (MARK_RECYCLE: policy_evaluate()), graceful_timeout passed
 *      (STOP, SIGKILL); during shutdown only the last;
 *   2. workers of slots beyond the target (SIGTTOU, a reload that lowered workers.count):
 *      STOP, but never the last ready worker;
 *   3. empty slots up to the target, out of their backoff: SPAWN;
 *   4. due recycles, at most max_concurrent in flight, first due first served:
 *      START_RECYCLE (and STOP right after it for memory_stop_first); a queued memory
 *      recycle whose turn comes and that is no longer due: CANCEL_RECYCLE.
 * Later steps see what earlier ones planned (a worker marked in 1 can start in 4), so the
 * plan is what the old pass did when every action succeeds. When one fails (a spawn), the
 * caller plans again: the view then shows the slot's backoff, and another slot may go. */
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
         * when its turn comes (step 4), so the judgement itself stays the policy's
         * (policy_judge_memory(), policy_group_over_high()). Read for those reasons only. */
        bool still_due;
};

struct reconcile_slot {
        size_t active;                  /* index into the view's workers, or RECONCILE_NONE */
        size_t replacement;             /* the same, for the worker that takes over when ready */
        usec_t respawn_at;              /* no spawn into this slot before (backoff) */
        bool recycle_pending;           /* a recycle began here; until a worker is ready here again */
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
        RECONCILE_STOP_FIRST,           /* stop-first: right after its START_RECYCLE, whose spawn it needs */
        _RECONCILE_STOP_MAX,
};

struct reconcile_action {
        enum reconcile_action_kind kind;
        size_t worker;                  /* index into the view's workers; RECONCILE_NONE for SPAWN */
        unsigned slot;
        enum recycle_reason reason;     /* MARK_RECYCLE */
        enum reconcile_stop stop;       /* STOP */
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

/* Actions one plan can hold for a view of this size: at most four per worker (a mark, a
 * stop, a start and the stop-first after it) and one spawn per slot. */
#define RECONCILE_ACTIONS_MAX(n_workers, n_slots) (4 * (size_t) (n_workers) + (size_t) (n_slots))

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
 * bounds. */
unsigned reconcile_recycles_in_flight(const struct reconcile_view *v);
