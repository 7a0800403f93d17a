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

/* A worker's request rate, estimated from its cumulative X_REQUESTS reports for
 * policy_prestart_due(). Reports come in bursts (a batch of datagrams is read at one
 * moment), so the rate is measured over intervals of at least POLICY_RATE_INTERVAL_USEC
 * and smoothed with a weight that grows with the interval: dt / (dt + 1 s), so a rate
 * follows the load within a few seconds and one after a long pause starts afresh.
 * Zero-initialized: no report yet. */
struct policy_rate {
        usec_t since;                   /* start of the interval being measured; 0: none */
        uint64_t since_requests;        /* the count reported then */
        double per_second;              /* the estimate; valid when known */
        bool known;
};

#define POLICY_RATE_INTERVAL_USEC (250 * USEC_PER_MSEC)

/* Takes a report of requests (cumulative) at now. A count that went down (a worker that
 * counts afresh) starts the measurement again and keeps the estimate. */
void policy_rate_update(struct policy_rate *r, usec_t now, uint64_t requests);

/* How far ahead of its request limit a worker's replacement is started: the slot's last
 * measured start-up (spawn to READY=1) times POLICY_PRESTART_MARGIN, plus
 * POLICY_PRESTART_SLACK_USEC for memward's own reaction. The margin absorbs a start-up
 * slower than the last and a rate that rises; starting early costs only time with both
 * workers alive, since the old worker serves on up to its limit (reconcile.h). */
#define POLICY_PRESTART_MARGIN 1.5
#define POLICY_PRESTART_SLACK_USEC (100 * USEC_PER_MSEC)

/* Whether a worker below its request limit should have its replacement started now, so
 * that the replacement is ready when the worker reaches the limit: at the worker's
 * current rate, the requests it has left take no longer than the lead above. True with
 * *ret_in, the time until the limit at that rate; false when there is no limit (0), the
 * limit is reached already (policy_evaluate() says max_requests then), no rate is known
 * or the rate is 0, or there is time enough. startup 0: none measured, or a worker ready
 * at once. */
bool policy_prestart_due(uint64_t requests, uint64_t limit, const struct policy_rate *rate, usec_t startup,
                         usec_t *ret_in);

/* Draws a worker's own limit uniformly from [base, base + jitter] using one 64-bit
 * random number, as gunicorn's max_requests_jitter does. base 0 (rule off) stays 0. */
uint64_t policy_draw_limit(uint64_t base, uint64_t jitter, uint64_t random);

/* splitmix64: small, fast and good enough to spread jitter; state is the caller's. */
uint64_t policy_random_next(uint64_t *state);

/* Which floor a memory judgement used. */
enum policy_floor_source {
        POLICY_FLOOR_NONE,              /* neither floor is known yet: no memory rule can judge */
        POLICY_FLOOR_WINDOW,            /* the minimum over retained_window (sample ticks) */
        POLICY_FLOOR_REQUEST_END,       /* the smallest of the last K request-end readings */
        _POLICY_FLOOR_SOURCE_MAX,
};

/* "window", "request_end"; "none" for POLICY_FLOOR_NONE (reports show null instead). */
const char *policy_floor_source_to_string(enum policy_floor_source s);

/* Everything the per-worker memory rules (retained_max, growth_max) look at, for one
 * worker at one moment. The caller gathers it; nothing here reads a clock or a file. */
struct policy_memory_input {
        usec_t now;
        bool has_window;                /* a whole retained_window of samples exists */
        uint64_t window;                /* their minimum */
        bool has_request_end;           /* K request-end readings were taken (retained_requests) */
        uint64_t request_end;           /* the smallest of the last K */
        usec_t request_end_at;          /* when the newest of them was taken; 0 = never */
        usec_t retained_window;         /* request-end readings older than this are stale */
        bool has_baseline;
        uint64_t baseline;              /* the floor right after warmup */
        uint64_t retained_max;          /* 0 = off */
        double growth_max;              /* 0 = off */
};

/* The figure a memory judgement stands on: the floor it used and where that came
 * from, and the baseline it was compared with. It is what every report of the worker's
 * retained memory shows (the recycle log line, /status, /metrics, the recycle
 * history), so that they never disagree with what decided. */
