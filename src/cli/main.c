/* memward: a memory-aware prefork supervisor.
 *
 * main() reads like a table of contents: parse arguments, load the
 * configuration, take over signals, become the reaper, open the sockets,
 * then hand everything to the supervisor's loop. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "memward/base/log.h"
#include "memward/base/macro.h"
#include "memward/cli/status.h"
#include "memward/config/config.h"
#include "memward/endpoint/metrics.h"
#include "memward/linux/address.h"
#include "memward/linux/listen.h"
#include "memward/supervisor/supervisor.h"

/* What the command line says; it overrides the file, also on every reload. */
struct options {
        const char *config_path;        /* absolute, resolved once at start-up */
        char base_dir[PATH_MAX];        /* cwd at start-up: relative paths mean this */
        long workers;                   /* -1 = from the file */
        char **listen;                  /* NULL-terminated, or NULL */
        size_t n_listen;
        char **command;                 /* words after --, or NULL */
        bool check_config;
        bool running;                   /* started: a load now is a reload (SIGHUP) */
};

static void help(void) {
        printf("Usage: memward [OPTIONS] [-- COMMAND [ARGS...]]\n"
               "       memward status [--url URL | -c FILE] [--json]\n"
               "\n"
               "Run N copies of a web worker on shared listening sockets and recycle them,\n"
               "one at a time and replacement first, when their requests, lifetime or memory\n"
               "say so.\n"
               "\n"
               "  -c, --config FILE     YAML configuration file\n"
               "  -w, --workers N       number of workers (overrides workers.count)\n"
               "      --listen ADDR     listen on ADDR (tcp://HOST:PORT, tcp://[V6]:PORT,\n"
               "                        unix:PATH); repeatable; overrides listen:\n"
               "      --check-config    validate, print the effective configuration, exit\n"
               "      --version         print the version and exit\n"
               "  -h, --help            print this help and exit\n"
               "\n"
               "Signals: TERM/INT graceful stop, QUIT fast stop, HUP reload and roll workers,\n"
               "TTIN/TTOU one worker more/fewer, USR2 log a status table, USR1 forwarded.\n"
               "Exit codes: 0 after a requested stop, 2 bad usage or configuration,\n"
               "127 worker command not found, 126 worker command not executable.\n");
}

static void options_free(struct options *o) {
        free(o->listen);
        free((char *) o->config_path);
}

