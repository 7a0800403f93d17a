/* Signal names to numbers and back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>

#include "memward/base/signal_name.h"

static void test_names_and_numbers(void **state) {
        (void) state;
        assert_int_equal(signal_from_string("SIGTERM"), SIGTERM);
        assert_int_equal(signal_from_string("TERM"), SIGTERM);
        assert_int_equal(signal_from_string("15"), SIGTERM);
        assert_int_equal(signal_from_string("sigterm"), SIGTERM);
        assert_int_equal(signal_from_string("SIGHUP"), SIGHUP);
        assert_int_equal(signal_from_string("INT"), SIGINT);
        assert_int_equal(signal_from_string("QUIT"), SIGQUIT);
        assert_int_equal(signal_from_string("USR1"), SIGUSR1);
        assert_int_equal(signal_from_string("SIGUSR2"), SIGUSR2);
        assert_int_equal(signal_from_string("KILL"), SIGKILL);
        assert_int_equal(signal_from_string("SIGCONT"), SIGCONT);
        assert_int_equal(signal_from_string("SIGWINCH"), SIGWINCH);
        assert_int_equal(signal_from_string("SIGRTMIN"), SIGRTMIN);
        assert_int_equal(signal_from_string("RTMIN+2"), SIGRTMIN + 2);
        assert_int_equal(signal_from_string("SIGRTMAX"), SIGRTMAX);
        assert_int_equal(signal_from_string("SIGRTMAX-1"), SIGRTMAX - 1);
        assert_int_equal(signal_from_string("64"), 64);

        assert_int_equal(signal_from_string(""), -EINVAL);
        assert_int_equal(signal_from_string("SIG"), -EINVAL);
        assert_int_equal(signal_from_string("0"), -EINVAL);
        assert_int_equal(signal_from_string("65"), -EINVAL);
        assert_int_equal(signal_from_string("-15"), -EINVAL);
        assert_int_equal(signal_from_string("15x"), -EINVAL);
        assert_int_equal(signal_from_string("999999999999"), -EINVAL);
        assert_int_equal(signal_from_string("SIGTERMX"), -EINVAL);
        assert_int_equal(signal_from_string("SIGFOO"), -EINVAL);
        assert_int_equal(signal_from_string("RTMIN+99"), -EINVAL);
        assert_int_equal(signal_from_string("RTMIN-1"), -EINVAL);
        assert_int_equal(signal_from_string("RTMAX+1"), -EINVAL);
        assert_int_equal(signal_from_string(" TERM"), -EINVAL);

        assert_string_equal(signal_to_string(SIGTERM), "SIGTERM");
        assert_string_equal(signal_to_string(SIGKILL), "SIGKILL");
        assert_string_equal(signal_to_string(SIGRTMIN), "SIGRTMIN");
        assert_string_equal(signal_to_string(SIGRTMIN + 5), "SIGRTMIN+5");
        assert_null(signal_to_string(0));
        assert_null(signal_to_string(-1));
        assert_null(signal_to_string(999));

        assert_string_equal(signal_to_string(SIGIO), "SIGIO");
        assert_int_equal(signal_from_string("SIGPOLL"), SIGIO); /* glibc's alias */
        assert_int_equal(signal_from_string("IOT"), SIGABRT);
        assert_int_equal(signal_from_string("SIG9"), SIGKILL);

        /* Every signal formats to a name that parses back to it. */
        for (int sig = 1; sig <= SIGRTMAX; sig++) {
                const char *name = signal_to_string(sig);
                assert_non_null(name);
                assert_int_equal(signal_from_string(name), sig);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_names_and_numbers),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
