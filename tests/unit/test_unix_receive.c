/* One receive on an AF_UNIX socket: the data, the sender's credentials, truncation at the
 * buffer's size, passed fds closed and counted (beyond what fits too), nothing queued, and
 * an empty packet against the end of a stream, all over real socketpairs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "memward/base/macro.h"
#include "memward/linux/unix_receive.h"

/* A socketpair for each test: ours receives, theirs sends. */
struct pair {
        int ours, theirs;
};

static int pair_teardown(void **state) {
        struct pair *p = *state;

        safe_close(p->ours);
        safe_close(p->theirs);
        free(p);
        return 0;
}

static int pair_setup(void **state, int type, bool passcred) {
        struct pair *p = malloc(sizeof *p);
        int fds[2], one = 1;

        if (!p || socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, fds) < 0) {
                free(p);
                return -1;
        }
        p->ours = fds[0];
        p->theirs = fds[1];
        *state = p;
        if (passcred && setsockopt(p->ours, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0) {
                pair_teardown(state); /* cmocka runs no teardown after a failed setup */
                return -1;
        }
        return 0;
}

static int datagrams_with_credentials(void **state) {
        return pair_setup(state, SOCK_DGRAM, true);
}

static int datagrams(void **state) {
        return pair_setup(state, SOCK_DGRAM, false);
}

static int packets_with_credentials(void **state) {
        return pair_setup(state, SOCK_SEQPACKET, true);
}

/* The fds this process has open, as the kernel lists them (the listing's own fd included,
 * the same on every call). */
static unsigned open_fd_count(void) {
        DIR *d = opendir("/proc/self/fd");
        unsigned n = 0;

        assert_non_null(d);
        for (struct dirent *e; (e = readdir(d));)
                if (e->d_name[0] != '.')
                        n++;
        closedir(d);
        return n;
}

/* One receive that must succeed; *ret is poisoned first, so every field is the helper's. */
static struct unix_received receive(int fd, void *buf, size_t size) {
        struct unix_received r;

        memset(&r, 0xA5, sizeof r);
        assert_int_equal(unix_receive_with_credentials(fd, buf, size, &r), 0);
        return r;
}

/* Sends text with count copies of /dev/null's fd attached (SCM_RIGHTS). */
static void send_with_fds(int fd, const char *text, unsigned count) {
        _cleanup_close_ int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
        size_t space = CMSG_SPACE(sizeof(int) * count);
        _cleanup_free_ void *control = calloc(1, space);
        struct iovec iov = { .iov_base = (char *) text, .iov_len = strlen(text) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = space };

        assert_true(devnull >= 0);
        assert_non_null(control);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * count);
        for (unsigned i = 0; i < count; i++)
                memcpy(CMSG_DATA(c) + i * sizeof(int), &devnull, sizeof devnull);
        assert_true(sendmsg(fd, &mh, MSG_DONTWAIT) == (ssize_t) iov.iov_len);
}

static void test_nothing_queued(void **state) {
        struct pair *p = *state;
        char buf[16];
        struct unix_received r, poisoned;

        memset(&r, 0xA5, sizeof r);
        poisoned = r;
        /* No O_NONBLOCK on the socket: the receive itself must not wait (were it to, SIGALRM
         * ends the binary, a failure, rather than hanging the run). */
        alarm(30);
        assert_int_equal(unix_receive_with_credentials(p->ours, buf, sizeof buf, &r), -EAGAIN);
        alarm(0);
        assert_memory_equal(&r, &poisoned, sizeof r); /* untouched */
}

static void test_not_a_socket(void **state) {
        (void) state;
        char buf[16];
        struct unix_received r;
        _cleanup_close_ int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);

        assert_true(devnull >= 0);
        assert_int_equal(unix_receive_with_credentials(devnull, buf, sizeof buf, &r), -ENOTSOCK);
}

/* The sender's credentials come with SO_PASSCRED; without it nothing names the sender,
 * and the credentials are all 0, not stale. */
