/* The lifecycle of one fork-server template (docs/fork-server.md §1, §2, §4), as a pure
 * state machine: events in (the template started, a message came, a deadline passed, it
 * exited, a slot wants a worker), one decision out (start one, send this SPAWN, adopt this
 * pid, this slot's spawn failed, kill the template and why, start the next at time T).
 * No I/O and no clock: `now` comes with every event, so every path can be unit tested
 * exactly, and the caller does what the decision says (fork, send, kill, log).
 *
 *   phase     event                                   next phase  decision
 *   DEAD      TIMER at the restart time               DEAD        start
 *   DEAD      STARTED                                 STARTING
 *   DEAD      START_FAILED                            DEAD        restart_at
 *   STARTING  READY                                   IDLE        ready, idle
 *   IDLE      SPAWN_WANTED                            SPAWNING    send_spawn
 *   SPAWNING  PLACE for it (SPAWN_WANTED said place)  SPAWNING    place
 *   SPAWNING  PLACED (the caller moved it, or not)    SPAWNING
 *   SPAWNING  SPAWNED / SPAWN_FAILED for it           IDLE        spawned / spawn_failed, idle
 *   live      TIMER past the deadline, FAULT, a       KILLED      kill, fault, detail (and
 *             message this phase does not expect                  spawn_failed when SPAWNING)
 *   live      EXITED                                  DEAD        restart_at (and spawn_failed)
 *   KILLED    EXITED                                  DEAD        restart_at
 * ("live" is STARTING, IDLE or SPAWNING.)
 *
 * A SPAWN with PLACE=1 (docs/fork-server.md §3: the template runs as a user that may not
 * move processes between memward's leaves, so memward moves the intermediate itself) is
 * answered by one PLACE, which memward answers with PLACED, before the SPAWNED: a SPAWNED
 * before the PLACE, or after a placement that failed, would bring a worker that is not in
 * its leaf, and is a protocol error. fork_timeout covers the whole exchange.
 *
 * One SPAWN at a time, as §2 says. A slot that wants a worker while the template is not
 * IDLE is the caller's to remember: TEMPLATE_EVENT_SPAWN_WANTED then returns -EBUSY and
 * changes nothing, and every decision with .idle set is the moment to offer the next one.
 * The supervisor's slots are that queue already (each knows whether it waits for a
 * worker), so this machine keeps no second list to get out of step with them.
 *
 * Restarts back off with policy_backoff(restart_backoff) on the number of consecutive
 * failures (an exit, a start that failed, a kill for a fault); the first SPAWNED resets
 * it, not READY: a template that loads but dies at every fork must back off too.
 * To retire a template on purpose (reload, shutdown) the caller kills it and drops its
 * template_state: nothing here restarts a template it is not told about. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "memward/base/units.h"
#include "memward/linux/template_channel.h"

enum template_phase {
        TEMPLATE_PHASE_DEAD,            /* none runs; one is due at .deadline (USEC_INFINITY: start asked for) */
        TEMPLATE_PHASE_STARTING,        /* started, no READY yet; ready_timeout at .deadline */
        TEMPLATE_PHASE_IDLE,            /* READY, no SPAWN in flight */
        TEMPLATE_PHASE_SPAWNING,        /* one SPAWN in flight, .spawn_slot/.spawn_generation; fork_timeout
                                         * at .deadline */
        TEMPLATE_PHASE_KILLED,          /* told to kill it; waiting for its exit */
        _TEMPLATE_PHASE_MAX,
};

/* "dead", "starting", "idle", "spawning", "killed": the template row of /status. */
const char *template_phase_to_string(enum template_phase p);

/* Why a template must go. The first two are §4's event=template_timeout, the rest its
 * event=template_protocol_error (template_fault_event() says which). */
