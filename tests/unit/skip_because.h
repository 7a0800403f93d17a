/* skip_because(reason): cmocka's skip(), with the reason printed just before it.
 * cmocka 1.1 has no skip message; tests/run-unit reads this "[  REASON  ]" line and
 * shows "SKIP binary/case: reason", and a CI run (MEMWARD_TEST_NO_SKIP=1) fails on
 * any skip that tests/skips-allowed does not list. Included after cmocka.h. */
#pragma once

#define skip_because(reason)                                     \
        do {                                                     \
                print_message("[  REASON  ] %s\n", (reason));    \
                skip();                                          \
        } while (0)
