/* curve.c -- CurveZMQ key files, the broker's allow-list and ZAP handler,
 * and the process-wide client keys; see curve.h.
 *
 * Why a ZAP handler rather than CURVE alone: a CURVE server accepts any
 * client that knows its public key, and the server's public key is not a
 * secret. The handler is what turns "someone who can speak CURVE" into "this
 * network, with these permissions", and its User-Id is what the broker
 * stamps as the source, so the envelope's own claim never matters. Its
 * reply also hands the client's key to the connection (the ZAP metadata
 * property Curve-Key), so that each message is checked against the list as
 * it is now: a key removed from it is cut off at once. */
#include "maillage/curve.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zmq.h>

#include "maillage/clock.h"
#include "maillage/envelope.h"
#include "maillage/log.h"
#include "maillage/mem.h"
#include "maillage/zsock.h"

#define S_ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define S_ZAP_DOMAIN "maillage"
#define S_KEY_PROPERTY "Curve-Key"
#define S_REFRESH_US   1000000 /* how often a message may look for a changed list */
#define S_LIST_MAX     (1 << 20) /* bytes of room for the allow-list */

/* ---- key files ------------------------------------------------------------- */

/* 1 if `text` is 40 characters of Z85 that decode to 32 bytes. */
static int s_key_is_valid(const char *text, uint8_t out[32]) {
    uint8_t scratch[32];
    if (strlen(text) != MG_CURVE_KEY_LEN) return 0;
    return zmq_z85_decode(out ? out : scratch, text) != NULL;
}

/* Read at most `cap` - 1 bytes of `path` into `buf` (their count in
 * `*len`), checking the file's mode: `forbidden` bits of group/others make
 * it refused. The bytes are as read: s_text_check() makes them text. */
static int s_read_file(const char *path, mode_t forbidden, const char *what, char *buf, size_t cap,
                       size_t *len, struct stat *st_out, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return mg_fail(err, errlen, "%s %s: %s", what, path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int saved = errno;
        close(fd);
        return mg_fail(err, errlen, "%s %s: %s", what, path, strerror(saved));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return mg_fail(err, errlen, "%s %s: not a regular file", what, path);
    }
    if (st.st_mode & forbidden) {
        close(fd);
        return mg_fail(err, errlen, "%s %s is accessible by group or others (mode %03o); chmod %s it", what,
                       path, (unsigned)(st.st_mode & 0777), (forbidden & S_IROTH) ? "600" : "go-w");
    }
    size_t used = 0;
    for (;;) {
        ssize_t n = read(fd, buf + used, cap - 1 - used);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int saved = errno;
            close(fd);
            return mg_fail(err, errlen, "%s %s: %s", what, path, strerror(saved));
        }
        if (n == 0) break;
        used += (size_t)n;
        if (used == cap - 1) {
            close(fd);
            return mg_fail(err, errlen, "%s %s: file too large", what, path);
        }
    }
    close(fd);
    *len = used;
    if (st_out) *st_out = st;
    return 0;
}

/* Make the `*len` bytes at `text` (room for one more) a C string of text:
 * refused with a NUL byte, which would end it early, silently (the lines
 * after it unread); a UTF-8 byte order mark (left by Windows editors) is
 * skipped, no part of the first line. `what` (may be "") and `path` name it
 * in messages. Returns 0, or -1 with one line in `err`. */
static int s_text_check(char *text, size_t *len, const char *what, const char *path, char *err,
                        size_t errlen) {
    const char *nul = memchr(text, '\0', *len);
    if (nul)
        return mg_fail(err, errlen, "%s%s%s: a NUL byte at offset %zu: not a text file", what,
                       *what ? " " : "", path, (size_t)(nul - text));
    size_t bom = mg_utf8_bom_len(text, *len);
    if (bom) memmove(text, text + bom, *len -= bom);
    text[*len] = '\0';
    return 0;
}

