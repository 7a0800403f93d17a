/* See supervisor.h.
 *
 * The supervisor is event-driven but decides in one place: every event only
 * records what happened (a child exited, a worker said READY=1, a timer fired),
 * then supervisor_reconcile() compares what is with what should be and acts.
 * That keeps the rules — rolling recycles, backoff, shutdown — in one function
 * that is safe to run after any event, any number of times. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "memward/base/log.h"
#include "memward/base/macro.h"
#include "memward/base/read_file.h"
#include "memward/base/signal_name.h"
#include "memward/config/config_diff.h"
#include "memward/linux/proc.h"
#include "memward/linux/spawn.h"
#include "memward/supervisor/orphans.h"
#include "memward/supervisor/supervisor.h"

/* A slot that has served this long since its last failure is not in a crash loop. */
#define CRASH_LOOP_FORGIVE_USEC (10 * USEC_PER_SEC)
/* SIGQUIT: fast shutdown, SIGKILL after this grace. */
#define FAST_SHUTDOWN_USEC (1 * USEC_PER_SEC)
/* Notify datagrams handled per wakeup, so a flood cannot starve signals and timers. */
#define NOTIFY_BATCH 64
/* Notify datagrams read, at most, before exits are judged (supervisor_reap()). */
#define NOTIFY_DRAIN_MAX 4096
/* Procfs mode: the second look for the worker of a spawn given up on, after the first at
 * its template's exit. */
#define ORPHAN_SWEEP_AGAIN_USEC (1 * USEC_PER_SEC)
/* At exit: how long memward waits for the orphans it killed to be reaped (one in
 * uninterruptible sleep can take a while), after which it exits anyway and says so. */
#define ORPHANS_EXIT_WAIT_USEC (5 * USEC_PER_SEC)
/* Orphans killed per sweep while memward runs: about 10 ms of kill()s (bench/orphans);
 * the SIGCHLDs of those killed bring the next sweep, and the next batch. */
#define ORPHANS_KILL_BATCH 256
/* How far up the process tree a notify sender may be from its worker. */
#define NOTIFY_ANCESTRY_MAX 32

static void supervisor_reconcile(struct supervisor *s);
static void supervisor_sweep_orphans(struct supervisor *s, const char *trigger);
static bool supervisor_sweeps(const struct supervisor *s);
static struct template_process *template_by_pid(struct supervisor *s, pid_t pid);
static struct template_process *template_by_placer(struct supervisor *s, pid_t pid);
static void supervisor_template_act(struct supervisor *s, struct template_process *t,
                                    const struct template_decision *d, bool reaped, int status, usec_t now);
static void supervisor_template_reaped(struct supervisor *s, struct template_process *t, int status, usec_t now);
static void supervisor_template_reload(struct supervisor *s, usec_t now);
static void supervisor_templates_pass(struct supervisor *s);
static void supervisor_roll_workers(struct supervisor *s, usec_t now);
static int supervisor_watch_pressure(struct supervisor *s);
static void supervisor_retry_pressure(struct supervisor *s);
static int supervisor_arm_sampling(struct supervisor *s);
static unsigned supervisor_fds_needed(const struct supervisor *s, const struct memward_config *c, unsigned workers);
static int supervisor_check_fd_limit(struct supervisor *s, const struct memward_config *c, unsigned workers);

void supervisor_signal_set(sigset_t *ret) {
        sigemptyset(ret);
        sigaddset(ret, SIGCHLD);
        sigaddset(ret, SIGTERM);
        sigaddset(ret, SIGINT);
        sigaddset(ret, SIGQUIT);
        sigaddset(ret, SIGHUP);
        sigaddset(ret, SIGTTIN);
        sigaddset(ret, SIGTTOU);
        sigaddset(ret, SIGUSR1);
        sigaddset(ret, SIGUSR2);
        sigaddset(ret, SIGWINCH);
}

static struct worker *worker_by_pid(struct supervisor *s, pid_t pid) {
        for (struct worker *w = s->workers; w; w = w->next)
                if (w->pid == pid)
                        return w;
        return NULL;
}

/* The worker a notify sender belongs to: the worker itself or any descendant (gunicorn's
 * own worker under a gunicorn arbiter). */
static struct worker *worker_for_sender(struct supervisor *s, pid_t pid) {
        for (unsigned hops = 0; pid > 1 && hops < NOTIFY_ANCESTRY_MAX; hops++) {
                struct worker *w = worker_by_pid(s, pid);
                if (w)
                        return w;
                if (proc_get_ppid("/proc", pid, &pid) < 0)
                        return NULL;
        }
        return NULL;
}

static void worker_unlink(struct supervisor *s, struct worker *w) {
        for (struct worker **p = &s->workers; *p; p = &(*p)->next)
                if (*p == w) {
                        *p = w->next;
                        s->n_workers--;
                        return;
                }
}

static usec_t age_seconds(usec_t now, usec_t since) {
        return now > since ? (now - since) / USEC_PER_SEC : 0;
}

static bool slot_wanted(const struct supervisor *s, unsigned slot) {
        return slot < s->target;
}

static bool env_has(char *const *env, const char *key) {
        size_t n = strlen(key);
        for (; env && *env; env++)
                if (strncmp(*env, key, n) == 0 && (*env)[n] == '=')
                        return true;
        return false;
}

/* Says why the group limit is unknown, naming the file and the errno (typically
 * /proc/meminfo hidden by systemd's ProcSubset=pid, with no MemoryMax= either). With
 * unresolved, a setting given in percent, that is an error: its caller refuses to start
 * or to reload rather than run with the setting silently off. Otherwise absolute sizes
 * still work, and a warning says what will not. */
static void log_group_limit_unknown(const struct supervisor *s, const char *unresolved) {
        const struct monitor *m = &s->monitor;
        char path[LOG_QUOTE_MAX];

        (void) log_quote(path, sizeof path, m->group_limit_source);
        if (unresolved)
                log_error_errno(m->group_limit_error, "group_limit_unknown",
                                "setting=%s path=%s msg=\"%s is a percentage of the group limit, which is unknown: "
                                "no memory.max above our cgroup and no MemTotal. Set MemoryMax= (or let us read "
                                "/proc/meminfo) or give an absolute size\"",
                                unresolved, path, unresolved);
        else
                log_warning_errno(m->group_limit_error, "group_limit_unknown",
                                  "path=%s msg=\"no memory.max above our cgroup and no MemTotal: sizes in percent "
                                  "of the group limit (worker_high: 50%%, group_high: 80%%) cannot be resolved; "
                                  "absolute sizes work\"",
                                  path);
}

static int supervisor_build_env(struct supervisor *s) {
        const struct memward_config *c = s->config;
        char names[1024], gomemlimit[64], node[96];
        char *extra[6] = {};
        size_t n_extra = 0;
        _cleanup_free_ char *notify = NULL, *fdnames = NULL;
        char **tpl = NULL, **with_config = NULL;
        extern char **environ;
        int r;

        if (asprintf(&notify, "NOTIFY_SOCKET=%s", s->notify_address) < 0)
                return -ENOMEM;
        extra[n_extra++] = notify;
        if (s->listen.n > 0) {
                r = listen_set_names(&s->listen, names, sizeof names);
                if (r < 0)
                        return r;
                if (asprintf(&fdnames, "LISTEN_FDNAMES=%s", names) < 0)
                        return -ENOMEM;
                extra[n_extra++] = fdnames;
        }

        /* Tell language runtimes about the per-worker limit, so they collect garbage
         * before the kernel kills them. A value the user set always wins. */
        uint64_t max = s->monitor.worker_max;
        if (c->memory.runtime_hints && max > 0) {
                if (!env_has(environ, "GOMEMLIMIT") && !env_has(c->workers.env, "GOMEMLIMIT")) {
                        snprintf(gomemlimit, sizeof gomemlimit, "GOMEMLIMIT=%" PRIu64, max / 10 * 9);
                        extra[n_extra++] = gomemlimit;
                }
                if (!env_has(environ, "NODE_OPTIONS") && !env_has(c->workers.env, "NODE_OPTIONS")) {
                        snprintf(node, sizeof node, "NODE_OPTIONS=--max-old-space-size=%" PRIu64,
                                 max / 4 * 3 / (1024 * 1024));
                        extra[n_extra++] = node;
                }
                if (!env_has(environ, "MALLOC_ARENA_MAX") && !env_has(c->workers.env, "MALLOC_ARENA_MAX"))
                        extra[n_extra++] = (char *) "MALLOC_ARENA_MAX=2";
        }

        /* workers.env overrides the inherited environment; our own protocol variables
         * override both. */
        r = spawn_env_template(environ, c->workers.env, &with_config);
        if (r < 0)
                return r;
        r = spawn_env_template(with_config, extra, &tpl);
        if (r < 0) {
                strv_free(with_config);
                return r;
        }
        /* A template speaks only on its control channel: everything but NOTIFY_SOCKET
         * (extra[0]), which each worker gets in its SPAWN (docs/fork-server.md §1). */
        char **template_env = NULL;
        if (c->workers.mode == WORKERS_TEMPLATE) {
                r = spawn_env_template(with_config, extra + 1, &template_env);
                if (r < 0) {
                        strv_free(with_config);
                        strv_free(tpl);
                        return r;
                }
        }
        strv_free(with_config);

        strv_free(s->env_template);
        s->env_template = tpl;
        strv_free(s->template_env);
        s->template_env = template_env;
        return 0;
}

static void supervisor_begin_shutdown(struct supervisor *s, bool fast, int exit_code) {
        usec_t now = now_monotonic();

        if (s->shutting_down && !fast)
                return;
        if (!s->shutting_down)
                log_info("shutdown", "mode=%s workers=%u", fast ? "fast" : "graceful", s->n_workers);
        /* A SIGQUIT after the command could not be executed must not turn 127 into 0. */
        if (!s->shutting_down || exit_code != 0)
                s->exit_code = exit_code;
        s->shutting_down = true;
        service_stopping(&s->service);

        usec_t grace = fast ? FAST_SHUTDOWN_USEC : s->config->workers.graceful_timeout;
        if (fast && grace > s->config->workers.graceful_timeout)
                grace = s->config->workers.graceful_timeout;
        for (struct worker *w = s->workers; w; w = w->next) {
                if (w->state != WORKER_STOPPING)
                        worker_stop(w, s->config->workers.stop_signal, now, grace);
                else if (fast && w->kill_at > now + grace)
                        w->kill_at = now + grace;
        }
}

/* ---- spawning ------------------------------------------------------------ */

static int on_worker_memory_events(struct event_source *src, uint32_t revents);

/* Where event=recycle is logged: counts the recycle, remembers the reason as the slot's
 * last recycle and pushes a record for /status, with the worker's figure (what decided a
 * recycle, or its last judgement for one that was not decided: an OOM kill). now is
 * CLOCK_MONOTONIC. */
static void supervisor_count_recycle(struct supervisor *s, const struct worker *w, enum recycle_reason reason,
                                     usec_t now) {
        s->recycles[reason]++;
        if (w->slot < s->n_slots)
                s->slots[w->slot].last_recycle = reason;
        recycle_history_push(&s->recycle_history, &(struct recycle_record) {
                .at = now_realtime(),
                .slot = w->slot,
                .pid = w->pid,
                .generation = w->generation,
                .reason = reason,
                .requests = w->requests,
                .age = now > w->spawned_at ? now - w->spawned_at : 0,
                .anon = w->mem.anon,
                .figure = w->figure,
        });
}

/* Closes what the worker holds besides its process: the memory.events watch and the
 * cgroup leaf (kept for removal later if processes are still exiting). */
static void supervisor_release_worker(struct supervisor *s, struct worker *w) {
        if (w->mem.events_source.fd >= 0)
                (void) event_loop_remove(s->loop, &w->mem.events_source);
        w->mem.events_source.fd = -1;
        monitor_worker_release(&s->monitor, w);
}

static void supervisor_worker_ready(struct supervisor *s, struct worker *w, usec_t now);

/* A slot served for CRASH_LOOP_FORGIVE_USEC, or a reload went through: the failed
 * starts before it are history, and only a new run of them, with none ready, may reach
 * the start limit. */
static void supervisor_start_limit_forget(struct supervisor *s) {
        s->n_start_failures = 0;
        s->start_failures_deepest = 0;
        s->start_limit = (struct policy_start_limit_verdict) {};
        for (unsigned i = 0; i < s->n_slots; i++)
                s->slots[i].start_failures = 0;
}

/* Counts a failure of the slot (a spawn that failed, a worker that died unexpectedly) and
 * sets its backoff. A slot that has served for a while since its last failure has a new
 * problem, not more of the same one: it starts again at the initial delay, even when its
 * workers are recycled faster than that and none of them lived as long. */
static void slot_note_failure(struct supervisor *s, struct slot *slot, usec_t now) {
        /* One rule for both the backoff and the start limit: a slot that stayed ready for
         * CRASH_LOOP_FORGIVE_USEC has a new problem. Not at READY itself: with `ready:
         * immediate` (or a delay) every spawn is "ready", and a worker that says READY=1
         * and dies a second later is crash-looping all the same. */
        if (slot->ready_since && now - slot->ready_since >= CRASH_LOOP_FORGIVE_USEC) {
                slot->failures = 0;
                supervisor_start_limit_forget(s);
        }
        slot->ready_since = 0;
        slot->failures++;
        slot->respawn_at = now + policy_backoff(s->config->workers.backoff_initial, s->config->workers.backoff_max,
                                                slot->failures);

        /* The start limit: judged here, acted on by the next reconcile pass (this may run
         * in the middle of a worker's exit). Only failures while nothing serves are
         * recorded: a slot that crash-looped beside a serving worker for an hour must not
         * make the first crash of that worker the last straw. And they are counted per
         * slot, one backoff round at a time: the ring gets a time only when a slot fails
         * more often than any other did, so that 6 workers failing at once on a dependency
         * down for a second are one failed start, not 6, and the limit is reached only
         * after as much backoff as for a single worker. */
        unsigned ready = supervisor_ready_workers(s);
        if (ready > 0 || s->shutting_down || s->start_limit.hit)
                return;
        slot->start_failures++;
        if (slot->start_failures <= s->start_failures_deepest)
                return;
        s->start_failures_deepest = slot->start_failures;
        s->start_failures[s->n_start_failures++ % CONFIG_START_LIMIT_BURST_MAX] = now;
        s->start_limit = policy_start_limit(s->config->workers.start_limit_burst, s->config->workers.start_limit_interval,
                                            s->start_failures,
                                            s->n_start_failures < CONFIG_START_LIMIT_BURST_MAX ? s->n_start_failures
                                                                                              : CONFIG_START_LIMIT_BURST_MAX,
                                            ready, now);
}

/* Watches the worker's memory.events (cgroup mode). */
static void supervisor_watch_worker_events(struct supervisor *s, struct worker *w) {
        if (w->mem.leaf.events_fd < 0)
                return;
        w->mem.events_source = (struct event_source) {
                .fd = w->mem.leaf.events_fd,
                .events = EPOLLPRI,
                .handler = on_worker_memory_events,
                .userdata = s,
                .name = "memory.events",
        };
        int r = event_loop_add(s->loop, &w->mem.events_source);
        if (r < 0) {
                w->mem.events_source.fd = -1;
                log_warning_errno(r, "watch_failed", "worker=%u file=memory.events", w->slot);
        }
}

/* Spawns a worker into the slot, as its active worker or as the replacement of the
 * active one. In template mode the worker is queued for the template: the record is
 * there, with pid 0, until the template has forked it. */
static struct worker *supervisor_spawn(struct supervisor *s, unsigned slot_index, bool as_replacement, usec_t now) {
        const struct memward_config *c = s->config;
        struct slot *slot = &s->slots[slot_index];
        char cmd[LOG_QUOTE_MAX];
        int r;

        struct worker *w = calloc(1, sizeof *w);
        if (!w) {
                /* With a backoff, like any failed spawn: the pass would pick this slot
                 * again at once and never return to the event loop. */
                s->spawn_failures++;
                slot_note_failure(s, slot, now);
                log_error_errno(-ENOMEM, "spawn_failed", "worker=%u retry_in=%" PRIu64 "ms", slot_index,
                                (slot->respawn_at - now) / USEC_PER_MSEC);
                return NULL;
        }
        *w = (struct worker) {
                .slot = slot_index,
                .generation = slot->generation + 1,
                .state = WORKER_STARTING,
                .spawned_at = now,
                .request_limit = policy_draw_limit(c->recycle.max_requests, c->recycle.max_requests_jitter,
                                                   policy_random_next(&s->random_state)),
                .lifetime_limit = policy_draw_limit(c->recycle.max_lifetime, c->recycle.max_lifetime_jitter,
                                                    policy_random_next(&s->random_state)),
        };

        int cgroup_fd = monitor_worker_prepare(&s->monitor, w, c);
        if (cgroup_fd < -1) {
                log_warning_errno(cgroup_fd, "cgroup_leaf_failed",
                                  "worker=%u msg=\"accounting this worker through /proc\"", slot_index);
                s->leafless_workers = true;
        }

        if (s->template) {
                /* Template mode: the record now, the process when the template forks it
                 * (supervisor_template_offer); pid 0 until then. */
                w->fork = WORKER_FORK_QUEUED;
                slot->generation = w->generation;
                w->next = s->workers;
                s->workers = w;
                s->n_workers++;
                supervisor_watch_worker_events(s, w);
                log_debug("spawn_queued", "worker=%u generation=%llu", w->slot, w->generation);
                if (as_replacement)
                        slot->replacement = w;
                else
                        slot->active = w;
                /* Offered from the template's timer, outside this pass. */
                (void) timerfd_arm_at(s->template_timer_source.fd, now);
                return w;
        }

