/* /proc/PID/stat: the parent pid (proc_stat_parse_ppid, which decides whether a notify
 * sender descends from a worker) and the CPU and start times of the metrics
 * (proc_stat_times_parse); also "btime" of /proc/stat (proc_stat_btime_parse). The
 * command name between the parentheses is chosen by the process itself: it may hold
 * spaces, ')' and anything but NUL, up to 15 bytes (16 with prctl). */
#include <errno.h>

#include "fuzz.h"
#include "memward/endpoint/metrics.h"
#include "memward/linux/proc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *text = (const char *) data;
        uint64_t a = 7, b = 7;
        pid_t ppid = -7;
        int r;

        r = proc_stat_parse_ppid(text, size, &ppid);
        FUZZ_CHECK(r == 0 || r == -EBADMSG);
        if (r < 0)
                FUZZ_CHECK(ppid == -7);
        else
                FUZZ_CHECK(ppid >= 0 && ppid <= 4194304); /* PID_MAX_LIMIT */

        r = proc_stat_times_parse(text, size, &a, &b);
        FUZZ_CHECK(r == 0 || r == -EBADMSG);
        if (r < 0)
                FUZZ_CHECK(a == 7 && b == 7);

        a = 7;
        r = proc_stat_btime_parse(text, size, &a);
        FUZZ_CHECK(r == 0 || r == -EBADMSG);
        if (r < 0)
                FUZZ_CHECK(a == 7);
        return 0;
}
