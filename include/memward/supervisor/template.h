/* One fork-server template process (docs/fork-server.md): the I/O around template_state.
 *
 * template_state decides; this module does what it decides that concerns the template
 * itself: it starts the process through spawn.c (own process group, the sockets at fd 3…,
 * the control channel at 3+N, the variables of §1, its own cgroup leaf in cgroup mode),
 * reads and parses the channel, checks the PID of a SPAWNED (§3), sends SPAWN, kills the
 * template's process group when a fault condemns it and logs every template event. What
 * a decision means for the workers (adopt this pid, this slot's spawn failed, offer the
 * next spawn, restart at T) is the supervisor's: every function hands the decision back.
 *
 * The supervisor keeps the spawn queue (its slots), the event loop and the timer; this
 * module keeps no list of workers. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "memward/config/config.h"
#include "memward/linux/cgroup.h"
#include "memward/linux/event_loop.h"
#include "memward/linux/proc.h"
#include "memward/linux/spawn.h"
#include "memward/supervisor/template_state.h"

/* Children memward reaped without knowing them, newest last: a worker forked by a
 * template is re-parented to memward and may exit (and be reaped) before its SPAWNED is
 * read. A SPAWNED for one of them is a worker that exited at once (§3). Bounded: only
 * the last TEMPLATE_REAPED_MAX count, which is far more than can die between a fork and
 * the read of its answer. */
#define TEMPLATE_REAPED_MAX 32U

struct reaped_ring {
        struct {
                pid_t pid;
                int status;
        } entries[TEMPLATE_REAPED_MAX];
        unsigned next;                  /* where the next one goes */
};

/* Remembers pid (> 0) and its wait status, forgetting the oldest when full. */
void reaped_ring_push(struct reaped_ring *r, pid_t pid, int status);

/* Whether pid was reaped and is remembered: then true, *ret_status (may be NULL) and the
 * entry is forgotten, so one exit is adopted once. */
bool reaped_ring_take(struct reaped_ring *r, pid_t pid, int *ret_status);

/* Whether pid, from a SPAWNED, may be the template's worker (§3): pid was reaped by
 * memward already (1), or its parent (PROC_ROOT/PID/stat) is memward (self), the template,
 * or the sender of the SPAWNED (the intermediate; 0 when the packet had no credentials)
 * (0). Otherwise -EPERM with why in detail (a parent that is none of those, or no such
 * process), or the negative errno of a stat that cannot be read. ring may be NULL. */
int template_check_pid(const char *proc_root, pid_t pid, pid_t self, pid_t template_pid, pid_t sender,
                       struct reaped_ring *ring, int *ret_status, char *detail, size_t detail_size);

/* Whether pid, from a PLACE, is one memward may move into a worker's leaf (§3): a child
 * of the template (PROC_ROOT/PID/status PPid:) running as the template's user (the four
 * ids of the Uid line equal the template's). The caller holds a pidfd of pid, opened
 * before this reading, and asks it afterwards whether the process still lives: only then
 * is the reading that process's and not another's that got its number. Returns 0 with
 * *ret_child (may be NULL) the reading, for the check after the move; -ESRCH when pid
 * does not exist; -EPERM with why in detail (another parent, memward (self) included,
 * another user), or the negative errno of a status that cannot be read (the template's
 * own too). A template that died after its PLACE leaves its child to memward, the
 * subreaper: -EPERM too, which the caller turns into -ESRCH (no fault, its exit is on its
 * way) when template_child_has_exited() says so. */
int template_check_place_pid(const char *proc_root, pid_t pid, pid_t self, pid_t template_pid,
                             struct proc_status *ret_child, char *detail, size_t detail_size);

/* Whether the process pid, a child of the caller, has exited (a zombie not reaped yet):
 * waitid(WNOWAIT), which leaves it to the reaper. */
bool template_child_has_exited(pid_t pid);

/* How memward's placer (the child that writes a PLACE's pid into the leaf) ended. After
 * its write it checks that the pid still named the process checked before: the pidfd
 * says it has not exited, and its status shows the same parent and uids. Exit codes
 * below 126 are the errno of the write (nothing was moved). */
#define TEMPLATE_PLACER_EXIT_GONE 200    /* the process exited: the number written may have been another's */
#define TEMPLATE_PLACER_EXIT_CHANGED 201 /* another parent or other uids after the move */

/* The wait status of a placer: 0 (moved, and the same process), the negative errno of a
 * write that failed (-EIO for a placer killed by a signal), or -ESTALE with
 * *ret_identity_lost when the process moved may not be the one checked (then the leaf
 * may hold a process that is not the template's, and must not be killed blindly). */
int template_placer_result(int status, bool *ret_identity_lost);

