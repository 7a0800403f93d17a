/* See spawn.h. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "memward/base/macro.h"
#include "memward/linux/spawn.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* Variables that describe memward's own relationship with systemd or with its own
 * supervisor; a worker must never see them, it gets its own. */
static const char *const private_vars[] = {
        "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES",
        "MEMWARD_WORKER_ID", "MEMWARD_WORKER_GENERATION", "MEMWARD_CONTROL_FD", "MEMWARD_TEMPLATE_GENERATION",
        "MEMWARD_PROTOCOL", "MEMWARD_MAX_REQUESTS",
};

size_t spawn_worker_env_format(struct spawn_worker_env *e, unsigned worker_id, unsigned long long generation,
                               unsigned long long max_requests, char **vars) {
        snprintf(e->id, sizeof e->id, "MEMWARD_WORKER_ID=%u", worker_id);
        snprintf(e->generation, sizeof e->generation, "MEMWARD_WORKER_GENERATION=%llu", generation);
        snprintf(e->max_requests, sizeof e->max_requests, "MEMWARD_MAX_REQUESTS=%llu", max_requests);
        vars[0] = e->id;
        vars[1] = e->generation;
        vars[2] = e->max_requests;
        return SPAWN_WORKER_ENV_N;
}

static bool env_key_matches(const char *entry, const char *assignment) {
        const char *eq = strchr(assignment, '=');
        size_t n = eq ? (size_t) (eq - assignment) : strlen(assignment);
        return strncmp(entry, assignment, n) == 0 && entry[n] == '=';
}

int spawn_env_template(char *const *environ_in, char *const *extra, char ***ret) {
        size_t n_in = 0, n_extra = 0, n = 0;
        char **l;

        while (environ_in && environ_in[n_in])
                n_in++;
        while (extra && extra[n_extra])
                n_extra++;

        l = calloc(n_in + n_extra + 1, sizeof *l);
        if (!l)
                return -ENOMEM;

        for (size_t i = 0; i < n_in; i++) {
                bool drop = !strchr(environ_in[i], '=');
                for (size_t j = 0; !drop && j < ELEMENTSOF(private_vars); j++)
                        drop = env_key_matches(environ_in[i], private_vars[j]);
                for (size_t j = 0; !drop && j < n_extra; j++)
                        drop = env_key_matches(environ_in[i], extra[j]);
                if (drop)
                        continue;
                if (!(l[n++] = strdup(environ_in[i])))
                        goto oom;
        }
        for (size_t j = 0; j < n_extra; j++)
                if (!(l[n++] = strdup(extra[j])))
                        goto oom;

        *ret = l;
        return 0;
oom:
        strv_free(l);
        return -ENOMEM;
}

bool spawn_exec_error_is_permanent(int negative_errno) {
        switch (negative_errno) {
        case -ENOENT: case -ENOTDIR: case -EACCES: case -EPERM: case -ENOEXEC: case -EISDIR: case -ELOOP:
        case -ENAMETOOLONG:
                return true;
        default:
                return false;
        }
}

int spawn_exec_error_to_exit_code(int negative_errno) {
        return negative_errno == -ENOENT || negative_errno == -ENOTDIR ? 127 : 126;
}

/* Whether the effective set holds CAP_SETUID and CAP_SETGID. capget(2) directly: no
 * libcap for two bits. */
static bool can_switch_ids(void) {
        struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};

        if (syscall(SYS_capget, &header, data) < 0)
                return geteuid() == 0;
        return (data[0].effective & (1U << CAP_SETUID)) && (data[0].effective & (1U << CAP_SETGID));
}

