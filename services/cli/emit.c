/* emit.c -- `maillage emit [FILE]`: send events to the broker like any
 * network system would, and print each acknowledgment.
 *
 * Input: proto3 JSON Envelopes, one per line (NDJSON), from FILE or stdin.
 * Blank lines and lines starting with '#' are skipped. A line that is not a
 * valid Envelope in proto3 JSON is reported with its number and skipped; the
 * others are still sent.
 *
 * Protocol: one DEALER, one frame per Envelope, one Ack frame back per
 * Envelope, in any order. Up to --window envelopes are in flight; each is
 * kept (by event_id) until its ack arrives. An envelope without an answer
 * after --retry-ms is sent again with the SAME event_id (the broker journals
 * an id once, so a retry is always safe); one held back by the network's
 * rate limit is sent again after a growing backoff. An UNAVAILABLE answer
 * (journal down) stalls the whole emitter: no new line is sent, and only the
 * first line held back probes the journal, after a growing backoff; once it
 * is accepted, the others go again in the order of their lines, so that a
 * need's report and its update are journaled in the order they were
 * written (each sent again on its own backoff, they came in any order).
 * After --timeout seconds without any answer about it, an event is reported
 * as lost and the exit code says so. An answer starts the count again, the
 * rate limit's "not now" too (the broker takes the network's events at its
 * pace), but not an unavailable journal's (it takes none). The rate limit
 * also narrows the window (halved, at most once per S_NARROW_US; one more
 * per accepted event), so that events wait in the file rather than in
 * flight. A line with the event_id of one in flight is sent too if it is
 * the same envelope (each line then prints one of the
 * answers); with other content it waits for that answer, then is sent in
 * turn and gets the broker's answer to its own bytes. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

#include "cli.h"
#include "maillage/clock.h"
#include "maillage/curve.h"
#include "maillage/json.h"
#include "maillage/mem.h"

#define S_BUCKETS 4096
#define S_QUIET_US   1000000 /* an answer later than this after a send is no answer */
#define S_SILENCE_US 3000000 /* no answer at all this long after the first send: said at once */
#define S_LINE_MAX (16u * 1024u * 1024u)
#define S_READ_CHUNK 65536
#define S_NARROW_US  200000

/* ---- line reader ---------------------------------------------------------
 * Reads the input fd itself (not stdio) so the main loop can poll the fd
 * together with the socket: acks keep flowing while a pipe is idle. */

typedef struct {
    int fd;
    char *buf;
    size_t start, len, cap;
    int eof;
    int skipping; /* discarding the rest of an over-long line */
    long line_no;
} s_reader_t;

/* The next complete line (NUL-terminated, borrowed until the next call), or
 * NULL when more input is needed (or at the end). `too_long` is set when a
 * line was dropped for exceeding S_LINE_MAX. */
static char *s_reader_next(s_reader_t *r, size_t *len_out, int *too_long)
{
    *too_long = 0;
    for (;;) {
        char *begin = r->buf + r->start;
        size_t avail = r->len - r->start;
        char *nl = avail ? memchr(begin, '\n', avail) : NULL;
        if (r->skipping) {
            if (!nl && !r->eof) {
                r->start = r->len = 0;
                return NULL;
            }
            /* The over-long line ends here, or at the end of the input. */
            r->start = nl ? r->start + (size_t)(nl - begin) + 1 : r->len;
            r->skipping = 0;
            r->line_no++;
            *too_long = 1;
            return NULL;
        }
        if (nl) {
            *nl = '\0';
            r->start += (size_t)(nl - begin) + 1;
            r->line_no++;
            *len_out = (size_t)(nl - begin);
            return begin;
        }
        if (r->eof && avail) {
            r->buf[r->len] = '\0'; /* cap always leaves room for it */
            r->start = r->len;
            r->line_no++;
            *len_out = avail;
            return begin;
        }
        if (avail > S_LINE_MAX) {
            r->skipping = 1;
            continue;
        }
        return NULL;
    }
}

/* Read once from the fd (blocking for files, ready for pipes: the caller
 * polled). Returns 0, or -1 on a read error. */
static int s_reader_fill(s_reader_t *r)
{
    if (r->start > 0) { /* compact */
        memmove(r->buf, r->buf + r->start, r->len - r->start);
        r->len -= r->start;
        r->start = 0;
    }
    if (r->cap - r->len < S_READ_CHUNK + 1) {
        r->cap = r->cap * 2 + S_READ_CHUNK + 1;
        r->buf = mg_realloc(r->buf, r->cap);
    }
    ssize_t n = read(r->fd, r->buf + r->len, S_READ_CHUNK);
    if (n < 0) return errno == EINTR || errno == EAGAIN ? 0 : -1;
    if (n == 0) r->eof = 1;
    r->len += (size_t)n;
    return 0;
}