        struct spawn_request req = {
                .argv = c->workers.command,
                .directory = c->workers.directory,
                .env_template = s->env_template,
                .worker_id = slot_index,
                .generation = w->generation,
                .watchdog_usec = c->workers.watchdog,
                .max_requests = w->request_limit,
                .listen_fds = s->listen_fds,
                .n_listen_fds = s->listen.n,
                .cgroup_fd = cgroup_fd >= 0 ? cgroup_fd : -1,
                .oom_score_adj = s->worker_oom_score_adj[0] ? s->worker_oom_score_adj : NULL,
                .credentials = s->switch_credentials ? &c->workers.credentials : NULL,
                .set_umask = c->workers.umask >= 0,
                .umask = c->workers.umask >= 0 ? (mode_t) c->workers.umask : 0,
        };

        struct spawn_outcome outcome = {};
        r = spawn_worker(&req, &w->pid, &outcome);
        if (outcome.cgroup_error < 0) {
                /* A cgroup problem (Docker's seccomp without clone3 and a cgroup.procs we may
                 * not write, a leaf the kernel refuses): the worker runs beside memward and
                 * is accounted through /proc, like one whose leaf could not be created. */
                log_warning_errno(outcome.cgroup_error, "cgroup_placement_failed",
                                  "worker=%u cgroup=%s msg=\"cannot move the worker into its cgroup; accounting "
                                  "this worker through /proc\"",
                                  slot_index, w->mem.leaf.name);
                supervisor_release_worker(s, w);
                s->leafless_workers = true;
        }
        if (r < 0) {
                supervisor_release_worker(s, w);
                free(w);
                s->spawn_failures++;
                slot_note_failure(s, slot, now);
                if (outcome.credentials_step) {
                        /* Refused by the kernel although memward may switch ids (a user
                         * namespace without that uid mapped, a seccomp filter): no worker
                         * will start as configured. */
                        char user[LOG_QUOTE_MAX], group[LOG_QUOTE_MAX];
                        log_error_errno(r, "spawn_failed",
                                        "worker=%u step=%s user=%s group=%s failures=%u retry_in=%" PRIu64 "ms%s",
                                        slot_index, outcome.credentials_step,
                                        log_quote(user, sizeof user, c->workers.user ?: ""),
                                        log_quote(group, sizeof group, c->workers.group ?: ""), slot->failures,
                                        s->ever_ready ? (slot->respawn_at - now) / USEC_PER_MSEC : 0,
                                        " msg=\"cannot switch the worker to workers.user/workers.group\"");
                        if (!s->ever_ready)
                                supervisor_begin_shutdown(s, true, EXIT_FAILURE);
                        return NULL;
                }
                /* A directory that cannot be entered is a configuration problem of its
                 * own, not "command not found"; both name what failed. */
                bool directory = outcome.directory_failed;
                log_quote(cmd, sizeof cmd, directory ? c->workers.directory : c->workers.command[0]);
                bool cannot_run = directory || spawn_exec_error_is_permanent(r);
                const char *what = directory ? "directory" : "command";
                const char *msg = directory        ? "\"cannot enter workers.directory\""
                                  : r == -ENOENT ? "\"worker command not found\""
                                                 : "\"worker command cannot be executed\"";
                int exit_code = directory ? EXIT_USAGE : spawn_exec_error_to_exit_code(r);
                if (cannot_run && !s->ever_ready) {
                        /* Nothing has ever run: a typo in the config, not a transient problem.
                         * Retrying would only turn it into a respawn loop. */
                        log_error_errno(r, "spawn_failed", "worker=%u %s=%s exit_code=%d msg=%s", slot_index, what,
                                        cmd, exit_code, msg);
                        supervisor_begin_shutdown(s, true, exit_code);
                        return NULL;
                }
                /* It ran before (the file changed under us, a deploy is half done): the
                 * workers that run keep serving and we retry with the backoff. */
                log_error_errno(r, "spawn_failed", "worker=%u %s=%s failures=%u retry_in=%" PRIu64 "ms%s%s",
                                slot_index, what, cmd, slot->failures, (slot->respawn_at - now) / USEC_PER_MSEC,
                                cannot_run ? " msg=" : "", cannot_run ? msg : "");
                return NULL;
        }

        slot->generation = w->generation;
        w->next = s->workers;
        s->workers = w;
        s->n_workers++;

        supervisor_watch_worker_events(s, w);

        log_info("spawn", "worker=%u pid=%d generation=%llu request_limit=%" PRIu64 " lifetime_limit=%" PRIu64 "s%s%s",
                 w->slot, (int) w->pid, w->generation, w->request_limit, w->lifetime_limit / USEC_PER_SEC,
                 w->mem.leaf.dir_fd >= 0 ? " cgroup=" : "", w->mem.leaf.dir_fd >= 0 ? w->mem.leaf.name : "");

        if (as_replacement)
                slot->replacement = w;
        else
                slot->active = w;
        if (c->workers.ready == READY_IMMEDIATE)
                supervisor_worker_ready(s, w, now);
        return w;
}

/* ---- state changes ------------------------------------------------------- */

/* Whether w's process has exited though its exit is not reaped yet: its READY=1 (or its
 * ready delay) was read before its SIGCHLD, or both came while memward was stopped. A
 * worker is memward's child; a template's may not be yet (its intermediate process has
 * not exited), and then its pidfd tells. */
static bool worker_has_exited(const struct worker *w) {
        int r = proc_child_exited(w->pid);
        if (r != -ECHILD)
                return r > 0;
        _cleanup_close_ int pidfd = proc_pidfd_open(w->pid);
        if (pidfd == -ESRCH)
                return true;
        return pidfd >= 0 && proc_pidfd_exited(pidfd) > 0;
}

static void supervisor_worker_ready(struct supervisor *s, struct worker *w, usec_t now) {
        if (w->state != WORKER_STARTING || w->pid <= 0 || w->exited)
                return; /* not forked yet: ready (immediate, a delay) once it is; seen dead: never */
        /* A worker that is dead already never serves: made ready, the replacement would
         * stop the worker it replaces, and the slot would be left with none. Its exit,
         * reaped next, is a failed start; what it said before it died still counts. */
        if (worker_has_exited(w)) {
                w->exited = true;
                log_info("ready_ignored", "worker=%u pid=%d generation=%llu reason=exited replacement=%s",
                         w->slot, (int) w->pid, w->generation,
                         w->slot < s->n_slots && s->slots[w->slot].replacement == w ? "yes" : "no");
                return;
        }
        w->state = WORKER_READY;
        w->ready_at = w->last_watchdog = now;
        s->ever_ready = true;
        log_info("ready", "worker=%u pid=%d generation=%llu startup=%" PRIu64 "ms", w->slot, (int) w->pid,
                 w->generation, (now - w->spawned_at) / USEC_PER_MSEC);
        if (w->usr1_pending) {
                w->usr1_pending = false;
                (void) worker_signal(w, SIGUSR1);
        }

        if (w->slot >= s->n_slots)
                return;
        struct slot *slot = &s->slots[w->slot];
        if (!slot->ready_since)
                slot->ready_since = now;
        /* How far ahead of a request limit the next recycle here starts (reconcile.h). */
        slot->startup = now - w->spawned_at;
        if (slot->replacement != w) {
                if (slot->active == w)
                        slot->recycle_pending = slot->recycle_at_limit = false; /* a fresh start after a failed replacement */
                return;
        }

        /* The replacement serves now; only then is the old worker asked to stop, so
         * capacity never drops below the target. */
        struct worker *old = slot->active;
        slot->active = w;
        slot->replacement = NULL;
        slot->recycle_pending = slot->recycle_at_limit = false;
        if (old && old->state != WORKER_STOPPING) {
                log_info("stop", "worker=%u pid=%d reason=%s replaced_by=%d", old->slot, (int) old->pid,
                         recycle_reason_to_string(old->recycle_reason), (int) w->pid);
                worker_stop(old, s->config->workers.stop_signal, now, s->config->workers.graceful_timeout);
        }
}

static void worker_mark_recycle(struct worker *w, enum recycle_reason reason, const struct policy_memory_figure *figure,
                                usec_t now);
static void supervisor_note_recycle(struct supervisor *s, struct worker *w, usec_t now);

static void describe_exit(int status, char *buf, size_t size) {
        if (WIFEXITED(status))
                snprintf(buf, size, "status=exited code=%d", WEXITSTATUS(status));
        else if (WIFSIGNALED(status))
                snprintf(buf, size, "status=killed signal=%s%s", signal_to_string(WTERMSIG(status)),
                         WCOREDUMP(status) ? " core_dumped=yes" : "");
        else
                snprintf(buf, size, "status=unknown raw=%d", status);
}

static void supervisor_worker_exited(struct supervisor *s, struct worker *w, int status, usec_t now) {
        char how[96];
        bool expected = w->state == WORKER_STOPPING && !w->failed;

        describe_exit(status, how, sizeof how);
        /* The group dies with its leader: leftovers of a worker must not serve, or hold
         * memory, unsupervised. In cgroup mode the leaf is killed too (cgroup.kill), which
         * also reaches processes that left the group. */
        /* Its group's members (a worker shell's `cmd &`) are memward's children now,
         * killed here: the sweep that follows must not kill and count them again. Only
         * while memward sweeps: the sweeps forget the groups they no longer meet. */
        if (worker_kill_group(w) >= 0 && supervisor_sweeps(s))
                (void) orphan_set_add(&s->dying_groups, w->pid);
        supervisor_release_worker(s, w);
        /* Only now: the release reads memory.events a last time, and may be the first
         * to see the kill. */
        bool oom = policy_exit_is_oom(status, w->mem.oom_kill_seen, w->killed);
        s->exits[oom ? WORKER_EXIT_OOM : WIFSIGNALED(status) ? WORKER_EXIT_SIGNAL : WORKER_EXIT_EXIT]++;
        if (oom) {
                expected = false;
                supervisor_count_recycle(s, w, RECYCLE_OOM, now);
                log_warning("recycle", "worker=%u pid=%d reason=oom peak=%" PRIu64 " worker_max=%" PRIu64
                            " requests=%" PRIu64 " age=%" PRIu64 "s",
                            w->slot, (int) w->pid, w->mem.peak, s->monitor.worker_max, w->requests,
                            age_seconds(now, w->spawned_at));
        }

        /* A worker that stopped itself at the limit it was given (MEMWARD_MAX_REQUESTS; its
         * last X_REQUESTS was read before, supervisor_drain_notify()) was recycled, as if
         * memward had stopped it there: its replacement starts at once, with no backoff. */
        if (!expected && !oom && !s->shutting_down &&
            policy_exit_at_request_limit(status, w->requests, w->request_limit)) {
                expected = true;
                /* A recycle memward had started (its replacement starting) is counted
                 * already, under the reason that decided it. */
                if (!w->recycle_counted) {
                        worker_mark_recycle(w, RECYCLE_MAX_REQUESTS, NULL, now);
                        supervisor_note_recycle(s, w, now);
                }
        }

        struct slot *slot = w->slot < s->n_slots ? &s->slots[w->slot] : NULL;
        bool was_replacement = slot && slot->replacement == w;
        if (slot && slot->active == w)
                slot->active = NULL;
        if (was_replacement) {
                slot->replacement = NULL;
                /* The worker it was meant to replace keeps serving and tries again later. */
                if (slot->active)
                        slot->active->recycle_started = false;
        }

        if (expected || s->shutting_down) {
                log_info("exit", "worker=%u pid=%d %s age=%" PRIu64 "s requests=%" PRIu64 "%s", w->slot, (int) w->pid,
                         how, age_seconds(now, w->spawned_at), w->requests,
                         w->state != WORKER_STOPPING && !s->shutting_down ? " stopped_by=worker" : "");
        } else {
                if (slot)
                        slot_note_failure(s, slot, now);
                log_warning("exit", "worker=%u pid=%d %s unexpected=yes state=%s age=%" PRIu64 "s requests=%" PRIu64
                            " failures=%u respawn_in=%" PRIu64 "ms",
                            w->slot, (int) w->pid, how, worker_state_to_string(w->state),
                            age_seconds(now, w->spawned_at), w->requests, slot ? slot->failures : 0,
                            slot && slot->respawn_at > now ? (slot->respawn_at - now) / USEC_PER_MSEC : 0);
        }

        worker_unlink(s, w);
        free(w);
}

static bool reason_is_memory(enum recycle_reason r) {
        return r == RECYCLE_RETAINED || r == RECYCLE_GROWTH || r == RECYCLE_PRESSURE || r == RECYCLE_GROUP_HIGH;
}

/* Decides that w is to be recycled: the one place a recycle reason is set, so that the
 * figure behind it is always set with it. figure: what a memory judgement decided by;
 * NULL for a rule that is not about memory (requests, lifetime, watchdog, reload, a lost
 * leaf), whose record then shows the worker's last judged figure. A recycle decided
 * again (a reload over a pending one, a queued one judged again at its turn) keeps its
 * first due time: first due, first served. now is CLOCK_MONOTONIC. */
static void worker_mark_recycle(struct worker *w, enum recycle_reason reason, const struct policy_memory_figure *figure,
                                usec_t now) {
        assert(reason != RECYCLE_NONE);
        w->recycle_reason = reason;
        w->limit_expected_at = 0;       /* set by the caller for a max_requests recycle decided ahead */
        if (figure)
                w->figure = *figure;
        if (w->recycle_due_at == 0)
                w->recycle_due_at = now;
}

/* The per-worker memory rules (retained, growth) for w now, with both of its floors:
 * policy_judge_memory() decides which one counts. */
static struct policy_memory_verdict worker_judge_memory(const struct supervisor *s, const struct worker *w,
                                                        usec_t now) {
        const struct memward_config *c = s->config;
        struct policy_memory_input in = {
                .now = now,
                .request_end_at = w->mem.last_boundary,
                .retained_window = c->memory.retained_window,
                .has_baseline = w->mem.baseline.known,
                .baseline = w->mem.baseline.value,
                .retained_max = c->memory.retained_max,
                .growth_max = c->memory.growth_max,
        };
        in.has_window = floor_window_get(&w->mem.floor, now, &in.window);
        in.has_request_end = boundary_floor_get(&w->mem.boundary, c->memory.retained_requests, &in.request_end);
        return policy_judge_memory(&in);
}

/* Judges w after a new reading (the sample tick, a request end) and keeps the figure
 * for reports. A worker whose recycle is decided is left as it is: its figure stays the
 * one that decided, and its turn judges it again. Only a ready worker is marked, and
 * none during shutdown. */
static void supervisor_judge_worker(struct supervisor *s, struct worker *w, usec_t now) {
        if (w->recycle_reason != RECYCLE_NONE)
                return;
        struct policy_memory_verdict v = worker_judge_memory(s, w, now);
        w->figure = v.figure;
        if (v.reason != RECYCLE_NONE && w->state == WORKER_READY && !s->shutting_down)
                worker_mark_recycle(w, v.reason, &v.figure, now);
}

