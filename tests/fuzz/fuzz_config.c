/* The YAML config through the real loader (config_load_string), as `memward -c FILE`
 * and SIGHUP use it, including what the user sees on errors.
 *
 * For every input: load it; print the diagnostics into a memory stream (the caret line
 * walks the source by line and column, the part most likely to go out of bounds).
 * For a valid config also: config_validate(), config_dump(), and the promise of
 * config.h that the dump loads again — to the same dump. */
#include <errno.h>

#include "fuzz.h"
#include "memward/config/config.h"

static char *render_diagnostics(const struct config_diagnostics *diag) {
        char *out = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&out, &n);

        if (!f)
                abort();
        config_diagnostics_print(diag, f);
        fclose(f);
        return out;
}

static char *render_dump(const struct memward_config *c) {
        char *out = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&out, &n);

        if (!f)
                abort();
        FUZZ_CHECK(config_dump(c, f) == 0);
        fclose(f);
        return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct config_diagnostics diag = {}, again_diag = {}, vdiag = {};
        struct memward_config *c = NULL, *again = NULL;
        char *text, *dump, *dump2;
        int r;

        /* A fixed base directory: relative paths become absolute without getcwd(). */
        r = config_load_string((const char *) data, size, "fuzz.yaml", "/srv/app", &c, &diag);
        free(render_diagnostics(&diag));

        if (r < 0) {
                FUZZ_CHECK(c == NULL);
                /* "-EINVAL with diag filled when the file has errors" */
                if (r == -EINVAL)
                        FUZZ_CHECK(diag.n_items > 0);
                config_diagnostics_clear(&diag);
                return 0;
        }
        FUZZ_CHECK(c != NULL);
        FUZZ_CHECK(diag.n_items == 0);
        config_diagnostics_clear(&diag);

        (void) config_validate(c, &vdiag);
        free(render_diagnostics(&vdiag));
        config_diagnostics_clear(&vdiag);

        dump = render_dump(c);
        r = config_load_string(dump, strlen(dump), "dump.yaml", "/srv/app", &again, &again_diag);
        if (r < 0) {
                text = render_diagnostics(&again_diag);
                fprintf(stderr, "config_dump output does not load again (%s):\n%s---\n%s", strerror(-r), dump,
                        text ?: "");
                free(text);
        }
        FUZZ_CHECK(r == 0);
        dump2 = render_dump(again);
        if (strcmp(dump, dump2) != 0)
                fprintf(stderr, "dump of the reloaded config differs:\n%s---\n%s", dump, dump2);
        FUZZ_CHECK(strcmp(dump, dump2) == 0);

        free(dump);
        free(dump2);
        config_diagnostics_clear(&again_diag);
        config_free(again);
        config_free(c);
        return 0;
}