/* Whether a complete line is waiting in the buffer. */
static int s_reader_has_line(const s_reader_t *r)
{
    size_t avail = r->len - r->start;
    return (avail && memchr(r->buf + r->start, '\n', avail)) || (r->eof && avail);
}

/* ---- in-flight envelopes -------------------------------------------------- */

/* A later line with the id of an envelope in flight but other bytes: sent
 * once that one is answered, so that each line gets the broker's answer to
 * its own content. */
typedef struct s_waiting {
    struct s_waiting *next;
    uint8_t *data;
    size_t len;
    long line;
    int copies; /* identical lines */
} s_waiting_t;

typedef struct s_pending {
    struct s_pending *next; /* hash chain */
    char *event_id;
    uint8_t *data;
    size_t len;
    long line;
    long earlier_line;    /* the first line of this id, when `data` is a later line's other content; else 0 */
    int64_t filled_at_ms; /* the occurredAtMs emit gave the first line, or 0 */
    s_waiting_t *waiting; /* later lines of this id with other bytes, in order */
    int copies;             /* the same id sent from several lines at once */
    int unanswered;         /* frames of `data` sent and not answered yet */
    int stale;              /* frames of an earlier line's content (same id) not answered yet:
                             * the next answers are theirs, not this line's (acks name only the id) */
    int64_t heard_us;       /* first sent, or last rate limited: for --timeout */
    int held_back;          /* last answered rate limited (1) or unavailable (2) */
    int64_t sent_us;        /* when a copy was last sent */
    int64_t resend_at_us;   /* when to send again without an answer */
    int64_t retry_us;       /* current retry interval (doubles) */
} s_pending_t;

typedef struct {
    void *socket;
    s_pending_t *table[S_BUCKETS];
    size_t pending;
    size_t waiting;           /* lines in the s_pending_t.waiting lists */
    int64_t next_deadline_us; /* earliest resend_at/timeout, or INT64_MAX */
    size_t limit;             /* in flight at most now: `window`, narrowed by the rate limit */
    int64_t narrowed_us;      /* when the rate limit last narrowed it */
    /* options */
    int quiet;
    size_t window;
    int64_t retry_us;
    int64_t timeout_us;
    size_t max_bytes; /* [broker] max_message_bytes: larger is refused here */
    /* outcome */
    const char *endpoint;
    size_t sent, accepted, duplicate, rejected, unreadable, lost;
    size_t too_large; /* read, but over max_bytes: not sent */
    size_t held; /* of `lost`, those whose last answer was "not now" */
    size_t acks; /* answers received at all: none means nobody is listening */
    int64_t first_sent_us; /* 0 before the first send */
    int silence_said;      /* the early "no answer yet" line was printed */
    int read_failed; /* the input could not be read to its end */
    int stalled;     /* the journal answered unavailable: see the top of this file */
    int unavailable_notice, rate_limited_notice;
    void *monitor;       /* PAIR reading libzmq's handshake events of `socket` */
    char handshake[256]; /* why the last handshake with the broker failed; "" after one succeeded */
} s_emit_t;

static uint32_t s_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h % S_BUCKETS;
}

static s_pending_t **s_find(s_emit_t *e, const char *event_id)
{
    s_pending_t **p = &e->table[s_hash(event_id)];
    while (*p && strcmp((*p)->event_id, event_id) != 0) p = &(*p)->next;
    return p;
}

static void s_pending_free(s_pending_t *p)
{
    while (p->waiting) {
        s_waiting_t *w = p->waiting;
        p->waiting = w->next;
        free(w->data);
        free(w);
    }
    free(p->event_id);
    free(p->data);
    free(p);
}

static void s_deadline(s_emit_t *e, int64_t at_us)
{
    if (at_us < e->next_deadline_us) e->next_deadline_us = at_us;
}

/* An answer saying "not now" (unavailable, the rate limit): the same bytes
 * again after a pause that doubles, up to 5 s, and within half of --timeout. */
static void s_back_off(s_emit_t *e, s_pending_t *p, int64_t now_us) {
    s_deadline(e, p->heard_us + e->timeout_us);
    p->retry_us = p->retry_us * 2 > 5000000 ? 5000000 : p->retry_us * 2;
    int64_t pause_us = p->retry_us / 4 + 100000;
    p->resend_at_us = now_us + (pause_us < e->timeout_us / 2 ? pause_us : e->timeout_us / 2);
    s_deadline(e, p->resend_at_us);
}

/* Send one frame without blocking. On a full queue (high-water mark), leave
 * it for the retry timer rather than stalling the acks. */
