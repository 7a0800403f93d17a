/* The template's lifecycle as a pure state machine: a spawn request and its answer, the
 * two timeouts, the template's death with and without a SPAWN in flight, protocol errors,
 * the restart backoff growing and reset by READY, answers for another slot or generation,
 * and SPAWN_FAILED, which keeps the template; memward's placement of a SPAWN with PLACE=1
 * (PLACE, PLACED, and what may not come out of order). Time is whatever the test says it is. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "memward/base/macro.h"
#include "memward/base/utf8.h"
#include "memward/supervisor/template_state.h"

#define MS USEC_PER_MSEC
#define SEC USEC_PER_SEC

static const struct template_timing timing = {
        .ready_timeout = 60 * SEC,
        .fork_timeout = 10 * SEC,
        .backoff_initial = 100 * MS,
        .backoff_max = 30 * SEC,
};

#define TEMPLATE_PID 4000

static struct template_decision feed(struct template_state *s, struct template_event e) {
        struct template_decision d;
        memset(&d, 0xA5, sizeof d);
        int r = template_state_handle(s, &e, &d);
        if (r != 0)
                fail_msg("event %d in phase %s: %d", e.type, template_phase_to_string(s->phase), r);
        return d;
}

static int feed_refused(struct template_state *s, struct template_event e) {
        struct template_state before = *s;
        struct template_decision d, untouched;
        memset(&d, 0xA5, sizeof d);
        untouched = d;
        int r = template_state_handle(s, &e, &d);
        assert_true(r < 0);
        assert_memory_equal(s, &before, sizeof before);
        assert_memory_equal(&d, &untouched, sizeof d);
        return r;
}

static struct template_decision timer(struct template_state *s, usec_t now) {
        return feed(s, (struct template_event) { .type = TEMPLATE_EVENT_TIMER, .now = now });
}

static struct template_decision started(struct template_state *s, usec_t now) {
        return feed(s, (struct template_event) { .type = TEMPLATE_EVENT_STARTED, .now = now, .pid = TEMPLATE_PID });
}

static struct template_decision exited(struct template_state *s, usec_t now) {
        return feed(s, (struct template_event) { .type = TEMPLATE_EVENT_EXITED, .now = now });
}

static struct template_decision message(struct template_state *s, usec_t now, struct template_message m) {
        return feed(s, (struct template_event) { .type = TEMPLATE_EVENT_MESSAGE, .now = now, .message = &m });
}

static struct template_decision ready(struct template_state *s, usec_t now) {
        return message(s, now, (struct template_message) { .type = TEMPLATE_READY });
}

static struct template_decision spawned(struct template_state *s, usec_t now, unsigned slot, uint64_t generation,
                                        pid_t pid) {
        return message(s, now,
                       (struct template_message) { .type = TEMPLATE_SPAWNED, .slot = slot, .generation = generation, .pid = pid });
}

static struct template_decision spawn_failed(struct template_state *s, usec_t now, unsigned slot, uint64_t generation,
                                             int error) {
        return message(s, now, (struct template_message) { .type = TEMPLATE_SPAWN_FAILED, .slot = slot,
                                                            .generation = generation, .error = error });
}

static struct template_decision place(struct template_state *s, usec_t now, unsigned slot, uint64_t generation,
                                      pid_t pid) {
        return message(s, now,
                       (struct template_message) { .type = TEMPLATE_PLACE, .slot = slot, .generation = generation, .pid = pid });
}

static struct template_decision placed(struct template_state *s, usec_t now, int error) {
        return feed(s, (struct template_event) { .type = TEMPLATE_EVENT_PLACED, .now = now, .error = error });
}

static struct template_event want_placed(usec_t now, unsigned slot, uint64_t generation) {
        return (struct template_event) { .type = TEMPLATE_EVENT_SPAWN_WANTED, .now = now, .slot = slot,
                                         .generation = generation, .place = true };
}

static struct template_event want(usec_t now, unsigned slot, uint64_t generation) {
        return (struct template_event) { .type = TEMPLATE_EVENT_SPAWN_WANTED, .now = now, .slot = slot, .generation = generation };
}

static struct template_decision fault(struct template_state *s, usec_t now, enum template_fault f, const char *detail) {
        return feed(s, (struct template_event) { .type = TEMPLATE_EVENT_FAULT, .now = now, .fault = f, .detail = detail });
}

/* A decision that says nothing at all. */
static void assert_nothing(const struct template_decision *d) {
        assert_false(d->spawn_failed || d->spawned || d->kill || d->ready || d->send_spawn || d->idle || d->start ||
                     d->place);
        assert_true(d->restart_at == USEC_INFINITY);
}

/* Init, the start it asks for, STARTED at `at` and READY right after: IDLE. */
static void bring_up(struct template_state *s, usec_t at) {
        struct template_decision d;

        if (s->phase == TEMPLATE_PHASE_DEAD && s->deadline != USEC_INFINITY) {
                d = timer(s, at);
                assert_true(d.start);
        }
        started(s, at);
        d = ready(s, at + 1);
        assert_true(d.ready && d.idle);
        assert_int_equal(s->phase, TEMPLATE_PHASE_IDLE);
}

