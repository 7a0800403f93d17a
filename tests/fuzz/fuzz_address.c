/* Listen addresses, from the config and from the command line: listen_address_parse
 * ("tcp://HOST:PORT", "tcp://[V6]:PORT", "unix:PATH", "unix:@abstract"), the metrics
 * form listen_address_parse_host_port ("HOST:PORT" too), and the URL of `memward status`
 * (status_url_parse). A parsed address must format back (listen_address_to_string) into
 * a string that parses to the same socket address. */
#include <errno.h>

#include "fuzz.h"
#include "memward/cli/status.h"
#include "memward/endpoint/http.h"
#include "memward/linux/address.h"

static void round_trip(const struct listen_address *a) {
        char buf[LISTEN_ADDRESS_MAX];
        struct listen_address b;

        listen_address_to_string(a, buf, sizeof buf);
        FUZZ_CHECK(fuzz_terminated(buf, sizeof buf));
        if (listen_address_parse(buf, &b) != 0 || b.length != a->length ||
            memcmp(&b.sockaddr, &a->sockaddr, a->length) != 0) {
                fprintf(stderr, "address does not round-trip: \"%s\"\n", buf);
                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *s = fuzz_strndup(data, size);
        struct listen_address a, before;
        struct status_url u, ubefore;
        int r;

        memset(&a, FUZZ_POISON, sizeof a);
        before = a;
        r = listen_address_parse(s, &a);
        FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ERANGE || r == -ENAMETOOLONG);
        if (r < 0)
                FUZZ_CHECK(memcmp(&a, &before, sizeof a) == 0);
        else {
                FUZZ_CHECK(a.length > 0 && a.length <= sizeof a.sockaddr);
                round_trip(&a);
        }

        memset(&a, FUZZ_POISON, sizeof a);
        r = listen_address_parse_host_port(s, &a);
        FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ERANGE || r == -ENAMETOOLONG);
        if (r == 0) {
                FUZZ_CHECK(a.length > 0 && a.length <= sizeof a.sockaddr);
                round_trip(&a);
        }

        memset(&u, FUZZ_POISON, sizeof u);
        ubefore = u;
        r = status_url_parse(s, &u);
        FUZZ_CHECK(r == 0 || r == -EINVAL);
        if (r < 0)
                FUZZ_CHECK(memcmp(&u, &ubefore, sizeof u) == 0);
        else
                FUZZ_CHECK(fuzz_terminated(u.host, sizeof u.host) && fuzz_terminated(u.port, sizeof u.port) &&
                           fuzz_terminated(u.unix_path, sizeof u.unix_path) &&
                           fuzz_terminated(u.path, sizeof u.path) && u.path[0] == '/');

        free(s);
        return 0;
}