enum template_fault {
        TEMPLATE_FAULT_READY_TIMEOUT,           /* no READY within workers.ready_timeout */
        TEMPLATE_FAULT_FORK_TIMEOUT,            /* no answer to SPAWN within workers.fork_timeout */
        TEMPLATE_FAULT_MALFORMED,               /* a message the parser refused (-EBADMSG) */
        TEMPLATE_FAULT_OVERSIZED,               /* a packet over TEMPLATE_MESSAGE_MAX (truncated, -EMSGSIZE) */
        TEMPLATE_FAULT_UNSUPPORTED_PROTOCOL,    /* a READY for another version (-EPROTONOSUPPORT) */
        TEMPLATE_FAULT_FDS,                     /* a packet that carried fds */
        TEMPLATE_FAULT_UNEXPECTED_MESSAGE,      /* a type this phase does not expect */
        TEMPLATE_FAULT_WRONG_SLOT,              /* an answer for another slot than the SPAWN in flight */
        TEMPLATE_FAULT_WRONG_GENERATION,        /* … for the same slot, another generation */
        TEMPLATE_FAULT_BAD_PID,                 /* a SPAWNED whose PID fails the check of §3 */
        TEMPLATE_FAULT_CHANNEL_CLOSED,          /* the template closed its end (receive: -ECONNRESET) */
        TEMPLATE_FAULT_CHANNEL_ERROR,           /* the channel failed: a send or receive error */
        _TEMPLATE_FAULT_MAX,
};

/* The reason= token: "ready_timeout", "fork_timeout", "malformed", "oversized",
 * "unsupported_protocol", "fds", "unexpected_message", "wrong_slot", "wrong_generation",
 * "bad_pid", "channel_closed", "channel_error"; "unknown" out of range. */
const char *template_fault_to_string(enum template_fault f);

/* The event= name §4 logs a fault under: "template_timeout" or "template_protocol_error". */
const char *template_fault_event(enum template_fault f);

/* The fault for what template_message_parse() returned: -EMSGSIZE oversized,
 * -EPROTONOSUPPORT unsupported_protocol, anything else malformed. */
enum template_fault template_fault_from_parse(int r);

struct template_timing {
        usec_t ready_timeout;           /* workers.ready_timeout */
        usec_t fork_timeout;            /* workers.fork_timeout */
        usec_t backoff_initial;         /* workers.restart_backoff */
        usec_t backoff_max;
};

struct template_state {
        enum template_phase phase;
        struct template_timing timing;
        usec_t deadline;                /* DEAD: start; STARTING: ready_timeout; SPAWNING: fork_timeout;
                                         * else USEC_INFINITY */
        pid_t pid;                      /* the template's, from STARTING to KILLED; 0 when DEAD */
        unsigned failures;              /* consecutive, for the backoff; 0 after a SPAWNED */
        unsigned spawn_slot;            /* SPAWNING: the SPAWN in flight */
        uint64_t spawn_generation;
        bool spawn_place;               /* … was sent with PLACE=1: memward places its intermediate */
        pid_t place_pid;                /* … the PID of its PLACE; 0 before it came */
        bool placed;                    /* … PLACED was fed: the placement is over */
        int place_error;                /* … how it went: 0, or the negative errno PLACED carried */
};

enum template_event_type {
        TEMPLATE_EVENT_TIMER,           /* time passed: deadlines up to now are due */
        TEMPLATE_EVENT_STARTED,         /* the caller started a template (DEAD only): .pid */
        TEMPLATE_EVENT_START_FAILED,    /* the caller could not start one (DEAD only): .error */
        TEMPLATE_EVENT_MESSAGE,         /* a packet that parsed: .message */
        TEMPLATE_EVENT_FAULT,           /* the channel's own verdict: .fault, .detail */
        TEMPLATE_EVENT_EXITED,          /* the template process was reaped (not in DEAD) */
        TEMPLATE_EVENT_SPAWN_WANTED,    /* a slot wants a worker: .slot, .generation, .place */
        TEMPLATE_EVENT_PLACED,          /* the caller moved the PLACE's pid into the leaf (.error 0)
                                         * or could not (.error a negative errno): PLACED goes out */
        _TEMPLATE_EVENT_MAX,
};

