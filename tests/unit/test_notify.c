/* Notify datagrams: the parser on good, garbage, oversized and NUL-laden input,
 * and the socket on real datagrams with credentials and passed fds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "memward/base/macro.h"
#include "memward/base/utf8.h"
#include "memward/linux/notify.h"

static int parse(const char *s, struct notify_message *m) {
        return notify_message_parse(s, strlen(s), m);
}

static void test_parse_ready_and_requests(void **state) {
        (void) state;
        struct notify_message m;
        assert_int_equal(parse("READY=1\nSTATUS=serving 4 requests\nX_REQUESTS=1043\nX_INFLIGHT=2\n", &m), 0);
        assert_true(m.ready);
        assert_false(m.watchdog);
        assert_true(m.has_status);
        assert_string_equal(m.status, "serving 4 requests");
        assert_true(m.has_requests);
        assert_true(m.requests == 1043);
        assert_true(m.has_inflight);
        assert_true(m.inflight == 2);
}

static void test_parse_only_one_means_true(void **state) {
        (void) state;
        struct notify_message m;
        assert_int_equal(parse("READY=0\nWATCHDOG=trigger\nSTOPPING=1", &m), 0);
        assert_false(m.ready);
        assert_false(m.watchdog);
        assert_true(m.stopping);
}

static void test_parse_unknown_keys_ignored(void **state) {
        (void) state;
        struct notify_message m;
        assert_int_equal(parse("MAINPID=4\nERRNO=2\nFDSTORE=1\nWATCHDOG=1", &m), 0);
        assert_true(m.watchdog);
        assert_false(m.has_requests);
        assert_int_equal(parse("", &m), 0);
        assert_int_equal(parse("\n\n", &m), 0);
}

static void assert_one_bad_line(const char *text) {
        struct notify_message m;
        assert_int_equal(parse(text, &m), 0);
        assert_int_equal(m.bad_lines, 1);
        assert_false(m.has_requests);
        assert_false(m.has_inflight);
}

/* A bad line is skipped and counted; the datagram's other lines still count. */
static void test_parse_malformed(void **state) {
        (void) state;
        struct notify_message m;
        assert_one_bad_line("READY");
        assert_one_bad_line("=1");
        assert_one_bad_line("X_REQUESTS=");
        assert_one_bad_line("X_REQUESTS=-1");
        assert_one_bad_line("X_REQUESTS=12a");
        assert_one_bad_line("X_REQUESTS= 12");
        assert_one_bad_line("X_REQUESTS=18446744073709551616");
        assert_one_bad_line("X_INFLIGHT=x");
        assert_one_bad_line("\xff\xfe\x01");

        assert_int_equal(parse("READY=1\ngarbage\nX_REQUESTS=7\nX_INFLIGHT=x\nSTATUS=ok", &m), 0);
        assert_int_equal(m.bad_lines, 2);
        assert_true(m.ready);
        assert_true(m.has_requests);
        assert_true(m.requests == 7);
        assert_false(m.has_inflight);
        assert_true(m.has_status);
        assert_string_equal(m.status, "ok");
        assert_int_equal(parse("READY=1\nWATCHDOG=1", &m), 0);
        assert_int_equal(m.bad_lines, 0);
}

static void test_parse_max_counter(void **state) {
        (void) state;
        struct notify_message m;
        assert_int_equal(parse("X_REQUESTS=18446744073709551615", &m), 0);
        assert_true(m.requests == UINT64_MAX);
}

/* What an early sender said in three datagrams, folded into one: READY=1 survives the
 * X_REQUESTS that came after it, the counts are the last ones. */
static void test_merge_keeps_ready_and_latest_counts(void **state) {
        (void) state;
        struct notify_message m, later;
        assert_int_equal(parse("READY=1\nSTATUS=booted", &m), 0);
        assert_int_equal(parse("X_REQUESTS=1\nX_INFLIGHT=1\nbogus", &later), 0);
        notify_message_merge(&m, &later);
        assert_int_equal(parse("X_REQUESTS=2\nWATCHDOG=1", &later), 0);
        notify_message_merge(&m, &later);
        assert_true(m.ready);
        assert_true(m.watchdog);
        assert_false(m.stopping);
        assert_true(m.has_status);
        assert_string_equal(m.status, "booted");
        assert_true(m.has_requests);
        assert_true(m.requests == 2);
        assert_false(m.has_inflight);   /* the last count came without one */
        assert_int_equal(m.bad_lines, 1);
        assert_int_equal(parse("STATUS=serving\nSTOPPING=1", &later), 0);
        notify_message_merge(&m, &later);
        assert_string_equal(m.status, "serving");
        assert_true(m.stopping);
        assert_true(m.requests == 2);
        /* An X_INFLIGHT without its X_REQUESTS is never paired with an older count. */
        assert_int_equal(parse("X_INFLIGHT=3", &later), 0);
        notify_message_merge(&m, &later);
        assert_true(m.requests == 2);
        assert_false(m.has_inflight);
}

static void test_parse_embedded_nul(void **state) {
        (void) state;
        struct notify_message m;
        static const char d[] = "READY=1\0X_REQUESTS=5";
        assert_int_equal(notify_message_parse(d, sizeof d - 1, &m), -EBADMSG);
}

