/* spawn_worker() with a cgroup leaf it cannot place the child into: the worker still
 * runs (outside the leaf) and the failure is reported as a placement error, never as
 * "command not found" (which makes memward exit 127 before any worker was ready). No
 * root, no cgroup2: the "leaf" is a plain directory, which clone3(CLONE_INTO_CGROUP)
 * refuses and which has no cgroup.procs for the fork fallback to write to. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "skip_because.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "memward/base/macro.h"
#include "memward/linux/spawn.h"

struct fixture {
        char dir[64];
        int dir_fd;
};

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof *f);
        assert_non_null(f);
        snprintf(f->dir, sizeof f->dir, "/tmp/memward-test-spawn-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        f->dir_fd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(f->dir_fd >= 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        char cmd[128];
        close(f->dir_fd);
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
        assert_int_equal(system(cmd), 0);
        free(f);
        return 0;
}

/* Spawns `sh -c 'exit 7'` into cgroup_fd and returns what spawn_worker() said; the
 * worker's exit code in *ret_exit (-1 when none was started). */
static int spawn_exit_7(int cgroup_fd, int *ret_cgroup_error, int *ret_exit) {
        char *argv[] = { (char *) "/bin/sh", (char *) "-c", (char *) "exit 7", NULL };
        char *env[] = { NULL };
        struct spawn_request req = { .argv = argv, .env_template = env, .cgroup_fd = cgroup_fd };
        pid_t pid = -1;
        int status;

        struct spawn_outcome outcome = { .cgroup_error = 12345 };
        *ret_exit = -1;
        int r = spawn_worker(&req, &pid, &outcome);
        *ret_cgroup_error = outcome.cgroup_error;
        if (r == 0) {
                assert_int_equal(waitpid(pid, &status, 0), pid);
                assert_true(WIFEXITED(status));
                *ret_exit = WEXITSTATUS(status);
        }
        return r;
}

static void test_no_cgroup_procs(void **state) {
        const struct fixture *f = *state;
        int cgroup_error, exit_code;

        assert_int_equal(spawn_exit_7(f->dir_fd, &cgroup_error, &exit_code), 0);
        assert_int_equal(exit_code, 7);
        assert_int_equal(cgroup_error, -ENOENT);
}

/* cgroup.procs that cannot be written to (a directory: EISDIR even for root), an errno
 * that would otherwise read as "worker command cannot be executed". */
static void test_unwritable_cgroup_procs(void **state) {
        const struct fixture *f = *state;
        char path[128];
        int cgroup_error, exit_code;

        snprintf(path, sizeof path, "%s/cgroup.procs", f->dir);
        assert_int_equal(mkdir(path, 0755), 0);
        assert_int_equal(spawn_exit_7(f->dir_fd, &cgroup_error, &exit_code), 0);
        assert_int_equal(exit_code, 7);
        assert_int_equal(cgroup_error, -EISDIR);
}

/* Without a leaf nothing changes: placement is not in question, exec errors are exec errors. */
static void test_without_cgroup(void **state) {
        char *argv[] = { (char *) "/nonexistent/memward-test-worker", NULL };
        char *env[] = { NULL };
        struct spawn_request req = { .argv = argv, .env_template = env, .cgroup_fd = -1 };
        struct spawn_outcome outcome = { .cgroup_error = 12345 };
        int cgroup_error, exit_code;
        pid_t pid;
        (void) state;

        assert_int_equal(spawn_worker(&req, &pid, &outcome), -ENOENT);
        assert_int_equal(outcome.cgroup_error, 0);
        assert_false(outcome.directory_failed);
        assert_int_equal(spawn_exit_7(-1, &cgroup_error, &exit_code), 0);
        assert_int_equal(exit_code, 7);
        assert_int_equal(cgroup_error, 0);
}

/* A working directory that does not exist: ENOENT, but not the command's. */
static void test_missing_directory(void **state) {
        char *argv[] = { (char *) "/bin/sh", (char *) "-c", (char *) "exit 7", NULL };
        char *env[] = { NULL };
        struct spawn_request req = { .argv = argv, .env_template = env, .cgroup_fd = -1,
                                     .directory = "/nonexistent/memward-test-dir" };
        struct spawn_outcome outcome;
        pid_t pid;
        (void) state;

        assert_int_equal(spawn_worker(&req, &pid, &outcome), -ENOENT);
        assert_true(outcome.directory_failed);
        assert_int_equal(outcome.cgroup_error, 0);
}

/* As root: the worker reports the ids, groups, capabilities and umask it was given, from
 * a working directory entered with those ids. */
