/* Event logging on stderr. See log.h for the contract. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "memward/base/journal.h"
#include "memward/base/log.h"
#include "memward/base/utf8.h"

static int log_max_level = LOG_INFO;
static enum log_format log_format = LOG_FORMAT_LOGFMT;

static const char *const level_names[] = {
        [LOG_EMERG] = "emerg",   [LOG_ALERT] = "alert", [LOG_CRIT] = "crit",
        [LOG_ERR] = "error",     [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
        [LOG_INFO] = "info",     [LOG_DEBUG] = "debug",
};

void log_set_max_level(int level) {
        log_max_level = level;
}

int log_get_max_level(void) {
        return log_max_level;
}

void log_set_format(enum log_format format) {
        log_format = format;
}

const char *log_level_to_string(int level) {
        if (level < 0 || (size_t) level >= ELEMENTSOF(level_names))
                return "unknown";
        return level_names[level];
}

static bool logfmt_bare_ok(const char *s) {
        if (!*s)
                return false;
        for (const char *p = s; *p; p++)
                if ((unsigned char) *p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || (unsigned char) *p >= 0x7f)
                        return false;
        return true;
}

const char *log_quote(char *buf, size_t size, const char *s) {
        size_t n = 0;

        if (!s)
                s = "";
        if (logfmt_bare_ok(s)) {
                snprintf(buf, size, "%s", s);
                return buf;
        }

        buf[n++] = '"';
        for (const unsigned char *p = (const unsigned char *) s; *p;) {
                size_t len = utf8_decode(p, NULL);
                bool escape = len == 0 || *p < ' ' || *p == 0x7f;
                size_t need = *p == '"' || *p == '\\' || *p == '\n' ? 2 : escape ? 4 : len;

                /* Room for the closing quote and NUL: truncate the value, by whole
                 * characters, rather than the quoting. */
                if (n + need + 2 > size)
                        break;
                if (*p == '"' || *p == '\\') {
                        buf[n++] = '\\';
                        buf[n++] = (char) *p;
                } else if (*p == '\n') {
                        buf[n++] = '\\';
                        buf[n++] = 'n';
                } else if (escape) {
                        /* Also bytes that are not UTF-8: the line stays valid UTF-8, and the
                         * JSON form shows them as U+FFFD. */
                        n += (size_t) snprintf(buf + n, size - n, "\\x%02x", *p);
                        len = 1;
                } else {
                        memcpy(buf + n, p, len);
                        n += len;
                }
                p += len;
        }
        buf[n++] = '"';
        buf[n] = '\0';
        return buf;
}

/* ---- journald ---------------------------------------------------------------------- */

static enum { JOURNAL_UNKNOWN, JOURNAL_NO, JOURNAL_YES } journal_state = JOURNAL_UNKNOWN;

bool log_stderr_is_journal(void) {
        /* systemd sets JOURNAL_STREAM=<dev>:<inode> of the stream it connected to stdout and
         * stderr (systemd.exec(5)); when fd 2 is still that stream, native entries can carry
         * fields. The native socket must be there too (a chroot or mount namespace may
         * lack /run/systemd), while the stream would still have carried the text.
         * Decided once: memward never dup2()s another file onto fd 2 (the file description
         * of its own that stderr_choose() opens is the same stream). */
        if (journal_state == JOURNAL_UNKNOWN) {
                const char *e = getenv("JOURNAL_STREAM");
                unsigned long long dev, ino;
                struct stat st;
                int end = 0;

                journal_state = JOURNAL_NO;
                if (e && sscanf(e, "%llu:%llu%n", &dev, &ino, &end) == 2 && e[end] == '\0' &&
                    fstat(STDERR_FILENO, &st) >= 0 && (unsigned long long) st.st_dev == dev &&
                    (unsigned long long) st.st_ino == ino && stat(JOURNAL_SOCKET_PATH, &st) >= 0 && S_ISSOCK(st.st_mode))
                        journal_state = JOURNAL_YES;
        }
        return journal_state == JOURNAL_YES;
}

/* Reads the next key=value of a logfmt field list into key and value, decoding quoted
 * values. The input is produced by our own format strings plus log_quote(), so the
 * grammar is small: key=bare or key="quoted with \" \\ \n \xNN escapes". Returns false
 * at the end. */