int spawn_credentials_check(const struct spawn_credentials *c) {
        uid_t ruid, euid, suid;
        gid_t rgid, egid, sgid;

        assert(c);

        if (!c->set_uid && !c->set_gid)
                return 0;
        if (can_switch_ids())
                return 1;
        /* Without the capabilities, setresuid() to the ids we hold already would pass, but
         * setgroups() never does: an unprivileged memward whose workers.user is itself
         * just runs them as it runs, with its own supplementary groups. */
        if (getresuid(&ruid, &euid, &suid) < 0 || getresgid(&rgid, &egid, &sgid) < 0)
                return -EPERM;
        if (c->set_uid && !(ruid == c->uid && euid == c->uid && suid == c->uid))
                return -EPERM;
        if (c->set_gid && !(rgid == c->gid && egid == c->gid && sgid == c->gid))
                return -EPERM;
        return 0;
}

/* The step a spawn failed at. Placement is told apart from exec: its ENOENT or EACCES
 * is about the cgroup, not the command. */
enum spawn_step {
        SPAWN_STEP_FORK,
        SPAWN_STEP_CGROUP,
        SPAWN_STEP_DIRECTORY,
        SPAWN_STEP_EXEC,
        SPAWN_STEP_SETGROUPS,
        SPAWN_STEP_SETRESGID,
        SPAWN_STEP_SETRESUID,
};

/* What the child writes to the close-on-exec pipe when it cannot become the worker:
 * one write, far below PIPE_BUF, so the parent reads all of it or nothing. */
struct child_failure {
        int step;               /* enum spawn_step */
        int error;              /* errno */
};

static _noreturn_ void child_fail(int error_fd, enum spawn_step step, int error) {
        struct child_failure f = { .step = step, .error = error };
        (void) !write(error_fd, &f, sizeof f);
        _exit(127);
}

/* Becomes the worker's user, in the child, once it sits in its cgroup leaf (whose
 * cgroup.procs only root may write) and has written its oom_score_adj (whose file is
 * root's once the ids change: the process is no longer dumpable until exec). Groups
 * first, while we may still change them: after setresuid() we could not. All three ids
 * of each kind, so no saved id lets the worker back to root; the kernel clears the
 * capabilities with the uid. It also clears the parent-death signal when the effective
 * uid or gid changes, so it is set again, and the race with memward dying in between is
 * closed as at fork. */
static void child_drop_privileges(const struct spawn_credentials *c, pid_t supervisor, int error_fd) {
        if (c->set_gid) {
                if (setgroups(c->n_groups, c->groups) < 0)
                        child_fail(error_fd, SPAWN_STEP_SETGROUPS, errno);
                if (setresgid(c->gid, c->gid, c->gid) < 0)
                        child_fail(error_fd, SPAWN_STEP_SETRESGID, errno);
        }
        if (c->set_uid && setresuid(c->uid, c->uid, c->uid) < 0)
                child_fail(error_fd, SPAWN_STEP_SETRESUID, errno);
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != supervisor)
                _exit(127);
}

/* Runs in the child between fork and exec. Only async-signal-safe calls: although we
 * are single-threaded, libraries we link may not be. */
