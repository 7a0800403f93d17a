/* cgroup v2 memory.stat (memory_stat_parse), and the one-number files read next to it
 * (memory.current, memory.max, memory.peak, v1 memory.usage_in_bytes: parse_u64_file).
 * The kernel writes these, but a file of an unexpected kernel version, a v1 file read
 * as v2, or a short pread must not take memward down. */
#include <errno.h>

#include "fuzz.h"
#include "memward/linux/memstat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct memory_stat s, before;
        uint64_t v;
        int r;

        memset(&s, FUZZ_POISON, sizeof s);
        before = s;
        r = memory_stat_parse((const char *) data, size, &s);
        FUZZ_CHECK(r == 0 || r == -EBADMSG);
        if (r < 0)
                FUZZ_CHECK(memcmp(&s, &before, sizeof s) == 0);

        memset(&v, FUZZ_POISON, sizeof v);
        r = parse_u64_file((const char *) data, size, &v);
        FUZZ_CHECK(r == 0 || r == -EBADMSG || r == -ERANGE);
        return 0;
}
