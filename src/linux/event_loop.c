/* See event_loop.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>

#include "memward/base/log.h"
#include "memward/base/macro.h"
#include "memward/linux/event_loop.h"

#define EVENT_BATCH 32

struct event_loop {
        int epoll_fd;
        /* The batch being dispatched, so a removal can cancel pending events. */
        struct epoll_event batch[EVENT_BATCH];
        int n_batch;
};

int event_loop_new(struct event_loop **ret) {
        struct event_loop *l = calloc(1, sizeof *l);
        if (!l)
                return -ENOMEM;
        l->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (l->epoll_fd < 0) {
                int r = negative_errno();
                free(l);
                return r;
        }
        *ret = l;
        return 0;
}

struct event_loop *event_loop_free(struct event_loop *l) {
        if (!l)
                return NULL;
        safe_close(l->epoll_fd);
        free(l);
        return NULL;
}

int event_loop_add(struct event_loop *l, struct event_source *s) {
        struct epoll_event ev = { .events = s->events, .data.ptr = s };

        if (epoll_ctl(l->epoll_fd, EPOLL_CTL_ADD, s->fd, &ev) < 0)
                return negative_errno();
        return 0;
}

int event_loop_modify(struct event_loop *l, struct event_source *s, uint32_t events) {
        struct epoll_event ev = { .events = events, .data.ptr = s };

        if (epoll_ctl(l->epoll_fd, EPOLL_CTL_MOD, s->fd, &ev) < 0)
                return negative_errno();
        s->events = events;
        return 0;
}

int event_loop_remove(struct event_loop *l, struct event_source *s) {
        for (int i = 0; i < l->n_batch; i++)
                if (l->batch[i].data.ptr == s)
                        l->batch[i].data.ptr = NULL;

        if (s->fd >= 0 && epoll_ctl(l->epoll_fd, EPOLL_CTL_DEL, s->fd, NULL) < 0 && errno != ENOENT &&
            errno != EBADF)
                return negative_errno();
        return 0;
}

int event_loop_run_once(struct event_loop *l, int timeout_ms) {
        int n = epoll_wait(l->epoll_fd, l->batch, EVENT_BATCH, timeout_ms);
        if (n < 0)
                return errno == EINTR ? 0 : negative_errno();

        l->n_batch = n;
        for (int i = 0; i < n; i++) {
                struct event_source *s = l->batch[i].data.ptr;
                if (!s)
                        continue; /* removed by an earlier handler in this batch */
                int r = s->handler(s, l->batch[i].events);
                if (r < 0)
                        log_warning_errno(r, "event_handler_failed", "source=%s", s->name ? s->name : "?");
        }
        l->n_batch = 0;
        return n;
}

int timerfd_arm_at(int fd, usec_t when) {
        struct itimerspec its = {};

        if (when != USEC_INFINITY) {
                /* 0 would disarm: a deadline already in the past fires at once instead. */
                if (when == 0)
                        when = 1;
                its.it_value.tv_sec = (time_t) (when / USEC_PER_SEC);
                its.it_value.tv_nsec = (long) ((when % USEC_PER_SEC) * NSEC_PER_USEC);
        }
        if (timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
                return negative_errno();
        return 0;
}