int mg_curve_key_load(const char *path, int secret, const char *what, char out[MG_CURVE_KEY_LEN + 1], char *err,
                      size_t errlen) {
    char buf[4096];
    size_t len;
    mode_t forbidden = secret ? (S_IRWXG | S_IRWXO) : (S_IWGRP | S_IWOTH);
    if (s_read_file(path, forbidden, what, buf, sizeof buf, &len, NULL, err, errlen) != 0 ||
        s_text_check(buf, &len, what, path, err, errlen) != 0)
        return -1;
    for (char *line = strtok(buf, "\r\n"); line; line = strtok(NULL, "\r\n")) {
        while (*line == ' ' || *line == '\t')
            line++;
        size_t n = strlen(line);
        while (n && (line[n - 1] == ' ' || line[n - 1] == '\t'))
            line[--n] = '\0';
        /* Z85 has '#' in its alphabet, so a comment is a '#' line that is
         * not a key. */
        if (n == 0 || (line[0] == '#' && !s_key_is_valid(line, NULL))) continue;
        if (!s_key_is_valid(line, NULL))
            return mg_fail(err, errlen, "%s %s: not a CurveZMQ key (40 characters of Z85 expected)", what,
                           path);
        memcpy(out, line, MG_CURVE_KEY_LEN + 1);
        return 0;
    }
    return mg_fail(err, errlen, "%s %s: no key in the file", what, path);
}

/* Create `path` exclusively with `mode` and write `text`. */
static int s_write_new(const char *path, mode_t mode, const char *text, char *err, size_t errlen) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) return mg_fail(err, errlen, "%s: %s", path, strerror(errno));
    size_t len = strlen(text), done = 0;
    while (done < len) {
        ssize_t n = write(fd, text + done, len - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int saved = errno;
            close(fd);
            unlink(path);
            return mg_fail(err, errlen, "%s: %s", path, strerror(saved));
        }
        done += (size_t)n;
    }
    /* The umask may have kept bits we asked for, never added any; make the
     * mode exact so a secret key is 0600 whatever the umask. */
    if (fchmod(fd, mode) != 0 || close(fd) != 0) {
        int saved = errno;
        unlink(path);
        return mg_fail(err, errlen, "%s: %s", path, strerror(saved));
    }
    return 0;
}

int mg_curve_key_name_is_valid(const char *name) {
    return mg_id_is_valid(name) && name[0] != '.';
}

int mg_curve_keygen(const char *dir, const char *name, char *err, size_t errlen) {
    if (!mg_curve_key_name_is_valid(name))
        return mg_fail(err, errlen, "name \"%s\": expected [A-Za-z0-9._:-], 1 to %d characters", name,
                       MG_ID_MAX);
    char public_key[MG_CURVE_KEY_LEN + 1], secret_key[MG_CURVE_KEY_LEN + 1];
    if (zmq_curve_keypair(public_key, secret_key) != 0)
        return mg_fail(err, errlen, "zmq_curve_keypair: %s (libzmq built without CURVE?)",
                       zmq_strerror(errno));
    char *key_path = mg_asprintf("%s/%s.key", dir, name);
    char *pub_path = mg_asprintf("%s/%s.pub", dir, name);
    char *key_text = mg_asprintf("# CurveZMQ secret key of \"%s\" (Maillage). Keep it private: mode 0600.\n%s\n",
                                 name, secret_key);
    char *pub_text = mg_asprintf("# CurveZMQ public key of \"%s\" (Maillage).\n%s\n", name, public_key);
    int rc = -1;
    struct stat st;
    if (stat(key_path, &st) == 0 || stat(pub_path, &st) == 0) {
        /* Only `maillage keygen` makes keys: this is said to an operator, in French. */
        mg_fail(err, errlen, "%s/%s.key ou .pub existe déjà : une clé n'est jamais écrasée", dir, name);
    } else if (s_write_new(key_path, 0600, key_text, err, errlen) == 0) {
        if (s_write_new(pub_path, 0644, pub_text, err, errlen) == 0)
            rc = 0;
        else
            unlink(key_path);
    }
    memset(secret_key, 0, sizeof secret_key);
    memset(key_text, 0, strlen(key_text));
    free(key_path);
    free(pub_path);
    free(key_text);
    free(pub_text);
    return rc;
}

/* ---- client side -------------------------------------------------------------- */

static struct {
    int enabled;
    char secret[MG_CURVE_KEY_LEN + 1], public_key[MG_CURVE_KEY_LEN + 1], server[MG_CURVE_KEY_LEN + 1];
    /* where the two files were named, for messages: "[curve] ..." or the
     * environment variable that overrode it */
    const char *secret_from, *server_from;
} s_client;

