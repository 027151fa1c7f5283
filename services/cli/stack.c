/* stack.c -- `maillage up --dir DIR` and `maillage down --dir DIR`: the
 * embedded stack for the demo, scripts and tests.
 *
 * `up` starts, in the background and in this order: a private redis-server
 * (AOF on, fsync every second, no RDB snapshots, its data in DIR/redis,
 * reachable on DIR/redis.sock or a free loopback port), then every daemon
 * binary found next to this executable (maillage-broker today; matcher,
 * notifier and gateway as they land), each with a generated DIR/maillage.conf
 * on free loopback ports. It waits until each is ready, then writes
 * DIR/endpoints.env. Logs go to DIR/<name>.log, pids to DIR/<name>.pid. If
 * anything fails, what was started is stopped again.
 *
 * `down` stops them in reverse order: SIGTERM, a grace period, then SIGKILL;
 * Redis last, so the daemons can flush to it on their way out. A pid is only
 * signalled if /proc says it still runs the program it was started as, so a
 * stale pid file never kills a stranger that reused the pid. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "maillage/clock.h"
#include "maillage/mem.h"

/* Every component, in start order. Redis first; the daemons after it. */
static const char *const s_components[] = {"redis", "broker", "matcher", "notifier", "gateway"};
#define S_N_COMPONENTS (sizeof s_components / sizeof s_components[0])

typedef struct {
    char *dir;      /* absolute */
    char *exe_dir;  /* where this executable lives */
    int timeout_s;  /* readiness (up) or grace period (down) */
    const char *redis_server;
    const char *with;   /* up --with FILE: sections appended to the generated config, or NULL */
    /* chosen endpoints */
    char *redis_url;
    char *redis_socket; /* NULL when on TCP */
    int redis_port;
    int ingest_port, fanout_port, http_port;
    pid_t pids[S_N_COMPONENTS]; /* 0 = not started */
} s_stack_t;

static char *s_path(const s_stack_t *st, const char *name, const char *suffix)
{
    return mg_asprintf("%s/%s%s", st->dir, name, suffix);
}

/* The program a component runs, for spawning and for recognising its pid. */
static char *s_program(const s_stack_t *st, size_t component)
{
    if (component == 0) return mg_strdup(st->redis_server);
    return mg_asprintf("%s/maillage-%s", st->exe_dir, s_components[component]);
}

/* ---- processes ---------------------------------------------------------- */

/* 1 if `pid` exists and is not a zombie (a daemon reparented to an init that
 * does not reap stays a zombie: it is gone all the same). */
static int s_alive(pid_t pid)
{
    if (pid <= 0 || (kill(pid, 0) != 0 && errno == ESRCH)) return 0;
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')'); /* the name may contain spaces */
    if (paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X')) return 0;
    return 1;
}

/* 1 if the process `pid` runs a program whose name contains `name`. */
static int s_runs(pid_t pid, const char *name)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0'; /* argv[0] is the first NUL-terminated string */
    return strstr(buf, name) != NULL;
}

/* 1 if the process `pid` works in directory `dir` (the stack's Redis works
 * in DIR/redis, its `dir`, whatever the name of its program). */
static int s_works_in(pid_t pid, const char *dir) {
    char path[64], cwd[PATH_MAX], want[PATH_MAX];
    snprintf(path, sizeof path, "/proc/%d/cwd", (int)pid);
    ssize_t n = readlink(path, cwd, sizeof cwd - 1);
    if (n <= 0 || !realpath(dir, want)) return 0;
    cwd[n] = '\0';
    return strcmp(cwd, want) == 0;
}

static pid_t s_read_pid(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    long v = 0;
    if (fscanf(f, "%ld", &v) != 1) v = 0;
    fclose(f);
    return v > 0 && v < INT_MAX ? (pid_t)v : 0;
}

/* Whether the configuration text `text` sets `key` (a line "key = ..."). */
static int s_sets_key(const char *text, const char *key)
{
    size_t n = strlen(key);
    for (const char *line = text; line && *line;) {
        line += strspn(line, " \t");
        if (strncmp(line, key, n) == 0 && line[n + strspn(line + n, " \t")] == '=') return 1;
        line = strchr(line, '\n');
        if (line) line++;
    }
    return 0;
}

/* The whole text file at `path` (at most 1 MiB), or NULL with errno set.
 * Caller owns the result. */
