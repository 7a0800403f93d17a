/* Listen addresses: tcp v4/v6/localhost, unix absolute/relative/abstract, every error
 * class, and formatting back to the config form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "memward/base/macro.h"
#include "memward/linux/address.h"

static struct listen_address parse_ok(const char *s) {
        struct listen_address a;
        assert_int_equal(listen_address_parse(s, &a), 0);
        return a;
}

static int parse_err(const char *s) {
        struct listen_address a;
        memset(&a, 0x55, sizeof a);
        int r = listen_address_parse(s, &a);
        assert_true(r < 0);
        assert_true(a.length == 0x55555555U); /* untouched on failure */
        return r;
}

static void assert_round_trip(const char *s, const char *expected) {
        struct listen_address a = parse_ok(s), b;
        char buf[LISTEN_ADDRESS_MAX];

        assert_string_equal(listen_address_to_string(&a, buf, sizeof buf), expected);
        b = parse_ok(buf);
        assert_int_equal(a.length, b.length);
        assert_memory_equal(&a.sockaddr, &b.sockaddr, a.length);
}

static void test_tcp_v4(void **state) {
        (void) state;
        struct listen_address a = parse_ok("tcp://127.0.0.1:8000");
        assert_int_equal(a.sockaddr.sa.sa_family, AF_INET);
        assert_int_equal(a.length, sizeof(struct sockaddr_in));
        assert_int_equal(ntohs(a.sockaddr.in.sin_port), 8000);
        assert_int_equal(ntohl(a.sockaddr.in.sin_addr.s_addr), INADDR_LOOPBACK);

        a = parse_ok("tcp://0.0.0.0:1");
        assert_int_equal(ntohl(a.sockaddr.in.sin_addr.s_addr), INADDR_ANY);
        assert_int_equal(ntohs(a.sockaddr.in.sin_port), 1);

        a = parse_ok("tcp://10.1.2.3:65535");
        assert_int_equal(ntohs(a.sockaddr.in.sin_port), 65535);

        /* The one name we know, without DNS. */
        a = parse_ok("tcp://localhost:8080");
        assert_int_equal(a.sockaddr.sa.sa_family, AF_INET);
        assert_int_equal(ntohl(a.sockaddr.in.sin_addr.s_addr), INADDR_LOOPBACK);
}

static void test_tcp_v6(void **state) {
        (void) state;
        struct in6_addr any = IN6ADDR_ANY_INIT, lo = IN6ADDR_LOOPBACK_INIT;
        struct listen_address a = parse_ok("tcp://[::]:8000");

        assert_int_equal(a.sockaddr.sa.sa_family, AF_INET6);
        assert_int_equal(a.length, sizeof(struct sockaddr_in6));
        assert_int_equal(ntohs(a.sockaddr.in6.sin6_port), 8000);
        assert_memory_equal(&a.sockaddr.in6.sin6_addr, &any, sizeof any);

        a = parse_ok("tcp://[::1]:443");
        assert_memory_equal(&a.sockaddr.in6.sin6_addr, &lo, sizeof lo);
        parse_ok("tcp://[2001:db8::42]:80");
        parse_ok("tcp://[::ffff:192.0.2.1]:80");
}

