/* journald's native protocol, spoken without ever waiting for journald.
 *
 * libsystemd's sd_journal_sendv() sends on a blocking socket: when journald stops
 * reading (stopped, hung, or busy flushing to a slow disk), its queue fills up and
 * every log call of ours would wait, and with it the supervisor's loop: no watchdog
 * pings, no respawns, no /healthz. Here an entry that journald cannot take at once is
 * refused with -EAGAIN; the caller drops and counts it.
 *
 * The protocol (https://systemd.io/JOURNAL_NATIVE_PROTOCOL/): one datagram per entry to
 * /run/systemd/journal/socket, each field either "NAME=value\n" or, when the value
 * holds a newline, "NAME\n" + the value's length as a 64-bit little-endian integer +
 * the value + "\n". Entries too big for a datagram may be sent as a sealed memfd
 * instead; ours are not: an entry is built in a buffer of fixed size (the caller's,
 * a few KiB) and a field that does not fit is refused, so an entry is always far
 * below the datagram limit of the socket (its send buffer, >= 208 KiB by default). */
#pragma once

#include <stddef.h>

/* Where journald listens for native entries (systemd-journald.socket). */
#define JOURNAL_SOCKET_PATH "/run/systemd/journal/socket"

/* Field names journald accepts: at most 64 characters. */
#define JOURNAL_FIELD_NAME_MAX 64

/* An entry being built in a caller-provided buffer. */
struct journal_entry {
        char *buf;
        size_t size;    /* of buf */
        size_t length;  /* bytes of encoded fields in buf */
};

static inline struct journal_entry journal_entry_init(char *buf, size_t size) {
        return (struct journal_entry) { .buf = buf, .size = size, .length = 0 };
}

/* Appends one field: "NAME=value\n", or NAME "\n" le64(value_len) value "\n" when the
 * value holds a newline (any byte is allowed there, NUL included). A name is 1 to 64
 * characters of [A-Z0-9_] starting with a letter: journald drops names with a leading
 * '_' (they are its own trusted fields) and invalid ones.
 * Returns 0; -EINVAL for an invalid name; -ENOBUFS when the field does not fit in
 * what is left of the buffer. On error the entry is unchanged. Pure: no I/O. */
int journal_entry_add(struct journal_entry *e, const char *name, const void *value, size_t value_len);

/* journal_entry_add() with a NUL-terminated value. */
int journal_entry_add_string(struct journal_entry *e, const char *name, const char *value);

/* Sends the entry as one datagram on a socket of our own (opened on first use:
 * SOCK_DGRAM|SOCK_NONBLOCK|SOCK_CLOEXEC, send buffer raised as libsystemd does, so
 * short stalls are buffered rather than dropped), with MSG_DONTWAIT|MSG_NOSIGNAL.
 * Never blocks. Returns 0 once journald has the entry queued; -EAGAIN when journald's
 * queue or our send buffer is full (nothing was sent); -ENOENT or -ECONNREFUSED when
 * no journald listens; -EMSGSIZE (cannot happen with the bounded entries above); or
 * another negative errno from socket()/sendto(). */
int journal_send(const struct journal_entry *e);