static void test_credentials(void **state) {
        const struct fixture *f = *state;
        char script[512], out[256] = "";
        char *argv[] = { (char *) "/bin/sh", (char *) "-c", script, NULL };
        char *env[] = { (char *) "PATH=/usr/bin:/bin", NULL };
        struct spawn_credentials cr = { .set_uid = true, .set_gid = true, .uid = 65534, .gid = 65534,
                                        .n_groups = 2, .groups = { 65534, 100 } };
        struct spawn_request req = { .argv = argv, .env_template = env, .cgroup_fd = -1, .directory = f->dir,
                                     .credentials = &cr, .set_umask = true, .umask = 0027 };
        struct spawn_outcome outcome;
        pid_t pid;
        int status;

        if (geteuid() != 0)
                skip_because("switching user needs root");
        assert_int_equal(spawn_credentials_check(&cr), 1);
        assert_int_equal(chmod(f->dir, 0777), 0);
        snprintf(script, sizeof script,
                 "echo \"$(id -u) $(id -g) $(id -G) $(umask) $(grep CapEff /proc/self/status | cut -f2)\" > out");
        assert_int_equal(spawn_worker(&req, &pid, &outcome), 0);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

        int fd = openat(f->dir_fd, "out", O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_true(read(fd, out, sizeof out - 1) > 0);
        close(fd);
        assert_string_equal(out, "65534 65534 65534 100 0027 0000000000000000\n");
}

/* Without the privilege to switch (root dropped to nobody first): spawn_credentials_check()
 * says so, and a spawn that tries anyway fails at setgroups, named, not as an exec error. */
static void test_credentials_not_permitted(void **state) {
        char *argv[] = { (char *) "/bin/true", NULL };
        char *env[] = { NULL };
        struct spawn_credentials root = { .set_uid = true, .set_gid = true, .uid = 0, .gid = 0, .n_groups = 1 };
        struct spawn_credentials self = { .set_uid = true, .set_gid = true, .uid = 65534, .gid = 65534,
                                          .n_groups = 1, .groups = { 65534 } };
        struct spawn_request req = { .argv = argv, .env_template = env, .cgroup_fd = -1, .credentials = &root };
        struct spawn_credentials none = {};
        int status;
        (void) state;

        assert_int_equal(spawn_credentials_check(&none), 0);
        if (geteuid() != 0)
                skip_because("switching user needs root");
        pid_t child = fork();
        assert_true(child >= 0);
        if (child == 0) {
                struct spawn_outcome outcome;
                pid_t pid;
                if (setgroups(1, self.groups) < 0 || setresgid(65534, 65534, 65534) < 0 ||
                    setresuid(65534, 65534, 65534) < 0)
                        _exit(10);
                if (spawn_credentials_check(&root) != -EPERM)
                        _exit(11);
                if (spawn_credentials_check(&self) != 0) /* nothing to switch: already nobody */
                        _exit(12);
                if (spawn_worker(&req, &pid, &outcome) != -EPERM)
                        _exit(13);
                if (!outcome.credentials_step || strcmp(outcome.credentials_step, "setgroups") != 0)
                        _exit(14);
                _exit(0);
        }
        assert_int_equal(waitpid(child, &status, 0), child);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

/* The errors that stop memward before any worker ran, and the shell's exit codes. */
static void test_exec_errors(void **state) {
        static const int permanent[] = { ENOENT, ENOTDIR, EACCES, EPERM, ENOEXEC, EISDIR, ELOOP, ENAMETOOLONG };
        static const int transient[] = { ENOMEM, EAGAIN, ETXTBSY, EMFILE, ENFILE, EIO, E2BIG, 0 };
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(permanent); i++)
                assert_true(spawn_exec_error_is_permanent(-permanent[i]));
        for (size_t i = 0; i < ELEMENTSOF(transient); i++)
                assert_false(spawn_exec_error_is_permanent(-transient[i]));
        assert_int_equal(spawn_exec_error_to_exit_code(-ENOENT), 127);
        assert_int_equal(spawn_exec_error_to_exit_code(-ENOTDIR), 127);
        assert_int_equal(spawn_exec_error_to_exit_code(-EACCES), 126);
        assert_int_equal(spawn_exec_error_to_exit_code(-ENOEXEC), 126);
}

/* A template (docs/fork-server.md §1): the sockets at 3…, its control channel right after
 * them, nothing above, LISTEN_PID its own pid, no MEMWARD_WORKER_ID/GENERATION and no
 * WATCHDOG_*. The shell checks and says "ok" on the channel. */
static void test_template_fds(void **state) {
        char *argv[] = { (char *) "/bin/sh", (char *) "-c",
                         (char *) "[ -e /proc/self/fd/3 ] || exit 3; [ -e /proc/self/fd/5 ] && exit 5; "
                                  "[ \"$LISTEN_PID\" = $$ ] || exit 6; [ \"$LISTEN_FDS\" = 1 ] || exit 7; "
                                  "[ -z \"$MEMWARD_WORKER_ID$MEMWARD_WORKER_GENERATION$WATCHDOG_USEC\" ] || exit 8; "
                                  "echo ok >&4",
                         NULL };
        char *env[] = { NULL };
        int listen_fds[2], control[2], status;
        char buf[8] = "";
        pid_t pid;
        (void) state;

        assert_int_equal(pipe2(listen_fds, O_CLOEXEC), 0);
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, control), 0);
        struct spawn_request req = {
                .argv = argv, .env_template = env, .cgroup_fd = -1, .listen_fds = listen_fds, .n_listen_fds = 1,
                .worker_id = 3, .generation = 9, .watchdog_usec = 1000000, .template = true, .control_fd = control[1],
        };
        struct spawn_outcome outcome;
        assert_int_equal(spawn_worker(&req, &pid, &outcome), 0);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        assert_int_equal(read(control[0], buf, sizeof buf - 1), 3);
        assert_string_equal(buf, "ok\n");
        close(listen_fds[0]);
        close(listen_fds[1]);
        close(control[0]);
        close(control[1]);
}

