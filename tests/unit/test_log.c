/* Event lines as a log collector reads them: whatever bytes a value holds (a worker's
 * STATUS= text), a logfmt line is valid UTF-8 and a JSON line is valid JSON and UTF-8
 * carrying the value, with U+FFFD for what was not UTF-8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "memward/base/log.h"
#include "memward/base/macro.h"
#include "memward/base/utf8.h"
#include "memward/cli/status.h"

#define REPLACEMENT "\xef\xbf\xbd" /* U+FFFD */

static int setup(void **state) {
        (void) state;
        /* Lines must reach stderr as text, not a journald socket of the test's runner. */
        unsetenv("JOURNAL_STREAM");
        return 0;
}

static void assert_utf8(const char *s) {
        for (const unsigned char *p = (const unsigned char *) s; *p;) {
                size_t n = utf8_decode(p, NULL);
                if (n == 0)
                        fail_msg("not UTF-8 at byte %zu (0x%02x) of: %s", (size_t) (p - (const unsigned char *) s), *p,
                                 s);
                p += n;
        }
}

/* The line one status event with worker_status=<value quoted> writes to stderr. */
static char *status_line(enum log_format format, const char *value) {
        char quoted[LOG_QUOTE_MAX], *line = calloc(1, 8192);
        FILE *f = tmpfile();
        int saved = dup(STDERR_FILENO);

        assert_non_null(line);
        assert_non_null(f);
        assert_true(saved >= 0);
        assert_true(dup2(fileno(f), STDERR_FILENO) >= 0);
        log_set_format(format);
        log_info("status", "worker=1 worker_status=%s", log_quote(quoted, sizeof quoted, value));
        log_set_format(LOG_FORMAT_LOGFMT);
        assert_true(dup2(saved, STDERR_FILENO) >= 0);
        safe_close(saved);

        rewind(f);
        size_t n = fread(line, 1, 8191, f);
        fclose(f);
        assert_true(n > 0 && line[n - 1] == '\n');
        line[n - 1] = '\0';
        assert_null(strchr(line, '\n'));
        return line;
}

static void test_json_line_invalid_utf8(void **state) {
        (void) state;
        struct json_value *doc = NULL;

        /* A stray byte, a sequence cut short, a valid character, quotes and controls. */
        _cleanup_free_ char *line = status_line(LOG_FORMAT_JSON, "bad \xff \xc3( caf\xc3\xa9 \"q\" a\\b\n\x01");
        assert_utf8(line);
        if (json_parse(line, strlen(line), &doc) < 0)
                fail_msg("not JSON: %s", line);
        assert_string_equal(json_get_string(doc, "event", NULL), "status");
        assert_string_equal(json_get_string(doc, "worker", NULL), "1");
        assert_string_equal(json_get_string(doc, "worker_status", NULL),
                            "bad " REPLACEMENT " " REPLACEMENT "( caf\xc3\xa9 \"q\" a\\b\n\x01");
        json_free(doc);
}

static void test_logfmt_line_invalid_utf8(void **state) {
        (void) state;

        _cleanup_free_ char *line = status_line(LOG_FORMAT_LOGFMT, "bad \xff \xc3( caf\xc3\xa9");
        assert_utf8(line);
        assert_non_null(strstr(line, " worker_status=\"bad \\xff \\xc3( caf\xc3\xa9\""));
}

static void test_quote_cut_between_characters(void **state) {
        (void) state;
        char q[10];

        /* Three 2-byte characters and the quotes fit in 10 bytes; half of a fourth must not. */
        assert_string_equal(log_quote(q, sizeof q, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"),
                            "\"\xc3\xa9\xc3\xa9\xc3\xa9\"");
        assert_string_equal(log_quote(q, sizeof q, "\xf0\x9f\x98\x80\xf0\x9f\x98\x80"), "\"\xf0\x9f\x98\x80\"");
        assert_string_equal(log_quote(q, sizeof q, "a\"b\"c\"d\"e"), "\"a\\\"b\\\"c\"");
        assert_string_equal(log_quote(q, sizeof q, "plain"), "plain");
}

/* Fills fd with bytes until a write would block (it is made non-blocking for that,
 * through a file description of our own, so fd itself keeps its flags). */
static void fill(int fd) {
        char junk[4096], path[64];

        memset(junk, 'j', sizeof junk);
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        int own = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (own < 0) { /* a socket: per call */
                while (send(fd, junk, sizeof junk, MSG_DONTWAIT) > 0)
                        ;
                return;
        }
        while (write(own, junk, sizeof junk) > 0 || errno != EAGAIN) {
                /* a partial write leaves less than a page */
        }
        safe_close(own);
}

static void on_alarm(int sig) {
        (void) sig;
        static const char msg[] = "a log call blocked on a full stderr\n";
        (void) !write(STDOUT_FILENO, msg, sizeof msg - 1);
        _exit(1);
}

/* stderr (fd 2) is a pipe or a socket nobody reads, shared with the workers: lines are
 * dropped, never waited for, fd 2 stays blocking for everyone else, and once there is
 * room the next line is preceded by the count. */
static void full_stderr(int rd, int wr) {
        int saved = dup(STDERR_FILENO);
        uint64_t before = log_dropped_total(LOG_SINK_STDERR);
        char buf[65536];

        assert_true(saved >= 0);
        assert_true(dup2(wr, STDERR_FILENO) >= 0);
        safe_close(wr);
        fill(STDERR_FILENO);
        (void) signal(SIGALRM, on_alarm);
        alarm(10);
        for (int i = 0; i < 100; i++)
                log_info("test_line", "i=%d", i);
        alarm(0);
        assert_int_equal(fcntl(STDERR_FILENO, F_GETFL) & O_NONBLOCK, 0);
        assert_int_equal(log_dropped_total(LOG_SINK_STDERR) - before, 100);

        /* Drain, then one more line. */
        assert_int_equal(fcntl(rd, F_SETFL, O_NONBLOCK), 0);
        while (read(rd, buf, sizeof buf) > 0)
                ;
        log_info("test_line", "i=last");
        assert_true(dup2(saved, STDERR_FILENO) >= 0);
        safe_close(saved);
        ssize_t n = read(rd, buf, sizeof buf - 1);
        safe_close(rd);
        assert_true(n > 0);
        buf[n] = '\0';
        const char *note = strstr(buf, " level=warning event=log_lines_dropped count=100 sink=stderr\n");
        const char *last = strstr(buf, " level=info event=test_line i=last\n");
        if (!note || !last || note > last)
                fail_msg("after the drain: %s", buf);
        assert_int_equal(log_dropped_total(LOG_SINK_STDERR) - before, 100);
}

static void test_stderr_pipe_full(void **state) {
        (void) state;
        int p[2];

        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        full_stderr(p[0], p[1]);
}

static void test_stderr_socket_full(void **state) {
        (void) state;
        int p[2];

        /* As journald's stream for a service whose journald is stopped. */
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p), 0);
        full_stderr(p[0], p[1]);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_stderr_pipe_full),
                cmocka_unit_test(test_stderr_socket_full),
                cmocka_unit_test(test_json_line_invalid_utf8),
                cmocka_unit_test(test_logfmt_line_invalid_utf8),
                cmocka_unit_test(test_quote_cut_between_characters),
        };
        return cmocka_run_group_tests(tests, setup, NULL);
}
