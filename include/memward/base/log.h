/* Event logging: one line per event on stderr, logfmt or JSON.
 *
 * Every log call names an event and formats the rest as logfmt fields
 * ("worker=2 pid=4242 reason=max_requests"); the JSON formatter re-reads those
 * fields, so both formats carry exactly the same data. Values that may contain
 * spaces or quotes are quoted by the caller with %s around log_quote(). */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>

#include "memward/base/macro.h"

enum log_format {
        LOG_FORMAT_LOGFMT,
        LOG_FORMAT_JSON,
};

void log_set_max_level(int level);
int log_get_max_level(void);
void log_set_format(enum log_format format);

/* A syslog level as log lines name it ("error", "warning", ...; "unknown" out of range).
 * The config file's words for log.level and log.format are config.c's. */
const char *log_level_to_string(int level);

/* True when stderr is the stream systemd connected to journald (JOURNAL_STREAM matches
 * fd 2) and journald's native socket exists. Then every event is sent as a native
 * journal entry (journal.h) instead of a line on stderr: MESSAGE= the logfmt text,
 * PRIORITY=, SYSLOG_IDENTIFIER=memward, MEMWARD_EVENT=, and MEMWARD_<KEY>= for every
 * field (worker= becomes MEMWARD_SLOT=), ERRNO= and MEMWARD_ERROR= with an error.
 * log.format then does not matter. An entry journald cannot take at once is dropped
 * (below); when no journald listens the line goes to stderr as usual. */
bool log_stderr_is_journal(void);

/* Logging never waits for a reader. A line (or journal entry) that cannot go out at
 * once, or whose write fails (EPIPE, EIO, ...), is dropped and counted, by where it was
 * going; the next one that gets through is preceded by "event=log_lines_dropped count=N
 * sink=stderr|journal" (level warning), N the lines dropped since the last such report
 * (journal drops are told on stderr when journald has gone since). A line a terminal or
 * stream socket takes only part of is finished before anything else is written: lines
 * arrive whole. Where stderr can only be written by poll() then write() (not reopenable
 * and no RWF_NOWAIT for it: a terminal of another user), which may wait, that is said
 * once: "event=stderr_may_block reason=nowait_unsupported reopen_error=... error=...". */
enum log_sink {
        LOG_SINK_STDERR,
        LOG_SINK_JOURNAL,
        _LOG_SINK_MAX,
};

const char *log_sink_to_string(enum log_sink sink);

/* Lines dropped since start (memward_log_dropped_total{sink}). */
uint64_t log_dropped_total(enum log_sink sink);

/* Emits one event. When error != 0 an "error=" field with strerror is appended.
 * Returns -abs(error) so callers can `return log_error_errno(r, ...)`. */
int log_emit(int level, int error, const char *event, const char *fields_format, ...) _printf_(4, 5);
int log_emitv(int level, int error, const char *event, const char *fields_format, va_list ap);

/* Writes s as a logfmt value into buf: bare if it is safe, otherwise in double quotes with
 * '"', '\\', control characters and bytes that are not UTF-8 escaped (\xNN), cut to fit
 * between characters. Returns buf. */
#define LOG_QUOTE_MAX 512
const char *log_quote(char *buf, size_t size, const char *s);

#define log_debug(event, ...) log_emit(LOG_DEBUG, 0, event, __VA_ARGS__)
#define log_info(event, ...) log_emit(LOG_INFO, 0, event, __VA_ARGS__)
#define log_notice(event, ...) log_emit(LOG_NOTICE, 0, event, __VA_ARGS__)
#define log_warning(event, ...) log_emit(LOG_WARNING, 0, event, __VA_ARGS__)
#define log_error(event, ...) log_emit(LOG_ERR, 0, event, __VA_ARGS__)
#define log_notice_errno(r, event, ...) log_emit(LOG_NOTICE, (r), event, __VA_ARGS__)
#define log_warning_errno(r, event, ...) log_emit(LOG_WARNING, (r), event, __VA_ARGS__)
#define log_error_errno(r, event, ...) log_emit(LOG_ERR, (r), event, __VA_ARGS__)
#define log_debug_errno(r, event, ...) log_emit(LOG_DEBUG, (r), event, __VA_ARGS__)
