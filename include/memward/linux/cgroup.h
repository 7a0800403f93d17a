/* Where workers live and where their memory is read from.
 *
 * With a delegated cgroup v2 subtree that has the memory controller, every
 * worker gets its own leaf (worker-<slot>-<generation>) and memward moves
 * itself into a "supervisor" leaf (the no-internal-processes rule). Without one
 * — a v1/v2 hybrid host, a read-only /sys/fs/cgroup, a unit without Delegate=yes
 * — memward falls back to per-process accounting from /proc. Discovery says
 * which, and why, in one struct the caller logs once. */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "memward/linux/memstat.h"

enum accounting_mode {
        ACCOUNTING_CGROUP,
        ACCOUNTING_PROCFS,
};

const char *accounting_mode_to_string(enum accounting_mode m);

struct cgroup_setup {
        enum accounting_mode mode;
        char reason[160];               /* why this mode, for the start-up log line */
        char group_path[PATH_MAX / 2];      /* cgroup mode: the directory that holds the worker leaves */
        int group_fd;                   /* cgroup mode: O_DIRECTORY fd of group_path, else -1 */
        char pressure_path[PATH_MAX / 2 + 64];   /* the group's memory.pressure, or /proc/pressure/memory */
        char v1_memory_path[PATH_MAX / 2];  /* procfs mode: our v1 memory cgroup directory, "" when none */
        unsigned evacuated;             /* processes moved to the "init" leaf */
        unsigned stale_removed;         /* worker-* leaves of an earlier memward removed */
};

/* ---- pure parsers -------------------------------------------------------- */

/* The cgroup v2 path ("0::/system.slice/app.service") from /proc/self/cgroup text.
 * Returns 0, -ENOENT when there is no v2 line. */
int cgroup_parse_self_v2(const char *text, size_t length, char *ret_path, size_t size);

/* Whether a cgroup v2 path ("/app/worker-3-7") names one of memward's leaves: its last
 * component is worker-* or template-* (the names cgroup_leaf_create() gives). */
bool cgroup_path_is_leaf(const char *path);

/* Whether process pid is in one of memward's leaves, from PROC_ROOT/PID/cgroup: 1 or 0;
 * -ESRCH when the process is gone, -ENOENT when it has no v2 line, or the errno of the
 * read. */
int cgroup_process_in_leaf(const char *proc_root, pid_t pid);

/* Whether the v2 line of /proc/PID/cgroup text names the leaf leaf_name directly under
 * group_path (the mount point followed by the group's own path, as cgroup_setup_init()
 * makes it): the path must be "<group's path>/<leaf_name>", and group_path end with the
 * group's path. Returns 1 when it does, 0 when the process is in another cgroup (its path
 * then in ret_path), -ENOENT when there is no v2 line, -ENAMETOOLONG for a path over size. */
int cgroup_text_in_leaf(const char *text, size_t length, const char *group_path, const char *leaf_name,
                        char *ret_path, size_t size);

/* The v1 path of one controller ("4:memory:/docker/abc") from /proc/self/cgroup text. */
int cgroup_parse_self_v1(const char *text, size_t length, const char *controller, char *ret_path, size_t size);

/* The mount point of the cgroup2 file system from /proc/self/mountinfo text; with
 * controller != NULL, the cgroup (v1) mount whose super options name it. Octal
 * escapes (\040) in mount points are decoded. Returns 0 or -ENOENT. */
int mountinfo_find_cgroup(const char *text, size_t length, const char *controller, char *ret_mount, size_t size);

/* ---- discovery and set-up ------------------------------------------------ */

/* Finds our cgroup and decides the mode. In cgroup mode it also takes the subtree
 * over: moves us into "supervisor", evacuates other processes into "init", enables
 * +memory +pids for the children and removes stale worker-* leaves.
 * proc_root is "/proc" (tests point it elsewhere). Never fails: every problem
 * becomes procfs mode with a reason. */
void cgroup_setup_init(struct cgroup_setup *s, const char *proc_root);
void cgroup_setup_done(struct cgroup_setup *s);