/* The three strings, exactly, also at the largest values each can take: no digit cut. */
static void test_worker_env_format(void **state) {
        struct spawn_worker_env e;
        char *vars[SPAWN_WORKER_ENV_N + 1] = {};
        (void) state;

        assert_int_equal(spawn_worker_env_format(&e, 3, 17, 30, vars), SPAWN_WORKER_ENV_N);
        assert_string_equal(vars[0], "MEMWARD_WORKER_ID=3");
        assert_string_equal(vars[1], "MEMWARD_WORKER_GENERATION=17");
        assert_string_equal(vars[2], "MEMWARD_MAX_REQUESTS=30");
        assert_null(vars[3]);

        assert_int_equal(spawn_worker_env_format(&e, 0, 0, 0, vars), SPAWN_WORKER_ENV_N);
        assert_string_equal(vars[0], "MEMWARD_WORKER_ID=0");
        assert_string_equal(vars[1], "MEMWARD_WORKER_GENERATION=0");
        assert_string_equal(vars[2], "MEMWARD_MAX_REQUESTS=0");

        assert_int_equal(spawn_worker_env_format(&e, UINT_MAX, ULLONG_MAX, ULLONG_MAX, vars), SPAWN_WORKER_ENV_N);
        assert_string_equal(vars[0], "MEMWARD_WORKER_ID=4294967295");
        assert_string_equal(vars[1], "MEMWARD_WORKER_GENERATION=18446744073709551615");
        assert_string_equal(vars[2], "MEMWARD_MAX_REQUESTS=18446744073709551615");
}

/* What an exec'd worker finds in its environment: the three, with the request's values. */
static void test_worker_env_exec(void **state) {
        char *argv[] = { (char *) "/bin/sh", (char *) "-c",
                         (char *) "[ \"$MEMWARD_WORKER_ID/$MEMWARD_WORKER_GENERATION/$MEMWARD_MAX_REQUESTS\" = 2/7/30 ]",
                         NULL };
        char *env[] = { (char *) "PATH=/usr/bin:/bin", NULL };
        struct spawn_request req = { .argv = argv, .env_template = env, .cgroup_fd = -1, .worker_id = 2,
                                     .generation = 7, .max_requests = 30 };
        struct spawn_outcome outcome;
        pid_t pid = -1;
        int status;
        (void) state;

        assert_int_equal(spawn_worker(&req, &pid, &outcome), 0);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_worker_env_format),
                cmocka_unit_test(test_worker_env_exec),
                cmocka_unit_test(test_exec_errors),
                cmocka_unit_test(test_missing_directory),
                cmocka_unit_test_setup_teardown(test_no_cgroup_procs, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unwritable_cgroup_procs, setup, teardown),
                cmocka_unit_test(test_without_cgroup),
                cmocka_unit_test(test_template_fds),
                cmocka_unit_test_setup_teardown(test_credentials, setup, teardown),
                cmocka_unit_test(test_credentials_not_permitted),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
