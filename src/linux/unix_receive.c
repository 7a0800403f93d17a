/* See unix_receive.h. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "memward/base/macro.h"
#include "memward/linux/unix_receive.h"

/* Closes the fds of one SCM_RIGHTS message and returns how many there were. */
static unsigned close_passed_fds(const struct cmsghdr *c) {
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

        for (size_t i = 0; i < n; i++) {
                int passed;
                /* CMSG_DATA need not be aligned for int. */
                memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof passed);
                safe_close(passed);
        }
        return (unsigned) n;
}

int unix_receive_with_credentials(int fd, void *buf, size_t size, struct unix_received *ret) {
        union {
                struct cmsghdr h;
                uint8_t buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * UNIX_RECEIVE_FDS_MAX)];
        } control;
        struct iovec iov = { .iov_base = buf, .iov_len = size };
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = &control,
                .msg_controllen = sizeof control,
        };
        struct unix_received r = {};

        /* MSG_TRUNC: the message's real length, to tell an oversized one from one that fits
         * exactly. MSG_CMSG_CLOEXEC: a passed fd never reaches a worker we spawn before it is
         * closed below. */
        ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC);
        if (n < 0)
                return errno == EWOULDBLOCK ? -EAGAIN : negative_errno();

        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                if (c->cmsg_level != SOL_SOCKET)
                        continue;
                if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len == CMSG_LEN(sizeof(struct ucred))) {
                        memcpy(&r.credentials, CMSG_DATA(c), sizeof r.credentials);
                        r.has_credentials = true;
                } else if (c->cmsg_type == SCM_RIGHTS)
                        r.n_fds += close_passed_fds(c);
        }
        /* Fds that did not fit in our control buffer were closed by the kernel; the sender
         * still sent some. */
        if (mh.msg_flags & MSG_CTRUNC)
                r.n_fds++;

        r.truncated = (mh.msg_flags & MSG_TRUNC) || (size_t) n > size;
        r.length = r.truncated ? size : (size_t) n;
        *ret = r;
        return 0;
}
