/* See template.h. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "memward/base/log.h"
#include "memward/base/macro.h"
#include "memward/base/read_file.h"
#include "memward/base/signal_name.h"
#include "memward/linux/proc.h"
#include "memward/linux/spawn.h"
#include "memward/supervisor/template.h"

/* A template whose channel closed is given this long to exit before the closed channel
 * counts as the fault (§4 channel_closed): a template that crashes closes its fds a moment
 * before it becomes a zombie, and that is template_exited, not a protocol error. */
#define CHANNEL_CLOSED_GRACE_USEC (1 * USEC_PER_SEC)

void reaped_ring_push(struct reaped_ring *r, pid_t pid, int status) {
        assert(r);
        if (pid <= 0)
                return;
        r->entries[r->next % TEMPLATE_REAPED_MAX].pid = pid;
        r->entries[r->next % TEMPLATE_REAPED_MAX].status = status;
        r->next = (r->next + 1) % TEMPLATE_REAPED_MAX;
}

bool reaped_ring_take(struct reaped_ring *r, pid_t pid, int *ret_status) {
        if (!r || pid <= 0)
                return false;
        for (unsigned i = 0; i < TEMPLATE_REAPED_MAX; i++)
                if (r->entries[i].pid == pid) {
                        if (ret_status)
                                *ret_status = r->entries[i].status;
                        r->entries[i].pid = 0;
                        return true;
                }
        return false;
}

int template_check_pid(const char *proc_root, pid_t pid, pid_t self, pid_t template_pid, pid_t sender,
                       struct reaped_ring *ring, int *ret_status, char *detail, size_t detail_size) {
        pid_t ppid;

        /* First: a pid we reaped is gone from /proc, and a new process may even have its
         * number by now (then its parent would not pass the check anyway). */
        if (reaped_ring_take(ring, pid, ret_status))
                return 1;
        int r = proc_get_ppid(proc_root, pid, &ppid);
        if (r == -ESRCH || r == -ENOENT) {
                snprintf(detail, detail_size, "PID %d: no such process, and memward did not reap it", (int) pid);
                return -EPERM;
        }
        if (r < 0) {
                snprintf(detail, detail_size, "PID %d: cannot read its parent", (int) pid);
                return r;
        }
        if (ppid == self || ppid == template_pid || (sender > 0 && ppid == sender))
                return 0;
        snprintf(detail, detail_size,
                 "PID %d: its parent %d is neither memward (%d), the template (%d) nor the sender (%d)", (int) pid,
                 (int) ppid, (int) self, (int) template_pid, (int) sender);
        return -EPERM;
}

int template_check_place_pid(const char *proc_root, pid_t pid, pid_t self, pid_t template_pid,
                             struct proc_status *ret_child, char *detail, size_t detail_size) {
        struct proc_status child, template;
        int r;

        r = proc_get_status(proc_root, pid, &child);
        if (r == -ESRCH) {
                snprintf(detail, detail_size, "PID %d: no such process", (int) pid);
                return r;
        }
        if (r < 0) {
                snprintf(detail, detail_size, "PID %d: cannot read its status", (int) pid);
                return r;
        }
        if (child.ppid == self && self != template_pid) {
                /* memward's own child: a worker, a placer, the template itself, or the
                 * template's child re-parented to memward, the subreaper, because the
                 * template died after its PLACE; the caller tells the last case apart
                 * (template_child_has_exited()). */
                snprintf(detail, detail_size, "PID %d: its parent %d is memward, which is not the template (%d)", (int) pid,
                         (int) self, (int) template_pid);
                return -EPERM;
        }
        if (child.ppid != template_pid) {
                snprintf(detail, detail_size, "PID %d: its parent %d is not the template (%d)", (int) pid,
                         (int) child.ppid, (int) template_pid);
                return -EPERM;
        }
        r = proc_get_status(proc_root, template_pid, &template);
        if (r < 0) {
                snprintf(detail, detail_size, "the template (%d): cannot read its status", (int) template_pid);
                return r == -ESRCH ? -EIO : r; /* gone: its exit is on its way, not the child's fault */
        }
        if (memcmp(child.uid, template.uid, sizeof child.uid) != 0) {
                snprintf(detail, detail_size, "PID %d runs as uid %u/%u/%u/%u, the template (%d) as %u/%u/%u/%u",
                         (int) pid, (unsigned) child.uid[0], (unsigned) child.uid[1], (unsigned) child.uid[2],
                         (unsigned) child.uid[3], (int) template_pid, (unsigned) template.uid[0],
                         (unsigned) template.uid[1], (unsigned) template.uid[2], (unsigned) template.uid[3]);
                return -EPERM;
        }
        if (ret_child)
                *ret_child = child;
        return 0;
}

bool template_child_has_exited(pid_t pid) {
        int r = proc_child_exited(pid);
        return r > 0 || r == -ECHILD; /* -ECHILD: reaped already */
}

int template_placer_result(int status, bool *ret_identity_lost) {
        *ret_identity_lost = false;
        if (!WIFEXITED(status))
                return -EIO;
        int code = WEXITSTATUS(status);
        if (code == TEMPLATE_PLACER_EXIT_GONE || code == TEMPLATE_PLACER_EXIT_CHANGED) {
                *ret_identity_lost = true;
                return -ESTALE;
        }
        return code == 0 ? 0 : code < 126 ? -code : -EIO;
}