static void test_parse_long_status_truncated(void **state) {
        (void) state;
        struct notify_message m;
        char buf[1024] = "STATUS=";
        memset(buf + 7, 'x', 900);
        buf[907] = '\0';
        assert_int_equal(parse(buf, &m), 0);
        assert_int_equal(strlen(m.status), NOTIFY_STATUS_MAX - 1);
}

/* The limit falls inside a character: it goes whole, and what is left stays UTF-8. */
static void test_parse_long_status_cut_between_characters(void **state) {
        (void) state;
        struct notify_message m;
        char buf[1024] = "STATUS=";

        for (size_t lead = NOTIFY_STATUS_MAX - 5; lead < NOTIFY_STATUS_MAX; lead++) {
                memset(buf + 7, 'x', lead);
                strcpy(buf + 7 + lead, "\xf0\x9f\x98\x80 \xc3\xa9");
                assert_int_equal(parse(buf, &m), 0);
                size_t n = strlen(m.status);
                for (size_t i = 0; i < n;) {
                        size_t len = utf8_decode((const unsigned char *) m.status + i, NULL);
                        if (len == 0)
                                fail_msg("%zu x's: STATUS cut to invalid UTF-8 at byte %zu of %zu", lead, i, n);
                        i += len;
                }
                /* Nothing dropped but the character that did not fit. */
                assert_int_equal(n, lead + 4 <= NOTIFY_STATUS_MAX - 1 ? lead + 4 : lead);
        }

        /* Bytes that are not UTF-8 at all are cut where the limit falls. */
        memset(buf + 7, 0x80, 200);
        buf[207] = '\0';
        assert_int_equal(parse(buf, &m), 0);
        assert_int_equal(strlen(m.status), NOTIFY_STATUS_MAX - 1);
}

static int connect_to(const char *address) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        size_t n = strlen(address);
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_true(address[0] == '@');
        memcpy(sa.sun_path + 1, address + 1, n - 1);
        assert_int_equal(connect(fd, (struct sockaddr *) &sa, (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n)), 0);
        return fd;
}

static void test_socket_credentials(void **state) {
        (void) state;
        char address[108];
        struct notify_datagram d;
        _cleanup_close_ int fd = notify_socket_open(address, sizeof address);
        assert_true(fd >= 0);
        _cleanup_close_ int c = connect_to(address);

        assert_int_equal(notify_socket_receive(fd, &d), -EAGAIN);
        assert_true(send(c, "READY=1", 7, 0) == 7);
        assert_int_equal(notify_socket_receive(fd, &d), 0);
        assert_int_equal(d.pid, getpid());
        assert_int_equal(d.length, 7);
        assert_false(d.truncated);
        assert_int_equal(d.n_fds, 0);
        assert_memory_equal(d.data, "READY=1", 7);
}

static void test_socket_oversized(void **state) {
        (void) state;
        char address[108], big[NOTIFY_DATAGRAM_MAX + 100];
        struct notify_datagram d;
        _cleanup_close_ int fd = notify_socket_open(address, sizeof address);
        _cleanup_close_ int c = connect_to(address);
        memset(big, 'A', sizeof big);
        assert_true(send(c, big, sizeof big, 0) == (ssize_t) sizeof big);
        assert_int_equal(notify_socket_receive(fd, &d), 0);
        assert_true(d.truncated);
}

static int count_open_fds(void) {
        int n = 0;
        for (int i = 0; i < 1024; i++)
                if (fcntl(i, F_GETFD) >= 0)
                        n++;
        return n;
}

static void test_socket_passed_fds_are_closed(void **state) {
        (void) state;
        char address[108];
        struct notify_datagram d;
        _cleanup_close_ int fd = notify_socket_open(address, sizeof address);
        _cleanup_close_ int c = connect_to(address);
        int passed[3];
        for (int i = 0; i < 3; i++)
                passed[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);

        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof passed)];
        } control = {};
        struct iovec iov = { .iov_base = (char *) "WATCHDOG=1", .iov_len = 10 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = sizeof control };
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof passed);
        memcpy(CMSG_DATA(cm), passed, sizeof passed);
        assert_true(sendmsg(c, &mh, 0) == 10);
        for (int i = 0; i < 3; i++)
                close(passed[i]);

        int before = count_open_fds();
        assert_int_equal(notify_socket_receive(fd, &d), 0);
        assert_int_equal(d.n_fds, 3);
        assert_int_equal(count_open_fds(), before);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_ready_and_requests),
                cmocka_unit_test(test_parse_only_one_means_true),
                cmocka_unit_test(test_parse_unknown_keys_ignored),
                cmocka_unit_test(test_parse_malformed),
                cmocka_unit_test(test_parse_max_counter),
                cmocka_unit_test(test_merge_keeps_ready_and_latest_counts),
                cmocka_unit_test(test_parse_embedded_nul),
                cmocka_unit_test(test_parse_long_status_truncated),
                cmocka_unit_test(test_parse_long_status_cut_between_characters),
                cmocka_unit_test(test_socket_credentials),
                cmocka_unit_test(test_socket_oversized),
                cmocka_unit_test(test_socket_passed_fds_are_closed),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
