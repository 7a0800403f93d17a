/* One worker process as the supervisor tracks it: a fixed-size record, so the
 * supervisor's footprint grows by a known amount per worker. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "memward/notify.h"
#include "memward/policy.h"
#include "memward/units.h"

enum worker_state {
        WORKER_STARTING,        /* spawned, not ready yet */
        WORKER_READY,           /* serving */
        WORKER_STOPPING,        /* stop signal sent (or SIGKILL, see killed) */
        _WORKER_STATE_MAX,
};

struct worker {
        struct worker *next;

        unsigned slot;                  /* 0..count-1, stable across recycles */
        unsigned long long generation;  /* per slot, increases with every spawn */
        pid_t pid;                      /* also its process group id */
        enum worker_state state;

        usec_t spawned_at;
        usec_t ready_at;
        usec_t last_watchdog;
        usec_t kill_at;                 /* STOPPING: SIGKILL to the group at this time */
        bool killed;                    /* SIGKILL sent */
        bool failed;                    /* stopped because it failed (ready timeout): counts for backoff */

        uint64_t requests;
        uint64_t request_limit;         /* drawn at spawn: max_requests + jitter */
        usec_t lifetime_limit;          /* drawn at spawn: max_lifetime + jitter */

        enum recycle_reason recycle_reason;  /* != NONE: this worker is to be replaced */
        bool recycle_started;           /* replacement spawned (or we are stopping it) */

        char status[NOTIFY_STATUS_MAX]; /* last STATUS= text */
};

const char *worker_state_to_string(enum worker_state s);

/* Sends sig to the worker's main process. Returns 0, or -ESRCH when it is gone. */
int worker_signal(const struct worker *w, int sig);

/* SIGKILL to the worker's whole process group, so helpers and grandchildren die too. */
int worker_kill_group(const struct worker *w);

/* Asks the worker to stop: sig now, SIGKILL to the group at now + timeout. */
void worker_stop(struct worker *w, int sig, usec_t now, usec_t timeout);