int helper_pids_add(struct helper_pids *h, pid_t pid) {
        assert(h);
        assert(pid > 0);
        for (unsigned i = 0; i < TEMPLATE_HELPERS_MAX; i++)
                if (h->pids[i] == 0) {
                        h->pids[i] = pid;
                        return 0;
                }
        return -ENOSPC;
}

bool helper_pids_contains(const struct helper_pids *h, pid_t pid) {
        if (!h || pid <= 0)
                return false;
        for (unsigned i = 0; i < TEMPLATE_HELPERS_MAX; i++)
                if (h->pids[i] == pid)
                        return true;
        return false;
}

bool helper_pids_remove(struct helper_pids *h, pid_t pid) {
        if (!h || pid <= 0)
                return false;
        for (unsigned i = 0; i < TEMPLATE_HELPERS_MAX; i++)
                if (h->pids[i] == pid) {
                        h->pids[i] = 0;
                        return true;
                }
        return false;
}

void template_process_init(struct template_process *t, const struct template_timing *timing,
                           struct event_loop *loop, const struct cgroup_setup *cgroup,
                           struct template_counters *counters) {
        assert(t);
        *t = (struct template_process) {
                .control_fd = -1,
                .control_source = { .fd = -1 },
                .place_fd = -1,
                .loop = loop,
                .leaf = CGROUP_LEAF_INIT,
                .cgroup = cgroup,
                .counters = counters,
        };
        template_state_init(&t->state, timing);
}

static void close_channel(struct template_process *t) {
        if (t->control_source.fd >= 0)
                (void) event_loop_remove(t->loop, &t->control_source);
        t->control_source.fd = -1;
        t->control_fd = safe_close(t->control_fd);
}

static void release_leaf(struct template_process *t) {
        if (t->leaf.dir_fd < 0)
                return;
        if (t->release_leaf) {
                t->release_leaf(t->owner, &t->leaf);
                t->leaf = (struct cgroup_leaf) CGROUP_LEAF_INIT;
                return;
        }
        (void) cgroup_leaf_kill(t->cgroup, &t->leaf);
        /* Its last process may still be exiting: then the leaf stays, empty, and is removed
         * as a stale one at the next start. Nothing is charged to an empty leaf. */
        (void) cgroup_leaf_remove(t->cgroup, &t->leaf);
        cgroup_leaf_close(&t->leaf);
        t->leaf = (struct cgroup_leaf) CGROUP_LEAF_INIT;
}

void template_process_done(struct template_process *t) {
        if (!t)
                return;
        close_channel(t);
        t->place_fd = safe_close(t->place_fd);
        cgroup_leaf_close(&t->leaf);
}

/* The parts of a decision that concern the template itself. */
static void apply(struct template_process *t, const struct template_decision *d, usec_t now) {
        char detail[LOG_QUOTE_MAX], runtime[LOG_QUOTE_MAX];

        if (d->ready) {
                t->ready_at = now;
                if (t->usr1_pending) {
                        t->usr1_pending = false;
                        (void) kill(t->pid, SIGUSR1);
                }
                enum template_placement p = template_process_placement(t, true);
                log_info("template_ready", "pid=%d generation=%llu runtime=%s startup=%" PRIu64 "ms placement=%s",
                         (int) t->pid, t->generation, log_quote(runtime, sizeof runtime, t->runtime),
                         (now - t->started_at) / USEC_PER_MSEC,
                         !t->cgroup || t->cgroup->mode != ACCOUNTING_CGROUP ? "none"
                         : p == TEMPLATE_PLACEMENT_MEMWARD                   ? "memward"
                                                                             : "template");
                if (t->memward_places && !t->place_offered && t->cgroup && t->cgroup->mode == ACCOUNTING_CGROUP)
                        log_warning("template_cannot_place", "pid=%d generation=%llu msg=\"the template runs as "
                                    "workers.user and its READY did not offer PLACE=1: it cannot move its workers "
                                    "into their leaves, so spawns fail; see docs/fork-server.md\"",
                                    (int) t->pid, t->generation);
        }
        if (d->kill) {
                if ((unsigned) d->fault < _TEMPLATE_FAULT_MAX)
                        t->counters->faults[d->fault]++;
                if (d->spawn_failed)
                        t->abandoned_spawn = true;
                log_warning(template_fault_event(d->fault), "reason=%s pid=%d generation=%llu detail=%s",
                            template_fault_to_string(d->fault), (int) t->pid, t->generation,
                            log_quote(detail, sizeof detail, d->detail));
                if (t->pid > 0)
                        (void) kill(-t->pid, SIGKILL);
                if (t->leaf.dir_fd >= 0)
                        (void) cgroup_leaf_kill(t->cgroup, &t->leaf);
                close_channel(t);
        }
}

static void feed(struct template_process *t, const struct template_event *e, struct template_decision *ret) {
        struct template_decision d = { .restart_at = USEC_INFINITY };
        int r = template_state_handle(&t->state, e, &d);
        if (r < 0) {
                /* A bug of ours, not the template's: say so and change nothing. */
                log_error_errno(r, "template_state_refused", "event=%d phase=%s", (int) e->type,
                                template_phase_to_string(t->state.phase));
                d = (struct template_decision) { .restart_at = USEC_INFINITY };
        }
        /* The leaf's cgroup.procs is held for one SPAWN: whatever ended it, it goes, and
         * a placer still running is no longer ours to answer for (its exit is reaped as
         * any unknown child's). */
        if (t->state.phase != TEMPLATE_PHASE_SPAWNING || !t->state.spawn_place) {
                t->place_fd = safe_close(t->place_fd);
                t->place_abandoned = t->place_abandoned || t->placer_pid > 0;
                t->placer_pid = 0;
        }
        apply(t, &d, e->now);
        *ret = d;
}

