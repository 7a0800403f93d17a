/* Notify datagrams, as a worker (or anything that can reach the abstract socket) sends
 * them: the pure parser, and the receive path with credentials and fds attached.
 *
 * Input format: byte 0 is the envelope, the rest is the datagram.
 *   bit 0      the receiving socket has SO_PASSCRED (notify_socket_open() sets it)
 *   bit 1      the sender attaches SCM_CREDENTIALS explicitly
 *   bit 2      ... claiming pid 1 (needs CAP_SYS_ADMIN; skipped when refused)
 *   bits 3-5   SCM_RIGHTS with 0, 1, 2, 3, 15, 16, 17 or 64 fds (the receive buffer
 *              holds 16 next to the credentials; more must be counted and not leak)
 *   bits 6-7   size: as is, padded with '\n' to NOTIFY_DATAGRAM_MAX (exact fit), to
 *              NOTIFY_DATAGRAM_MAX + 1 (oversized by one) or to 60000 bytes
 *
 * The datagram goes over a real AF_UNIX socketpair into notify_socket_receive(), and is
 * then classified in the order of supervisor_handle_datagram() (static in supervisor.c,
 * mirrored here): oversized, fds, no credentials, foreign, malformed, accepted. The
 * harness stands in for worker_for_sender(): our own pid is "the worker". */
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"
#include "memward/linux/notify.h"

static int receivers[2] = { -1, -1 }; /* [0] without SO_PASSCRED, [1] with */
static int senders[2] = { -1, -1 };
static int devnull = -1;

static void setup(void) {
        int one = 1;

        if (devnull >= 0)
                return;
        devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (devnull < 0)
                abort();
        for (int i = 0; i < 2; i++) {
                int sv[2];
                if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
                        abort();
                if (i == 1 && setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0)
                        abort();
                receivers[i] = sv[0];
                senders[i] = sv[1];
        }
}

/* The lowest free fd number: if a received fd leaked, it takes this slot. */
static int lowest_free_fd(void) {
        int fd = dup(devnull);
        if (fd < 0)
                abort();
        close(fd);
        return fd;
}

static void check_parse(const char *buf, size_t length) {
        struct notify_message m;

        memset(&m, FUZZ_POISON, sizeof m);
        if (notify_message_parse(buf, length, &m) < 0)
                return;
        FUZZ_CHECK(!memchr(buf, '\0', length));
        if (m.has_status)
                FUZZ_CHECK(fuzz_terminated(m.status, sizeof m.status));
        else
                FUZZ_CHECK(m.status[0] == '\0');
}

static const unsigned fd_counts[8] = { 0, 1, 2, 3, 15, 16, 17, 64 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static struct notify_datagram d, probe; /* 4 KiB each: not on the stack */
        union {
                struct cmsghdr h;
                uint8_t buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * 64)];
        } control;
        uint8_t envelope;
        const char *payload;
        char *padded = NULL;
        size_t length, controllen = 0;
        bool passcred, foreign;
        unsigned n_fds;
        int r;

        if (size == 0)
                return 0;
        setup();

        envelope = data[0];
        payload = (const char *) data + 1;
        length = size - 1;
        check_parse(payload, length);

        passcred = envelope & 1;
        foreign = (envelope & 2) && (envelope & 4);
        n_fds = fd_counts[(envelope >> 3) & 7];

        size_t want = (size_t[]) { 0, NOTIFY_DATAGRAM_MAX, NOTIFY_DATAGRAM_MAX + 1, 60000 }[envelope >> 6];
        if (want > length) {
                padded = malloc(want);
                if (!padded)
                        abort();
                memcpy(padded, payload, length);
                memset(padded + length, '\n', want - length);
                payload = padded;
                length = want;
        }

        memset(&control, 0, sizeof control);
        struct cmsghdr *c = &control.h;
        if (envelope & 2) {
                struct ucred cred = { .pid = foreign ? 1 : getpid(), .uid = getuid(), .gid = getgid() };
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_CREDENTIALS;
                c->cmsg_len = CMSG_LEN(sizeof cred);
                memcpy(CMSG_DATA(c), &cred, sizeof cred);
                controllen += CMSG_SPACE(sizeof cred);
                c = (struct cmsghdr *) (control.buf + controllen);
        }
        if (n_fds > 0) {
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                for (unsigned i = 0; i < n_fds; i++)
                        memcpy(CMSG_DATA(c) + i * sizeof(int), &devnull, sizeof(int));
                controllen += CMSG_SPACE(sizeof(int) * n_fds);
        }

        struct iovec iov = { .iov_base = (void *) payload, .iov_len = length };
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = controllen > 0 ? &control : NULL,
                .msg_controllen = controllen,
        };

        int before = lowest_free_fd();
        if (sendmsg(senders[passcred], &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
                /* pid 1 without CAP_SYS_ADMIN: EPERM. Nothing was queued. */
                FUZZ_CHECK(errno == EPERM || errno == ESRCH);
                free(padded);
                return 0;
        }

        memset(&d, FUZZ_POISON, sizeof d);
        r = notify_socket_receive(receivers[passcred], &d);
        FUZZ_CHECK(r == 0);
        /* One datagram in, one out: the queue is empty again. */
        FUZZ_CHECK(notify_socket_receive(receivers[passcred], &probe) == -EAGAIN);
        /* Received fds are closed, never kept. */
        FUZZ_CHECK(lowest_free_fd() == before);

        FUZZ_CHECK(d.length <= NOTIFY_DATAGRAM_MAX);
        FUZZ_CHECK(d.truncated == (length > NOTIFY_DATAGRAM_MAX));
        if (!d.truncated)
                FUZZ_CHECK(d.length == length && memcmp(d.data, payload, length) == 0);
        FUZZ_CHECK((d.n_fds > 0) == (n_fds > 0));
        if (!passcred)
                FUZZ_CHECK(d.pid == 0);
        else
                FUZZ_CHECK(d.pid == (foreign ? 1 : getpid()));

        /* supervisor_handle_datagram()'s order. */
        enum notify_reject_reason why = _NOTIFY_REJECT_MAX;
        struct notify_message m;
        if (d.truncated)
                why = NOTIFY_REJECT_OVERSIZED;
        else if (d.n_fds > 0)
                why = NOTIFY_REJECT_FDS;
        else if (d.pid <= 0)
                why = NOTIFY_REJECT_NO_CREDENTIALS;
        else if (d.pid != getpid())
                why = NOTIFY_REJECT_FOREIGN;
        else if (notify_message_parse(d.data, d.length, &m) < 0)
                why = NOTIFY_REJECT_MALFORMED;
        if (why != _NOTIFY_REJECT_MAX)
                FUZZ_CHECK(notify_reject_reason_to_string(why) != NULL);
        else
                check_parse(d.data, d.length);

        free(padded);
        return 0;
}