int mg_curve_client_setup(const mg_config_t *cfg, const char *secret_file, const char *server_file, char *err,
                          size_t errlen) {
    mg_curve_client_reset();
    /* [curve] client_public_key_file describes [curve]'s secret key, not one
     * given instead of it. */
    int secret_overridden = secret_file && *secret_file;
    if (!secret_overridden) secret_file = mg_config_str(cfg, "curve", "client_secret_key_file");
    int server_overridden = server_file && *server_file;
    if (!server_overridden) server_file = mg_config_str(cfg, "curve", "server_public_key_file");
    s_client.secret_from = secret_overridden ? "MAILLAGE_CLIENT_KEY" : "[curve] client_secret_key_file";
    s_client.server_from = server_overridden ? "MAILLAGE_SERVER_KEY" : "[curve] server_public_key_file";
    const char *public_file = mg_config_str(cfg, "curve", "client_public_key_file");
    if (!*secret_file) {
        if (*server_file)
            return mg_fail(err, errlen,
                           "%s is set but [curve] client_secret_key_file (or MAILLAGE_CLIENT_KEY) is not: "
                           "a CURVE client needs both",
                           s_client.server_from);
        return 0;
    }
    if (!*server_file)
        return mg_fail(err, errlen,
                       "%s is set but [curve] server_public_key_file (or MAILLAGE_SERVER_KEY) is not: "
                       "a CURVE client needs the broker's public key",
                       s_client.secret_from);
    if (mg_curve_key_load(secret_file, 1, s_client.secret_from, s_client.secret, err, errlen) != 0 ||
        mg_curve_key_load(server_file, 0, s_client.server_from, s_client.server, err, errlen) != 0)
        goto err;
    if (zmq_curve_public(s_client.public_key, s_client.secret) != 0) {
        mg_fail(err, errlen, "zmq_curve_public: %s", zmq_strerror(errno));
        goto err;
    }
    if (*public_file && !secret_overridden) {
        char declared[MG_CURVE_KEY_LEN + 1];
        if (mg_curve_key_load(public_file, 0, "[curve] client_public_key_file", declared, err, errlen) != 0)
            goto err;
        if (strcmp(declared, s_client.public_key) != 0) {
            mg_fail(err, errlen, "[curve] client_public_key_file %s is not the public key of %s", public_file,
                    secret_file);
            goto err;
        }
    }
    s_client.enabled = 1;
    return 0;
err:
    mg_curve_client_reset();
    return -1;
}

int mg_curve_client_enabled(void) {
    return s_client.enabled;
}

int mg_curve_client_apply(void *socket) {
    if (!s_client.enabled) return 0;
    if (zmq_setsockopt(socket, ZMQ_CURVE_SERVERKEY, s_client.server, MG_CURVE_KEY_LEN) != 0 ||
        zmq_setsockopt(socket, ZMQ_CURVE_PUBLICKEY, s_client.public_key, MG_CURVE_KEY_LEN) != 0 ||
        zmq_setsockopt(socket, ZMQ_CURVE_SECRETKEY, s_client.secret, MG_CURVE_KEY_LEN) != 0)
        return -1;
    return 0;
}

int mg_curve_handshake_failure(unsigned event, unsigned value, char *why, size_t whylen) {
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
        snprintf(why, whylen,
                 "the broker refused this program's CURVE key (ZAP status %u): add its public key to the "
                 "broker's [broker] curve_clients_file, or check %s",
                 value, s_client.enabled ? s_client.secret_from : "[curve] client_secret_key_file");
        return 1;
    }
    if (event != ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL && event != ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
        return 0;
    if (s_client.enabled)
        snprintf(why, whylen,
                 "the CURVE handshake with the broker failed: check that %s is "
                 "the broker's public key and that the broker has curve_secret_key_file",
                 s_client.server_from);
    else
        snprintf(why, whylen,
                 "the handshake with the broker failed: it may require CURVE (set [curve] "
                 "client_secret_key_file and server_public_key_file, see SECURITY.md)");
    return 1;
}

void mg_curve_client_reset(void) {
    memset(&s_client, 0, sizeof s_client);
}

/* ---- broker side: allow-list ------------------------------------------------------- */

typedef struct {
    char network[MG_ID_MAX + 1];
    uint8_t key[32];
    char **patterns; /* "need.*" kept as the prefix "need.", "*" as "" with prefix set */
    int *prefix;
    size_t pattern_count;
} s_client_t;

typedef struct {
    s_client_t *clients;
    size_t count;
} s_allow_list_t;