static void fault(struct template_process *t, enum template_fault f, const char *detail, usec_t now,
                  struct template_decision *ret) {
        feed(t, &(struct template_event) { .type = TEMPLATE_EVENT_FAULT, .now = now, .fault = f, .detail = detail },
             ret);
}

int template_process_start(struct template_process *t, const struct template_start_args *a, usec_t now,
                           struct template_decision *ret) {
        char control[48], generation[64], cmd[LOG_QUOTE_MAX];
        _cleanup_free_ char **env = NULL;
        int fds[2] = { -1, -1 }, r;
        size_t n = 0;
        pid_t pid = 0;
        const char *step = NULL;

        t->generation = a->generation;
        t->memward_places = a->memward_places;
        t->place_offered = false;
        t->ready_at = 0;
        t->usr1_pending = false;
        t->runtime[0] = '\0';
        t->mem = (struct template_memory) {};
        t->abandoned_spawn = false;

        r = template_channel_open(fds);
        if (r < 0)
                goto fail;

        while (a->env_template && a->env_template[n])
                n++;
        env = calloc(n + 4, sizeof *env);
        if (!env) {
                r = -ENOMEM;
                goto fail;
        }
        memcpy(env, a->env_template, n * sizeof *env);
        snprintf(control, sizeof control, "MEMWARD_CONTROL_FD=%zu", 3 + a->n_listen_fds);
        snprintf(generation, sizeof generation, "MEMWARD_TEMPLATE_GENERATION=%llu", a->generation);
        env[n++] = control;
        env[n++] = generation;
        env[n++] = (char *) "MEMWARD_PROTOCOL=1";

        if (t->cgroup && t->cgroup->mode == ACCOUNTING_CGROUP) {
                char name[sizeof t->leaf.name];
                snprintf(name, sizeof name, "template-%llu", a->generation);
                r = cgroup_leaf_create_named(t->cgroup, name, 0, 0, &t->leaf);
                if (r < 0) {
                        log_warning_errno(r, "cgroup_leaf_failed", "template=%llu msg=\"accounting the template "
                                          "through /proc\"", a->generation);
                        t->leaf = (struct cgroup_leaf) CGROUP_LEAF_INIT;
                }
        }

        struct spawn_request req = {
                .argv = a->argv,
                .directory = a->directory,
                .env_template = env,
                .listen_fds = a->listen_fds,
                .n_listen_fds = a->n_listen_fds,
                .cgroup_fd = t->leaf.dir_fd,
                .oom_score_adj = a->oom_score_adj,
                .template = true,
                .control_fd = fds[1],
                .credentials = a->credentials,
                .set_umask = a->set_umask,
                .umask = a->umask,
        };
        struct spawn_outcome outcome = {};
        r = spawn_worker(&req, &pid, &outcome);
        if (outcome.cgroup_error < 0) {
                log_warning_errno(outcome.cgroup_error, "cgroup_placement_failed",
                                  "template=%llu cgroup=%s msg=\"accounting the template through /proc\"",
                                  a->generation, t->leaf.name);
                release_leaf(t);
        }
        fds[1] = safe_close(fds[1]);
        step = outcome.credentials_step;
        if (r < 0)
                goto fail;

        t->control_fd = TAKE_FD(fds[0]);
        t->control_source = (struct event_source) {
                .fd = t->control_fd,
                .events = EPOLLIN,
                .handler = a->handler,
                .userdata = a->userdata,
                .name = "template",
        };
        r = event_loop_add(t->loop, &t->control_source);
        if (r < 0) {
                t->control_source.fd = -1;
                log_error_errno(r, "watch_failed", "file=template_channel");
        }
        t->pid = pid;
        t->started_at = now;
        t->started_realtime = now_realtime();
        log_info("template_start", "pid=%d generation=%llu command=%s%s%s", (int) pid, a->generation,
                 log_quote(cmd, sizeof cmd, a->argv[0]), t->leaf.dir_fd >= 0 ? " cgroup=" : "",
                 t->leaf.dir_fd >= 0 ? t->leaf.name : "");
        feed(t, &(struct template_event) { .type = TEMPLATE_EVENT_STARTED, .now = now, .pid = pid }, ret);
        if (r < 0)
                fault(t, TEMPLATE_FAULT_CHANNEL_ERROR, "cannot watch the control channel", now, ret);
        return 0;

fail:
        safe_close(fds[0]);
        safe_close(fds[1]);
        release_leaf(t);
        t->counters->start_failed++;
        feed(t, &(struct template_event) { .type = TEMPLATE_EVENT_START_FAILED, .now = now, .error = r }, ret);
        log_error_errno(r, "template_start_failed", "generation=%llu command=%s%s%s failures=%u retry_in=%" PRIu64 "ms",
                        a->generation, log_quote(cmd, sizeof cmd, a->argv[0]), step ? " step=" : "", step ?: "",
                        t->state.failures,
                        ret->restart_at != USEC_INFINITY && ret->restart_at > now
                                ? (ret->restart_at - now) / USEC_PER_MSEC
                                : 0);
        return r;
}

