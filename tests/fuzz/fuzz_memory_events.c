/* cgroup v2 memory.events (memory_events_parse): read on every EPOLLPRI of a worker's
 * leaf, so it runs often and on whatever the kernel version writes. */
#include <errno.h>

#include "fuzz.h"
#include "memward/linux/memstat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct memory_events e, before;
        int r;

        memset(&e, FUZZ_POISON, sizeof e);
        before = e;
        r = memory_events_parse((const char *) data, size, &e);
        FUZZ_CHECK(r == 0 || r == -EBADMSG);
        if (r < 0)
                FUZZ_CHECK(memcmp(&e, &before, sizeof e) == 0);
        return 0;
}