struct mg_curve_server {
    struct event_base *base;
    void *zap_socket;
    mg_zsock_t *zap;
    char secret[MG_CURVE_KEY_LEN + 1];
    const char *clients_path; /* borrowed from the config */
    struct stat clients_stat; /* of the list in memory, to notice a change */
    int64_t checked_us;       /* when a message last looked for a change */
    s_allow_list_t list;
    /* The last version of the file read that is not the list in use: refused
     * (load_error says why), or a list that takes something away, pending
     * until it has stayed unchanged for S_SETTLE_US (since pending_since_us;
     * pending_first_us: since the first version of a run of them). */
    struct stat seen_stat;
    int64_t seen_us;
    char load_error[512];
    int has_pending;
    s_allow_list_t pending;
    int64_t pending_since_us, pending_first_us;
    unsigned long long revocations; /* reloads that took a key away */
    unsigned long long allowed, denied;
};

static void s_list_clear(s_allow_list_t *list) {
    for (size_t i = 0; i < list->count; i++) {
        for (size_t j = 0; j < list->clients[i].pattern_count; j++)
            free(list->clients[i].patterns[j]);
        free(list->clients[i].patterns);
        free(list->clients[i].prefix);
    }
    free(list->clients);
    list->clients = NULL;
    list->count = 0;
}

/* Parse "type,prefix.*,..." (or "-" for none) into `c`. */
static int s_parse_types(s_client_t *c, char *types, const char *path, int line_no, char *err, size_t errlen) {
    if (strcmp(types, "-") == 0) return 0;
    for (char *save = NULL, *t = strtok_r(types, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        size_t n = strlen(t);
        int prefix = 0;
        if (n >= 1 && t[n - 1] == '*') {
            prefix = 1;
            t[--n] = '\0';
        }
        for (size_t i = 0; i < n; i++) {
            char ch = t[i];
            if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '_'))
                return mg_fail(err, errlen,
                               "%s:%d: event type pattern \"%s\": expected types like need.reported, "
                               "need.* or *",
                               path, line_no, t);
        }
        if (n == 0 && !prefix) continue;
        c->patterns = mg_realloc(c->patterns, (c->pattern_count + 1) * sizeof(*c->patterns));
        c->prefix = mg_realloc(c->prefix, (c->pattern_count + 1) * sizeof(*c->prefix));
        c->patterns[c->pattern_count] = mg_strdup(t);
        c->prefix[c->pattern_count] = prefix;
        c->pattern_count++;
    }
    return 0;
}

/* Parse the allow-list of the `len` bytes at `text` (room for one more;
 * changed) into `out` (cleared first). `what` and `path` name it in
 * messages: "PATH:LINE: reason". Returns 0, or -1 with one line in `err`
 * and `out` empty. */
static int s_list_parse(char *text, size_t len, const char *what, const char *path, s_allow_list_t *out,
                        char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (s_text_check(text, &len, what, path, err, errlen) != 0) return -1;
    int line_no = 0;
    char *save_line = NULL;
    /* strtok_r on '\n' skips empty lines, so count lines by hand. */
    for (char *line = text; line && *line;) {
        char *next = strchr(line, '\n');
        if (next) *next++ = '\0';
        line_no++;
        /* Comments are whole lines: Z85 keys may contain '#'. */
        const char *first = line + strspn(line, " \t\r");
        if (*first == '#') {
            line = next;
            continue;
        }
        char *network = strtok_r(line, " \t\r", &save_line);
        char *key = network ? strtok_r(NULL, " \t\r", &save_line) : NULL;
        char *types = key ? strtok_r(NULL, " \t\r", &save_line) : NULL;
        char *extra = types ? strtok_r(NULL, " \t\r", &save_line) : NULL;
        line = next;
        if (!network) continue;
        /* The types column is required: a forgotten one must not quietly
         * mean "may emit nothing" ("-" says so). */
        if (!types || extra) {
            mg_fail(err, errlen, "%s:%d: expected \"network_id  PUBLIC_KEY  allowed-types\"", path, line_no);
            goto err;
        }
        if (!mg_id_is_valid(network)) {
            mg_fail(err, errlen, "%s:%d: network \"%s\": not a valid id", path, line_no, network);
            goto err;
        }
        out->clients = mg_realloc(out->clients, (out->count + 1) * sizeof(*out->clients));
        s_client_t *c = &out->clients[out->count++];
        memset(c, 0, sizeof *c);
        snprintf(c->network, sizeof c->network, "%s", network);
        if (!s_key_is_valid(key, c->key)) {
            mg_fail(err, errlen, "%s:%d: not a CurveZMQ public key (40 characters of Z85 expected)", path,
                    line_no);
            goto err;
        }
        for (size_t i = 0; i + 1 < out->count; i++) {
            if (memcmp(out->clients[i].key, c->key, 32) == 0) {
                mg_fail(err, errlen, "%s:%d: this key is already listed for \"%s\"", path, line_no,
                        out->clients[i].network);
                goto err;
            }
        }
        if (s_parse_types(c, types, path, line_no, err, errlen) != 0) goto err;
    }
    return 0;
err:
    s_list_clear(out);
    return -1;
}

