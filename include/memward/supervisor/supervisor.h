/* The supervisor: owns the workers, the event loop and everything it watches,
 * and turns observations into actions. All mutable state of a running memward
 * lives in one struct supervisor. */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "memward/config/config.h"
#include "memward/linux/event_loop.h"
#include "memward/linux/listen.h"
#include "memward/linux/notify.h"
#include "memward/linux/service.h"
#include "memward/policy/policy.h"
#include "memward/supervisor/history.h"
#include "memward/supervisor/monitor.h"
#include "memward/supervisor/orphans.h"
#include "memward/supervisor/reconcile.h"
#include "memward/supervisor/template.h"
#include "memward/supervisor/worker.h"

/* Bad usage or configuration (memward(8)): what systemd's RestartPreventExitStatus=
 * lists, since starting again cannot fix it. */
#define EXIT_USAGE 2
/* workers.start_limit_burst failed starts within start_limit_interval, no worker ready. */
#define EXIT_START_LIMIT 3

/* Loads the configuration again for SIGHUP: the file plus the command-line overrides,
 * validated. Prints its own diagnostics; returns 0 or a negative errno. */
typedef int (*config_loader_t)(void *userdata, struct memward_config **ret);

struct slot {
        struct worker *active;          /* serving, or the first start of the slot */
        struct worker *replacement;     /* starting, takes over when ready */
        unsigned long long generation;  /* of the last spawn */
        unsigned failures;              /* consecutive, for backoff */
        usec_t ready_since;             /* a worker became ready here after the last failure; 0: none yet */
        usec_t respawn_at;              /* no spawn into this slot before */
        enum recycle_reason last_recycle; /* for /status; NONE until the first */
        bool recycle_pending;           /* a recycle began; until a worker is ready here again */
        bool recycle_at_limit;          /* ... and stopped its worker at its request limit before the
                                         * replacement was ready: outside max_concurrent */
        usec_t startup;                 /* of the last worker ready here, spawn to READY=1 */
};

/* A notify datagram from a sender memward does not know yet, kept in template mode: a
 * forked worker may say READY=1 before its SPAWNED is read. Replayed when a SPAWNED names
 * the sender (or an ancestor of it), dropped after NOTIFY_EARLY_USEC. */
#define NOTIFY_EARLY_MAX 16U
#define NOTIFY_EARLY_USEC (10 * USEC_PER_SEC)
struct notify_early {
        pid_t pid;
        usec_t at;
        struct notify_message message;
};

/* The last reload, as Prometheus reports its own (prometheus_config_last_reload_*):
 * where people alert on a failed one. */
struct reload_record {
        bool last_successful;           /* true until a reload fails; start-up counts as one */
        usec_t last_success;            /* CLOCK_REALTIME of start-up or the last successful reload */
        usec_t last_attempt;            /* CLOCK_REALTIME; 0 = never reloaded */
        uint64_t successes, failures;
        char last_error[128];           /* why the last one failed: "config" (errors logged before), ... */
};

/* What every reconcile pass reuses: the view it builds for reconcile_plan() and the
 * plan, so that a pass allocates nothing once the pool is steady. */
struct reconcile_buffers {
        struct reconcile_worker *workers;
        struct worker **map;            /* the worker behind each of them */
        size_t worker_capacity;
        struct reconcile_slot *slots;
        size_t slot_capacity;
        struct reconcile_plan plan;
};

struct supervisor {
        struct memward_config *config;
        config_loader_t reload_config;
        void *reload_userdata;

        struct event_loop *loop;
        struct event_source signal_source;
        struct event_source timer_source;
        struct event_source notify_source;
        struct event_source sample_source;      /* timerfd, every memory.sample_interval */
        struct event_source psi_source;         /* PSI trigger, EPOLLPRI */
        sigset_t handled_signals;

        struct monitor monitor;
        usec_t last_group_recycle;              /* pressure / group_high cooldown */
        bool group_high_roll_noted;             /* group_high_deferred logged for this reload's roll */
        uint64_t pressure_events;

        struct listen_set listen;
        int *listen_fds;
        char notify_address[108];
        char **env_template;
        char worker_oom_score_adj[8];   /* workers' oom_score_adj, "" = as inherited */
        bool switch_credentials;        /* workers switch to workers.user/group (spawn_credentials_check()) */

        struct slot *slots;
        unsigned n_slots;               /* allocated */
        unsigned target;                /* wanted workers (config, SIGTTIN/SIGTTOU) */
        struct worker *workers;         /* every live child we spawned */
        unsigned n_workers;

        unsigned fd_limit;              /* RLIMIT_NOFILE after start-up */
        uint64_t random_state;
        struct service service;

        bool ever_ready;                /* some worker became ready once */
        bool service_ready_sent;
        bool reloading;                 /* RELOADING=1 sent, READY=1 when the roll is done */
        bool shutting_down;
        bool done;
        int exit_code;