/* A template up and a SPAWN with PLACE=1 for slot 3 generation 7 in flight since 1 s. */
static void bring_up_placing(struct template_state *s) {
        template_state_init(s, &timing);
        bring_up(s, 0);
        assert_true(feed(s, want_placed(1 * SEC, 3, 7)).send_spawn);
}

static void test_first_start(void **state) {
        (void) state;
        struct template_state s;
        struct template_decision d;

        template_state_init(&s, &timing);
        assert_int_equal(s.phase, TEMPLATE_PHASE_DEAD);
        assert_true(template_state_next_deadline(&s) == 0);

        d = timer(&s, 5 * SEC);
        assert_true(d.start);
        assert_false(d.kill || d.send_spawn || d.idle);
        /* Asked once: the next timer waits for STARTED. */
        assert_true(template_state_next_deadline(&s) == USEC_INFINITY);
        d = timer(&s, 6 * SEC);
        assert_nothing(&d);

        d = started(&s, 6 * SEC);
        assert_nothing(&d);
        assert_int_equal(s.phase, TEMPLATE_PHASE_STARTING);
        assert_int_equal(s.pid, TEMPLATE_PID);
        assert_true(template_state_next_deadline(&s) == 66 * SEC);

        /* No spawn before READY: the caller keeps the request. */
        assert_int_equal(feed_refused(&s, want(7 * SEC, 0, 1)), -EBUSY);

        d = ready(&s, 8 * SEC);
        assert_true(d.ready);
        assert_true(d.idle);
        assert_false(d.kill || d.spawned || d.spawn_failed);
        assert_int_equal(s.phase, TEMPLATE_PHASE_IDLE);
        assert_true(template_state_next_deadline(&s) == USEC_INFINITY);
}

static void test_request_and_answer(void **state) {
        (void) state;
        struct template_state s;
        struct template_event e;
        struct template_decision d;

        template_state_init(&s, &timing);
        bring_up(&s, 0);

        e = want(10 * SEC, 3, 7);
        d = feed(&s, e);
        assert_true(d.send_spawn);
        assert_int_equal(d.slot, 3);
        assert_true(d.generation == 7);
        assert_false(d.idle || d.kill);
        assert_int_equal(s.phase, TEMPLATE_PHASE_SPAWNING);
        assert_true(template_state_next_deadline(&s) == 20 * SEC);

        /* One SPAWN at a time: the next waits, whatever its slot. */
        assert_int_equal(feed_refused(&s, want(11 * SEC, 4, 1)), -EBUSY);
        assert_int_equal(feed_refused(&s, want(11 * SEC, 3, 7)), -EBUSY);

        d = spawned(&s, 12 * SEC, 3, 7, 4242);
        assert_true(d.spawned);
        assert_int_equal(d.pid, 4242);
        assert_int_equal(d.slot, 3);
        assert_true(d.generation == 7);
        assert_true(d.idle);
        assert_false(d.kill || d.spawn_failed || d.send_spawn);
        assert_int_equal(s.phase, TEMPLATE_PHASE_IDLE);
        assert_true(template_state_next_deadline(&s) == USEC_INFINITY);

        /* The next one now goes. */
        d = feed(&s, want(12 * SEC, 4, 1));
        assert_true(d.send_spawn);
        assert_int_equal(d.slot, 4);
}

/* The template could not fork: the slot fails, the template keeps serving. */
static void test_spawn_failed_keeps_template(void **state) {
        (void) state;
        struct template_state s;
        struct template_decision d;

        template_state_init(&s, &timing);
        bring_up(&s, 0);
        feed(&s, want(SEC, 2, 9));
        d = spawn_failed(&s, 2 * SEC, 2, 9, EAGAIN);
        assert_true(d.spawn_failed);
        assert_int_equal(d.error, -EAGAIN);
        assert_int_equal(d.slot, 2);
        assert_true(d.generation == 9);
        assert_true(d.idle);
        assert_false(d.kill || d.spawned);
        assert_true(d.restart_at == USEC_INFINITY);
        assert_int_equal(s.phase, TEMPLATE_PHASE_IDLE);
        assert_int_equal(s.failures, 0);
        assert_int_equal(s.pid, TEMPLATE_PID);

        d = feed(&s, want(3 * SEC, 2, 10));
        assert_true(d.send_spawn);
}

static void test_ready_timeout(void **state) {
        (void) state;
        struct template_state s;
        struct template_decision d;

        template_state_init(&s, &timing);
        timer(&s, 0);
        started(&s, SEC);

        d = timer(&s, 61 * SEC - 1);
        assert_nothing(&d);
        d = timer(&s, 61 * SEC);
        assert_true(d.kill);
        assert_int_equal(d.fault, TEMPLATE_FAULT_READY_TIMEOUT);
        assert_string_equal(template_fault_event(d.fault), "template_timeout");
        assert_string_equal(template_fault_to_string(d.fault), "ready_timeout");
        assert_string_equal(d.detail, "no READY within 1m");
        assert_false(d.spawn_failed || d.start);
        assert_true(d.restart_at == USEC_INFINITY); /* not before it is gone */
        assert_int_equal(s.phase, TEMPLATE_PHASE_KILLED);
        assert_int_equal(s.failures, 1);
        assert_true(template_state_next_deadline(&s) == USEC_INFINITY);

        /* Condemned: what it still says does not matter, and SPAWN waits. */
        d = ready(&s, 62 * SEC);
        assert_nothing(&d);
        assert_int_equal(feed_refused(&s, want(62 * SEC, 0, 1)), -EBUSY);

        d = exited(&s, 62 * SEC);
        assert_false(d.spawn_failed || d.kill);
        assert_true(d.restart_at == 62 * SEC + 100 * MS);
        assert_int_equal(s.phase, TEMPLATE_PHASE_DEAD);
        assert_int_equal(s.pid, 0);
        assert_int_equal(s.failures, 1); /* counted once, at the kill */

        d = timer(&s, 62 * SEC + 99 * MS);
        assert_nothing(&d);
        d = timer(&s, 62 * SEC + 100 * MS);
        assert_true(d.start);
}

