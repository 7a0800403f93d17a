/* Reading memory: the I/O half of the memory policies. The monitor finds out
 * where workers can be accounted (cgroup leaves or /proc), samples each worker,
 * keeps its floor and baseline, and watches the group's pressure. Decisions are
 * policy.c's; acting on them is the supervisor's. */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "memward/config/config.h"
#include "memward/linux/cgroup.h"
#include "memward/linux/psi.h"
#include "memward/supervisor/worker.h"

struct pending_leaf;

struct monitor {
        const char *proc_root;
        struct cgroup_setup cgroup;

        uint64_t group_limit;           /* bytes: the base of "NN%" sizes, 0 = unknown */
        int group_limit_error;          /* why group_limit is unknown (negative errno), else 0 */
        char group_limit_source[PATH_MAX]; /* the file the limit came from, or the one that failed */
        uint64_t worker_high;           /* resolved memory.worker_high, 0 = unset */
        uint64_t worker_max;
        uint64_t group_high;

        int psi_fd;                     /* trigger fd (EPOLLPRI), -1 when none */
        usec_t psi_stall;               /* stall of the trigger the kernel accepted */
        usec_t psi_window;              /* window the kernel accepted */
        bool psi_polling;               /* no trigger possible: compare avg10 on the tick */
        bool psi_lost;                  /* the trigger fd died (EPOLLERR): register it again */
        unsigned psi_retries;           /* failed registrations since it was lost */
        usec_t psi_lost_at;
        usec_t psi_retry_at;            /* next registration attempt */
        bool has_psi;
        struct psi_stats psi;           /* last reading of the group's pressure file */

        char sample_error_path[PATH_MAX]; /* what the last failed monitor_worker_sample() could not read */

        uint64_t group_usage;           /* last group reading */
        uint64_t workers_total;         /* sum of the workers' metric at the last tick */
        uint64_t templates_total;       /* the templates' share of group_high then (template mode) */

        struct pending_leaf *pending;   /* leaves whose rmdir said EBUSY */
};

/* Discovers the accounting mode (see cgroup_setup_init; that part never fails and
 * m->cgroup.reason says what was found), then monitor_resolve_limits(). Returns what
 * that returns; m is set up either way and needs monitor_done(). */
int monitor_init(struct monitor *m, const struct memward_config *c, const char *proc_root, const char **ret_key);
void monitor_done(struct monitor *m);

/* Reads the group limit (cgroup_group_limit()) and resolves the memory.* sizes against
 * it, at start-up and again on reload. An unreadable limit alone is no error: absolute
 * sizes still work, group_limit is 0 and group_limit_error/group_limit_source say why,
 * for the caller to warn about. Returns 0, or -ENODATA when a size is a percentage and
 * the limit is unknown: then *ret_key (if non-NULL) names it ("memory.worker_max") and
 * the limit and resolved sizes keep their previous values, so a reload can be refused
 * without disturbing the running configuration. */
int monitor_resolve_limits(struct monitor *m, const struct memward_config *c, const char **ret_key);

/* Registers the configured PSI trigger. Returns the fd to watch for EPOLLPRI, 0 when
 * pressure is off, or a negative errno when no trigger could be had (then
 * m->psi_polling is set and pressure is judged from avg10 on every sample tick). */
int monitor_open_pressure(struct monitor *m, const struct memward_config *c);

/* The trigger fd reported EPOLLERR: the pressure file went away under it (cgroup.pressure
 * set to 0 hides it; kernfs then reports EPOLLERR for as long as the fd stays open, even
 * after the file is back). Closes the fd, which the caller removed from its epoll set,
 * and makes the trigger due for registering again at once. */
void monitor_pressure_lost(struct monitor *m, usec_t now);

/* Registers a lost trigger again when that is due. Returns the new fd (or 0 when
 * pressure is off); -EAGAIN when nothing is due; another negative errno when the file
 * is still missing: the next attempt is then due one sample interval later, doubling up
 * to PSI_RETRY_MAX_USEC. */