/* A small set of memward's own helper processes (placers) until they are reaped: a
 * placer given up on (its SPAWN failed, timed out, its template died or was retired)
 * still runs for a while, and its exit must not be taken for an orphan's. Bounded: one
 * placer per template at a time, and a template that loses several in a row is killed;
 * a full set forgets nothing, it refuses the new one (-ENOSPC) and that exit is reaped
 * as an unknown child's. */
#define TEMPLATE_HELPERS_MAX 16U

struct helper_pids {
        pid_t pids[TEMPLATE_HELPERS_MAX];
};

int helper_pids_add(struct helper_pids *h, pid_t pid);
bool helper_pids_contains(const struct helper_pids *h, pid_t pid);
/* Forgets pid, reaped. Returns whether it was there. */
bool helper_pids_remove(struct helper_pids *h, pid_t pid);

/* Why templates were restarted, for memward_template_restarts_total{reason}: each fault
 * by its template_fault_to_string() name, an exit on its own, a start that failed. */
struct template_counters {
        uint64_t faults[_TEMPLATE_FAULT_MAX];
        uint64_t exited;
        uint64_t start_failed;
};

/* The template's memory at the last sample: its leaf in cgroup mode, the Rss/Pss/anon of
 * its process tree in procfs mode. What the workers share is this. */
struct template_memory {
        bool sampled;
        uint64_t current;               /* memory.current, or Rss of the tree */
        uint64_t anon;
        uint64_t rss, pss;              /* procfs readings; 0 in cgroup mode */
        uint64_t uss;                   /* Private_Clean + Private_Dirty of the tree, read with rss and
                                         * pss: the pages no forked worker maps any more */
};

struct template_process {
        struct template_process *next;  /* the owner's list of retired templates */
        void *owner;                    /* the owner's, for its event handlers */
        /* The owner's: whether pid is a worker or a template already, which no SPAWNED may
         * name (its parent is memward too, so §3's check alone would take it). NULL: none. */
        bool (*pid_in_use)(void *owner, pid_t pid);
        struct template_state state;
        unsigned long long generation;  /* MEMWARD_TEMPLATE_GENERATION of the process (last one when DEAD) */
        pid_t pid;                      /* the process until it is reaped; 0 when none */
        int control_fd;                 /* memward's end of the channel; -1 when closed */
        struct event_source control_source;
        struct event_loop *loop;
        struct cgroup_leaf leaf;        /* template-<generation> in cgroup mode; dir_fd -1 otherwise */
        const struct cgroup_setup *cgroup;
        usec_t started_at;              /* CLOCK_MONOTONIC, of the running process */
        usec_t ready_at;                /* 0 until READY */
        uint64_t started_realtime;      /* µs since the epoch, for /status */
        char runtime[TEMPLATE_RUNTIME_MAX];
        bool retired;                   /* stopped on purpose (reload, shutdown): never started again,
                                         * dropped once reaped */
        bool abandoned_spawn;           /* a SPAWN in flight was given up: its worker may live on */
        usec_t channel_closed_at;       /* it closed its end while alive; 0 when not */
        usec_t kill_at;                 /* retired: SIGKILL to its group then, if it is still there */
        bool usr1_pending;              /* SIGUSR1 came before its READY: sent with the READY */
        /* Placement (docs/fork-server.md §3). memward_places: the template runs as a user
         * who cannot move processes between memward's leaves, so memward moves them when
         * the template offers it (place_offered: READY said PLACE=1). place_fd: the
         * cgroup.procs of the leaf of the SPAWN in flight, while memward is to place it. */
        bool memward_places;
        bool place_offered;
        int place_fd;
        pid_t place_pid;                /* the PLACE's pid, for the log */
        pid_t placer_pid;               /* memward's child that writes it into the leaf; 0 when none */
        usec_t place_started;           /* when the PLACE came */
        usec_t place_time;              /* PLACE to the placer's exit, of the last one, for event=spawn */
        struct proc_status place_status; /* the PLACE's pid as checked, for the placer's check after the move */
        /* The placer of the SPAWN in flight could not confirm that what it moved was the
         * process checked: the leaf of that SPAWN may hold someone else's process and is
         * removed, not killed. Until the next SPAWN. */
        bool place_suspect;
        /* The SPAWN ended while its placer still ran (a timeout, the template's death, a
         * retire): whether and what it moves is not known, so its leaf is not killed
         * either, only removed once empty. Until the next SPAWN. */
        bool place_abandoned;
        struct helper_pids *helpers;    /* the owner's: placers until reaped; NULL: not tracked */
        char spawn_leaf[48];            /* the leaf of the SPAWN in flight; "" when none */
        /* The owner's: takes the template's leaf when its process is reaped (kills what is
         * left, removes it now or, while its last processes exit, later). NULL: killed and
         * removed once, here. */
        void (*release_leaf)(void *owner, struct cgroup_leaf *leaf);
        struct template_memory mem;
        struct template_counters *counters;
};