/* A READY that came after its deadline, before the timer fired, is taken: it did come. */
static void test_late_ready_before_timer(void **state) {
        (void) state;
        struct template_state s;
        struct template_decision d;

        template_state_init(&s, &timing);
        timer(&s, 0);
        started(&s, 0);
        d = ready(&s, 61 * SEC);
        assert_true(d.ready);
        d = timer(&s, 61 * SEC);
        assert_nothing(&d);
}

static void test_fork_timeout(void **state) {
        (void) state;
        struct template_state s;
        struct template_decision d;

        template_state_init(&s, &timing);
        bring_up(&s, 0);
        feed(&s, want(SEC, 5, 2));
        d = timer(&s, 11 * SEC - 1);
        assert_nothing(&d);
        d = timer(&s, 11 * SEC);
        assert_true(d.kill);
        assert_int_equal(d.fault, TEMPLATE_FAULT_FORK_TIMEOUT);
        assert_string_equal(template_fault_event(d.fault), "template_timeout");
        assert_string_equal(d.detail, "no answer to SPAWN for slot 5 generation 2 within 10s");
        assert_true(d.spawn_failed);
        assert_int_equal(d.error, -ETIMEDOUT);
        assert_int_equal(d.slot, 5);
        assert_true(d.generation == 2);
        assert_false(d.idle);
        assert_int_equal(s.phase, TEMPLATE_PHASE_KILLED);

        /* The answer arriving now changes nothing: that spawn has failed already. */
        d = spawned(&s, 11 * SEC + 1, 5, 2, 777);
        assert_nothing(&d);
        d = exited(&s, 11 * SEC + 2);
        assert_false(d.spawn_failed); /* reported once, at the kill */
        assert_true(d.restart_at == 11 * SEC + 2 + 100 * MS);
}

static void test_template_death(void **state) {
        (void) state;
        struct template_state s;
        struct template_decision d;

        /* While idle. */
        template_state_init(&s, &timing);
        bring_up(&s, 0);
        d = exited(&s, 5 * SEC);
        assert_false(d.spawn_failed || d.kill);
        assert_true(d.restart_at == 5 * SEC + 100 * MS);
        assert_int_equal(s.failures, 1);
        assert_int_equal(s.phase, TEMPLATE_PHASE_DEAD);
        assert_int_equal(feed_refused(&s, want(5 * SEC, 0, 1)), -EBUSY);
        /* Dead already: a second exit is the caller's bug. */
        assert_int_equal(feed_refused(&s, (struct template_event) { .type = TEMPLATE_EVENT_EXITED, .now = 6 * SEC }),
                         -EINVAL);

        /* With a SPAWN in flight: that spawn fails with it. */
        template_state_init(&s, &timing);
        bring_up(&s, 0);
        feed(&s, want(SEC, 1, 3));
        d = exited(&s, 2 * SEC);
        assert_true(d.spawn_failed);
        assert_int_equal(d.error, -ESRCH);
        assert_int_equal(d.slot, 1);
        assert_true(d.generation == 3);
        assert_false(d.kill);
        assert_true(d.restart_at == 2 * SEC + 100 * MS);

        /* Before READY. */
        template_state_init(&s, &timing);
        timer(&s, 0);
        started(&s, 0);
        d = exited(&s, SEC);
        assert_false(d.spawn_failed);
        assert_true(d.restart_at == SEC + 100 * MS);
        assert_int_equal(s.failures, 1);
}