static bool logfmt_next(const char **s, char *key, size_t key_size, char *value, size_t value_size) {
        const char *p = *s;
        size_t k = 0, v = 0;

        while (*p == ' ')
                p++;
        const char *eq = strchr(p, '=');
        if (!*p || !eq)
                return false;
        for (const char *i = p; i < eq && k + 1 < key_size; i++)
                key[k++] = *i;
        key[k] = '\0';
        p = eq + 1;
        if (*p == '"') {
                for (p++; *p && *p != '"'; p++) {
                        char c = *p;
                        if (c == '\\' && p[1]) {
                                p++;
                                if (*p == 'n')
                                        c = '\n';
                                else if (*p == 'x' && p[1] && p[2]) {
                                        char hex[3] = { p[1], p[2], '\0' };
                                        c = (char) strtol(hex, NULL, 16);
                                        p += 2;
                                } else
                                        c = *p;
                        }
                        if (v + 1 < value_size)
                                value[v++] = c;
                }
                if (*p == '"')
                        p++;
        } else
                for (; *p && *p != ' '; p++)
                        if (v + 1 < value_size)
                                value[v++] = *p;
        value[v] = '\0';
        *s = p;
        return true;
}

static void file_write(void *userdata, const char *p, size_t n) {
        (void) fwrite(p, 1, n, userdata);
}

/* Writes a logfmt field list as JSON members, each value decoded and then encoded again
 * by utf8_json_string(): valid JSON whatever bytes a value holds. */
static void logfmt_to_json(FILE *f, const char *s) {
        char key[64], value[2048];

        while (logfmt_next(&s, key, sizeof key, value, sizeof value)) {
                fputc(',', f);
                utf8_json_string(key, file_write, f);
                fputc(':', f);
                utf8_json_string(value, file_write, f);
        }
}

/* "worker" → "SLOT" (what an operator filters on: MEMWARD_SLOT=2), otherwise the key in
 * upper case with anything outside [A-Z0-9_] as '_', as journal field names require. */
static void journal_field_name(const char *key, char *buf, size_t size) {
        size_t n = 0;

        if (streq(key, "worker"))
                key = "slot";
        for (const char *p = key; *p && n + 1 < size; p++) {
                char c = *p;
                if (c >= 'a' && c <= 'z')
                        c = (char) (c - 'a' + 'A');
                else if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
                        c = '_';
                buf[n++] = c;
        }
        buf[n] = '\0';
}

/* Lines that did not go out, by where they were going: the reader could not take them at
 * once, or the write failed (EPIPE, EIO, ...). The totals for /metrics, and those not yet
 * told in a log_lines_dropped line. */
static uint64_t dropped_total[_LOG_SINK_MAX], dropped_untold[_LOG_SINK_MAX];

static void count_dropped(enum log_sink sink) {
        dropped_total[sink]++;
        dropped_untold[sink]++;
}

uint64_t log_dropped_total(enum log_sink sink) {
        return sink < _LOG_SINK_MAX ? dropped_total[sink] : 0;
}

const char *log_sink_to_string(enum log_sink sink) {
        return sink == LOG_SINK_JOURNAL ? "journal" : "stderr";
}

/* One native journal entry: MESSAGE is the event as the logfmt line shows it (without
 * time and level, which the journal has), every field also on its own as MEMWARD_<KEY>=,
 * so `journalctl MEMWARD_EVENT=recycle MEMWARD_REASON=oom` works. Returns what
 * journal_send() returns: -EAGAIN when journald cannot take it now. */
static int journal_emit(int level, int error, const char *event, const char *fields) {
        /* name: journald takes field names of at most 64 characters, "MEMWARD_" included. */
        char buf[8192], text[4096], name[JOURNAL_FIELD_NAME_MAX - 8 + 1], field[JOURNAL_FIELD_NAME_MAX + 1],
                key[64], value[LOG_QUOTE_MAX * 2], errbuf[LOG_QUOTE_MAX];
        struct journal_entry e = journal_entry_init(buf, sizeof buf);

        snprintf(text, sizeof text, "event=%s%s%s%s%s", event, fields[0] ? " " : "", fields, error ? " error=" : "",
                 error ? log_quote(errbuf, sizeof errbuf, strerror(error)) : "");
        (void) journal_entry_add_string(&e, "MESSAGE", text);
        snprintf(text, sizeof text, "%d", level);
        (void) journal_entry_add_string(&e, "PRIORITY", text);
        (void) journal_entry_add_string(&e, "SYSLOG_IDENTIFIER", "memward");
        (void) journal_entry_add_string(&e, "MEMWARD_EVENT", event);
        if (error) {
                snprintf(text, sizeof text, "%d", error);
                (void) journal_entry_add_string(&e, "ERRNO", text);
                (void) journal_entry_add_string(&e, "MEMWARD_ERROR", strerror(error));
        }
        /* The buffer holds the longest MESSAGE and the fields above; a field list that
         * fills the rest loses its last fields here, never the MESSAGE that has them. */
        const char *p = fields;
        while (logfmt_next(&p, key, sizeof key, value, sizeof value)) {
                journal_field_name(key, name, sizeof name);
                if (!name[0])
                        continue;
                snprintf(field, sizeof field, "MEMWARD_%s", name);
                if (journal_entry_add_string(&e, field, value) == -ENOBUFS)
                        break;
        }
        return journal_send(&e);
}

