/* /proc/PID/statm (statm_parse) with the page sizes Linux uses (4 KiB, 16 KiB, 64 KiB). */
#include <errno.h>

#include "fuzz.h"
#include "memward/linux/memstat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const uint64_t page_sizes[] = { 4096, 16384, 65536 };

        for (size_t i = 0; i < sizeof page_sizes / sizeof page_sizes[0]; i++) {
                uint64_t resident = 7, shared = 7;
                int r = statm_parse((const char *) data, size, page_sizes[i], &resident, &shared);

                FUZZ_CHECK(r == 0 || r == -EBADMSG);
                if (r < 0)
                        FUZZ_CHECK(resident == 7 && shared == 7);
                else
                        FUZZ_CHECK(shared <= resident && resident % page_sizes[i] == 0);
        }
        return 0;
}
