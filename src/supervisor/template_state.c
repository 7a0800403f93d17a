/* See template_state.h. */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "memward/base/macro.h"
#include "memward/base/utf8.h"
#include "memward/policy/policy.h"
#include "memward/supervisor/template_state.h"

static const char *const phase_names[_TEMPLATE_PHASE_MAX] = {
        [TEMPLATE_PHASE_DEAD] = "dead",
        [TEMPLATE_PHASE_STARTING] = "starting",
        [TEMPLATE_PHASE_IDLE] = "idle",
        [TEMPLATE_PHASE_SPAWNING] = "spawning",
        [TEMPLATE_PHASE_KILLED] = "killed",
};

const char *template_phase_to_string(enum template_phase p) {
        if ((unsigned) p >= _TEMPLATE_PHASE_MAX)
                return "unknown";
        return phase_names[p];
}

static const char *const fault_names[_TEMPLATE_FAULT_MAX] = {
        [TEMPLATE_FAULT_READY_TIMEOUT] = "ready_timeout",
        [TEMPLATE_FAULT_FORK_TIMEOUT] = "fork_timeout",
        [TEMPLATE_FAULT_MALFORMED] = "malformed",
        [TEMPLATE_FAULT_OVERSIZED] = "oversized",
        [TEMPLATE_FAULT_UNSUPPORTED_PROTOCOL] = "unsupported_protocol",
        [TEMPLATE_FAULT_FDS] = "fds",
        [TEMPLATE_FAULT_UNEXPECTED_MESSAGE] = "unexpected_message",
        [TEMPLATE_FAULT_WRONG_SLOT] = "wrong_slot",
        [TEMPLATE_FAULT_WRONG_GENERATION] = "wrong_generation",
        [TEMPLATE_FAULT_BAD_PID] = "bad_pid",
        [TEMPLATE_FAULT_CHANNEL_CLOSED] = "channel_closed",
        [TEMPLATE_FAULT_CHANNEL_ERROR] = "channel_error",
};

const char *template_fault_to_string(enum template_fault f) {
        if ((unsigned) f >= _TEMPLATE_FAULT_MAX)
                return "unknown";
        return fault_names[f];
}

const char *template_fault_event(enum template_fault f) {
        return f == TEMPLATE_FAULT_READY_TIMEOUT || f == TEMPLATE_FAULT_FORK_TIMEOUT ? "template_timeout"
                                                                                     : "template_protocol_error";
}

enum template_fault template_fault_from_parse(int r) {
        if (r == -EMSGSIZE)
                return TEMPLATE_FAULT_OVERSIZED;
        if (r == -EPROTONOSUPPORT)
                return TEMPLATE_FAULT_UNSUPPORTED_PROTOCOL;
        return TEMPLATE_FAULT_MALFORMED;
}

void template_state_init(struct template_state *s, const struct template_timing *timing) {
        assert(s);
        assert(timing);
        *s = (struct template_state) {
                .phase = TEMPLATE_PHASE_DEAD,
                .timing = *timing,
                .deadline = 0, /* the first template is due at once */
        };
}

usec_t template_state_next_deadline(const struct template_state *s) {
        return s->deadline;
}

/* now + d, without wrapping past USEC_INFINITY (a timeout configured as "forever"). */
static usec_t add(usec_t now, usec_t d) {
        return d >= USEC_INFINITY - now ? USEC_INFINITY : now + d;
}

static void set_detail(struct template_decision *d, const char *format, ...) _printf_(2, 3);
static void set_detail(struct template_decision *d, const char *format, ...) {
        char tmp[TEMPLATE_DETAIL_MAX + 4]; /* the character the cut falls in, whole */
        va_list ap;

        va_start(ap, format);
        int n = vsnprintf(tmp, sizeof tmp, format, ap);
        va_end(ap);
        size_t len = n < 0 ? 0 : (size_t) n < sizeof tmp ? (size_t) n : sizeof tmp - 1;
        /* A caller's detail quotes the template's bytes: cut between characters. */
        len = utf8_truncate(tmp, len, sizeof d->detail - 1);
        memcpy(d->detail, tmp, len);
        d->detail[len] = '\0';
}

/* The template is condemned: kill it, and fail the SPAWN in flight with it. One failure
 * more for the backoff, counted now, once, whatever its exit looks like later. */
static void condemn(struct template_state *s, struct template_decision *d, enum template_fault fault, int error) {
        if (s->phase == TEMPLATE_PHASE_SPAWNING) {
                d->spawn_failed = true;
                d->error = error;
                d->slot = s->spawn_slot;
                d->generation = s->spawn_generation;
        }
        d->kill = true;
        d->fault = fault;
        s->failures++;
        s->phase = TEMPLATE_PHASE_KILLED;
        s->deadline = USEC_INFINITY;
}

/* The template is gone: the next one after the backoff. */
static void bury(struct template_state *s, struct template_decision *d, usec_t now) {
        s->phase = TEMPLATE_PHASE_DEAD;
        s->pid = 0;
        s->deadline = add(now, policy_backoff(s->timing.backoff_initial, s->timing.backoff_max, s->failures));
        d->restart_at = s->deadline;
}