/* An event as a native journal entry, preceded by a log_lines_dropped entry when
 * earlier ones were dropped. Returns 0 when the entry is sent or dropped (journald
 * cannot take it now: stderr is no way round, it is a stream to the same journald),
 * a negative errno when there is no journald to send to. */
static int journal_log(int level, int error, const char *event, const char *fields) {
        int r;

        if (dropped_untold[LOG_SINK_JOURNAL] > 0) {
                char note[64];
                snprintf(note, sizeof note, "count=%" PRIu64 " sink=journal", dropped_untold[LOG_SINK_JOURNAL]);
                r = journal_emit(LOG_WARNING, 0, "log_lines_dropped", note);
                if (r == -EAGAIN) {
                        count_dropped(LOG_SINK_JOURNAL);
                        return 0;
                }
                if (r >= 0)
                        dropped_untold[LOG_SINK_JOURNAL] = 0;
        }
        r = journal_emit(level, error, event, fields);
        if (r == -EAGAIN) {
                count_dropped(LOG_SINK_JOURNAL);
                return 0;
        }
        return r;
}

/* ---- stderr ------------------------------------------------------------------------ */

/* How a line reaches stderr without ever blocking the supervisor: stderr may be a pipe
 * or a socket nobody reads (docker logs, journald's stream). O_NONBLOCK cannot be set
 * on fd 2 itself: the open file description is shared with the workers (and with
 * whoever started us), who would start failing their writes with EAGAIN. So:
 *   SEND    a socket: send() with MSG_DONTWAIT, a per-call flag.
 *   OWN     a pipe, FIFO or terminal: a file description of our own, opened through
 *           /proc/self/fd/2 with O_NONBLOCK. A write of at most PIPE_BUF (4096) bytes
 *           to a pipe is all or nothing.
 *   NOWAIT  the same when that open fails: a pipe's inode is 0600 and owned by whoever
 *           made it (memward as nobody behind root's `| cat`: EACCES), or no /proc.
 *           pwritev2(RWF_NOWAIT) on fd 2, a per-call flag, where the kernel has it for
 *           the file (pipes: recent kernels, 6.18 has it, Debian 12's 6.1 not;
 *           terminals: none; EOPNOTSUPP).
 *   POLL    anything else: write() after poll() said POLLOUT. Between the two a worker
 *           may fill a shared pipe, and a terminal with some room takes all of a
 *           blocking write only as its reader reads: may_block, told once in
 *           event=stderr_may_block. A regular file never says no.
 * Decided again whenever fd 2 is another file than last time (tests swap it).
 *
 * A terminal or a stream socket may take part of a line: the rest waits in pending, goes
 * out before anything else, and until it has, new lines are dropped, so every line
 * arrives whole and the log_lines_dropped line is never glued onto half of another. */
#define STDERR_LINE_MAX 4096

static struct {
        bool known;
        dev_t dev;
        ino_t ino;
        enum { STDERR_POLL, STDERR_SEND, STDERR_OWN, STDERR_NOWAIT } how;
        int fd;           /* STDERR_OWN */
        int reopen_error; /* why not STDERR_OWN, for the stderr_may_block line */
        int nowait_error; /* why not STDERR_NOWAIT, likewise */
        bool may_block, may_block_told;
        size_t pending_len;
        char pending[STDERR_LINE_MAX];
} err_out = { .fd = -1 };

