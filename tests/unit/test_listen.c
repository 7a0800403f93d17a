/* listen_address_open(): a fresh unix path, a stale socket replaced, a live one left alone
 * with -EADDRINUSE and not removed by an old owner's close, a regular file left alone with
 * -EEXIST, abstract names, TCP with the flags asked for, and "[::]" following
 * net.ipv6.bindv6only. Real sockets in a temporary directory; no root needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "skip_because.h"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "memward/base/macro.h"
#include "memward/linux/address.h"
#include "memward/linux/listen.h"

struct fixture {
        char dir[64];
        char path[128];
        char address[160];
};

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof *f);
        assert_non_null(f);
        snprintf(f->dir, sizeof f->dir, "/tmp/memward-test-listen-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->path, sizeof f->path, "%s/app.sock", f->dir);
        snprintf(f->address, sizeof f->address, "unix:%s", f->path);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        (void) unlink(f->path);
        (void) rmdir(f->dir);
        free(f);
        return 0;
}

static struct listen_address parse(const char *s) {
        struct listen_address a;
        assert_int_equal(listen_address_parse(s, &a), 0);
        return a;
}

static void assert_listening(int fd) {
        int v = 0;
        socklen_t len = sizeof v;
        assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len), 0);
        assert_int_equal(v, 1);
        assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
}

static void assert_connects(const char *path) {
        struct listen_address a;
        char s[160];

        snprintf(s, sizeof s, "unix:%s", path);
        assert_int_equal(listen_address_parse(s, &a), 0);
        int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(c >= 0);
        if (connect(c, &a.sockaddr.sa, a.length) < 0)
                fail_msg("connect(%s): %m", path);
        safe_close(c);
}

static void test_unix_fresh_stale_and_in_use(void **state) {
        struct fixture *f = *state;
        struct listen_address a = parse(f->address);
        struct unix_socket_file file = {}, file2 = {};
        struct stat st, st2;
        int fd = -1, fd2 = -1;

        assert_string_equal(listen_address_unix_path(&a), f->path);

        assert_int_equal(listen_address_open(&a, 0, 0, NULL, &fd, &file), 0);
        assert_listening(fd);
        assert_false(fcntl(fd, F_GETFL) & O_NONBLOCK);
        assert_int_equal(lstat(f->path, &st), 0);
        assert_true(S_ISSOCK(st.st_mode));
        assert_string_equal(file.path, f->path);
        assert_true(file.dev == st.st_dev && file.ino == st.st_ino);

        /* Something listens there (another memward on the same path): its socket stays. */
        assert_int_equal(listen_address_open(&a, 16, SOCK_NONBLOCK, NULL, &fd2, &file2), -EADDRINUSE);
        assert_int_equal(fd2, -1);
        assert_int_equal(lstat(f->path, &st2), 0);
        assert_true(st2.st_ino == st.st_ino && st2.st_ctim.tv_nsec == st.st_ctim.tv_nsec);
        assert_connects(f->path);

        /* The file of an earlier run whose owner is gone (a crash) is replaced. Not within
         * the same clock tick: kernels without fine-grained timestamps would give the new
         * file the old change time, which the processes this stands for never manage. */
        safe_close(fd);
        (void) usleep(20 * 1000);
        assert_int_equal(listen_address_open(&a, 16, SOCK_NONBLOCK, NULL, &fd2, &file2), 0);
        assert_listening(fd2);
        assert_true(fcntl(fd2, F_GETFL) & O_NONBLOCK);
        assert_connects(f->path);

        /* The first run's record no longer names the file there (even where the file system
         * gave the new one the same inode number): closing it removes nothing. */
        unix_socket_file_remove(&file);
        assert_int_equal(file.path[0], '\0');
        assert_connects(f->path);
        unix_socket_file_remove(&file2);
        assert_int_equal(lstat(f->path, &st), -1);
        assert_int_equal(errno, ENOENT);
        safe_close(fd2);
}

/* The socket file's mode does not depend on our umask; owner and group are set before
 * listen(). umask 0 and 0077 around the call stand for a PID 1 started with 0000 and a
 * locked-down service. */