static void test_protocol_error(void **state) {
        (void) state;
        struct template_state s;
        struct template_decision d;

        template_state_init(&s, &timing);
        bring_up(&s, 0);
        feed(&s, want(SEC, 6, 4));
        d = fault(&s, 2 * SEC, TEMPLATE_FAULT_MALFORMED, "line 4: SLOT repeated");
        assert_true(d.kill);
        assert_int_equal(d.fault, TEMPLATE_FAULT_MALFORMED);
        assert_string_equal(template_fault_event(d.fault), "template_protocol_error");
        assert_string_equal(template_fault_to_string(d.fault), "malformed");
        assert_string_equal(d.detail, "line 4: SLOT repeated");
        assert_true(d.spawn_failed);
        assert_int_equal(d.error, -EPROTO);
        assert_int_equal(d.slot, 6);
        assert_int_equal(s.phase, TEMPLATE_PHASE_KILLED);
        assert_int_equal(s.failures, 1);

        /* Faults of a condemned template are dropped: it is killed once. */
        d = fault(&s, 2 * SEC, TEMPLATE_FAULT_CHANNEL_CLOSED, NULL);
        assert_nothing(&d);

        /* In IDLE, without a detail: nothing in flight fails. */
        template_state_init(&s, &timing);
        bring_up(&s, 0);
        d = fault(&s, SEC, TEMPLATE_FAULT_FDS, NULL);
        assert_true(d.kill);
        assert_int_equal(d.fault, TEMPLATE_FAULT_FDS);
        assert_string_equal(d.detail, "");
        assert_false(d.spawn_failed);

        /* Before READY, an unsupported version. */
        template_state_init(&s, &timing);
        timer(&s, 0);
        started(&s, 0);
        d = fault(&s, SEC, template_fault_from_parse(-EPROTONOSUPPORT), "PROTOCOL=2, memward speaks 1");
        assert_true(d.kill);
        assert_string_equal(template_fault_to_string(d.fault), "unsupported_protocol");
        assert_int_equal(s.phase, TEMPLATE_PHASE_KILLED);
}

/* A detail longer than the decision holds is cut between characters. */
static void test_protocol_error_detail_cut(void **state) {
        (void) state;
        struct template_state s;
        struct template_decision d;
        char detail[400] = "";

        for (int i = 0; i < 150; i++)
                strcat(detail, "\xc3\xa9");
        template_state_init(&s, &timing);
        bring_up(&s, 0);
        d = fault(&s, SEC, TEMPLATE_FAULT_MALFORMED, detail);
        assert_int_equal(strlen(d.detail), TEMPLATE_DETAIL_MAX - 1 - (TEMPLATE_DETAIL_MAX - 1) % 2);
        for (size_t i = 0; d.detail[i];) {
                size_t n = utf8_decode((const unsigned char *) d.detail + i, NULL);
                assert_true(n > 0);
                i += n;
        }
}

static void test_unexpected_messages(void **state) {
        (void) state;
        struct template_state s;
        struct template_decision d;

        /* An answer before READY. */
        template_state_init(&s, &timing);
        timer(&s, 0);
        started(&s, 0);
        d = spawned(&s, SEC, 0, 1, 100);
        assert_true(d.kill);
        assert_int_equal(d.fault, TEMPLATE_FAULT_UNEXPECTED_MESSAGE);
        assert_string_equal(template_fault_event(d.fault), "template_protocol_error");
        assert_string_equal(d.detail, "SPAWNED before READY");
        assert_false(d.spawned);

        /* READY twice. */
        template_state_init(&s, &timing);
        bring_up(&s, 0);
        d = ready(&s, SEC);
        assert_true(d.kill);
        assert_int_equal(d.fault, TEMPLATE_FAULT_UNEXPECTED_MESSAGE);
        assert_string_equal(d.detail, "READY again");

        /* An answer with no SPAWN in flight, even for a slot that was asked for before. */
        template_state_init(&s, &timing);
        bring_up(&s, 0);
        feed(&s, want(SEC, 2, 1));
        spawned(&s, SEC, 2, 1, 100);
        d = spawn_failed(&s, 2 * SEC, 2, 1, EPERM);
        assert_true(d.kill);
        assert_int_equal(d.fault, TEMPLATE_FAULT_UNEXPECTED_MESSAGE);
        assert_string_equal(d.detail, "SPAWN_FAILED for slot 2 generation 1 with no SPAWN in flight");
        assert_false(d.spawn_failed);

        /* READY while a SPAWN is in flight: that spawn fails too. */
        template_state_init(&s, &timing);
        bring_up(&s, 0);
        feed(&s, want(SEC, 8, 2));
        d = ready(&s, 2 * SEC);
        assert_true(d.kill);
        assert_int_equal(d.fault, TEMPLATE_FAULT_UNEXPECTED_MESSAGE);
        assert_string_equal(d.detail, "READY while SPAWN for slot 8 generation 2 is in flight");
        assert_true(d.spawn_failed);
        assert_int_equal(d.error, -EPROTO);
        assert_int_equal(d.slot, 8);
}

static void test_wrong_slot_or_generation(void **state) {
        (void) state;
        struct template_state s;
        struct template_decision d;

        template_state_init(&s, &timing);
        bring_up(&s, 0);
        feed(&s, want(SEC, 3, 7));
        d = spawned(&s, 2 * SEC, 4, 7, 4242);
        assert_true(d.kill);
        assert_int_equal(d.fault, TEMPLATE_FAULT_WRONG_SLOT);
        assert_string_equal(template_fault_to_string(d.fault), "wrong_slot");
        assert_string_equal(template_fault_event(d.fault), "template_protocol_error");
        assert_string_equal(d.detail, "SPAWNED for slot 4 generation 7, SPAWN in flight is slot 3 generation 7");
        assert_false(d.spawned); /* that pid is not adopted */
        assert_true(d.spawn_failed);
        assert_int_equal(d.error, -EPROTO);
        assert_int_equal(d.slot, 3);
        assert_true(d.generation == 7);

        template_state_init(&s, &timing);
        bring_up(&s, 0);
        feed(&s, want(SEC, 3, 7));
        d = spawned(&s, 2 * SEC, 3, 6, 4242);
        assert_true(d.kill);
        assert_int_equal(d.fault, TEMPLATE_FAULT_WRONG_GENERATION);
        assert_string_equal(d.detail, "SPAWNED for slot 3 generation 6, SPAWN in flight is slot 3 generation 7");
        assert_true(d.spawn_failed);

        template_state_init(&s, &timing);
        bring_up(&s, 0);
        feed(&s, want(SEC, 3, 7));
        d = spawn_failed(&s, 2 * SEC, 3, 8, ENOMEM);
        assert_true(d.kill);
        assert_int_equal(d.fault, TEMPLATE_FAULT_WRONG_GENERATION);
        assert_true(d.spawn_failed);
        assert_int_equal(d.error, -EPROTO); /* the template's ENOMEM was about another spawn */
}