static void test_credentials(void **state) {
        struct pair *p = *state;
        char buf[16];
        int one = 1;

        assert_true(send(p->theirs, "x", 1, 0) == 1);
        struct unix_received r = receive(p->ours, buf, sizeof buf);
        assert_false(r.has_credentials);
        assert_true(r.credentials.pid == 0 && r.credentials.uid == 0 && r.credentials.gid == 0);
        assert_int_equal(r.length, 1);

        assert_int_equal(setsockopt(p->ours, SOL_SOCKET, SO_PASSCRED, &one, sizeof one), 0);
        assert_true(send(p->theirs, "READY=1", 7, 0) == 7);
        r = receive(p->ours, buf, sizeof buf);
        assert_true(r.has_credentials);
        assert_int_equal(r.credentials.pid, getpid());
        assert_int_equal(r.credentials.uid, getuid());
        assert_int_equal(r.credentials.gid, getgid());
        assert_int_equal(r.length, 7);
        assert_memory_equal(buf, "READY=1", 7);
        assert_false(r.truncated);
        assert_int_equal(r.n_fds, 0);
}

/* Exactly size bytes fit; one more is truncated, only size bytes are written, and the
 * rest of that message is gone: the next receive is the next message. */
static void test_truncation(void **state) {
        struct pair *p = *state;
        char buf[9];
        struct unix_received r;

        assert_true(send(p->theirs, "12345678", 8, 0) == 8);
        assert_true(send(p->theirs, "abcdefghi", 9, 0) == 9);
        assert_true(send(p->theirs, "z", 1, 0) == 1);

        memset(buf, '#', sizeof buf);
        r = receive(p->ours, buf, 8);
        assert_false(r.truncated);
        assert_int_equal(r.length, 8);
        assert_memory_equal(buf, "12345678#", 9);

        r = receive(p->ours, buf, 8);
        assert_true(r.truncated);
        assert_int_equal(r.length, 8);
        assert_memory_equal(buf, "abcdefgh#", 9);
        assert_true(r.has_credentials); /* the data is cut, not what came with it */

        r = receive(p->ours, buf, 8);
        assert_false(r.truncated);
        assert_int_equal(r.length, 1);
        assert_memory_equal(buf, "z", 1);
}

/* Every passed fd is closed and counted: as many as the buffer holds, and past that the
 * kernel's drop counts as one more. The process has no more fds open after each receive. */
static void test_passed_fds_closed(void **state) {
        struct pair *p = *state;
        static const struct {
                unsigned sent, counted;
        } cases[] = {
                { 1, 1 },
                { 3, 3 },
                { UNIX_RECEIVE_FDS_MAX, UNIX_RECEIVE_FDS_MAX },         /* all fit */
                { UNIX_RECEIVE_FDS_MAX + 1, UNIX_RECEIVE_FDS_MAX + 1 }, /* 16 closed, 1 dropped */
                { 64, UNIX_RECEIVE_FDS_MAX + 1 },                       /* 16 closed, 48 dropped */
        };
        char buf[16];
        struct unix_received r;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                send_with_fds(p->theirs, "WATCHDOG=1", cases[i].sent);
                unsigned before = open_fd_count();
                r = receive(p->ours, buf, sizeof buf);
                if (r.n_fds != cases[i].counted)
                        fail_msg("%u fds sent: %u counted, expected %u", cases[i].sent, r.n_fds, cases[i].counted);
                assert_int_equal(open_fd_count(), before);
                assert_int_equal(r.length, 10);
                assert_memory_equal(buf, "WATCHDOG=1", 10);
                assert_true(r.has_credentials);
        }
        assert_int_equal(unix_receive_with_credentials(p->ours, buf, sizeof buf, &r), -EAGAIN);
}

/* An empty packet and the end of the stream look the same here (length 0); the caller
 * tells them apart. Only the live sender's packet carries credentials. */
static void test_empty_packet_and_end_of_stream(void **state) {
        struct pair *p = *state;
        char buf[16];
        struct unix_received r;

        assert_true(send(p->theirs, "", 0, 0) == 0);
        r = receive(p->ours, buf, sizeof buf);
        assert_int_equal(r.length, 0);
        assert_false(r.truncated);
        assert_true(r.has_credentials);

        p->theirs = safe_close(p->theirs);
        r = receive(p->ours, buf, sizeof buf);
        assert_int_equal(r.length, 0);
        assert_false(r.truncated);
        assert_false(r.has_credentials);
        assert_int_equal(r.n_fds, 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_nothing_queued, datagrams_with_credentials, pair_teardown),
                cmocka_unit_test(test_not_a_socket),
                cmocka_unit_test_setup_teardown(test_credentials, datagrams, pair_teardown),
                cmocka_unit_test_setup_teardown(test_truncation, packets_with_credentials, pair_teardown),
                cmocka_unit_test_setup_teardown(test_passed_fds_closed, datagrams_with_credentials, pair_teardown),
                cmocka_unit_test_setup_teardown(test_empty_packet_and_end_of_stream, packets_with_credentials, pair_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