/* Read the allow-list at `path` into `out` (cleared first). */
static int s_list_load(const char *path, s_allow_list_t *out, struct stat *st, char *err, size_t errlen) {
    static const char what[] = "[broker] curve_clients_file";
    char *buf = mg_malloc(S_LIST_MAX);
    size_t len;
    memset(out, 0, sizeof *out);
    int rc = s_read_file(path, S_IWGRP | S_IWOTH, what, buf, S_LIST_MAX, &len, st, err, errlen) == 0
                 ? s_list_parse(buf, len, what, path, out, err, errlen)
                 : -1;
    free(buf);
    return rc;
}

int mg_curve_allow_list_check(const char *text, size_t len, char *err, size_t errlen) {
    /* The bound s_list_load() puts on a file. */
    if (len >= S_LIST_MAX - 1) return mg_fail(err, errlen, "allow-list: file too large");
    char *copy = mg_malloc(len + 1);
    memcpy(copy, text, len);
    s_allow_list_t list;
    int rc = s_list_parse(copy, len, "", "allow-list", &list, err, errlen);
    free(copy);
    if (rc != 0) return -1;
    int count = (int)list.count; /* at most one per 41 bytes of 1 MiB */
    s_list_clear(&list);
    return count;
}

static const s_client_t *s_find_key(const s_allow_list_t *list, const uint8_t key[32]) {
    for (size_t i = 0; i < list->count; i++)
        if (memcmp(list->clients[i].key, key, 32) == 0) return &list->clients[i];
    return NULL;
}

/* Whether `a` and `b` describe the same version of a file. The change time
 * and the mode count too: a chmod or chown may be what makes a refused file
 * readable. */