/* Starts a child of memward that moves pid into the leaf whose cgroup.procs is place_fd
 * and exits 0, or with the errno of its write. memward's own write: the template's user
 * may not (moving a process needs write access to cgroup.procs of the common ancestor of
 * both cgroups, which is memward's). Not in the event loop: that write takes the kernel's
 * cgroup_threadgroup_rwsem for writing, which first waits for an RCU grace period: 1 to
 * 160 ms, median 23 ms, measured in the test VM (Linux 6.1, 2 vCPUs, TCG).
 *
 * cgroup.procs takes a number, not a pidfd, and the number was checked before the fork:
 * in between, the process may have died and been reaped by the template, and its number
 * gone to a process of someone else, or it may have exec'd a set-user-ID program. So
 * after its write the child checks, in this order, that the status of pid shows the
 * parent and uids checked before (*before) and that pidfd (opened before that check)
 * says the process has not exited: alive now, it was alive at the write, so the number
 * written was its. Otherwise it exits TEMPLATE_PLACER_EXIT_GONE or _CHANGED. memward is
 * single-threaded: the child may call anything; it reads one small file and exits. Its
 * exit reaches template_process_placer_exited(). */
static int placer_start(int place_fd, int pidfd, pid_t pid, const char *proc_root, const struct proc_status *before,
                        pid_t *ret_pid) {
        char buf[16];
        int n = snprintf(buf, sizeof buf, "%d", (int) pid);

        if (place_fd < 0)
                return -EBADF;
        pid_t child = fork();
        if (child < 0)
                return negative_errno();
        if (child == 0) {
                struct proc_status after;
                ssize_t w = write(place_fd, buf, (size_t) n);
                if (w != n)
                        _exit(w >= 0 ? EIO : errno > 0 && errno < 126 ? errno : EIO);
                int r = proc_get_status(proc_root, pid, &after);
                if (proc_pidfd_exited(pidfd) != 0 || r == -ESRCH)
                        _exit(TEMPLATE_PLACER_EXIT_GONE);
                _exit(r == 0 && proc_status_same(before, &after) ? 0 : TEMPLATE_PLACER_EXIT_CHANGED);
        }
        *ret_pid = child;
        return 0;
}

/* The placement of the SPAWN in flight is over (error 0: its intermediate is in the leaf):
 * tell the state machine, answer PLACED. */
/* The template closed its end (a receive says ECONNRESET, a send EPIPE): it is exiting,
 * most likely. Its exit, reaped within the grace, says how; template_process_timer()
 * calls it a fault otherwise. Not a fault at once: a template that dies while memward
 * has an answer for it (a PLACED after the placer's move) is an exit, not a protocol
 * error. */
static void channel_peer_gone(struct template_process *t, usec_t now) {
        close_channel(t);
        t->abandoned_spawn = t->abandoned_spawn || t->state.phase == TEMPLATE_PHASE_SPAWNING;
        t->channel_closed_at = now;
}

static void place_done(struct template_process *t, int error, usec_t now, struct template_decision *ret) {
        unsigned slot = t->state.spawn_slot;
        uint64_t generation = t->state.spawn_generation;
        char detail[TEMPLATE_DETAIL_MAX], buf[128];
        size_t length;

        t->placer_pid = 0;
        feed(t, &(struct template_event) { .type = TEMPLATE_EVENT_PLACED, .now = now, .error = error }, ret);
        struct template_placed answer = { .slot = slot, .generation = generation, .error = error < 0 ? -error : 0 };
        if (answer.error > TEMPLATE_ERRNO_MAX)
                answer.error = EIO;
        int r = template_placed_format(&answer, buf, sizeof buf, &length);
        if (r >= 0)
                r = template_channel_send(t->control_fd, buf, length, -1);
        if (r == -EPIPE || r == -ECONNRESET) {
                channel_peer_gone(t, now);
                return;
        }
        if (r < 0) {
                snprintf(detail, sizeof detail, "cannot send PLACED for slot %u generation %" PRIu64 ": %s", slot,
                         generation, r == -EAGAIN ? "the template does not read" : strerror(-r));
                fault(t, TEMPLATE_FAULT_CHANNEL_ERROR, detail, now, ret);
        }
}

/* A PLACE for the SPAWN in flight, whose SPAWN said PLACE=1 (§3): check its PID, start
 * the placer. A PID that is not the template's own child of its own user is a fault
 * (bad_pid); one that is gone, or that the kernel does not move, gets PLACED with ERRNO,
 * and the template answers SPAWN_FAILED. The pidfd is opened first: the check below is
 * of that process only while the pidfd says it lives (template_check_place_pid()). */