static void test_unix_access(void **state) {
        struct fixture *f = *state;
        struct listen_address a = parse(f->address);
        struct unix_socket_file file = {};
        struct stat st;
        int fd = -1;

        mode_t saved = umask(0);
        assert_int_equal(listen_address_open(&a, 0, 0, NULL, &fd, &file), 0);
        assert_int_equal(lstat(f->path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0666);     /* the default, as systemd's SocketMode= */
        assert_int_equal(umask(0), 0);                  /* ours is back */
        unix_socket_file_remove(&file);
        safe_close(fd);

        (void) umask(0077);
        struct unix_socket_access access = { .mode = 0660, .uid = (uid_t) -1, .gid = (gid_t) -1 };
        if (geteuid() == 0)
                access.gid = 65534;
        assert_int_equal(listen_address_open(&a, 0, 0, &access, &fd, &file), 0);
        assert_int_equal(lstat(f->path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0660);
        assert_int_equal(st.st_uid, geteuid());
        assert_int_equal(st.st_gid, geteuid() == 0 ? 65534 : getegid());
        /* The record follows the change time the chown gave the file: closing removes it. */
        assert_true(file.ctime.tv_sec == st.st_ctim.tv_sec && file.ctime.tv_nsec == st.st_ctim.tv_nsec);
        assert_int_equal(umask(saved), 0077);
        unix_socket_file_remove(&file);
        assert_int_equal(lstat(f->path, &st), -1);
        safe_close(fd);

        /* An owner we may not give the file away to: the file is not left behind. */
        if (geteuid() != 0) {
                access.uid = 0;
                assert_int_equal(listen_address_open(&a, 0, 0, &access, &fd, &file), -EPERM);
                assert_int_equal(lstat(f->path, &st), -1);
        }
}

static void test_unix_regular_file(void **state) {
        struct fixture *f = *state;
        struct listen_address a = parse(f->address);
        struct stat st;
        int fd = -1;

        int file = open(f->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        assert_true(file >= 0);
        assert_int_equal(write(file, "data\n", 5), 5);
        safe_close(file);

        /* Not a socket: reported, never deleted, *ret_fd untouched. */
        assert_int_equal(listen_address_open(&a, 0, 0, NULL, &fd, NULL), -EEXIST);
        assert_int_equal(fd, -1);
        assert_int_equal(lstat(f->path, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_size, 5);

        /* A directory is no socket either. */
        assert_int_equal(unlink(f->path), 0);
        assert_int_equal(mkdir(f->path, 0755), 0);
        assert_int_equal(listen_address_open(&a, 0, 0, NULL, &fd, NULL), -EEXIST);
        assert_int_equal(rmdir(f->path), 0);
}

static void test_unix_missing_directory(void **state) {
        struct fixture *f = *state;
        char s[256];
        int fd = -1;

        snprintf(s, sizeof s, "unix:%s/no-such-dir/app.sock", f->dir);
        struct listen_address a = parse(s);
        assert_int_equal(listen_address_open(&a, 0, 0, NULL, &fd, NULL), -ENOENT);
        assert_int_equal(fd, -1);
}

static void test_unix_abstract(void **state) {
        char s[64];
        int fd = -1;
        (void) state;

        snprintf(s, sizeof s, "unix:@memward-test-listen-%d", (int) getpid());
        struct listen_address a = parse(s);
        /* No file: nothing to replace at open or to unlink at close. */
        assert_null(listen_address_unix_path(&a));
        assert_int_equal(listen_address_open(&a, 0, 0, NULL, &fd, NULL), 0);
        assert_listening(fd);
        safe_close(fd);
}

static void test_tcp(void **state) {
        struct listen_address a = parse("tcp://127.0.0.1:8000");
        int fd = -1, v = 0;
        socklen_t len = sizeof v;
        (void) state;

        assert_null(listen_address_unix_path(&a));
        a.sockaddr.in.sin_port = 0; /* any free port */
        assert_int_equal(listen_address_open(&a, 0, SOCK_NONBLOCK, NULL, &fd, NULL), 0);
        assert_listening(fd);
        assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
        assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &v, &len), 0);
        assert_int_equal(v, 1);
        safe_close(fd);
}

static int sockopt(int fd, int level, int name) {
        int v = -1;
        socklen_t len = sizeof v;
        assert_int_equal(getsockopt(fd, level, name, &v, &len), 0);
        return v;
}

/* What each accepted connection inherits from the listener: the point of setting them there. */
static void test_tcp_options_reach_accepted_connections(void **state) {
        struct listen_address a = parse("tcp://127.0.0.1:8000");
        struct listen_options defaults = LISTEN_OPTIONS_DEFAULT;
        struct listen_options all = { .nodelay = true, .keepalive = true, .defer_accept = 1500 * USEC_PER_MSEC };
        struct sockaddr_in bound;
        socklen_t len = sizeof bound;
        int fd = -1;
        (void) state;

        assert_true(defaults.nodelay);
        assert_false(defaults.keepalive);

        a.sockaddr.in.sin_port = 0;
        assert_int_equal(listen_address_open(&a, 0, 0, NULL, &fd, NULL), 0);
        /* A fresh socket has none of them: the test would pass without the call otherwise. */
        assert_int_equal(sockopt(fd, IPPROTO_TCP, TCP_NODELAY), 0);
        assert_int_equal(sockopt(fd, SOL_SOCKET, SO_KEEPALIVE), 0);
        assert_int_equal(listen_socket_set_options(fd, &all), 1);
        assert_int_equal(sockopt(fd, IPPROTO_TCP, TCP_NODELAY), 1);
        assert_int_equal(sockopt(fd, SOL_SOCKET, SO_KEEPALIVE), 1);
        assert_true(sockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT) >= 2); /* 1.5 s up to whole seconds */

        /* Never turns one off: an inherited socket keeps what its .socket unit chose. */
        assert_int_equal(listen_socket_set_options(fd, &defaults), 1);
        assert_int_equal(sockopt(fd, SOL_SOCKET, SO_KEEPALIVE), 1);

        assert_int_equal(getsockname(fd, (struct sockaddr *) &bound, &len), 0);
        int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(c >= 0);
        assert_int_equal(connect(c, (struct sockaddr *) &bound, len), 0);
        /* TCP_DEFER_ACCEPT holds a connection back until it sends something. */
        assert_int_equal(write(c, "x", 1), 1);
        int conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
        assert_true(conn >= 0);
        assert_int_equal(sockopt(conn, IPPROTO_TCP, TCP_NODELAY), 1);
        assert_int_equal(sockopt(conn, SOL_SOCKET, SO_KEEPALIVE), 1);
        safe_close(conn);
        safe_close(c);
        safe_close(fd);
}

static void test_unix_options_left_alone(void **state) {
        struct fixture *f = *state;
        struct listen_address a = parse(f->address);
        struct listen_options defaults = LISTEN_OPTIONS_DEFAULT;
        struct unix_socket_file file = {};
        int fd = -1;

        assert_int_equal(listen_address_open(&a, 0, 0, NULL, &fd, &file), 0);
        assert_int_equal(listen_socket_set_options(fd, &defaults), 0);
        safe_close(fd);
        unix_socket_file_remove(&file);
}

static void test_tcp_v6_follows_sysctl(void **state) {
        struct listen_address a = parse("tcp://[::]:8000");
        int fd = -1, v = -1, sysctl = 0;
        socklen_t len = sizeof v;
        (void) state;

        FILE *s = fopen("/proc/sys/net/ipv6/bindv6only", "re");
        if (!s) {
                skip_because("no /proc/sys/net/ipv6: no IPv6 in this kernel or namespace");
                return;
        }
        assert_int_equal(fscanf(s, "%d", &sysctl), 1);
        fclose(s);

        a.sockaddr.in6.sin6_port = 0;
        int r = listen_address_open(&a, 0, 0, NULL, &fd, NULL);
        if (r == -EAFNOSUPPORT || r == -EADDRNOTAVAIL) {
                skip_because("cannot bind [::]: no IPv6 address here");
                return;
        }
        assert_int_equal(r, 0);
        /* We leave IPV6_V6ONLY alone: "[::]" means what the host says it means. */
        assert_int_equal(getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, &len), 0);
        assert_int_equal(v, sysctl);
        safe_close(fd);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_unix_fresh_stale_and_in_use, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unix_access, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unix_regular_file, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unix_missing_directory, setup, teardown),
                cmocka_unit_test(test_unix_abstract),
                cmocka_unit_test(test_tcp),
                cmocka_unit_test(test_tcp_v6_follows_sysctl),
                cmocka_unit_test(test_tcp_options_reach_accepted_connections),
                cmocka_unit_test_setup_teardown(test_unix_options_left_alone, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
