/* One non-blocking receive on an AF_UNIX socket that outsiders write to (the notify
 * socket, a fork-server template's control channel): the data, the sender's
 * SCM_CREDENTIALS, and every SCM_RIGHTS fd closed on arrival.
 *
 * Neither socket ever accepts an fd, but any sender can attach some: each one would stay
 * open in memward until it ran out. So they are closed here, before the caller sees the
 * data, and only counted, for the caller to refuse the message and log why. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* SCM_RIGHTS fds one receive has room for (and closes); the kernel drops what does not fit. */
#define UNIX_RECEIVE_FDS_MAX 16U

struct unix_received {
        size_t length;                  /* bytes stored in buf: the message's, at most size */
        bool truncated;                 /* the message was longer than size: buf holds its start,
                                         * the rest is gone (one datagram or packet per receive) */
        bool has_credentials;           /* SCM_CREDENTIALS came with it (SO_PASSCRED is set) */
        struct ucred credentials;       /* the sender's, when has_credentials; else all 0 */
        unsigned n_fds;                 /* SCM_RIGHTS fds that came with it, already closed; one more
                                         * when the kernel dropped some that did not fit (MSG_CTRUNC) */
};

/* Receives one datagram or packet from fd into buf (size bytes), without blocking,
 * whatever fd's O_NONBLOCK says. Returns 0 and fills *ret, or, with *ret untouched:
 *   -EAGAIN    nothing is queued;
 *   another negative errno from recvmsg(2).
 * A message of length 0 is returned as one (ret->length 0, not truncated): on a
 * SOCK_SEQPACKET or SOCK_STREAM socket that is also what the end of the stream looks like,
 * which only the caller can tell apart. buf is written only with the message's bytes. */
int unix_receive_with_credentials(int fd, void *buf, size_t size, struct unix_received *ret);