static void on_timer(struct template_state *s, const struct template_event *e, struct template_decision *d) {
        char a[FORMAT_DURATION_MAX];

        if (e->now < s->deadline)
                return;
        switch (s->phase) {
        case TEMPLATE_PHASE_DEAD:
                d->start = true;
                s->deadline = USEC_INFINITY; /* until STARTED or START_FAILED says how it went */
                break;
        case TEMPLATE_PHASE_STARTING:
                set_detail(d, "no READY within %s", format_duration(a, sizeof a, s->timing.ready_timeout));
                condemn(s, d, TEMPLATE_FAULT_READY_TIMEOUT, 0);
                break;
        case TEMPLATE_PHASE_SPAWNING:
                set_detail(d, "no answer to SPAWN for slot %u generation %" PRIu64 " within %s", s->spawn_slot,
                           s->spawn_generation, format_duration(a, sizeof a, s->timing.fork_timeout));
                condemn(s, d, TEMPLATE_FAULT_FORK_TIMEOUT, -ETIMEDOUT);
                break;
        default:
                break; /* no deadline */
        }
}

/* A message in a live phase: what it answers, or why it cannot be. */
static void on_message(struct template_state *s, const struct template_message *m, struct template_decision *d) {
        const char *type = template_message_type_to_string(m->type);

        switch (s->phase) {
        case TEMPLATE_PHASE_STARTING:
                if (m->type != TEMPLATE_READY) {
                        set_detail(d, "%s before READY", type);
                        condemn(s, d, TEMPLATE_FAULT_UNEXPECTED_MESSAGE, 0);
                        return;
                }
                /* Loading the application is not all: a template that crashes at every
                 * fork must back off too. Only its first SPAWNED clears the count. */
                s->phase = TEMPLATE_PHASE_IDLE;
                s->deadline = USEC_INFINITY;
                d->ready = true;
                d->idle = true;
                return;

        case TEMPLATE_PHASE_IDLE:
                if (m->type == TEMPLATE_READY)
                        set_detail(d, "READY again");
                else
                        set_detail(d, "%s for slot %u generation %" PRIu64 " with no SPAWN in flight", type, m->slot,
                                   m->generation);
                condemn(s, d, TEMPLATE_FAULT_UNEXPECTED_MESSAGE, 0);
                return;

        case TEMPLATE_PHASE_SPAWNING:
                if (m->type == TEMPLATE_READY) {
                        set_detail(d, "READY while SPAWN for slot %u generation %" PRIu64 " is in flight",
                                   s->spawn_slot, s->spawn_generation);
                        condemn(s, d, TEMPLATE_FAULT_UNEXPECTED_MESSAGE, -EPROTO);
                        return;
                }
                if (m->slot != s->spawn_slot || m->generation != s->spawn_generation) {
                        set_detail(d, "%s for slot %u generation %" PRIu64 ", SPAWN in flight is slot %u generation %" PRIu64,
                                   type, m->slot, m->generation, s->spawn_slot, s->spawn_generation);
                        condemn(s, d,
                                m->slot != s->spawn_slot ? TEMPLATE_FAULT_WRONG_SLOT : TEMPLATE_FAULT_WRONG_GENERATION,
                                -EPROTO);
                        return;
                }
                if (m->type == TEMPLATE_PLACE) {
                        if (!s->spawn_place || s->place_pid != 0) {
                                set_detail(d, "PLACE for slot %u generation %" PRIu64 "%s", m->slot, m->generation,
                                           s->spawn_place ? " again" : ", whose SPAWN did not say PLACE=1");
                                condemn(s, d, TEMPLATE_FAULT_UNEXPECTED_MESSAGE, -EPROTO);
                                return;
                        }
                        /* The answer (PLACED) is the caller's, once it has tried. */
                        s->place_pid = m->pid;
                        d->place = true;
                        d->pid = m->pid;
                        d->slot = s->spawn_slot;
                        d->generation = s->spawn_generation;
                        return;
                }
                if (m->type == TEMPLATE_SPAWN_FAILED && s->spawn_place && s->place_pid != 0 && !s->placed) {
                        /* memward's placer may still be moving the pid: the template waits
                         * for its PLACED (§3.1 step 3), so that the answer for the spawn
                         * is the last word on it. */
                        set_detail(d, "SPAWN_FAILED for slot %u generation %" PRIu64 " before its PLACE was answered",
                                   m->slot, m->generation);
                        condemn(s, d, TEMPLATE_FAULT_UNEXPECTED_MESSAGE, -EPROTO);
                        return;
                }
                if (m->type == TEMPLATE_SPAWNED && s->spawn_place && (!s->placed || s->place_error < 0)) {
                        /* Its worker would run outside its leaf: what PLACE=1 is there to prevent. */
                        set_detail(d, "SPAWNED for slot %u generation %" PRIu64 " %s", m->slot, m->generation,
                                   !s->placed ? "before its PLACE was answered" : "after its placement failed");
                        condemn(s, d, TEMPLATE_FAULT_UNEXPECTED_MESSAGE, -EPROTO);
                        return;
                }
                d->slot = s->spawn_slot;
                d->generation = s->spawn_generation;
                if (m->type == TEMPLATE_SPAWNED) {
                        /* It loads and it forks: its crash loop, if it was in one, is over. */
                        s->failures = 0;
                        d->spawned = true;
                        d->pid = m->pid;
                } else {
                        /* The template stays: §4, the slot's backoff is the caller's. */
                        d->spawn_failed = true;
                        d->error = -m->error;
                }
                s->phase = TEMPLATE_PHASE_IDLE;
                s->deadline = USEC_INFINITY;
                d->idle = true;
                return;

        default:
                return; /* DEAD, KILLED: condemned already, nothing it says matters */
        }
}

