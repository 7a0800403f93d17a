/* Event logging on stderr. See log.h for the contract. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* CODE_FILE/CODE_LINE would always name this file: the event says more. */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

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

int log_level_from_string(const char *s) {
        for (size_t i = 0; i < ELEMENTSOF(level_names); i++)
                if (level_names[i] && strcmp(level_names[i], s) == 0)
                        return (int) i;
        return -EINVAL;
}

const char *log_level_to_string(int level) {
        if (level < 0 || (size_t) level >= ELEMENTSOF(level_names))
                return "unknown";
        return level_names[level];
}

int log_format_from_string(const char *s) {
        if (strcmp(s, "logfmt") == 0)
                return LOG_FORMAT_LOGFMT;
        if (strcmp(s, "json") == 0)
                return LOG_FORMAT_JSON;
        return -EINVAL;
}

const char *log_format_to_string(enum log_format f) {
        return f == LOG_FORMAT_JSON ? "json" : "logfmt";
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

/* Fields of one journal entry beyond MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, MEMWARD_EVENT,
 * ERRNO and MEMWARD_ERROR; our events have at most about 20. */
#define JOURNAL_FIELDS_MAX 48
/* Where sd_journal_sendv() sends (systemd-journald.socket). */
#define JOURNAL_SOCKET "/run/systemd/journal/socket"

static enum { JOURNAL_UNKNOWN, JOURNAL_NO, JOURNAL_YES } journal_state = JOURNAL_UNKNOWN;

bool log_stderr_is_journal(void) {
        /* systemd sets JOURNAL_STREAM=<dev>:<inode> of the stream it connected to stdout and
         * stderr (systemd.exec(5)); when fd 2 is still that stream, native entries can carry
         * fields. The native socket must be there too: sd_journal_sendv() silently drops
         * entries when it is missing (a chroot or mount namespace without /run/systemd),
         * while the stream would still have carried the text. Decided once: memward never
         * re-opens stderr. */
        if (journal_state == JOURNAL_UNKNOWN) {
                const char *e = getenv("JOURNAL_STREAM");
                unsigned long long dev, ino;
                struct stat st;
                int end = 0;

                journal_state = JOURNAL_NO;
                if (e && sscanf(e, "%llu:%llu%n", &dev, &ino, &end) == 2 && e[end] == '\0' &&
                    fstat(STDERR_FILENO, &st) >= 0 && (unsigned long long) st.st_dev == dev &&
                    (unsigned long long) st.st_ino == ino && stat(JOURNAL_SOCKET, &st) >= 0 && S_ISSOCK(st.st_mode))
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

/* One native journal entry: MESSAGE is the event as the logfmt line shows it (without
 * time and level, which the journal has), every field also on its own as MEMWARD_<KEY>=,
 * so `journalctl MEMWARD_EVENT=recycle MEMWARD_REASON=oom` works. */
static int journal_emit(int level, int error, const char *event, const char *fields) {
        /* name: journald takes field names of at most 64 characters, "MEMWARD_" included. */
        char storage[6144], name[64 - 8 + 1], key[64], value[LOG_QUOTE_MAX * 2], errbuf[LOG_QUOTE_MAX];
        struct iovec iov[JOURNAL_FIELDS_MAX + 6];
        size_t used = 0;
        int n = 0, w;

#define ADD(...)                                                                                     \
        do {                                                                                         \
                w = snprintf(storage + used, sizeof storage - used, __VA_ARGS__);                    \
                if (w < 0 || (size_t) w >= sizeof storage - used)                                    \
                        goto send; /* fields that do not fit are left out, the MESSAGE has them */   \
                iov[n++] = (struct iovec) { .iov_base = storage + used, .iov_len = (size_t) w };     \
                used += (size_t) w;                                                                  \
        } while (0)

        ADD("MESSAGE=event=%s%s%s%s%s", event, fields[0] ? " " : "", fields, error ? " error=" : "",
            error ? log_quote(errbuf, sizeof errbuf, strerror(error)) : "");
        ADD("PRIORITY=%d", level);
        ADD("SYSLOG_IDENTIFIER=memward");
        ADD("MEMWARD_EVENT=%s", event);
        if (error) {
                ADD("ERRNO=%d", error);
                ADD("MEMWARD_ERROR=%s", strerror(error));
        }
        const char *p = fields;
        while (n < (int) ELEMENTSOF(iov) && logfmt_next(&p, key, sizeof key, value, sizeof value)) {
                journal_field_name(key, name, sizeof name);
                if (name[0])
                        ADD("MEMWARD_%s=%s", name, value);
        }
#undef ADD
send:
        return sd_journal_sendv(iov, n);
}

/* Lines that could not be written without blocking. */
static unsigned long log_dropped;

/* Writes one line to stderr without ever blocking the supervisor: stderr may be a
 * pipe nobody reads. poll() says POLLOUT for a pipe only when at least PIPE_BUF bytes
 * are free, and a write of at most PIPE_BUF bytes to a pipe is atomic, so a line of
 * up to 4096 bytes then goes out whole and at once. Otherwise the line is dropped and
 * counted; the count is reported with the next line that gets through. A failed write
 * cannot be reported anywhere; it must not stop the caller either. */
static void log_write_line(const char *line, size_t len) {
        struct pollfd p = { .fd = STDERR_FILENO, .events = POLLOUT };

        if (poll(&p, 1, 0) != 1 || !(p.revents & POLLOUT) || (p.revents & (POLLERR | POLLNVAL))) {
                log_dropped++;
                return;
        }
        if (log_dropped > 0) {
                char note[96];
                int n = snprintf(note, sizeof note, "level=warning event=log_lines_dropped count=%lu\n", log_dropped);
                if (n > 0 && write(STDERR_FILENO, note, (size_t) n) == n)
                        log_dropped = 0;
                if (poll(&p, 1, 0) != 1 || !(p.revents & POLLOUT)) {
                        log_dropped++;
                        return;
                }
        }
        (void) !write(STDERR_FILENO, line, len);
}

int log_emitv(int level, int error, const char *event, const char *fields_format, va_list ap) {
        char fields[2048], when[40], errbuf[LOG_QUOTE_MAX];
        struct timespec ts;
        struct tm tm;
        int saved_errno = errno;

        if (error < 0)
                error = -error;
        if (level > log_max_level)
                goto finish;

        (void) clock_gettime(CLOCK_REALTIME, &ts);
        (void) gmtime_r(&ts.tv_sec, &tm);
        size_t w = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(when + w, sizeof when - w, ".%03ldZ", ts.tv_nsec / 1000000);

        if (fields_format)
                vsnprintf(fields, sizeof fields, fields_format, ap);
        else
                fields[0] = '\0';

        /* If journald cannot take it, the same stream still reaches it as plain text. */
        if (log_stderr_is_journal() && journal_emit(level, error, event, fields) >= 0)
                goto finish;

        /* The whole line goes out in a single write(2), so lines never interleave with
         * the workers' own output on a shared stderr. */
        char line[4096];
        FILE *m = fmemopen(line, sizeof line, "w");
        if (!m)
                goto finish;
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
                goto finish;
        }
        long len = ftell(m);
        fclose(m);
        if (len >= (long) sizeof line)
                len = sizeof line - 1;
        if (line[len - 1] != '\n')
                line[len - 1] = '\n';
        log_write_line(line, (size_t) len);

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