struct template_event {
        enum template_event_type type;
        usec_t now;
        pid_t pid;                              /* STARTED: > 0 */
        int error;                              /* START_FAILED: a negative errno, for the decision;
                                                 * PLACED: 0 or a negative errno */
        const struct template_message *message; /* MESSAGE */
        enum template_fault fault;              /* FAULT */
        const char *detail;                     /* FAULT: for the log, may be NULL; copied, cut to fit */
        unsigned slot;                          /* SPAWN_WANTED: 0 … TEMPLATE_SLOT_MAX */
        uint64_t generation;                    /* SPAWN_WANTED: ≥ 1 */
        bool place;                             /* SPAWN_WANTED: the SPAWN says PLACE=1 */
};

#define TEMPLATE_DETAIL_MAX 192U

/* What to do now. Several may be set at once (a kill while a SPAWN is in flight also fails
 * that spawn); the caller acts on each in the order listed. */
struct template_decision {
        bool spawn_failed;              /* .slot/.generation gets no worker from this SPAWN: the slot's
                                         * restart backoff, as for an exec that failed (§4) */
        int error;                      /* … why: -ERRNO of SPAWN_FAILED; -ETIMEDOUT fork_timeout;
                                         * -EPROTO a protocol fault; -ESRCH the template exited */
        bool place;                     /* move .pid (the intermediate of .slot/.generation's SPAWN) into
                                         * that worker's leaf now, feed TEMPLATE_EVENT_PLACED with how
                                         * it went, and send PLACED */
        bool spawned;                   /* .slot/.generation's worker is .pid: adopt it */
        pid_t pid;
        unsigned slot;
        uint64_t generation;

        bool kill;                      /* SIGKILL the template's process group and stop reading its
                                         * channel; TEMPLATE_EVENT_EXITED comes next */
        enum template_fault fault;      /* … why: log template_fault_event(fault) reason=fault */
        char detail[TEMPLATE_DETAIL_MAX]; /* … what exactly ("SPAWNED for slot 4 generation 7, SPAWN in
                                         * flight is slot 3 generation 7"), the sender's bytes included:
                                         * log_quote() it. "" with nothing to add */

        bool ready;                     /* the READY was accepted */
        bool send_spawn;                /* send SPAWN for .slot/.generation now, fork_timeout runs */
        bool idle;                      /* the template takes a SPAWN now: offer the next waiting slot */
        bool start;                     /* start a template now; then STARTED or START_FAILED. The
                                         * caller numbers it (MEMWARD_TEMPLATE_GENERATION counts across
                                         * reloads, which outlive a template_state) */
        usec_t restart_at;              /* the template is gone: start comes at this time (a TIMER then);
                                         * USEC_INFINITY when nothing is scheduled */
};

/* A template_state with no template yet and its first start due at once (deadline 0). */
void template_state_init(struct template_state *s, const struct template_timing *timing);

/* Feeds one event. Returns 0 and *ret (all false, restart_at USEC_INFINITY when there is
 * nothing to do: messages and faults in DEAD or KILLED are dropped, the template is
 * condemned already), or, with *s and *ret untouched:
 *   -EBUSY     SPAWN_WANTED while the template is not IDLE: keep the request, offer it on
 *              the next decision with .idle;
 *   -EINVAL    an event this phase cannot have (STARTED or START_FAILED outside DEAD, EXITED
 *              in DEAD, PLACED other than once after a decision with .place, or with .error > 0),
 *              or arguments out of range (slot > TEMPLATE_SLOT_MAX, generation 0,
 *              pid ≤ 0, START_FAILED error ≥ 0, no message, unknown type or fault): the
 *              caller's bug, worth a log line, and the machine stays as it was.
 * Only TIMER looks at deadlines: a READY or an answer that arrives after its deadline but
 * before the timer fired is taken, since it did come. A SPAWNED whose PID fails the check
 * of §3 is fed as a FAULT with TEMPLATE_FAULT_BAD_PID, not as a MESSAGE, so that the SPAWN
 * in flight fails with it, and so is a PLACE whose PID is not the template's own child
 * of the template's user; so is a SPAWN that template_channel_send() could not send
 * (TEMPLATE_FAULT_CHANNEL_ERROR: -EAGAIN, it does not read; -EPIPE, it is gone). */
int template_state_handle(struct template_state *s, const struct template_event *e, struct template_decision *ret);

/* When the next TIMER is due: .deadline, USEC_INFINITY when nothing waits on time. */
usec_t template_state_next_deadline(const struct template_state *s);