static void place(struct template_process *t, const struct template_message *m, const char *proc_root, pid_t self,
                  usec_t now, struct template_decision *ret) {
        char detail[TEMPLATE_DETAIL_MAX] = "", buf[LOG_QUOTE_MAX];
        _cleanup_close_ int pidfd = proc_pidfd_open(m->pid);
        int r = pidfd;

        if (pidfd == -ESRCH)
                snprintf(detail, sizeof detail, "PID %d: no such process", (int) m->pid);
        else if (pidfd < 0)
                snprintf(detail, sizeof detail, "PID %d: pidfd_open: %s", (int) m->pid, strerror(-pidfd));
        else {
                r = template_check_place_pid(proc_root, m->pid, self, t->pid, &t->place_status, detail, sizeof detail);
                if (r != -ESRCH && proc_pidfd_exited(pidfd) != 0) {
                        /* What was read may be of another process that got the number. */
                        snprintf(detail, sizeof detail, "PID %d exited while it was checked", (int) m->pid);
                        r = -ESRCH;
                }
                if (r == -EPERM && template_child_has_exited(t->pid)) {
                        /* Its parent is not the template because the template died: its
                         * child went to memward, the subreaper, or is gone. The template's
                         * exit, reaped next, is the news, not a bad pid. */
                        snprintf(detail + strlen(detail), sizeof detail - strlen(detail), " (the template has exited)");
                        r = -ESRCH;
                }
        }
        if (r == -EPERM) {
                fault(t, TEMPLATE_FAULT_BAD_PID, detail, now, ret);
                return;
        }
        feed(t, &(struct template_event) { .type = TEMPLATE_EVENT_MESSAGE, .now = now, .message = m }, ret);
        if (!ret->place)
                return;
        t->place_pid = m->pid;
        t->place_started = now;
        if (r == 0)
                r = placer_start(t->place_fd, pidfd, m->pid, proc_root, &t->place_status, &t->placer_pid);
        if (r == 0) {
                if (t->helpers)
                        (void) helper_pids_add(t->helpers, t->placer_pid);
                return; /* PLACED once the placer has exited */
        }
        log_warning_errno(r, "placement_failed", "pid=%d worker=%u generation=%" PRIu64 " template=%llu%s%s",
                          (int) m->pid, m->slot, m->generation, t->generation, detail[0] ? " detail=" : "",
                          detail[0] ? log_quote(buf, sizeof buf, detail) : "");
        place_done(t, r, now, ret);
}

bool template_process_is_placer(const struct template_process *t, pid_t pid) {
        return pid > 0 && t->placer_pid == pid;
}

void template_process_placer_exited(struct template_process *t, int status, usec_t now,
                                    struct template_decision *ret) {
        char detail[TEMPLATE_DETAIL_MAX], quoted[LOG_QUOTE_MAX];
        bool identity_lost;
        int error = template_placer_result(status, &identity_lost);

        *ret = (struct template_decision) { .restart_at = USEC_INFINITY };
        t->place_time = now - t->place_started;
        if (identity_lost) {
                /* The pid written may have been someone else's by then: whatever is in the
                 * leaf now is not killed (the supervisor removes it only if empty). */
                t->place_suspect = true;
                snprintf(detail, sizeof detail, "PID %d %s while memward moved it into its leaf", (int) t->place_pid,
                         WEXITSTATUS(status) == TEMPLATE_PLACER_EXIT_GONE ? "exited"
                                                                          : "changed its parent or user");
                if (!template_child_has_exited(t->pid)) {
                        t->placer_pid = 0;
                        fault(t, TEMPLATE_FAULT_BAD_PID, detail, now, ret);
                        return;
                }
                /* The template died first (its child was re-parented, or exited with it):
                 * no fault, its exit is reaped next and fails the spawn. */
                error = -ESRCH;
        }
        if (error < 0)
                log_warning_errno(error, "placement_failed", "pid=%d worker=%u generation=%" PRIu64 " template=%llu%s%s",
                                  (int) t->place_pid, t->state.spawn_slot, t->state.spawn_generation, t->generation,
                                  identity_lost ? " suspect=yes detail=" : "",
                                  identity_lost ? log_quote(quoted, sizeof quoted, detail) : "");
        place_done(t, error, now, ret);
}

/* Whether the worker pid of a SPAWNED runs in the leaf of its SPAWN: one read of
 * PROC_ROOT/PID/cgroup. A worker that exited already (the read fails) is let through: its
 * exit is reaped as a worker's, and its leaf killed with it. */
static bool worker_in_leaf(const struct template_process *t, const char *proc_root, pid_t pid, char *detail,
                           size_t detail_size) {
        char path[64], buf[1024], where[PATH_MAX / 4];
        size_t n;

        if (!t->cgroup)
                return true;
        snprintf(path, sizeof path, "%s/%d/cgroup", proc_root, (int) pid);
        if (read_small_file_at(AT_FDCWD, path, buf, sizeof buf, &n) < 0)
                return true;
        int r = cgroup_text_in_leaf(buf, n, t->cgroup->group_path, t->spawn_leaf, where, sizeof where);
        if (r != 0)
                return true; /* 1, or no v2 line: not a cgroup v2 system after all */
        snprintf(detail, detail_size, "worker PID %d runs in cgroup %.96s, not in its leaf %s", (int) pid, where,
                 t->spawn_leaf);
        return false;
}

/* One packet at a time, 64 KiB: static, memward is single-threaded. */
static struct template_packet packet;