static int s_same_file(const struct stat *a, const struct stat *b) {
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
           a->st_mode == b->st_mode && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
           a->st_mtim.tv_nsec == b->st_mtim.tv_nsec && a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
           a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* What `list` takes away from `was`: 0 nothing (it may add), 1 an event type
 * pattern of a key, 2 a key (removed, or named for another network). */
static int s_list_takes_away(const s_allow_list_t *was, const s_allow_list_t *list) {
    int taken = 0;
    for (size_t i = 0; i < was->count; i++) {
        const s_client_t *before = &was->clients[i], *now = s_find_key(list, before->key);
        if (!now || strcmp(now->network, before->network) != 0) return 2;
        for (size_t j = 0; j < before->pattern_count && !taken; j++) {
            int kept = 0;
            for (size_t k = 0; k < now->pattern_count && !kept; k++)
                kept =
                    now->prefix[k] == before->prefix[j] && strcmp(now->patterns[k], before->patterns[j]) == 0;
            taken = !kept;
        }
    }
    return taken;
}

/* A list that takes something away is applied once its file has stayed
 * unchanged this long, by the broker's clock: an editor or `cat >` truncates
 * the file before writing it, and an empty or cut list read in between
 * would refuse every key after the cut. A file that keeps changing is
 * applied after S_SETTLE_MAX_US all the same. */
#define S_SETTLE_US     800000
#define S_SETTLE_MAX_US 5000000

static void s_list_apply(mg_curve_server_t *server, s_allow_list_t *list, const struct stat *st, int taken) {
    if (taken == 2) server->revocations++;
    s_list_clear(&server->list);
    server->list = *list;
    memset(list, 0, sizeof *list);
    server->clients_stat = *st;
    mg_info("broker: CURVE allow-list reloaded: %zu client key(s)", server->list.count);
}

/* Read the list again if the file changed since (a key added or removed).
 * A broken file keeps the previous list (refusing every network because of
 * a typo would be a self-inflicted outage), is logged once per reason, and
 * is read again every S_REFRESH_US until it loads: a chmod, or a read error
 * that passes, is picked up. A list that only adds is applied at once; one
 * that takes something away once it has settled (S_SETTLE_US). */
static void s_list_refresh(mg_curve_server_t *server) {
    struct stat st;
    if (stat(server->clients_path, &st) != 0 || s_same_file(&st, &server->clients_stat)) return;
    int64_t now = mg_clock_monotonic_us();
    if (s_same_file(&st, &server->seen_stat)) {
        if (server->has_pending) {
            if (now - server->pending_since_us >= S_SETTLE_US) {
                s_list_apply(server, &server->pending, &st,
                             s_list_takes_away(&server->list, &server->pending));
                server->has_pending = 0;
            }
            return;
        }
        if (now - server->seen_us < S_REFRESH_US) return; /* refused: not at every handshake */
    }
    server->seen_stat = st;
    server->seen_us = now;
    char err[512];
    s_allow_list_t list;
    struct stat after;
    if (s_list_load(server->clients_path, &list, &st, err, sizeof err) != 0) {
        if (strcmp(err, server->load_error) != 0)
            mg_error("broker: CURVE allow-list not reloaded, keeping the previous one: %s", err);
        snprintf(server->load_error, sizeof server->load_error, "%s", err);
        s_list_clear(&server->pending); /* a version superseded by this one */
        server->has_pending = 0;
        return;
    }
    server->load_error[0] = '\0';
    if (stat(server->clients_path, &after) != 0 || !s_same_file(&after, &st)) {
        /* Changed while it was read (truncated under the read, say): the
         * next look reads it again. */
        memset(&server->seen_stat, 0, sizeof server->seen_stat);
        s_list_clear(&list);
        return;
    }
    server->seen_stat = st;
    int taken = s_list_takes_away(&server->list, &list);
    if (taken && !(server->has_pending && now - server->pending_first_us >= S_SETTLE_MAX_US)) {
        if (!server->has_pending) {
            server->pending_first_us = now;
            mg_info(
                "broker: CURVE allow-list changed and takes %s away: applied once the file has not changed "
                "for %d ms",
                taken == 2 ? "a key" : "an event type", S_SETTLE_US / 1000);
        }
        s_list_clear(&server->pending);
        server->pending = list;
        server->has_pending = 1;
        server->pending_since_us = now;
        return;
    }
    if (taken)
        mg_warn("broker: CURVE allow-list still changing after %d s: applying its latest version",
                S_SETTLE_MAX_US / 1000000);
    s_list_clear(&server->pending);
    server->has_pending = 0;
    s_list_apply(server, &list, &st, taken);
}

unsigned long long mg_curve_server_refresh(mg_curve_server_t *server) {
    server->checked_us = mg_clock_monotonic_us();
    s_list_refresh(server);
    return server->revocations;
}

const char *mg_curve_server_source(mg_curve_server_t *server, zmq_msg_t *frame, char *out, size_t outlen) {
    /* The handler's properties (User-Id, Curve-Key) take precedence over
     * any a client sends of its own in the handshake: libzmq inserts them
     * first and does not overwrite them. */
    const char *key_text = zmq_msg_gets(frame, S_KEY_PROPERTY);
    uint8_t key[32];
    if (!zmq_msg_gets(frame, "User-Id") || !key_text || strlen(key_text) != MG_CURVE_KEY_LEN ||
        !zmq_z85_decode(key, key_text))
        return NULL;
    if (mg_clock_monotonic_us() - server->checked_us >= S_REFRESH_US) mg_curve_server_refresh(server);
    const s_client_t *c = s_find_key(&server->list, key);
    if (!c || (size_t)snprintf(out, outlen, "%s", c->network) >= outlen) return NULL;
    return out;
}

/* Does a line of `network` name `word` in its types, as such (not through a
 * pattern: "*" grants every event type, not this)? */
static int s_has_word(const mg_curve_server_t *server, const char *network, const char *word) {
    for (size_t i = 0; i < server->list.count; i++) {
        const s_client_t *c = &server->list.clients[i];
        if (strcmp(c->network, network) != 0) continue;
        for (size_t j = 0; j < c->pattern_count; j++)
            if (!c->prefix[j] && strcmp(c->patterns[j], word) == 0) return 1;
    }
    return 0;
}

int mg_curve_server_may_relay(mg_curve_server_t *server, const char *network) {
    return s_has_word(server, network, "relay");
}

int mg_curve_server_is_steward(mg_curve_server_t *server, const char *network) {
    /* "match.found" written as such: "*" or "match.*" grant the type, not this. */
    return s_has_word(server, network, "steward") || s_has_word(server, network, "match.found");
}

int mg_curve_server_allows(mg_curve_server_t *server, const char *network, const char *type) {
    for (size_t i = 0; i < server->list.count; i++) {
        const s_client_t *c = &server->list.clients[i];
        if (strcmp(c->network, network) != 0) continue;
        /* A network may have several keys (a rotation in progress): any of
         * its lines may grant the type. */
        for (size_t j = 0; j < c->pattern_count; j++) {
            const char *p = c->patterns[j];
            if (c->prefix[j] ? strncmp(type, p, strlen(p)) == 0 : strcmp(type, p) == 0) return 1;
        }
    }
    return 0;
}

/* ---- broker side: the ZAP handler ----------------------------------------------- */

/* One ZAP request (RFC 27): [version][request id][domain][address]
 * [routing id][mechanism][credentials...]; for CURVE one credential, the
 * client's 32-byte public key. Answered at once, in the loop. */
static void s_on_zap(mg_zsock_t *zsock, zmq_msg_t *frames, size_t frame_count, void *arg) {
    mg_curve_server_t *server = arg;
    const char *status = "400", *text = "unknown client key", *user = "";
    uint8_t metadata[1 + sizeof S_KEY_PROPERTY - 1 + 4 + MG_CURVE_KEY_LEN];
    size_t metadata_len = 0;
    char address[64] = "?";
    char key_text[MG_CURVE_KEY_LEN + 1] = "?";
    const void *request_id = "";
    size_t request_id_len = 0;
    if (frame_count >= 2) {
        request_id = zmq_msg_data(&frames[1]);
        request_id_len = zmq_msg_size(&frames[1]);
    }
    if (frame_count >= 4) {
        size_t n = zmq_msg_size(&frames[3]);
        if (n >= sizeof address) n = sizeof address - 1;
        memcpy(address, zmq_msg_data(&frames[3]), n);
        address[n] = '\0';
    }
    if (frame_count == 7 && zmq_msg_size(&frames[0]) == 3 && memcmp(zmq_msg_data(&frames[0]), "1.0", 3) == 0 &&
        zmq_msg_size(&frames[5]) == 5 && memcmp(zmq_msg_data(&frames[5]), "CURVE", 5) == 0 &&
        zmq_msg_size(&frames[6]) == 32) {
        s_list_refresh(server);
        const uint8_t *key = zmq_msg_data(&frames[6]);
        zmq_z85_encode(key_text, key, 32);
        const s_client_t *c = s_find_key(&server->list, key);
        if (c) {
            status = "200";
            text = "OK";
            user = c->network;
            /* One ZMTP property: name length, name, value length (4 bytes,
             * network order), value. */
            uint8_t *m = metadata;
            *m++ = (uint8_t)(sizeof S_KEY_PROPERTY - 1);
            memcpy(m, S_KEY_PROPERTY, sizeof S_KEY_PROPERTY - 1);
            m += sizeof S_KEY_PROPERTY - 1;
            *m++ = 0, *m++ = 0, *m++ = 0, *m++ = MG_CURVE_KEY_LEN;
            memcpy(m, key_text, MG_CURVE_KEY_LEN);
            metadata_len = sizeof metadata;
        }
    } else {
        text = "CURVE required";
    }
    if (*user) {
        server->allowed++;
        mg_debug("broker: CURVE: %s authenticated as \"%s\"", address, user);
    } else {
        unsigned long long n = ++server->denied;
        /* A refused client reconnects every few hundred ms: powers of two
         * keep the log readable while still showing it goes on. */
        if ((n & (n - 1)) == 0)
            mg_warn("broker: CURVE: connection from %s refused (%s, key %s; %llu refusal(s) so far)", address,
                    text, key_text, n);
    }
    const void *reply[6] = {"1.0", request_id, status, text, user, metadata};
    size_t lens[6] = {3, request_id_len, 3, strlen(text), strlen(user), metadata_len};
    if (mg_zsock_send(zsock, reply, lens, 6) != 0)
        mg_warn("broker: CURVE: ZAP reply not sent: %s", zmq_strerror(errno));
}

/* Read the broker's secret key and its allow-list, as [broker] names them,
 * into `server`. Returns 0, or -1 with one line in `err`. */
static int s_server_load(mg_curve_server_t *server, const mg_config_t *cfg, char *err, size_t errlen) {
    server->clients_path = mg_config_str(cfg, "broker", "curve_clients_file");
    const char *secret_file = mg_config_str(cfg, "broker", "curve_secret_key_file");
    if (mg_curve_key_load(secret_file, 1, "[broker] curve_secret_key_file", server->secret, err, errlen) != 0)
        return -1;
    if (!*server->clients_path)
        return mg_fail(err, errlen,
                       "[broker] curve_secret_key_file is set but curve_clients_file is not: "
                       "without an allow-list no client could connect");
    return s_list_load(server->clients_path, &server->list, &server->clients_stat, err, errlen);
}

int mg_curve_server_check(const mg_config_t *cfg, char *err, size_t errlen) {
    if (!*mg_config_str(cfg, "broker", "curve_secret_key_file")) {
        if (*mg_config_str(cfg, "broker", "curve_clients_file"))
            return mg_fail(err, errlen,
                           "[broker] curve_clients_file is set but curve_secret_key_file is not");
        return 0;
    }
    mg_curve_server_t server;
    memset(&server, 0, sizeof server);
    int rc = s_server_load(&server, cfg, err, errlen);
    s_list_clear(&server.list);
    explicit_bzero(server.secret, sizeof server.secret);
    return rc;
}

mg_curve_server_t *mg_curve_server_new(struct event_base *base, void *zmq_context, const mg_config_t *cfg,
                                       char *err, size_t errlen) {
    mg_curve_server_t *server = mg_calloc(1, sizeof *server);
    server->base = base;
    if (s_server_load(server, cfg, err, errlen) != 0) goto err;
    server->zap_socket = zmq_socket(zmq_context, ZMQ_REP);
    if (!server->zap_socket) {
        mg_fail(err, errlen, "zmq_socket: %s", zmq_strerror(errno));
        goto err;
    }
    int linger = 0;
    zmq_setsockopt(server->zap_socket, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(server->zap_socket, S_ZAP_ENDPOINT) != 0) {
        mg_fail(err, errlen, "ZAP handler %s: %s", S_ZAP_ENDPOINT, zmq_strerror(errno));
        goto err;
    }
    server->zap = mg_zsock_new(base, server->zap_socket, 64, s_on_zap, NULL, server);
    if (!server->zap) {
        mg_fail(err, errlen, "cannot watch the ZAP socket: %s", strerror(errno));
        goto err;
    }
    mg_info("broker: CURVE on: %zu client key(s) in %s", server->list.count, server->clients_path);
    return server;
err:
    mg_curve_server_destroy(&server);
    return NULL;
}

int mg_curve_server_apply(const mg_curve_server_t *server, void *socket) {
    int one = 1;
    char public_key[MG_CURVE_KEY_LEN + 1];
    if (zmq_curve_public(public_key, server->secret) != 0) return -1;
    if (zmq_setsockopt(socket, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
        zmq_setsockopt(socket, ZMQ_CURVE_SECRETKEY, server->secret, MG_CURVE_KEY_LEN) != 0 ||
        zmq_setsockopt(socket, ZMQ_CURVE_PUBLICKEY, public_key, MG_CURVE_KEY_LEN) != 0 ||
        zmq_setsockopt(socket, ZMQ_ZAP_DOMAIN, S_ZAP_DOMAIN, strlen(S_ZAP_DOMAIN)) != 0)
        return -1;
    return 0;
}

unsigned long long mg_curve_server_denied(const mg_curve_server_t *server) {
    return server->denied;
}

unsigned long long mg_curve_server_allowed(const mg_curve_server_t *server) {
    return server->allowed;
}

void mg_curve_server_destroy(mg_curve_server_t **server_p) {
    if (!server_p || !*server_p) return;
    mg_curve_server_t *server = *server_p;
    mg_zsock_destroy(&server->zap);
    if (server->zap_socket) zmq_close(server->zap_socket);
    s_list_clear(&server->list);
    s_list_clear(&server->pending);
    memset(server->secret, 0, sizeof server->secret);
    free(server);
    *server_p = NULL;
}
