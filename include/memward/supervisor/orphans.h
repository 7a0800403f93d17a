/* Orphans: processes re-parented to memward (the child subreaper, or PID 1) that are no
 * worker and no template of its own. A worker's helper that called setsid() and outlived
 * the worker, a daemon a worker double-forked, a worker a template forked for a spawn
 * memward gave up on: nobody accounts, recycles or stops them, and they may hold the
 * listening sockets, so that a memward started after this one could not bind its port.
 *
 * The rule (memward(8), ORPHANS): an orphan in the process group of a live worker (or
 * template) is left to that worker, whose process group is killed when it exits: a
 * `cmd &` of a worker's shell keeps running while its worker serves. Any other orphan
 * has left its worker's process group (setsid(), setpgid()) or lost its worker: memward
 * cannot tell whose it is, so it is killed at once, with SIGKILL, as is its own process
 * group when it leads one. SIGKILL and no stop signal first: the graceful stop belonged
 * to its worker, which had its graceful_timeout for its own children, and an orphan that
 * ignores SIGTERM (the case that matters) would only hold the port a while longer.
 *
 * In cgroup mode a worker's leaf holds all it started, and cgroup.kill at its exit
 * reaches them: memward sweeps for orphans only at its own exit there. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "memward/base/units.h"

enum orphan_verdict {
        ORPHAN_OURS,            /* a worker or template: not an orphan */
        ORPHAN_KEEP,            /* its worker lives and will take it along, or it is gone */
        ORPHAN_KILL,
};

/* The rule above, for a child of memward. known: it is a worker's or template's pid.
 * pgid: its process group, or negative when it could not be read (the process is gone).
 * group_alive: pgid is the group of a live worker or template (whose pid it is).
 * at_exit: memward is about to exit and nothing of its own is left to keep: every child
 * goes. */
enum orphan_verdict orphan_judge(bool known, pid_t pgid, bool group_alive, bool at_exit);

/* The orphans killed and not reaped yet: a process that is exiting, or a zombie, is
 * still listed as memward's child, and must be neither killed nor counted twice. Its
 * pid cannot be reused before memward reaps it. Sorted, for bsearch(). */
struct orphan_set {
        pid_t *pids;
        size_t n, allocated;
};

bool orphan_set_contains(const struct orphan_set *set, pid_t pid);
/* Forgets pid, reaped. Returns whether it was there. */
bool orphan_set_remove(struct orphan_set *set, pid_t pid);
void orphan_set_free(struct orphan_set *set);

/* What one sweep found and did, for its log line. */
struct orphan_sweep {
        unsigned children;      /* memward's children it looked at */
        unsigned killed;        /* now */
        unsigned dying;         /* killed before, not reaped yet */
        unsigned kept;          /* orphans left alone: in a live worker's process group, or gone */
        unsigned deferred;      /* to kill, beyond max_kill: for the next sweep */
        pid_t first_killed;     /* one of them, to name in the log; 0 for none */
        usec_t took;            /* listing and killing, CLOCK_MONOTONIC */
};

/* Asked for each child pid of memward that is not in the set: its verdict. */
typedef enum orphan_verdict (*orphan_classify_t)(void *userdata, pid_t pid);

/* Lists the children of self under proc_root (proc_list_children(): one read of
 * self's children file) and SIGKILLs each child classify says ORPHAN_KILL, and its
 * process group when it leads one, adding it to killed; at most max_kill of them (a
 * kill costs 3 to 45 us, bench/orphans: a thousand at once would hold the caller's loop
 * for 40 ms), the others counted as deferred. Children in killed already are
 * not asked about. It never waits: the killed are reaped by the caller's SIGCHLD
 * handling (which removes them from killed), and an orphan's own children, re-parented
 * to self when it dies, are found by the next sweep. Safe against pid reuse: a child is
 * not reaped between its listing and its kill, since only the caller reaps, and not
 * meanwhile. Returns 0 with *ret filled, -ENOMEM (what was killed is in the set), or
 * the errno of listing the children. */
int orphans_sweep(const char *proc_root, pid_t self, orphan_classify_t classify, void *userdata,
                  unsigned max_kill, struct orphan_set *killed, struct orphan_sweep *ret);