static bool live(enum template_phase p) {
        return p == TEMPLATE_PHASE_STARTING || p == TEMPLATE_PHASE_IDLE || p == TEMPLATE_PHASE_SPAWNING;
}

/* Everything -EINVAL says, before anything changes. */
static int check(const struct template_state *s, const struct template_event *e) {
        switch (e->type) {
        case TEMPLATE_EVENT_TIMER:
                return 0;
        case TEMPLATE_EVENT_STARTED:
                return s->phase == TEMPLATE_PHASE_DEAD && e->pid > 0 ? 0 : -EINVAL;
        case TEMPLATE_EVENT_START_FAILED:
                return s->phase == TEMPLATE_PHASE_DEAD && e->error < 0 ? 0 : -EINVAL;
        case TEMPLATE_EVENT_MESSAGE:
                return e->message && (unsigned) e->message->type < _TEMPLATE_MESSAGE_TYPE_MAX ? 0 : -EINVAL;
        case TEMPLATE_EVENT_FAULT:
                return (unsigned) e->fault < _TEMPLATE_FAULT_MAX ? 0 : -EINVAL;
        case TEMPLATE_EVENT_EXITED:
                return s->phase != TEMPLATE_PHASE_DEAD ? 0 : -EINVAL;
        case TEMPLATE_EVENT_SPAWN_WANTED:
                if (e->slot > TEMPLATE_SLOT_MAX || e->generation == 0)
                        return -EINVAL;
                return s->phase == TEMPLATE_PHASE_IDLE ? 0 : -EBUSY;
        case TEMPLATE_EVENT_PLACED:
                return s->phase == TEMPLATE_PHASE_SPAWNING && s->spawn_place && s->place_pid != 0 && !s->placed &&
                                       e->error <= 0
                               ? 0
                               : -EINVAL;
        default:
                return -EINVAL;
        }
}

int template_state_handle(struct template_state *s, const struct template_event *e, struct template_decision *ret) {
        struct template_decision d = { .restart_at = USEC_INFINITY };
        int r;

        assert(s);
        assert(e);
        assert(ret);

        r = check(s, e);
        if (r < 0)
                return r;

        switch (e->type) {
        case TEMPLATE_EVENT_TIMER:
                on_timer(s, e, &d);
                break;

        case TEMPLATE_EVENT_STARTED:
                s->phase = TEMPLATE_PHASE_STARTING;
                s->pid = e->pid;
                s->deadline = add(e->now, s->timing.ready_timeout);
                break;

        case TEMPLATE_EVENT_START_FAILED:
                s->failures++;
                bury(s, &d, e->now);
                break;

        case TEMPLATE_EVENT_MESSAGE:
                on_message(s, e->message, &d);
                break;

        case TEMPLATE_EVENT_FAULT:
                if (!live(s->phase))
                        break;
                set_detail(&d, "%s", e->detail ?: "");
                /* A timeout the caller reports (its own timer) fails the spawn as a timeout. */
                condemn(s, &d, e->fault, e->fault == TEMPLATE_FAULT_FORK_TIMEOUT ? -ETIMEDOUT : -EPROTO);
                break;

        case TEMPLATE_EVENT_EXITED:
                if (live(s->phase)) {
                        /* §4: it went on its own, a failure, and a SPAWN in flight fails with it. */
                        if (s->phase == TEMPLATE_PHASE_SPAWNING) {
                                d.spawn_failed = true;
                                d.error = -ESRCH;
                                d.slot = s->spawn_slot;
                                d.generation = s->spawn_generation;
                        }
                        s->failures++;
                }
                bury(s, &d, e->now);
                break;

        case TEMPLATE_EVENT_SPAWN_WANTED:
                s->phase = TEMPLATE_PHASE_SPAWNING;
                s->spawn_slot = e->slot;
                s->spawn_generation = e->generation;
                s->spawn_place = e->place;
                s->place_pid = 0;
                s->placed = false;
                s->place_error = 0;
                s->deadline = add(e->now, s->timing.fork_timeout);
                d.send_spawn = true;
                d.slot = e->slot;
                d.generation = e->generation;
                break;

        case TEMPLATE_EVENT_PLACED:
                /* Either way the template answers next: SPAWNED once placed, SPAWN_FAILED
                 * after a failure (on_message() holds it to that). */
                s->placed = true;
                s->place_error = e->error;
                break;

        default:
                abort(); /* check() refused it */
        }

        *ret = d;
        return 0;
}