/* Each failure in a row doubles the wait, up to the cap; a READY starts the count again. */
static void test_backoff_grows_and_resets_after_spawned(void **state) {
        (void) state;
        struct template_state s;
        struct template_decision d;
        usec_t now = 0;
        static const usec_t want_delays[] = { 100 * MS, 200 * MS, 400 * MS, 800 * MS, 1600 * MS, 3200 * MS,
                                              6400 * MS, 12800 * MS, 25600 * MS, 30 * SEC, 30 * SEC };

        template_state_init(&s, &timing);
        d = timer(&s, now);
        assert_true(d.start);
        for (size_t i = 0; i < ELEMENTSOF(want_delays); i++) {
                /* Every way to fail counts the same: an exit before READY, a kill for a
                 * timeout (counted at the kill, not again at the exit), a start that failed. */
                switch (i % 3) {
                case 0:
                        started(&s, now);
                        d = exited(&s, now += SEC);
                        break;
                case 1:
                        started(&s, now);
                        d = timer(&s, now += 60 * SEC);
                        assert_true(d.kill);
                        d = exited(&s, now);
                        break;
                default:
                        d = feed(&s, (struct template_event) { .type = TEMPLATE_EVENT_START_FAILED, .now = now,
                                                               .error = -ENOENT });
                        break;
                }
                if (d.restart_at - now != want_delays[i])
                        fail_msg("failure %zu: waits %llu us, expected %llu", i + 1,
                                 (unsigned long long) (d.restart_at - now), (unsigned long long) want_delays[i]);
                assert_int_equal(s.failures, i + 1);
                d = timer(&s, now = d.restart_at);
                assert_true(d.start);
        }

        /* A template that gets to READY but dies at its first fork (an app that crashes
         * once forked): READY alone proves nothing, it keeps backing off. */
        template_state_init(&s, &timing);
        s.failures = 7;
        timer(&s, 0);
        started(&s, 0);
        d = ready(&s, SEC);
        assert_int_equal(s.failures, 7);
        assert_int_equal(feed(&s, want(SEC, 0, 1)).send_spawn, true);
        d = exited(&s, 2 * SEC);
        assert_true(d.spawn_failed);
        assert_int_equal(s.failures, 8);
        assert_true(d.restart_at == 2 * SEC + want_delays[7]);

        /* A SPAWN_FAILED is no proof either: the template stays, and so does its count. */
        timer(&s, d.restart_at);
        started(&s, d.restart_at);
        ready(&s, d.restart_at + SEC);
        feed(&s, want(d.restart_at + SEC, 0, 2));
        spawn_failed(&s, d.restart_at + SEC, 0, 2, ENOMEM);
        assert_int_equal(s.failures, 8);

        /* Its first SPAWNED is: the next failure is the first again. */
        feed(&s, want(d.restart_at + SEC, 0, 3));
        spawned(&s, d.restart_at + SEC, 0, 3, 4242);
        assert_int_equal(s.failures, 0);
        now = d.restart_at + 2 * SEC;
        d = exited(&s, now);
        assert_true(d.restart_at == now + 100 * MS);
        assert_int_equal(s.failures, 1);
}

/* SPAWN with PLACE=1: PLACE, memward moves the pid, PLACED, SPAWNED; one fork_timeout
 * for all of it. */
static void test_place_and_answer(void **state) {
        (void) state;
        struct template_state s;
        struct template_decision d;

        template_state_init(&s, &timing);
        bring_up(&s, 0);
        d = feed(&s, want_placed(1 * SEC, 3, 7));
        assert_true(d.send_spawn);
        assert_true(s.spawn_place);
        assert_true(template_state_next_deadline(&s) == 11 * SEC);

        d = place(&s, 2 * SEC, 3, 7, 4100);
        assert_true(d.place);
        assert_int_equal(d.pid, 4100);
        assert_int_equal(d.slot, 3);
        assert_true(d.generation == 7);
        assert_false(d.spawned || d.spawn_failed || d.kill || d.idle || d.send_spawn);
        assert_int_equal(s.phase, TEMPLATE_PHASE_SPAWNING);
        /* The exchange does not buy the template more time. */
        assert_true(template_state_next_deadline(&s) == 11 * SEC);
        /* Nothing is offered while the placement is open. */
        assert_int_equal(feed_refused(&s, want(2 * SEC, 4, 1)), -EBUSY);

        d = placed(&s, 2 * SEC, 0);
        assert_nothing(&d);
        assert_int_equal(s.phase, TEMPLATE_PHASE_SPAWNING);

        d = spawned(&s, 3 * SEC, 3, 7, 4101);
        assert_true(d.spawned && d.idle);
        assert_false(d.place || d.kill);
        assert_int_equal(d.pid, 4101);
        assert_int_equal(s.phase, TEMPLATE_PHASE_IDLE);

        /* The next SPAWN starts afresh: one without PLACE=1 takes no PLACE. */
        d = feed(&s, want(4 * SEC, 4, 1));
        assert_true(d.send_spawn);
        assert_false(s.spawn_place);
        assert_int_equal(s.place_pid, 0);
        assert_false(s.placed);
        d = spawned(&s, 5 * SEC, 4, 1, 4102);
        assert_true(d.spawned);
}

