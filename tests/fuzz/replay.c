/* Replays fuzz inputs without libFuzzer: `replay_<target> NAME PATH...` feeds every
 * regular file of each PATH (a file, or a directory whose files are taken in name order;
 * missing paths are skipped) through the target's LLVMFuzzerTestOneInput, each in a heap
 * buffer of exactly its size so that ASan catches a read past the end as libFuzzer would.
 *
 * Built with gcc and -fsanitize=address,undefined by `make fuzz-replay`, which `make
 * check` runs: the seed corpus and every crash kept under tests/fuzz/regressions/ stay
 * tested on machines without clang. A sanitizer report or a broken contract ends the
 * process; the file is named first (ASan's death callback, SIGABRT for FUZZ_CHECK and
 * UBSan, which we make abort). Prints one line: "NAME: N inputs ok". */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sanitizer/common_interface_defs.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* gcc links UBSan as a runtime of its own, which does not call ASan's death callback:
 * make it abort, so that the SIGABRT handler names the file. */
const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void) {
        return "print_stacktrace=1:halt_on_error=1:abort_on_error=1";
}

static const char *current_name = "replay";
static char current[4096] = "(no input yet)";

static void say_failed(void) {
        /* async-signal-safe: write(2) only */
        const char *parts[] = { current_name, ": FAILED on ", current, "\n" };
        for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
                (void) !write(STDERR_FILENO, parts[i], strlen(parts[i]));
}

static void on_abort(int sig) {
        say_failed();
        signal(sig, SIG_DFL);
        raise(sig);
}

static int read_all(const char *path, uint8_t **ret, size_t *ret_size) {
        struct stat st;
        uint8_t *buf;
        size_t n = 0;
        int fd;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                return -EINVAL;
        }
        /* malloc(0) may return NULL; keep one byte allocated but pass size 0. */
        buf = malloc((size_t) st.st_size ?: 1);
        if (!buf)
                abort();
        while (n < (size_t) st.st_size) {
                ssize_t k = read(fd, buf + n, (size_t) st.st_size - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        int r = k < 0 ? -errno : -EIO;
                        free(buf);
                        close(fd);
                        return r;
                }
                n += (size_t) k;
        }
        close(fd);
        *ret = buf;
        *ret_size = n;
        return 0;
}

static int skip_entry(const struct dirent *e) {
        return e->d_name[0] != '.' && strcmp(e->d_name, "README.md") != 0;
}

/* Feeds the file named by current. */
static void run_one(unsigned *inputs, unsigned *errors) {
        uint8_t *data;
        size_t size;
        int r;

        r = read_all(current, &data, &size);
        if (r == -EINVAL)
                return; /* not a regular file */
        if (r < 0) {
                fprintf(stderr, "%s: cannot read %s: %s\n", current_name, current, strerror(-r));
                (*errors)++;
                return;
        }
        (void) LLVMFuzzerTestOneInput(data, size);
        free(data);
        (*inputs)++;
}

int main(int argc, char *argv[]) {
        unsigned inputs = 0, errors = 0;

        if (argc < 3) {
                fprintf(stderr, "usage: %s NAME PATH...\n", argv[0]);
                return 2;
        }
        current_name = argv[1];
        __sanitizer_set_death_callback(say_failed);
        signal(SIGABRT, on_abort);
        if (LLVMFuzzerInitialize)
                (void) LLVMFuzzerInitialize(&argc, &argv);

        for (int i = 2; i < argc; i++) {
                struct dirent **entries;
                struct stat st;
                int n;

                if (stat(argv[i], &st) < 0) {
                        if (errno == ENOENT)
                                continue;
                        fprintf(stderr, "%s: %s: %s\n", current_name, argv[i], strerror(errno));
                        errors++;
                        continue;
                }
                if (!S_ISDIR(st.st_mode)) {
                        snprintf(current, sizeof current, "%s", argv[i]);
                        run_one(&inputs, &errors);
                        continue;
                }
                n = scandir(argv[i], &entries, skip_entry, alphasort);
                if (n < 0) {
                        fprintf(stderr, "%s: cannot list %s: %s\n", current_name, argv[i], strerror(errno));
                        errors++;
                        continue;
                }
                for (int k = 0; k < n; k++) {
                        snprintf(current, sizeof current, "%s/%s", argv[i], entries[k]->d_name);
                        free(entries[k]);
                        run_one(&inputs, &errors);
                }
                free(entries);
        }

        if (errors > 0 || inputs == 0) {
                printf("%s: FAILED (%u inputs, %u unreadable)\n", current_name, inputs, errors);
                return 1;
        }
        printf("%s: %u inputs ok\n", current_name, inputs);
        return 0;
}
