/* Event logging on stderr. See log.h for the contract. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "memward/log.h"

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

        /* Leave room for the closing quote and NUL; truncate the value rather than the quoting. */
        buf[n++] = '"';
        for (const char *p = s; *p && n + 6 < size; p++) {
                unsigned char c = (unsigned char) *p;
                if (c == '"' || c == '\\') {
                        buf[n++] = '\\';
                        buf[n++] = (char) c;
                } else if (c == '\n') {
                        buf[n++] = '\\';
                        buf[n++] = 'n';
                } else if (c < ' ' || c == 0x7f)
                        n += (size_t) snprintf(buf + n, size - n, "\\x%02x", c);
                else
                        buf[n++] = (char) c;
        }
        buf[n++] = '"';
        buf[n] = '\0';
        return buf;
}

/* Re-reads a logfmt field list and writes it as JSON members. The input is
 * produced by our own format strings plus log_quote(), so the grammar is small:
 * key=bare or key="quoted with \" \\ \n \xNN escapes". */
static void logfmt_to_json(FILE *f, const char *s) {
        while (*s) {
                while (*s == ' ')
                        s++;
                if (!*s)
                        break;
                const char *eq = strchr(s, '=');
                if (!eq)
                        break;
                fprintf(f, ",\"%.*s\":\"", (int) (eq - s), s);
                s = eq + 1;
                if (*s == '"') {
                        for (s++; *s && *s != '"'; s++) {
                                if (*s == '\\' && s[1]) {
                                        s++;
                                        if (*s == 'n')
                                                fputs("\\n", f);
                                        else if (*s == 'x' && s[1] && s[2]) {
                                                fprintf(f, "\\u00%c%c", s[1], s[2]);
                                                s += 2;
                                        } else
                                                fprintf(f, "\\%c", *s);
                                } else
                                        fputc(*s, f);
                        }
                        if (*s == '"')
                                s++;
                } else
                        for (; *s && *s != ' '; s++)
                                fputc(*s, f);
                fputc('"', f);
        }
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
        /* A failed write to stderr cannot be reported anywhere; it must not stop the caller. */
        (void) !write(STDERR_FILENO, line, (size_t) len);

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