static void s_send(s_emit_t *e, s_pending_t *p, int64_t now_us)
{
    if (zmq_send(e->socket, p->data, p->len, ZMQ_DONTWAIT) >= 0) {
        p->unanswered++;
        p->sent_us = now_us;
        if (!e->first_sent_us) e->first_sent_us = now_us;
    } else if (errno != EAGAIN && errno != EINTR)
        cli_error("emit", "envoi impossible : %s", zmq_strerror(errno));
    p->resend_at_us = now_us + p->retry_us;
    s_deadline(e, p->resend_at_us);
}

/* Whether more lines may be put in flight now. */
static int s_may_send_more(const s_emit_t *e) {
    return e->pending < e->limit && !e->stalled;
}

static int s_by_line(const void *a, const void *b) {
    long la = (*(s_pending_t *const *)a)->line, lb = (*(s_pending_t *const *)b)->line;
    return (la > lb) - (la < lb);
}

/* The envelopes held back by an unavailable journal (held_back 2), in the
 * order of their lines: a new array of `*n` (NULL for none). */
static s_pending_t **s_held_in_order(s_emit_t *e, size_t *n) {
    *n = 0;
    for (size_t b = 0; b < S_BUCKETS; b++)
        for (s_pending_t *p = e->table[b]; p; p = p->next)
            *n += p->held_back == 2;
    if (*n == 0) return NULL;
    s_pending_t **held = mg_malloc(*n * sizeof *held);
    size_t k = 0;
    for (size_t b = 0; b < S_BUCKETS; b++)
        for (s_pending_t *p = e->table[b]; p; p = p->next)
            if (p->held_back == 2) held[k++] = p;
    qsort(held, *n, sizeof *held, s_by_line);
    return held;
}

/* The envelope held back by an unavailable journal of the first line (the
 * probe), or NULL. */
static const s_pending_t *s_first_held(const s_emit_t *e) {
    const s_pending_t *first = NULL;
    for (size_t b = 0; b < S_BUCKETS; b++)
        for (const s_pending_t *p = e->table[b]; p; p = p->next)
            if (p->held_back == 2 && (!first || p->line < first->line)) first = p;
    return first;
}

/* The journal took an event again: the others held back go in line order,
 * then new lines. */
static void s_resume(s_emit_t *e, int64_t now) {
    e->stalled = 0;
    size_t n;
    s_pending_t **held = s_held_in_order(e, &n);
    for (size_t i = 0; i < n; i++) {
        held[i]->held_back = 0;
        held[i]->retry_us = e->retry_us;
        s_send(e, held[i], now);
    }
    free(held);
}

static int s_same(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen) {
    return alen == blen && memcmp(a, b, alen) == 0;
}

/* A line whose event id is already in flight as `p`. The same bytes (the
 * same line again): sent too, the broker answers both (accepted then
 * duplicate), and the copies are counted so that each answer is printed.
 * Other bytes: they wait for the answer to what is in flight, then are sent
 * in turn (s_remove). Takes ownership of `data`. */
static void s_submit_again(s_emit_t *e, s_pending_t *p, uint8_t *data, size_t len, long line_no,
                           int64_t now) {
    s_waiting_t **last = &p->waiting;
    while (*last && (*last)->next)
        last = &(*last)->next;
    if (!*last && s_same(p->data, p->len, data, len)) {
        p->copies++;
        s_send(e, p, now);
    } else if (*last && s_same((*last)->data, (*last)->len, data, len)) {
        (*last)->copies++;
    } else {
        s_waiting_t *w = mg_calloc(1, sizeof *w);
        w->data = data;
        w->len = len;
        w->line = line_no;
        w->copies = 1;
        if (*last)
            (*last)->next = w;
        else
            p->waiting = w;
        e->waiting++;
        return;
    }
    free(data);
}

/* Say in French that line `line_no` is skipped, and why. `err` is the JSON
 * parser's reason, in English: the library shares it with the gateway's
 * answers, and jansson's detail is English anyway. Its position in the JSON
 * ("[field: ]invalid JSON at line L, column C: detail") is said in French. */
static void s_unreadable(long line_no, const char *err) {
    static const char invalid[] = "invalid JSON at line ";
    const char *at = strstr(err, invalid);
    int json_line, column, n = 0;
    if (at && sscanf(at, "invalid JSON at line %d, column %d: %n", &json_line, &column, &n) == 2 && n > 0) {
        int field = at - err >= 2 ? (int)(at - err) - 2 : 0; /* "field: " before it */
        cli_error("emit", "ligne %ld : JSON invalide (ligne %d, colonne %d%s%.*s) : %s ; ligne ignorée",
                  line_no, json_line, column, field ? ", champ " : "", field, err, at + n);
    } else {
        cli_error("emit", "ligne %ld : %s ; ligne ignorée", line_no, err);
    }
}

