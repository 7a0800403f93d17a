/* Starting a worker: fork, put it in its own process group (and cgroup leaf),
 * restore a clean signal state, hand it the listening sockets at fd 3… and exec.
 *
 * Exec failure is reported synchronously through a close-on-exec pipe, so the
 * caller can tell "command not found" (exit 127) from a worker that crashed. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct spawn_request {
        char *const *argv;
        const char *directory;          /* NULL = inherit */
        char *const *env_template;      /* NULL-terminated, copied into the child's environment */
        unsigned worker_id;
        unsigned long long generation;
        unsigned long long watchdog_usec; /* 0 = no WATCHDOG_USEC/WATCHDOG_PID for the worker */
        const int *listen_fds;
        size_t n_listen_fds;
        int cgroup_fd;                  /* directory fd of the worker's cgroup leaf, -1 = none */
        const char *oom_score_adj;      /* written to the child's oom_score_adj, NULL = inherit */
        /* A fork-server template (docs/fork-server.md §1) rather than a worker: control_fd
         * (its end of the control channel) is passed at fd 3+n_listen_fds, and the child
         * gets no MEMWARD_WORKER_ID/GENERATION and no WATCHDOG_* (worker_id, generation and
         * watchdog_usec are ignored); the caller's env_template carries MEMWARD_CONTROL_FD
         * and the rest. */
        bool template;
        int control_fd;
};

/* What spawn_worker() says beyond its return value. */
struct spawn_outcome {
        int cgroup_error;               /* the placement's negative errno; 0 = placed, or no leaf */
        bool directory_failed;          /* the error returned is chdir(req->directory)'s */
};

/* Starts the worker. On success returns 0 and the child's pid. When the command cannot
 * be executed returns the exec errno negated (-ENOENT, -EACCES, -ENOEXEC, …) after
 * reaping the child; other negative errnos mean pipe or fork failed. When it is the
 * working directory that cannot be entered, ret->directory_failed tells: its ENOENT is
 * not "command not found".
 * When the child cannot be placed into req->cgroup_fd (its cgroup.procs refuses it),
 * the worker is started again without the leaf, in memward's own cgroup, and
 * ret->cgroup_error is the placement's negative errno. Never is a placement error
 * returned as if the command could not run. */
int spawn_worker(const struct spawn_request *req, pid_t *ret_pid, struct spawn_outcome *ret);

/* Whether an exec error of spawn_worker() means the command cannot run as configured
 * (not found, not executable, not a program, a path that cannot name it): trying again
 * will not help until someone changes the file or the config. False for errors that may
 * pass (-ENOMEM, -EAGAIN, -ETXTBSY, -EMFILE, ...). */
bool spawn_exec_error_is_permanent(int negative_errno);

/* The exit code a shell would use for an exec failure: 127 not found, 126 otherwise. */
int spawn_exec_error_to_exit_code(int negative_errno);

/* Builds the part of the worker environment that is the same for every spawn: our own
 * environment minus the variables systemd gave *us* (NOTIFY_SOCKET, WATCHDOG_*,
 * LISTEN_*) and minus keys the config overrides, plus `extra` ("KEY=VALUE"). */
int spawn_env_template(char *const *environ_in, char *const *extra, char ***ret);