/* a + b, or UINT64_MAX when that does not fit: a figure against a budget only grows. */
static uint64_t add_saturating(uint64_t a, uint64_t b) {
        return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* What the workers hold against group_high: each one's latest reading, from the tick or
 * a request end. Memory about to be given back (a recycle decided) no longer counts;
 * its replacement's does. */
static uint64_t supervisor_workers_total(const struct supervisor *s) {
        uint64_t total = 0;
        for (const struct worker *w = s->workers; w; w = w->next)
                if (w->state != WORKER_STOPPING && w->recycle_reason == RECYCLE_NONE)
                        total += w->mem.latest;
        return total;
}

/* What the templates hold against group_high, at their last sample: what no worker's
 * figure counts (template_group_share(), the one rule). The running template, a reload's
 * new one while it starts, the retired ones while their process lives, and the leaves
 * of reaped ones while their workers live: those still map their pages until they are
 * rolled. 0 in exec mode. */
static uint64_t supervisor_templates_total(const struct supervisor *s) {
        enum memory_metric metric = s->config->memory.metric;
        bool leaves = s->monitor.cgroup.mode == ACCOUNTING_CGROUP;
        uint64_t total = 0;

        for (const struct template_process *t = s->template; t; t = t == s->template ? s->template_next : NULL)
                total = add_saturating(total, template_process_metric(t, metric, leaves));
        for (const struct template_process *t = s->templates_retired; t; t = t->next)
                total = add_saturating(total, template_process_metric(t, metric, leaves));
        for (const struct template_leaf_held *h = s->template_leaves_held; h; h = h->next)
                total = add_saturating(total, template_group_share(&h->mem, metric, leaves));
        return total;
}

/* The figure group_high judges: the workers' and the templates' totals, saturating. */
static uint64_t supervisor_group_total(const struct supervisor *s) {
        return add_saturating(supervisor_workers_total(s), supervisor_templates_total(s));
}

/* A memory recycle can wait its turn (max_concurrent) for seconds: it is judged again when
 * its turn comes, so a worker is not restarted for memory it no longer holds or a budget
 * the group no longer exceeds. Pressure stands: it was true when it fired. This is the
 * judgement, with extra the memory of queued recycles judged no longer due before this
 * one (a cancelled recycle counts against group_high again); reconcile_plan() decides
 * whose turn it is and cancels (supervisor_cancel_recycle()). */
static bool supervisor_recycle_still_due(const struct supervisor *s, const struct worker *w, uint64_t extra,
                                         usec_t now) {
        switch (w->recycle_reason) {
        case RECYCLE_RETAINED:
        case RECYCLE_GROWTH:
                return worker_judge_memory(s, w, now).reason != RECYCLE_NONE;
        case RECYCLE_GROUP_HIGH: {
                uint64_t total = supervisor_group_total(s);
                total = total > UINT64_MAX - extra ? UINT64_MAX : total + extra;
                return policy_group_over_high(total, w->mem.latest, s->monitor.group_high);
        }
        default:
                return true;
        }
}

/* A queued memory recycle that is no longer due at its turn: dropped, and said so. */
static void supervisor_cancel_recycle(struct supervisor *s, struct worker *w, usec_t now) {
        if (w->recycle_reason == RECYCLE_RETAINED || w->recycle_reason == RECYCLE_GROWTH)
                w->figure = worker_judge_memory(s, w, now).figure;     /* what the worker holds now, for the reports */
        log_info("recycle_cancelled", "worker=%u pid=%d reason=%s latest=%" PRIu64 " group=%" PRIu64
                 " template=%" PRIu64 " msg=\"no longer over the limit when its turn came\"",
                 w->slot, (int) w->pid, recycle_reason_to_string(w->recycle_reason), w->mem.latest,
                 supervisor_group_total(s), supervisor_templates_total(s));
        w->recycle_reason = RECYCLE_NONE;
        w->recycle_due_at = 0;
        w->limit_expected_at = 0;
        w->recycle_counted = false;     /* its spawn may have failed before: a later recycle is a new one */
}

/* Logs and counts a recycle once: when its replacement cannot be spawned, the retries
 * are spawn_failed lines, not more recycles. */
static void supervisor_note_recycle(struct supervisor *s, struct worker *w, usec_t now) {
        if (w->recycle_counted)
                return;
        w->recycle_counted = true;
        if (reason_is_memory(w->recycle_reason)) {
                const struct worker_memory *m = &w->mem;
                const struct policy_memory_figure *f = &w->figure;
                bool request_end = f->source == POLICY_FLOOR_REQUEST_END;
                char window[FORMAT_DURATION_MAX], ratio[32] = "";
                /* The floor is the one that decided, never computed again; the other
                 * numbers are read now, for context. */
                (void) monitor_worker_sample(&s->monitor, w, s->config, now);
                if (f->ratio > 0)
                        snprintf(ratio, sizeof ratio, " ratio=%.2f", f->ratio);
                log_info("recycle",
                         "worker=%u pid=%d reason=%s source=%s metric=%s floor=%" PRIu64 " baseline=%" PRIu64 "%s"
                         " window=%s current=%" PRIu64 " anon=%" PRIu64 " anon_from=%s file=%" PRIu64 " kernel=%" PRIu64
                         " peak=%" PRIu64 " group=%" PRIu64 " template=%" PRIu64 " psi_some_avg10=%.2f requests=%" PRIu64
                         " age=%" PRIu64 "s",
                         w->slot, (int) w->pid, recycle_reason_to_string(w->recycle_reason),
                         policy_floor_source_to_string(f->source),
                         request_end && m->boundary_from != MEMORY_READING_CGROUP
                                 ? memory_reading_to_string(m->boundary_from)
                                 : memory_metric_to_string(s->config->memory.metric),
                         f->floor, f->baseline, ratio,
                         format_duration(window, sizeof window, s->config->memory.retained_window), m->current, m->anon,
                         memory_reading_to_string(m->anon_from), m->file, m->kernel, m->peak,
                         add_saturating(s->monitor.workers_total, s->monitor.templates_total),
                         s->monitor.templates_total, s->monitor.has_psi ? s->monitor.psi.some.avg10 : 0.0, w->requests,
                         age_seconds(now, w->spawned_at));
        } else {
                /* A max_requests recycle started ahead of its limit, so that the replacement
                 * is ready in time, says when the limit was expected (reconcile.h). */
                char ahead[48] = "";
                if (w->recycle_reason == RECYCLE_MAX_REQUESTS && w->limit_expected_at > 0)
                        snprintf(ahead, sizeof ahead, " expected_in=%" PRIu64 "ms",
                                 w->limit_expected_at > now ? (w->limit_expected_at - now) / USEC_PER_MSEC : 0);
                log_info("recycle",
                         "worker=%u pid=%d reason=%s requests=%" PRIu64 " limit=%" PRIu64 " age=%" PRIu64
                         "s lifetime_limit=%" PRIu64 "s%s",
                         w->slot, (int) w->pid, recycle_reason_to_string(w->recycle_reason), w->requests,
                         w->request_limit, age_seconds(now, w->spawned_at), w->lifetime_limit / USEC_PER_SEC, ahead);
        }
        supervisor_count_recycle(s, w, w->recycle_reason, now);
}

static void supervisor_start_recycle(struct supervisor *s, struct worker *w, usec_t now) {
        /* Judged again at its turn (supervisor_recycle_still_due()): the recycle goes with
         * the figure of that judgement, which may also have turned retained into growth. */
        if (w->recycle_reason == RECYCLE_RETAINED || w->recycle_reason == RECYCLE_GROWTH) {
                struct policy_memory_verdict v = worker_judge_memory(s, w, now);
                if (v.reason != RECYCLE_NONE)
                        worker_mark_recycle(w, v.reason, &v.figure, now);
        }
        supervisor_note_recycle(s, w, now);
        w->recycle_started = true;
        struct worker *r = supervisor_spawn(s, w->slot, true, now);
        if (!r) {
                w->recycle_started = false;
                return; /* backoff set; the old worker keeps serving and we try again */
        }
        s->slots[w->slot].recycle_pending = true;
        s->slots[w->slot].recycle_at_limit = false;
}

/* ---- the decision loop --------------------------------------------------- */

/* How many times one pass plans again after carrying a plan out (a failed spawn, a worker
 * ready at once): each plan changes what the next one sees, so a few rounds settle. After
 * that the timer brings us back after a short pause: the event loop has its turn, and a
 * plan that somehow never settled cannot spin. */
#define RECONCILE_ROUNDS_MAX 4
#define RECONCILE_ROUNDS_PAUSE_USEC (10 * USEC_PER_MSEC)
/* After a pass could not get memory for its view: try again this soon. */
#define RECONCILE_RETRY_USEC (100 * USEC_PER_MSEC)

static int reconcile_buffers_reserve(struct reconcile_buffers *b, size_t n_workers, size_t n_slots) {
        if (b->worker_capacity < n_workers) {
                /* Room to grow, so that a pool that gains a worker now and then does not
                 * reallocate at every pass. */
                size_t n = n_workers + n_workers / 2 + 4;
                struct reconcile_worker *w = reallocarray(b->workers, n, sizeof *w);
                if (!w)
                        return -ENOMEM;
                b->workers = w;
                struct worker **m = reallocarray(b->map, n, sizeof *m);
                if (!m)
                        return -ENOMEM;
                b->map = m;
                b->worker_capacity = n;
        }
        if (b->slot_capacity < n_slots) {
                struct reconcile_slot *sl = reallocarray(b->slots, n_slots, sizeof *sl);
                if (!sl)
                        return -ENOMEM;
                b->slots = sl;
                b->slot_capacity = n_slots;
        }
        return reconcile_plan_reserve(&b->plan, b->worker_capacity, b->slot_capacity);
}

static void reconcile_buffers_free(struct reconcile_buffers *b) {
        free(b->workers);
        free(b->map);
        free(b->slots);
        reconcile_plan_free(&b->plan);
        *b = (struct reconcile_buffers) {};
}

/* The snapshot reconcile_plan() decides on: every worker in list order (newest first, so
 * that the plan's log lines come in the order they always came), the slots, the settings,
 * and the judgement of each queued memory recycle at this moment. */
static int supervisor_build_view(struct supervisor *s, usec_t now, struct reconcile_view *ret) {
        struct reconcile_buffers *b = &s->reconcile;
        const struct memward_config *c = s->config;
        size_t n = 0;

        int r = reconcile_buffers_reserve(b, s->n_workers, s->n_slots);
        if (r < 0)
                return r;
        for (unsigned i = 0; i < s->n_slots; i++)
                b->slots[i] = (struct reconcile_slot) {
                        .active = RECONCILE_NONE,
                        .replacement = RECONCILE_NONE,
                        .respawn_at = s->slots[i].respawn_at,
                        .recycle_pending = s->slots[i].recycle_pending,
                        .recycle_at_limit = s->slots[i].recycle_at_limit,
                        .startup = s->slots[i].startup,
                };
        for (struct worker *w = s->workers; w; w = w->next, n++) {
                b->map[n] = w;
                b->workers[n] = (struct reconcile_worker) {
                        .slot = w->slot,
                        .state = w->state,
                        .spawned_at = w->spawned_at,
                        .unforked = w->pid <= 0,
                        .exited = w->exited,
                        .last_watchdog = w->last_watchdog,
                        .kill_at = w->kill_at,
                        .killed = w->killed,
                        .requests = w->requests,
                        .request_limit = w->request_limit,
                        .lifetime_limit = w->lifetime_limit,
                        .recycle_reason = w->recycle_reason,
                        .recycle_started = w->recycle_started,
                        .recycle_due_at = w->recycle_due_at,
                        .still_due = true,
                        .request_rate = w->request_rate,
                };
                if (w->slot < s->n_slots) {
                        if (s->slots[w->slot].active == w)
                                b->slots[w->slot].active = n;
                        else if (s->slots[w->slot].replacement == w)
                                b->slots[w->slot].replacement = n;
                }
        }
        assert(n == s->n_workers);

        /* The queued recycles the planner may pick, judged in slot order as their turns
         * would come: one judged no longer due counts against group_high again for the
         * next. */
        uint64_t extra = 0;
        for (unsigned i = 0; i < s->n_slots && i < s->target; i++) {
                size_t a = b->slots[i].active;
                if (a == RECONCILE_NONE || b->slots[i].replacement != RECONCILE_NONE)
                        continue;
                struct worker *w = b->map[a];
                if (w->state != WORKER_READY || w->recycle_reason == RECYCLE_NONE || w->recycle_started)
                        continue;
                b->workers[a].still_due = supervisor_recycle_still_due(s, w, extra, now);
                if (!b->workers[a].still_due)
                        extra = extra > UINT64_MAX - w->mem.latest ? UINT64_MAX : extra + w->mem.latest;
        }

        *ret = (struct reconcile_view) {
                .now = now,
                .shutting_down = s->shutting_down,
                .target = s->target,
                .config = {
                        .ready = c->workers.ready,
                        .ready_delay = c->workers.ready_delay,
                        .ready_timeout = c->workers.ready_timeout,
                        .graceful_timeout = c->workers.graceful_timeout,
                        .watchdog = c->workers.watchdog,
                        .max_concurrent = c->recycle.max_concurrent,
                        .memory_stop_first = c->recycle.memory_stop_first,
                },
                .slots = b->slots,
                .n_slots = s->n_slots,
                .workers = b->workers,
                .n_workers = n,
        };
        return 0;
}

static unsigned supervisor_recycles_in_flight(struct supervisor *s) {
        struct reconcile_view v;

        if (supervisor_build_view(s, now_monotonic(), &v) < 0)
                return 0;
        return reconcile_recycles_in_flight(&v);
}

static usec_t min_usec(usec_t a, usec_t b) {
        return a < b ? a : b;
}

unsigned supervisor_ready_workers(const struct supervisor *s) {
        unsigned ready = 0;

        for (unsigned i = 0; i < s->n_slots && i < s->target; i++)
                if (s->slots[i].active && s->slots[i].active->state == WORKER_READY)
                        ready++;
        return ready;
}

unsigned supervisor_slots_replacing(const struct supervisor *s) {
        unsigned n = 0;

        for (unsigned i = 0; i < s->n_slots && i < s->target; i++) {
                const struct slot *slot = &s->slots[i];
                if (!slot->recycle_pending || (slot->active && slot->active->state == WORKER_READY))
                        continue;
                for (const struct worker *w = s->workers; w; w = w->next)
                        if (w->slot == i && w->state == WORKER_STARTING && !w->failed) {
                                n++;
                                break;
                        }
        }
        return n;
}

static void supervisor_update_service(struct supervisor *s) {
        unsigned ready = supervisor_ready_workers(s), pending = 0;
        char status[256], *p = status;
        size_t left = sizeof status;
        int n;

        for (struct worker *w = s->workers; w; w = w->next)
                if (w->recycle_reason == RECYCLE_RELOAD)
                        pending++;

        if (ready >= s->target && !s->service_ready_sent) {
                s->service_ready_sent = true;
                service_ready(&s->service);
                log_info("service_ready", "workers=%u", ready);
        }
        if (s->reloading && pending == 0 && !s->template_next) {
                s->reloading = false;
                service_ready(&s->service);
                log_info("reload_done", "workers=%u", ready);
        }

        n = snprintf(p, left, "%u/%u workers ready", ready, s->target);
        p += n, left -= (size_t) n;
        bool first = true;
        for (unsigned r = RECYCLE_NONE + 1; r < _RECYCLE_REASON_MAX && left > 32; r++) {
                if (!s->recycles[r])
                        continue;
                n = snprintf(p, left, "%s%s=%" PRIu64, first ? "; recycles: " : " ", recycle_reason_to_string(r),
                             s->recycles[r]);
                if (n < 0 || (size_t) n >= left)
                        break;
                p += n, left -= (size_t) n;
                first = false;
        }
        service_status(&s->service, status);
}

static void supervisor_stop_worker(struct supervisor *s, struct worker *w, const struct reconcile_action *a,
                                   usec_t now) {
        const struct memward_config *c = s->config;

        switch (a->stop) {
        case RECONCILE_STOP_READY_TIMEOUT:
                log_warning("ready_timeout", "worker=%u pid=%d timeout=%" PRIu64 "ms", w->slot, (int) w->pid,
                            c->workers.ready_timeout / USEC_PER_MSEC);
                w->failed = true;
                worker_stop(w, SIGKILL, now, 0);
                w->killed = true;
                (void) worker_kill_group(w);
                break;
        case RECONCILE_STOP_GRACEFUL_TIMEOUT:
                if (w->killed)
                        break;
                log_warning("kill", "worker=%u pid=%d msg=\"did not stop within graceful_timeout\"", w->slot,
                            (int) w->pid);
                w->killed = true;
                (void) worker_kill_group(w);
                break;
        case RECONCILE_STOP_SCALE_DOWN:
                if (w->state == WORKER_STOPPING)
                        break;
                /* A slot removed is a recycle like any other: event=recycle, counted in
                 * memward_recycles_total and the history, once (a worker whose own recycle
                 * was counted already keeps it). */
                if (a->counts && !w->recycle_counted) {
                        worker_mark_recycle(w, RECYCLE_SCALE_DOWN, NULL, now);
                        supervisor_note_recycle(s, w, now);
                }
                log_info("stop", "worker=%u pid=%d reason=%s", w->slot, (int) w->pid,
                         recycle_reason_to_string(RECYCLE_SCALE_DOWN));
                worker_stop(w, c->workers.stop_signal, now, c->workers.graceful_timeout);
                break;
        case RECONCILE_STOP_FIRST: {
                /* Only once its replacement was spawned: when the spawn failed, the old
                 * worker keeps serving and the recycle is tried again. */
                struct worker *r = w->slot < s->n_slots ? s->slots[w->slot].replacement : NULL;
                if (!w->recycle_started || !r || w->state == WORKER_STOPPING)
                        break;
                log_info("stop", "worker=%u pid=%d reason=%s replaced_by=%d stop_first=yes", w->slot, (int) w->pid,
                         recycle_reason_to_string(w->recycle_reason), (int) r->pid);
                worker_stop(w, c->workers.stop_signal, now, c->workers.graceful_timeout);
                if (a->at_limit)
                        s->slots[w->slot].recycle_at_limit = true;
                break;
        }
        default:
                assert(false);
        }
}

/* Carries out a plan in order. A spawn may begin a shutdown (the command cannot be
 * executed): from then on only the SIGKILLs the plan has left are sent. */
static void supervisor_carry_out(struct supervisor *s, const struct reconcile_plan *p, usec_t now) {
        for (size_t i = 0; i < p->n_actions; i++) {
                const struct reconcile_action *a = &p->actions[i];
                struct worker *w = a->worker != RECONCILE_NONE ? s->reconcile.map[a->worker] : NULL;

                if (s->shutting_down && !(a->kind == RECONCILE_STOP && a->stop == RECONCILE_STOP_GRACEFUL_TIMEOUT))
                        continue;
                switch (a->kind) {
                case RECONCILE_READY:
                        supervisor_worker_ready(s, w, now);
                        break;
                case RECONCILE_MARK_RECYCLE:
                        worker_mark_recycle(w, a->reason, NULL, now);
                        w->limit_expected_at = a->limit_expected_at;
                        break;
                case RECONCILE_STOP:
                        supervisor_stop_worker(s, w, a, now);
                        break;
                case RECONCILE_SPAWN:
                        (void) supervisor_spawn(s, a->slot, false, now);
                        break;
                case RECONCILE_START_RECYCLE:
                        supervisor_start_recycle(s, w, now);
                        break;
                case RECONCILE_CANCEL_RECYCLE:
                        supervisor_cancel_recycle(s, w, now);
                        break;
                default:
                        assert(false);
                }
        }
}

/* Builds the view, plans (reconcile.h) and carries the plan out; again while a plan had
 * something to do, since what it did (a spawn that failed and left a backoff, a worker
 * ready at once) is news to the next one. The last, empty, plan says when to look again. */
static void supervisor_reconcile(struct supervisor *s) {
        usec_t now = now_monotonic();
        usec_t next = USEC_INFINITY;

        /* Judged at a failure, acted on here: again only if still no worker is ready. */
        unsigned ready = s->start_limit.hit ? supervisor_ready_workers(s) : 0;
        if (s->start_limit.hit && ready > 0)
                supervisor_start_limit_forget(s);
        if (s->start_limit.hit && !s->shutting_down) {
                const struct memward_config *c = s->config;
                char interval[FORMAT_DURATION_MAX];
                log_error("start_limit_hit", "failures=%u within=%" PRIu64 "ms burst=%u interval=%s ready_workers=%u "
                          "exit_code=%d msg=\"workers keep failing to start and none serves: giving up "
                          "(workers.start_limit_burst, workers.start_limit_interval)\"",
                          s->start_limit.failures, s->start_limit.span / USEC_PER_MSEC, c->workers.start_limit_burst,
                          format_duration(interval, sizeof interval, c->workers.start_limit_interval), ready,
                          EXIT_START_LIMIT);
                /* Fast: nothing serves, so nothing is to drain. */
                supervisor_begin_shutdown(s, true, EXIT_START_LIMIT);
        }

        for (unsigned round = 0;; round++) {
                struct reconcile_view v;
                int r = supervisor_build_view(s, now, &v);
                if (r >= 0)
                        r = reconcile_plan(&v, &s->reconcile.plan);
                if (r < 0) {
                        log_error_errno(r, "reconcile_failed", "retry_in=%" PRIu64 "ms",
                                        RECONCILE_RETRY_USEC / USEC_PER_MSEC);
                        next = now + RECONCILE_RETRY_USEC;
                        break;
                }
                if (s->reconcile.plan.n_actions == 0) {
                        next = s->reconcile.plan.next;
                        break;
                }
                if (round == RECONCILE_ROUNDS_MAX) {
                        next = now + RECONCILE_ROUNDS_PAUSE_USEC;
                        break;
                }
                supervisor_carry_out(s, &s->reconcile.plan, now);
        }

        if (!s->shutting_down)
                supervisor_update_service(s);
        /* A shutdown may also begin inside this pass (the command cannot be executed). */
        if (s->shutting_down && !s->workers)
                s->done = true;
        next = min_usec(next, service_watchdog(&s->service, now));
        int r = timerfd_arm_at(s->timer_source.fd, next);
        if (r < 0)
                log_error_errno(r, "timer_failed", NULL);
}

/* ---- event handlers ------------------------------------------------------ */

static bool supervisor_spawn_in_flight(const struct supervisor *s);

void supervisor_reaped_unknown(struct supervisor *s, pid_t pid, int status) {
        /* An orphan killed by a sweep, or a child memward had at start, is no worker of a
         * template: neither is remembered, lest a burst of them evicts from the ring the
         * exit of a worker whose SPAWNED is still to be read. */
        bool killed = orphan_set_remove(&s->orphans_dying, pid);
        bool inherited = orphan_set_remove(&s->inherited, pid);
        /* And only while a SPAWN is in flight: a worker whose SPAWNED is unread dies then,
         * and the children of a recycled worker's process group (a pool of 32 or more)
         * reaped at another time must not evict it either. */
        if (!killed && !inherited && s->template && supervisor_spawn_in_flight(s))
                reaped_ring_push(&s->reaped, pid, status);
        /* An orphan's own children come to us as it dies. */
        s->orphan_sweep_due = true;
        log_debug("reaped", "pid=%d", (int) pid);
}

static int supervisor_receive_notify(struct supervisor *s, unsigned max, usec_t now);

static void supervisor_reap(struct supervisor *s) {
        usec_t now = now_monotonic();

        /* What the workers said before they exited is read first: a worker's last
         * X_REQUESTS is queued before its exit, hence before its SIGCHLD, but the loop may
         * well read the signal first, and a worker that stopped itself at its request
         * limit is judged by its count (policy_exit_at_request_limit()). Read to the end:
         * the socket holds at most net.unix.max_dgram_qlen datagrams (512 by default),
         * few next to NOTIFY_DRAIN_MAX. A failed receive is on_notify's to report. */
        (void) supervisor_receive_notify(s, NOTIFY_DRAIN_MAX, now);

        for (;;) {
                int status;
                pid_t pid = waitpid(-1, &status, WNOHANG);
                if (pid <= 0)
                        break;
                struct worker *w = worker_by_pid(s, pid);
                struct template_process *t;
                if (w) {
                        supervisor_worker_exited(s, w, status, now);
                        /* What it started outside its process group is ours now. */
                        s->orphan_sweep_due = true;
                } else if ((t = template_by_pid(s, pid)))
                        supervisor_template_reaped(s, t, status, now);
                else if ((t = template_by_placer(s, pid))) {
                        struct template_decision d;
                        (void) helper_pids_remove(&s->helpers, pid);
                        template_process_placer_exited(t, status, now, &d);
                        supervisor_template_act(s, t, &d, false, 0, now);
                } else if (helper_pids_remove(&s->helpers, pid)) {
                        /* A placer of a spawn given up on: its leaf was removed (empty, a
                         * write into it then fails) or is being killed; nothing to do. */
                        log_debug("helper_reaped", "pid=%d kind=placer status=%d", (int) pid, status);
                } else
                        supervisor_reaped_unknown(s, pid, status);
        }
        if (s->orphan_sweep_due)
                supervisor_sweep_orphans(s, "reaped");
}

static void supervisor_log_status(struct supervisor *s) {
        usec_t now = now_monotonic();
        char status[LOG_QUOTE_MAX];

        log_info("status", "target=%u workers=%u recycles_in_flight=%u shutting_down=%s", s->target, s->n_workers,
                 supervisor_recycles_in_flight(s), s->shutting_down ? "yes" : "no");
        for (struct template_process *t = s->template; t; t = t == s->template ? s->template_next : NULL)
                log_info("status", "template=%llu pid=%d phase=%s failures=%u runtime=%s", t->generation, (int) t->pid,
                         template_process_phase(t), t->state.failures, log_quote(status, sizeof status, t->runtime));
        for (struct worker *w = s->workers; w; w = w->next)
                log_info("status", "worker=%u pid=%d generation=%llu state=%s age=%" PRIu64 "s requests=%" PRIu64
                         " limit=%" PRIu64 " recycle=%s worker_status=%s",
                         w->slot, (int) w->pid, w->generation, worker_state_to_string(w->state),
                         age_seconds(now, w->spawned_at), w->requests, w->request_limit,
                         recycle_reason_to_string(w->recycle_reason), log_quote(status, sizeof status, w->status));
}

static int supervisor_grow_slots(struct supervisor *s, unsigned n) {
        if (n <= s->n_slots)
                return 0;
        struct slot *slots = realloc(s->slots, n * sizeof *slots);
        if (!slots)
                return -ENOMEM;
        memset(slots + s->n_slots, 0, (n - s->n_slots) * sizeof *slots);
        s->slots = slots;
        s->n_slots = n;
        return 0;
}

static bool unix_socket_access_equal(const struct unix_socket_access *a, const struct unix_socket_access *b) {
        return a->mode == b->mode && a->uid == b->uid && a->gid == b->gid;
}

/* Whether workers can run as workers.user/group says: 1 they switch, 0 nothing to switch,
 * -EPERM (logged) when memward lacks the capabilities. Checked at start-up and on every
 * reload, not by --check-config, which may run as another user than the service. */
static int supervisor_check_credentials(const struct memward_config *c) {
        char user[LOG_QUOTE_MAX], group[LOG_QUOTE_MAX];
        int r = spawn_credentials_check(&c->workers.credentials);

        if (r > 0)
                log_info("workers_credentials", "user=%s uid=%u gid=%u groups=%zu",
                         log_quote(user, sizeof user, c->workers.user ?: ""), (unsigned) c->workers.credentials.uid,
                         (unsigned) c->workers.credentials.gid, c->workers.credentials.n_groups);
        if (r < 0)
                return log_error_errno(r, "user_switch_not_permitted",
                                       "user=%s group=%s uid=%u msg=\"workers.user/workers.group name other ids "
                                       "than memward's, and switching needs root (CAP_SETUID, CAP_SETGID)\"",
                                       log_quote(user, sizeof user, c->workers.user ?: ""),
                                       log_quote(group, sizeof group, c->workers.group ?: ""), (unsigned) geteuid());
        return r;
}

/* One line for every failed reload, and the record /metrics and /status show. why names
 * the step that refused it. A file with errors, or one that cannot be read, was reported
 * by the loader, error by error with locations: an errno here would only repeat
 * "Invalid argument". */
static void supervisor_reload_failed(struct supervisor *s, int r, const char *why) {
        s->reload.last_successful = false;
        s->reload.failures++;
        snprintf(s->reload.last_error, sizeof s->reload.last_error, "%s", why);
        if (streq(why, "config") || streq(why, "read"))
                log_error("reload_failed", "reason=%s msg=\"%s (above); keeping the running configuration\"", why,
                          streq(why, "config") ? "the file has errors" : "the file cannot be read");
        else
                log_error_errno(r, "reload_failed", "reason=%s msg=\"keeping the running configuration\"", why);
}

static void supervisor_reload_succeeded(struct supervisor *s) {
        s->reload.last_successful = true;
        s->reload.last_success = s->reload.last_attempt;
        s->reload.successes++;
        supervisor_start_limit_forget(s);
        s->reload.last_error[0] = '\0';
}

static void supervisor_reload(struct supervisor *s) {
        struct memward_config *c = NULL;
        int r;

        char file[LOG_QUOTE_MAX];
        s->reload.last_attempt = now_realtime();
        log_info("reload", "file=%s", s->config->path ? log_quote(file, sizeof file, s->config->path) : "none");
        r = s->reload_config(s->reload_userdata, &c);
        if (r < 0) {
                /* -EINVAL: the file has errors, each reported; anything else: it could not be read. */
                supervisor_reload_failed(s, r, r == -EINVAL ? "config" : "read");
                return;
        }

        if (c->workers.mode != s->config->workers.mode) {
                log_warning("reload_mode_unchanged", "mode=%s msg=\"workers.mode changes only on restart\"",
                            workers_mode_to_string(s->config->workers.mode));
                c->workers.mode = s->config->workers.mode;
        }

        /* Sockets stay open across reloads so no queued connection is dropped; a changed
         * listen: section takes effect at the next restart. */
        bool listen_changed = c->n_listen != s->config->n_listen;
        for (size_t i = 0; !listen_changed && i < c->n_listen; i++)
                listen_changed = strcmp(c->listen[i].address, s->config->listen[i].address) != 0 ||
                                 !unix_socket_access_equal(&c->listen[i].access, &s->config->listen[i].access);
        if (listen_changed && !s->listen.inherited)
                log_warning("reload_listen_unchanged", "msg=\"listen addresses change only on restart\"");
        if (!streq(c->metrics.listen ?: "", s->config->metrics.listen ?: "") ||
            c->metrics.max_connections != s->config->metrics.max_connections ||
            c->metrics.timeout != s->config->metrics.timeout ||
            !unix_socket_access_equal(&c->metrics.access, &s->config->metrics.access))
                log_warning("reload_metrics_unchanged", "msg=\"the metrics: section changes only on restart\"");

        int can_switch = supervisor_check_credentials(c);
        if (can_switch < 0) {
                config_free(c);
                supervisor_reload_failed(s, can_switch, "user");
                return;
        }

        r = supervisor_check_fd_limit(s, c, c->workers.count);
        if (r >= 0)
                r = supervisor_grow_slots(s, c->workers.count);
        if (r < 0) {
                config_free(c);
                supervisor_reload_failed(s, r, r == -EMFILE ? "fd_limit" : "workers");
                return;
        }

        /* Before anything is switched over: a percentage that cannot be resolved now
         * refuses the reload and leaves the running limits as they are. */
        const char *unresolved = NULL;
        bool limit_was_known = s->monitor.group_limit_error == 0;
        r = monitor_resolve_limits(&s->monitor, c, &unresolved);
        if (r < 0 || (limit_was_known && s->monitor.group_limit_error < 0))
                log_group_limit_unknown(s, r < 0 ? unresolved : NULL);
        if (r < 0) {
                config_free(c);
                supervisor_reload_failed(s, r, "group_limit");
                return;
        }

        char changed[512];
        int n_changed = config_changed_keys(s->config, c, changed, sizeof changed);
        struct memward_config *old = s->config;
        s->config = c;
        r = supervisor_build_env(s);
        if (r < 0) {
                s->config = old;
                (void) monitor_resolve_limits(&s->monitor, old, NULL);
                config_free(c);
                supervisor_reload_failed(s, r, "environment");
                return;
        }
        config_free(old);
        s->switch_credentials = can_switch > 0;
        /* Template mode: the reload succeeds once its template is READY. */
        if (!s->template)
                supervisor_reload_succeeded(s);
        log_info("reload_applied", "changed=%s%s", n_changed == 0 ? "none" : changed,
                 n_changed == -ENOMEM ? " msg=\"cannot tell which keys changed\"" : "");
        r = supervisor_arm_sampling(s);
        if (r < 0)
                log_error_errno(r, "timer_failed", "timer=sample");
        (void) supervisor_watch_pressure(s);
        log_set_max_level(c->log.level);
        log_set_format(c->log.format);
        s->target = c->workers.count;

        service_reloading(&s->service);
        s->reloading = true;

        usec_t now = now_monotonic();
        if (s->template) {
                /* The workers roll once a template of the new configuration is READY
                 * (supervisor_template_promote); until then the old one serves. */
                supervisor_template_reload(s, now);
                return;
        }
        supervisor_roll_workers(s, now);
}

/* Marks every worker for a RECYCLE_RELOAD: each is replaced under the usual recycle
 * rules, replacement first, max_concurrent at a time. A worker whose recycle was logged
 * and counted already (its replacement was in flight, or could not be spawned) keeps
 * that count: it is still one worker replaced once, now by one of the new
 * configuration. Counted again, one max_requests recycle showed up twice: as reload,
 * or, while the reload waited its turn, as max_requests at the worker's own exit at its
 * limit. */
static void supervisor_roll_workers(struct supervisor *s, usec_t now) {
        const struct memward_config *c = s->config;

        for (unsigned i = 0; i < s->n_slots; i++) {
                struct worker *w = s->slots[i].active;
                if (w && !w->recycle_started)
                        worker_mark_recycle(w, RECYCLE_RELOAD, NULL, now);
                /* A replacement started from the old config is stopped; a new one follows. */
                struct worker *r2 = s->slots[i].replacement;
                if (r2) {
                        r2->failed = false;
                        log_info("stop", "worker=%u pid=%d reason=reload msg=\"replacement from the old configuration\"",
                                 r2->slot, (int) r2->pid);
                        worker_stop(r2, c->workers.stop_signal, now, c->workers.graceful_timeout);
                        s->slots[i].replacement = NULL;
                        if (w) {
                                w->recycle_started = false;
                                worker_mark_recycle(w, RECYCLE_RELOAD, NULL, now);
                        }
                }
        }
        /* STARTING workers from the old config that are not replacements: let them finish
         * starting; they are recycled as soon as they are ready. */
        for (struct worker *w = s->workers; w; w = w->next)
                if (w->state == WORKER_STARTING && w->slot < s->n_slots && s->slots[w->slot].active == w)
                        worker_mark_recycle(w, RECYCLE_RELOAD, NULL, now);
}

static int on_signal(struct event_source *src, uint32_t revents) {
        struct supervisor *s = src->userdata;
        struct signalfd_siginfo si;
        (void) revents;

        for (;;) {
                ssize_t n = read(src->fd, &si, sizeof si);
                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                break;
                        return negative_errno();
                }
                if (n != sizeof si)
                        break;

                switch (si.ssi_signo) {
                case SIGCHLD:
                        supervisor_reap(s);
                        break;
                case SIGTERM:
                case SIGINT:
                        log_info("signal", "signal=%s", signal_to_string((int) si.ssi_signo));
                        supervisor_begin_shutdown(s, false, 0);
                        break;
                case SIGQUIT:
                        log_info("signal", "signal=SIGQUIT");
                        supervisor_begin_shutdown(s, true, 0);
                        break;
                case SIGHUP:
                        if (!s->shutting_down)
                                supervisor_reload(s);
                        break;
                case SIGTTIN:
                        if (s->shutting_down || s->target >= CONFIG_WORKERS_MAX)
                                break;
                        if (supervisor_fds_needed(s, s->config, s->target + 1) > s->fd_limit) {
                                log_warning("scale_refused", "signal=SIGTTIN workers=%u fd_limit=%u", s->target,
                                            s->fd_limit);
                                break;
                        }
                        if (supervisor_grow_slots(s, s->target + 1) < 0)
                                break;
                        s->target++;
                        log_info("scale", "signal=SIGTTIN workers=%u", s->target);
                        break;
                case SIGTTOU:
                        if (s->shutting_down)
                                break;
                        if (s->target <= 1) {
                                log_info("scale", "signal=SIGTTOU workers=%u msg=\"the last worker stays\"", s->target);
                                break;
                        }
                        s->target--;
                        log_info("scale", "signal=SIGTTOU workers=%u", s->target);
                        break;
                case SIGUSR1:
                        /* Conventionally "reopen your log files": every worker gets it. A
                         * worker still starting may not have its handler yet (Python while it
                         * imports), and SIGUSR1's default action kills: it gets it once ready. */
                        for (struct template_process *t = s->template; t;
                             t = t == s->template ? s->template_next : NULL)
                                template_process_forward_usr1(t);
                        for (struct worker *w = s->workers; w; w = w->next)
                                if (w->state == WORKER_STARTING)
                                        w->usr1_pending = true;
                                else if (w->ready_at > 0) /* not one stopped before it was ever ready */
                                        (void) worker_signal(w, SIGUSR1);
                        break;
                case SIGUSR2:
                        supervisor_log_status(s);
                        break;
                default:
                        break;
                }
        }
        /* The loop re-reads the signalfd (level-triggered) if more arrived meanwhile. */
        supervisor_reap(s);
        supervisor_templates_pass(s);
        supervisor_reconcile(s);
        return 0;
}

