/* What the supervisor remembers of the workers that came and went: how each process
 * ended, and the last recycles for /status. Fixed-size and plain data, so the endpoint
 * can render it from a const struct supervisor. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "memward/base/units.h"
#include "memward/policy/policy.h"

/* How a worker process ended (memward_worker_exits_total{how}). */
enum worker_exit_how {
        WORKER_EXIT_EXIT,       /* exit(): any code */
        WORKER_EXIT_SIGNAL,     /* killed by a signal (our stop signal and SIGKILL included) */
        WORKER_EXIT_OOM,        /* its cgroup (or the kernel) OOM-killed it */
        _WORKER_EXIT_MAX,
};

const char *worker_exit_how_to_string(enum worker_exit_how h);

/* One recycle, for the "last 20 recycles" of /status. Fixed size: the ring costs the
 * same whatever happens. */
struct recycle_record {
        usec_t at;                      /* CLOCK_REALTIME */
        unsigned slot;
        pid_t pid;
        unsigned long long generation;
        enum recycle_reason reason;
        uint64_t requests;
        usec_t age;
        uint64_t anon;
        struct policy_memory_figure figure;     /* what decided (worker.figure): floor and its source */
};

#define RECYCLE_HISTORY_MAX 20U

struct recycle_history {
        struct recycle_record records[RECYCLE_HISTORY_MAX];
        uint64_t total;                 /* records ever pushed; the newest is at (total - 1) % MAX */
};

void recycle_history_push(struct recycle_history *h, const struct recycle_record *r);

/* The i-th newest record (0 = newest), or NULL beyond what is kept. */
const struct recycle_record *recycle_history_get(const struct recycle_history *h, size_t i);
