/* /proc/meminfo (meminfo_parse): MemTotal and MemAvailable, the group limit and usage
 * when there is no cgroup to ask. */
#include <errno.h>

#include "fuzz.h"
#include "memward/linux/memstat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        uint64_t total = 7, available = 7;
        int r = meminfo_parse((const char *) data, size, &total, &available);

        FUZZ_CHECK(r == 0 || r == -EBADMSG);
        if (r < 0)
                FUZZ_CHECK(total == 7 && available == 7);
        else
                FUZZ_CHECK(total % 1024 == 0 && available % 1024 == 0);
        return 0;
}