static int on_timer(struct event_source *src, uint32_t revents) {
        struct supervisor *s = src->userdata;
        uint64_t expirations;
        (void) revents;

        (void) !read(src->fd, &expirations, sizeof expirations);
        supervisor_reconcile(s);
        return 0;
}

/* ---- memory ------------------------------------------------------------ */

bool supervisor_group_recycle(struct supervisor *s, enum recycle_reason reason, usec_t now, bool quiet) {
        struct policy_victim best = {};
        struct policy_memory_figure victim_figure = {};
        struct worker *victim = NULL;

        if (!policy_cooldown_passed(now, s->last_group_recycle, s->config->pressure.cooldown))
                return false;

        /* Every worker: the list is newest first and holds replacements and stopping
         * workers too, so the oldest — usually the largest — come last. */
        for (struct worker *w = s->workers; w; w = w->next) {
                struct policy_candidate c = {
                        .eligible = w->state == WORKER_READY && w->recycle_reason == RECYCLE_NONE &&
                                    slot_wanted(s, w->slot) && s->slots[w->slot].active == w,
                        .spawned_at = w->spawned_at,
                };
                struct policy_memory_verdict v = {};
                if (c.eligible)
                        v = worker_judge_memory(s, w, now);
                c.has_floor = v.figure.source != POLICY_FLOOR_NONE;
                c.floor = v.figure.floor;
                if (policy_victim_offer(&best, &c, s->config->pressure.min_retained)) {
                        victim = w;
                        victim_figure = v.figure;
                }
        }
        if (!victim) {
                if (quiet)
                        return false;
                log_info("group_recycle_skipped", "reason=%s min_retained=%" PRIu64
                         " msg=\"no ready worker with a floor at or above min_retained\"",
                         recycle_reason_to_string(reason), s->config->pressure.min_retained);
                return false;
        }
        worker_mark_recycle(victim, reason, &victim_figure, now);
        s->last_group_recycle = now;
        return true;
}