/* Parse one input line and put its envelope in flight. */
static void s_submit_line(s_emit_t *e, const char *line, size_t len, long line_no)
{
    char err[512];
    while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t')) len--;
    size_t lead = strspn(line, " \t");
    if (lead >= len || line[lead] == '#') return;

    ProtobufCMessage *msg =
        mg_json_parse_message(&maillage__v1__envelope__descriptor, line, len, err, sizeof err);
    if (!msg) {
        s_unreadable(line_no, err);
        e->unreadable++;
        return;
    }
    mg_envelope_t *env = (mg_envelope_t *)msg;
    char ulid[MG_ULID_LEN + 1];
    if (!env->event_id || !*env->event_id) {
        mg_ulid_new(ulid);
        if (env->event_id != protobuf_c_empty_string) free(env->event_id);
        env->event_id = mg_strdup(ulid);
    }
    if (!mg_id_is_valid(env->event_id)) {
        cli_error("emit",
                  "ligne %ld : l'eventId « %.80s » n'est pas un identifiant valide (de 1 à %d lettres, "
                  "chiffres ou « . _ : - ») ; ligne ignorée",
                  line_no, env->event_id, MG_ID_MAX);
        e->unreadable++;
        protobuf_c_message_free_unpacked(msg, NULL);
        return;
    }
    int64_t now = mg_clock_monotonic_us();
    s_pending_t **slot = s_find(e, env->event_id);
    int filled = env->occurred_at_ms == 0;
    /* The same line again gets the same time, so that it packs the same. */
    if (filled)
        env->occurred_at_ms = *slot && (*slot)->filled_at_ms ? (*slot)->filled_at_ms : mg_clock_now_ms();
    uint8_t *data;
    size_t packed = mg_envelope_pack(env, &data);
    /* The broker refuses it; well above that size it closes the connection
     * without an answer (ZMQ_MAXMSGSIZE), so it is refused here. */
    if (e->max_bytes && packed > e->max_bytes) {
        cli_error(
            "emit",
            "ligne %ld : %s : trop volumineux (%zu octets, [broker] max_message_bytes vaut %zu) ; ligne "
            "ignorée",
            line_no, env->event_id, packed, e->max_bytes);
        e->too_large++;
        free(data);
        protobuf_c_message_free_unpacked(msg, NULL);
        return;
    }
    if (*slot) {
        s_submit_again(e, *slot, data, packed, line_no, now);
    } else {
        s_pending_t *p = mg_calloc(1, sizeof *p);
        p->event_id = mg_strdup(env->event_id);
        p->data = data;
        p->len = packed;
        p->filled_at_ms = filled ? env->occurred_at_ms : 0;
        p->line = line_no;
        p->copies = 1;
        p->heard_us = now;
        p->retry_us = e->retry_us;
        *slot = p;
        e->pending++;
        s_deadline(e, now + e->timeout_us);
        s_send(e, p, now);
    }
    e->sent++;
    protobuf_c_message_free_unpacked(msg, NULL);
}

/* One line of `*slot` answered for good: forget the envelope after its last
 * copy, or send the next waiting line of the same id in its place. */
static void s_remove(s_emit_t *e, s_pending_t **slot, int64_t now) {
    s_pending_t *p = *slot;
    if (--p->copies > 0) return;
    s_waiting_t *w = p->waiting;
    if (w) {
        p->waiting = w->next;
        e->waiting--;
        if (!p->earlier_line) p->earlier_line = p->line;
        p->stale += p->unanswered; /* resends of the earlier content whose answers are still to come */
        p->unanswered = 0;
        free(p->data);
        p->data = w->data;
        p->len = w->len;
        p->line = w->line;
        p->copies = w->copies;
        free(w);
        p->heard_us = now;
        p->held_back = 0;
        p->retry_us = e->retry_us;
        s_deadline(e, now + e->timeout_us);
        for (int i = 0; i < p->copies; i++)
            s_send(e, p, now);
        return;
    }
    *slot = p->next;
    s_pending_free(p);
    e->pending--;
}

