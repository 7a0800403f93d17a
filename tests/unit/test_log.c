/* Event lines as a log collector reads them: whatever bytes a value holds (a worker's
 * STATUS= text), a logfmt line is valid UTF-8 and a JSON line is valid JSON and UTF-8
 * carrying the value, with U+FFFD for what was not UTF-8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>
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

/* Logs "i=<label>" on fd 2, puts back the stderr saved, and expects in what rd reads
 * the report of count dropped lines and then that line. Closes rd. */
static void expect_report_then_line(int rd, int saved, unsigned count, const char *label) {
        char buf[65536], note[128], line[128];

        log_info("test_line", "i=%s", label);
        assert_true(dup2(saved, STDERR_FILENO) >= 0);
        safe_close(saved);
        ssize_t n = read(rd, buf, sizeof buf - 1);
        safe_close(rd);
        assert_true(n > 0);
        buf[n] = '\0';
        snprintf(note, sizeof note, " level=warning event=log_lines_dropped count=%u sink=stderr\n", count);
        snprintf(line, sizeof line, " level=info event=test_line i=%s\n", label);
        const char *at_note = strstr(buf, note), *at_line = strstr(buf, line);
        if (!at_note || !at_line || at_note > at_line)
                fail_msg("before i=%s: %s", label, buf);
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
        expect_report_then_line(rd, saved, 100, "last");
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

/* Reads what arrives on fd until nothing has for 1 s, appended to buf (NUL-terminated,
 * *len bytes so far). The pty's buffers move data on in a kernel worker: a read right
 * after a write may come too early. */
static void read_until_quiet(int fd, char *buf, size_t size, size_t *len) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };

        while (poll(&pfd, 1, 1000) == 1 && (pfd.revents & POLLIN)) {
                assert_true(*len + 1 < size);
                ssize_t n = read(fd, buf + *len, size - 1 - *len);
                if (n <= 0)
                        break;
                *len += (size_t) n;
        }
        buf[*len] = '\0';
}

/* A pty in raw mode: '\n' stays '\n' (no ONLCR), so the bytes read from the master
 * are the bytes written to the slave. */
static void open_pty(int *master, int *slave) {
        struct termios tio;

        *master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        assert_true(*master >= 0);
        assert_int_equal(grantpt(*master), 0);
        assert_int_equal(unlockpt(*master), 0);
        *slave = open(ptsname(*master), O_RDWR | O_NOCTTY | O_CLOEXEC);
        assert_true(*slave >= 0);
        assert_int_equal(tcgetattr(*slave, &tio), 0);
        cfmakeraw(&tio);
        assert_int_equal(tcsetattr(*slave, TCSANOW, &tio), 0);
}

/* A terminal nobody reads (a pty, as docker run -t or a terminal held by Ctrl-S) takes
 * what room it has of a write: part of a line. Every line must still arrive whole, the
 * report on a line of its own, and the lines that did not go out counted. */
static void test_stderr_terminal_partial(void **state) {
        (void) state;
        enum { LINES = 200, PAD = 2000 };
        static char out[1 << 20];
        char pad[PAD + 1], want[PAD + 16];
        size_t len = 0;
        int saved = dup(STDERR_FILENO), master, slave;
        uint64_t before = log_dropped_total(LOG_SINK_STDERR);

        open_pty(&master, &slave);
        assert_true(saved >= 0);
        assert_true(dup2(slave, STDERR_FILENO) >= 0);
        safe_close(slave);

        memset(pad, 'x', PAD);
        pad[PAD] = '\0';
        (void) signal(SIGALRM, on_alarm);
        alarm(10);
        /* ~2 KiB lines, 400 KiB in all: the pty holds some 64 KiB. */
        for (int i = 0; i < LINES; i++)
                log_info("test_line", "i=%d pad=%s", i, pad);
        alarm(0);
        read_until_quiet(master, out, sizeof out, &len);
        log_info("test_line", "i=last");
        read_until_quiet(master, out, sizeof out, &len);
        assert_true(dup2(saved, STDERR_FILENO) >= 0);
        safe_close(saved);
        safe_close(master);

        uint64_t dropped = log_dropped_total(LOG_SINK_STDERR) - before, told = 0;
        unsigned whole = 0;
        bool last = false;
        snprintf(want, sizeof want, " pad=%s", pad);
        assert_true(dropped > 0);
        assert_true(len > 0 && out[len - 1] == '\n');
        for (char *line = out, *end; *line; line = end + 1) {
                end = strchr(line, '\n');
                *end = '\0';
                const char *ev = strstr(line, " event=");
                int i;
                unsigned long long count;
                if (strncmp(line, "time=", 5) != 0 || !ev)
                        fail_msg("a line cut or glued onto another: %.200s", line);
                assert_false(last);
                if (sscanf(ev, " event=log_lines_dropped count=%llu sink=stderr", &count) == 1)
                        told += count;
                else if (strcmp(ev, " event=test_line i=last") == 0)
                        last = true;
                else if (sscanf(ev, " event=test_line i=%d", &i) == 1 && i >= 0 && i < LINES &&
                         strcmp(strstr(ev, " pad="), want) == 0)
                        whole++;
                else
                        fail_msg("a line cut or glued onto another: %.200s...%s", line, end - 100 > line ? end - 100 : line);
        }
        assert_true(last);
        assert_int_equal(whole + dropped, LINES);
        assert_int_equal(told, dropped);
}

/* A line that fails for good (EPIPE: nobody will ever read the pipe) is counted like
 * one the reader could not take, and told once stderr takes lines again. */