        uint64_t recycles[_RECYCLE_REASON_MAX];
        uint64_t spawn_failures;
        struct reload_record reload;
        uint64_t notify_rejected[_NOTIFY_REJECT_MAX];
        uint64_t exits[_WORKER_EXIT_MAX];       /* worker processes reaped, by how */
        struct recycle_history recycle_history; /* the last recycles, for /status */
        struct reconcile_buffers reconcile;

        /* workers.mode: template (docs/fork-server.md). NULL template in exec mode. */
        struct template_process *template;      /* the one that forks workers */
        struct template_process *template_next; /* a reload's, until it is READY */
        struct template_process *templates_retired; /* stopped, until reaped */
        struct template_leaf_held *template_leaves_held; /* leaves of reaped templates whose workers live */
        struct event_source template_timer_source;
        char **template_env;                    /* env_template without NOTIFY_SOCKET */
        unsigned long long template_generation; /* of the last template started */
        struct template_counters template_counters;
        struct template_counters template_next_counters; /* a reload's template's, until it takes over: a
                                                          * failed reload is no restart */
        struct reaped_ring reaped;              /* children reaped that no record knew */
        struct helper_pids helpers;             /* memward's own placers, until reaped: no orphans */
        usec_t orphan_sweep_at;                 /* procfs mode: look again for a given-up spawn's worker */
        bool orphan_sweep_due;                  /* procfs mode: a child was reaped, look for orphans */
        bool leafless_workers;                  /* cgroup mode: a worker ran outside a leaf; its orphans
                                                 * are swept as in procfs mode */
        struct orphan_set orphans_dying;        /* killed, not reaped yet */
        usec_t start_failures[CONFIG_START_LIMIT_BURST_MAX]; /* a ring: times of failed starts */
        unsigned n_start_failures;              /* ever recorded (the ring holds the last ones) */
        struct policy_start_limit_verdict start_limit; /* .hit: memward is to exit (EXIT_START_LIMIT) */
        uint64_t orphans_killed;                /* memward_orphans_killed_total */
        struct notify_early notify_early[NOTIFY_EARLY_MAX];
        unsigned n_notify_early;
};

/* Takes ownership of config and listen; on failure config stays the caller's. */
int supervisor_new(struct memward_config *config, struct listen_set *listen, config_loader_t reload,
                   void *reload_userdata, struct supervisor **ret);
struct supervisor *supervisor_free(struct supervisor *s);

/* Signals the supervisor handles through signalfd; main blocks them before anything
 * else so none is lost at start-up. */
void supervisor_signal_set(sigset_t *ret);

/* Runs until shutdown. Returns the exit code memward should exit with. */
int supervisor_run(struct supervisor *s);

/* The slots up to the target whose active worker is ready: what READY=1, STATUS=,
 * /healthz and /status count. A ready replacement that has not taken over its slot
 * yet does not count, so no slot counts twice. */
unsigned supervisor_ready_workers(const struct supervisor *s);

/* The slots up to the target without a ready worker that memward is replacing on
 * purpose: its worker was stopped first (memory_stop_first, or at its max_requests
 * before the replacement was ready) and a replacement is starting there. /healthz counts
 * them as up, so that a planned recycle never takes a pod out of its Service; a
 * replacement that fails (ready timeout, crash) ends it, and the slot counts as down. */
unsigned supervisor_slots_replacing(const struct supervisor *s);

/* Marks the ready worker with the largest retained floor (ties: the oldest) for a
 * group-level recycle (pressure, group_high), when the cooldown has passed and its floor
 * is at least pressure.min_retained. Each worker's floor is policy_judge_memory()'s, and
 * the victim keeps the figure it was chosen by (worker.figure). Returns true when one
 * was marked; quiet: no log line when none qualifies. Not static only for the unit
 * tests. */
bool supervisor_group_recycle(struct supervisor *s, enum recycle_reason reason, usec_t now, bool quiet);

/* Judges memory.group_high on the tick and at request ends: the group's figure is the
 * workers' latest readings (each in memory.metric's unit) plus, in template mode, what
 * no worker's figure counts of the templates (template_group_share()): the running one,
 * a reload's new one and the retired ones while their process lives. Over it, the
 * victim of supervisor_group_recycle() is marked and event=group_high logs the total,
 * the workers' and the templates' parts and the budget; returns true then. While a
 * reload rolls in template mode (its template starting, workers still to roll) no
 * victim is chosen; event=group_high_deferred says so once per roll. Keeps the parts in
 * s->monitor for the recycle log line. quiet as for supervisor_group_recycle().
 * Not static only for the unit tests. */
bool supervisor_check_group_high(struct supervisor *s, usec_t now, bool quiet);

/* The leaves of reaped templates (template_process_hold_leaf()): each is read for
 * group_high while workers forked from that template live, and removed once none does
 * (event=template_leaf_released). Called on the sample tick. Not static only for the
 * unit tests. */
void supervisor_template_leaves_upkeep(struct supervisor *s);
