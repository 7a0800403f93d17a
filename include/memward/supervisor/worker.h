/* One worker process as the supervisor tracks it: a fixed-size record, so the
 * supervisor's footprint grows by a known amount per worker. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "memward/base/units.h"
#include "memward/linux/cgroup.h"
#include "memward/linux/event_loop.h"
#include "memward/linux/memstat.h"
#include "memward/linux/notify.h"
#include "memward/policy/baseline.h"
#include "memward/policy/floor.h"
#include "memward/policy/policy.h"

enum worker_state {
        WORKER_STARTING,        /* spawned, not ready yet */
        WORKER_READY,           /* serving */
        WORKER_STOPPING,        /* stop signal sent (or SIGKILL, see killed) */
        _WORKER_STATE_MAX,
};

/* A worker of template mode before it has a pid. */
enum worker_fork {
        WORKER_FORK_NONE,       /* exec'd, or forked and adopted: it has a pid */
        WORKER_FORK_QUEUED,     /* waits for an idle template */
        WORKER_FORK_SENT,       /* its SPAWN is in flight */
};

/* Where a worker's anonymous-memory figure came from: the reports name it next to the
 * figure (anon_from in /status and on recycle lines), so that one is never mistaken for
 * another. monitor_worker_sample() and monitor_worker_boundary_read() say why each is
 * the slot's cost. */
enum memory_reading {
        MEMORY_READING_NONE,            /* not read yet */
        MEMORY_READING_CGROUP,          /* its leaf: memory.stat anon (memory.current for metric current) */
        MEMORY_READING_PSS_ANON,        /* Pss_Anon summed over its process tree */
        MEMORY_READING_USS,             /* Private_Clean + Private_Dirty over its tree: forked from a template */
        MEMORY_READING_ANONYMOUS,       /* Anonymous summed over its tree: a kernel without Pss_Anon (< 5.3) */
        MEMORY_READING_STATM,           /* resident - shared of statm, summed: request ends without a page walk */
        _MEMORY_READING_MAX,
};

/* "memory.stat", "pss_anon", "uss", "anonymous", "statm_private"; "none". */
const char *memory_reading_to_string(enum memory_reading r);

/* What memward knows about a worker's memory, from its last sample. */
struct worker_memory {
        struct cgroup_leaf leaf;        /* cgroup mode; dir_fd -1 in procfs mode */
        struct event_source events_source; /* memory.events changes (EPOLLPRI) */
        bool sampled;
        uint64_t current;               /* memory.current, or Rss of the process tree */
        uint64_t anon, file, kernel, shmem, sock;
        enum memory_reading anon_from;  /* how anon was read */
        uint64_t rss, pss;              /* procfs readings (procfs mode, or metric rss/pss) */
        uint64_t peak;                  /* memory.peak, or the largest current seen */
        uint64_t metric;                /* the configured memory.metric */
        struct floor_window floor;      /* of metric over retained_window */
        struct baseline baseline;       /* after warmup: what growth_max compares with */
        struct memory_events events;    /* last seen counters */
        struct boundary_floor boundary; /* readings taken when a request ended */
        usec_t last_boundary;           /* time of the last boundary reading */
        uint64_t last_boundary_value;
        enum memory_reading boundary_from; /* how last_boundary_value was read */
        uint64_t latest;                /* the newest reading, tick or request end: its share against group_high */
        bool oom_kill_seen;             /* memory.events oom_kill rose: some process in the leaf, maybe not the worker */
        bool sample_error_logged;       /* warned that it cannot be read: once per worker */
        bool boundary_error_logged;     /* the same for request-end readings */
};

struct worker {
        struct worker *next;

        unsigned slot;                  /* 0..count-1, stable across recycles */
        unsigned long long generation;  /* per slot, increases with every spawn */
        pid_t pid;                      /* also its process group id; 0: not forked yet (template
                                         * mode: queued or asked for, see fork) */
        enum worker_fork fork;          /* template mode: where its fork stands */
        unsigned long long template_generation; /* template mode: the template asked to fork it */
        enum worker_state state;

        usec_t spawned_at;
        usec_t ready_at;
        usec_t last_watchdog;
        usec_t kill_at;                 /* STOPPING: SIGKILL to the group at this time */
        bool killed;                    /* SIGKILL sent */
        bool failed;                    /* stopped because it failed (ready timeout): counts for backoff */
        bool usr1_pending;              /* SIGUSR1 came while it was starting: forwarded once ready */
        bool exited;                    /* seen exited before it was reaped: never made ready */

        uint64_t requests;
        uint64_t request_limit;         /* drawn at spawn: max_requests + jitter */
        usec_t lifetime_limit;          /* drawn at spawn: max_lifetime + jitter */

        /* Set only through worker_mark_recycle() in supervisor.c (and cleared when a queued
         * recycle is cancelled), so that what decided is always recorded with it. */
        enum recycle_reason recycle_reason;  /* != NONE: this worker is to be replaced */
        bool recycle_started;           /* replacement spawned (or we are stopping it) */
        bool recycle_counted;           /* logged and counted, once: not a failed spawn's retries, a reload's roll */
        usec_t recycle_due_at;          /* when the recycle was decided: first due, first served */
        usec_t limit_expected_at;       /* a max_requests recycle decided ahead: when the limit was
                                         * expected, for its event=recycle line */
        struct policy_rate request_rate; /* of its X_REQUESTS reports, to decide that ahead */
        /* The figure of the last memory judgement (sample tick, request end, a queued
         * recycle's turn); once a recycle is decided, the one it was decided with, until
         * the worker is gone. The only retained memory that reports show: the recycle
         * log line, the recycle history, /status and /metrics. */
        struct policy_memory_figure figure;

        char status[NOTIFY_STATUS_MAX]; /* last STATUS= text */

        struct worker_memory mem;
};

const char *worker_state_to_string(enum worker_state s);

/* Sends sig to the worker's main process. Returns 0, or -ESRCH when it is gone or not
 * forked yet (pid 0). */
int worker_signal(const struct worker *w, int sig);

/* SIGKILL to the worker's whole process group, so helpers and grandchildren die too. */
int worker_kill_group(const struct worker *w);

/* Asks the worker to stop: sig now, SIGKILL to the group at now + timeout. */
void worker_stop(struct worker *w, int sig, usec_t now, usec_t timeout);

/* The workers of the list that starts at head, as an array ordered by slot, then
 * generation: the same order on every call whatever order they came and went in, for
 * /metrics and /status. Returns 0 with *ret (the caller frees the array, not the
 * workers; NULL when there are none) and *ret_n, or -ENOMEM. */
int worker_list_sorted(const struct worker *head, const struct worker ***ret, size_t *ret_n);
