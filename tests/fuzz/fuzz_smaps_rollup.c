/* /proc/PID/smaps_rollup (smaps_rollup_parse): procfs accounting reads it for every
 * process of a worker's tree; the worker controls nothing in it but its size. */
#include <errno.h>

#include "fuzz.h"
#include "memward/linux/memstat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct smaps_rollup s, before;
        int r;

        memset(&s, FUZZ_POISON, sizeof s);
        before = s;
        r = smaps_rollup_parse((const char *) data, size, &s);
        FUZZ_CHECK(r == 0 || r == -EBADMSG);
        if (r < 0)
                FUZZ_CHECK(memcmp(&s, &before, sizeof s) == 0);
        else
                /* kB lines, returned in bytes */
                FUZZ_CHECK(s.rss % 1024 == 0 && s.pss % 1024 == 0 && s.anonymous % 1024 == 0);
        return 0;
}