static void test_tcp_errors(void **state) {
        (void) state;
        assert_int_equal(parse_err(""), -EINVAL);
        assert_int_equal(parse_err("127.0.0.1:8000"), -EINVAL);      /* no scheme */
        assert_int_equal(parse_err("udp://127.0.0.1:8000"), -EINVAL); /* unknown scheme */
        assert_int_equal(parse_err("TCP://127.0.0.1:8000"), -EINVAL);
        assert_int_equal(parse_err("tcp://127.0.0.1"), -EINVAL);      /* missing port */
        assert_int_equal(parse_err("tcp://127.0.0.1:"), -EINVAL);
        assert_int_equal(parse_err("tcp://:8000"), -EINVAL);          /* missing host */
        assert_int_equal(parse_err("tcp://[::1]"), -EINVAL);
        assert_int_equal(parse_err("tcp://[::1]8000"), -EINVAL);
        assert_int_equal(parse_err("tcp://[::1:8000"), -EINVAL);
        assert_int_equal(parse_err("tcp://[]:8000"), -EINVAL);
        assert_int_equal(parse_err("tcp://::1:8000"), -EINVAL);       /* IPv6 needs brackets */
        assert_int_equal(parse_err("tcp://[127.0.0.1]:80"), -EINVAL);
        assert_int_equal(parse_err("tcp://1.2.3:80"), -EINVAL);
        assert_int_equal(parse_err("tcp://256.0.0.1:80"), -EINVAL);
        assert_int_equal(parse_err("tcp://example.com:80"), -EINVAL); /* no DNS */
        assert_int_equal(parse_err("tcp://127.0.0.1:80a"), -EINVAL);
        assert_int_equal(parse_err("tcp://127.0.0.1:-1"), -EINVAL);
        assert_int_equal(parse_err("tcp://127.0.0.1:+80"), -EINVAL);
        assert_int_equal(parse_err("tcp://127.0.0.1:8000/"), -EINVAL);
        assert_int_equal(parse_err("tcp://127.0.0.1: 80"), -EINVAL);
        /* Port out of range. */
        assert_int_equal(parse_err("tcp://127.0.0.1:0"), -ERANGE);
        assert_int_equal(parse_err("tcp://127.0.0.1:65536"), -ERANGE);
        assert_int_equal(parse_err("tcp://127.0.0.1:99999999999999999999999"), -ERANGE);
        assert_int_equal(parse_err("tcp://[::]:0"), -ERANGE);
}

static void test_unix(void **state) {
        (void) state;
        struct listen_address a = parse_ok("unix:/run/app.sock");

        assert_int_equal(a.sockaddr.sa.sa_family, AF_UNIX);
        assert_string_equal(a.sockaddr.un.sun_path, "/run/app.sock");
        assert_int_equal(a.length, offsetof(struct sockaddr_un, sun_path) + strlen("/run/app.sock") + 1);

        /* Relative paths parse; the config makes them absolute before. */
        a = parse_ok("unix:app.sock");
        assert_string_equal(a.sockaddr.un.sun_path, "app.sock");

        /* Abstract namespace: leading NUL, no terminator counted. */
        a = parse_ok("unix:@memward");
        assert_int_equal(a.sockaddr.un.sun_path[0], '\0');
        assert_memory_equal(a.sockaddr.un.sun_path + 1, "memward", 7);
        assert_int_equal(a.length, offsetof(struct sockaddr_un, sun_path) + 1 + 7);
}

static void test_unix_errors(void **state) {
        (void) state;
        char path[256], addr[300];

        assert_int_equal(parse_err("unix:"), -EINVAL);
        assert_int_equal(parse_err("unix:@"), -EINVAL);

        /* sun_path is 108 bytes: 107 characters and the NUL fit, 108 do not. */
        memset(path, 'a', sizeof path);
        path[0] = '/';
        path[107] = '\0';
        snprintf(addr, sizeof addr, "unix:%s", path);
        parse_ok(addr);
        path[107] = 'a';
        path[108] = '\0';
        snprintf(addr, sizeof addr, "unix:%s", path);
        assert_int_equal(parse_err(addr), -ENAMETOOLONG);
        path[200] = '\0';
        snprintf(addr, sizeof addr, "unix:%s", path);
        assert_int_equal(parse_err(addr), -ENAMETOOLONG);

        /* An abstract name has no terminator: 107 characters fit after the NUL. */
        memset(path, 'b', sizeof path);
        path[0] = '@';
        path[108] = '\0';
        snprintf(addr, sizeof addr, "unix:%s", path);
        parse_ok(addr);
        path[108] = 'b';
        path[109] = '\0';
        snprintf(addr, sizeof addr, "unix:%s", path);
        assert_int_equal(parse_err(addr), -ENAMETOOLONG);
}

static void test_to_string(void **state) {
        (void) state;
        assert_round_trip("tcp://127.0.0.1:8000", "tcp://127.0.0.1:8000");
        assert_round_trip("tcp://localhost:8000", "tcp://127.0.0.1:8000");
        assert_round_trip("tcp://[::]:8000", "tcp://[::]:8000");
        assert_round_trip("tcp://[0:0::1]:443", "tcp://[::1]:443");
        assert_round_trip("unix:/run/app.sock", "unix:/run/app.sock");
        assert_round_trip("unix:@memward", "unix:@memward");

        struct listen_address a = {};
        char buf[LISTEN_ADDRESS_MAX];
        assert_string_equal(listen_address_to_string(&a, buf, sizeof buf), "unknown");
}

