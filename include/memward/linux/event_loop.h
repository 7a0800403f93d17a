/* A small single-threaded epoll loop.
 *
 * Sources are embedded in their owners (no allocation per source); the loop
 * keeps pointers to them. Removing a source from inside a handler is safe, also
 * when that source still has an event pending in the current batch. */
#pragma once

#include <stdint.h>
#include <sys/epoll.h>

#include "memward/base/units.h"

struct event_source;
typedef int (*event_handler_t)(struct event_source *source, uint32_t revents);

struct event_source {
        int fd;
        uint32_t events;        /* EPOLLIN, EPOLLPRI, ... */
        event_handler_t handler;
        void *userdata;
        const char *name;       /* for logs */
};

struct event_loop;

int event_loop_new(struct event_loop **ret);
struct event_loop *event_loop_free(struct event_loop *l);

int event_loop_add(struct event_loop *l, struct event_source *s);
int event_loop_modify(struct event_loop *l, struct event_source *s, uint32_t events);
/* Returns 0 also when s was not registered (its fd may already be gone). */
int event_loop_remove(struct event_loop *l, struct event_source *s);

/* Waits up to timeout_ms (-1 = forever) and dispatches ready sources. A handler
 * error is logged by the loop with the source's name and does not stop it.
 * Returns the number of events dispatched (0 on timeout or EINTR) or a negative errno. */
int event_loop_run_once(struct event_loop *l, int timeout_ms);

/* Arms a CLOCK_MONOTONIC timerfd to fire once at the absolute time `when`
 * (USEC_INFINITY disarms it). */
int timerfd_arm_at(int fd, usec_t when);