static void test_stderr_write_error_counted(void **state) {
        (void) state;
        int saved = dup(STDERR_FILENO), p[2];
        uint64_t before = log_dropped_total(LOG_SINK_STDERR);

        assert_true(saved >= 0);
        (void) signal(SIGPIPE, SIG_IGN);
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        assert_true(dup2(p[1], STDERR_FILENO) >= 0);
        safe_close(p[0]);
        safe_close(p[1]);
        for (int i = 0; i < 5; i++)
                log_info("test_line", "i=%d", i);
        uint64_t lost = log_dropped_total(LOG_SINK_STDERR) - before;

        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        assert_true(dup2(p[1], STDERR_FILENO) >= 0);
        safe_close(p[1]);
        expect_report_then_line(p[0], saved, 5, "after");
        assert_int_equal(lost, 5);
}

/* Whether the kernel writes to a pipe with RWF_NOWAIT (EOPNOTSUPP on kernels without). */
static bool pipe_has_nowait(void) {
        struct iovec iov = { .iov_base = (void *) "x", .iov_len = 1 };
        int p[2];

        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        ssize_t w = pwritev2(p[1], &iov, 1, -1, RWF_NOWAIT);
        int e = errno;
        safe_close(p[0]);
        safe_close(p[1]);
        if (w < 0 && e != EOPNOTSUPP)
                fail_msg("pwritev2(RWF_NOWAIT) on a pipe: %s", strerror(e));
        return w == 1;
}

/* From here on, a write() to fd 2 kills the process: a write that may wait on a pipe
 * shared with the workers. */
static void forbid_write_to_stderr(void) {
        struct sock_filter filter[] = {
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_write, 0, 3),
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, STDERR_FILENO, 0, 1),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = { .len = ELEMENTSOF(filter), .filter = filter };

        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
                _exit(3);
}

static void child_fail(const char *what, const char *buf) {
        printf("%s:\n%s\n", what, buf);
        fflush(stdout);
        _exit(1);
}

/* Runs as nobody with fd 2 on the write end of a root's pipe (or a root's terminal):
 * memward behind `sudo -u nobody memward ... 2>&1 | cat` run by root. The reopen through
 * /proc/self/fd/2 fails with EACCES (the inode is 0600, or 0620 root:tty). Logs 100
 * lines into the full pipe, drains it, logs one more; then the report and the line. */
static void child_as_nobody(int rd, int wr, bool terminal, bool nowait) {
        char buf[65536];

        assert_true(dup2(wr, STDERR_FILENO) >= 0);
        if (!terminal)
                fill(STDERR_FILENO);
        if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
                _exit(2);
        if (open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_CLOEXEC) >= 0 || errno != EACCES)
                child_fail("the reopen did not fail with EACCES", "");
        if (nowait)
                forbid_write_to_stderr();
        uint64_t before = log_dropped_total(LOG_SINK_STDERR);
        (void) signal(SIGALRM, on_alarm);
        alarm(10);
        if (!terminal) {
                for (int i = 0; i < 100; i++)
                        log_info("test_line", "i=%d", i);
                if (log_dropped_total(LOG_SINK_STDERR) - before != 100)
                        child_fail("not 100 dropped", "");
                (void) fcntl(rd, F_SETFL, O_NONBLOCK);
                while (read(rd, buf, sizeof buf) > 0)
                        ;
        }
        log_info("test_line", "i=last");
        alarm(0);
        size_t len = 0;
        read_until_quiet(rd, buf, sizeof buf, &len);
        const char *note = strstr(buf, " level=warning event=log_lines_dropped count=100 sink=stderr");
        const char *last = strstr(buf, " level=info event=test_line i=last");
        const char *may_block = strstr(buf, " level=warning event=stderr_may_block reason=nowait_unsupported "
                                            "reopen_error=\"Permission denied\" error=");
        if (!last || (!terminal && (!note || note > last)))
                child_fail("after the drain", buf);
        if (nowait == (may_block != NULL))
                child_fail(nowait ? "stderr_may_block with RWF_NOWAIT at hand" : "no stderr_may_block", buf);
        _exit(0);
}

static void as_nobody(bool terminal) {
        bool nowait = !terminal && pipe_has_nowait();
        int p[2];

        if (geteuid() != 0) {
                skip();
                return;
        }
        if (terminal)
                open_pty(&p[0], &p[1]);
        else
                assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        fflush(stdout);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                child_as_nobody(p[0], p[1], terminal, nowait);
        safe_close(p[1]);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        safe_close(p[0]);
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS)
                fail_msg("a blocking write() to the shared pipe");
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                fail_msg("child: status 0x%x", (unsigned) status);
}

/* The pipe: RWF_NOWAIT (no write() that could wait) where the kernel has it; where it
 * does not, the stderr_may_block line says so. */
static void test_stderr_pipe_not_reopenable(void **state) {
        (void) state;
        as_nobody(false);
}

/* A terminal takes no RWF_NOWAIT: poll() then write(), said once in stderr_may_block. */
static void test_stderr_terminal_not_reopenable(void **state) {
        (void) state;
        as_nobody(true);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_stderr_pipe_full),
                cmocka_unit_test(test_stderr_socket_full),
                cmocka_unit_test(test_stderr_terminal_partial),
                cmocka_unit_test(test_stderr_write_error_counted),
                cmocka_unit_test(test_stderr_pipe_not_reopenable),
                cmocka_unit_test(test_stderr_terminal_not_reopenable),
                cmocka_unit_test(test_json_line_invalid_utf8),
                cmocka_unit_test(test_logfmt_line_invalid_utf8),
                cmocka_unit_test(test_quote_cut_between_characters),
        };
        return cmocka_run_group_tests(tests, setup, NULL);
}