static void s_on_ack(s_emit_t *e, const uint8_t *data, size_t len)
{
    mg_ack_t *ack = mg_ack_unpack(data, len);
    e->acks++;
    if (!ack) {
        cli_error("emit", "le broker a envoyé un accusé de réception illisible (%zu octets) : ignoré", len);
        return;
    }
    s_pending_t **slot = ack->event_id && *ack->event_id ? s_find(e, ack->event_id) : NULL;
    if (!slot || !*slot) goto done; /* a late answer to a retry already answered */
    s_pending_t *p = *slot;
    if (p->stale > 0) { /* the answer to a resend of an earlier line's content */
        p->stale--;
        goto done;
    }
    if (p->unanswered > 0) p->unanswered--;
    int64_t now = mg_clock_monotonic_us();

    switch (ack->status) {
    case MAILLAGE__V1__ACK__STATUS__STATUS_ACCEPTED:
        e->accepted++;
        if (e->limit < e->window) e->limit++;
        if (!e->quiet) printf("%s accepted seq=%" PRIu64 "\n", p->event_id, ack->sequence);
        s_remove(e, slot, now);
        if (e->stalled) s_resume(e, now);
        break;
    case MAILLAGE__V1__ACK__STATUS__STATUS_DUPLICATE:
        e->duplicate++;
        if (!e->quiet) printf("%s duplicate seq=%" PRIu64 "\n", p->event_id, ack->sequence);
        if (p->earlier_line)
            cli_error("emit",
                      "ligne %ld : %s en doublon : la ligne %ld a le même eventId avec un autre contenu, et "
                      "le broker "
                      "garde le premier événement journalisé sous un identifiant (le contenu de cette ligne "
                      "n'est pas "
                      "journalisé)",
                      p->line, p->event_id, p->earlier_line);
        s_remove(e, slot, now);
        if (e->stalled) s_resume(e, now);
        break;
    case MAILLAGE__V1__ACK__STATUS__STATUS_REJECTED:
        if (ack->reason && strncmp(ack->reason, MG_RATE_LIMITED, strlen(MG_RATE_LIMITED)) == 0) {
            /* Not final (the broker keeps no dead letter of it): the same
             * bytes again after a pause, as after unavailable. */
            if (!e->rate_limited_notice) {
                cli_error("emit",
                          "la limite de débit du broker retient des événements (%s) : ils sont renvoyés plus "
                          "lentement",
                          ack->reason);
                e->rate_limited_notice = 1;
            }
            if (now - e->narrowed_us >= S_NARROW_US && e->limit > 1) {
                e->limit /= 2;
                e->narrowed_us = now;
            }
            p->held_back = 1;
            p->heard_us = now; /* the broker is there and takes events: --timeout counts again */
            s_back_off(e, p, now);
            break;
        }
        e->rejected++;
        if (!e->quiet) {
            printf("%s rejected: %s", p->event_id, ack->reason && *ack->reason ? ack->reason : "no reason given");
            if (ack->field && *ack->field) printf(" (%s)", ack->field);
            printf("\n");
        } else {
            cli_error("emit", "ligne %ld : %s rejeté : %s%s%s%s", p->line, p->event_id, ack->reason,
                      ack->field && *ack->field ? " (" : "", ack->field ? ack->field : "",
                      ack->field && *ack->field ? ")" : "");
        }
        s_remove(e, slot, now);
        break;
    case MAILLAGE__V1__ACK__STATUS__STATUS_UNAVAILABLE:
        /* Not journaled: back off, then send the same bytes again. */
        if (!e->unavailable_notice) {
            cli_error(
                "emit",
                "le broker répond « unavailable » (%s) : nouvelles tentatives, de plus en plus espacées",
                ack->reason && *ack->reason ? ack->reason : "journal indisponible");
            e->unavailable_notice = 1;
        }
        p->held_back = 2;
        e->stalled = 1;
        s_back_off(e, p, now);
        break;
    default:
        cli_error("emit", "%s : accusé de réception d'état inconnu %d ; il sera renvoyé", p->event_id,
                  (int)ack->status);
        break;
    }
done:
    mg_ack_free(ack);
}