/* What a template is started with. */
struct template_start_args {
        char *const *argv;
        const char *directory;
        char *const *env_template;      /* the workers' environment without NOTIFY_SOCKET */
        const int *listen_fds;
        size_t n_listen_fds;
        const char *oom_score_adj;
        /* workers.user, workers.group, workers.umask: the template runs as its workers will,
         * since they are its forks. */
        const struct spawn_credentials *credentials;
        bool set_umask;
        mode_t umask;
        unsigned long long generation;  /* one more for every template memward starts */
        bool memward_places;            /* see template_process.memward_places */
        event_handler_t handler;        /* for the control channel (EPOLLIN) */
        void *userdata;
};

/* A template with no process yet; its first start is due at once. */
void template_process_init(struct template_process *t, const struct template_timing *timing,
                           struct event_loop *loop, const struct cgroup_setup *cgroup,
                           struct template_counters *counters);

/* Closes what t holds (not the process: the caller kills it first, or it dies with memward
 * through its parent-death signal). */
void template_process_done(struct template_process *t);

/* Starts the template (a decision said start): the channel, the leaf, the process, the
 * channel's event source. Logs template_start or, on failure, template_start_failed.
 * *ret: what template_state decided (START_FAILED: a restart time). Returns 0, or the
 * negative errno of the start that failed (spawn_worker()'s: -ENOENT, the command was
 * not found). */
int template_process_start(struct template_process *t, const struct template_start_args *a, usec_t now,
                           struct template_decision *ret);

/* Reads one packet from the channel and feeds it (or the fault it is). Returns 1 with *ret,
 * 0 when none is queued or the channel is closed already, never an error: a channel that
 * fails is a fault of the template. self is memward's pid; ring the reaped children.
 * A SPAWNED whose pid was reaped already comes back as d->spawned with *ret_reaped true
 * and *ret_status its wait status. */
int template_process_receive(struct template_process *t, const char *proc_root, pid_t self, struct reaped_ring *ring,
                             usec_t now, struct template_decision *ret, bool *ret_reaped, int *ret_status);

/* Sends SPAWN for slot/generation with env (NULL-terminated "NAME=VALUE") and leaf_fd
 * (-1: none, CGROUP=0), whose name (leaf_name) the SPAWNED's worker is checked to be in
 * (PROC_ROOT/PID/cgroup, one read): a worker outside its leaf is killed and the template
 * condemned (bad_pid), since nothing would account or limit it. With a leaf, template_process_placement() says who places the
 * worker: the template (the fd attached, CGROUP=1) or memward (PLACE=1; the leaf's
 * cgroup.procs is opened now and written when the PLACE comes). Returns 0 with *ret
 * (send_spawn, or kill and spawn_failed when the channel failed), -EBUSY when the template
 * is not idle (nothing changed), -EINVAL for arguments the formatter refuses, or the
 * negative errno of opening the leaf's cgroup.procs (nothing sent). */
int template_process_spawn(struct template_process *t, unsigned slot, uint64_t generation, char *const *env,
                           int leaf_fd, const char *leaf_name, usec_t now, struct template_decision *ret);

/* Who places a worker that has a leaf: memward when it must (memward_places) and the
 * template offered it, else the template. TEMPLATE_PLACEMENT_NONE without a leaf. */
enum template_placement template_process_placement(const struct template_process *t, bool has_leaf);

/* Whether pid is the child t started to move a PLACE's pid into its leaf (memward's own
 * write of cgroup.procs waits for the kernel's migration lock, so it is not done in the
 * event loop). The supervisor's reaper asks it of every child it does not know. */
bool template_process_is_placer(const struct template_process *t, pid_t pid);

/* That child exited with status (template_placer_result()): the state machine is told
 * and PLACED is sent. When the placer could not confirm what it moved, place_suspect is
 * set and, while the template lives, *ret is a bad_pid fault instead (no PLACED); once
 * the template has exited, PLACED ERRNO=ESRCH. *ret: a fault also when PLACED cannot be
 * sent. */
void template_process_placer_exited(struct template_process *t, int status, usec_t now,
                                    struct template_decision *ret);

/* When template_process_timer() is due next: the state's deadline, or the grace of a
 * channel closed by a template that has not exited yet; USEC_INFINITY when none. */
usec_t template_process_next_deadline(const struct template_process *t);

/* Time passed: a deadline of t may be due. */
void template_process_timer(struct template_process *t, usec_t now, struct template_decision *ret);

