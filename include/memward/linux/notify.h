/* The worker-facing notify socket: the sd_notify protocol (READY=1, WATCHDOG=1,
 * STATUS=, STOPPING=1) plus memward's own X_REQUESTS=<n> and X_INFLIGHT=<m>.
 *
 * Parsing is pure and separate from the socket so it can be tested and fuzzed
 * without I/O. Everything an outsider sends is bounded: a datagram larger than
 * NOTIFY_DATAGRAM_MAX is rejected whole, never partly applied. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define NOTIFY_DATAGRAM_MAX 4096U
#define NOTIFY_STATUS_MAX 128U

struct notify_message {
        bool ready;
        bool watchdog;
        bool stopping;
        bool has_status;
        char status[NOTIFY_STATUS_MAX];  /* truncated between characters, NUL-terminated */
        bool has_requests;
        uint64_t requests;               /* cumulative requests served */
        bool has_inflight;
        uint64_t inflight;               /* requests in progress when X_REQUESTS was sent */
        unsigned bad_lines;              /* lines skipped as malformed */
};

enum notify_reject_reason {
        NOTIFY_REJECT_MALFORMED,        /* embedded NUL, a known key with a bad value, a line without '=' */
        NOTIFY_REJECT_OVERSIZED,        /* larger than NOTIFY_DATAGRAM_MAX */
        NOTIFY_REJECT_FOREIGN,          /* sender is neither a worker nor a descendant of one */
        NOTIFY_REJECT_NO_CREDENTIALS,   /* no SCM_CREDENTIALS attached */
        NOTIFY_REJECT_FDS,              /* carried file descriptors (closed) */
        _NOTIFY_REJECT_MAX,
};

const char *notify_reject_reason_to_string(enum notify_reject_reason r);

/* Parses one datagram. Unknown keys are ignored, as sd_notify(3) says. A malformed line
 * (no '=', an empty key, a known key with a bad value) is skipped and counted in
 * bad_lines, and the valid lines still count, as systemd's own manager does: a worker
 * whose STATUS= text has a bug must still be able to say READY=1 in the same datagram.
 * Returns 0, or -EBADMSG when the datagram holds a NUL byte, which ends a C string
 * early and so cannot be read line by line with confidence (ret is then undefined). */
int notify_message_parse(const char *buf, size_t length, struct notify_message *ret);

/* Folds `later`, a message the same sender sent after `into`, into `into`, so that applying
 * the result once does what applying both in order would: READY=1, WATCHDOG=1 and
 * STOPPING=1 stay said, STATUS= and the cumulative X_REQUESTS= (with its X_INFLIGHT=) are
 * the later ones when it has them, bad_lines add up. */
void notify_message_merge(struct notify_message *into, const struct notify_message *later);

struct notify_datagram {
        char data[NOTIFY_DATAGRAM_MAX];
        size_t length;
        pid_t pid;              /* from SCM_CREDENTIALS; 0 when missing */
        bool truncated;         /* was larger than data */
        unsigned n_fds;         /* SCM_RIGHTS fds received, already closed */
};

/* Creates a SOCK_DGRAM socket with SO_PASSCRED bound to a fresh abstract address
 * and writes the NOTIFY_SOCKET value ("@memward/<pid>/<random>") into ret_address.
 * Returns the fd or a negative errno. */
int notify_socket_open(char *ret_address, size_t size);

/* Receives one datagram without blocking. Returns 0, -EAGAIN when none is queued,
 * or another negative errno. */
int notify_socket_receive(int fd, struct notify_datagram *ret);
