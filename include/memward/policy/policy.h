/* The recycle policy: pure functions from what memward observed about a worker
 * to a decision. No I/O, no clock, no randomness of its own — the caller passes
 * "now" and random numbers in, so every rule can be unit tested exactly. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memward/base/units.h"

enum recycle_reason {
        RECYCLE_NONE,
        RECYCLE_MAX_REQUESTS,
        RECYCLE_MAX_LIFETIME,
        RECYCLE_WATCHDOG,
        RECYCLE_RELOAD,
        RECYCLE_RETAINED,
        RECYCLE_GROWTH,
        RECYCLE_PRESSURE,
        RECYCLE_GROUP_HIGH,
        RECYCLE_OOM,
        RECYCLE_SCALE_DOWN,
        RECYCLE_CGROUP_LOST,
        _RECYCLE_REASON_MAX,
};

const char *recycle_reason_to_string(enum recycle_reason r);

/* What the time- and count-based rules look at, for one ready worker. */
struct policy_worker_view {
        usec_t now;
        usec_t spawned_at;
        usec_t last_watchdog;           /* ready time until the first WATCHDOG=1 */
        uint64_t requests;
        uint64_t request_limit;         /* 0 = no limit */
        usec_t lifetime_limit;          /* 0 = no limit */
        usec_t watchdog;                /* 0 = off */
};

/* Returns the first rule that says this worker must be recycled, in the order
 * watchdog (it is hung, nothing else matters), max_requests, max_lifetime;
 * RECYCLE_NONE otherwise. */
enum recycle_reason policy_evaluate(const struct policy_worker_view *v);

/* The earliest time at which policy_evaluate() could change its answer without a new
 * observation (a lifetime or watchdog deadline); USEC_INFINITY when there is none. */
usec_t policy_next_deadline(const struct policy_worker_view *v);

/* Draws a worker's own limit uniformly from [base, base + jitter] using one 64-bit
 * random number, as gunicorn's max_requests_jitter does. base 0 (rule off) stays 0. */
uint64_t policy_draw_limit(uint64_t base, uint64_t jitter, uint64_t random);

/* splitmix64: small, fast and good enough to spread jitter; state is the caller's. */
uint64_t policy_random_next(uint64_t *state);

/* The two floors a worker can be judged by. */
struct policy_floors {
        bool has_boundary;              /* K request-end readings, the newest within retained_window */
        uint64_t boundary;              /* the smallest of the last K request-end readings */
        bool has_window;                /* a whole retained_window of samples */
        uint64_t window;                /* the minimum over retained_window */
};

/* A worker's retained memory: its request-end floor when it has a fresh one, else the
 * time-window floor. Returns false when neither is known yet; *ret_boundary says which. */
bool policy_retained_floor(const struct policy_floors *f, uint64_t *ret_floor, bool *ret_boundary);

/* What the memory rules look at, for one ready worker. */
struct policy_memory_view {
        bool has_floor;                 /* a whole retained_window of samples exists */
        uint64_t floor;                 /* minimum of the metric over retained_window */
        bool has_baseline;
        uint64_t baseline;              /* the floor right after warmup */
        uint64_t retained_max;          /* 0 = off */
        double growth_max;              /* 0 = off */
};

/* RECYCLE_RETAINED when the floor exceeds retained_max, RECYCLE_GROWTH when it exceeds
 * growth_max × baseline, else RECYCLE_NONE. A spike never counts: only the floor does. */
enum recycle_reason policy_evaluate_memory(const struct policy_memory_view *v);

/* One worker as a candidate for a group-level recycle (pressure, group_high). */
struct policy_candidate {
        bool eligible;                  /* ready, not already being recycled */
        bool has_floor;
        uint64_t floor;
        usec_t spawned_at;
};

/* The victim so far of a walk over every worker, for a group-level recycle. */
struct policy_victim {
        bool found;
        uint64_t floor;
        usec_t spawned_at;
};

/* Offers one candidate: the victim is the largest floor, ties to the oldest, never one
 * whose floor is below min_retained or unknown. Returns true when c is the victim now.
 * Each worker is offered once, in any order; nothing is kept but the best so far, so
 * any number of workers is judged. */
bool policy_victim_offer(struct policy_victim *v, const struct policy_candidate *c, uint64_t min_retained);

/* True when a group-level recycle may happen now: none yet, or cooldown has passed. */
bool policy_cooldown_passed(usec_t now, usec_t last, usec_t cooldown);

/* Whether a request-end report should be turned into a memory reading: only when no
 * other request is in flight (X_INFLIGHT 0 or absent — a concurrent worker's memory
 * mid-request says nothing about what it keeps), and at most once per min_interval
 * per worker, so 10,000 requests/s stay cheap. last = 0: no reading yet. */
bool policy_boundary_accept(bool has_inflight, uint64_t inflight, usec_t now, usec_t last, usec_t min_interval);

/* Whether a worker's exit was the OOM killer's doing: its main process died of SIGKILL
 * (wait_status from waitpid) that memward did not send, and its leaf counted an OOM kill
 * during its life. The counter alone is not enough: it also counts helpers and children
 * in the leaf, which the worker may well outlive. */
bool policy_exit_is_oom(int wait_status, bool leaf_oom_kill_seen, bool sigkill_sent);

/* Exponential restart backoff: initial, doubling per consecutive failure, capped at max. */
usec_t policy_backoff(usec_t initial, usec_t max, unsigned failures);