int template_process_receive(struct template_process *t, const char *proc_root, pid_t self, struct reaped_ring *ring,
                             usec_t now, struct template_decision *ret, bool *ret_reaped, int *ret_status) {
        struct template_parse_error perr = {};
        struct template_message m;
        char detail[TEMPLATE_DETAIL_MAX];
        int r;

        *ret_reaped = false;
        if (t->control_fd < 0)
                return 0;
        r = template_channel_receive(t->control_fd, &packet);
        if (r == -EAGAIN)
                return 0;
        if (r == -ECONNRESET) {
                channel_peer_gone(t, now);
                return 0;
        }
        if (r < 0) {
                snprintf(detail, sizeof detail, "receive: %s", strerror(-r));
                fault(t, TEMPLATE_FAULT_CHANNEL_ERROR, detail, now, ret);
                return 1;
        }
        if (packet.truncated) {
                fault(t, TEMPLATE_FAULT_OVERSIZED, "a packet over 65536 bytes", now, ret);
                return 1;
        }
        if (packet.n_fds > 0) {
                snprintf(detail, sizeof detail, "a packet with %u file descriptors", packet.n_fds);
                fault(t, TEMPLATE_FAULT_FDS, detail, now, ret);
                return 1;
        }
        r = template_message_parse(packet.data, packet.length, &m, &perr);
        if (r < 0) {
                snprintf(detail, sizeof detail, "%s: %s", perr.what ?: "malformed", perr.text);
                fault(t, template_fault_from_parse(r), detail, now, ret);
                return 1;
        }
        if (m.type == TEMPLATE_READY && t->state.phase == TEMPLATE_PHASE_STARTING) {
                memcpy(t->runtime, m.runtime, sizeof t->runtime);
                t->place_offered = m.place;
        }
        if (m.type == TEMPLATE_PLACE && t->state.phase == TEMPLATE_PHASE_SPAWNING && t->state.spawn_place &&
            t->state.place_pid == 0 && m.slot == t->state.spawn_slot && m.generation == t->state.spawn_generation) {
                place(t, &m, proc_root, self, now, ret);
                return 1;
        }
        if (m.type == TEMPLATE_SPAWNED && t->state.phase == TEMPLATE_PHASE_SPAWNING &&
            m.slot == t->state.spawn_slot && m.generation == t->state.spawn_generation) {
                if (m.pid == t->pid || (t->pid_in_use && t->pid_in_use(t->owner, m.pid))) {
                        snprintf(detail, sizeof detail, "PID %d is a worker or a template already", (int) m.pid);
                        fault(t, TEMPLATE_FAULT_BAD_PID, detail, now, ret);
                        return 1;
                }
                r = template_check_pid(proc_root, m.pid, self, t->pid, packet.has_credentials ? packet.pid : 0, ring,
                                       ret_status, detail, sizeof detail);
                if (r < 0) {
                        fault(t, TEMPLATE_FAULT_BAD_PID, detail, now, ret);
                        return 1;
                }
                *ret_reaped = r > 0;
                /* Only for a SPAWNED the state machine takes (one that skips or follows a
                 * failed placement is condemned there, as unexpected). */
                bool acceptable = !t->state.spawn_place || (t->state.placed && t->state.place_error == 0);
                if (r == 0 && acceptable && t->spawn_leaf[0] &&
                    !worker_in_leaf(t, proc_root, m.pid, detail, sizeof detail)) {
                        /* Nothing would account or limit it: it goes, and so does the
                         * template that put it there. */
                        (void) kill(-m.pid, SIGKILL);
                        (void) kill(m.pid, SIGKILL);
                        fault(t, TEMPLATE_FAULT_BAD_PID, detail, now, ret);
                        return 1;
                }
        }
        feed(t, &(struct template_event) { .type = TEMPLATE_EVENT_MESSAGE, .now = now, .message = &m }, ret);
        return 1;
}

