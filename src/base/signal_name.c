/* See signal_name.h. */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "memward/base/macro.h"
#include "memward/base/signal_name.h"

static const char *const signal_names[] = {
        [SIGHUP] = "SIGHUP",       [SIGINT] = "SIGINT",     [SIGQUIT] = "SIGQUIT",   [SIGILL] = "SIGILL",
        [SIGTRAP] = "SIGTRAP",     [SIGABRT] = "SIGABRT",   [SIGBUS] = "SIGBUS",     [SIGFPE] = "SIGFPE",
        [SIGKILL] = "SIGKILL",     [SIGUSR1] = "SIGUSR1",   [SIGSEGV] = "SIGSEGV",   [SIGUSR2] = "SIGUSR2",
        [SIGPIPE] = "SIGPIPE",     [SIGALRM] = "SIGALRM",   [SIGTERM] = "SIGTERM",   [SIGSTKFLT] = "SIGSTKFLT",
        [SIGCHLD] = "SIGCHLD",     [SIGCONT] = "SIGCONT",   [SIGSTOP] = "SIGSTOP",   [SIGTSTP] = "SIGTSTP",
        [SIGTTIN] = "SIGTTIN",     [SIGTTOU] = "SIGTTOU",   [SIGURG] = "SIGURG",     [SIGXCPU] = "SIGXCPU",
        [SIGXFSZ] = "SIGXFSZ",     [SIGVTALRM] = "SIGVTALRM", [SIGPROF] = "SIGPROF", [SIGWINCH] = "SIGWINCH",
        [SIGIO] = "SIGIO",         [SIGPWR] = "SIGPWR",     [SIGSYS] = "SIGSYS",
};

/* Real-time signals, as SIGRTMIN+n; glibc has 31 of them after the two it keeps. */
static const char *const rt_names[] = {
        "SIGRTMIN",    "SIGRTMIN+1",  "SIGRTMIN+2",  "SIGRTMIN+3",  "SIGRTMIN+4",  "SIGRTMIN+5",  "SIGRTMIN+6",
        "SIGRTMIN+7",  "SIGRTMIN+8",  "SIGRTMIN+9",  "SIGRTMIN+10", "SIGRTMIN+11", "SIGRTMIN+12", "SIGRTMIN+13",
        "SIGRTMIN+14", "SIGRTMIN+15", "SIGRTMIN+16", "SIGRTMIN+17", "SIGRTMIN+18", "SIGRTMIN+19", "SIGRTMIN+20",
        "SIGRTMIN+21", "SIGRTMIN+22", "SIGRTMIN+23", "SIGRTMIN+24", "SIGRTMIN+25", "SIGRTMIN+26", "SIGRTMIN+27",
        "SIGRTMIN+28", "SIGRTMIN+29", "SIGRTMIN+30", "SIGRTMIN+31", "SIGRTMIN+32",
};

static int parse_small_uint(const char *s) {
        int n = 0;

        if (!*s)
                return -EINVAL;
        for (; *s; s++) {
                if (*s < '0' || *s > '9' || n > 1000)
                        return -EINVAL;
                n = n * 10 + (*s - '0');
        }
        return n;
}

int signal_from_string(const char *s) {
        const char *name;
        int n;

        if (!s || !*s)
                return -EINVAL;

        name = strncasecmp(s, "SIG", 3) == 0 ? s + 3 : s;
        if (*name >= '0' && *name <= '9') {
                /* "15", and "SIG32" as signal_to_string() writes signals without a name. */
                n = parse_small_uint(name);
                return n >= 1 && n < NSIG ? n : -EINVAL;
        }
        for (int sig = 1; sig < SIGRTMIN; sig++) {
                /* Our names first, then glibc's, which knows aliases such as POLL for IO. */
                const char *ours = (size_t) sig < ELEMENTSOF(signal_names) ? signal_names[sig] : NULL;
                const char *abbrev = sigabbrev_np(sig);

                if ((ours && strcasecmp(ours + 3, name) == 0) || (abbrev && strcasecmp(abbrev, name) == 0))
                        return sig;
        }
        if (strcasecmp(name, "IOT") == 0)
                return SIGABRT;
        if (strcasecmp(name, "CLD") == 0)
                return SIGCHLD;

        if (strncasecmp(name, "RTMIN", 5) == 0) {
                n = name[5] == '\0' ? 0 : name[5] == '+' ? parse_small_uint(name + 6) : -EINVAL;
                return n >= 0 && SIGRTMIN + n <= SIGRTMAX ? SIGRTMIN + n : -EINVAL;
        }
        if (strncasecmp(name, "RTMAX", 5) == 0) {
                n = name[5] == '\0' ? 0 : name[5] == '-' ? parse_small_uint(name + 6) : -EINVAL;
                return n >= 0 && SIGRTMAX - n >= SIGRTMIN ? SIGRTMAX - n : -EINVAL;
        }
        return -EINVAL;
}

/* glibc keeps 32 and 33 for itself; they have no name but can still be sent. */
static const char *const reserved_names[] = { "SIG32", "SIG33" };

const char *signal_to_string(int sig) {
        if (sig > 0 && (size_t) sig < ELEMENTSOF(signal_names) && signal_names[sig])
                return signal_names[sig];
        if (sig >= SIGRTMIN && sig <= SIGRTMAX && (size_t) (sig - SIGRTMIN) < ELEMENTSOF(rt_names))
                return rt_names[sig - SIGRTMIN];
        if (sig >= 32 && sig < SIGRTMIN && (size_t) (sig - 32) < ELEMENTSOF(reserved_names))
                return reserved_names[sig - 32];
        return NULL;
}
