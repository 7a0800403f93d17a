/* The template control channel: both parsers on good input, on every malformed case of
 * docs/fork-server.md §2 (each by its errno and its fault), the formatters and their round
 * trips, and the socketpair with a real fd passed to the template and fds refused from it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "memward/base/macro.h"
#include "memward/base/utf8.h"
#include "memward/linux/template_channel.h"

static int parse(const char *s, struct template_message *m) {
        return template_message_parse(s, strlen(s), m, NULL);
}

/* Parses s, which must fail with r, and checks the fault's token. */
static void assert_refused(const char *s, size_t length, int r, const char *what) {
        struct template_message m, poisoned;
        struct template_parse_error e = {};

        memset(&m, 0xA5, sizeof m);
        poisoned = m;
        int got = template_message_parse(s, length, &m, &e);
        if (got != r || !e.what || strcmp(e.what, what) != 0)
                fail_msg("\"%.*s\": got %d (%s: %s), expected %d (%s)", (int) length, s, got, e.what ?: "-", e.text, r,
                         what);
        assert_memory_equal(&m, &poisoned, sizeof m); /* ret untouched */
        assert_true(memchr(e.text, '\0', sizeof e.text) != NULL);
        assert_true(e.text[0] != '\0');
}

#define REFUSED(s, r, what) assert_refused((s), strlen(s), (r), (what))

static void test_parse_ready(void **state) {
        (void) state;
        struct template_message m;
        struct template_parse_error e = { .what = "untouched" };

        const char *s = "READY\nPROTOCOL=1\nRUNTIME=python/3.11.2 gunicorn/20.1.0\n";
        assert_int_equal(template_message_parse(s, strlen(s), &m, &e), 0);
        assert_int_equal(m.type, TEMPLATE_READY);
        assert_string_equal(m.runtime, "python/3.11.2 gunicorn/20.1.0");
        assert_string_equal(e.what, "untouched"); /* the error is for failures only */

        /* RUNTIME is optional; the last line may miss its '\n'; PROTOCOL=01 is 1. */
        assert_int_equal(parse("READY\nPROTOCOL=01", &m), 0);
        assert_string_equal(m.runtime, "");
        assert_int_equal(parse("READY\nRUNTIME=\nPROTOCOL=1\n", &m), 0);
        assert_string_equal(m.runtime, "");
}

static void test_parse_spawned_and_failed(void **state) {
        (void) state;
        struct template_message m;

        assert_int_equal(parse("SPAWNED\nSLOT=4095\nGENERATION=18446744073709551615\nPID=2147483647\n", &m), 0);
        assert_int_equal(m.type, TEMPLATE_SPAWNED);
        assert_int_equal(m.slot, 4095);
        assert_true(m.generation == UINT64_MAX);
        assert_int_equal(m.pid, 2147483647);

        assert_int_equal(parse("SPAWNED\nPID=2\nGENERATION=1\nSLOT=0\n", &m), 0);
        assert_int_equal(m.slot, 0);
        assert_true(m.generation == 1);
        assert_int_equal(m.pid, 2);

        assert_int_equal(parse("SPAWN_FAILED\nSLOT=3\nGENERATION=7\nERRNO=11\nMESSAGE=fork: Resource temporarily unavailable\n", &m), 0);
        assert_int_equal(m.type, TEMPLATE_SPAWN_FAILED);
        assert_int_equal(m.slot, 3);
        assert_true(m.generation == 7);
        assert_int_equal(m.error, EAGAIN);
        assert_int_equal(m.pid, 0);
        assert_string_equal(m.message, "fork: Resource temporarily unavailable");

        assert_int_equal(parse("SPAWN_FAILED\nSLOT=3\nGENERATION=7\nERRNO=4095\n", &m), 0);
        assert_int_equal(m.error, 4095);
        assert_string_equal(m.message, "");
        assert_int_equal(parse("SPAWN_FAILED\nSLOT=3\nGENERATION=7\nERRNO=1\nMESSAGE=\n", &m), 0);
        assert_int_equal(m.error, 1);
}

/* Unknown keys are ignored, however often they repeat; so are keys of another type. */
static void test_parse_unknown_keys(void **state) {
        (void) state;
        struct template_message m;

        assert_int_equal(parse("READY\nPROTOCOL=1\nX_FUTURE=1\nX_FUTURE=2\nLABEL=\nSLOT=not a number\nENV=A\nENV=B\n", &m), 0);
        assert_int_equal(m.slot, 0);
        assert_int_equal(parse("SPAWNED\nSLOT=1\nGENERATION=2\nPID=3\nERRNO=x\nRUNTIME=a\nRUNTIME=b\nCGROUP=9\n", &m), 0);
        assert_int_equal(m.pid, 3);
        assert_string_equal(m.runtime, "");
}

static void test_parse_unknown_type(void **state) {
        (void) state;
        REFUSED("", -EBADMSG, "unknown_type");
        REFUSED("\n", -EBADMSG, "unknown_type");
        REFUSED("HELLO\nPROTOCOL=1\n", -EBADMSG, "unknown_type");
        REFUSED("ready\nPROTOCOL=1\n", -EBADMSG, "unknown_type");
        REFUSED("READY \nPROTOCOL=1\n", -EBADMSG, "unknown_type");
        REFUSED("READY\r\nPROTOCOL=1\r\n", -EBADMSG, "unknown_type");
        REFUSED("READY=1\n", -EBADMSG, "unknown_type");
        REFUSED("PROTOCOL=1\nREADY\n", -EBADMSG, "unknown_type");
        /* SPAWN is memward's own: no template sends it. */
        REFUSED("SPAWN\nSLOT=1\nGENERATION=1\nCGROUP=0\n", -EBADMSG, "unknown_type");
}

static void test_parse_line_without_equals(void **state) {
        (void) state;
        REFUSED("READY\nPROTOCOL\n", -EBADMSG, "no_equals");
        REFUSED("READY\nPROTOCOL=1\ngarbage", -EBADMSG, "no_equals");
        /* An empty line is a line without '='. */
        REFUSED("READY\n\nPROTOCOL=1\n", -EBADMSG, "no_equals");
        REFUSED("READY\nPROTOCOL=1\n\n", -EBADMSG, "no_equals");
}