#define PSI_RETRY_MAX_USEC (10 * USEC_PER_SEC)
int monitor_pressure_retry(struct monitor *m, const struct memward_config *c, usec_t now);

/* Reads the group's pressure file into m->psi. On failure m->has_psi is cleared, so a
 * hidden file leaves no stale reading behind for the avg10 fallback to act on. */
int monitor_read_pressure(struct monitor *m);

/* In cgroup mode creates the worker's leaf (before spawn, so the worker starts in
 * it). Returns the leaf's directory fd to spawn into, or -1 when the worker will be
 * accounted through /proc. Failures are returned as negative errno for the caller
 * to log; the worker can still run. */
int monitor_worker_prepare(struct monitor *m, struct worker *w, const struct memward_config *c);

/* Samples one worker and updates its floor and baseline. -ESRCH when it is gone,
 * -ENODEV when its leaf is gone (removed behind our back) but the worker may live on:
 * see monitor_worker_forget_leaf(). Any other error: the worker is there but cannot be
 * read, and m->sample_error_path names what failed. */
int monitor_worker_sample(struct monitor *m, struct worker *w, const struct memward_config *c, usec_t now);

/* Reads the worker's memory right after it reported the end of a request: the
 * configured metric from its leaf in cgroup mode (memory.current and memory.stat); in
 * procfs mode the same anonymous figure as the sample tick: resident minus shared from
 * /proc/PID/statm for a worker of one process (equal to its Pss_Anon, and no page walk,
 * so it stays cheap at thousands of requests a second), the sum of Pss_Anon over a tree
 * of several (statm would count their copy-on-write pages in each), and for a worker
 * forked from a template its USS (smaps_rollup's Private_*), since statm counts the
 * template's anonymous pages it shares as its own. *ret_from says which. *ret is what
 * retained_requests judges. *ret_metric is the worker's figure in memory.metric's unit,
 * as the tick reads it (its share against group_high), when this reading has it: always
 * from a leaf; from a smaps_rollup walk (Rss, Pss; current in procfs mode is its Rss,
 * anon what *ret is); from statm for anon only. Returns 1 when *ret_metric was written,
 * 0 when it was not (the tick's figure stands), or a negative errno (-ESRCH: gone). */
int monitor_worker_boundary_read(struct monitor *m, struct worker *w, const struct memward_config *c,
                                 uint64_t *ret, enum memory_reading *ret_from, uint64_t *ret_metric);

/* The worker's leaf was removed by someone else (reads through its fds fail with
 * ENODEV). Closes what is left of it, so the worker is accounted through /proc from
 * now on and nothing is killed or removed in its name later. The caller removes the
 * memory.events watch first. */
void monitor_worker_forget_leaf(struct monitor *m, struct worker *w);

/* Re-reads memory.events. Returns 1 when oom_kill rose since the last read, 0 when it
 * did not, a negative errno when the file cannot be read: -ENODEV once the leaf is gone. */
int monitor_worker_events(struct monitor *m, struct worker *w);

/* After the worker's main process was reaped: records OOM and peak from the leaf,
 * kills leftovers (cgroup.kill) and removes the leaf, or queues it for removal. */
void monitor_worker_release(struct monitor *m, struct worker *w);

/* Kills what is in leaf (cgroup.kill) and removes it, or queues it for the retries of
 * monitor_retry_removals() while its processes exit: a template's leaf at its exit, as a
 * worker's. Takes the leaf (*leaf is reset). */
void monitor_leaf_release(struct monitor *m, struct cgroup_leaf *leaf);

/* The same without cgroup.kill, ever: for a leaf that may hold a process that is not
 * ours (template.h, place_suspect). Removed now when empty (0), else queued and removed
 * once its processes have left or exited (-EBUSY). */
int monitor_leaf_release_spare(struct monitor *m, struct cgroup_leaf *leaf);

/* Retries removing leaves whose processes were still exiting. */
void monitor_retry_removals(struct monitor *m);
unsigned monitor_pending_removals(const struct monitor *m);

/* The worker's current value of the configured metric. */
uint64_t monitor_metric(const struct worker_memory *mem, enum memory_metric metric);