_noreturn_ static void child_exec(const struct spawn_request *req, char **envp, char *listen_pid,
                                  char *watchdog_pid, int error_fd, pid_t supervisor) {
        sigset_t empty;
        int n_listen = (int) req->n_listen_fds;
        /* The fds passed at 3…: the sockets, then a template's control channel. */
        int n = n_listen + (req->template ? 1 : 0);

        /* Restore what the supervisor changed: the blocked mask (signalfd) and dispositions.
         * The raw syscall also reaches signals 32 and 33, which glibc's sigaction refuses
         * to touch but which a sanitizer runtime or a parent may have set to ignored. */
        struct {
                void *handler;
                unsigned long flags;
                void *restorer;
                unsigned long mask;
        } dfl = { .handler = SIG_DFL };
        for (int sig = 1; sig < _NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void) syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof dfl.mask);
        sigemptyset(&empty);
        (void) sigprocmask(SIG_SETMASK, &empty, NULL);

        /* Our own process group, so a stop can reach everything the worker started. */
        (void) setpgid(0, 0);

        /* Back to the OOM score memward started with: the protection it took for itself
         * must not pass on to the workers, which are what the OOM killer should pick.
         * Raising it again needs no privilege. */
        if (req->oom_score_adj) {
                int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
                if (fd >= 0) {
                        (void) !write(fd, req->oom_score_adj, strlen(req->oom_score_adj));
                        close(fd);
                }
        }

        if (req->credentials)
                child_drop_privileges(req->credentials, supervisor, error_fd);
        if (req->set_umask)
                (void) umask(req->umask & 0777);

        /* Move the error pipe and the sockets above the target range first, so that no
         * dup2() below can overwrite a descriptor still needed. */
        error_fd = fcntl(error_fd, F_DUPFD_CLOEXEC, 3 + n);
        if (error_fd < 0)
                goto fail;
        int moved[65];
        if (n > (int) ELEMENTSOF(moved)) {
                errno = EMFILE;
                goto fail;
        }
        for (int i = 0; i < n; i++)
                if ((moved[i] = fcntl(i < n_listen ? req->listen_fds[i] : req->control_fd, F_DUPFD_CLOEXEC, 3 + n)) < 0)
                        goto fail;
        for (int i = 0; i < n; i++)
                if (dup2(moved[i], 3 + i) < 0) /* dup2 clears FD_CLOEXEC on the target */
                        goto fail;
        /* Everything above the sockets closes at exec, even an fd a library opened
         * without O_CLOEXEC. */
        (void) syscall(SYS_close_range, 3 + n, ~0U, CLOSE_RANGE_CLOEXEC);

        if (req->directory && chdir(req->directory) < 0)
                child_fail(error_fd, SPAWN_STEP_DIRECTORY, errno);

        /* The pid is known only now; the buffers were sized for it by the parent. */
        pid_t self = getpid();
        if (listen_pid)
                snprintf(listen_pid, 32, "LISTEN_PID=%d", (int) self);
        if (watchdog_pid)
                snprintf(watchdog_pid, 32, "WATCHDOG_PID=%d", (int) self);

        execvpe(req->argv[0], req->argv, envp);
fail:
        child_fail(error_fd, SPAWN_STEP_EXEC, errno);
}

/* Puts the calling child into the cgroup leaf before it can allocate anything of the
 * worker's. Used where clone3(CLONE_INTO_CGROUP) is unavailable. */
static int child_enter_cgroup(int cgroup_fd) {
        int fd = openat(cgroup_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -1;
        ssize_t n = write(fd, "0", 1);
        int saved = errno;
        close(fd);
        errno = saved;
        return n == 1 ? 0 : -1;
}

static pid_t fork_into_cgroup(int cgroup_fd, bool *ret_placed) {
        *ret_placed = false;
        if (cgroup_fd < 0)
                return fork();

        struct clone_args args = {
                .flags = CLONE_INTO_CGROUP,
                .exit_signal = SIGCHLD,
                .cgroup = (uint64_t) cgroup_fd,
        };
        long pid = syscall(SYS_clone3, &args, sizeof args);
        if (pid >= 0) {
                *ret_placed = true;
                return (pid_t) pid;
        }
        /* Kernel < 5.7, a seccomp filter that answers ENOSYS for clone3 (Docker's), or
         * a leaf the kernel refused: fork, and the child joins the leaf itself — and
         * says why it could not, which clone3 alone would leave ambiguous with a fork
         * failure. */
        return fork();
}

/* One fork and exec, into cgroup_fd unless it is -1. On failure *ret_step says where. */
static int spawn_attempt(const struct spawn_request *req, int cgroup_fd, char **envp, char *listen_pid,
                         char *watchdog_pid, pid_t *ret_pid, enum spawn_step *ret_step) {
        int pipefd[2];
        bool placed;

        *ret_step = SPAWN_STEP_FORK;
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return negative_errno();

        pid_t supervisor = getpid();
        pid_t pid = fork_into_cgroup(cgroup_fd, &placed);
        if (pid < 0) {
                int r = negative_errno();
                safe_close(pipefd[0]);
                safe_close(pipefd[1]);
                return r;
        }
        if (pid == 0) {
                safe_close(pipefd[0]);
                /* If memward itself dies (SIGKILL, a crash), its workers must not serve on
                 * unsupervised: the kernel kills them at once. A signal the worker could
                 * catch (SIGTERM) would be nicer but lets a worker that ignores it live
                 * forever, and a separate guard process would cost memory per worker.
                 * The getppid() check closes the race with a parent dying before prctl. */
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != supervisor)
                        _exit(127);
                if (cgroup_fd >= 0 && !placed && child_enter_cgroup(cgroup_fd) < 0)
                        child_fail(pipefd[1], SPAWN_STEP_CGROUP, errno);
                child_exec(req, envp, listen_pid, watchdog_pid, pipefd[1], supervisor);
        }

        /* Also from the parent, so that a signal to the group cannot race the child's setpgid. */
        (void) setpgid(pid, pid);
        safe_close(pipefd[1]);

        struct child_failure failure;
        ssize_t n;
        do
                n = read(pipefd[0], &failure, sizeof failure);
        while (n < 0 && errno == EINTR);
        safe_close(pipefd[0]);

        if (n == sizeof failure) {
                /* The child is exiting with 127; reap it here so its exit is not taken for a crash. */
                (void) waitpid(pid, NULL, 0);
                *ret_step = failure.step;
                return failure.error > 0 ? -failure.error : -EIO;
        }

        *ret_pid = pid;
        return 0;
}