static void test_parse_bad_key(void **state) {
        (void) state;
        REFUSED("READY\nPROTOCOL=1\n=1\n", -EBADMSG, "bad_key");
        REFUSED("READY\nprotocol=1\n", -EBADMSG, "bad_key");
        REFUSED("READY\nPROTOCOL=1\nX-FUTURE=1\n", -EBADMSG, "bad_key");
        REFUSED("READY\nPROTOCOL =1\n", -EBADMSG, "bad_key");
        REFUSED("READY\n PROTOCOL=1\n", -EBADMSG, "bad_key");
        REFUSED("SPAWNED\nSLOT=1\nGENERATION=1\nPID=2\n\xc3\xa9=1\n", -EBADMSG, "bad_key");
}

static void test_parse_repeated_key(void **state) {
        (void) state;
        REFUSED("READY\nPROTOCOL=1\nPROTOCOL=1\n", -EBADMSG, "repeated_key");
        REFUSED("READY\nPROTOCOL=1\nRUNTIME=a\nRUNTIME=a\n", -EBADMSG, "repeated_key");
        REFUSED("SPAWNED\nSLOT=1\nSLOT=1\nGENERATION=1\nPID=2\n", -EBADMSG, "repeated_key");
        REFUSED("SPAWNED\nSLOT=1\nGENERATION=1\nPID=2\nGENERATION=1\n", -EBADMSG, "repeated_key");
        REFUSED("SPAWNED\nSLOT=1\nGENERATION=1\nPID=2\nPID=3\n", -EBADMSG, "repeated_key");
        REFUSED("SPAWN_FAILED\nSLOT=1\nGENERATION=1\nERRNO=2\nERRNO=2\n", -EBADMSG, "repeated_key");
        REFUSED("SPAWN_FAILED\nSLOT=1\nGENERATION=1\nERRNO=2\nMESSAGE=a\nMESSAGE=b\n", -EBADMSG, "repeated_key");
}

static void test_parse_nul_byte(void **state) {
        (void) state;
        static const char a[] = "READY\nPROTOCOL=1\0\n";
        static const char b[] = "\0READY\nPROTOCOL=1\n";
        static const char c[] = "SPAWN_FAILED\nSLOT=1\nGENERATION=1\nERRNO=2\nMESSAGE=a\0b\n";
        static const char d[] = "READY\nPROTOCOL=2\nX=\0\n"; /* the framing comes before the version */
        assert_refused(a, sizeof a - 1, -EBADMSG, "nul_byte");
        assert_refused(b, sizeof b - 1, -EBADMSG, "nul_byte");
        assert_refused(c, sizeof c - 1, -EBADMSG, "nul_byte");
        assert_refused(d, sizeof d - 1, -EBADMSG, "nul_byte");
}

static void test_parse_missing_key(void **state) {
        (void) state;
        REFUSED("READY", -EBADMSG, "missing_key");
        REFUSED("READY\n", -EBADMSG, "missing_key");
        REFUSED("READY\nRUNTIME=x\n", -EBADMSG, "missing_key");
        REFUSED("SPAWNED\nGENERATION=1\nPID=2\n", -EBADMSG, "missing_key");
        REFUSED("SPAWNED\nSLOT=1\nPID=2\n", -EBADMSG, "missing_key");
        REFUSED("SPAWNED\nSLOT=1\nGENERATION=1\n", -EBADMSG, "missing_key");
        REFUSED("SPAWN_FAILED\nSLOT=1\nGENERATION=1\nMESSAGE=no errno\n", -EBADMSG, "missing_key");
        /* A key of another type does not stand in for this one's. */
        REFUSED("SPAWNED\nSLOT=1\nGENERATION=1\nERRNO=2\n", -EBADMSG, "missing_key");
}