/* memward could not move it (it died, the kernel refused): PLACED says so, the template
 * answers SPAWN_FAILED and stays; a SPAWNED instead would be a worker outside its leaf. */
static void test_place_failed(void **state) {
        (void) state;
        struct template_state s;
        struct template_decision d;

        bring_up_placing(&s);
        place(&s, 2 * SEC, 3, 7, 4100);
        d = placed(&s, 2 * SEC, -ESRCH);
        assert_nothing(&d);
        d = spawn_failed(&s, 3 * SEC, 3, 7, ESRCH);
        assert_true(d.spawn_failed && d.idle);
        assert_int_equal(d.error, -ESRCH);
        assert_false(d.kill);
        assert_int_equal(s.phase, TEMPLATE_PHASE_IDLE);

        feed(&s, want_placed(4 * SEC, 3, 8));
        place(&s, 5 * SEC, 3, 8, 4103);
        placed(&s, 5 * SEC, -EACCES);
        d = spawned(&s, 6 * SEC, 3, 8, 4104);
        assert_true(d.kill && d.spawn_failed);
        assert_false(d.spawned);
        assert_int_equal(d.fault, TEMPLATE_FAULT_UNEXPECTED_MESSAGE);
        assert_int_equal(d.error, -EPROTO);
        assert_non_null(strstr(d.detail, "after its placement failed"));
        assert_int_equal(s.phase, TEMPLATE_PHASE_KILLED);
}

/* fork_timeout runs from the SPAWN: a PLACE that never comes, or a SPAWNED that never
 * follows PLACED, is the same timeout. */
static void test_place_timeout(void **state) {
        (void) state;
        struct template_state s;
        struct template_decision d;

        bring_up_placing(&s);
        d = timer(&s, 11 * SEC - 1);
        assert_nothing(&d);
        d = timer(&s, 11 * SEC);
        assert_true(d.kill && d.spawn_failed);
        assert_int_equal(d.fault, TEMPLATE_FAULT_FORK_TIMEOUT);
        assert_int_equal(d.error, -ETIMEDOUT);

        exited(&s, 12 * SEC);
        bring_up(&s, 13 * SEC);
        feed(&s, want_placed(14 * SEC, 3, 8));
        place(&s, 15 * SEC, 3, 8, 4100);
        placed(&s, 15 * SEC, 0);
        d = timer(&s, 24 * SEC - 1);
        assert_nothing(&d);
        d = timer(&s, 24 * SEC);
        assert_true(d.kill && d.spawn_failed);
        assert_int_equal(d.fault, TEMPLATE_FAULT_FORK_TIMEOUT);
        assert_int_equal(d.slot, 3);
        assert_true(d.generation == 8);
}

/* A PLACE whose PID is not the template's own child of its own user: the caller feeds
 * it as bad_pid, and the SPAWN fails with the template. */
static void test_place_bad_pid(void **state) {
        (void) state;
        struct template_state s;
        struct template_decision d;

        bring_up_placing(&s);
        d = fault(&s, 2 * SEC, TEMPLATE_FAULT_BAD_PID, "PID 1: its parent 0 is not the template (4000)");
        assert_true(d.kill && d.spawn_failed);
        assert_false(d.place);
        assert_int_equal(d.fault, TEMPLATE_FAULT_BAD_PID);
        assert_int_equal(d.error, -EPROTO);
        assert_int_equal(d.slot, 3);
        assert_string_equal(d.detail, "PID 1: its parent 0 is not the template (4000)");
        assert_int_equal(s.phase, TEMPLATE_PHASE_KILLED);
        /* Nothing more to place for a condemned template. */
        assert_int_equal(feed_refused(&s, (struct template_event) { .type = TEMPLATE_EVENT_PLACED, .now = 3 * SEC }),
                         -EINVAL);
}

/* PLACE out of turn: for a SPAWN without PLACE=1, twice, with no SPAWN in flight, for
 * another slot; and a SPAWNED that skips the PLACE. Each condemns the template. */