/* A reload rolls in template mode from the moment its template starts until the last
 * worker of the old one is replaced. Meanwhile the group holds two templates and both
 * generations' workers for a while, and a group_high victim would be forked from the old
 * template and rolled again moments later: the roll replaces every worker anyway. */
static bool supervisor_template_reload_rolling(const struct supervisor *s) {
        if (!s->template)
                return false;
        if (s->template_next)
                return true;
        for (const struct worker *w = s->workers; w; w = w->next)
                if (w->recycle_reason == RECYCLE_RELOAD && w->state != WORKER_STOPPING)
                        return true;
        return false;
}

/* quiet: called at every request end, where "no victim" would be logged thousands of
 * times a second; the tick still says it. */
bool supervisor_check_group_high(struct supervisor *s, usec_t now, bool quiet) {
        uint64_t workers = supervisor_workers_total(s), templates = supervisor_templates_total(s);
        uint64_t total = add_saturating(workers, templates);

        s->monitor.workers_total = workers;
        s->monitor.templates_total = templates;
        bool rolling = supervisor_template_reload_rolling(s);
        if (!rolling)
                s->group_high_roll_noted = false;
        if (!policy_group_over_high(total, 0, s->monitor.group_high))
                return false;
        if (rolling) {
                /* Once per roll: the tick would say it every sample_interval. */
                if (!quiet && !s->group_high_roll_noted) {
                        s->group_high_roll_noted = true;
                        log_info("group_high_deferred", "total=%" PRIu64 " workers=%" PRIu64 " template=%" PRIu64
                                 " group_high=%" PRIu64 " msg=\"a reload is rolling every worker onto a new "
                                 "template: no group_high victim until it is done\"",
                                 total, workers, templates, s->monitor.group_high);
                }
                return false;
        }
        if (!supervisor_group_recycle(s, RECYCLE_GROUP_HIGH, now, quiet))
                return false;
        log_info("group_high", "total=%" PRIu64 " workers=%" PRIu64 " template=%" PRIu64 " group_high=%" PRIu64,
                 total, workers, templates, s->monitor.group_high);
        return true;
}

/* The worker's leaf was removed behind our back (an admin moved the worker elsewhere
 * and rmdir'ed the leaf, or killed it first): memory.worker_max no longer holds it and
 * its memory can only be read through /proc. Stop watching the leaf — its memory.events
 * fd reports EPOLLERR for good, level-triggered — and replace the worker, so the slot
 * runs in a leaf of ours again. */
static void supervisor_leaf_lost(struct supervisor *s, struct worker *w) {
        char leaf[sizeof w->mem.leaf.name];

        if (w->mem.leaf.dir_fd < 0)
                return;
        snprintf(leaf, sizeof leaf, "%s", w->mem.leaf.name);
        if (w->mem.events_source.fd >= 0)
                (void) event_loop_remove(s->loop, &w->mem.events_source);
        w->mem.events_source.fd = -1;
        monitor_worker_forget_leaf(&s->monitor, w);

        bool replace = w->state != WORKER_STOPPING && w->recycle_reason == RECYCLE_NONE && !s->shutting_down;
        if (replace)
                worker_mark_recycle(w, RECYCLE_CGROUP_LOST, NULL, now_monotonic());
        log_warning("cgroup_leaf_lost", "worker=%u pid=%d cgroup=%s state=%s msg=\"%s\"", w->slot, (int) w->pid, leaf,
                    worker_state_to_string(w->state),
                    replace ? "removed by someone else; accounting through /proc until it is replaced"
                            : "removed by someone else");
}

/* Workers forked from the template of this generation that still have a process. */
static unsigned supervisor_workers_of_template(const struct supervisor *s, unsigned long long generation) {
        unsigned n = 0;
        for (const struct worker *w = s->workers; w; w = w->next)
                if (w->template_generation == generation && w->pid > 0)
                        n++;
        return n;
}

void supervisor_template_leaves_upkeep(struct supervisor *s) {
        for (struct template_leaf_held **pp = &s->template_leaves_held; *pp;) {
                struct template_leaf_held *h = *pp;
                unsigned workers = supervisor_workers_of_template(s, h->generation);
                int r = workers > 0 ? template_leaf_held_sample(h) : 0;
                if (workers > 0 && r != -ENODEV && r != -ENOENT) {
                        pp = &h->next;
                        continue;
                }
                char name[sizeof h->leaf.name];
                unsigned long long generation = h->generation;
                uint64_t current = h->mem.current;
                snprintf(name, sizeof name, "%s", h->leaf.name);
                struct template_leaf_held *next = h->next;
                if (template_leaf_held_release(&s->monitor.cgroup, h) < 0) {
                        pp = &h->next; /* a process still exiting in it: next tick */
                        continue;
                }
                *pp = next;
                log_info("template_leaf_released", "generation=%llu cgroup=%s current=%" PRIu64 "%s", generation,
                         name, current, workers > 0 ? " msg=\"removed by someone else\"" : "");
        }
}

static void supervisor_sample(struct supervisor *s) {
        const struct memward_config *c = s->config;
        usec_t now = now_monotonic();

        (void) monitor_read_pressure(&s->monitor);
        /* For memward_group_memory_bytes: read here, so a scrape never touches cgroup files. */
        (void) cgroup_group_usage(&s->monitor.cgroup, s->monitor.proc_root, &s->monitor.group_usage);
        monitor_retry_removals(&s->monitor);

        bool need_tree = c->memory.metric == MEMORY_METRIC_RSS || c->memory.metric == MEMORY_METRIC_PSS;
        for (struct template_process *t = s->template; t; t = t == s->template ? s->template_next : NULL)
                if (t->pid > 0)
                        (void) template_process_sample(t, s->monitor.proc_root, need_tree);
        for (struct template_process *t = s->templates_retired; t; t = t->next)
                if (t->pid > 0)
                        (void) template_process_sample(t, s->monitor.proc_root, need_tree);
        supervisor_template_leaves_upkeep(s);
        for (struct worker *w = s->workers; w; w = w->next) {
                if (w->state == WORKER_STOPPING || w->pid <= 0)
                        continue;
                int r = monitor_worker_sample(&s->monitor, w, c, now);
                if (r == -ENODEV) {
                        supervisor_leaf_lost(s, w);
                        r = monitor_worker_sample(&s->monitor, w, c, now);
                }
                if (r < 0) {
                        /* Alive but unreadable (no smaps_rollup before 4.14, EACCES for a worker
                         * that is not dumpable): no memory rule can judge it, which must not
                         * go unsaid. Once per worker: the cause rarely goes away. */
                        if (r != -ESRCH && !w->mem.sample_error_logged) {
                                char path[LOG_QUOTE_MAX];
                                w->mem.sample_error_logged = true;
                                log_warning_errno(r, "sample_failed", "worker=%u pid=%d path=%s msg=\"cannot read the "
                                                  "worker's memory: no memory rule judges it\"",
                                                  w->slot, (int) w->pid,
                                                  log_quote(path, sizeof path, s->monitor.sample_error_path));
                        }
                        continue;
                }
                w->mem.latest = w->mem.metric;
                supervisor_judge_worker(s, w, now);
        }

        if (s->shutting_down)
                return;
        (void) supervisor_check_group_high(s, now, false);

        /* No trigger could be registered: judge the same threshold from avg10. */
        if (s->monitor.psi_polling && s->monitor.has_psi) {
                const struct psi_line *l = c->pressure.kind == PSI_FULL ? &s->monitor.psi.full : &s->monitor.psi.some;
                struct policy_pressure_verdict p = policy_judge_avg10(l->avg10, c->pressure.stall, c->pressure.window);
                if (p.over) {
                        s->pressure_events++;
                        if (supervisor_group_recycle(s, RECYCLE_PRESSURE, now, false))
                                log_info("pressure", "source=avg10 avg10=%.2f threshold=%.2f", l->avg10, p.threshold);
                }
        }
}

static int on_sample(struct event_source *src, uint32_t revents) {
        struct supervisor *s = src->userdata;
        uint64_t expirations;
        (void) revents;

        (void) !read(src->fd, &expirations, sizeof expirations);
        supervisor_retry_pressure(s);
        supervisor_sample(s);
        supervisor_sweep_orphans(s, "tick");
        supervisor_templates_pass(s);
        supervisor_reconcile(s);
        return 0;
}

static int on_psi(struct event_source *src, uint32_t revents) {
        struct supervisor *s = src->userdata;
        usec_t now = now_monotonic();
        char path[LOG_QUOTE_MAX];

        if (revents & EPOLLERR) {
                /* The pressure file went away under the trigger (cgroup.pressure set to 0).
                 * The fd stays in error, level-triggered, even once the file is back: drop
                 * it, or this handler spins. Until a new trigger is registered (from the
                 * sample tick), the avg10 fallback judges pressure whenever it can read it. */
                (void) event_loop_remove(s->loop, src);
                src->fd = -1;
                monitor_pressure_lost(&s->monitor, now);
                log_warning("pressure_trigger_lost", "path=%s msg=\"the pressure file went away; registering the "
                            "trigger again once it is back\"",
                            log_quote(path, sizeof path, s->monitor.cgroup.pressure_path));
                supervisor_retry_pressure(s);
                return 0;
        }
        if (!(revents & EPOLLPRI))
                return 0;

        s->pressure_events++;
        if (s->shutting_down)
                return 0;
        /* Fresh floors decide the victim: the last tick may be a while ago if memward
         * itself was slowed down by the same squeeze. */
        supervisor_sample(s);
        now = now_monotonic();
        if (supervisor_group_recycle(s, RECYCLE_PRESSURE, now, false))
                log_info("pressure", "source=trigger some_avg10=%.2f full_avg10=%.2f", s->monitor.psi.some.avg10,
                         s->monitor.psi.full.avg10);
        supervisor_reconcile(s);
        return 0;
}

static int supervisor_add_pressure_source(struct supervisor *s, int fd) {
        s->psi_source = (struct event_source) {
                .fd = fd,
                .events = EPOLLPRI,
                .handler = on_psi,
                .userdata = s,
                .name = "pressure",
        };
        int r = event_loop_add(s->loop, &s->psi_source);
        if (r < 0)
                s->psi_source.fd = -1;
        return r;
}

/* Registers a lost trigger again once its retry is due; quiet while the file is
 * still missing, since the loss was logged. */
static void supervisor_retry_pressure(struct supervisor *s) {
        char path[LOG_QUOTE_MAX];
        usec_t now = now_monotonic();
        unsigned attempts = s->monitor.psi_retries + 1;

        int fd = monitor_pressure_retry(&s->monitor, s->config, now);
        if (fd == -EAGAIN || fd == 0)
                return;
        if (fd < 0) {
                log_debug_errno(fd, "pressure_trigger_retry", "path=%s attempts=%u next_in=%" PRIu64 "ms",
                                log_quote(path, sizeof path, s->monitor.cgroup.pressure_path), attempts,
                                (s->monitor.psi_retry_at - now) / USEC_PER_MSEC);
                return;
        }
        int r = supervisor_add_pressure_source(s, fd);
        if (r < 0) {
                log_warning_errno(r, "watch_failed", "file=%s",
                                  log_quote(path, sizeof path, s->monitor.cgroup.pressure_path));
                monitor_pressure_lost(&s->monitor, now);
                s->monitor.psi_retry_at = now + PSI_RETRY_MAX_USEC;
                return;
        }
        log_info("pressure_trigger_restored", "path=%s lost_for=%" PRIu64 "ms attempts=%u",
                 log_quote(path, sizeof path, s->monitor.cgroup.pressure_path),
                 (now - s->monitor.psi_lost_at) / USEC_PER_MSEC, attempts);
}

static int supervisor_watch_pressure(struct supervisor *s) {
        const struct memward_config *c = s->config;
        char want[FORMAT_DURATION_MAX], got[FORMAT_DURATION_MAX], path[LOG_QUOTE_MAX];

        if (s->psi_source.fd >= 0)
                (void) event_loop_remove(s->loop, &s->psi_source);
        s->psi_source.fd = -1;

        int fd = monitor_open_pressure(&s->monitor, c);
        if (fd == 0)
                return 0;
        if (fd < 0) {
                log_warning_errno(fd, "pressure_polling", "path=%s msg=\"PSI triggers unavailable; comparing avg10 "
                                  "with the trigger threshold on every sample tick\"",
                                  log_quote(path, sizeof path, s->monitor.cgroup.pressure_path));
                return 0;
        }
        if (s->monitor.psi_window != c->pressure.window) {
                char stall[FORMAT_DURATION_MAX];
                log_notice("pressure_window_rounded", "requested=%s used=%s stall=%s msg=\"unprivileged PSI triggers "
                           "need a window that is a multiple of 2s; the stall is scaled to keep its share\"",
                           format_duration(want, sizeof want, c->pressure.window),
                           format_duration(got, sizeof got, s->monitor.psi_window),
                           format_duration(stall, sizeof stall, s->monitor.psi_stall));
        }
        int r = supervisor_add_pressure_source(s, fd);
        if (r < 0)
                return r;
        log_info("pressure_trigger", "path=%s kind=%s stall=%s window=%s",
                 log_quote(path, sizeof path, s->monitor.cgroup.pressure_path),
                 c->pressure.kind == PSI_FULL ? "full" : "some",
                 format_duration(want, sizeof want, s->monitor.psi_stall),
                 format_duration(got, sizeof got, s->monitor.psi_window));
        return 0;
}

static int on_worker_memory_events(struct event_source *src, uint32_t revents) {
        struct supervisor *s = src->userdata;
        struct worker *w = NULL;

        for (struct worker *i = s->workers; i; i = i->next)
                if (&i->mem.events_source == src)
                        w = i;
        if (!w)
                return 0;
        (void) revents; /* kernfs flags every change EPOLLERR|EPOLLPRI; only the read tells */
        int r = monitor_worker_events(&s->monitor, w);
        if (r == -ENODEV) {
                /* Removed: the fd would stay ready, level-triggered, for good. */
                supervisor_leaf_lost(s, w);
                supervisor_reconcile(s);
                return 0;
        }
        /* Said as it happens: a helper's kill leaves the worker running, and its exit
         * later is no OOM kill (policy_exit_is_oom). */
        if (r > 0)
                log_warning("oom_kill", "worker=%u pid=%d oom_kill=%" PRIu64 " max=%" PRIu64
                            " msg=\"a process in the worker's cgroup was OOM-killed\"",
                            w->slot, (int) w->pid, w->mem.events.oom_kill, w->mem.events.max);
        return 0;
}

static int supervisor_arm_sampling(struct supervisor *s) {
        struct itimerspec its = {};
        usec_t i = s->config->memory.sample_interval;

        its.it_interval.tv_sec = (time_t) (i / USEC_PER_SEC);
        its.it_interval.tv_nsec = (long) ((i % USEC_PER_SEC) * NSEC_PER_USEC);
        its.it_value = its.it_interval;
        if (timerfd_settime(s->sample_source.fd, 0, &its, NULL) < 0)
                return negative_errno();
        return 0;
}

/* A request just ended and none is in flight: what the worker holds now is what it
 * keeps. Judged at once, not at the next sample tick, because every second a worker
 * sits on a heavy request's leftovers costs its whole size in mean memory. */
static void supervisor_request_boundary(struct supervisor *s, struct worker *w, usec_t now) {
        const struct memward_config *c = s->config;
        enum memory_reading from;
        uint64_t value, metric;

        /* Readings go on while a recycle waits its turn: it is judged again when it comes. */
        if (c->memory.retained_requests == 0 || w->state != WORKER_READY || w->recycle_started || s->shutting_down)
                return;
        int r = monitor_worker_boundary_read(&s->monitor, w, c, &value, &from, &metric);
        if (r < 0) {
                /* retained_requests cannot judge this worker: say so, once. */
                if (r != -ESRCH && !w->mem.boundary_error_logged) {
                        w->mem.boundary_error_logged = true;
                        log_warning_errno(r, "boundary_read_failed", "worker=%u pid=%d msg=\"cannot read the worker's "
                                          "memory at request end\"", w->slot, (int) w->pid);
                }
                return;
        }
        w->mem.last_boundary = now;
        w->mem.last_boundary_value = value;
        w->mem.boundary_from = from;
        boundary_floor_add(&w->mem.boundary, value);

        /* Every memory rule, as the tick would judge it with this reading: retained and
         * growth alike, on the same floor. */
        supervisor_judge_worker(s, w, now);
        /* The budget too is judged the moment a request leaves memory behind, not a tick
         * later -- with the worker's figure in the unit the others' are in, the tick's: a
         * reading without one (statm for rss, pss or current) leaves the tick's. */
        if (r > 0) {
                w->mem.latest = metric;
                (void) supervisor_check_group_high(s, now, true);
        }
}

/* What a worker said, applied to its record. */
static void supervisor_apply_notify(struct supervisor *s, struct worker *w, const struct notify_message *m, usec_t now) {
        if (m->ready && s->config->workers.ready == READY_NOTIFY)
                supervisor_worker_ready(s, w, now);
        if (m->watchdog)
                w->last_watchdog = now;
        if (m->has_status)
                memcpy(w->status, m->status, sizeof w->status);
        if (m->has_requests) {
                w->requests = m->requests;
                policy_rate_update(&w->request_rate, now, m->requests);
                if (policy_boundary_accept(m->has_inflight, m->inflight, now, w->mem.last_boundary,
                                           s->config->memory.boundary_min_interval))
                        supervisor_request_boundary(s, w, now);
        }
        if (m->stopping)
                log_debug("worker_stopping", "worker=%u pid=%d", w->slot, (int) w->pid);
}