static void test_parse_out_of_range(void **state) {
        (void) state;
        static const char *const bad[] = {
                "SPAWNED\nSLOT=4096\nGENERATION=1\nPID=2\n",
                "SPAWNED\nSLOT=-1\nGENERATION=1\nPID=2\n",
                "SPAWNED\nSLOT=\nGENERATION=1\nPID=2\n",
                "SPAWNED\nSLOT= 1\nGENERATION=1\nPID=2\n",
                "SPAWNED\nSLOT=1 \nGENERATION=1\nPID=2\n",
                "SPAWNED\nSLOT=+1\nGENERATION=1\nPID=2\n",
                "SPAWNED\nSLOT=0x1\nGENERATION=1\nPID=2\n",
                "SPAWNED\nSLOT=99999999999999999999999\nGENERATION=1\nPID=2\n",
                "SPAWNED\nSLOT=1\nGENERATION=0\nPID=2\n",
                "SPAWNED\nSLOT=1\nGENERATION=18446744073709551616\nPID=2\n",
                "SPAWNED\nSLOT=1\nGENERATION=1\nPID=1\n",
                "SPAWNED\nSLOT=1\nGENERATION=1\nPID=0\n",
                "SPAWNED\nSLOT=1\nGENERATION=1\nPID=-5\n",
                "SPAWNED\nSLOT=1\nGENERATION=1\nPID=2147483648\n",
                "SPAWNED\nSLOT=1\nGENERATION=1\nPID=4294967298\n",
                "SPAWNED\nSLOT=1\nGENERATION=1\nPID=12\r\n",
                "SPAWN_FAILED\nSLOT=1\nGENERATION=1\nERRNO=0\n",
                "SPAWN_FAILED\nSLOT=1\nGENERATION=1\nERRNO=4096\n",
                "SPAWN_FAILED\nSLOT=1\nGENERATION=1\nERRNO=-11\n",
                "SPAWN_FAILED\nSLOT=1\nGENERATION=1\nERRNO=EAGAIN\n",
                "READY\nPROTOCOL=\n",
                "READY\nPROTOCOL=one\n",
                "READY\nPROTOCOL=1.0\n",
                "READY\nPROTOCOL= 1\n",
                "READY\nPROTOCOL=-1\n",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                REFUSED(bad[i], -EBADMSG, "bad_value");
}

/* Another version gets its own errno, whatever the rest of its READY looks like. */
static void test_parse_other_protocol(void **state) {
        (void) state;
        REFUSED("READY\nPROTOCOL=2\n", -EPROTONOSUPPORT, "unsupported_protocol");
        REFUSED("READY\nPROTOCOL=0\n", -EPROTONOSUPPORT, "unsupported_protocol");
        REFUSED("READY\nPROTOCOL=99999999999999999999999\n", -EPROTONOSUPPORT, "unsupported_protocol");
        REFUSED("READY\nsome v2 line\nPROTOCOL=2\nPROTOCOL=2\n", -EPROTONOSUPPORT, "unsupported_protocol");
        /* Only the first PROTOCOL line speaks for the version. */
        REFUSED("READY\nPROTOCOL=1\nPROTOCOL=2\n", -EBADMSG, "repeated_key");
        /* Version 1's types only say PROTOCOL in READY. */
        struct template_message m;
        assert_int_equal(parse("SPAWNED\nSLOT=1\nGENERATION=1\nPID=2\nPROTOCOL=2\n", &m), 0);
}

static void test_parse_size_limit(void **state) {
        (void) state;
        struct template_message m;
        size_t size = TEMPLATE_MESSAGE_MAX + 1;
        _cleanup_free_ char *buf = malloc(size);
        assert_non_null(buf);

        /* READY, PROTOCOL, then one unknown key's value fills it up to exactly the limit. */
        const char *head = "READY\nPROTOCOL=1\nX=";
        memset(buf, 'x', size);
        memcpy(buf, head, strlen(head));
        buf[TEMPLATE_MESSAGE_MAX - 1] = '\n';
        assert_int_equal(template_message_parse(buf, TEMPLATE_MESSAGE_MAX, &m, NULL), 0);
        buf[TEMPLATE_MESSAGE_MAX] = '\n';
        assert_refused(buf, TEMPLATE_MESSAGE_MAX + 1, -EMSGSIZE, "oversized");
}

/* Walks s as UTF-8; fails on the first byte that does not start a valid character. */
static void assert_utf8(const char *s) {
        for (size_t i = 0, n = strlen(s); i < n;) {
                size_t len = utf8_decode((const unsigned char *) s + i, NULL);
                if (len == 0)
                        fail_msg("cut to invalid UTF-8 at byte %zu of %zu", i, n);
                i += len;
        }
}

/* RUNTIME and MESSAGE are cut to their arrays, a character that does not fit going whole. */
static void test_parse_long_text_cut_between_characters(void **state) {
        (void) state;
        struct template_message m;
        char buf[1024];

        for (size_t lead = TEMPLATE_RUNTIME_MAX - 5; lead < TEMPLATE_RUNTIME_MAX; lead++) {
                char xs[TEMPLATE_RUNTIME_MAX];
                memset(xs, 'x', lead);
                int n = snprintf(buf, sizeof buf, "READY\nPROTOCOL=1\nRUNTIME=%.*s\xf0\x9f\x98\x80 \xc3\xa9\n",
                                 (int) lead, xs);
                assert_int_equal(template_message_parse(buf, (size_t) n, &m, NULL), 0);
                assert_utf8(m.runtime);
                /* Nothing dropped but the character that did not fit. */
                assert_int_equal(strlen(m.runtime), lead + 4 <= TEMPLATE_RUNTIME_MAX - 1 ? lead + 4 : lead);
        }

        int n = snprintf(buf, sizeof buf, "SPAWN_FAILED\nSLOT=1\nGENERATION=1\nERRNO=1\nMESSAGE=");
        for (int i = 0; i < 150; i++)
                n += snprintf(buf + n, sizeof buf - (size_t) n, "\xc3\xa9");
        assert_int_equal(template_message_parse(buf, (size_t) n, &m, NULL), 0);
        assert_utf8(m.message);
        assert_int_equal(strlen(m.message), TEMPLATE_TEXT_MAX - 2); /* 127 whole é */
}

/* The fault's text quotes the sender's bytes cut between characters, and says where. */
static void test_parse_error_text(void **state) {
        (void) state;
        struct template_message m;
        struct template_parse_error e;
        char buf[512];

        const char *s = "SPAWNED\nSLOT=1\nGENERATION=1\nSLOT=2\n";
        assert_int_equal(template_message_parse(s, strlen(s), &m, &e), -EBADMSG);
        assert_string_equal(e.text, "line 4: SLOT repeated");
        s = "SPAWNED\nSLOT=5000\nGENERATION=1\nPID=2\n";
        assert_int_equal(template_message_parse(s, strlen(s), &m, &e), -EBADMSG);
        assert_string_equal(e.text, "line 2: SLOT=5000 out of range");
        s = "READY\nPROTOCOL=2\n";
        assert_int_equal(template_message_parse(s, strlen(s), &m, &e), -EPROTONOSUPPORT);
        assert_string_equal(e.text, "PROTOCOL=2, memward speaks 1");
        s = "SPAWNED\nSLOT=1\nGENERATION=1\n";
        assert_int_equal(template_message_parse(s, strlen(s), &m, &e), -EBADMSG);
        assert_string_equal(e.text, "SPAWNED without PID");

        /* A long unknown type made of 2-byte characters: the quote stops at a whole one. */
        int n = 0;
        for (int i = 0; i < 100; i++)
                n += snprintf(buf + n, sizeof buf - (size_t) n, "\xc3\xa9");
        assert_int_equal(template_message_parse(buf, (size_t) n, &m, &e), -EBADMSG);
        assert_string_equal(e.what, "unknown_type");
        assert_utf8(e.text);
}

static void test_spawn_parse(void **state) {
        (void) state;
        struct template_spawn sp;
        struct template_parse_error e;

        const char *s = "SPAWN\nSLOT=2\nGENERATION=9\nCGROUP=1\nENV=NOTIFY_SOCKET=@memward/1/ab\nENV=EMPTY=\n"
                        "ENV=A=b=c\nX_LATER=1\n";
        assert_int_equal(template_spawn_parse(s, strlen(s), &sp, &e), 0);
        assert_int_equal(sp.slot, 2);
        assert_true(sp.generation == 9);
        assert_true(sp.cgroup);
        assert_int_equal(sp.n_env, 3);
        assert_int_equal(sp.env[0].length, strlen("NOTIFY_SOCKET=@memward/1/ab"));
        assert_memory_equal(sp.env[0].entry, "NOTIFY_SOCKET=@memward/1/ab", sp.env[0].length);
        assert_memory_equal(sp.env[1].entry, "EMPTY=", sp.env[1].length);
        assert_memory_equal(sp.env[2].entry, "A=b=c", sp.env[2].length);
        assert_true(sp.env[0].entry >= s && sp.env[2].entry + sp.env[2].length <= s + strlen(s));

        s = "SPAWN\nSLOT=0\nGENERATION=1\nCGROUP=0";
        assert_int_equal(template_spawn_parse(s, strlen(s), &sp, NULL), 0);
        assert_false(sp.cgroup);
        assert_int_equal(sp.n_env, 0);

        static const struct {
                const char *s;
                int r;
                const char *what;
        } bad[] = {
                { "READY\nPROTOCOL=1\n", -EBADMSG, "unknown_type" },
                { "SPAWNED\nSLOT=1\nGENERATION=1\nPID=2\n", -EBADMSG, "unknown_type" },
                { "SPAWN\nSLOT=1\nGENERATION=1\n", -EBADMSG, "missing_key" },
                { "SPAWN\nSLOT=1\nCGROUP=1\n", -EBADMSG, "missing_key" },
                { "SPAWN\nSLOT=1\nGENERATION=1\nCGROUP=2\n", -EBADMSG, "bad_value" },
                { "SPAWN\nSLOT=1\nGENERATION=1\nCGROUP=\n", -EBADMSG, "bad_value" },
                { "SPAWN\nSLOT=1\nGENERATION=1\nCGROUP=01\n", -EBADMSG, "bad_value" },
                { "SPAWN\nSLOT=1\nGENERATION=1\nCGROUP=1\nENV=NOVALUE\n", -EBADMSG, "bad_value" },
                { "SPAWN\nSLOT=1\nGENERATION=1\nCGROUP=1\nENV==x\n", -EBADMSG, "bad_value" },
                { "SPAWN\nSLOT=1\nGENERATION=1\nCGROUP=1\nENV=\n", -EBADMSG, "bad_value" },
                { "SPAWN\nSLOT=1\nGENERATION=1\nCGROUP=1\nCGROUP=1\n", -EBADMSG, "repeated_key" },
                { "SPAWN\nSLOT=4096\nGENERATION=1\nCGROUP=1\n", -EBADMSG, "bad_value" },
                { "SPAWN\nSLOT=1\nGENERATION=1\nCGROUP=1\nenv=A=b\n", -EBADMSG, "bad_key" },
                { "SPAWN\nSLOT=1\nGENERATION=1\nCGROUP=1\nENV A=b\n", -EBADMSG, "bad_key" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                memset(&sp, 0xA5, sizeof sp);
                int r = template_spawn_parse(bad[i].s, strlen(bad[i].s), &sp, &e);
                if (r != bad[i].r || strcmp(e.what, bad[i].what) != 0)
                        fail_msg("\"%s\": got %d (%s), expected %d (%s)", bad[i].s, r, e.what, bad[i].r, bad[i].what);
                assert_int_equal(sp.slot, 0xA5A5A5A5); /* untouched */
        }
}

static void test_spawn_parse_env_limit(void **state) {
        (void) state;
        struct template_spawn sp;
        struct template_parse_error e;
        char buf[4096];
        int n = snprintf(buf, sizeof buf, "SPAWN\nSLOT=1\nGENERATION=1\nCGROUP=0\n");

        for (unsigned i = 0; i < TEMPLATE_SPAWN_ENV_MAX; i++)
                n += snprintf(buf + n, sizeof buf - (size_t) n, "ENV=V%u=%u\n", i, i);
        assert_int_equal(template_spawn_parse(buf, (size_t) n, &sp, &e), 0);
        assert_int_equal(sp.n_env, TEMPLATE_SPAWN_ENV_MAX);
        assert_memory_equal(sp.env[63].entry, "V63=63", 6);
        n += snprintf(buf + n, sizeof buf - (size_t) n, "ENV=ONE_MORE=1\n");
        assert_int_equal(template_spawn_parse(buf, (size_t) n, &sp, &e), -E2BIG);
        assert_string_equal(e.what, "too_many_env");
}

static void test_spawn_format(void **state) {
        (void) state;
        char buf[256];
        size_t n = 0;
        char *env[] = { (char *) "NOTIFY_SOCKET=@memward/42/00ff", (char *) "MEMWARD_WORKER_ID=3",
                        (char *) "MEMWARD_WORKER_GENERATION=12", (char *) "EMPTY=", NULL };
        const char *want = "SPAWN\nSLOT=3\nGENERATION=12\nCGROUP=1\nENV=NOTIFY_SOCKET=@memward/42/00ff\n"
                           "ENV=MEMWARD_WORKER_ID=3\nENV=MEMWARD_WORKER_GENERATION=12\nENV=EMPTY=\n";

        assert_int_equal(template_spawn_format(3, 12, TEMPLATE_PLACEMENT_TEMPLATE, env, buf, sizeof buf, &n), 0);
        assert_int_equal(n, strlen(want));
        assert_memory_equal(buf, want, n);

        /* Round trip. */
        struct template_spawn sp;
        assert_int_equal(template_spawn_parse(buf, n, &sp, NULL), 0);
        assert_int_equal(sp.slot, 3);
        assert_true(sp.generation == 12);
        assert_true(sp.cgroup);
        assert_int_equal(sp.n_env, 4);
        for (size_t i = 0; i < 4; i++) {
                assert_int_equal(sp.env[i].length, strlen(env[i]));
                assert_memory_equal(sp.env[i].entry, env[i], sp.env[i].length);
        }

        /* No env, no cgroup; an exact fit; one byte short leaves buf and n alone. */
        assert_int_equal(template_spawn_format(0, 1, TEMPLATE_PLACEMENT_NONE, NULL, buf, sizeof buf, &n), 0);
        assert_int_equal(n, strlen("SPAWN\nSLOT=0\nGENERATION=1\nCGROUP=0\n"));
        assert_memory_equal(buf, "SPAWN\nSLOT=0\nGENERATION=1\nCGROUP=0\n", n);
        size_t exact = strlen(want);
        memset(buf, '#', sizeof buf);
        assert_int_equal(template_spawn_format(3, 12, TEMPLATE_PLACEMENT_TEMPLATE, env, buf, exact, &n), 0);
        assert_int_equal(n, exact);
        assert_int_equal(buf[exact], '#');
        memset(buf, '#', sizeof buf);
        n = 777;
        assert_int_equal(template_spawn_format(3, 12, TEMPLATE_PLACEMENT_TEMPLATE, env, buf, exact - 1, &n), -ENOBUFS);
        assert_int_equal(n, 777);
        assert_int_equal(buf[0], '#');
        assert_int_equal(template_spawn_format(3, 12, TEMPLATE_PLACEMENT_TEMPLATE, env, NULL, 0, &n), -ENOBUFS);
}

static void test_spawn_format_refused(void **state) {
        (void) state;
        char buf[256];
        size_t n = 777;
        char *newline[] = { (char *) "A=b\nSLOT=7", NULL };
        char *no_equals[] = { (char *) "A=b", (char *) "NOVALUE", NULL };
        char *no_name[] = { (char *) "=x", NULL };
        char *empty[] = { (char *) "", NULL };

        assert_int_equal(template_spawn_format(1, 1, TEMPLATE_PLACEMENT_NONE, newline, buf, sizeof buf, &n), -EINVAL);
        assert_int_equal(template_spawn_format(1, 1, TEMPLATE_PLACEMENT_NONE, no_equals, buf, sizeof buf, &n), -EINVAL);
        assert_int_equal(template_spawn_format(1, 1, TEMPLATE_PLACEMENT_NONE, no_name, buf, sizeof buf, &n), -EINVAL);
        assert_int_equal(template_spawn_format(1, 1, TEMPLATE_PLACEMENT_NONE, empty, buf, sizeof buf, &n), -EINVAL);
        assert_int_equal(template_spawn_format(TEMPLATE_SLOT_MAX + 1, 1, TEMPLATE_PLACEMENT_NONE, NULL, buf, sizeof buf, &n), -EINVAL);
        assert_int_equal(template_spawn_format(1, 0, TEMPLATE_PLACEMENT_NONE, NULL, buf, sizeof buf, &n), -EINVAL);
        assert_int_equal(n, 777);

        char *many[TEMPLATE_SPAWN_ENV_MAX + 2];
        for (size_t i = 0; i <= TEMPLATE_SPAWN_ENV_MAX; i++)
                many[i] = (char *) "A=1";
        many[TEMPLATE_SPAWN_ENV_MAX + 1] = NULL;
        assert_int_equal(template_spawn_format(1, 1, TEMPLATE_PLACEMENT_NONE, many, buf, sizeof buf, &n), -E2BIG);

        /* Longer than any peer accepts, even into a buffer that would hold it. */
        size_t big = TEMPLATE_MESSAGE_MAX + 100;
        _cleanup_free_ char *value = malloc(big + 1);
        _cleanup_free_ char *out = malloc(big * 2);
        assert_non_null(value);
        assert_non_null(out);
        memset(value, 'v', big);
        value[0] = 'A';
        value[1] = '=';
        value[big] = '\0';
        char *huge[] = { value, NULL };
        assert_int_equal(template_spawn_format(1, 1, TEMPLATE_PLACEMENT_NONE, huge, out, big * 2, &n), -EMSGSIZE);
        assert_int_equal(n, 777);
}

static void round_trip(const struct template_message *m) {
        char buf[1024];
        size_t n;
        struct template_message back;

        assert_int_equal(template_message_format(m, buf, sizeof buf, &n), 0);
        assert_int_equal(template_message_parse(buf, n, &back, NULL), 0);
        assert_memory_equal(&back, m, sizeof back);
}

/* Placement by memward (§3): READY's PLACE=1, SPAWN's PLACE=1, PLACE and PLACED. */
static void test_place_messages(void **state) {
        (void) state;
        struct template_message m;
        struct template_spawn sp;
        struct template_placed pl;
        struct template_parse_error e;
        char buf[256];
        size_t n = 0;

        assert_int_equal(parse("READY\nPROTOCOL=1\nPLACE=1\n", &m), 0);
        assert_true(m.place);
        assert_int_equal(parse("READY\nPROTOCOL=1\nPLACE=0\n", &m), 0);
        assert_false(m.place);
        assert_int_equal(parse("READY\nPROTOCOL=1\n", &m), 0);
        assert_false(m.place);
        REFUSED("READY\nPROTOCOL=1\nPLACE=2\n", -EBADMSG, "bad_value");
        REFUSED("READY\nPROTOCOL=1\nPLACE=yes\n", -EBADMSG, "bad_value");
        REFUSED("READY\nPROTOCOL=1\nPLACE=1\nPLACE=1\n", -EBADMSG, "repeated_key");

        assert_int_equal(parse("PLACE\nSLOT=3\nGENERATION=7\nPID=4100\n", &m), 0);
        assert_int_equal(m.type, TEMPLATE_PLACE);
        assert_int_equal(m.slot, 3);
        assert_true(m.generation == 7);
        assert_int_equal(m.pid, 4100);
        assert_false(m.place);
        assert_string_equal(template_message_type_to_string(TEMPLATE_PLACE), "PLACE");
        REFUSED("PLACE\nSLOT=3\nGENERATION=7\n", -EBADMSG, "missing_key");
        REFUSED("PLACE\nSLOT=3\nGENERATION=7\nPID=1\n", -EBADMSG, "bad_value");
        /* PLACED is memward's: an unknown type from a template. */
        REFUSED("PLACED\nSLOT=3\nGENERATION=7\n", -EBADMSG, "unknown_type");

        const char *s = "SPAWN\nSLOT=2\nGENERATION=9\nCGROUP=0\nPLACE=1\nENV=A=b\n";
        assert_int_equal(template_spawn_parse(s, strlen(s), &sp, NULL), 0);
        assert_false(sp.cgroup);
        assert_true(sp.place);
        assert_int_equal(sp.n_env, 1);
        s = "SPAWN\nSLOT=2\nGENERATION=9\nCGROUP=1\nPLACE=1\n";
        memset(&sp, 0xA5, sizeof sp);
        assert_int_equal(template_spawn_parse(s, strlen(s), &sp, &e), -EBADMSG);
        assert_string_equal(e.what, "conflicting_keys");
        assert_int_equal(sp.slot, 0xA5A5A5A5);
        s = "SPAWN\nSLOT=2\nGENERATION=9\nCGROUP=1\nPLACE=0\n";
        assert_int_equal(template_spawn_parse(s, strlen(s), &sp, NULL), 0);
        assert_true(sp.cgroup);
        assert_false(sp.place);
        /* A PLACED is not a SPAWN, and a SPAWN not a PLACED. */
        s = "PLACED\nSLOT=2\nGENERATION=9\n";
        assert_int_equal(template_spawn_parse(s, strlen(s), &sp, &e), -EBADMSG);
        assert_string_equal(e.what, "unknown_type");
        s = "SPAWN\nSLOT=2\nGENERATION=9\nCGROUP=0\n";
        assert_int_equal(template_placed_parse(s, strlen(s), &pl, &e), -EBADMSG);
        assert_string_equal(e.what, "unknown_type");

        s = "PLACED\nSLOT=2\nGENERATION=9\n";
        assert_int_equal(template_placed_parse(s, strlen(s), &pl, NULL), 0);
        assert_int_equal(pl.slot, 2);
        assert_true(pl.generation == 9);
        assert_int_equal(pl.error, 0);
        s = "PLACED\nSLOT=2\nGENERATION=9\nERRNO=3\nLATER=x\n";
        assert_int_equal(template_placed_parse(s, strlen(s), &pl, NULL), 0);
        assert_int_equal(pl.error, ESRCH);
        s = "PLACED\nSLOT=2\nGENERATION=9\nERRNO=0\n";
        assert_int_equal(template_placed_parse(s, strlen(s), &pl, &e), -EBADMSG);
        assert_string_equal(e.what, "bad_value");
        s = "PLACED\nSLOT=2\n";
        assert_int_equal(template_placed_parse(s, strlen(s), &pl, &e), -EBADMSG);
        assert_string_equal(e.what, "missing_key");

        /* The formatters, and their round trips. */
        char *env[] = { (char *) "A=b", NULL };
        assert_int_equal(template_spawn_format(2, 9, TEMPLATE_PLACEMENT_MEMWARD, env, buf, sizeof buf, &n), 0);
        assert_memory_equal(buf, "SPAWN\nSLOT=2\nGENERATION=9\nCGROUP=0\nPLACE=1\nENV=A=b\n", n);
        assert_int_equal(template_spawn_parse(buf, n, &sp, NULL), 0);
        assert_true(sp.place && !sp.cgroup);
        assert_int_equal(template_spawn_format(2, 9, (enum template_placement) 3, env, buf, sizeof buf, &n), -EINVAL);

        pl = (struct template_placed) { .slot = 4095, .generation = UINT64_MAX };
        assert_int_equal(template_placed_format(&pl, buf, sizeof buf, &n), 0);
        assert_memory_equal(buf, "PLACED\nSLOT=4095\nGENERATION=18446744073709551615\n", n);
        pl.error = EACCES;
        assert_int_equal(template_placed_format(&pl, buf, sizeof buf, &n), 0);
        assert_memory_equal(buf, "PLACED\nSLOT=4095\nGENERATION=18446744073709551615\nERRNO=13\n", n);
        struct template_placed back;
        assert_int_equal(template_placed_parse(buf, n, &back, NULL), 0);
        assert_memory_equal(&back, &pl, sizeof pl);
        size_t exact = n;
        n = 777;
        assert_int_equal(template_placed_format(&pl, buf, exact - 1, &n), -ENOBUFS);
        assert_int_equal(n, 777);
        struct template_placed bad_placed[] = {
                { .slot = 4096, .generation = 1 },
                { .slot = 1, .generation = 0 },
                { .slot = 1, .generation = 1, .error = -1 },
                { .slot = 1, .generation = 1, .error = 4096 },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad_placed); i++)
                assert_int_equal(template_placed_format(&bad_placed[i], buf, sizeof buf, &n), -EINVAL);

        m = (struct template_message) { .type = TEMPLATE_READY, .place = true };
        assert_int_equal(template_message_format(&m, buf, sizeof buf, &n), 0);
        assert_memory_equal(buf, "READY\nPROTOCOL=1\nPLACE=1\n", n);
        round_trip(&m);
        m = (struct template_message) { .type = TEMPLATE_PLACE, .slot = 3, .generation = 7, .pid = 4100 };
        assert_int_equal(template_message_format(&m, buf, sizeof buf, &n), 0);
        assert_memory_equal(buf, "PLACE\nSLOT=3\nGENERATION=7\nPID=4100\n", n);
        round_trip(&m);
        m.pid = 1;
        assert_int_equal(template_message_format(&m, buf, sizeof buf, &n), -EINVAL);
}

static void test_message_format(void **state) {
        (void) state;
        struct template_message m = { .type = TEMPLATE_READY };
        char buf[256];
        size_t n = 0;

        assert_int_equal(template_message_format(&m, buf, sizeof buf, &n), 0);
        assert_memory_equal(buf, "READY\nPROTOCOL=1\n", n);
        round_trip(&m);
        strcpy(m.runtime, "c/11 \xc3\xa9");
        round_trip(&m);

        m = (struct template_message) { .type = TEMPLATE_SPAWNED, .slot = 7, .generation = 3, .pid = 4242 };
        assert_int_equal(template_message_format(&m, buf, sizeof buf, &n), 0);
        assert_memory_equal(buf, "SPAWNED\nSLOT=7\nGENERATION=3\nPID=4242\n", n);
        round_trip(&m);

        m = (struct template_message) { .type = TEMPLATE_SPAWN_FAILED, .slot = 4095, .generation = UINT64_MAX, .error = EPERM };
        strcpy(m.message, "cgroup.procs: Operation not permitted");
        assert_int_equal(template_message_format(&m, buf, sizeof buf, &n), 0);
        assert_memory_equal(buf, "SPAWN_FAILED\nSLOT=4095\nGENERATION=18446744073709551615\nERRNO=1\n"
                                 "MESSAGE=cgroup.procs: Operation not permitted\n", n);
        round_trip(&m);

        /* Refused: what the parser would refuse, and text that would break the framing. */
        n = 777;
        struct template_message bad[] = {
                { .type = TEMPLATE_SPAWNED, .slot = 4096, .generation = 1, .pid = 2 },
                { .type = TEMPLATE_SPAWNED, .slot = 1, .generation = 0, .pid = 2 },
                { .type = TEMPLATE_SPAWNED, .slot = 1, .generation = 1, .pid = 1 },
                { .type = TEMPLATE_SPAWN_FAILED, .slot = 1, .generation = 1, .error = 0 },
                { .type = TEMPLATE_SPAWN_FAILED, .slot = 1, .generation = 1, .error = 4096 },
                { .type = TEMPLATE_SPAWN_FAILED, .slot = 1, .generation = 1, .error = 1, .message = "a\nSLOT=2" },
                { .type = TEMPLATE_READY, .runtime = "a\nPROTOCOL=2" },
                { .type = _TEMPLATE_MESSAGE_TYPE_MAX },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_int_equal(template_message_format(&bad[i], buf, sizeof buf, &n), -EINVAL);
        m = (struct template_message) { .type = TEMPLATE_READY };
        memset(m.runtime, 'x', sizeof m.runtime); /* not NUL-terminated */
        assert_int_equal(template_message_format(&m, buf, sizeof buf, &n), -EINVAL);
        m = (struct template_message) { .type = TEMPLATE_SPAWNED, .slot = 7, .generation = 3, .pid = 4242 };
        assert_int_equal(template_message_format(&m, buf, 10, &n), -ENOBUFS);
        assert_int_equal(n, 777);
}

/* ---- the socket ---------------------------------------------------------------------- */

static int count_open_fds(void) {
        int n = 0;
        for (int i = 0; i < 1024; i++)
                if (fcntl(i, F_GETFD) >= 0)
                        n++;
        return n;
}

static struct template_packet *packet_new(void) {
        struct template_packet *p = malloc(sizeof *p);
        assert_non_null(p);
        memset(p, 0xA5, sizeof *p);
        return p;
}

static void test_channel_open(void **state) {
        (void) state;
        int fds[2] = { -7, -7 }, type = 0, passcred = 0;
        socklen_t len = sizeof type;

        assert_int_equal(template_channel_open(fds), 0);
        _cleanup_close_ int ours = fds[0], theirs = fds[1];
        assert_int_equal(getsockopt(ours, SOL_SOCKET, SO_TYPE, &type, &len), 0);
        assert_int_equal(type, SOCK_SEQPACKET);
        assert_true(fcntl(ours, F_GETFD) & FD_CLOEXEC);
        assert_true(fcntl(theirs, F_GETFD) & FD_CLOEXEC);
        assert_true(fcntl(ours, F_GETFL) & O_NONBLOCK);
        assert_false(fcntl(theirs, F_GETFL) & O_NONBLOCK);
        len = sizeof passcred;
        assert_int_equal(getsockopt(ours, SOL_SOCKET, SO_PASSCRED, &passcred, &len), 0);
        assert_true(passcred);

        _cleanup_free_ struct template_packet *p = packet_new();
        assert_int_equal(template_channel_receive(ours, p), -EAGAIN);
}

/* memward sends a SPAWN with a leaf's directory fd; the template, reading as a C template
 * would with recvmsg, gets the text and the very same directory. */
static void test_channel_spawn_with_fd(void **state) {
        (void) state;
        int fds[2];
        char buf[512];
        size_t n;
        char *env[] = { (char *) "MEMWARD_WORKER_ID=5", NULL };

        assert_int_equal(template_channel_open(fds), 0);
        _cleanup_close_ int ours = fds[0], theirs = fds[1];
        _cleanup_close_ int leaf = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(leaf >= 0);

        assert_int_equal(template_spawn_format(5, 2, TEMPLATE_PLACEMENT_TEMPLATE, env, buf, sizeof buf, &n), 0);
        assert_int_equal(template_channel_send(ours, buf, n, leaf), 0);
        assert_int_equal(template_spawn_format(6, 1, TEMPLATE_PLACEMENT_NONE, NULL, buf, sizeof buf, &n), 0);
        assert_int_equal(template_channel_send(ours, buf, n, -1), 0);

        for (int round = 0; round < 2; round++) {
                char got[TEMPLATE_MESSAGE_MAX];
                union {
                        struct cmsghdr h;
                        char buf[CMSG_SPACE(sizeof(int) * 4)];
                } control;
                struct iovec iov = { .iov_base = got, .iov_len = sizeof got };
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control,
                                     .msg_controllen = sizeof control };
                ssize_t k = recvmsg(theirs, &mh, MSG_CMSG_CLOEXEC);
                assert_true(k > 0);

                struct template_spawn sp;
                assert_int_equal(template_spawn_parse(got, (size_t) k, &sp, NULL), 0);
                assert_int_equal(sp.slot, round == 0 ? 5 : 6);
                assert_int_equal(sp.cgroup, round == 0);

                int received = -1, n_fds = 0;
                for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                                n_fds += (int) ((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
                                memcpy(&received, CMSG_DATA(c), sizeof received);
                        }
                if (round == 1) {
                        assert_int_equal(n_fds, 0);
                        continue;
                }
                assert_int_equal(n_fds, 1);
                struct stat a, b;
                assert_int_equal(fstat(leaf, &a), 0);
                assert_int_equal(fstat(received, &b), 0);
                assert_true(a.st_dev == b.st_dev && a.st_ino == b.st_ino);
                assert_true(received != leaf);
                close(received);
        }
}

static void test_channel_receive_with_credentials(void **state) {
        (void) state;
        int fds[2];
        struct template_message m = { .type = TEMPLATE_READY, .runtime = "c" };
        char buf[256];
        size_t n;

        assert_int_equal(template_channel_open(fds), 0);
        _cleanup_close_ int ours = fds[0], theirs = fds[1];
        assert_int_equal(template_message_format(&m, buf, sizeof buf, &n), 0);
        assert_true(send(theirs, buf, n, 0) == (ssize_t) n);

        _cleanup_free_ struct template_packet *p = packet_new();
        assert_int_equal(template_channel_receive(ours, p), 0);
        assert_int_equal(p->length, n);
        assert_false(p->truncated);
        assert_int_equal(p->n_fds, 0);
        assert_true(p->has_credentials);
        assert_int_equal(p->pid, getpid());
        assert_int_equal(p->uid, getuid());
        assert_int_equal(p->gid, getgid());
        assert_int_equal(template_message_parse(p->data, p->length, &m, NULL), 0);
        assert_string_equal(m.runtime, "c");
        assert_int_equal(template_channel_receive(ours, p), -EAGAIN);
}

static void test_channel_truncation(void **state) {
        (void) state;
        int fds[2];
        size_t size = TEMPLATE_MESSAGE_MAX + 100;
        _cleanup_free_ char *big = malloc(size);
        assert_non_null(big);
        memset(big, 'x', size);

        assert_int_equal(template_channel_open(fds), 0);
        _cleanup_close_ int ours = fds[0], theirs = fds[1];
        _cleanup_free_ struct template_packet *p = packet_new();

        /* Exactly the limit is a packet; one byte more is an oversized one, refused whole. */
        assert_true(send(theirs, big, TEMPLATE_MESSAGE_MAX, 0) == (ssize_t) TEMPLATE_MESSAGE_MAX);
        assert_true(send(theirs, big, TEMPLATE_MESSAGE_MAX + 1, 0) == (ssize_t) TEMPLATE_MESSAGE_MAX + 1);
        assert_true(send(theirs, "READY\nPROTOCOL=1\n", 17, 0) == 17);
        assert_int_equal(template_channel_receive(ours, p), 0);
        assert_false(p->truncated);
        assert_int_equal(p->length, TEMPLATE_MESSAGE_MAX);
        assert_int_equal(template_channel_receive(ours, p), 0);
        assert_true(p->truncated);
        assert_int_equal(p->length, TEMPLATE_MESSAGE_MAX);
        /* The rest of the oversized packet is gone with it: the next is the next packet. */
        assert_int_equal(template_channel_receive(ours, p), 0);
        assert_false(p->truncated);
        assert_int_equal(p->length, 17);

        /* Our own send refuses what the peer would refuse. */
        assert_int_equal(template_channel_send(ours, big, TEMPLATE_MESSAGE_MAX + 1, -1), -EMSGSIZE);
}

static void send_fds(int fd, const char *text, int devnull, unsigned count) {
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int) * 32)];
        } control = {};
        struct iovec iov = { .iov_base = (char *) text, .iov_len = strlen(text) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control,
                             .msg_controllen = CMSG_SPACE(sizeof(int) * count) };
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

        assert_true(count <= 32);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * count);
        for (unsigned i = 0; i < count; i++)
                memcpy(CMSG_DATA(c) + i * sizeof(int), &devnull, sizeof(int));
        assert_true(sendmsg(fd, &mh, 0) == (ssize_t) strlen(text));
}