static void test_place_out_of_turn(void **state) {
        (void) state;
        static const struct {
                bool place;             /* the SPAWN said PLACE=1 */
                bool first_place;       /* a PLACE came and was placed before */
                enum template_message_type type;
                unsigned slot;
                enum template_fault fault;
                const char *detail;
        } cases[] = {
                { false, false, TEMPLATE_PLACE, 3, TEMPLATE_FAULT_UNEXPECTED_MESSAGE, "did not say PLACE=1" },
                { true, true, TEMPLATE_PLACE, 3, TEMPLATE_FAULT_UNEXPECTED_MESSAGE, "PLACE for slot 3 generation 7 again" },
                { true, false, TEMPLATE_SPAWNED, 3, TEMPLATE_FAULT_UNEXPECTED_MESSAGE, "before its PLACE was answered" },
                { true, false, TEMPLATE_PLACE, 4, TEMPLATE_FAULT_WRONG_SLOT, "SPAWN in flight is slot 3" },
        };
        struct template_state s;
        struct template_decision d;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                template_state_init(&s, &timing);
                bring_up(&s, 0);
                feed(&s, cases[i].place ? want_placed(1 * SEC, 3, 7) : want(1 * SEC, 3, 7));
                if (cases[i].first_place) {
                        place(&s, 2 * SEC, 3, 7, 4100);
                        placed(&s, 2 * SEC, 0);
                }
                d = message(&s, 3 * SEC,
                            (struct template_message) { .type = cases[i].type, .slot = cases[i].slot, .generation = 7,
                                                        .pid = 4101 });
                assert_true(d.kill && d.spawn_failed);
                assert_false(d.place || d.spawned);
                assert_int_equal(d.fault, cases[i].fault);
                assert_int_equal(d.error, -EPROTO);
                if (!strstr(d.detail, cases[i].detail))
                        fail_msg("case %zu: detail \"%s\" lacks \"%s\"", i, d.detail, cases[i].detail);
        }

        /* With no SPAWN in flight at all. */
        template_state_init(&s, &timing);
        bring_up(&s, 0);
        d = place(&s, 1 * SEC, 3, 7, 4100);
        assert_true(d.kill);
        assert_false(d.spawn_failed || d.place);
        assert_int_equal(d.fault, TEMPLATE_FAULT_UNEXPECTED_MESSAGE);
}

/* SPAWN_FAILED while memward's placer is still moving the PLACE's pid (no PLACED yet):
 * the template must wait for the PLACED (§3.1), or memward could be writing a pid the
 * template has already reaped. A fault; before any PLACE (its fork failed) and after a
 * PLACED with ERRNO it is the normal answer. */
static void test_spawn_failed_before_placed(void **state) {
        (void) state;
        struct template_state s;
        struct template_decision d;

        template_state_init(&s, &timing);
        bring_up(&s, 0);
        feed(&s, want_placed(1 * SEC, 3, 7));
        assert_true(place(&s, 2 * SEC, 3, 7, 4100).place);
        d = spawn_failed(&s, 3 * SEC, 3, 7, EAGAIN);
        assert_true(d.kill && d.spawn_failed);
        assert_int_equal(d.fault, TEMPLATE_FAULT_UNEXPECTED_MESSAGE);
        assert_int_equal(d.error, -EPROTO);
        assert_non_null(strstr(d.detail, "SPAWN_FAILED for slot 3 generation 7 before its PLACE was answered"));

        /* Before any PLACE: the intermediate could not be forked. */
        template_state_init(&s, &timing);
        bring_up(&s, 0);
        feed(&s, want_placed(1 * SEC, 3, 7));
        d = spawn_failed(&s, 2 * SEC, 3, 7, EAGAIN);
        assert_false(d.kill);
        assert_true(d.spawn_failed && d.idle);
        assert_int_equal(d.error, -EAGAIN);

        /* After a PLACED with ERRNO: the answer it owes. */
        template_state_init(&s, &timing);
        bring_up(&s, 0);
        feed(&s, want_placed(1 * SEC, 3, 7));
        place(&s, 2 * SEC, 3, 7, 4100);
        placed(&s, 2 * SEC, -ESRCH);
        d = spawn_failed(&s, 3 * SEC, 3, 7, ESRCH);
        assert_false(d.kill);
        assert_true(d.spawn_failed);
        assert_int_equal(d.error, -ESRCH);
}