/* Resend what is due, give up on what timed out, recompute the deadline. */
static void s_timers(s_emit_t *e, int64_t now)
{
    e->next_deadline_us = INT64_MAX;
    /* Stalled, only the first line held back is sent again (the probe). */
    const s_pending_t *probe = e->stalled ? s_first_held(e) : NULL;
    size_t still_held = 0;
    for (size_t b = 0; b < S_BUCKETS; b++) {
        s_pending_t **slot = &e->table[b];
        while (*slot) {
            s_pending_t *p = *slot;
            if (now - p->heard_us >= e->timeout_us) {
                /* A copy unanswered a second after the last was sent: the
                 * broker went quiet, and what it said before ("not now")
                 * no longer explains it. */
                if (p->unanswered > 0 && now - p->sent_us >= S_QUIET_US) p->held_back = 0;
                e->lost += (size_t)p->copies;
                if (p->held_back) e->held += (size_t)p->copies;
                /* When the broker never answered at all, one line at the end
                 * says so better than one per event. */
                if (p->held_back == 2)
                    cli_error("emit",
                              "ligne %ld : %s : le journal du broker est encore indisponible après %" PRId64
                              " s",
                              p->line, p->event_id, e->timeout_us / 1000000);
                else if (p->held_back)
                    cli_error("emit",
                              "ligne %ld : %s : retenu par la limite de débit du broker, puis sans réponse "
                              "pendant %" PRId64 " s",
                              p->line, p->event_id, e->timeout_us / 1000000);
                else if (e->acks)
                    cli_error("emit", "ligne %ld : %s : pas de réponse du broker après %" PRId64 " s",
                              p->line, p->event_id, e->timeout_us / 1000000);
                for (s_waiting_t *w = p->waiting; w; w = w->next) {
                    cli_error("emit",
                              "ligne %ld : %s : non envoyé (la ligne %ld, de même eventId, est restée sans "
                              "réponse)",
                              w->line, p->event_id, p->line);
                    e->lost += (size_t)w->copies;
                    e->waiting--;
                }
                *slot = p->next;
                s_pending_free(p);
                e->pending--;
                continue;
            }
            if (now >= p->resend_at_us && e->stalled && p != probe) {
                p->resend_at_us = now + p->retry_us; /* waits for the probe's answer */
            } else if (now >= p->resend_at_us) {
                p->retry_us = p->retry_us * 2 > 10000000 ? 10000000 : p->retry_us * 2;
                s_send(e, p, now);
            }
            s_deadline(e, p->resend_at_us);
            s_deadline(e, p->heard_us + e->timeout_us);
            still_held += p->held_back == 2;
            slot = &p->next;
        }
    }
    /* None held back any more (timed out, rejected, or held by the rate
     * limit since): nothing waits for the journal, new lines may go. */
    if (!still_held) e->stalled = 0;
    /* Nobody answered yet: said after a few seconds, not only after
     * --timeout (a forgotten endpoints.env was 30 s of silence). */
    if (!e->acks && !e->silence_said && e->first_sent_us && e->timeout_us > S_SILENCE_US) {
        if (now - e->first_sent_us >= S_SILENCE_US) {
            cli_error("emit",
                      "pas encore de réponse du broker (%s) après %d s : tourne-t-il ? (voir « maillage up » "
                      "et MAILLAGE_INGEST) ; nouvel essai jusqu'à %" PRId64 " s",
                      e->endpoint, S_SILENCE_US / 1000000, e->timeout_us / 1000000);
            e->silence_said = 1;
        } else {
            s_deadline(e, e->first_sent_us + S_SILENCE_US);
        }
    }
}

static void s_usage(FILE *out)
{
    fprintf(
        out,
        "Usage : maillage emit [OPTIONS] [FICHIER]\n"
        "\n"
        "Envoie des événements au broker et affiche une ligne par accusé de réception,\n"
        "avec l'état du protocole (accepted, duplicate, rejected) :\n"
        "  <event_id> accepted seq=42 | <event_id> duplicate seq=7 | <event_id> rejected: reason (field)\n"
        "\n"
        "FICHIER (ou l'entrée standard, ou « - ») contient des Envelopes en JSON proto3, une\n"
        "par ligne. Une enveloppe sans eventId reçoit un nouveau ULID, une sans occurredAtMs\n"
        "l'heure courante. Les lignes illisibles sont signalées par leur numéro et ignorées.\n"
        "Code de sortie 0 seulement si toute l'entrée a été lue et que chaque événement a\n"
        "été accepté ou était un doublon.\n"
        "\n"
        "Options :\n"
        "  -q, --quiet          n'afficher que le bilan final (et les erreurs)\n"
        "  -w, --window N       enveloppes en vol au plus (1000 par défaut)\n"
        "      --retry-ms MS    renvoyer après MS millisecondes sans réponse (2000 par défaut)\n"
        "      --timeout S      abandonner un événement après S secondes sans réponse à son\n"
        "                       sujet (30 par défaut ; la limite de débit du réseau compte\n"
        "                       comme une réponse, un journal indisponible non)\n"
        "%s",
        cli_common_help);
}