/* A template must not send fds: they are closed on arrival and counted, never kept. */
static void test_channel_fds_from_template_closed(void **state) {
        (void) state;
        int fds[2];

        assert_int_equal(template_channel_open(fds), 0);
        _cleanup_close_ int ours = fds[0], theirs = fds[1];
        _cleanup_close_ int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
        _cleanup_free_ struct template_packet *p = packet_new();
        assert_true(devnull >= 0);

        send_fds(theirs, "READY\nPROTOCOL=1\n", devnull, 3);
        send_fds(theirs, "READY\nPROTOCOL=1\n", devnull, 20); /* more than the receive buffer holds */
        int before = count_open_fds();
        assert_int_equal(template_channel_receive(ours, p), 0);
        assert_int_equal(p->n_fds, 3);
        assert_int_equal(count_open_fds(), before);
        assert_int_equal(template_channel_receive(ours, p), 0);
        assert_true(p->n_fds > 16); /* 16 closed by us, the rest dropped by the kernel: one more */
        assert_int_equal(count_open_fds(), before);
        assert_int_equal(p->length, 17);
}

static void test_channel_end_of_stream(void **state) {
        (void) state;
        int fds[2];

        assert_int_equal(template_channel_open(fds), 0);
        _cleanup_close_ int ours = fds[0], theirs = fds[1];
        _cleanup_free_ struct template_packet *p = packet_new();

        /* An empty packet from a live template is a packet (that no parser accepts). */
        assert_true(send(theirs, "", 0, 0) == 0);
        assert_int_equal(template_channel_receive(ours, p), 0);
        assert_int_equal(p->length, 0);
        assert_false(p->truncated);

        /* What was sent before the template went is still read; then the end. */
        assert_true(send(theirs, "READY\nPROTOCOL=1\n", 17, 0) == 17);
        theirs = safe_close(theirs);
        assert_int_equal(template_channel_receive(ours, p), 0);
        assert_int_equal(p->length, 17);
        memset(p, 0xA5, sizeof *p);
        assert_int_equal(template_channel_receive(ours, p), -ECONNRESET);
        assert_int_equal(template_channel_receive(ours, p), -ECONNRESET);
        assert_int_equal(p->length, (size_t) 0xA5A5A5A5A5A5A5A5ULL); /* untouched */

        /* And a send to a template that went: EPIPE, no SIGPIPE. */
        assert_int_equal(template_channel_send(ours, "SPAWN\n", 6, -1), -EPIPE);
}