int template_process_spawn(struct template_process *t, unsigned slot, uint64_t generation, char *const *env,
                           int leaf_fd, const char *leaf_name, usec_t now, struct template_decision *ret) {
        static char buf[TEMPLATE_MESSAGE_MAX];
        size_t length;
        char detail[TEMPLATE_DETAIL_MAX];
        int r;

        if (t->state.phase != TEMPLATE_PHASE_IDLE || t->control_fd < 0)
                return -EBUSY;
        enum template_placement placement = template_process_placement(t, leaf_fd >= 0);
        r = template_spawn_format(slot, generation, placement, env, buf, sizeof buf, &length);
        if (r < 0)
                return r;
        _cleanup_close_ int place_fd = -1;
        if (placement == TEMPLATE_PLACEMENT_MEMWARD) {
                /* Opened now, so that the PLACE costs one write, and so that a leaf we cannot
                 * write fails this slot's spawn, not the template. */
                place_fd = openat(leaf_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
                if (place_fd < 0)
                        return negative_errno();
        }
        feed(t,
             &(struct template_event) { .type = TEMPLATE_EVENT_SPAWN_WANTED, .now = now, .slot = slot,
                                        .generation = generation, .place = placement == TEMPLATE_PLACEMENT_MEMWARD },
             ret);
        if (!ret->send_spawn)
                return -EBUSY;
        t->place_fd = TAKE_FD(place_fd);
        t->place_time = 0;
        t->place_suspect = t->place_abandoned = false;
        snprintf(t->spawn_leaf, sizeof t->spawn_leaf, "%s", leaf_fd >= 0 && leaf_name ? leaf_name : "");
        r = template_channel_send(t->control_fd, buf, length,
                                  placement == TEMPLATE_PLACEMENT_TEMPLATE ? leaf_fd : -1);
        if (r == -EPIPE || r == -ECONNRESET) {
                channel_peer_gone(t, now);
                return 0;
        }
        if (r < 0) {
                snprintf(detail, sizeof detail, "cannot send SPAWN for slot %u generation %" PRIu64 ": %s", slot,
                         generation, r == -EAGAIN ? "the template does not read" : strerror(-r));
                fault(t, TEMPLATE_FAULT_CHANNEL_ERROR, detail, now, ret);
        }
        return 0;
}

/* memward places only when the template cannot (it runs as another user than memward,
 * who alone may move processes between memward's leaves) and it offered PLACE=1 in its
 * READY. Not always in cgroup mode, although one path would be simpler: memward's move
 * costs a round trip, a fork of memward (the placer) and the kernel's migration lock, an
 * RCU grace period (1 to 160 ms measured), before the template may fork the worker; the
 * template's own write costs the same lock but no round trip, and no process of memward's. */
enum template_placement template_process_placement(const struct template_process *t, bool has_leaf) {
        if (!has_leaf)
                return TEMPLATE_PLACEMENT_NONE;
        return t->memward_places && t->place_offered ? TEMPLATE_PLACEMENT_MEMWARD : TEMPLATE_PLACEMENT_TEMPLATE;
}

usec_t template_process_next_deadline(const struct template_process *t) {
        if (t->retired)
                return t->pid > 0 ? t->kill_at : USEC_INFINITY;
        usec_t next = template_state_next_deadline(&t->state);
        if (t->channel_closed_at > 0 && t->pid > 0 && !t->retired &&
            t->channel_closed_at + CHANNEL_CLOSED_GRACE_USEC < next)
                next = t->channel_closed_at + CHANNEL_CLOSED_GRACE_USEC;
        return next;
}

void template_process_timer(struct template_process *t, usec_t now, struct template_decision *ret) {
        *ret = (struct template_decision) { .restart_at = USEC_INFINITY };
        if (t->retired) {
                /* It did not go when asked: it goes now. */
                if (t->pid > 0 && now >= t->kill_at) {
                        log_warning("template_kill", "pid=%d generation=%llu msg=\"did not exit within "
                                    "graceful_timeout\"", (int) t->pid, t->generation);
                        (void) kill(-t->pid, SIGKILL);
                        t->kill_at = USEC_INFINITY;
                }
                return;
        }
        if (t->channel_closed_at > 0 && t->pid > 0 && now >= t->channel_closed_at + CHANNEL_CLOSED_GRACE_USEC) {
                t->channel_closed_at = 0;
                fault(t, TEMPLATE_FAULT_CHANNEL_CLOSED, "the template closed the control channel and lives on", now,
                      ret);
                return;
        }
        feed(t, &(struct template_event) { .type = TEMPLATE_EVENT_TIMER, .now = now }, ret);
}

static void describe_status(int status, char *buf, size_t size) {
        if (WIFEXITED(status))
                snprintf(buf, size, "status=exited code=%d", WEXITSTATUS(status));
        else if (WIFSIGNALED(status))
                snprintf(buf, size, "status=killed signal=%s", signal_to_string(WTERMSIG(status)));
        else
                snprintf(buf, size, "status=unknown raw=%d", status);
}

void template_process_exited(struct template_process *t, int status, usec_t now, struct template_decision *ret) {
        char how[96];
        pid_t pid = t->pid;

        *ret = (struct template_decision) { .restart_at = USEC_INFINITY };
        describe_status(status, how, sizeof how);
        close_channel(t);
        release_leaf(t);
        t->pid = 0;
        t->channel_closed_at = 0;
        if (t->retired) {
                log_info("template_exited", "pid=%d generation=%llu %s retired=yes age=%" PRIu64 "s", (int) pid,
                         t->generation, how, (now - t->started_at) / USEC_PER_SEC);
                return;
        }
        bool expected = t->state.phase == TEMPLATE_PHASE_KILLED;
        if (!expected)
                t->counters->exited++;
        feed(t, &(struct template_event) { .type = TEMPLATE_EVENT_EXITED, .now = now }, ret);
        if (ret->spawn_failed)
                t->abandoned_spawn = true;
        uint64_t retry = 0;
        if (ret->restart_at != USEC_INFINITY && ret->restart_at > now)
                retry = (ret->restart_at - now) / USEC_PER_MSEC;
        if (expected)
                log_info("template_exited", "pid=%d generation=%llu %s killed=yes failures=%u restart_in=%" PRIu64 "ms",
                         (int) pid, t->generation, how, t->state.failures, retry);
        else
                log_warning("template_exited",
                            "pid=%d generation=%llu %s unexpected=yes failures=%u restart_in=%" PRIu64 "ms",
                            (int) pid, t->generation, how, t->state.failures, retry);
}

void template_process_forward_usr1(struct template_process *t) {
        if (t->retired || t->pid <= 0 || t->state.phase == TEMPLATE_PHASE_KILLED)
                return;
        if (t->ready_at == 0) {
                t->usr1_pending = true;
                return;
        }
        (void) kill(t->pid, SIGUSR1);
}

bool template_process_can_spawn(const struct template_process *t) {
        return !t->retired && t->state.phase == TEMPLATE_PHASE_IDLE && t->control_fd >= 0;
}

void template_process_stop_answers(struct template_process *t) {
        if (t->control_fd >= 0)
                (void) template_channel_stop_receiving(t->control_fd); /* fails only for a bad fd */
}

void template_process_retire(struct template_process *t, int sig, const char *why, usec_t now, usec_t grace,
                             struct template_decision *ret) {
        *ret = (struct template_decision) { .restart_at = USEC_INFINITY };
        if (t->retired)
                return;
        t->kill_at = sig == SIGKILL || grace >= USEC_INFINITY - now ? USEC_INFINITY : now + grace;
        if (t->state.phase == TEMPLATE_PHASE_SPAWNING) {
                ret->spawn_failed = true;
                ret->error = -ECANCELED;
                ret->slot = t->state.spawn_slot;
                ret->generation = t->state.spawn_generation;
                t->abandoned_spawn = true;
        }
        t->retired = true;
        close_channel(t);
        t->place_fd = safe_close(t->place_fd);
        t->place_abandoned = t->place_abandoned || t->placer_pid > 0;
        t->placer_pid = 0;
        if (t->pid > 0) {
                log_info("template_stop", "pid=%d generation=%llu signal=%s reason=%s", (int) t->pid, t->generation,
                         signal_to_string(sig), why);
                (void) kill(-t->pid, sig);
        }
}

int template_process_sample(struct template_process *t, const char *proc_root, bool need_tree) {
        struct template_memory *mem = &t->mem;

        if (t->pid <= 0)
                return -ESRCH;
        if (t->leaf.dir_fd >= 0) {
                struct memory_stat st;
                uint64_t current;
                int r = cgroup_leaf_read(&t->leaf, &current, &st);
                if (r < 0)
                        return r;
                mem->current = current;
                mem->anon = st.anon;
                mem->rss = mem->pss = mem->uss = 0;
                if (need_tree) {
                        struct smaps_rollup s;
                        r = procfs_tree_memory(proc_root, t->pid, &s);
                        if (r < 0)
                                return r;
                        mem->rss = s.rss;
                        mem->pss = s.pss;
                        mem->uss = s.has_private ? s.private_bytes : 0;
                }
        } else {
                struct smaps_rollup s;
                int r = procfs_tree_memory(proc_root, t->pid, &s);
                if (r < 0)
                        return r;
                mem->current = mem->rss = s.rss;
                mem->pss = s.pss;
                mem->uss = s.has_private ? s.private_bytes : 0;
                mem->anon = s.anonymous;
        }
        mem->sampled = true;
        return 0;
}

uint64_t template_group_share(const struct template_memory *mem, enum memory_metric metric, bool workers_in_leaves) {
        if (!mem->sampled)
                return 0;
        switch (metric) {
        case MEMORY_METRIC_ANON:
                return mem->anon;
        case MEMORY_METRIC_CURRENT:
                /* In procfs mode a worker's current is its Rss, which counts what it shares. */
                return workers_in_leaves ? mem->current : mem->uss;
        case MEMORY_METRIC_RSS:
                return mem->uss;
        case MEMORY_METRIC_PSS:
                return mem->pss;
        }
        return mem->anon;
}

uint64_t template_process_metric(const struct template_process *t, enum memory_metric metric, bool workers_in_leaves) {
        if (t->pid <= 0)
                return 0;
        return template_group_share(&t->mem, metric, workers_in_leaves);
}

int template_process_hold_leaf(struct template_process *t, struct template_leaf_held **list) {
        if (t->leaf.dir_fd < 0)
                return -ENOENT;
        struct template_leaf_held *h = calloc(1, sizeof *h);
        if (!h)
                return -ENOMEM;
        (void) cgroup_leaf_kill(t->cgroup, &t->leaf);
        *h = (struct template_leaf_held) { .next = *list, .generation = t->generation, .leaf = t->leaf };
        /* Its last sample until the next tick reads the leaf; nothing of its tree. */
        h->mem = (struct template_memory) { .sampled = t->mem.sampled, .current = t->mem.current,
                                            .anon = t->mem.anon };
        t->leaf = (struct cgroup_leaf) CGROUP_LEAF_INIT;
        *list = h;
        return 0;
}

int template_leaf_held_sample(struct template_leaf_held *h) {
        struct memory_stat st;
        uint64_t current;
        int r = cgroup_leaf_read(&h->leaf, &current, &st);
        if (r < 0)
                return r;
        h->mem = (struct template_memory) { .sampled = true, .current = current, .anon = st.anon };
        return 0;
}

int template_leaf_held_release(const struct cgroup_setup *cgroup, struct template_leaf_held *h) {
        int r = cgroup_leaf_remove(cgroup, &h->leaf);
        if (r == -EBUSY) {
                (void) cgroup_leaf_kill(cgroup, &h->leaf);
                return r;
        }
        cgroup_leaf_close(&h->leaf);
        free(h);
        return 0;
}

const char *template_process_phase(const struct template_process *t) {
        if (t->retired)
                return "stopping";
        switch (t->state.phase) {
        case TEMPLATE_PHASE_DEAD:
                return "dead";
        case TEMPLATE_PHASE_STARTING:
                return "starting";
        case TEMPLATE_PHASE_IDLE:
        case TEMPLATE_PHASE_SPAWNING:
                return "ready";
        case TEMPLATE_PHASE_KILLED:
                return "stopping";
        default:
                return "unknown";
        }
}
