/* Size and duration strings of the config language ("512MiB", "30s"): parse_size and
 * parse_duration. units.h promises that every value has one spelling that the
 * formatters produce again, so what parses must format and parse back to itself. */
#include <errno.h>

#include "fuzz.h"
#include "memward/base/units.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *s = fuzz_strndup(data, size);
        char buf[FORMAT_SIZE_MAX > FORMAT_DURATION_MAX ? FORMAT_SIZE_MAX : FORMAT_DURATION_MAX];
        uint64_t v = 7, again = 7;
        int r;

        r = parse_size(s, &v);
        FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ERANGE);
        if (r < 0)
                FUZZ_CHECK(v == 7);
        else {
                format_size(buf, FORMAT_SIZE_MAX, v);
                FUZZ_CHECK(fuzz_terminated(buf, FORMAT_SIZE_MAX));
                FUZZ_CHECK(parse_size(buf, &again) == 0 && again == v);
        }

        v = 7;
        r = parse_duration(s, &v);
        FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ERANGE);
        if (r < 0)
                FUZZ_CHECK(v == 7);
        else {
                FUZZ_CHECK(v != USEC_INFINITY);
                format_duration(buf, FORMAT_DURATION_MAX, v);
                FUZZ_CHECK(fuzz_terminated(buf, FORMAT_DURATION_MAX));
                FUZZ_CHECK(parse_duration(buf, &again) == 0 && again == v);
        }

        free(s);
        return 0;
}