int cli_cmd_emit(int argc, char **argv, cli_settings_t *settings)
{
    static const struct option options[] = {CLI_COMMON_LONG_OPTIONS,
                                            {"quiet", no_argument, NULL, 'q'},
                                            {"window", required_argument, NULL, 'w'},
                                            {"retry-ms", required_argument, NULL, 'r'},
                                            {"timeout", required_argument, NULL, 't'},
                                            {NULL, 0, NULL, 0}};
    s_emit_t e = {.window = 1000, .retry_us = 2000000, .timeout_us = 30000000};
    cli_context_t ctx;
    s_reader_t reader = {.fd = 0};
    void *zctx = NULL;
    int opt, rc = CLI_EXIT_FAIL;
    long value;
    char *end;

    while ((opt = cli_getopt("emit", argc, argv, "hqw:", options)) != -1) {
        if (opt == '?') return CLI_EXIT_USAGE;
        if (cli_settings_option(settings, opt, optarg)) continue;
        switch (opt) {
        case 'h': s_usage(stdout); return CLI_EXIT_OK;
        case 'q': e.quiet = 1; break;
        case 'w':
        case 'r':
        case 't':
            value = strtol(optarg, &end, 10);
            if (*end || value <= 0 || value > 100000000) {
                cli_error("emit", "--%s : « %s » n'est pas un entier de 1 à 100000000",
                          opt == 'w'   ? "window"
                          : opt == 'r' ? "retry-ms"
                                       : "timeout",
                          optarg);
                return CLI_EXIT_USAGE;
            }
            if (opt == 'w') e.window = (size_t)value;
            if (opt == 'r') e.retry_us = (int64_t)value * 1000;
            if (opt == 't') e.timeout_us = (int64_t)value * 1000000;
            break;
        default: s_usage(stderr); return CLI_EXIT_USAGE;
        }
    }
    if (argc - optind > 1) {
        cli_error("emit", "un seul FICHIER au plus (voir « maillage emit --help »)");
        return CLI_EXIT_USAGE;
    }
    const char *path = optind < argc ? argv[optind] : "-";
    if (strcmp(path, "-") != 0) {
        reader.fd = open(path, O_RDONLY | O_CLOEXEC);
        if (reader.fd < 0) {
            cli_error("emit", "impossible d'ouvrir %s : %s", path, strerror(errno));
            return CLI_EXIT_FAIL;
        }
    }
    int init = cli_context_init(&ctx, settings, "emit");
    if (init != CLI_EXIT_OK) {
        if (reader.fd > 0) close(reader.fd);
        return init;
    }
    e.max_bytes = (size_t)mg_config_int(ctx.config, "broker", "max_message_bytes");

    zctx = zmq_ctx_new();
    e.socket = zmq_socket(zctx, ZMQ_DEALER);
    int hwm = (int)(e.window * 2 + 1000), linger = 0;
    zmq_setsockopt(e.socket, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(e.socket, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(e.socket, ZMQ_LINGER, &linger, sizeof linger);
    if (mg_curve_client_apply(e.socket) != 0) {
        cli_error("emit", "impossible d'activer CURVE : %s", zmq_strerror(errno));
        goto done;
    }
    /* A refused CURVE key (or a plain client for a CURVE broker) looks to
     * the socket like a broker that does not answer: watch the handshakes,
     * to say which it is. */
    if (!(e.monitor = cli_handshake_monitor(zctx, e.socket))) {
        cli_error("emit", "impossible de surveiller la connexion à %s : %s", ctx.ingest, zmq_strerror(errno));
        goto done;
    }
    if (zmq_connect(e.socket, ctx.ingest) != 0) {
        cli_error("emit", "connexion impossible à %s : %s", ctx.ingest, zmq_strerror(errno));
        goto done;
    }
    cli_catch_signals();
    e.endpoint = ctx.ingest;
    e.next_deadline_us = INT64_MAX;
    e.limit = e.window;

    for (;;) {
        int too_long = 0;
        size_t len;
        char *line;
        /* Put lines in flight while the window allows. */
        while (s_may_send_more(&e) && (line = s_reader_next(&reader, &len, &too_long)) != NULL) {
            /* A UTF-8 byte order mark, as Windows tools write at the start
             * of a file, is not part of the JSON (RFC 8259 lets a reader
             * ignore it): else line 1 is refused for an invisible character. */
            if (reader.line_no == 1) {
                size_t bom = mg_utf8_bom_len(line, len);
                line += bom;
                len -= bom;
            }
            s_submit_line(&e, line, len, reader.line_no);
        }
        if (too_long) {
            cli_error("emit", "ligne %ld : plus longue que %u octets ; ligne ignorée", reader.line_no,
                      S_LINE_MAX);
            e.unreadable++;
            continue;
        }
        int input_done = reader.eof && !s_reader_has_line(&reader);
        if (input_done && e.pending == 0) break; /* lines wait only behind a pending one */
        if (cli_interrupted) {
            size_t unanswered = e.pending + e.waiting;
            cli_error("emit", "interrompu : %zu événement%s sans réponse", unanswered,
                      unanswered > 1 ? "s" : "");
            e.lost += e.pending + e.waiting;
            break;
        }

        zmq_pollitem_t items[3] = {
            {e.socket, 0, ZMQ_POLLIN, 0}, {e.monitor, 0, ZMQ_POLLIN, 0}, {NULL, reader.fd, ZMQ_POLLIN, 0}};
        int want_input = !reader.eof && s_may_send_more(&e) && !s_reader_has_line(&reader);
        int64_t now = mg_clock_monotonic_us();
        long timeout_ms = -1;
        if (s_may_send_more(&e) && s_reader_has_line(&reader))
            timeout_ms = 0;
        else if (e.next_deadline_us != INT64_MAX)
            timeout_ms = e.next_deadline_us <= now ? 0 : (long)((e.next_deadline_us - now) / 1000) + 1;
        if (zmq_poll(items, want_input ? 3 : 2, timeout_ms) < 0 && errno != EINTR) {
            cli_error("emit", "attente impossible (poll) : %s", zmq_strerror(errno));
            goto done;
        }
        if (items[0].revents & ZMQ_POLLIN) {
            /* Drain every waiting ack. */
            for (;;) {
                zmq_msg_t msg;
                zmq_msg_init(&msg);
                if (zmq_msg_recv(&msg, e.socket, ZMQ_DONTWAIT) < 0) {
                    zmq_msg_close(&msg);
                    break;
                }
                s_on_ack(&e, zmq_msg_data(&msg), zmq_msg_size(&msg));
                zmq_msg_close(&msg);
            }
            /* Stalled, an answer may have taken the last event held back
             * (rejected, rate limited): the timers look again at once. */
            if (e.stalled) e.next_deadline_us = 0;
        }
        if ((items[1].revents & ZMQ_POLLIN) && cli_handshake_read(e.monitor, e.handshake, sizeof e.handshake))
            cli_error("emit", "%s : %s ; nouvelles tentatives jusqu'à --timeout", e.endpoint, e.handshake);
        if (want_input && (items[2].revents & (ZMQ_POLLIN | ZMQ_POLLERR)) && s_reader_fill(&reader) != 0) {
            cli_error("emit", "lecture de %s impossible : %s", path, strerror(errno));
            reader.eof = 1;
            e.read_failed = 1;
        }
        now = mg_clock_monotonic_us();
        if (now >= e.next_deadline_us) s_timers(&e, now);
    }

    fflush(stdout);
    /* (Interrupted, it said so above: not a broker that never answered.) */
    if (e.lost && !e.acks && !cli_interrupted && *e.handshake)
        cli_error("emit", "pas de réponse du broker (%s) après %" PRId64 " s : %s", ctx.ingest,
                  e.timeout_us / 1000000, e.handshake);
    else if (e.lost && !e.acks && !cli_interrupted)
        cli_error("emit",
                  "pas de réponse du broker (%s) après %" PRId64 " s : tourne-t-il ? (voir « maillage up »)",
                  ctx.ingest, e.timeout_us / 1000000);
    char held[128] = "";
    if (e.held)
        snprintf(held, sizeof held,
                 " (dont %zu retenu%s par le broker : limite de débit ou journal indisponible)", e.held,
                 e.held > 1 ? "s" : "");
    char too_large[96] = "";
    if (e.too_large)
        snprintf(too_large, sizeof too_large, ", %zu trop volumineu%s", e.too_large,
                 e.too_large > 1 ? "ses" : "se");
    fprintf(stderr,
            "emit : %zu événement%s envoyé%s — %zu accepté%s, %zu doublon%s, %zu rejeté%s, "
            "%zu ligne%s illisible%s%s, %zu sans réponse%s\n",
            e.sent, e.sent > 1 ? "s" : "", e.sent > 1 ? "s" : "", e.accepted, e.accepted > 1 ? "s" : "",
            e.duplicate, e.duplicate > 1 ? "s" : "", e.rejected, e.rejected > 1 ? "s" : "", e.unreadable,
            e.unreadable > 1 ? "s" : "", e.unreadable > 1 ? "s" : "", too_large, e.lost, held);
    rc = (e.rejected || e.unreadable || e.too_large || e.lost || e.read_failed || cli_interrupted)
             ? CLI_EXIT_FAIL
             : CLI_EXIT_OK;

done:
    for (size_t b = 0; b < S_BUCKETS; b++) {
        while (e.table[b]) {
            s_pending_t *p = e.table[b];
            e.table[b] = p->next;
            s_pending_free(p);
        }
    }
    if (e.socket) {
        zmq_socket_monitor(e.socket, NULL, 0);
        zmq_close(e.socket);
    }
    if (e.monitor) zmq_close(e.monitor);
    if (zctx) zmq_ctx_term(zctx);
    if (reader.fd > 0) close(reader.fd);
    free(reader.buf);
    cli_context_destroy(&ctx);
    return rc;
}