static char *s_read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    char *text = mg_malloc(cap);
    for (;;) {
        size_t n = fread(text + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0) break;
        if (len + 1 == cap) {
            if (cap >= (1u << 20)) {
                errno = EFBIG;
                break;
            }
            cap *= 2;
            text = mg_realloc(text, cap);
        }
    }
    int failed = ferror(f) || errno == EFBIG;
    fclose(f);
    if (failed) {
        free(text);
        if (errno != EFBIG) errno = EIO;
        return NULL;
    }
    text[len] = '\0';
    return text;
}

static int s_write_file(const char *path, const char *text, mode_t mode)
{
    char *tmp = mg_asprintf("%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    int rc = -1;
    if (fd >= 0) {
        size_t len = strlen(text), off = 0;
        while (off < len) {
            ssize_t n = write(fd, text + off, len - off);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            off += (size_t)n;
        }
        if (close(fd) == 0 && off == len && rename(tmp, path) == 0) rc = 0;
    }
    if (rc != 0) unlink(tmp);
    free(tmp);
    return rc;
}

/* Start `argv` in its own session (so a Ctrl-C in the terminal reaches the
 * script, whose trap runs `down`, not the daemons directly), stdin from
 * /dev/null, stdout and stderr appended to `log_path`, no inherited fds. */
static pid_t s_spawn(char *const argv[], const char *log_path)
{
    int log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0) return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid != 0) {
        close(log_fd);
        return pid;
    }
    setsid();
    int null_fd = open("/dev/null", O_RDONLY);
    dup2(null_fd, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    long max_fd = sysconf(_SC_OPEN_MAX);
    if (max_fd < 0 || max_fd > 65536) max_fd = 65536;
    for (int fd = 3; fd < max_fd; fd++) close(fd);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    /* The embedded stack is plain loopback: the operator's CURVE key files
     * (for a CURVE broker elsewhere) must not make its daemons CURVE clients. */
    unsetenv("MAILLAGE_CLIENT_KEY");
    unsetenv("MAILLAGE_SERVER_KEY");
    execvp(argv[0], argv);
    dprintf(2, "maillage up: impossible de lancer %s : %s\n", argv[0], strerror(errno));
    _exit(127);
}

/* Print the last lines a log got from byte `from` on (its size before this
 * start: the log keeps earlier runs) to stderr, to explain a failed start. */
static void s_log_tail(const char *path, int lines, off_t from) {
    FILE *f = fopen(path, "r");
    if (!f) return;
    if (fseeko(f, from, SEEK_SET) != 0) rewind(f);
    char *ring[32] = {0};
    char buf[1024];
    int n = 0;
    if (lines > 32) lines = 32;
    while (fgets(buf, sizeof buf, f)) {
        free(ring[n % lines]);
        ring[n % lines] = mg_strdup(buf);
        n++;
    }
    fclose(f);
    if (n) fprintf(stderr, "  dernières lignes de %s :\n", path);
    for (int i = n > lines ? n - lines : 0; i < n; i++) {
        fprintf(stderr, "    %s", ring[i % lines]);
        if (!strchr(ring[i % lines], '\n')) fputc('\n', stderr);
    }
    for (int i = 0; i < lines; i++) free(ring[i]);
}

/* Reap our own child if it exited (only meaningful inside `up`). Returns 1
 * if `pid` is gone. */
static int s_exited(pid_t pid)
{
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) return 1;
    return !s_alive(pid);
}

/* SIGTERM, wait up to timeout_s, then SIGKILL. Returns 1 if SIGKILL was needed. */
static int s_stop_pid(pid_t pid, int timeout_s)
{
    kill(pid, SIGTERM);
    int64_t deadline = mg_clock_monotonic_us() + (int64_t)timeout_s * 1000000;
    while (mg_clock_monotonic_us() < deadline) {
        if (s_exited(pid)) return 0;
        cli_sleep_ms(20);
    }
    kill(pid, SIGKILL);
    for (int i = 0; i < 250 && !s_exited(pid); i++)
        cli_sleep_ms(20);
    return 1;
}

/* ---- network ------------------------------------------------------------ */

/* The lowest port of the kernel's ephemeral range (32768 by default). */
static int s_ephemeral_low(void)
{
    int lo = 32768, hi = 60999;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        if (fscanf(f, "%d %d", &lo, &hi) != 2) lo = 32768;
        fclose(f);
    }
    return lo;
}

/* 1 if 127.0.0.1:port can be bound right now, as the daemons bind it
 * (SO_REUSEADDR: a port whose last connections linger in TIME_WAIT, as a
 * stopped gateway's do for a minute, is free to them; a listening one is
 * not). */