static void test_host_port(void **state) {
        struct listen_address a;
        char buf[LISTEN_ADDRESS_MAX];
        (void) state;

        assert_int_equal(listen_address_parse_host_port("127.0.0.1:9181", &a), 0);
        assert_string_equal(listen_address_to_string(&a, buf, sizeof buf), "tcp://127.0.0.1:9181");
        /* ":PORT", as Prometheus users write it: every IPv4 address. */
        assert_int_equal(listen_address_parse_host_port(":9181", &a), 0);
        assert_string_equal(listen_address_to_string(&a, buf, sizeof buf), "tcp://0.0.0.0:9181");
        assert_int_equal(listen_address_parse_host_port("[::1]:9181", &a), 0);
        assert_int_equal(listen_address_parse_host_port("unix:/run/m.sock", &a), 0);
        assert_int_equal(listen_address_parse_host_port(":", &a), -EINVAL);
        assert_int_equal(listen_address_parse_host_port(":0", &a), -ERANGE);
        assert_int_equal(listen_address_parse_host_port("9181", &a), -EINVAL);
}

static enum listen_conflict conflict(const char *x, const char *y) {
        struct listen_address a = parse_ok(x), b = parse_ok(y);
        enum listen_conflict k = listen_address_conflict(&a, &b);
        /* Symmetric. */
        assert_int_equal(listen_address_conflict(&b, &a), k);
        return k;
}

static void test_conflict(void **state) {
        (void) state;

        assert_int_equal(conflict("tcp://127.0.0.1:80", "tcp://127.0.0.1:80"), LISTEN_CONFLICT_SAME);
        assert_int_equal(conflict("unix:/run/a.sock", "unix:/run/a.sock"), LISTEN_CONFLICT_SAME);
        assert_int_equal(conflict("tcp://127.0.0.1:80", "tcp://127.0.0.2:80"), LISTEN_CONFLICT_NONE);
        assert_int_equal(conflict("tcp://127.0.0.1:80", "tcp://127.0.0.1:81"), LISTEN_CONFLICT_NONE);
        assert_int_equal(conflict("tcp://0.0.0.0:80", "tcp://127.0.0.1:80"), LISTEN_CONFLICT_OVERLAP);
        assert_int_equal(conflict("tcp://0.0.0.0:80", "tcp://0.0.0.0:81"), LISTEN_CONFLICT_NONE);
        assert_int_equal(conflict("tcp://[::]:80", "tcp://[::1]:80"), LISTEN_CONFLICT_OVERLAP);
        assert_int_equal(conflict("tcp://[::1]:80", "tcp://[::2]:80"), LISTEN_CONFLICT_NONE);
        /* Dual-stack: [::] takes IPv4 too; [::1] does not. */
        assert_int_equal(conflict("tcp://[::]:80", "tcp://0.0.0.0:80"), LISTEN_CONFLICT_OVERLAP);
        assert_int_equal(conflict("tcp://[::]:80", "tcp://127.0.0.1:80"), LISTEN_CONFLICT_OVERLAP);
        assert_int_equal(conflict("tcp://[::]:80", "tcp://0.0.0.0:81"), LISTEN_CONFLICT_NONE);
        assert_int_equal(conflict("tcp://[::1]:80", "tcp://0.0.0.0:80"), LISTEN_CONFLICT_NONE);
        assert_int_equal(conflict("unix:/run/a.sock", "tcp://0.0.0.0:80"), LISTEN_CONFLICT_NONE);
        assert_int_equal(conflict("unix:@a", "unix:@b"), LISTEN_CONFLICT_NONE);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_tcp_v4),
                cmocka_unit_test(test_tcp_v6),
                cmocka_unit_test(test_tcp_errors),
                cmocka_unit_test(test_unix),
                cmocka_unit_test(test_unix_errors),
                cmocka_unit_test(test_to_string),
                cmocka_unit_test(test_host_port),
                cmocka_unit_test(test_conflict),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
