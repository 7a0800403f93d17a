/* Starting a worker: fork, put it in its own process group (and cgroup leaf),
 * restore a clean signal state, hand it the listening sockets at fd 3… and exec.
 *
 * Exec failure is reported synchronously through a close-on-exec pipe, so the
 * caller can tell "command not found" (exit 127) from a worker that crashed. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The most supplementary groups a worker gets. Linux allows 65536 (NGROUPS_MAX); a
 * service account is in a handful. The list lives in the config, resolved at load, so
 * that the child between fork and exec allocates nothing and asks no NSS module. */
#define SPAWN_GROUPS_MAX 256U

/* Who the worker runs as: workers.user and workers.group, resolved to numbers by the
 * config loader (getpwnam_r/getgrnam_r/getgrouplist are not safe after fork). */
struct spawn_credentials {
        bool set_uid;                   /* setresuid(uid) */
        bool set_gid;                   /* setgroups(groups) and setresgid(gid) */
        uid_t uid;
        gid_t gid;
        size_t n_groups;                /* supplementary groups, as initgroups() gives them */
        gid_t groups[SPAWN_GROUPS_MAX];
};

/* Whether memward can start workers as c says. Returns 1 when the child has to switch
 * ids and may (memward has CAP_SETUID and CAP_SETGID, as root does), 0 when there is
 * nothing to switch (c sets nothing, or only ids memward runs as already and it lacks
 * the capabilities: an unprivileged memward running its workers as itself), or -EPERM
 * when the switch needs capabilities memward does not have. */
int spawn_credentials_check(const struct spawn_credentials *c);

struct spawn_request {
        char *const *argv;
        const char *directory;          /* NULL = inherit */
        char *const *env_template;      /* NULL-terminated, copied into the child's environment */
        unsigned worker_id;
        unsigned long long generation;
        unsigned long long watchdog_usec; /* 0 = no WATCHDOG_USEC/WATCHDOG_PID for the worker */
        unsigned long long max_requests; /* MEMWARD_MAX_REQUESTS, the worker's drawn request limit
                                          * (0 = none); not for a template */
        const int *listen_fds;
        size_t n_listen_fds;
        int cgroup_fd;                  /* directory fd of the worker's cgroup leaf, -1 = none */
        const char *oom_score_adj;      /* written to the child's oom_score_adj, NULL = inherit */
        const struct spawn_credentials *credentials; /* NULL = memward's own ids */
        bool set_umask;                 /* false = the worker inherits memward's umask */
        mode_t umask;                   /* the worker's umask when set_umask */
        /* A fork-server template (docs/fork-server.md §1) rather than a worker: control_fd
         * (its end of the control channel) is passed at fd 3+n_listen_fds, and the child
         * gets no MEMWARD_WORKER_ID/GENERATION/MAX_REQUESTS and no WATCHDOG_* (worker_id,
         * generation, max_requests and watchdog_usec are ignored); the caller's env_template carries MEMWARD_CONTROL_FD
         * and the rest. */
        bool template;
        int control_fd;
};

/* What spawn_worker() says beyond its return value. */
struct spawn_outcome {
        int cgroup_error;               /* the placement's negative errno; 0 = placed, or no leaf */
        bool directory_failed;          /* the error returned is chdir(req->directory)'s */
        const char *credentials_step;   /* "setgroups", "setresgid" or "setresuid" when the
                                         * error returned is that call's; NULL otherwise */
};

/* Starts the worker. On success returns 0 and the child's pid. When the command cannot
 * be executed returns the exec errno negated (-ENOENT, -EACCES, -ENOEXEC, …) after
 * reaping the child; other negative errnos mean pipe or fork failed. When it is the
 * working directory that cannot be entered, ret->directory_failed tells: its ENOENT is
 * not "command not found".
 * When the child cannot be placed into req->cgroup_fd (its cgroup.procs refuses it),
 * the worker is started again without the leaf, in memward's own cgroup, and
 * ret->cgroup_error is the placement's negative errno. Never is a placement error
 * returned as if the command could not run.
 * The child, in this order: joins its cgroup leaf (clone3 CLONE_INTO_CGROUP, or a write
 * to cgroup.procs), restores the signal state, takes its own process group, writes
 * oom_score_adj, drops to req->credentials (setgroups, setresgid, setresuid; the kernel
 * clears the parent-death signal on that, so it is set again), sets req->umask (when
 * set_umask), moves the sockets to fd 3…, enters req->directory and execs: directory and
 * command are reached with the worker's own ids. A failed switch is returned as that
 * call's negative errno, with ret->credentials_step naming the call. */
int spawn_worker(const struct spawn_request *req, pid_t *ret_pid, struct spawn_outcome *ret);

/* Whether an exec error of spawn_worker() means the command cannot run as configured
 * (not found, not executable, not a program, a path that cannot name it): trying again
 * will not help until someone changes the file or the config. False for errors that may
 * pass (-ENOMEM, -EAGAIN, -ETXTBSY, -EMFILE, ...). */
bool spawn_exec_error_is_permanent(int negative_errno);

/* The exit code a shell would use for an exec failure: 127 not found, 126 otherwise. */
int spawn_exec_error_to_exit_code(int negative_errno);

/* The variables that tell one worker who it is (docs/fork-server.md §2), the same for an
 * exec'd worker (spawn_worker()) and one the template forks (its SPAWN's ENV):
 * MEMWARD_WORKER_ID, MEMWARD_WORKER_GENERATION and MEMWARD_MAX_REQUESTS, as "NAME=VALUE"
 * strings held in the struct, each sized for its largest value. */
#define SPAWN_WORKER_ENV_N 3
struct spawn_worker_env {
        char id[sizeof "MEMWARD_WORKER_ID=" + 10];                     /* UINT_MAX: 10 digits */
        char generation[sizeof "MEMWARD_WORKER_GENERATION=" + 20];     /* 2^64 - 1: 20 digits */
        char max_requests[sizeof "MEMWARD_MAX_REQUESTS=" + 20];
};

/* Formats the three into e and points vars[0..SPAWN_WORKER_ENV_N-1] at them, in the
 * order above; returns SPAWN_WORKER_ENV_N, the count set. max_requests is the worker's
 * drawn request limit, 0 for none (the worker then gets MEMWARD_MAX_REQUESTS=0). Cannot
 * fail: every value fits. vars stays valid while e does. */
size_t spawn_worker_env_format(struct spawn_worker_env *e, unsigned worker_id, unsigned long long generation,
                               unsigned long long max_requests, char **vars);

/* Builds the part of the worker environment that is the same for every spawn: our own
 * environment minus the variables systemd gave *us* (NOTIFY_SOCKET, WATCHDOG_*,
 * LISTEN_*) and minus keys the config overrides, plus `extra` ("KEY=VALUE"). */
int spawn_env_template(char *const *environ_in, char *const *extra, char ***ret);