/* Keeps a datagram of an unknown sender for a SPAWNED that may name it soon: only while a
 * worker waits for its fork to be answered (or was just adopted), one record per sender
 * (its datagrams folded together), and only the newest NOTIFY_EARLY_MAX senders. Returns
 * true when kept. */
static bool supervisor_keep_early_notify(struct supervisor *s, pid_t pid, const struct notify_message *m, usec_t now) {
        bool waiting = false;
        for (struct worker *w = s->workers; w && !waiting; w = w->next)
                waiting = w->fork == WORKER_FORK_SENT;
        if (!waiting)
                return false;
        /* Expired ones out first, then the oldest when still full. */
        unsigned n = 0;
        for (unsigned i = 0; i < s->n_notify_early; i++)
                if (now - s->notify_early[i].at < NOTIFY_EARLY_USEC)
                        s->notify_early[n++] = s->notify_early[i];
        s->n_notify_early = n;
        /* A worker under load serves requests before its SPAWNED is read: at 1,000 requests/s
         * its READY=1 was followed by more X_REQUESTS datagrams than there are records, and
         * dropping the oldest dropped the READY=1: never ready, the slot's recycles stuck. */
        for (unsigned i = 0; i < n; i++)
                if (s->notify_early[i].pid == pid) {
                        /* Merged and moved to the end: at capacity the sender heard from
                         * longest ago goes, not a pending worker that keeps talking. */
                        struct notify_early e = s->notify_early[i];
                        notify_message_merge(&e.message, m);
                        e.at = now;
                        memmove(s->notify_early + i, s->notify_early + i + 1, (n - i - 1) * sizeof e);
                        s->notify_early[n - 1] = e;
                        log_debug("notify_early", "sender=%d msg=\"folded into what it said before\"", (int) pid);
                        return true;
                }
        if (n == NOTIFY_EARLY_MAX) {
                memmove(s->notify_early, s->notify_early + 1, (n - 1) * sizeof s->notify_early[0]);
                s->n_notify_early = --n;
        }
        s->notify_early[n] = (struct notify_early) { .pid = pid, .at = now, .message = *m };
        s->n_notify_early++;
        log_debug("notify_early", "sender=%d msg=\"kept for a SPAWNED that may name it\"", (int) pid);
        return true;
}

/* Whether sender is pid or one of its descendants. */
static bool sender_descends_from(pid_t sender, pid_t pid) {
        for (unsigned hops = 0; sender > 1 && hops < NOTIFY_ANCESTRY_MAX; hops++) {
                if (sender == pid)
                        return true;
                if (proc_get_ppid("/proc", sender, &sender) < 0)
                        return false;
        }
        return false;
}

/* The worker w was just adopted: what it (or a descendant) said before, in order. */
static void supervisor_replay_early_notify(struct supervisor *s, struct worker *w, usec_t now) {
        unsigned n = 0;
        for (unsigned i = 0; i < s->n_notify_early; i++) {
                struct notify_early *e = &s->notify_early[i];
                if (now - e->at < NOTIFY_EARLY_USEC && sender_descends_from(e->pid, w->pid)) {
                        log_debug("notify_replayed", "worker=%u pid=%d sender=%d", w->slot, (int) w->pid, (int) e->pid);
                        supervisor_apply_notify(s, w, &e->message, now);
                        continue;
                }
                s->notify_early[n++] = *e;
        }
        s->n_notify_early = n;
}

static void supervisor_handle_datagram(struct supervisor *s, const struct notify_datagram *d, usec_t now) {
        enum notify_reject_reason why;
        struct notify_message m;
        struct worker *w = NULL;

        /* sd_notify_barrier(3) (and systemd-notify 252 after every message) sends
         * "BARRIER=1" with one fd and waits for it to be closed: that is the whole
         * protocol, and it was closed on receipt. */
        if (d->n_fds == 1 && !d->truncated &&
            ((d->length == 9 && memcmp(d->data, "BARRIER=1", 9) == 0) ||
             (d->length == 10 && memcmp(d->data, "BARRIER=1\n", 10) == 0)))
                return;

        if (d->truncated)
                why = NOTIFY_REJECT_OVERSIZED;
        else if (d->n_fds > 0)
                why = NOTIFY_REJECT_FDS;
        else if (d->pid <= 0)
                why = NOTIFY_REJECT_NO_CREDENTIALS;
        else if (!(w = worker_for_sender(s, d->pid))) {
                why = NOTIFY_REJECT_FOREIGN;
                /* Template mode: a worker just forked may speak before its SPAWNED is read. */
                if (s->template && notify_message_parse(d->data, d->length, &m) >= 0 &&
                    supervisor_keep_early_notify(s, d->pid, &m, now))
                        return;
        } else if (notify_message_parse(d->data, d->length, &m) < 0)
                why = NOTIFY_REJECT_MALFORMED;
        else {
                if (m.bad_lines > 0) {
                        /* Counted as rejected, but the valid lines of the datagram count. */
                        s->notify_rejected[NOTIFY_REJECT_MALFORMED]++;
                        log_debug("notify_rejected", "why=%s sender=%d bytes=%zu bad_lines=%u",
                                  notify_reject_reason_to_string(NOTIFY_REJECT_MALFORMED), (int) d->pid, d->length,
                                  m.bad_lines);
                }
                supervisor_apply_notify(s, w, &m, now);
                return;
        }

        s->notify_rejected[why]++;
        log_debug("notify_rejected", "why=%s sender=%d bytes=%zu", notify_reject_reason_to_string(why), (int) d->pid,
                  d->length);
}

/* Handles up to max datagrams of the notify socket: 0 when it is empty, 1 when some may
 * be left, or the negative errno of a failed receive. */
static int supervisor_receive_notify(struct supervisor *s, unsigned max, usec_t now) {
        struct notify_datagram d;

        if (s->notify_source.fd < 0)
                return 0;
        for (unsigned i = 0; i < max; i++) {
                int r = notify_socket_receive(s->notify_source.fd, &d);
                if (r == -EAGAIN)
                        return 0;
                if (r < 0)
                        return r;
                supervisor_handle_datagram(s, &d, now);
        }
        return 1;
}

static int on_notify(struct event_source *src, uint32_t revents) {
        struct supervisor *s = src->userdata;
        (void) revents;

        int r = supervisor_receive_notify(s, NOTIFY_BATCH, now_monotonic());
        if (r < 0)
                return r;
        supervisor_reconcile(s);
        return 0;
}

/* ---- template mode (docs/fork-server.md) --------------------------------- */

static int on_template_channel(struct event_source *src, uint32_t revents);
static void supervisor_template_act(struct supervisor *s, struct template_process *t,
                                    const struct template_decision *d, bool reaped, int status, usec_t now);

static struct template_process *template_by_pid(struct supervisor *s, pid_t pid) {
        if (s->template && s->template->pid == pid)
                return s->template;
        if (s->template_next && s->template_next->pid == pid)
                return s->template_next;
        for (struct template_process *t = s->templates_retired; t; t = t->next)
                if (t->pid == pid)
                        return t;
        return NULL;
}

/* The template whose placer (template_process_is_placer()) pid is. */
static struct template_process *template_by_placer(struct supervisor *s, pid_t pid) {
        struct template_process *ts[2] = { s->template, s->template_next };
        for (size_t i = 0; i < ELEMENTSOF(ts); i++)
                if (ts[i] && template_process_is_placer(ts[i], pid))
                        return ts[i];
        return NULL;
}

/* Whether pid is a child memward started for itself (a placer, running or given up on),
 * which no sweep may take for an orphan: its exit is reaped as that. */
static bool supervisor_is_own_helper(struct supervisor *s, pid_t pid) {
        return helper_pids_contains(&s->helpers, pid) || template_by_placer(s, pid);
}

/* release_leaf of a template: as a worker's, its leaf goes to the monitor's removals. */
static void supervisor_template_leaf_release(void *owner, struct cgroup_leaf *leaf) {
        struct supervisor *s = owner;
        monitor_leaf_release(&s->monitor, leaf);
}

static bool supervisor_pid_in_use(void *owner, pid_t pid) {
        struct supervisor *s = owner;
        /* A placer is memward's child too: no SPAWNED may pass it off as a worker. */
        return worker_by_pid(s, pid) || template_by_pid(s, pid) || supervisor_is_own_helper(s, pid);
}

static struct template_process *supervisor_template_new(struct supervisor *s) {
        struct template_process *t = calloc(1, sizeof *t);
        if (!t)
                return NULL;
        const struct memward_config *c = s->config;
        struct template_timing timing = {
                .ready_timeout = c->workers.ready_timeout,
                .fork_timeout = c->workers.fork_timeout,
                .backoff_initial = c->workers.backoff_initial,
                .backoff_max = c->workers.backoff_max,
        };
        template_process_init(t, &timing, s->loop, &s->monitor.cgroup, &s->template_counters);
        t->owner = s;
        t->pid_in_use = supervisor_pid_in_use;
        t->helpers = &s->helpers;
        t->release_leaf = supervisor_template_leaf_release;
        return t;
}

static void supervisor_template_free(struct template_process *t) {
        template_process_done(t);
        free(t);
}

/* The worker record a SPAWN in flight is for. */
static struct worker *worker_by_fork(struct supervisor *s, unsigned slot, uint64_t generation) {
        for (struct worker *w = s->workers; w; w = w->next)
                if (w->fork == WORKER_FORK_SENT && w->slot == slot && w->generation == generation)
                        return w;
        return NULL;
}

/* A worker record that never got a process: out of its slot and freed, its leaf killed
 * and removed (a SPAWN given up on may still have produced a worker there, §4). */
static void supervisor_drop_unforked(struct supervisor *s, struct worker *w) {
        struct slot *slot = w->slot < s->n_slots ? &s->slots[w->slot] : NULL;
        if (slot && slot->active == w)
                slot->active = NULL;
        if (slot && slot->replacement == w) {
                slot->replacement = NULL;
                if (slot->active)
                        slot->active->recycle_started = false;
        }
        supervisor_release_worker(s, w);
        worker_unlink(s, w);
        free(w);
}

/* The placer of this record's spawn moved a pid it could not confirm was the process
 * checked (template.h, TEMPLATE_PLACER_EXIT_GONE), or was still running when the spawn
 * ended: its number may have gone to a process of someone else, now in this leaf. No
 * cgroup.kill: the leaf is removed once empty (the template's intermediate, when that is
 * what it holds, exits on its own: the release pipe's EOF, or its group's SIGKILL). */
static void supervisor_spare_suspect_leaf(struct supervisor *s, struct template_process *t, struct worker *w) {
        if (w->mem.leaf.dir_fd < 0)
                return;
        if (w->mem.events_source.fd >= 0)
                (void) event_loop_remove(s->loop, &w->mem.events_source);
        w->mem.events_source.fd = -1;
        char name[sizeof w->mem.leaf.name];
        memcpy(name, w->mem.leaf.name, sizeof name);
        int r = monitor_leaf_release_spare(&s->monitor, &w->mem.leaf);
        if (!t->place_suspect) {
                log_debug("placement_abandoned", "worker=%u generation=%llu pid=%d cgroup=%s removed=%s", w->slot,
                          w->generation, (int) t->place_pid, name, r >= 0 ? "yes" : "later");
                return;
        }
        log_warning("placement_suspect", "worker=%u generation=%llu template=%llu pid=%d cgroup=%s removed=%s "
                    "msg=\"the pid memward moved may not have been the template's child: the leaf is not "
                    "killed%s\"",
                    w->slot, w->generation, t->generation, (int) t->place_pid, name, r >= 0 ? "yes" : "later",
                    r >= 0 ? "" : ", it is removed once what is in it has gone");
}

/* The template could not fork this slot's worker: a failed spawn, with the slot's backoff,
 * as for an exec that failed. -ECANCELED: the template was retired on purpose (a reload),
 * not the slot's failure; the slot is simply asked for again. */
static void supervisor_template_spawn_failed(struct supervisor *s, struct template_process *t, unsigned slot_index,
                                             uint64_t generation, int error, usec_t now) {
        struct worker *w = worker_by_fork(s, slot_index, generation);
        if (!w)
                return;
        if (t->place_suspect || t->place_abandoned)
                supervisor_spare_suspect_leaf(s, t, w);
        if (error == -ECANCELED || s->shutting_down || w->state == WORKER_STOPPING) {
                log_info("spawn_cancelled", "worker=%u generation=%llu template=%llu", w->slot, w->generation,
                         t->generation);
                supervisor_drop_unforked(s, w);
                return;
        }
        struct slot *slot = &s->slots[w->slot];
        s->spawn_failures++;
        slot_note_failure(s, slot, now);
        log_warning_errno(error, "spawn_failed", "worker=%u generation=%llu template=%llu failures=%u retry_in=%" PRIu64
                          "ms",
                          w->slot, w->generation, t->generation, slot->failures,
                          slot->respawn_at > now ? (slot->respawn_at - now) / USEC_PER_MSEC : 0);
        supervisor_drop_unforked(s, w);
}

/* The template forked slot/generation's worker as pid: from now on it is a worker like an
 * exec'd one. reaped: it exited (and was reaped) before the SPAWNED was read. */
static void supervisor_template_adopt(struct supervisor *s, struct template_process *t,
                                      const struct template_decision *d, bool reaped, int status, usec_t now) {
        struct worker *w = worker_by_fork(s, d->slot, d->generation);
        if (!w) {
                /* No record waits for it (cannot happen: a record with a SPAWN in flight is
                 * dropped only with the SPAWN). It must not serve unsupervised. */
                log_warning("template_orphan_killed", "pid=%d slot=%u generation=%" PRIu64, (int) d->pid, d->slot,
                            d->generation);
                if (!reaped) {
                        (void) kill(-d->pid, SIGKILL);
                        (void) kill(d->pid, SIGKILL);
                }
                return;
        }
        /* From now on its age, its ready delay and timeout, its lifetime and its warmup
         * count from the fork, as an exec'd worker's from the pass that forks and execs
         * it; fork= says how long it waited for the template and the fork. */
        usec_t asked = w->spawned_at;
        w->pid = d->pid;
        w->fork = WORKER_FORK_NONE;
        w->template_generation = t->generation;
        w->spawned_at = now;
        char placed[64] = "";
        if (t->state.spawn_place)
                snprintf(placed, sizeof placed, " placed_by=memward place_time=%" PRIu64 "us", t->place_time);
        else if (w->mem.leaf.dir_fd >= 0)
                snprintf(placed, sizeof placed, " placed_by=template");
        log_info("spawn", "worker=%u pid=%d generation=%llu template=%llu fork=%" PRIu64 "ms request_limit=%" PRIu64
                 " lifetime_limit=%" PRIu64 "s%s%s%s",
                 w->slot, (int) w->pid, w->generation, t->generation, (now - asked) / USEC_PER_MSEC,
                 w->request_limit, w->lifetime_limit / USEC_PER_SEC, w->mem.leaf.dir_fd >= 0 ? " cgroup=" : "",
                 w->mem.leaf.dir_fd >= 0 ? w->mem.leaf.name : "", placed);
        if (reaped) {
                /* What it said before it died counts for how it is judged (a worker that
                 * stopped itself at its request limit before its SPAWNED was read is a
                 * recycle): its count only, never a READY=1 for a dead worker. */
                unsigned n = 0;
                for (unsigned i = 0; i < s->n_notify_early; i++) {
                        const struct notify_early *e = &s->notify_early[i];
                        if (e->pid == w->pid) {
                                if (e->message.has_requests && e->message.requests > w->requests)
                                        w->requests = e->message.requests;
                                continue;
                        }
                        s->notify_early[n++] = *e;
                }
                s->n_notify_early = n;
                supervisor_worker_exited(s, w, status, now);
                return;
        }
        if (w->state == WORKER_STOPPING) {
                /* Given up on while the template forked it (a ready timeout, scale down, a
                 * reload, shutdown): it goes at once. */
                w->killed = true;
                (void) worker_kill_group(w);
                return;
        }
        supervisor_replay_early_notify(s, w, now);
        if (s->config->workers.ready == READY_IMMEDIATE)
                supervisor_worker_ready(s, w, now);
}

static void supervisor_template_start(struct supervisor *s, struct template_process *t, usec_t now) {
        const struct memward_config *c = s->config;
        struct template_decision d;

        struct template_start_args a = {
                .argv = c->workers.command,
                .directory = c->workers.directory,
                .env_template = s->template_env,
                .listen_fds = s->listen_fds,
                .n_listen_fds = s->listen.n,
                .oom_score_adj = s->worker_oom_score_adj[0] ? s->worker_oom_score_adj : NULL,
                .credentials = s->switch_credentials ? &c->workers.credentials : NULL,
                .set_umask = c->workers.umask >= 0,
                .umask = c->workers.umask >= 0 ? (mode_t) c->workers.umask : 0,
                .generation = ++s->template_generation,
                /* Another uid than memward's cannot move processes between memward's
                 * leaves (the kernel wants write access to the cgroup.procs of their common
                 * ancestor): memward places the workers of such a template itself. */
                .memward_places = s->switch_credentials && c->workers.credentials.set_uid &&
                                  c->workers.credentials.uid != geteuid(),
                .handler = on_template_channel,
                .userdata = t,
        };
        int r = template_process_start(t, &a, now, &d);
        if (r < 0 && spawn_exec_error_is_permanent(r) && !s->ever_ready && t == s->template) {
                /* Nothing has ever run: a typo in the config, not a transient problem, as
                 * for an exec'd worker (exit 127 or 126, no respawn loop). */
                char cmd[LOG_QUOTE_MAX];
                int exit_code = spawn_exec_error_to_exit_code(r);
                log_error_errno(r, "spawn_failed", "template=%llu command=%s exit_code=%d msg=\"%s\"",
                                t->generation, log_quote(cmd, sizeof cmd, c->workers.command[0]), exit_code,
                                r == -ENOENT ? "template command not found" : "template command cannot be executed");
                supervisor_begin_shutdown(s, true, exit_code);
                return;
        }
        supervisor_template_act(s, t, &d, false, 0, now);
}