/* A retired template's answer is read or refused, never lost (supervisor_template_promote):
 * what it queued before the stop is read, a send after it fails, memward still sends. */
static void test_channel_stop_receiving(void **state) {
        (void) state;
        int fds[2];

        assert_int_equal(template_channel_open(fds), 0);
        _cleanup_close_ int ours = fds[0], theirs = fds[1];
        _cleanup_free_ struct template_packet *p = packet_new();

        assert_true(send(theirs, "SPAWNED\n", 8, 0) == 8);
        assert_int_equal(template_channel_stop_receiving(ours), 0);
        errno = 0;
        assert_true(send(theirs, "SPAWNED\n", 8, MSG_NOSIGNAL) < 0);
        assert_int_equal(errno, EPIPE);
        assert_int_equal(template_channel_receive(ours, p), 0);
        assert_int_equal(p->length, 8);
        assert_int_equal(template_channel_receive(ours, p), -ECONNRESET);
        assert_int_equal(template_channel_send(ours, "PLACED\n", 7, -1), 0);
        char buf[16];
        assert_true(recv(theirs, buf, sizeof buf, MSG_DONTWAIT) == 7);
}

/* A template that does not read: memward's end never blocks, and says so. */
static void test_channel_send_would_block(void **state) {
        (void) state;
        int fds[2], r = 0;
        char buf[4096];
        memset(buf, 'x', sizeof buf);

        assert_int_equal(template_channel_open(fds), 0);
        _cleanup_close_ int ours = fds[0], theirs = fds[1];
        for (int i = 0; i < 10000 && r == 0; i++)
                r = template_channel_send(ours, buf, sizeof buf, -1);
        assert_int_equal(r, -EAGAIN);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_ready),
                cmocka_unit_test(test_parse_spawned_and_failed),
                cmocka_unit_test(test_parse_unknown_keys),
                cmocka_unit_test(test_parse_unknown_type),
                cmocka_unit_test(test_parse_line_without_equals),
                cmocka_unit_test(test_parse_bad_key),
                cmocka_unit_test(test_parse_repeated_key),
                cmocka_unit_test(test_parse_nul_byte),
                cmocka_unit_test(test_parse_missing_key),
                cmocka_unit_test(test_parse_out_of_range),
                cmocka_unit_test(test_parse_other_protocol),
                cmocka_unit_test(test_parse_size_limit),
                cmocka_unit_test(test_parse_long_text_cut_between_characters),
                cmocka_unit_test(test_parse_error_text),
                cmocka_unit_test(test_spawn_parse),
                cmocka_unit_test(test_spawn_parse_env_limit),
                cmocka_unit_test(test_spawn_format),
                cmocka_unit_test(test_spawn_format_refused),
                cmocka_unit_test(test_place_messages),
                cmocka_unit_test(test_message_format),
                cmocka_unit_test(test_channel_open),
                cmocka_unit_test(test_channel_spawn_with_fd),
                cmocka_unit_test(test_channel_receive_with_credentials),
                cmocka_unit_test(test_channel_truncation),
                cmocka_unit_test(test_channel_fds_from_template_closed),
                cmocka_unit_test(test_channel_end_of_stream),
                cmocka_unit_test(test_channel_stop_receiving),
                cmocka_unit_test(test_channel_send_would_block),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