/* The template process was reaped with status: logs template_exited, closes the channel,
 * releases the leaf. For a retired template *ret is all false (nothing restarts it). */
void template_process_exited(struct template_process *t, int status, usec_t now, struct template_decision *ret);

/* Before t is retired with a SPAWN in flight: its answer either is queued already, and
 * template_process_receive() reads it, or can no longer be sent (EPIPE), in which case the
 * runtime lets no worker serve (docs/fork-server.md §3 step 4.7). Without it, an answer
 * sent between the last read and the close was lost, its worker released. */
void template_process_stop_answers(struct template_process *t);

/* Stops the template on purpose (a reload replaced it, memward stops): sig to its process
 * group, the channel closed (it then exits on EOF too), never restarted; SIGKILL to the
 * group at now + grace if it is still there (template_process_timer()). A SPAWN in flight
 * comes back in *ret as spawn_failed with -ECANCELED. */
void template_process_retire(struct template_process *t, int sig, const char *why, usec_t now, usec_t grace,
                             struct template_decision *ret);

/* Forwards SIGUSR1 (reopen log files, which the workers it forks later inherit) to the
 * template process, or once it is READY: before, it may have no handler yet. */
void template_process_forward_usr1(struct template_process *t);

/* Whether a SPAWN can be sent now: READY, none in flight, the channel open, not retired. */
bool template_process_can_spawn(const struct template_process *t);

/* Reads the template's memory into t->mem: its leaf's charge in cgroup mode, its process
 * tree's smaps_rollup in procfs mode, and the tree there too when need_tree (memory.metric
 * rss or pss, which only /proc has, and the USS with them). Returns 0, -ESRCH without a process, or the read's
 * negative errno. */
int template_process_sample(struct template_process *t, const char *proc_root, bool need_tree);

/* The one rule for what a template adds to the workers' figures against
 * memory.group_high, in the unit of memory.metric: what no worker's figure counts.
 * workers_in_leaves: cgroup mode, each worker in a leaf of its own.
 *   - rss, and current in procfs mode (the tree's Rss): a forked worker's figure counts
 *     every template page it still maps, so the workers' sum counts those pages once per
 *     worker already. The template adds only the pages it alone maps, its USS.
 *   - pss: each shared page is split among the processes that map it; the template's
 *     Pss is its part, the workers' Pss the rest.
 *   - anon, and current in cgroup mode: a worker's leaf is charged for the pages it
 *     touched first, the template's leaf for those it preloaded; in procfs mode a forked
 *     worker's anon is its USS, and the template's Anonymous holds the pages they share.
 *     The template adds its whole figure.
 * Pure: mem as sampled (0 when it was not). */
uint64_t template_group_share(const struct template_memory *mem, enum memory_metric metric, bool workers_in_leaves);

/* template_group_share() of t's last sample: 0 without a process or before the first
 * sample. */
uint64_t template_process_metric(const struct template_process *t, enum memory_metric metric, bool workers_in_leaves);

/* A template's leaf kept after its process is gone (replaced by a reload, or crashed and
 * waiting to be restarted) while workers forked from it live: cgroup v2 charges a page to
 * the cgroup that touched it first until the page is freed, so the pages they still map
 * stay the leaf's, in no worker's leaf. group_high counts the leaf's figure, as the
 * template's (template_group_share()), until the last of those workers is gone. */
struct template_leaf_held {
        struct template_leaf_held *next;
        unsigned long long generation;  /* the template's, and its workers' template_generation */
        struct cgroup_leaf leaf;
        struct template_memory mem;     /* its leaf at the last sample: current and anon */
};

/* Moves t's leaf (cgroup mode) onto *list, for a template whose process was reaped or is
 * about to be, with workers of its generation alive: what is left running in the leaf is
 * killed, the leaf stays with its charges. Call before template_process_exited(), which
 * then has no leaf to remove. Returns 0, -ENOENT when t has no leaf, -ENOMEM. */
int template_process_hold_leaf(struct template_process *t, struct template_leaf_held **list);

/* Reads h's leaf into h->mem. Returns 0 or the read's negative errno (-ENODEV: removed
 * behind our back). */
int template_leaf_held_sample(struct template_leaf_held *h);

/* Removes h's leaf and frees h: its workers are gone. Returns 0, or -EBUSY, when a
 * process is still in it (being killed): h is kept then, to try again. */
int template_leaf_held_release(const struct cgroup_setup *cgroup, struct template_leaf_held *h);

/* "starting", "ready" (idle or spawning), "dead" (waiting for a restart), "stopping"
 * (killed or retired): the phase /status and /metrics show. */
const char *template_process_phase(const struct template_process *t);