static void test_refused_events(void **state) {
        (void) state;
        struct template_state s;

        template_state_init(&s, &timing);
        /* Dead: no exit to report. Out-of-range arguments are refused in any phase. */
        assert_int_equal(feed_refused(&s, (struct template_event) { .type = TEMPLATE_EVENT_EXITED }), -EINVAL);
        assert_int_equal(feed_refused(&s, (struct template_event) { .type = TEMPLATE_EVENT_STARTED, .pid = 0 }), -EINVAL);
        assert_int_equal(feed_refused(&s, (struct template_event) { .type = TEMPLATE_EVENT_START_FAILED, .error = 0 }),
                         -EINVAL);
        assert_int_equal(feed_refused(&s, (struct template_event) { .type = TEMPLATE_EVENT_MESSAGE, .message = NULL }),
                         -EINVAL);
        assert_int_equal(feed_refused(&s, (struct template_event) { .type = _TEMPLATE_EVENT_MAX }), -EINVAL);
        assert_int_equal(feed_refused(&s, (struct template_event) { .type = TEMPLATE_EVENT_FAULT,
                                                                    .fault = _TEMPLATE_FAULT_MAX }),
                         -EINVAL);

        bring_up(&s, 0);
        /* Live: no second STARTED, no START_FAILED. */
        assert_int_equal(feed_refused(&s, (struct template_event) { .type = TEMPLATE_EVENT_STARTED, .pid = 5 }), -EINVAL);
        assert_int_equal(feed_refused(&s, (struct template_event) { .type = TEMPLATE_EVENT_START_FAILED, .error = -EIO }),
                         -EINVAL);
        /* A request out of the protocol's range is refused before the phase is looked at. */
        assert_int_equal(feed_refused(&s, want(0, TEMPLATE_SLOT_MAX + 1, 1)), -EINVAL);
        assert_int_equal(feed_refused(&s, want(0, 0, 0)), -EINVAL);
        struct template_message bad = { .type = _TEMPLATE_MESSAGE_TYPE_MAX };
        assert_int_equal(feed_refused(&s, (struct template_event) { .type = TEMPLATE_EVENT_MESSAGE, .message = &bad }),
                         -EINVAL);
        assert_int_equal(s.phase, TEMPLATE_PHASE_IDLE);

        /* PLACED only once, right after a decision with .place, with 0 or a negative errno. */
        const struct template_event placed_ok = { .type = TEMPLATE_EVENT_PLACED };
        assert_int_equal(feed_refused(&s, placed_ok), -EINVAL);          /* IDLE */
        feed(&s, want(1, 3, 7));
        assert_int_equal(feed_refused(&s, placed_ok), -EINVAL);          /* a SPAWN without PLACE=1 */
        spawned(&s, 2, 3, 7, 4100);
        feed(&s, want_placed(3, 3, 8));
        assert_int_equal(feed_refused(&s, placed_ok), -EINVAL);          /* before its PLACE */
        place(&s, 4, 3, 8, 4101);
        assert_int_equal(feed_refused(&s, (struct template_event) { .type = TEMPLATE_EVENT_PLACED, .error = EIO }),
                         -EINVAL);
        placed(&s, 5, 0);
        assert_int_equal(feed_refused(&s, placed_ok), -EINVAL);          /* twice */
}

/* A timeout of "forever" never wraps around to a deadline in the past. */
static void test_infinite_timeouts(void **state) {
        (void) state;
        struct template_state s;
        struct template_timing t = timing;
        struct template_decision d;

        t.ready_timeout = USEC_INFINITY;
        t.fork_timeout = USEC_INFINITY;
        template_state_init(&s, &t);
        timer(&s, 0);
        started(&s, 1000 * SEC);
        assert_true(template_state_next_deadline(&s) == USEC_INFINITY);
        d = timer(&s, 2000 * SEC);
        assert_nothing(&d);
        ready(&s, 2000 * SEC);
        feed(&s, want(3000 * SEC, 0, 1));
        assert_true(template_state_next_deadline(&s) == USEC_INFINITY);
        d = timer(&s, 4000 * SEC);
        assert_nothing(&d);
}

static void test_names(void **state) {
        (void) state;
        assert_string_equal(template_phase_to_string(TEMPLATE_PHASE_DEAD), "dead");
        assert_string_equal(template_phase_to_string(TEMPLATE_PHASE_SPAWNING), "spawning");
        assert_string_equal(template_phase_to_string(_TEMPLATE_PHASE_MAX), "unknown");
        for (enum template_fault f = 0; f < _TEMPLATE_FAULT_MAX; f++) {
                assert_non_null(template_fault_to_string(f));
                assert_string_not_equal(template_fault_to_string(f), "unknown");
        }
        assert_string_equal(template_fault_to_string(_TEMPLATE_FAULT_MAX), "unknown");
        assert_string_equal(template_fault_event(TEMPLATE_FAULT_BAD_PID), "template_protocol_error");
        assert_int_equal(template_fault_from_parse(-EBADMSG), TEMPLATE_FAULT_MALFORMED);
        assert_int_equal(template_fault_from_parse(-EMSGSIZE), TEMPLATE_FAULT_OVERSIZED);
        assert_int_equal(template_fault_from_parse(-EPROTONOSUPPORT), TEMPLATE_FAULT_UNSUPPORTED_PROTOCOL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_first_start),
                cmocka_unit_test(test_request_and_answer),
                cmocka_unit_test(test_spawn_failed_keeps_template),
                cmocka_unit_test(test_ready_timeout),
                cmocka_unit_test(test_late_ready_before_timer),
                cmocka_unit_test(test_fork_timeout),
                cmocka_unit_test(test_template_death),
                cmocka_unit_test(test_protocol_error),
                cmocka_unit_test(test_protocol_error_detail_cut),
                cmocka_unit_test(test_unexpected_messages),
                cmocka_unit_test(test_wrong_slot_or_generation),
                cmocka_unit_test(test_backoff_grows_and_resets_after_spawned),
                cmocka_unit_test(test_place_and_answer),
                cmocka_unit_test(test_place_failed),
                cmocka_unit_test(test_place_timeout),
                cmocka_unit_test(test_place_bad_pid),
                cmocka_unit_test(test_place_out_of_turn),
                cmocka_unit_test(test_spawn_failed_before_placed),
                cmocka_unit_test(test_refused_events),
                cmocka_unit_test(test_infinite_timeouts),
                cmocka_unit_test(test_names),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