static void stderr_choose(void) {
        struct stat st;

        if (fstat(STDERR_FILENO, &st) < 0) {
                err_out.known = false;
                err_out.how = STDERR_POLL;
                return;
        }
        if (err_out.known && st.st_dev == err_out.dev && st.st_ino == err_out.ino)
                return;
        /* The rest of a line for the file that was stderr before: that line is lost. */
        if (err_out.pending_len > 0)
                count_dropped(LOG_SINK_STDERR);
        err_out.pending_len = 0;
        err_out.fd = safe_close(err_out.fd);
        err_out.known = true;
        err_out.dev = st.st_dev;
        err_out.ino = st.st_ino;
        err_out.how = STDERR_POLL;
        err_out.reopen_error = err_out.nowait_error = 0;
        err_out.may_block = err_out.may_block_told = false;
        if (S_ISSOCK(st.st_mode))
                err_out.how = STDERR_SEND;
        else if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
                err_out.fd = open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
                if (err_out.fd >= 0)
                        err_out.how = STDERR_OWN;
                else {
                        err_out.reopen_error = errno;
                        err_out.how = STDERR_NOWAIT;
                }
        }
}

/* write() once poll() has said there is room: the fallback that may block. */
static ssize_t poll_write(const char *p, size_t n) {
        struct pollfd pfd = { .fd = STDERR_FILENO, .events = POLLOUT };

        if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLOUT) || (pfd.revents & (POLLERR | POLLNVAL))) {
                errno = EAGAIN;
                return -1;
        }
        return write(STDERR_FILENO, p, n);
}

/* One write of p as the file allows without waiting. Returns the bytes written (maybe
 * fewer than n), -EAGAIN when none could be, another negative errno on failure. */