static int s_port_bindable(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* A free loopback TCP port, avoiding those in `taken`. It is drawn at random
 * BELOW the kernel's ephemeral range: a port from bind(0) is free only until
 * the daemon binds it, and meanwhile any outgoing connection on the machine
 * (a test's client, a Redis connection) may take it as its source port; ports
 * below the range are never handed out that way. Returns 0 on failure. */
static int s_free_port(const int *taken, size_t n_taken)
{
    int hi = s_ephemeral_low() - 1, lo = 10000;
    if (hi - lo < 1000) lo = 1024;
    uint64_t seed = (uint64_t)mg_clock_monotonic_us() ^ ((uint64_t)getpid() << 20);
    for (int attempt = 0; attempt < 200; attempt++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        int port = lo + (int)((seed >> 33) % (uint64_t)(hi - lo + 1));
        int clash = 0;
        for (size_t i = 0; i < n_taken; i++) clash |= taken[i] == port;
        if (!clash && s_port_bindable(port)) return port;
    }
    return 0;
}

/* The port after `prefix` ("listen = 127.0.0.1:") in the configuration an
 * earlier `up` wrote in this directory, if it is free again (and not in
 * `taken`); else a new one (s_free_port). Links already sent to staff, and
 * scripts, keep working across a restart. */
static int s_port_again(const char *previous, const char *prefix, const int *taken, size_t n_taken) {
    const char *at = previous ? strstr(previous, prefix) : NULL;
    int port = at ? atoi(at + strlen(prefix)) : 0;
    int clash = port <= 0 || port > 65535;
    for (size_t i = 0; i < n_taken; i++)
        clash |= taken[i] == port;
    return !clash && s_port_bindable(port) ? port : s_free_port(taken, n_taken);
}

/* 1 if something accepts connections on 127.0.0.1:port. */
static int s_tcp_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* st->redis_socket: DIR/redis.sock when its path fits in sun_path, else
 * NULL (Redis then listens on a loopback port). */
static void s_socket_path(s_stack_t *st) {
    struct sockaddr_un probe;
    char *sock = s_path(st, "redis", ".sock");
    if (strlen(sock) < sizeof probe.sun_path - 1)
        st->redis_socket = sock;
    else
        free(sock);
}

/* One command to the Redis on st's endpoint, within `tv` (connecting
 * included): its reply (the caller frees it), or NULL when none came. */
static redisReply *s_redis_once(const s_stack_t *st, struct timeval tv, const char *command) {
    redisContext *c = st->redis_socket ? redisConnectUnixWithTimeout(st->redis_socket, tv)
                                       : redisConnectWithTimeout("127.0.0.1", st->redis_port, tv);
    redisReply *r = NULL;
    if (c && !c->err) {
        redisSetTimeout(c, tv);
        r = redisCommand(c, command);
    }
    if (c) redisFree(c);
    return r;
}

/* 1 if Redis answers PING with PONG (not LOADING: an AOF replay is not
 * ready); with `any`, 1 if it answers at all (LOADING, NOAUTH: a Redis is
 * there). */
static int s_redis_ping(const s_stack_t *st, int any) {
    redisReply *r = s_redis_once(st, (struct timeval){0, 200000}, "PING");
    int ok = r && (any || (r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0));
    if (r) freeReplyObject(r);
    return ok;
}

static int s_redis_pong(const s_stack_t *st) {
    return s_redis_ping(st, 0);
}

/* Ask the Redis on st's endpoint to stop (SHUTDOWN: the AOF is written
 * first), then wait up to `timeout_s` for it to stop answering. 1 if it did. */
static int s_redis_shutdown(const s_stack_t *st, int timeout_s) {
    redisReply *r = s_redis_once(st, (struct timeval){2, 0}, "SHUTDOWN"); /* NULL: closed, as it should */
    if (r) freeReplyObject(r);
    for (int i = 0; i < 10 * timeout_s; i++) {
        if (!s_redis_ping(st, 1)) return 1;
        cli_sleep_ms(100);
    }
    return !s_redis_ping(st, 1);
}

/* ---- up ----------------------------------------------------------------- */

static int s_schema_has(const char *section, const char *key)
{
    for (const mg_config_key_t *k = mg_config_schema; k->section; k++)
        if (strcmp(k->section, section) == 0 && k->key && strcmp(k->key, key) == 0) return 1;
    return 0;
}

static int s_daemon_exists(const s_stack_t *st, size_t component)
{
    char *prog = s_program(st, component);
    int ok = access(prog, X_OK) == 0;
    free(prog);
    return ok;
}

/* Wait until component `i` is ready, or fail. Readiness: Redis answers PING;
 * the broker accepts TCP connections on its ingest and fan-out ports (it
 * binds them once configured); the gateway on its HTTP port; other daemons
 * are still running after a short settling delay. */
static int s_wait_ready(s_stack_t *st, size_t i)
{
    int64_t start = mg_clock_monotonic_us();
    int64_t deadline = start + (int64_t)st->timeout_s * 1000000;
    const char *name = s_components[i];
    while (mg_clock_monotonic_us() < deadline) {
        if (s_exited(st->pids[i])) {
            cli_error("up", "%s s'est arrêté pendant le démarrage", i == 0 ? "redis-server" : name);
            return -1;
        }
        int ready;
        if (i == 0) ready = s_redis_pong(st);
        else if (strcmp(name, "broker") == 0) ready = s_tcp_open(st->ingest_port) && s_tcp_open(st->fanout_port);
        else if (strcmp(name, "gateway") == 0 && st->http_port) ready = s_tcp_open(st->http_port);
        else ready = mg_clock_monotonic_us() - start > 300000;
        if (ready) return 0;
        cli_sleep_ms(25);
    }
    cli_error("up", "%s n'était pas prêt au bout de %d s", i == 0 ? "redis-server" : name, st->timeout_s);
    return -1;
}

static int s_start(s_stack_t *st, size_t i, char *const argv[])
{
    char *log = s_path(st, s_components[i], ".log");
    char *pidfile = s_path(st, s_components[i], ".pid");
    int rc = -1;
    struct stat before;
    off_t log_from = stat(log, &before) == 0 ? before.st_size : 0;
    st->pids[i] = s_spawn(argv, log);
    if (st->pids[i] <= 0) {
        cli_error("up", "impossible de lancer %s : %s", argv[0], strerror(errno));
        st->pids[i] = 0;
        goto done;
    }
    char text[32];
    snprintf(text, sizeof text, "%d\n", (int)st->pids[i]);
    if (s_write_file(pidfile, text, 0644) != 0) {
        cli_error("up", "impossible d'écrire %s : %s", pidfile, strerror(errno));
        goto done;
    }
    if (s_wait_ready(st, i) != 0) {
        s_log_tail(log, 8, log_from);
        goto done;
    }
    rc = 0;
done:
    free(log);
    free(pidfile);
    return rc;
}

/* Stop what `up` started, in reverse order, after a failure. */
static void s_rollback(s_stack_t *st)
{
    for (size_t i = S_N_COMPONENTS; i-- > 0;) {
        if (!st->pids[i]) continue;
        s_stop_pid(st->pids[i], 5);
        char *pidfile = s_path(st, s_components[i], ".pid");
        unlink(pidfile);
        free(pidfile);
    }
}

static int s_up_write_redis_conf(const s_stack_t *st, const char *path)
{
    char *text = mg_asprintf(
        "# Written by `maillage up` for the embedded stack in %s.\n"
        "# Durability: the append-only file, fsynced every second; no RDB snapshots.\n"
        "port %d\n"
        "bind 127.0.0.1\n"
        "protected-mode yes\n"
        "%s%s%s"
        "dir \"%s/redis\"\n"
        "appendonly yes\n"
        "appendfsync everysec\n"
        "save \"\"\n"
        "daemonize no\n"
        "maxmemory-policy noeviction\n",
        st->dir, st->redis_socket ? 0 : st->redis_port, st->redis_socket ? "unixsocket \"" : "",
        st->redis_socket ? st->redis_socket : "", st->redis_socket ? "\"\nunixsocketperm 700\n" : "", st->dir);
    int rc = s_write_file(path, text, 0600);
    free(text);
    return rc;
}

static void s_up_usage(FILE *out)
{
    fputs("Usage : maillage up --dir DIR [OPTIONS]\n"
          "\n"
          "Démarre la pile embarquée en arrière-plan : un redis-server privé (AOF activé),\n"
          "puis chaque démon Maillage installé à côté de ce programme, sur des ports libres\n"
          "de la boucle locale (ceux du dernier démarrage dans DIR, s'ils sont libres).\n"
          "Écrit DIR/maillage.conf, DIR/endpoints.env (MAILLAGE_REDIS_URL, MAILLAGE_INGEST,\n"
          "MAILLAGE_FANOUT, et MAILLAGE_HTTP avec une passerelle), les journaux dans\n"
          "DIR/*.log et les pids dans DIR/*.pid. Pour l'arrêter : `maillage down --dir DIR`.\n"
          "\n"
          "Options :\n"
          "  -d, --dir DIR          répertoire d'exécution (créé si besoin)\n"
          "      --timeout S        délai laissé à chaque composant pour être prêt (15 par défaut)\n"
          "      --redis-server P   le programme redis-server (par défaut : redis-server du PATH)\n"
          "      --with FICHIER     ajoute les sections de FICHIER à la configuration générée\n"
          "                         (équipe, catégories, réglages du matcher ou du notifier)\n"
          "  -h, --help             cette aide\n",
          out);
}

static void s_down_usage(FILE *out)
{
    fputs("Usage : maillage down --dir DIR [OPTIONS]\n"
          "\n"
          "Arrête la pile démarrée par `maillage up --dir DIR` : chaque démon dans l'ordre\n"
          "inverse (SIGTERM, puis SIGKILL après le délai), puis Redis ; supprime les fichiers\n"
          "de pid et DIR/endpoints.env. Les journaux et les données de Redis restent dans DIR.\n"
          "\n"
          "Options :\n"
          "  -d, --dir DIR          répertoire d'exécution\n"
          "      --timeout S        délai de grâce avant SIGKILL (10 par défaut)\n"
          "  -h, --help             cette aide\n",
          out);
}

/* Parse the options of up/down. Returns -1 to exit with *rc. */
static int s_options(int argc, char **argv, s_stack_t *st, int up, int *rc)
{
    static const struct option options[] = {{"dir", required_argument, NULL, 'd'},
                                            {"timeout", required_argument, NULL, 't'},
                                            {"redis-server", required_argument, NULL, 'r'},
                                            {"with", required_argument, NULL, 'w'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    const char *command = up ? "up" : "down";
    const char *dir = NULL;
    int opt;
    char *end;
    st->timeout_s = up ? 15 : 10;
    st->redis_server = "redis-server";
    while ((opt = cli_getopt(command, argc, argv, "hd:", options)) != -1) {
        switch (opt) {
        case '?':
            *rc = CLI_EXIT_USAGE;
            return -1;
        case 'h':
            (up ? s_up_usage : s_down_usage)(stdout);
            *rc = CLI_EXIT_OK;
            return -1;
        case 'd': dir = optarg; break;
        case 't': {
            long v = strtol(optarg, &end, 10);
            if (*end || v <= 0 || v > 3600) {
                cli_error(command, "--timeout : « %s » n'est pas un nombre de secondes de 1 à 3600", optarg);
                *rc = CLI_EXIT_USAGE;
                return -1;
            }
            st->timeout_s = (int)v;
            break;
        }
        case 'r':
        case 'w':
            if (up) {
                if (opt == 'r') st->redis_server = optarg;
                else st->with = optarg;
                break;
            }
            cli_error(command, "--%s ne va qu'avec « maillage up »", opt == 'r' ? "redis-server" : "with");
            *rc = CLI_EXIT_USAGE;
            return -1;
        default: /* not in the table */
            *rc = CLI_EXIT_USAGE;
            return -1;
        }
    }
    if (!dir || optind < argc) {
        cli_error(command, "%s (voir « maillage %s --help »)",
                  dir ? "argument inattendu" : "--dir DIR est obligatoire", command);
        *rc = CLI_EXIT_USAGE;
        return -1;
    }
    if (up && mkdir(dir, 0700) != 0 && errno != EEXIST) {
        cli_error(command, "impossible de créer %s : %s", dir, strerror(errno));
        *rc = CLI_EXIT_FAIL;
        return -1;
    }
    char resolved[PATH_MAX];
    if (!realpath(dir, resolved)) {
        cli_error(command, "%s : %s", dir, strerror(errno));
        *rc = CLI_EXIT_FAIL;
        return -1;
    }
    st->dir = mg_strdup(resolved);
    return 0;
}

/* Shell-quote `s` if it holds anything but safe characters. Caller frees. */
static char *s_shell_value(const char *s)
{
    if (strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/:._-+=,@") == strlen(s))
        return mg_strdup(s);
    size_t n = 3;
    for (const char *p = s; *p; p++) n += *p == '\'' ? 4 : 1;
    char *out = mg_malloc(n), *o = out;
    *o++ = '\'';
    for (const char *p = s; *p; p++) {
        if (*p == '\'') {
            memcpy(o, "'\\''", 4);
            o += 4;
        } else {
            *o++ = *p;
        }
    }
    *o++ = '\'';
    *o = '\0';
    return out;
}

int cli_cmd_up(int argc, char **argv, cli_settings_t *settings)
{
    s_stack_t st = {0};
    int rc = CLI_EXIT_FAIL;
    char exe[PATH_MAX];
    char *conf_path = NULL, *redis_conf = NULL, *env_path = NULL, *env_text = NULL, *conf_text = NULL;
    (void)settings;

    if (s_options(argc, argv, &st, 1, &rc) != 0) return rc;

    /* Refuse to start twice in one directory, saying what runs there and
     * what died (a crashed daemon beside a running Redis). */
    char running[256] = "", gone[256] = "";
    size_t running_len = 0, gone_len = 0;
    for (size_t i = 0; i < S_N_COMPONENTS; i++) {
        char *pidfile = s_path(&st, s_components[i], ".pid");
        pid_t pid = s_read_pid(pidfile);
        int alive = pid && s_alive(pid);
        if (alive && running_len < sizeof running)
            running_len +=
                (size_t)snprintf(running + running_len, sizeof running - running_len, "%s%s pid %d",
                                 running_len ? ", " : "", s_components[i], (int)pid);
        else if (pid && !alive && gone_len < sizeof gone)
            gone_len += (size_t)snprintf(gone + gone_len, sizeof gone - gone_len, "%s%s",
                                         gone_len ? ", " : "", s_components[i]);
        free(pidfile);
    }
    if (*running) {
        cli_error("up", "une pile tourne déjà dans %s (%s%s%s) ; arrêtez-la avec « maillage down --dir %s »",
                  st.dir, running, *gone ? " ; arrêtés depuis, voir leurs journaux : " : "", gone, st.dir);
        goto done;
    }
    for (size_t i = 0; i < S_N_COMPONENTS; i++) { /* stale pid files: the processes are gone */
        char *pidfile = s_path(&st, s_components[i], ".pid");
        unlink(pidfile);
        free(pidfile);
    }

    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        cli_error("up", "répertoire de ce programme introuvable : %s", strerror(errno));
        goto done;
    }
    exe[n] = '\0';
    *strrchr(exe, '/') = '\0';
    st.exe_dir = mg_strdup(exe);

    /* Endpoints. Redis on a unix socket when the path fits in sun_path. */
    s_socket_path(&st);
    if (st.redis_socket) {
        /* A Redis started by hand on this directory's data: a second one
         * would share its AOF, and the first to stop removes the socket. */
        if (s_redis_ping(&st, 1)) {
            cli_error("up",
                      "un Redis répond déjà sur %s sans que cette pile l'ait démarré (lancé à la main ?) ; "
                      "arrêtez-le avec « maillage down --dir %s »",
                      st.redis_socket, st.dir);
            goto done;
        }
        st.redis_url = mg_asprintf("unix://%s", st.redis_socket);
    }
    int taken[4] = {0};
    size_t n_taken = 0;
    char *previous_conf = s_path(&st, "maillage", ".conf");
    char *previous = s_read_file(previous_conf); /* NULL the first time */
    free(previous_conf);
    if (!st.redis_socket) {
        st.redis_port = s_port_again(previous, "url = redis://127.0.0.1:", taken, n_taken);
        taken[n_taken++] = st.redis_port;
        st.redis_url = mg_asprintf("redis://127.0.0.1:%d/0", st.redis_port);
    }
    st.ingest_port = s_port_again(previous, "ingest = tcp://127.0.0.1:", taken, n_taken);
    taken[n_taken++] = st.ingest_port;
    st.fanout_port = s_port_again(previous, "fanout = tcp://127.0.0.1:", taken, n_taken);
    taken[n_taken++] = st.fanout_port;
    /* The gateway's HTTP endpoint, once the schema has one. */
    if (s_daemon_exists(&st, 4) && s_schema_has("gateway", "listen")) {
        st.http_port = s_port_again(previous, "listen = 127.0.0.1:", taken, n_taken);
        taken[n_taken++] = st.http_port;
    }
    free(previous);
    if (!st.ingest_port || !st.fanout_port || (!st.redis_socket && !st.redis_port)) {
        cli_error("up", "aucun port libre trouvé sur la boucle locale");
        goto done;
    }

    /* The daemons' configuration: only keys of the schema, so every daemon
     * accepts it; the rest keeps its documented default. */
    conf_path = s_path(&st, "maillage", ".conf");
    char *extra = NULL;
    if (st.with && !(extra = s_read_file(st.with))) {
        cli_error("up", "impossible de lire %s : %s", st.with, strerror(errno));
        goto fail;
    }
    if (extra) { /* checked alone first: its mistakes at its own lines, not the generated file's */
        char err[512];
        mg_config_t *check = mg_config_load(st.with, err, sizeof err);
        if (!check) {
            cli_error("up", "--with refusé : %s", err);
            free(extra);
            goto fail;
        }
        mg_config_destroy(&check);
    }
    /* The messages' links go to this gateway, unless the caller's file says
     * where they go. */
    char *gateway_line =
        !st.http_port ? mg_strdup("")
        : extra && s_sets_key(extra, "staff_url")
            ? mg_asprintf("\n[gateway]\nlisten = 127.0.0.1:%d\n", st.http_port)
            : mg_asprintf(
                  "\n[gateway]\nlisten = 127.0.0.1:%d\n\n[notifier]\nstaff_url = http://127.0.0.1:%d/\n",
                  st.http_port, st.http_port);
    conf_text = mg_asprintf("# Written by `maillage up` for the embedded stack in %s.\n"
                            "# Every other key has its default: see `maillage config defaults`.\n"
                            "[log]\nlevel = info\n\n"
                            "[redis]\nurl = %s\n\n"
                            "[broker]\ningest = tcp://127.0.0.1:%d\nfanout = tcp://127.0.0.1:%d\n%s",
                            st.dir, st.redis_url, st.ingest_port, st.fanout_port, gateway_line);
    free(gateway_line);
    if (extra) {
        /* The caller's sections, after ours: the config loader refuses a key
         * set twice, so they may add sections but not override ours. */
        char *joined = mg_asprintf("%s\n# From %s:\n%s", conf_text, st.with, extra);
        free(extra);
        free(conf_text);
        conf_text = joined;
    }
    if (s_write_file(conf_path, conf_text, 0600) != 0) {
        cli_error("up", "impossible d'écrire %s : %s", conf_path, strerror(errno));
        goto fail;
    }
    {
        char err[512];
        mg_config_t *check = mg_config_load(conf_path, err, sizeof err);
        if (!check) {
            cli_error("up", "configuration générée refusée : %s", err);
            goto fail;
        }
        mg_config_destroy(&check);
    }
    /* Redis, once the configuration is known good (--with FILE read and
     * accepted: a bad one started and stopped a redis-server first). */
    char *redis_dir = s_path(&st, "redis", "");
    if (mkdir(redis_dir, 0700) != 0 && errno != EEXIST) {
        cli_error("up", "impossible de créer %s : %s", redis_dir, strerror(errno));
        free(redis_dir);
        goto done;
    }
    free(redis_dir);
    redis_conf = s_path(&st, "redis", ".conf");
    if (s_up_write_redis_conf(&st, redis_conf) != 0) {
        cli_error("up", "impossible d'écrire %s : %s", redis_conf, strerror(errno));
        goto done;
    }
    {
        char *argv_redis[] = {(char *)st.redis_server, redis_conf, NULL};
        if (s_start(&st, 0, argv_redis) != 0) goto fail;
    }

    for (size_t i = 1; i < S_N_COMPONENTS; i++) {
        if (!s_daemon_exists(&st, i)) continue;
        char *prog = s_program(&st, i);
        char *argv_daemon[] = {prog, "--config", conf_path, NULL};
        int started = s_start(&st, i, argv_daemon);
        free(prog);
        if (started != 0) goto fail;
    }

    /* endpoints.env last: its presence means the stack is ready. */
    char *v_redis = s_shell_value(st.redis_url), *v_dir = s_shell_value(st.dir), *v_conf = s_shell_value(conf_path);
    char *http = st.http_port ? mg_asprintf("MAILLAGE_HTTP=http://127.0.0.1:%d\n", st.http_port) : mg_strdup("");
    env_text = mg_asprintf("# Written by `maillage up`: the endpoints of the embedded stack.\n"
                           "# Use: . ./endpoints.env; export MAILLAGE_CONFIG MAILLAGE_REDIS_URL "
                           "MAILLAGE_INGEST MAILLAGE_FANOUT\n"
                           "MAILLAGE_DIR=%s\n"
                           "MAILLAGE_CONFIG=%s\n"
                           "MAILLAGE_REDIS_URL=%s\n"
                           "MAILLAGE_INGEST=tcp://127.0.0.1:%d\n"
                           "MAILLAGE_FANOUT=tcp://127.0.0.1:%d\n"
                           "%s",
                           v_dir, v_conf, v_redis, st.ingest_port, st.fanout_port, http);
    free(v_redis);
    free(v_dir);
    free(v_conf);
    free(http);
    env_path = s_path(&st, "endpoints", ".env");
    if (s_write_file(env_path, env_text, 0644) != 0) {
        cli_error("up", "impossible d'écrire %s : %s", env_path, strerror(errno));
        goto fail;
    }

    printf("Pile Maillage en marche dans %s\n", st.dir);
    for (size_t i = 0; i < S_N_COMPONENTS; i++) {
        if (!st.pids[i]) continue;
        char label[64];
        snprintf(label, sizeof label, "%s%s", i ? "maillage-" : "", i ? s_components[i] : "redis-server");
        printf("  %-20s pid %-8d log %s/%s.log\n", label, (int)st.pids[i], st.dir, s_components[i]);
    }
    printf("  redis   %s\n  ingest  tcp://127.0.0.1:%d\n  fan-out tcp://127.0.0.1:%d\n", st.redis_url,
           st.ingest_port, st.fanout_port);
    if (st.http_port) printf("  http    http://127.0.0.1:%d\n", st.http_port);
    printf("Points d'accès pour les scripts : %s\n", env_path);
    rc = CLI_EXIT_OK;
    goto done;

fail:
    s_rollback(&st);
done:
    free(conf_path);
    free(conf_text);
    free(redis_conf);
    free(env_path);
    free(env_text);
    free(st.dir);
    free(st.exe_dir);
    free(st.redis_url);
    free(st.redis_socket);
    return rc;
}

/* ---- down --------------------------------------------------------------- */

int cli_cmd_down(int argc, char **argv, cli_settings_t *settings)
{
    s_stack_t st = {0};
    int rc = CLI_EXIT_FAIL, stopped = 0, failed = 0;
    (void)settings;

    if (s_options(argc, argv, &st, 0, &rc) != 0) return rc;
    st.exe_dir = mg_strdup(""); /* only names are matched below */

    for (size_t i = S_N_COMPONENTS; i-- > 0;) {
        char *pidfile = s_path(&st, s_components[i], ".pid");
        pid_t pid = s_read_pid(pidfile);
        if (!pid) {
            free(pidfile);
            continue;
        }
        char *name = i == 0 ? mg_strdup("redis-server") : mg_asprintf("maillage-%s", s_components[i]);
        /* Redis is recognised by its directory too: `up --redis-server`
         * may have run a program of another name. */
        char *redis_dir = i == 0 ? s_path(&st, "redis", "") : NULL;
        int ours = s_runs(pid, name) || (redis_dir && s_works_in(pid, redis_dir));
        free(redis_dir);
        if (!s_alive(pid)) {
            /* Already gone (crashed, or killed by hand): said, since it may
             * be why the operator stops the stack. */
            char *log = s_path(&st, s_components[i], ".log");
            printf("%s (pid %d) était déjà arrêté ; voir %s\n", name, (int)pid, log);
            free(log);
        } else if (!ours) {
            cli_error("down", "attention : le pid %d de %s n'est plus %s ; aucun signal envoyé", (int)pid,
                      pidfile, name);
        } else {
            if (s_stop_pid(pid, st.timeout_s)) {
                cli_error("down", "attention : %s (pid %d) a ignoré SIGTERM pendant %d s ; tué (SIGKILL)",
                          name, (int)pid, st.timeout_s);
            }
            if (s_alive(pid)) {
                cli_error("down", "%s (pid %d) tourne encore", name, (int)pid);
                failed = 1;
                free(name);
                free(pidfile);
                continue;
            }
            printf("%s arrêté (pid %d)\n", name, (int)pid);
            stopped++;
        }
        unlink(pidfile);
        free(name);
        free(pidfile);
    }
    /* A Redis this stack did not start (by hand, after its own stopped)
     * that answers on the stack's socket: it serves the stack's data. */
    s_socket_path(&st);
    if (!failed && st.redis_socket && s_redis_ping(&st, 1)) {
        if (s_redis_shutdown(&st, st.timeout_s)) {
            printf("redis-server (sans fichier pid, sur %s) arrêté\n", st.redis_socket);
            stopped++;
        } else {
            cli_error("down", "le Redis qui répond sur %s ne s'est pas arrêté (SHUTDOWN)", st.redis_socket);
            failed = 1;
        }
    }
    free(st.redis_socket);
    char *env_path = s_path(&st, "endpoints", ".env");
    unlink(env_path);
    free(env_path);
    if (!stopped && !failed) fprintf(stderr, "maillage down: rien ne tournait dans %s\n", st.dir);
    rc = failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
    free(st.dir);
    free(st.exe_dir);
    return rc;
}