/* The memory limit that applies to the group: the smallest memory.max of our cgroup
 * and its ancestors below the cgroup2 root, v1 memory.limit_in_bytes (procfs mode),
 * else MemTotal.
 * Returns 0, or the negative errno of the last resort, <proc_root>/meminfo (-ENOENT
 * under systemd's ProcSubset=pid when no MemoryMax= is set either). source (may be
 * NULL) receives the file the limit came from, or on failure the one that failed, so
 * the caller can name it. */
int cgroup_group_limit(const struct cgroup_setup *s, const char *proc_root, uint64_t *ret, char *source,
                       size_t source_size);

/* The group's memory use: memory.current of the group (cgroup mode), v1
 * memory.usage_in_bytes, else MemTotal − MemAvailable. */
int cgroup_group_usage(const struct cgroup_setup *s, const char *proc_root, uint64_t *ret);

/* ---- worker leaves --------------------------------------------------------- */

struct cgroup_leaf {
        char name[48];          /* worker-<slot>-<generation>, template-<generation> */
        int dir_fd;
        int current_fd;         /* memory.current */
        int stat_fd;            /* memory.stat */
        int events_fd;          /* memory.events: EPOLLPRI when it changes */
        int peak_fd;            /* memory.peak (5.19+), -1 when absent */
};

#define CGROUP_LEAF_INIT { .dir_fd = -1, .current_fd = -1, .stat_fd = -1, .events_fd = -1, .peak_fd = -1 }

/* Creates the leaf, sets memory.high / memory.max (0 = leave unset) and memory.oom.group=1
 * when max is set, and opens the files sampled for the worker's life. */
int cgroup_leaf_create(const struct cgroup_setup *s, unsigned slot, unsigned long long generation, uint64_t high,
                       uint64_t max, struct cgroup_leaf *ret);

/* The same for a leaf of another name: a fork-server template's, "template-<generation>"
 * (removed at take-over like stale worker-* leaves). */
int cgroup_leaf_create_named(const struct cgroup_setup *s, const char *name, uint64_t high, uint64_t max,
                             struct cgroup_leaf *ret);

/* Reads the leaf's numbers with pread on the fds kept open. -ENODEV/-ENOENT: the leaf is gone. */
int cgroup_leaf_read(const struct cgroup_leaf *l, uint64_t *ret_current, struct memory_stat *ret_stat);
int cgroup_leaf_read_events(const struct cgroup_leaf *l, struct memory_events *ret);
int cgroup_leaf_read_peak(const struct cgroup_leaf *l, uint64_t *ret);

/* Kills every process in the leaf (cgroup.kill, 5.14+; else SIGKILL to each pid). */
int cgroup_leaf_kill(const struct cgroup_setup *s, const struct cgroup_leaf *l);

/* Closes the fds and removes the directory. -EBUSY while processes remain. */
int cgroup_leaf_remove(const struct cgroup_setup *s, struct cgroup_leaf *l);
void cgroup_leaf_close(struct cgroup_leaf *l);

/* ---- per-process accounting (procfs mode) -------------------------------- */

/* Sums /proc/PID/smaps_rollup over pid and all its descendants (via
 * /proc/PID/task/TID/children of every thread); has_private only when every process's
 * file has Private_Clean and Private_Dirty, has_pss_anon only when every one has
 * Pss_Anon (5.3+). Summed over the tree, Pss_Anon counts a page that several of its
 * processes map (a gunicorn arbiter's copy-on-write pages in its worker) once, where
 * Anonymous counts it in each. Returns 0, -ESRCH when pid is gone, or
 * another negative errno when pid is there but its file cannot be read: -ENOENT before
 * 4.14, which has no smaps_rollup, -EACCES for a process that is not dumpable. */
int procfs_tree_memory(const char *proc_root, pid_t pid, struct smaps_rollup *ret);

/* Resident minus shared from /proc/PID/statm, summed over pid and its descendants like
 * procfs_tree_memory(): O(processes), no page walk. A gunicorn arbiter run as the worker
 * has its memory in the child that serves the requests. "Shared" there is the resident
 * file and shmem pages, so each term is the process's resident anonymous memory: a page
 * two processes of the tree share copy-on-write is in both. *ret_processes (may be NULL)
 * is how many processes were summed, for the caller to tell when that can happen.
 * -ESRCH when pid is gone. */
int procfs_private_memory(const char *proc_root, pid_t pid, uint64_t *ret, unsigned *ret_processes);