static ssize_t stderr_write(const char *p, size_t n) {
        struct iovec iov = { .iov_base = (void *) p, .iov_len = n };
        ssize_t w;

        switch (err_out.how) {
        case STDERR_SEND:
                w = send(STDERR_FILENO, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
                break;
        case STDERR_OWN:
                w = write(err_out.fd, p, n);
                break;
        case STDERR_NOWAIT:
                w = pwritev2(STDERR_FILENO, &iov, 1, -1, RWF_NOWAIT);
                /* EOPNOTSUPP: not for this file on this kernel; EINVAL or ENOSYS (glibc
                 * says EOPNOTSUPP then too): a kernel without the flag or the call. */
                if (w < 0 && (errno == EOPNOTSUPP || errno == EINVAL || errno == ENOSYS)) {
                        err_out.nowait_error = errno;
                        err_out.how = STDERR_POLL;
                        err_out.may_block = true;
                        w = poll_write(p, n);
                }
                break;
        default:
                w = poll_write(p, n);
                break;
        }
        if (w < 0)
                return errno == EWOULDBLOCK ? -EAGAIN : -errno;
        return w;
}

/* Writes the rest of an earlier line, then p, n <= STDERR_LINE_MAX: whole, or its head
 * now and the rest kept for later. Returns 0 when p is written or kept; -EAGAIN when it
 * could not go out without waiting (nothing of it was written); another negative errno
 * when it cannot go out at all. */
static int stderr_put(const char *p, size_t n) {
        ssize_t w;

        assert(n <= sizeof err_out.pending);
        stderr_choose();
        if (err_out.pending_len > 0) {
                w = stderr_write(err_out.pending, err_out.pending_len);
                if (w == -EAGAIN)
                        return -EAGAIN;
                if (w < 0) {
                        /* The line it was the rest of was counted as written: it was not. */
                        count_dropped(LOG_SINK_STDERR);
                        err_out.pending_len = 0;
                        return (int) w;
                }
                err_out.pending_len -= (size_t) w;
                memmove(err_out.pending, err_out.pending + w, err_out.pending_len);
                if (err_out.pending_len > 0)
                        return -EAGAIN;
        }
        w = stderr_write(p, n);
        if (w < 0)
                return (int) w;
        err_out.pending_len = n - (size_t) w;
        memcpy(err_out.pending, p + w, err_out.pending_len);
        return 0;
}

/* Formats one event as a logfmt or JSON line ending in '\n' into line; returns its
 * length, 0 on failure. A line that does not fit is cut, and still ends in '\n'. */
static size_t format_line(char *line, size_t size, const char *when, int level, int error, const char *event,
                          const char *fields) {
        char errbuf[LOG_QUOTE_MAX];
        FILE *m = fmemopen(line, size, "w");

        if (!m)
                return 0;
        if (log_format == LOG_FORMAT_JSON) {
                fprintf(m, "{\"time\":\"%s\",\"level\":\"%s\",\"event\":\"%s\"", when, log_level_to_string(level),
                        event);
                logfmt_to_json(m, fields);
                if (error)
                        fprintf(m, ",\"error\":\"%s\",\"errno\":\"%d\"", strerror(error), error);
                fputs("}\n", m);
        } else {
                fprintf(m, "time=%s level=%s event=%s%s%s", when, log_level_to_string(level), event,
                        fields[0] ? " " : "", fields);
                if (error)
                        fprintf(m, " error=%s", log_quote(errbuf, sizeof errbuf, strerror(error)));
                fputc('\n', m);
        }
        if (fflush(m) != 0 || ftell(m) <= 0) {
                fclose(m);
                return 0;
        }
        long len = ftell(m);
        fclose(m);
        if (len >= (long) size)
                len = (long) size - 1;
        if (line[len - 1] != '\n')
                line[len - 1] = '\n';
        return (size_t) len;
}

/* The lines owed before the next event on stderr: how many lines were dropped, by sink
 * (the journal's too, when journald went away after dropping some and its events now
 * come here), and once, that stderr is written in a way that may block. Returns 0 when
 * all went out, else what stderr_put() returned for the one that did not. */
static int stderr_notes(const char *when) {
        char line[STDERR_LINE_MAX], fields[256], reopen[LOG_QUOTE_MAX];
        size_t len;
        int r;

        for (enum log_sink k = 0; k < _LOG_SINK_MAX; k++) {
                if (dropped_untold[k] == 0)
                        continue;
                snprintf(fields, sizeof fields, "count=%" PRIu64 " sink=%s", dropped_untold[k], log_sink_to_string(k));
                len = format_line(line, sizeof line, when, LOG_WARNING, 0, "log_lines_dropped", fields);
                r = len > 0 ? stderr_put(line, len) : -ENOMEM;
                if (r < 0)
                        return r;
                dropped_untold[k] = 0;
        }
        if (err_out.may_block && !err_out.may_block_told) {
                snprintf(fields, sizeof fields, "reason=nowait_unsupported reopen_error=%s",
                         log_quote(reopen, sizeof reopen, strerror(err_out.reopen_error)));
                len = format_line(line, sizeof line, when, LOG_WARNING, err_out.nowait_error, "stderr_may_block",
                                  fields);
                r = len > 0 ? stderr_put(line, len) : -ENOMEM;
                if (r < 0)
                        return r;
                err_out.may_block_told = true;
        }
        return 0;
}

/* One line on stderr, preceded by the notes above; a line that does not go out (its
 * reader cannot take it at once, or the write fails) is dropped and counted. A line is
 * at most PIPE_BUF bytes, and goes out in a single write: lines never interleave with the
 * workers' own output on a shared pipe. A failed write cannot be reported anywhere but
 * in the count; it must not stop the caller either. */
static void stderr_log(const char *when, int level, int error, const char *event, const char *fields) {
        char line[STDERR_LINE_MAX];
        size_t len;

        if (stderr_notes(when) < 0) {
                count_dropped(LOG_SINK_STDERR);
                return;
        }
        len = format_line(line, sizeof line, when, level, error, event, fields);
        if (len == 0 || stderr_put(line, len) < 0) {
                count_dropped(LOG_SINK_STDERR);
                return;
        }
        /* The first line written may have found out that writing may block: said now,
         * not only before the next event, which may be long in coming. */
        (void) stderr_notes(when);
}

int log_emitv(int level, int error, const char *event, const char *fields_format, va_list ap) {
        char fields[2048], when[40];
        struct timespec ts;
        struct tm tm;
        int saved_errno = errno;

        if (error < 0)
                error = -error;
        if (level > log_max_level)
                goto finish;

        if (fields_format)
                vsnprintf(fields, sizeof fields, fields_format, ap);
        else
                fields[0] = '\0';

        /* If there is no journald to send to, the same stream still reaches whatever reads
         * it as plain text. */
        if (log_stderr_is_journal() && journal_log(level, error, event, fields) >= 0)
                goto finish;

        (void) clock_gettime(CLOCK_REALTIME, &ts);
        (void) gmtime_r(&ts.tv_sec, &tm);
        size_t w = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(when + w, sizeof when - w, ".%03ldZ", ts.tv_nsec / 1000000);
        stderr_log(when, level, error, event, fields);

finish:
        errno = saved_errno;
        return -error;
}

int log_emit(int level, int error, const char *event, const char *fields_format, ...) {
        va_list ap;
        int r;

        va_start(ap, fields_format);
        r = log_emitv(level, error, event, fields_format, ap);
        va_end(ap);
        return r;
}