int spawn_worker(const struct spawn_request *req, pid_t *ret_pid, struct spawn_outcome *ret) {
        char listen_pid[32] = "LISTEN_PID=", watchdog_pid[32] = "WATCHDOG_PID=";
        char listen_fds[32], watchdog_usec[48];
        struct spawn_worker_env worker_env;
        _cleanup_free_ char **envp = NULL;
        size_t n_tpl = 0, k = 0;
        enum spawn_step step;

        *ret = (struct spawn_outcome) {};
        while (req->env_template && req->env_template[n_tpl])
                n_tpl++;
        envp = calloc(n_tpl + SPAWN_WORKER_ENV_N + 6, sizeof *envp);
        if (!envp)
                return -ENOMEM;
        for (size_t i = 0; i < n_tpl; i++)
                envp[k++] = req->env_template[i];
        if (!req->template)
                k += spawn_worker_env_format(&worker_env, req->worker_id, req->generation, req->max_requests,
                                             envp + k);
        if (req->n_listen_fds > 0) {
                snprintf(listen_fds, sizeof listen_fds, "LISTEN_FDS=%zu", req->n_listen_fds);
                envp[k++] = listen_fds;
                envp[k++] = listen_pid;
        }
        if (req->watchdog_usec > 0 && !req->template) {
                snprintf(watchdog_usec, sizeof watchdog_usec, "WATCHDOG_USEC=%llu", req->watchdog_usec);
                envp[k++] = watchdog_usec;
                envp[k++] = watchdog_pid;
        }

        char *child_listen_pid = req->n_listen_fds > 0 ? listen_pid : NULL;
        char *child_watchdog_pid = req->watchdog_usec > 0 && !req->template ? watchdog_pid : NULL;
        int r = spawn_attempt(req, req->cgroup_fd, envp, child_listen_pid, child_watchdog_pid, ret_pid, &step);
        if (r < 0 && step == SPAWN_STEP_CGROUP) {
                /* A worker outside its leaf, accounted through /proc, serves; one that is
                 * not started does not. */
                ret->cgroup_error = r;
                r = spawn_attempt(req, -1, envp, child_listen_pid, child_watchdog_pid, ret_pid, &step);
        }
        if (r < 0 && step == SPAWN_STEP_DIRECTORY)
                ret->directory_failed = true;
        if (r < 0 && step == SPAWN_STEP_SETGROUPS)
                ret->credentials_step = "setgroups";
        if (r < 0 && step == SPAWN_STEP_SETRESGID)
                ret->credentials_step = "setresgid";
        if (r < 0 && step == SPAWN_STEP_SETRESUID)
                ret->credentials_step = "setresuid";
        return r;
}