static int parse_argv(int argc, char *argv[], struct options *o) {
        enum { ARG_LISTEN = 0x100, ARG_CHECK_CONFIG, ARG_VERSION };
        static const struct option longopts[] = {
                { "config", required_argument, NULL, 'c' },
                { "workers", required_argument, NULL, 'w' },
                { "listen", required_argument, NULL, ARG_LISTEN },
                { "check-config", no_argument, NULL, ARG_CHECK_CONFIG },
                { "version", no_argument, NULL, ARG_VERSION },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        int c;

        o->workers = -1;
        if (!getcwd(o->base_dir, sizeof o->base_dir)) {
                fprintf(stderr, "memward: cannot determine the current directory: %m\n");
                return -errno;
        }

        /* "+": stop at the first non-option, so the worker command's own flags are not ours. */
        while ((c = getopt_long(argc, argv, "+c:w:h", longopts, NULL)) >= 0) {
                switch (c) {
                case 'c': {
                        /* Made absolute, but symlinks are kept: a Kubernetes ConfigMap file is a
                         * symlink the kubelet re-points on every update, and SIGHUP must follow it. */
                        char *abs;
                        if (optarg[0] == '/')
                                abs = strdup(optarg);
                        else if (asprintf(&abs, "%s/%s", o->base_dir, optarg) < 0)
                                abs = NULL;
                        if (!abs)
                                return -ENOMEM;
                        free((char *) o->config_path);
                        o->config_path = abs;
                        break;
                }
                case 'w': {
                        char *end;
                        errno = 0;
                        long n = strtol(optarg, &end, 10);
                        if (errno || *end || end == optarg || n < 1 || n > (long) CONFIG_WORKERS_MAX) {
                                fprintf(stderr, "memward: --workers: expected an integer in 1..%u, got \"%s\"\n",
                                        CONFIG_WORKERS_MAX, optarg);
                                return -EINVAL;
                        }
                        o->workers = n;
                        break;
                }
                case ARG_LISTEN: {
                        struct listen_address a;
                        int r = listen_address_parse(optarg, &a);
                        if (r < 0) {
                                fprintf(stderr,
                                        "memward: --listen: invalid address \"%s\" (%s): expected tcp://HOST:PORT, "
                                        "tcp://[V6]:PORT or unix:PATH\n",
                                        optarg, strerror(-r));
                                return -EINVAL;
                        }
                        if (o->n_listen >= CONFIG_LISTEN_MAX) {
                                fprintf(stderr, "memward: --listen: at most %u addresses\n", CONFIG_LISTEN_MAX);
                                return -EINVAL;
                        }
                        char **l = realloc(o->listen, (o->n_listen + 2) * sizeof *l);
                        if (!l)
                                return -ENOMEM;
                        l[o->n_listen++] = optarg;
                        l[o->n_listen] = NULL;
                        o->listen = l;
                        break;
                }
                case ARG_CHECK_CONFIG:
                        o->check_config = true;
                        break;
                case ARG_VERSION:
                        printf("memward %s\n", MEMWARD_VERSION);
                        return 0;
                case 'h':
                        help();
                        return 0;
                default:
                        fprintf(stderr, "Try 'memward --help'.\n");
                        return -EINVAL;
                }
        }

        if (optind < argc) {
                /* With "+", a bare word also ends our options; "--" is consumed by getopt. */
                o->command = argv + optind;
        }
        return 1;
}

static int apply_overrides(struct memward_config *c, const struct options *o) {
        int r;

        if (o->workers > 0)
                c->workers.count = (unsigned) o->workers;
        if (o->command) {
                r = config_set_command(c, o->command);
                if (r < 0)
                        return r;
        }
        if (o->listen) {
                config_clear_listen(c);
                for (size_t i = 0; i < o->n_listen; i++) {
                        r = config_add_listen(c, o->listen[i], o->base_dir);
                        if (r < 0) {
                                fprintf(stderr, "memward: --listen %s: %s\n", o->listen[i],
                                        r == -EEXIST ? "given twice" : strerror(-r));
                                return r;
                        }
                }
        }
        return 0;
}

/* The file (or defaults), then the command line, then the rules that span both.
 * Prints every diagnostic itself. */
static int load_config(void *userdata, struct memward_config **ret) {
        const struct options *o = userdata;
        struct config_diagnostics diag = {};
        _cleanup_config_free_ struct memward_config *c = NULL;
        int r;

        if (o->config_path)
                r = config_load_file(o->config_path, o->base_dir, &c, &diag);
        else
                r = config_new_default(&c);
        for (size_t i = 0; i < diag.n_warnings; i++) {
                char msg[LOG_QUOTE_MAX];
                log_warning("config_warning", "msg=%s", log_quote(msg, sizeof msg, diag.warnings[i]));
        }
        if (r >= 0)
                r = apply_overrides(c, o);
        if (r >= 0)
                r = config_validate(c, &diag);
        if (r < 0 || diag.n_items > 0) {
                if (o->running)
                        /* From the event loop: through the log, which never blocks on a full
                         * stderr pipe (a blocking fprintf would stall reaping, signals and
                         * the watchdog until someone drains it). */
                        for (size_t i = 0; i < diag.n_items; i++) {
                                char line[1024], msg[LOG_QUOTE_MAX];
                                if (config_diagnostic_format(&diag, i, line, sizeof line) >= 0)
                                        log_error("config_error", "msg=%s", log_quote(msg, sizeof msg, line));
                        }
                else
                        config_diagnostics_print(&diag, stderr);
                config_diagnostics_clear(&diag);
                return r < 0 ? r : -EINVAL;
        }
        config_diagnostics_clear(&diag);
        *ret = TAKE_PTR(c);
        return 0;
}

/* Started with stdin, stdout or stderr closed (a careless init, `>&-`), the next open()
 * would take that number: a listening socket on fd 2 would get our log lines, and the
 * workers would inherit the gap. /dev/null fills it, as tini and systemd do. */
static void fill_standard_fds(void) {
        for (int fd = 0; fd < 3; fd++)
                if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
                        int n = open("/dev/null", O_RDWR | O_NOCTTY);
                        if (n >= 0 && n != fd) {
                                (void) dup2(n, fd);
                                (void) close(n);
                        }
                }
}

static int block_signals(void) {
        sigset_t set;

        /* Blocked before anything else happens, so a signal at start-up waits for the
         * signalfd instead of killing us (as PID 1 it would be dropped). */
        supervisor_signal_set(&set);
        if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
                return -errno;
        /* A worker closing its end of a socket must not kill the supervisor. */
        (void) signal(SIGPIPE, SIG_IGN);
        return 0;
}

static int become_reaper(void) {
        /* As PID 1 we are the reaper already; otherwise orphans of our workers
         * (daemonized grandchildren) come to us instead of to init. */
        if (getpid() == 1)
                return 0;
        if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
                return log_warning_errno(-errno, "subreaper_failed", NULL);
        return 0;
}

/* Logs a failure to open a listen address. An errno from listen_address_open() alone
 * would read "File exists" or "Address already in use"; at a unix path, name the file in
 * the way and what to do about it. */