struct policy_memory_figure {
        enum policy_floor_source source;        /* POLICY_FLOOR_NONE: floor is meaningless */
        uint64_t floor;
        bool has_baseline;
        uint64_t baseline;
        double ratio;                   /* floor / baseline; 0 without a baseline (or one of 0) */
};

struct policy_memory_verdict {
        enum recycle_reason reason;     /* RECYCLE_NONE, RECYCLE_RETAINED or RECYCLE_GROWTH */
        struct policy_memory_figure figure;     /* also when reason is RECYCLE_NONE */
};

/* The one memory judgement of a worker, wherever it is made (the sample tick, a request
 * end, a queued recycle's turn, the choice of a group victim).
 *
 * The floor: the request-end floor when there is one and its newest reading is no older
 * than retained_window, else the window's floor, else none. A reading taken with no
 * request in flight is exactly what the worker keeps; the window's minimum is only an
 * estimate of it, and one request that runs longer than the window fools it. The window
 * stays for workers that never report requests, or have had no quiet moment for a
 * whole window.
 *
 * The rules, on that floor: RECYCLE_RETAINED when it exceeds retained_max; else
 * RECYCLE_GROWTH when it exceeds growth_max × baseline (a baseline of 0 or none judges
 * nothing); else RECYCLE_NONE. retained wins when both fire: it is the absolute rule.
 * A spike never counts: only a floor does. The figure is filled in whatever the reason. */
struct policy_memory_verdict policy_judge_memory(const struct policy_memory_input *in);

/* Whether the group is over memory.group_high: the workers' total plus one worker's
 * share (0 when the total already counts everyone) exceeds group_high. group_high 0 is
 * off: never over. The sum saturates. */
bool policy_group_over_high(uint64_t total, uint64_t worker, uint64_t group_high);

/* The avg10 fallback of pressure.trigger, when no PSI trigger could be registered: the
 * trigger's share of stall in its window, in percent (100 × stall / window), is the
 * threshold avg10 is compared with; over when avg10 reaches it. A window of 0 (pressure
 * off) is never over. */
struct policy_pressure_verdict {
        bool over;
        double threshold;               /* percent */
};
struct policy_pressure_verdict policy_judge_avg10(double avg10, usec_t stall, usec_t window);

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

/* Whether a worker that exited while memward had not asked it to stop left at its request
 * limit (MEMWARD_MAX_REQUESTS, docs/fork-server.md §2), as a runtime may: a max_requests
 * recycle, not a failure. It exited with code 0 (a graceful stop's exit) after it reported
 * requests >= request_limit - 1: the one report it may lack is its last, lost on a full
 * notify socket (datagrams are sent without blocking) — one still in flight is read before
 * the exit is judged. Never before a first request: a worker that exits 0 at once, again
 * and again, is a failure with its backoff also under max_requests 1. request_limit 0
 * (none): never. */
bool policy_exit_at_request_limit(int wait_status, uint64_t requests, uint64_t request_limit);

/* Exponential restart backoff: initial, doubling per consecutive failure, capped at max. */
usec_t policy_backoff(usec_t initial, usec_t max, unsigned failures);

/* The start limit (workers.start_limit_burst, workers.start_limit_interval): like
 * systemd's StartLimitBurst=/StartLimitIntervalSec=, but it counts failed starts only
 * (a spawn that failed, a worker that exited or was killed unasked), so that a healthy
 * fleet recycling often never trips it, and only while no worker is ready (the caller
 * records only the failures that happen while none is): memward
 * gives up, and exits for Kubernetes or systemd to see, when it serves nothing and
 * keeps failing, never by stopping workers that serve (a slot that crash-loops beside
 * them shows in /healthz and is retried with backoff). */
struct policy_start_limit_verdict {
        bool hit;
        unsigned failures;      /* failed starts within the interval before now */
        usec_t span;            /* from the oldest of them to now; 0 when none */
};

/* failed_at: the CLOCK_MONOTONIC times of recent failed starts, in any order (n of
 * them; those older than interval are not counted). The caller counts per slot, one per
 * backoff round: a time for each new record of one slot's failures in a row, none ready
 * (so that N slots failing at once are one), forgotten when a worker is ready. burst 0
 * turns the limit off. Hit when no worker is ready and at least burst failed starts fall
 * in (now - interval, now]. */
struct policy_start_limit_verdict policy_start_limit(unsigned burst, usec_t interval, const usec_t *failed_at,
                                                     size_t n, unsigned ready_workers, usec_t now);