/* A reload's template failed before READY: the reload fails, the old one keeps serving. */
static void supervisor_template_reload_failed(struct supervisor *s, struct template_process *t, const char *why) {
        struct template_decision d;
        char w[LOG_QUOTE_MAX];

        log_error("reload_failed", "template=%llu reason=%s msg=\"the new template did not become ready; the "
                  "running template keeps serving\"",
                  t->generation, log_quote(w, sizeof w, why));
        s->reload.last_successful = false;
        s->reload.failures++;
        snprintf(s->reload.last_error, sizeof s->reload.last_error, "template: %s", why);
        s->template_next = NULL;
        template_process_retire(t, SIGKILL, "reload_failed", now_monotonic(), 0, &d);
        if (t->pid > 0) {
                t->next = s->templates_retired;
                s->templates_retired = t;
        } else
                supervisor_template_free(t);
        if (s->reloading) {
                s->reloading = false;
                service_ready(&s->service);
        }
}

/* The reload's template is READY: it takes over, the old one is stopped, every worker
 * rolls onto the new one. */
static void supervisor_template_promote(struct supervisor *s, usec_t now) {
        struct template_process *old = s->template, *t = s->template_next;
        struct template_decision d;

        /* What the old template answered before the new one's READY was read (in the same
         * wake-up) is taken first: a SPAWNED names a worker that may be serving already,
         * which giving the spawn up would kill as an orphan, with the connections it took.
         * Adopted, it is rolled onto the new template with the others. Its receiving end
         * shut first: a SPAWNED sent after the last read below would be lost at the close,
         * and its worker, told to serve, killed as an orphan; now that send fails and the
         * runtime keeps the worker from serving (docs/fork-server.md §3 step 4.7). */
        if (old && old->state.phase == TEMPLATE_PHASE_SPAWNING)
                template_process_stop_answers(old);
        for (unsigned i = 0; old && old->state.phase == TEMPLATE_PHASE_SPAWNING && i < NOTIFY_BATCH; i++) {
                bool reaped = false;
                int status = 0;
                if (template_process_receive(old, s->monitor.proc_root, getpid(), &s->reaped, now, &d, &reaped,
                                             &status) <= 0)
                        break;
                supervisor_template_act(s, old, &d, reaped, status, now);
        }
        old = s->template;              /* the same, unless what it said replaced it */
        s->template = t;
        s->template_next = NULL;
        t->counters = &s->template_counters;
        supervisor_reload_succeeded(s);
        log_info("template_switch", "generation=%llu pid=%d old_generation=%llu old_pid=%d", t->generation,
                 (int) t->pid, old ? old->generation : 0, old ? (int) old->pid : 0);
        if (old) {
                template_process_retire(old, SIGTERM, "reload", now, s->config->workers.graceful_timeout, &d);
                if (d.spawn_failed)
                        supervisor_template_spawn_failed(s, old, d.slot, d.generation, d.error, now);
                if (old->pid > 0) {
                        old->next = s->templates_retired;
                        s->templates_retired = old;
                } else
                        supervisor_template_free(old);
        }
        supervisor_roll_workers(s, now);
}

/* Acts on what template_state decided for t, in the order template_state.h lists. */
static void supervisor_template_act(struct supervisor *s, struct template_process *t,
                                    const struct template_decision *d, bool reaped, int status, usec_t now) {
        if (d->spawn_failed)
                supervisor_template_spawn_failed(s, t, d->slot, d->generation, d->error, now);
        if (d->spawned)
                supervisor_template_adopt(s, t, d, reaped, status, now);
        if (t == s->template_next) {
                if (d->ready) {
                        supervisor_template_promote(s, now);
                        return;
                }
                if (d->kill || d->restart_at != USEC_INFINITY) {
                        supervisor_template_reload_failed(s, t, d->kill ? template_fault_to_string(d->fault)
                                                                        : "exited");
                        return;
                }
        }
        if (d->start && !t->retired)
                supervisor_template_start(s, t, now);
}

/* The template's environment for one worker (docs/fork-server.md §2 SPAWN ENV). */
static int supervisor_template_offer(struct supervisor *s, usec_t now) {
        struct template_process *t = s->template;
        char notify[160], watchdog[48];
        struct spawn_worker_env worker_env;
        char *env[SPAWN_WORKER_ENV_N + 3] = {};
        size_t n = 0;

        if (!t || !template_process_can_spawn(t) || s->shutting_down)
                return 0;
        /* First asked, first forked. */
        struct worker *pick = NULL;
        for (struct worker *w = s->workers; w; w = w->next)
                if (w->fork == WORKER_FORK_QUEUED && w->state == WORKER_STARTING &&
                    (!pick || w->spawned_at < pick->spawned_at))
                        pick = w;
        if (!pick)
                return 0;

        snprintf(notify, sizeof notify, "NOTIFY_SOCKET=%s", s->notify_address);
        env[n++] = notify;
        /* With the worker's own bound (MEMWARD_MAX_REQUESTS): a runtime may stop itself
         * at it, before memward, which may not have adopted the worker yet, could. */
        n += spawn_worker_env_format(&worker_env, pick->slot, pick->generation, pick->request_limit, env + n);
        if (s->config->workers.watchdog > 0) {
                snprintf(watchdog, sizeof watchdog, "WATCHDOG_USEC=%llu",
                         (unsigned long long) s->config->workers.watchdog);
                env[n++] = watchdog;
        }

        struct template_decision d;
        int r = template_process_spawn(t, pick->slot, pick->generation, env, pick->mem.leaf.dir_fd, pick->mem.leaf.name,
                                       now, &d);
        if (r == -EBUSY)
                return 0;
        if (r < 0) {
                /* Our own message cannot be formatted (a bug), or the leaf's cgroup.procs
                 * memward is to write cannot be opened: fail the spawn, not the template. */
                log_error_errno(r, "spawn_failed", "worker=%u generation=%llu msg=\"%s\"", pick->slot,
                                pick->generation,
                                r == -EINVAL ? "cannot format SPAWN" : "cannot open the leaf's cgroup.procs");
                s->spawn_failures++;
                slot_note_failure(s, &s->slots[pick->slot], now);
                supervisor_drop_unforked(s, pick);
                return 0;
        }
        pick->fork = WORKER_FORK_SENT;
        pick->template_generation = t->generation;
        supervisor_template_act(s, t, &d, false, 0, now);
        return 1;
}

/* Arms the template timer at the next deadline of any template, or of a worker waiting
 * for its fork (its ready_timeout), or at once when there is something to do. */
static void supervisor_template_arm(struct supervisor *s) {
        usec_t next = USEC_INFINITY;

        if (!s->template)
                return;
        next = min_usec(next, template_process_next_deadline(s->template));
        if (s->template_next)
                next = min_usec(next, template_process_next_deadline(s->template_next));
        for (struct template_process *t = s->templates_retired; t; t = t->next)
                next = min_usec(next, template_process_next_deadline(t));
        if (s->orphan_sweep_at > 0)
                next = min_usec(next, s->orphan_sweep_at);
        for (struct worker *w = s->workers; w; w = w->next) {
                if (w->fork != WORKER_FORK_QUEUED)
                        continue;
                if (w->state == WORKER_STOPPING || s->shutting_down)
                        next = 0; /* to drop */
                else if (template_process_can_spawn(s->template))
                        next = 0; /* to offer */
                else
                        next = min_usec(next, w->spawned_at + s->config->workers.ready_timeout);
        }
        if (s->shutting_down && (!s->template->retired || (s->template_next && !s->template_next->retired)))
                next = 0; /* to retire them */
        int r = timerfd_arm_at(s->template_timer_source.fd, next == 0 ? 1 : next);
        if (r < 0)
                log_error_errno(r, "timer_failed", "timer=template");
}

/* Everything in template mode that is not a message or an exit: deadlines, workers that
 * were given up before their fork was asked for, the next SPAWN, shutdown. Called before
 * each pass of supervisor_reconcile() that follows a signal, a sample tick or the
 * template's timer, so the pass sees records as they are. */
static void supervisor_templates_pass(struct supervisor *s) {
        usec_t now = now_monotonic();
        struct template_decision d;

        if (!s->template)
                return;
        if (s->shutting_down) {
                /* The templates go with memward; a SPAWN in flight is cancelled. */
                struct template_process *ts[2] = { s->template, s->template_next };
                for (size_t i = 0; i < ELEMENTSOF(ts); i++)
                        if (ts[i] && !ts[i]->retired) {
                                template_process_retire(ts[i], SIGTERM, "shutdown", now,
                                                        s->config->workers.graceful_timeout, &d);
                                if (d.spawn_failed)
                                        supervisor_template_spawn_failed(s, ts[i], d.slot, d.generation, d.error, now);
                        }
        }

        struct template_process *ts[2] = { s->template, s->template_next };
        for (size_t i = 0; i < ELEMENTSOF(ts); i++)
                if (ts[i]) {
                        template_process_timer(ts[i], now, &d);
                        supervisor_template_act(s, ts[i], &d, false, 0, now);
                }
        for (struct template_process *t = s->templates_retired; t; t = t->next)
                template_process_timer(t, now, &d); /* the SIGKILL of one that did not go */
        if (s->orphan_sweep_at > 0 && now >= s->orphan_sweep_at) {
                s->orphan_sweep_at = 0;
                supervisor_sweep_orphans(s, "template_exit");
        }

        /* Records given up before their SPAWN was sent (ready timeout, scale down, reload,
         * shutdown), and those whose template was not ready within ready_timeout. */
        for (struct worker *w = s->workers, *next; w; w = next) {
                next = w->next;
                if (w->fork != WORKER_FORK_QUEUED)
                        continue;
                if (w->state == WORKER_STARTING && !s->shutting_down &&
                    now < w->spawned_at + s->config->workers.ready_timeout)
                        continue;
                if (w->state == WORKER_STARTING || w->failed) {
                        struct slot *slot = &s->slots[w->slot];
                        s->spawn_failures++;
                        slot_note_failure(s, slot, now);
                        log_warning("spawn_failed", "worker=%u generation=%llu reason=no_template template_phase=%s "
                                    "failures=%u retry_in=%" PRIu64 "ms msg=\"no template took the spawn within "
                                    "ready_timeout\"",
                                    w->slot, w->generation, template_process_phase(s->template), slot->failures,
                                    slot->respawn_at > now ? (slot->respawn_at - now) / USEC_PER_MSEC : 0);
                } else
                        log_info("spawn_cancelled", "worker=%u generation=%llu", w->slot, w->generation);
                supervisor_drop_unforked(s, w);
        }

        while (supervisor_template_offer(s, now) > 0 && template_process_can_spawn(s->template))
                ;
        supervisor_template_arm(s);
}

/* Whether pgid is the group of a worker killed at its exit (its members got the SIGKILL
 * already); noted as met, so that the group is remembered for the next sweep. The group
 * is remembered only while a member is memward's child: a member is re-parented to it
 * before its parent can be reaped, so a sweep that meets none has seen the last. */
static bool supervisor_in_dying_group(struct supervisor *s, pid_t pgid) {
        if (pgid <= 0 || !orphan_set_contains(&s->dying_groups, pgid))
                return false;
        (void) orphan_set_add(&s->dying_groups_seen, pgid);
        return true;
}

/* orphan_classify_t for the sweeps while memward runs. */
static enum orphan_verdict supervisor_classify_child(void *userdata, pid_t pid) {
        struct supervisor *s = userdata;

        /* A placer is memward's own child, never an orphan (supervisor_is_own_helper);
         * so is a child memward had at start. */
        bool known = worker_by_pid(s, pid) || template_by_pid(s, pid) || supervisor_is_own_helper(s, pid) ||
                     orphan_set_contains(&s->inherited, pid);
        pid_t pgid = known ? 0 : getpgid(pid);
        if (supervisor_in_dying_group(s, pgid))
                return ORPHAN_DYING;
        enum orphan_verdict v =
                orphan_judge(known, pgid, pgid > 0 && (worker_by_pid(s, pgid) || template_by_pid(s, pgid)), false);
        /* Cgroup mode (a worker ran outside a leaf): one in a leaf goes with that leaf,
         * whose worker may well live (its daemon). */
        if (v == ORPHAN_KILL && s->monitor.cgroup.mode == ACCOUNTING_CGROUP &&
            cgroup_process_in_leaf(s->monitor.proc_root, s->monitor.cgroup.group_cgroup, pid) != 0)
                v = ORPHAN_KEEP;
        return v;
}

/* orphan_classify_t at exit: no worker and no template is left to keep anything for;
 * the members of a worker's group killed at its exit are only waited for. */
static enum orphan_verdict classify_at_exit(void *userdata, pid_t pid) {
        struct supervisor *s = userdata;
        if (supervisor_in_dying_group(s, getpgid(pid)))
                return ORPHAN_DYING;
        return orphan_judge(false, -1, false, true);
}

/* Whether memward sweeps for orphans while it runs: in procfs mode, and in cgroup mode
 * once a worker ran outside a leaf. */
static bool supervisor_sweeps(const struct supervisor *s) {
        return s->monitor.cgroup.mode != ACCOUNTING_CGROUP || s->leafless_workers;
}

static bool supervisor_spawn_in_flight(const struct supervisor *s) {
        const struct template_process *ts[2] = { s->template, s->template_next };
        for (size_t i = 0; i < ELEMENTSOF(ts); i++)
                if (ts[i] && ts[i]->state.phase == TEMPLATE_PHASE_SPAWNING)
                        return true;
        return false;
}

static void log_orphans_killed(const struct orphan_sweep *sw, const char *trigger) {
        log_warning("orphans_killed", "trigger=%s count=%u deferred=%u kept=%u children=%u pid=%d took=%" PRIu64 "us "
                    "msg=\"processes re-parented to memward outside any live worker's process group\"",
                    trigger, sw->killed, sw->deferred, sw->kept, sw->children, (int) sw->first_killed, sw->took);
}

/* Procfs mode: kills the orphans (orphans.h) among memward's children. trigger says what
 * made memward look: a child reaped (a worker, or an orphan whose children come to us
 * next), the sample tick (a daemon a live worker double-forked: no event tells us of
 * it), a template's exit (the worker of a spawn given up on). One read of memward's
 * children file and a getpgid() per child that is no worker.
 *
 * Not while a template has a SPAWN in flight: the worker it forks is memward's child
 * before its SPAWNED says its pid, and would look like an orphan; the next trigger looks
 * again. In cgroup mode only once a worker ran outside a leaf (cgroup_leaf_failed,
 * cgroup_placement_failed), and then only orphans outside every leaf: a leaf holds what
 * its worker started, a setsid()'d helper of a live worker included, and cgroup.kill
 * takes it along at the worker's exit. */
static void supervisor_sweep_orphans(struct supervisor *s, const char *trigger) {
        struct orphan_sweep sw;

        if (!supervisor_sweeps(s) || supervisor_spawn_in_flight(s))
                return;
        s->orphan_sweep_due = false;
        s->dying_groups_seen.n = 0;
        int r = orphans_sweep(s->monitor.proc_root, getpid(), supervisor_classify_child, s, ORPHANS_KILL_BATCH,
                              &s->orphans_dying, &sw);
        if (r < 0) {
                log_warning_errno(r, "orphan_sweep_failed", "trigger=%s", trigger);
                return;
        }
        /* The groups it met are all that is left of them. */
        struct orphan_set met = s->dying_groups_seen;
        s->dying_groups_seen = s->dying_groups;
        s->dying_groups = met;
        s->orphan_sweep_due = sw.deferred > 0;
        s->orphans_killed += sw.killed;
        if (sw.killed > 0)
                log_orphans_killed(&sw, trigger);
        /* The stable name of this case (memward(8), EVENTS) before orphans_killed existed. */
        if (sw.killed > 0 && streq(trigger, "template_exit"))
                log_warning("template_orphan_killed", "pid=%d count=%u msg=\"forked for a spawn that was given up\"",
                            (int) sw.first_killed, sw.killed);
}

static void supervisor_template_reaped(struct supervisor *s, struct template_process *t, int status, usec_t now) {
        struct template_decision d;

        /* Its workers still map pages charged to its leaf: the leaf stays, and counts
         * against group_high, until they are gone. */
        unsigned workers = supervisor_workers_of_template(s, t->generation);
        if (workers > 0 && t->leaf.dir_fd >= 0 && template_process_hold_leaf(t, &s->template_leaves_held) >= 0)
                log_info("template_leaf_kept", "generation=%llu cgroup=%s workers=%u current=%" PRIu64
                         " msg=\"workers forked from it still map pages charged to it\"",
                         s->template_leaves_held->generation, s->template_leaves_held->leaf.name, workers,
                         s->template_leaves_held->mem.current);
        template_process_exited(t, status, now, &d);
        bool sweep = t->abandoned_spawn && s->monitor.cgroup.mode != ACCOUNTING_CGROUP;
        t->abandoned_spawn = false;
        if (t->retired) {
                for (struct template_process **p = &s->templates_retired; *p; p = &(*p)->next)
                        if (*p == t) {
                                *p = t->next;
                                break;
                        }
                if (t != s->template && t != s->template_next)
                        supervisor_template_free(t);
        } else
                supervisor_template_act(s, t, &d, false, 0, now);
        if (sweep) {
                supervisor_sweep_orphans(s, "template_exit");
                /* Its intermediate, killed with it, may not have been reaped by the kernel
                 * yet: a worker still its child is re-parented to us a moment later. */
                s->orphan_sweep_at = now + ORPHAN_SWEEP_AGAIN_USEC;
        }
        supervisor_template_arm(s);
}

static void supervisor_template_reload(struct supervisor *s, usec_t now) {
        if (s->template_next)
                supervisor_template_reload_failed(s, s->template_next, "superseded by another reload");
        s->reloading = true;
        struct template_process *t = supervisor_template_new(s);
        if (!t) {
                supervisor_reload_failed(s, -ENOMEM, "template");
                s->reloading = false;
                service_ready(&s->service);
                return;
        }
        /* The new configuration's timeouts and backoff. */
        for (struct template_process *i = s->template; i; i = NULL)
                i->state.timing = t->state.timing;
        t->counters = &s->template_next_counters;
        s->template_next = t;
        supervisor_template_start(s, t, now);
        supervisor_template_arm(s);
}