static int log_listen_failed(int r, const char *event, const char *address) {
        char a[LOG_QUOTE_MAX], p[LOG_QUOTE_MAX];
        const char *msg = NULL;

        if (startswith_lit(address, "unix:") && r == -EEXIST)
                msg = "a file that is not a socket is in the way; memward replaces only stale sockets, so remove it "
                      "or pick another path";
        else if (startswith_lit(address, "unix:") && r == -EADDRINUSE)
                msg = "another process is listening on this socket (a memward already running?); memward replaces "
                      "only stale sockets, so stop that process or pick another path";
        if (msg)
                return log_error_errno(r, event, "address=%s path=%s msg=\"%s\"", log_quote(a, sizeof a, address),
                                       log_quote(p, sizeof p, address + strlen("unix:")), msg);
        return log_error_errno(r, event, "address=%s", log_quote(a, sizeof a, address));
}

static int open_sockets(const struct memward_config *c, struct listen_set *ret) {
        const struct listen_config *failed = NULL;
        int r;

        r = listen_set_inherit(ret);
        if (r < 0)
                return log_error_errno(r, "listen_failed", "msg=\"cannot take over sockets from systemd\"");
        if (r > 0) {
                /* A .socket unit without NoDelay=yes hands over a listener with Nagle's
                 * algorithm on, which stalls every keep-alive response of a worker that
                 * does not set TCP_NODELAY itself (uvicorn on fd 3). Turning it on only
                 * affects connections accepted from now on, never systemd's other uses. */
                for (size_t i = 0; i < ret->n; i++) {
                        const struct listen_options defaults = LISTEN_OPTIONS_DEFAULT;
                        int q = listen_socket_set_options(ret->sockets[i].fd, &defaults);
                        if (q < 0)
                                log_warning_errno(q, "listen_options_failed", "name=%s fd=%d",
                                                  ret->sockets[i].name, ret->sockets[i].fd);
                }
                if (c->n_listen > 0)
                        log_warning("listen_ignored",
                                    "sockets=%d msg=\"sockets passed by systemd are used; listen: is ignored\"", r);
                return 0;
        }

        r = listen_set_open(ret, c->listen, c->n_listen, &failed);
        if (r < 0) {
                /* Those opened before the one that failed would leave their socket files. */
                listen_set_close(ret);
                return log_listen_failed(r, "listen_failed", failed ? failed->address : "?");
        }
        if (ret->n == 0)
                log_warning("no_sockets", "msg=\"no listen: addresses; workers must open their own sockets\"");
        return 0;
}

int main(int argc, char *argv[]) {
        struct options options = {};
        struct memward_config *config = NULL;
        struct listen_set listen = {};
        struct supervisor *supervisor = NULL;
        struct http_server *endpoint = NULL;
        int r, code;

        /* A client of a running memward, not a supervisor: nothing below applies. To run a
         * worker program called "status", put it after "--". */
        if (argc > 1 && streq(argv[1], "status"))
                return status_main(argc - 1, argv + 1);

        fill_standard_fds();
        r = block_signals();
        if (r < 0) {
                fprintf(stderr, "memward: cannot block signals: %s\n", strerror(-r));
                return 1;
        }

        r = parse_argv(argc, argv, &options);
        if (r <= 0) {
                options_free(&options);
                return r < 0 ? EXIT_USAGE : 0;
        }

        r = load_config(&options, &config);
        if (r < 0) {
                options_free(&options);
                return EXIT_USAGE;
        }
        log_set_max_level(config->log.level);
        log_set_format(config->log.format);

        if (options.check_config) {
                r = config_dump(config, stdout);
                config_free(config);
                options_free(&options);
                return r < 0 ? EXIT_USAGE : 0;
        }

        (void) become_reaper();

        r = open_sockets(config, &listen);
        if (r < 0) {
                config_free(config);
                options_free(&options);
                return 1;
        }

        options.running = true;
        r = supervisor_new(config, &listen, load_config, &options, &supervisor);
        if (r < 0) {
                log_error_errno(r, "start_failed", NULL);
                listen_set_close(&listen);
                config_free(config);
                options_free(&options);
                return 1;
        }

        r = metrics_start(supervisor, &endpoint);
        if (r < 0) {
                (void) log_listen_failed(r, "metrics_listen_failed", supervisor->config->metrics.listen);
                supervisor_free(supervisor);
                options_free(&options);
                return 1;
        }
        if (endpoint) {
                char a[LOG_QUOTE_MAX];
                log_info("metrics_listen", "address=%s", log_quote(a, sizeof a, http_server_address(endpoint)));
        }

        code = supervisor_run(supervisor);
        /* Before the supervisor: the endpoint is a source on its loop. */
        http_server_free(endpoint);
        supervisor_free(supervisor);
        options_free(&options);
        return code;
}