static int on_template_channel(struct event_source *src, uint32_t revents) {
        struct template_process *t = src->userdata;
        struct supervisor *s = t->owner;
        (void) revents;

        for (unsigned i = 0; i < NOTIFY_BATCH; i++) {
                struct template_decision d;
                bool reaped = false;
                int status = 0;
                usec_t now = now_monotonic();
                if (template_process_receive(t, s->monitor.proc_root, getpid(), &s->reaped, now, &d, &reaped,
                                             &status) <= 0)
                        break;
                supervisor_template_act(s, t, &d, reaped, status, now);
                if (t != s->template && t != s->template_next)
                        break; /* retired by what it said */
        }
        supervisor_templates_pass(s);
        supervisor_reconcile(s);
        return 0;
}

static int on_template_timer(struct event_source *src, uint32_t revents) {
        struct supervisor *s = src->userdata;
        uint64_t expirations;
        (void) revents;

        (void) !read(src->fd, &expirations, sizeof expirations);
        supervisor_templates_pass(s);
        supervisor_reconcile(s);
        return 0;
}

/* ---- life cycle ---------------------------------------------------------- */

/* The group is one OOM domain, memward included: when its memory.max is lowered below
 * what it holds, or workers restart under a tight one, the kernel kills in the group —
 * and once the workers are dead, memward's own fork of the next one is what runs into
 * the limit, with memward the only task left to kill (seen in the VM with -999, which
 * only makes it the last choice). At -1000 the kernel kills workers only; with none
 * left the charge fails and fork returns ENOMEM, which is a spawn failure with backoff.
 * Needs CAP_SYS_RESOURCE; workers get the original score back (spawn.c). */
static void supervisor_protect_from_oom(struct supervisor *s) {
        char buf[sizeof s->worker_oom_score_adj] = "";  /* -1000..1000 and a newline */
        size_t n = 0;
        _cleanup_close_ int fd = open("/proc/self/oom_score_adj", O_RDWR | O_CLOEXEC);
        if (fd < 0 || pread_small_file(fd, buf, sizeof buf, &n) < 0 || n == 0)
                return;
        buf[strcspn(buf, "\n")] = '\0';
        if (atoi(buf) <= -1000)
                return; /* protected by whoever started us (OOMScoreAdjust=) */
        if (pwrite(fd, "-1000", 5, 0) < 0) {
                log_notice_errno(-errno, "oom_protect_failed", "oom_score_adj=%s msg=\"memward may be OOM-killed "
                                 "with its workers\"", buf);
                return;
        }
        memcpy(s->worker_oom_score_adj, buf, sizeof buf);
        log_info("oom_protect", "oom_score_adj=-1000 workers_oom_score_adj=%s", buf);
}

/* The fds memward holds for the configured workers: fixed ones (epoll, signalfd,
 * timers, notify, pressure, the metrics server and its connections, sockets) plus,
 * in cgroup mode, five per worker leaf, for the workers and the replacements of
 * recycles in flight, plus a spawn's exec pipe. */
static unsigned supervisor_fds_needed(const struct supervisor *s, const struct memward_config *c, unsigned workers) {
        unsigned per_worker = s->monitor.cgroup.mode == ACCOUNTING_CGROUP ? 5 : 0;
        /* Template mode: two templates during a reload, each with its channel and leaf,
         * and the timer. */
        unsigned templates = c->workers.mode == WORKERS_TEMPLATE ? 2 * (1 + per_worker) + 1 : 0;
        /* The metrics section changes only on restart: the running one counts. */
        return 32 + (unsigned) s->listen.n + s->config->metrics.max_connections +
               (workers + c->recycle.max_concurrent) * per_worker + 2 + templates;
}

/* Fails start-up, or a reload that asks for more workers, with a clear message instead
 * of running into EMFILE later, in the middle of a recycle, over and over. Raises the
 * soft limit when the hard one allows. */
static int supervisor_check_fd_limit(struct supervisor *s, const struct memward_config *c, unsigned workers) {
        struct rlimit rl;
        unsigned need = supervisor_fds_needed(s, c, workers);

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return 0;
        if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
                struct rlimit raised = rl;
                raised.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
                if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
                        rl = raised;
        }
        if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
                return log_error_errno(-EMFILE, "fd_limit_too_low",
                                       "needed=%u limit=%llu workers=%u mode=%s msg=\"raise the open-files limit "
                                       "(ulimit -n, LimitNOFILE=) or lower workers.count\"",
                                       need, (unsigned long long) rl.rlim_cur, workers,
                                       accounting_mode_to_string(s->monitor.cgroup.mode));
        s->fd_limit = rl.rlim_cur == RLIM_INFINITY ? UINT_MAX : (unsigned) rl.rlim_cur;
        return 0;
}

/* The children memward has before it starts any: a shell's `cron & exec memward` (the
 * usual container entrypoint), whatever PID 1 inherits. They are no worker's orphans
 * and are left alone while memward runs (their pids are not reused before memward
 * reaps them, which forgets them); at memward's own exit they go with everything else. */
static int supervisor_note_inherited(struct supervisor *s) {
        _cleanup_free_ pid_t *pids = NULL;
        int n = proc_list_children(s->monitor.proc_root, getpid(), &pids);
        if (n < 0) {
                /* Not fatal: without the list they are judged like any other child. */
                log_warning_errno(n, "inherited_children_unknown", NULL);
                return 0;
        }
        for (int i = 0; i < n; i++) {
                int r = orphan_set_add(&s->inherited, pids[i]);
                if (r < 0)
                        return r;
        }
        if (n > 0)
                log_info("inherited_children", "count=%d pid=%d msg=\"children memward had at start: "
                         "not swept as orphans\"", n, (int) pids[0]);
        return 0;
}

int supervisor_new(struct memward_config *config, struct listen_set *listen, config_loader_t reload,
                   void *reload_userdata, struct supervisor **ret) {
        struct supervisor *s;
        int r;

        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->config = config;
        s->listen = *listen;
        *listen = (struct listen_set) {};
        s->reload_config = reload;
        s->reload = (struct reload_record) { .last_successful = true, .last_success = now_realtime() };
        s->reload_userdata = reload_userdata;
        s->signal_source.fd = s->timer_source.fd = s->notify_source.fd = -1;
        s->sample_source.fd = s->psi_source.fd = -1;
        s->template_timer_source.fd = -1;
        s->target = config->workers.count;

        if (getrandom(&s->random_state, sizeof s->random_state, 0) < 0)
                s->random_state = now_realtime() ^ (uint64_t) getpid();

        r = supervisor_check_credentials(config);
        if (r < 0)
                goto fail;
        s->switch_credentials = r > 0;

        r = supervisor_grow_slots(s, s->target);
        if (r < 0)
                goto fail;
        s->listen_fds = calloc(s->listen.n + 1, sizeof(int));
        if (!s->listen_fds) {
                r = -ENOMEM;
                goto fail;
        }
        for (size_t i = 0; i < s->listen.n; i++)
                s->listen_fds[i] = s->listen.sockets[i].fd;

        r = event_loop_new(&s->loop);
        if (r < 0)
                goto fail;

        supervisor_signal_set(&s->handled_signals);
        s->signal_source = (struct event_source) {
                .fd = signalfd(-1, &s->handled_signals, SFD_NONBLOCK | SFD_CLOEXEC),
                .events = EPOLLIN,
                .handler = on_signal,
                .userdata = s,
                .name = "signal",
        };
        s->timer_source = (struct event_source) {
                .fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC),
                .events = EPOLLIN,
                .handler = on_timer,
                .userdata = s,
                .name = "timer",
        };
        s->notify_source = (struct event_source) {
                .fd = notify_socket_open(s->notify_address, sizeof s->notify_address),
                .events = EPOLLIN,
                .handler = on_notify,
                .userdata = s,
                .name = "notify",
        };
        if (s->signal_source.fd < 0 || s->timer_source.fd < 0) {
                r = negative_errno();
                goto fail;
        }
        if (s->notify_source.fd < 0) {
                r = s->notify_source.fd;
                goto fail;
        }
        if ((r = event_loop_add(s->loop, &s->signal_source)) < 0 || (r = event_loop_add(s->loop, &s->timer_source)) < 0 ||
            (r = event_loop_add(s->loop, &s->notify_source)) < 0)
                goto fail;

        /* Accounting before the first spawn: in cgroup mode workers start in their leaves. */
        const char *unresolved = NULL;
        r = monitor_init(&s->monitor, config, "/proc", &unresolved);
        char group[LOG_QUOTE_MAX];
        log_info("accounting", "mode=%s reason=\"%s\"%s%s group_limit=%" PRIu64,
                 accounting_mode_to_string(s->monitor.cgroup.mode), s->monitor.cgroup.reason,
                 s->monitor.cgroup.mode == ACCOUNTING_CGROUP ? " cgroup=" : "",
                 s->monitor.cgroup.mode == ACCOUNTING_CGROUP ? log_quote(group, sizeof group, s->monitor.cgroup.group_path)
                                                             : "",
                 s->monitor.group_limit);
        if (r < 0 || s->monitor.group_limit_error < 0)
                log_group_limit_unknown(s, r < 0 ? unresolved : NULL);
        if (r < 0)
                goto fail;
        if (s->monitor.cgroup.mode == ACCOUNTING_CGROUP) {
                /* memward lives inside the group it watches: when the group is squeezed
                 * (memory.high), reclaim would take memward's own pages and every refault
                 * would be throttled — right when it must react. Pages are locked as they
                 * are touched (MCL_ONFAULT), so nothing is prefaulted and RSS stays as is. */
                if (mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) < 0)
                        log_notice_errno(-errno, "mlock_failed", "msg=\"memward's pages may be reclaimed under pressure\"");
                supervisor_protect_from_oom(s);
        }
        if (s->monitor.cgroup.evacuated || s->monitor.cgroup.stale_removed)
                log_info("cgroup_takeover", "evacuated_to_init=%u stale_leaves_removed=%u", s->monitor.cgroup.evacuated,
                         s->monitor.cgroup.stale_removed);

        r = supervisor_check_fd_limit(s, s->config, s->target);
        if (r < 0)
                goto fail;

        s->sample_source = (struct event_source) {
                .fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC),
                .events = EPOLLIN,
                .handler = on_sample,
                .userdata = s,
                .name = "sample",
        };
        if (s->sample_source.fd < 0) {
                r = negative_errno();
                goto fail;
        }
        if ((r = event_loop_add(s->loop, &s->sample_source)) < 0 || (r = supervisor_arm_sampling(s)) < 0)
                goto fail;
        r = supervisor_watch_pressure(s);
        if (r < 0)
                goto fail;
        /* The sample tick keeps these fresh; read them once now, so that a scrape before
         * the first tick (a scrape never reads cgroup files) already has every family. */
        (void) monitor_read_pressure(&s->monitor);
        (void) cgroup_group_usage(&s->monitor.cgroup, s->monitor.proc_root, &s->monitor.group_usage);

        r = supervisor_build_env(s);
        if (r < 0)
                goto fail;

        r = supervisor_note_inherited(s);
        if (r < 0)
                goto fail;

        if (config->workers.mode == WORKERS_TEMPLATE) {
                s->template_timer_source = (struct event_source) {
                        .fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC),
                        .events = EPOLLIN,
                        .handler = on_template_timer,
                        .userdata = s,
                        .name = "template_timer",
                };
                if (s->template_timer_source.fd < 0) {
                        r = negative_errno();
                        goto fail;
                }
                if ((r = event_loop_add(s->loop, &s->template_timer_source)) < 0)
                        goto fail;
                s->template = supervisor_template_new(s);
                if (!s->template) {
                        r = -ENOMEM;
                        goto fail;
                }
                /* The first one is due at once (its state's deadline 0). */
                (void) timerfd_arm_at(s->template_timer_source.fd, 1);
        }

        service_init(&s->service, now_monotonic());
        *ret = s;
        return 0;
fail:
        /* On failure the caller keeps the config; the sockets are closed here. */
        s->config = NULL;
        supervisor_free(s);
        return r;
}

struct supervisor *supervisor_free(struct supervisor *s) {
        if (!s)
                return NULL;
        while (s->workers) {
                struct worker *w = s->workers;
                s->workers = w->next;
                cgroup_leaf_close(&w->mem.leaf);
                free(w);
        }
        supervisor_template_free(s->template);
        supervisor_template_free(s->template_next);
        while (s->templates_retired) {
                struct template_process *t = s->templates_retired;
                s->templates_retired = t->next;
                supervisor_template_free(t);
        }
        while (s->template_leaves_held) {
                struct template_leaf_held *h = s->template_leaves_held;
                s->template_leaves_held = h->next;
                if (template_leaf_held_release(&s->monitor.cgroup, h) < 0) {
                        cgroup_leaf_close(&h->leaf);
                        free(h);
                }
        }
        monitor_done(&s->monitor);
        orphan_set_free(&s->orphans_dying);
        orphan_set_free(&s->inherited);
        orphan_set_free(&s->dying_groups);
        orphan_set_free(&s->dying_groups_seen);
        event_loop_free(s->loop);
        safe_close(s->template_timer_source.fd);
        strv_free(s->template_env);
        safe_close(s->sample_source.fd);
        safe_close(s->signal_source.fd);
        safe_close(s->timer_source.fd);
        safe_close(s->notify_source.fd);
        listen_set_close(&s->listen);
        free(s->listen_fds);
        strv_free(s->env_template);
        free(s->slots);
        reconcile_buffers_free(&s->reconcile);
        config_free(s->config);
        free(s);
        return NULL;
}

static bool templates_alive(const struct supervisor *s) {
        return (s->template && s->template->pid > 0) || (s->template_next && s->template_next->pid > 0) ||
               s->templates_retired;
}

static void supervisor_reap_templates(struct supervisor *s) {
        for (int i = 0; i < 50 && templates_alive(s); i++) {
                supervisor_reap(s);
                if (templates_alive(s))
                        (void) usleep(20000);
        }
        struct template_process *ts[2] = { s->template, s->template_next };
        for (size_t i = 0; i < ELEMENTSOF(ts); i++)
                if (ts[i] && ts[i]->pid > 0)
                        (void) kill(-ts[i]->pid, SIGKILL);
        for (struct template_process *t = s->templates_retired; t; t = t->next)
                if (t->pid > 0)
                        (void) kill(-t->pid, SIGKILL);
}

/* The last step before memward exits, in both modes: every child still there (an orphan
 * found since the last sweep, one in cgroup mode that no leaf held, a template that
 * outlived its kill) is killed and reaped, again until memward has no child left, so
 * that nothing memward or its workers started outlives it, or keeps the listening
 * sockets from the next memward. Bounded by ORPHANS_EXIT_WAIT_USEC. */
static void supervisor_kill_orphans_at_exit(struct supervisor *s) {
        usec_t deadline = now_monotonic() + ORPHANS_EXIT_WAIT_USEC;
        struct orphan_sweep total = {};
        usec_t started = now_monotonic();

        for (;;) {
                struct orphan_sweep sw;
                for (pid_t pid; (pid = waitpid(-1, NULL, WNOHANG)) > 0;)
                        (void) orphan_set_remove(&s->orphans_dying, pid);
                int r = orphans_sweep(s->monitor.proc_root, getpid(), classify_at_exit, s, UINT_MAX, &s->orphans_dying,
                              &sw);
                if (r < 0) {
                        log_warning_errno(r, "orphan_sweep_failed", "trigger=exit");
                        break;
                }
                total.killed += sw.killed;
                if (!total.first_killed)
                        total.first_killed = sw.first_killed;
                total.children = sw.children;
                if (sw.children == 0)
                        break;
                if (now_monotonic() >= deadline) {
                        log_warning("orphans_left", "count=%u waited=%" PRIu64 "ms msg=\"killed but not reaped "
                                    "(uninterruptible sleep?)\"",
                                    sw.children, ORPHANS_EXIT_WAIT_USEC / USEC_PER_MSEC);
                        break;
                }
                (void) usleep(10000);
        }
        s->orphans_killed += total.killed;
        if (total.killed > 0) {
                total.took = now_monotonic() - started;
                log_orphans_killed(&total, "exit");
        }
}

int supervisor_run(struct supervisor *s) {
        char cmd[LOG_QUOTE_MAX];

        log_info("start", "version=%s pid=%d workers=%u sockets=%zu%s command=%s notify_socket=%s", MEMWARD_VERSION,
                 (int) getpid(), s->target, s->listen.n, s->listen.inherited ? " sockets_from=systemd" : "",
                 log_quote(cmd, sizeof cmd, s->config->workers.command[0]), s->notify_address);

        supervisor_reconcile(s);
        while (!s->done) {
                int r = event_loop_run_once(s->loop, -1);
                if (r < 0) {
                        log_error_errno(r, "event_loop_failed", NULL);
                        return 1;
                }
        }
        /* The templates got SIGTERM with the shutdown: a moment for them to go, then the
         * kill, so that none outlives memward by more than that. */
        supervisor_reap_templates(s);
        /* Leaves of killed workers and templates disappear once their last process is
         * reaped (a template killed just now included). */
        for (int i = 0; i < 100 && (monitor_pending_removals(&s->monitor) > 0 || templates_alive(s)); i++) {
                supervisor_reap(s);
                monitor_retry_removals(&s->monitor);
                if (monitor_pending_removals(&s->monitor) > 0 || templates_alive(s))
                        (void) usleep(20000);
        }
        if (monitor_pending_removals(&s->monitor) > 0)
                log_warning("cgroup_leaves_left", "count=%u", monitor_pending_removals(&s->monitor));
        supervisor_kill_orphans_at_exit(s);
        log_info("exit_supervisor", "code=%d", s->exit_code);
        return s->exit_code;
}
