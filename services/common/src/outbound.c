/* outbound.c -- webhooks through libcurl's multi interface, driven by
 * libevent, and e-mail in worker threads.
 *
 * The webhooks' wiring follows libcurl's hiperfifo example: curl tells us
 * which socket to watch (s_on_curl_socket) and when to wake it up
 * (s_on_curl_timer); we hand each libevent wake-up back with
 * curl_multi_socket_action and then collect finished transfers with
 * curl_multi_info_read. No curl call in the loop waits on the network, so one
 * dead server only delays its own transfers, each bounded by its own
 * CURLOPT_TIMEOUT_MS.
 *
 * SMTP cannot be driven that way: libcurl waits, blocking, for the server's
 * reply to the end of the message even under the multi interface (its
 * "DONE" step; curl issue 8555, a known limitation), which froze the whole
 * loop (Redis, ZeroMQ, the other transfers) for as long as a slow server took
 * to answer. So each mail is sent by curl_easy_perform() in one of
 * S_MAIL_WORKERS threads, started with the first mail; a finished mail goes
 * back to the loop through a pipe, where its callback runs as a webhook's
 * does. A worker touches only its transfer's easy handle and body and the
 * queues under `lock`.
 *
 * Messages are composed here rather than with curl_mime: we need a stable
 * Message-ID, RFC 2047 subjects and a result that tests can read. */
#include "maillage/outbound.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "maillage/clock.h"
#include "maillage/log.h"
#include "maillage/mem.h"

/* When the caller gives no timeout: nothing may stay in flight forever. */
#define S_DEFAULT_TIMEOUT_MS 30000L
#define S_MAX_REDIRECTS      3L
/* Quoted-printable lines are at most 76 characters, the soft-break '='
 * included (RFC 2045 6.7). */
#define S_QP_LINE_MAX 76
/* Mails sent at once; more wait in the queue (their timeout starts when a
 * worker takes them). */
#define S_MAIL_WORKERS 4
#define S_WATCHDOG_MS  250
/* The longest Retry-After taken from a server (a day). */
#define S_RETRY_AFTER_MAX_S 86400

typedef enum { S_WEBHOOK, S_MAIL } s_kind_t;

/* One transfer in flight; owned by the engine's list until its callback ran. */
typedef struct s_transfer {
    mg_outbound_t *out;
    CURL *easy;
    s_kind_t kind;
    char *body; /* the composed mail, read by s_on_read */
    size_t body_len, body_pos;
    CURLcode rc; /* mail: curl_easy_perform()'s, set by its worker, */
    long code;   /* with the last reply code */
    long timeout_ms;
    /* mail, under the engine's lock: when its worker took it (0: waiting),
     * its socket (-1: none), whether s_cut() ended it */
    int64_t started_us;
    curl_socket_t fd;
    bool cut;
    struct s_transfer *qnext;   /* mail: next in the workers' queue or the done list */
    struct curl_slist *headers; /* webhook: Content-Type */
    struct curl_slist *rcpt;    /* mail: the recipient */
    char *label;                /* for logs: message-id or webhook host, never an address */
    char errbuf[CURL_ERROR_SIZE];
    /* mail: the server's last refusal (4xx, 5xx) during the transfer, its
     * code and its own words, for the error (libcurl's own words for a
     * refused end of message are "Weird server reply") */
    long refusal_code;
    char refusal[160];
    bool performed; /* mail: curl_easy_perform() returned (QUIT's reply is not the transfer's) */
    mg_outbound_done_fn cb;
    void *arg;
    struct s_transfer *prev, *next;
} s_transfer_t;

/* One socket curl asked us to watch. */
typedef struct s_socket {
    mg_outbound_t *out;
    curl_socket_t fd;
    struct event *ev;
    struct s_socket *prev, *next;
} s_socket_t;

struct mg_outbound {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    s_transfer_t *transfers;
    s_socket_t *sockets;
    size_t pending;
    bool destroying;
    /* Mails (see the top of this file): waiting for a worker, and done,
     * waiting for the loop, under `lock`; `wake` is the pipe a worker writes
     * a byte to when it adds to `done`. */
    pthread_mutex_t lock;
    pthread_cond_t work;
    s_transfer_t *queue_head, *queue_tail, *done_head, *done_tail;
    pthread_t workers[S_MAIL_WORKERS];
    size_t n_workers;
    int wake[2];
    struct event *wake_ev, *watchdog;
    atomic_bool stopping; /* the workers end; the mails in flight are cut */
};

/* ---- libcurl global state ------------------------------------------------ */

static pthread_once_t s_curl_once = PTHREAD_ONCE_INIT;
static CURLcode s_curl_init_result = CURLE_FAILED_INIT;

/* curl_global_init is not thread-safe on every build of libcurl, so it runs
 * exactly once per process, whatever the number of engines or threads;
 * curl_global_cleanup is left to process exit, since another engine may
 * still be alive. */
static void s_curl_init(void) {
    s_curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- small string helpers ------------------------------------------------ */

typedef struct {
    char *data;
    size_t len, cap;
} s_buf_t;

static void s_buf_reserve(s_buf_t *b, size_t more) {
    if (b->len + more + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1)
        cap *= 2;
    b->data = mg_realloc(b->data, cap);
    b->cap = cap;
}

static void s_buf_add(s_buf_t *b, const char *s, size_t n) {
    s_buf_reserve(b, n);
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void s_buf_adds(s_buf_t *b, const char *s) {
    s_buf_add(b, s, strlen(s));
}

static void s_buf_addc(s_buf_t *b, char c) {
    s_buf_add(b, &c, 1);
}

static bool s_has_crlf(const char *s) {
    return s && strpbrk(s, "\r\n") != NULL;
}

static bool s_is_ascii(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80) return false;
    return true;
}

/* An address usable on the SMTP envelope: local@domain, printable ASCII,
 * without spaces, brackets, quotes or commas that could smuggle a second
 * recipient or command. */
static bool s_address_ok(const char *a, size_t n) {
    size_t at = 0, ats = 0;
    if (n == 0 || n > 254) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)a[i];
        if (c <= 0x20 || c >= 0x7f || strchr("<>()[]\\,;:\"", c)) return false;
        if (c == '@') {
            at = i;
            ats++;
        }
    }
    return ats == 1 && at > 0 && at + 1 < n;
}

/* Split "Display Name <local@domain>" or "local@domain" into its parts.
 * Returns 0 and sets the display name (`name`, `name_len`; possibly empty)
 * and the address (`addr`, `addr_len`), * or -1 if it is not one address. */
static int s_parse_mailbox(const char *s, const char **name, size_t *name_len, const char **addr,
                           size_t *addr_len) {
    if (!s || s_has_crlf(s)) return -1;
    const char *lt = strrchr(s, '<');
    if (!lt) {
        while (*s == ' ')
            s++;
        size_t n = strlen(s);
        while (n > 0 && s[n - 1] == ' ')
            n--;
        *name = s;
        *name_len = 0;
        *addr = s;
        *addr_len = n;
    } else {
        const char *gt = strchr(lt, '>');
        if (!gt || gt[1] != '\0') return -1;
        const char *n_end = lt;
        while (n_end > s && n_end[-1] == ' ')
            n_end--;
        while (*s == ' ' && s < n_end)
            s++;
        *name = s;
        *name_len = (size_t)(n_end - s);
        if (memchr(s, '<', *name_len) || memchr(s, '>', *name_len)) return -1;
        *addr = lt + 1;
        *addr_len = (size_t)(gt - lt - 1);
    }
    return s_address_ok(*addr, *addr_len) ? 0 : -1;
}

int mg_outbound_mailbox_is_valid(const char *mailbox) {
    const char *name, *addr;
    size_t name_len, addr_len;
    return s_parse_mailbox(mailbox, &name, &name_len, &addr, &addr_len) == 0;
}

int mg_outbound_webhook_url_is_valid(const char *url) {
    if (!url) return 0;
    size_t scheme = strncasecmp(url, "https://", 8) == 0 ? 8 : strncasecmp(url, "http://", 7) == 0 ? 7 : 0;
    if (!scheme || strchr("/?#:", url[scheme]) || url[scheme] == '\0') return 0;
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        if (*p <= ' ' || *p == 0x7f) return 0;
    return 1;
}

int mg_outbound_webhook_is_slack(const char *url) {
    static const char host[] = "https://hooks.slack.com";
    size_t n = sizeof(host) - 1;
    if (!url || strncasecmp(url, host, n) != 0) return 0;
    /* then the path, or a port and the path: not "hooks.slack.com:x@other.host" */
    const char *p = url + n;
    if (*p == ':') p += 1 + strspn(p + 1, "0123456789");
    return *p == '/';
}

static const char s_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void s_base64(s_buf_t *b, const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n) v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n) v |= p[i + 2];
        s_buf_addc(b, s_b64[(v >> 18) & 63]);
        s_buf_addc(b, s_b64[(v >> 12) & 63]);
        s_buf_addc(b, i + 1 < n ? s_b64[(v >> 6) & 63] : '=');
        s_buf_addc(b, i + 2 < n ? s_b64[v & 63] : '=');
    }
}

/* Length of the UTF-8 sequence starting at `p` (1 for stray or invalid
 * bytes), never past `end`, so encoded words never split a character. */
static size_t s_utf8_len(const unsigned char *p, const unsigned char *end) {
    size_t n = 1;
    if (*p >= 0xf0)
        n = 4;
    else if (*p >= 0xe0)
        n = 3;
    else if (*p >= 0xc0)
        n = 2;
    if ((size_t)(end - p) < n) return (size_t)(end - p);
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80) return 1;
    return n;
}

/* RFC 2047 "B" encoded words, each at most 75 characters, folded onto
 * continuation lines so that no line passes 76 (RFC 2047 2): 45 bytes of
 * text give 60 of base64, plus 12 for "=?UTF-8?B?" and "?=". The first word
 * starts at column `col` and is shortened to fit. Returns the column after
 * the last word. */
static size_t s_encoded_words(s_buf_t *b, const char *s, size_t n, size_t col) {
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    bool first = true;
    while (p < end) {
        size_t room = first && col + 12 + 60 > 76 ? (76 - 12 - col) / 4 * 3 : 45;
        if (room < 6) room = 6; /* a long header name: still progress */
        const unsigned char *chunk = p;
        while (p < end) {
            size_t len = s_utf8_len(p, end);
            if ((size_t)(p - chunk) + len > room && p > chunk) break;
            p += len;
        }
        if (!first) {
            s_buf_adds(b, "\r\n ");
            col = 1;
        }
        size_t before = b->len;
        s_buf_adds(b, "=?UTF-8?B?");
        s_base64(b, chunk, (size_t)(p - chunk));
        s_buf_adds(b, "?=");
        col += b->len - before;
        first = false;
    }
    return col;
}

/* A header value of free text (Subject): kept as is when it is short printable
 * ASCII that a reader cannot mistake for an encoded word, RFC 2047 otherwise. */
static void s_text_header(s_buf_t *b, const char *name, const char *value) {
    s_buf_adds(b, name);
    s_buf_adds(b, ": ");
    bool plain = strlen(name) + 2 + strlen(value) <= 78 && !strstr(value, "=?");
    for (const char *c = value; plain && *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f) plain = false;
    if (plain)
        s_buf_adds(b, value);
    else
        s_encoded_words(b, value, strlen(value), strlen(name) + 2);
    s_buf_adds(b, "\r\n");
}

/* A mailbox header (From, To): the display name quoted or encoded, the
 * address as is. */
static void s_mailbox_header(s_buf_t *b, const char *hname, const char *name, size_t name_len,
                             const char *addr, size_t addr_len) {
    s_buf_adds(b, hname);
    s_buf_adds(b, ": ");
    if (name_len > 0) {
        char *display = mg_strndup(name, name_len);
        s_buf_t quoted = {0};
        s_buf_addc(&quoted, '"');
        for (const char *c = display; *c; c++) {
            if (*c == '"' || *c == '\\') s_buf_addc(&quoted, '\\');
            s_buf_addc(&quoted, *c);
        }
        s_buf_addc(&quoted, '"');
        /* A quoted string cannot be folded: when it would not fit on one
         * line, encoded words (which fold) carry the name instead. */
        size_t col = strlen(hname) + 2;
        bool fits = col + quoted.len + 2 + addr_len + 1 <= 78;
        if (fits && s_is_ascii(display) && !strstr(display, "=?")) {
            s_buf_add(b, quoted.data, quoted.len);
            col += quoted.len;
        } else {
            col = s_encoded_words(b, display, name_len, col);
        }
        free(quoted.data);
        free(display);
        /* The address goes on a continuation line if it does not fit. */
        s_buf_adds(b, col + 2 + addr_len + 1 > 78 ? "\r\n <" : " <");
        s_buf_add(b, addr, addr_len);
        s_buf_addc(b, '>');
    } else {
        s_buf_add(b, addr, addr_len);
    }
    s_buf_adds(b, "\r\n");
}

/* Quoted-printable (RFC 2045 6.7) of UTF-8 text: line breaks (LF or CRLF)
 * become CRLF, lines stay within 76 characters through soft breaks, trailing
 * blanks are encoded, and a '.' opening a line is encoded so that no SMTP
 * server or relay ever has to dot-stuff our content. */
static void s_quoted_printable(s_buf_t *b, const char *text) {
    static const char hex[] = "0123456789ABCDEF";
    size_t col = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (*p == '\r' && p[1] == '\n') continue;
        if (*p == '\n') {
            s_buf_adds(b, "\r\n");
            col = 0;
            continue;
        }
        bool at_eol = p[1] == '\0' || p[1] == '\n' || (p[1] == '\r' && p[2] == '\n');
        bool literal = (*p >= 33 && *p <= 126 && *p != '=') || ((*p == ' ' || *p == '\t') && !at_eol);
        if (*p == '.' && col == 0) literal = false;
        size_t width = literal ? 1 : 3;
        /* Keep room for the '=' of a soft break, unless this is the last
         * character of the line. */
        size_t limit = at_eol ? S_QP_LINE_MAX : S_QP_LINE_MAX - 1;
        if (col + width > limit) {
            s_buf_adds(b, "=\r\n");
            col = 0;
            if (*p == '.') {
                literal = false;
                width = 3;
            }
        }
        if (literal) {
            s_buf_addc(b, (char)*p);
        } else {
            char enc[3] = {'=', hex[*p >> 4], hex[*p & 15]};
            s_buf_add(b, enc, 3);
        }
        col += width;
    }
    if (col > 0) s_buf_adds(b, "\r\n");
}

/* RFC 5322 date in Europe/Paris time, without locale (%a/%b would follow
 * LC_TIME). */
static void s_date_header(s_buf_t *b) {
    static const char *days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    int64_t now_ms = mg_clock_now_ms();
    int offset = mg_clock_paris_offset_s(now_ms);
    time_t t = (time_t)(now_ms / 1000) + offset;
    struct tm tm;
    gmtime_r(&t, &tm);
    char line[80];
    snprintf(line, sizeof line, "Date: %s, %02d %s %04d %02d:%02d:%02d %c%02d%02d\r\n", days[tm.tm_wday],
             tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
             offset < 0 ? '-' : '+', abs(offset) / 3600, (abs(offset) % 3600) / 60);
    s_buf_adds(b, line);
}

/* A boundary that cannot occur in quoted-printable output: there, '=' is
 * always followed by a hex digit or a line break, never by '_'. */
static void s_boundary(char out[40]) {
    unsigned char rnd[16];
    if (getentropy(rnd, sizeof rnd) != 0) {
        /* Uniqueness is a nicety here, not a security property. */
        uint64_t x = (uint64_t)mg_clock_monotonic_us() ^ ((uint64_t)getpid() << 32);
        for (size_t i = 0; i < sizeof rnd; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            rnd[i] = (unsigned char)(x >> 56);
        }
    }
    static const char hex[] = "0123456789abcdef";
    memcpy(out, "=_mg_", 5);
    for (size_t i = 0; i < sizeof rnd; i++) {
        out[5 + 2 * i] = hex[rnd[i] >> 4];
        out[6 + 2 * i] = hex[rnd[i] & 15];
    }
    out[37] = '\0';
}

/* An extra header must be "Name: value" with a field name of printable
 * ASCII (RFC 5322 2.2), an ASCII value, and must not replace one we set. */
static bool s_extra_header_ok(const char *h) {
    static const char *reserved[] = {"date",    "message-id",   "from",         "to",
                                     "subject", "mime-version", "content-type", "content-transfer-encoding",
                                     "cc",      "bcc"};
    const char *colon = strchr(h, ':');
    if (!colon || colon == h || s_has_crlf(h) || !s_is_ascii(h)) return false;
    if (strlen(h) > 998) return false; /* RFC 5322 2.1.1: a line can't be folded for us */
    for (const char *c = h; c < colon; c++)
        if (*c <= 32 || *c >= 127) return false;
    size_t n = (size_t)(colon - h);
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (strlen(reserved[i]) == n && strncasecmp(h, reserved[i], n) == 0) return false;
    return true;
}

static bool s_has_header(const char *const *headers, const char *name) {
    size_t n = strlen(name);
    for (; headers && *headers; headers++)
        if (strncasecmp(*headers, name, n) == 0 && (*headers)[n] == ':') return true;
    return false;
}

/* A Message-ID is "<left@right>": no blanks, brackets or line breaks. */
static bool s_message_id_ok(const char *id) {
    if (!id || !*id || strlen(id) > 200) return false;
    for (const char *c = id; *c; c++)
        if ((unsigned char)*c <= 32 || (unsigned char)*c >= 127 || strchr("<>()\\\",;", *c)) return false;
    return true;
}

static bool s_mail_ok(const mg_mail_t *mail) {
    const char *n, *a;
    size_t nl, al;
    if (!mail || !mail->subject || !mail->text) return false;
    if (s_parse_mailbox(mail->from, &n, &nl, &a, &al) != 0) return false;
    if (s_parse_mailbox(mail->to, &n, &nl, &a, &al) != 0) return false;
    if (s_has_crlf(mail->subject)) return false;
    if (mail->message_id && !s_message_id_ok(mail->message_id)) return false;
    for (const char *const *h = mail->headers; h && *h; h++)
        if (!s_extra_header_ok(*h)) return false;
    return true;
}

/* Write one body part: its headers and quoted-printable content. */
static void s_part(s_buf_t *b, const char *type, const char *content) {
    s_buf_adds(b, "Content-Type: ");
    s_buf_adds(b, type);
    s_buf_adds(b, "; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n");
    s_quoted_printable(b, content);
}

char *mg_outbound_compose(const mg_mail_t *mail) {
    if (!s_mail_ok(mail)) return NULL;
    const char *name, *addr;
    size_t name_len, addr_len;
    s_buf_t b = {0};

    s_date_header(&b);
    s_parse_mailbox(mail->from, &name, &name_len, &addr, &addr_len);
    s_buf_adds(&b, "Message-ID: <");
    if (mail->message_id) {
        s_buf_adds(&b, mail->message_id);
    } else {
        char id[MG_ULID_LEN + 1];
        mg_ulid_new(id);
        s_buf_adds(&b, id);
    }
    /* A Message-ID needs a right-hand side: the sender's domain. */
    if (!mail->message_id || !strchr(mail->message_id, '@')) {
        const char *at = memchr(addr, '@', addr_len);
        s_buf_add(&b, at, addr_len - (size_t)(at - addr));
    }
    s_buf_adds(&b, ">\r\n");
    s_mailbox_header(&b, "From", name, name_len, addr, addr_len);
    s_parse_mailbox(mail->to, &name, &name_len, &addr, &addr_len);
    s_mailbox_header(&b, "To", name, name_len, addr, addr_len);
    s_text_header(&b, "Subject", mail->subject);
    /* RFC 3834: tells vacation responders not to answer a notification. */
    if (!s_has_header(mail->headers, "Auto-Submitted")) s_buf_adds(&b, "Auto-Submitted: auto-generated\r\n");
    for (const char *const *h = mail->headers; h && *h; h++) {
        s_buf_adds(&b, *h);
        s_buf_adds(&b, "\r\n");
    }
    s_buf_adds(&b, "MIME-Version: 1.0\r\n");
    if (!mail->html) {
        s_part(&b, "text/plain", mail->text);
        return b.data;
    }
    char boundary[40];
    s_boundary(boundary);
    s_buf_adds(&b, "Content-Type: multipart/alternative;\r\n boundary=\"");
    s_buf_adds(&b, boundary);
    s_buf_adds(&b, "\"\r\n\r\nThis is a multi-part message in MIME format.\r\n");
    /* Plain text first: RFC 2046 puts the preferred (richest) part last. */
    s_buf_adds(&b, "\r\n--");
    s_buf_adds(&b, boundary);
    s_buf_adds(&b, "\r\n");
    s_part(&b, "text/plain", mail->text);
    s_buf_adds(&b, "\r\n--");
    s_buf_adds(&b, boundary);
    s_buf_adds(&b, "\r\n");
    s_part(&b, "text/html", mail->html);
    s_buf_adds(&b, "\r\n--");
    s_buf_adds(&b, boundary);
    s_buf_adds(&b, "--\r\n");
    return b.data;
}

/* ---- result classification ------------------------------------------------ */

/* Failures where the server or the network may behave differently later:
 * also an HTTP/2 stream reset or GOAWAY, a garbled reply (a proxy being
 * restarted), and a certificate that does not verify (expired: it is
 * renewed; retried with backoff for retry_for_s, the warnings say why). */
static bool s_curl_error_retryable(CURLcode rc) {
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_AGAIN:
        return true;
    default:
        return false;
    }
}

static void s_classify(s_transfer_t *t, CURLcode rc, mg_outbound_result_t *r) {
    long code = t->code;
    if (t->easy) curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
    memset(r, 0, sizeof *r);
    r->status = code;
    const char *why = t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc);
    if (t->kind == S_WEBHOOK) {
        if (rc == CURLE_OK && code >= 200 && code < 300) {
            r->delivered = true;
        } else if (rc == CURLE_OK) {
            r->retryable = code >= 500 || code == 429 || code == 408;
            snprintf(r->error, sizeof r->error, "HTTP %ld", code);
            curl_off_t after = 0; /* seconds (a date is made seconds by curl) */
            if (curl_easy_getinfo(t->easy, CURLINFO_RETRY_AFTER, &after) == CURLE_OK && after > 0)
                r->retry_after_ms = (long)(after < S_RETRY_AFTER_MAX_S ? after : S_RETRY_AFTER_MAX_S) * 1000;
        } else {
            r->retryable = s_curl_error_retryable(rc);
            snprintf(r->error, sizeof r->error, "%s", why);
        }
        return;
    }
    /* SMTP: the reply code, when the server gave one, says it all (4xx:
     * transient, 5xx: permanent); libcurl reports both as transfer errors. */
    bool whole = t->body_pos == t->body_len;
    if (rc == CURLE_OK) {
        r->delivered = true;
    } else if (atomic_load(&t->out->stopping)) {
        r->retryable = true;
        snprintf(r->error, sizeof r->error, "aborted: shutting down");
    } else if (t->cut && !whole) {
        r->retryable = true;
        snprintf(r->error, sizeof r->error, "timed out after %ld ms", t->timeout_ms);
    } else if ((t->cut || rc == CURLE_OPERATION_TIMEDOUT) && whole) {
        /* The whole message went and no reply came in time: the server may
         * well have accepted it (RFC 5321 gives it 10 minutes). Sending it
         * again would give a slow server a copy at every retry, for days;
         * the caller keeps it (the notifier brings it into the inbox). */
        snprintf(r->error, sizeof r->error,
                 "no reply from the mail server after the whole message was sent (it may have been "
                 "delivered; not sent again, to avoid duplicates): %.80s",
                 why);
    } else if (rc == CURLE_LOGIN_DENIED) {
        /* Our credentials, not the message: retried, so that what waits goes
         * out once the operator has fixed them (a rotated password). */
        r->retryable = true;
        snprintf(r->error, sizeof r->error,
                 "SMTP %ld: the server refused our login (check [notifier] smtp_user and smtp_password_file)",
                 code);
    } else if (code >= 400 && code < 600) {
        r->retryable = code < 500;
        snprintf(r->error, sizeof r->error, "SMTP %ld: %.200s", code,
                 t->refusal_code == code && t->refusal[0] ? t->refusal : why);
    } else {
        r->retryable = s_curl_error_retryable(rc);
        snprintf(r->error, sizeof r->error, "%s", why);
    }
}

/* ---- transfers ----------------------------------------------------------- */

static void s_transfer_free(s_transfer_t *t) {
    if (t->easy) curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->headers);
    curl_slist_free_all(t->rcpt);
    free(t->body);
    free(t->label);
    free(t);
}

static void s_unlink(mg_outbound_t *out, s_transfer_t *t) {
    if (t->prev)
        t->prev->next = t->next;
    else
        out->transfers = t->next;
    if (t->next) t->next->prev = t->prev;
    out->pending--;
}

/* Run the callback exactly once, then free the transfer. The transfer is out
 * of the multi handle and the list before the callback, so the callback may
 * start new transfers (a retry) safely. */
static void s_finish(s_transfer_t *t, const mg_outbound_result_t *r) {
    mg_outbound_t *out = t->out;
    s_unlink(out, t);
    if (t->kind == S_WEBHOOK) curl_multi_remove_handle(out->multi, t->easy);
    if (r->delivered)
        mg_debug("outbound: %s %s delivered (%ld)", t->kind == S_MAIL ? "mail" : "webhook", t->label,
                 r->status);
    else
        mg_info("outbound: %s %s not delivered (%s, %s)", t->kind == S_MAIL ? "mail" : "webhook", t->label,
                r->error, r->retryable ? "retryable" : "permanent");
    mg_outbound_done_fn cb = t->cb;
    void *arg = t->arg;
    s_transfer_free(t);
    cb(r, arg);
}

static void s_check_done(mg_outbound_t *out) {
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(out->multi, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        char *priv = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        s_transfer_t *t = (s_transfer_t *)priv;
        CURLcode rc = msg->data.result;
        mg_outbound_result_t r;
        s_classify(t, rc, &r);
        s_finish(t, &r);
    }
}

/* ---- libevent <-> libcurl ------------------------------------------------ */

static void s_on_socket_event(evutil_socket_t fd, short what, void *arg) {
    mg_outbound_t *out = arg;
    int flags = 0, running = 0;
    if (what & EV_READ) flags |= CURL_CSELECT_IN;
    if (what & EV_WRITE) flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(out->multi, (curl_socket_t)fd, flags, &running);
    s_check_done(out);
}

static void s_on_timer_event(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    mg_outbound_t *out = arg;
    int running = 0;
    curl_multi_socket_action(out->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    s_check_done(out);
}

/* CURLMOPT_TIMERFUNCTION: curl wants to be called back in timeout_ms (-1:
 * never). Calling curl from here is forbidden, so even 0 goes through the
 * loop. */
static int s_on_curl_timer(CURLM *multi, long timeout_ms, void *userp) {
    (void)multi;
    mg_outbound_t *out = userp;
    if (timeout_ms < 0) {
        evtimer_del(out->timer);
        return 0;
    }
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    return evtimer_add(out->timer, &tv) == 0 ? 0 : -1;
}

static void s_socket_free(mg_outbound_t *out, s_socket_t *s) {
    if (s->prev)
        s->prev->next = s->next;
    else
        out->sockets = s->next;
    if (s->next) s->next->prev = s->prev;
    if (s->ev) event_free(s->ev);
    free(s);
}

/* CURLMOPT_SOCKETFUNCTION: watch `fd` for what curl asks, one persistent
 * event per socket, replaced when the interest changes. */
static int s_on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
    (void)easy;
    mg_outbound_t *out = userp;
    s_socket_t *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            curl_multi_assign(out->multi, fd, NULL);
            s_socket_free(out, s);
        }
        return 0;
    }
    if (!s) {
        s = mg_calloc(1, sizeof *s);
        s->out = out;
        s->fd = fd;
        s->next = out->sockets;
        if (s->next) s->next->prev = s;
        out->sockets = s;
        curl_multi_assign(out->multi, fd, s);
    }
    short events = EV_PERSIST;
    if (what & CURL_POLL_IN) events |= EV_READ;
    if (what & CURL_POLL_OUT) events |= EV_WRITE;
    if (s->ev) event_free(s->ev);
    s->ev = event_new(out->base, (evutil_socket_t)fd, events, s_on_socket_event, out);
    if (!s->ev || event_add(s->ev, NULL) != 0) {
        mg_error("outbound: cannot watch a socket");
        return -1;
    }
    return 0;
}

/* ---- mail workers ------------------------------------------------------------ */

static void s_append(s_transfer_t **head, s_transfer_t **tail, s_transfer_t *t) {
    t->qnext = NULL;
    if (*tail)
        (*tail)->qnext = t;
    else
        *head = t;
    *tail = t;
}

static void *s_mail_worker(void *arg) {
    mg_outbound_t *out = arg;
    pthread_mutex_lock(&out->lock);
    for (;;) {
        while (!out->queue_head && !atomic_load(&out->stopping))
            pthread_cond_wait(&out->work, &out->lock);
        if (atomic_load(&out->stopping)) break;
        s_transfer_t *t = out->queue_head;
        out->queue_head = t->qnext;
        if (!out->queue_head) out->queue_tail = NULL;
        t->started_us = mg_clock_monotonic_us();
        pthread_mutex_unlock(&out->lock);
        t->rc = curl_easy_perform(t->easy);
        t->performed = true;
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &t->code);
        /* Here, not in the loop: closing the connection waits, blocking,
         * for the reply to QUIT (cut by the watchdog if need be). */
        curl_easy_cleanup(t->easy);
        t->easy = NULL;
        pthread_mutex_lock(&out->lock);
        s_append(&out->done_head, &out->done_tail, t);
        /* A full pipe already says it: the loop takes the whole list. */
        ssize_t ignored = write(out->wake[1], "", 1);
        (void)ignored;
    }
    pthread_mutex_unlock(&out->lock);
    return NULL;
}

/* CURLOPT_OPENSOCKETFUNCTION / CLOSESOCKETFUNCTION of a mail: its socket,
 * known to the engine while open, so that s_cut() can end a wait libcurl
 * does not bound (at the end of the message, a server that does not answer
 * holds it whatever CURLOPT_TIMEOUT_MS says). */
static curl_socket_t s_on_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *address) {
    (void)purpose;
    s_transfer_t *t = clientp;
    curl_socket_t fd = socket(address->family, address->socktype, address->protocol);
    if (fd >= 0) fcntl(fd, F_SETFD, FD_CLOEXEC);
    pthread_mutex_lock(&t->out->lock);
    t->fd = fd;
    pthread_mutex_unlock(&t->out->lock);
    return fd;
}

static int s_on_close_socket(void *clientp, curl_socket_t fd) {
    s_transfer_t *t = clientp;
    pthread_mutex_lock(&t->out->lock);
    if (t->fd == fd) t->fd = -1;
    pthread_mutex_unlock(&t->out->lock);
    return close(fd);
}

/* End the mail's connection (under `lock`): its worker's wait ends at once,
 * with an error s_classify() reads by `cut`. */
static void s_cut(s_transfer_t *t) {
    if (t->fd >= 0 && !t->cut) shutdown(t->fd, SHUT_RDWR);
    t->cut = true;
}

/* Every S_WATCHDOG_MS while mails are in flight: cut those past their
 * timeout (and a little, so that libcurl's own timeout speaks first when it
 * can). */
static void s_on_watchdog(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    mg_outbound_t *out = arg;
    int64_t now = mg_clock_monotonic_us();
    pthread_mutex_lock(&out->lock);
    for (s_transfer_t *t = out->transfers; t; t = t->next)
        if (t->kind == S_MAIL && t->started_us &&
            now > t->started_us + (t->timeout_ms + S_WATCHDOG_MS) * 1000)
            s_cut(t);
    pthread_mutex_unlock(&out->lock);
}

/* The mails the workers finished: their callbacks, in the loop. */
static void s_mails_done(mg_outbound_t *out) {
    pthread_mutex_lock(&out->lock);
    s_transfer_t *t = out->done_head;
    out->done_head = out->done_tail = NULL;
    pthread_mutex_unlock(&out->lock);
    while (t) {
        s_transfer_t *next = t->qnext;
        mg_outbound_result_t r;
        s_classify(t, t->rc, &r);
        s_finish(t, &r);
        t = next;
    }
}

static void s_on_wake(evutil_socket_t fd, short what, void *arg) {
    (void)what;
    char buf[64];
    while (read(fd, buf, sizeof buf) > 0) {
    }
    s_mails_done(arg);
}

/* The pipe and the workers, on the first mail. Returns 0, or -1 (logged). */
static int s_workers_start(mg_outbound_t *out) {
    if (out->n_workers) return 0;
    if (!out->wake_ev) {
        if (pipe(out->wake) != 0) {
            mg_error("outbound: pipe: %s", strerror(errno));
            out->wake[0] = out->wake[1] = -1;
            return -1;
        }
        for (int i = 0; i < 2; i++) {
            fcntl(out->wake[i], F_SETFD, FD_CLOEXEC);
            fcntl(out->wake[i], F_SETFL, O_NONBLOCK);
        }
        out->wake_ev = event_new(out->base, out->wake[0], EV_READ | EV_PERSIST, s_on_wake, out);
        out->watchdog = event_new(out->base, -1, EV_PERSIST, s_on_watchdog, out);
        struct timeval tv = {0, S_WATCHDOG_MS * 1000};
        if (!out->wake_ev || event_add(out->wake_ev, NULL) != 0 || !out->watchdog ||
            event_add(out->watchdog, &tv) != 0) {
            mg_error("outbound: cannot watch the mail workers");
            return -1;
        }
    }
    for (size_t i = 0; i < S_MAIL_WORKERS; i++) {
        int rc = pthread_create(&out->workers[out->n_workers], NULL, s_mail_worker, out);
        if (rc != 0) {
            mg_error("outbound: cannot start a mail worker: %s", strerror(rc));
            break;
        }
        out->n_workers++;
    }
    return out->n_workers ? 0 : -1;
}

/* Stop the workers: the mails in flight are cut; then every mail still in
 * the engine ends (s_mails_done() for the finished ones). */
static void s_workers_stop(mg_outbound_t *out) {
    pthread_mutex_lock(&out->lock);
    atomic_store(&out->stopping, true);
    for (s_transfer_t *t = out->transfers; t; t = t->next)
        if (t->kind == S_MAIL && t->started_us) s_cut(t);
    pthread_cond_broadcast(&out->work);
    pthread_mutex_unlock(&out->lock);
    for (size_t i = 0; i < out->n_workers; i++)
        pthread_join(out->workers[i], NULL);
    out->n_workers = 0;
    out->queue_head = out->queue_tail = NULL; /* still in out->transfers: ended by the caller */
    s_mails_done(out);
}

/* ---- public API ------------------------------------------------------------ */

mg_outbound_t *mg_outbound_new(struct event_base *base) {
    pthread_once(&s_curl_once, s_curl_init);
    if (s_curl_init_result != CURLE_OK) {
        mg_error("outbound: curl_global_init failed: %s", curl_easy_strerror(s_curl_init_result));
        return NULL;
    }
    mg_outbound_t *out = mg_calloc(1, sizeof *out);
    out->base = base;
    out->wake[0] = out->wake[1] = -1;
    pthread_mutex_init(&out->lock, NULL);
    pthread_cond_init(&out->work, NULL);
    atomic_init(&out->stopping, false);
    out->multi = curl_multi_init();
    if (!out->multi) goto err;
    out->timer = evtimer_new(base, s_on_timer_event, out);
    if (!out->timer) goto err;
    curl_multi_setopt(out->multi, CURLMOPT_SOCKETFUNCTION, s_on_curl_socket);
    curl_multi_setopt(out->multi, CURLMOPT_SOCKETDATA, out);
    curl_multi_setopt(out->multi, CURLMOPT_TIMERFUNCTION, s_on_curl_timer);
    curl_multi_setopt(out->multi, CURLMOPT_TIMERDATA, out);
    return out;
err:
    mg_error("outbound: cannot create the curl multi handle");
    if (out->multi) curl_multi_cleanup(out->multi);
    pthread_mutex_destroy(&out->lock);
    pthread_cond_destroy(&out->work);
    free(out);
    return NULL;
}

void mg_outbound_destroy(mg_outbound_t **out_p) {
    if (!out_p || !*out_p) return;
    mg_outbound_t *out = *out_p;
    out->destroying = true;
    mg_outbound_result_t r = {.delivered = false, .retryable = true, .status = 0};
    snprintf(r.error, sizeof r.error, "aborted: shutting down");
    s_workers_stop(out);
    while (out->transfers)
        s_finish(out->transfers, &r);
    curl_multi_cleanup(out->multi);
    /* curl may keep idle connections without a REMOVE call. */
    while (out->sockets)
        s_socket_free(out, out->sockets);
    event_free(out->timer);
    if (out->wake_ev) event_free(out->wake_ev);
    if (out->watchdog) event_free(out->watchdog);
    for (int i = 0; i < 2; i++)
        if (out->wake[i] >= 0) close(out->wake[i]);
    pthread_mutex_destroy(&out->lock);
    pthread_cond_destroy(&out->work);
    free(out);
    *out_p = NULL;
}

void mg_outbound_drain(mg_outbound_t *out) {
    pthread_mutex_lock(&out->lock);
    s_transfer_t *t = out->queue_head; /* no worker took them: none started */
    out->queue_head = out->queue_tail = NULL;
    pthread_mutex_unlock(&out->lock);
    mg_outbound_result_t r = {.delivered = false, .retryable = true, .not_started = true};
    snprintf(r.error, sizeof r.error, "not started: shutting down");
    while (t) {
        s_transfer_t *next = t->qnext;
        s_finish(t, &r);
        t = next;
    }
}

size_t mg_outbound_pending(const mg_outbound_t *out) {
    return out ? out->pending : 0;
}

static s_transfer_t *s_transfer_new(mg_outbound_t *out, s_kind_t kind, const char *url, long timeout_ms,
                                    mg_outbound_done_fn cb, void *arg) {
    s_transfer_t *t = mg_calloc(1, sizeof *t);
    t->out = out;
    t->kind = kind;
    t->cb = cb;
    t->arg = arg;
    t->easy = curl_easy_init();
    if (!t->easy) {
        free(t);
        return NULL;
    }
    if (timeout_ms <= 0) timeout_ms = S_DEFAULT_TIMEOUT_MS;
    t->timeout_ms = timeout_ms;
    t->fd = -1;
    CURL *e = t->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    return t;
}

/* Hand the prepared transfer to the multi handle (a webhook) or the mail
 * workers; frees it on failure. */
static int s_transfer_start(mg_outbound_t *out, s_transfer_t *t) {
    if (t->kind == S_MAIL) {
        if (s_workers_start(out) != 0) {
            s_transfer_free(t);
            return -1;
        }
        pthread_mutex_lock(&out->lock);
        s_append(&out->queue_head, &out->queue_tail, t);
        pthread_cond_signal(&out->work);
        pthread_mutex_unlock(&out->lock);
    } else {
        CURLMcode mc = curl_multi_add_handle(out->multi, t->easy);
        if (mc != CURLM_OK) {
            mg_error("outbound: cannot start %s: %s", t->label, curl_multi_strerror(mc));
            s_transfer_free(t);
            return -1;
        }
    }
    t->next = out->transfers;
    if (t->next) t->next->prev = t;
    out->transfers = t;
    out->pending++;
    return 0;
}

/* Restrict a transfer (and its redirects) to the schemes it is for, so a
 * redirect can never lead a webhook to file:// or smtp://. The string
 * options exist since libcurl 7.85, where the bitmask ones became
 * deprecated. */
static void s_allow_protocols(CURL *e, const char *list) {
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, list);
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, list);
#else
    long mask = strcmp(list, "http,https") == 0 ? (CURLPROTO_HTTP | CURLPROTO_HTTPS)
                                                : (CURLPROTO_SMTP | CURLPROTO_SMTPS);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS, mask);
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS, mask);
#endif
}

/* The host of an URL, for logs: webhook paths carry secret tokens. */
static char *s_url_host(const char *url) {
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t n = strcspn(p, "/?#");
    const char *at = memchr(p, '@', n);
    if (at) {
        n -= (size_t)(at + 1 - p);
        p = at + 1;
    }
    return mg_strndup(p, n);
}

static size_t s_discard(char *ptr, size_t size, size_t nmemb, void *userdata) {
    (void)ptr;
    (void)userdata;
    return size * nmemb;
}

/* 1 if `key` may go into a header line: printable ASCII, 1..MG_OUTBOUND_KEY_MAX bytes. */
static int s_header_value_ok(const char *key) {
    size_t n = 0;
    for (; key[n]; n++)
        if (key[n] < 0x20 || key[n] > 0x7e || n >= MG_OUTBOUND_KEY_MAX) return 0;
    return n > 0;
}

int mg_outbound_webhook(mg_outbound_t *out, const char *url, const char *json, const char *idempotency_key,
                        long timeout_ms, mg_outbound_done_fn cb, void *arg) {
    if (!out || out->destroying || !url || !json || !cb) return -1;
    if (idempotency_key && !s_header_value_ok(idempotency_key)) return -1;
    if (!mg_outbound_webhook_url_is_valid(url)) {
        mg_warn("outbound: webhook URL is not an http(s) URL with a host");
        return -1;
    }
    s_transfer_t *t = s_transfer_new(out, S_WEBHOOK, url, timeout_ms, cb, arg);
    if (!t) return -1;
    t->label = s_url_host(url);
    CURL *e = t->easy;
    t->headers = curl_slist_append(NULL, "Content-Type: application/json");
    /* No "Expect: 100-continue" round trip for small bodies. */
    t->headers = curl_slist_append(t->headers, "Expect:");
    if (idempotency_key) {
        char *line = mg_asprintf("Idempotency-Key: %s", idempotency_key);
        t->headers = curl_slist_append(t->headers, line);
        free(line);
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(json));
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, json);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, S_MAX_REDIRECTS);
    /* A POST answered 301/302/303 must stay a POST, not turn into a GET. */
    curl_easy_setopt(e, CURLOPT_POSTREDIR, (long)CURL_REDIR_POST_ALL);
    s_allow_protocols(e, "http,https");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "maillage/" MAILLAGE_VERSION);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, s_discard);
    return s_transfer_start(out, t);
}

/* CURLOPT_HEADERFUNCTION of a mail: libcurl hands it every reply line of
 * the server. Keeps the last refusal's words ("451 4.3.0 Mailbox busy":
 * "4.3.0 Mailbox busy"), printable ASCII only, since they reach logs and
 * staff's delivery state. */
static size_t s_on_reply_line(char *line, size_t size, size_t nitems, void *userdata) {
    s_transfer_t *t = userdata;
    size_t n = size * nitems;
    if (t->performed || n < 4 || (line[0] != '4' && line[0] != '5') || !isdigit((unsigned char)line[1]) ||
        !isdigit((unsigned char)line[2]) || (line[3] != ' ' && line[3] != '-'))
        return n;
    t->refusal_code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    size_t len = 0;
    for (size_t i = 4; i < n && line[i] != '\r' && line[i] != '\n' && len + 1 < sizeof t->refusal; i++)
        t->refusal[len++] = line[i] >= 0x20 && line[i] < 0x7f ? line[i] : '?';
    t->refusal[len] = '\0';
    return n;
}

/* CURLOPT_READFUNCTION: the composed message, in as many pieces as curl
 * asks for. */
static size_t s_on_read(char *buffer, size_t size, size_t nitems, void *userdata) {
    s_transfer_t *t = userdata;
    size_t n = size * nitems, left = t->body_len - t->body_pos;
    if (n > left) n = left;
    memcpy(buffer, t->body + t->body_pos, n);
    t->body_pos += n;
    return n;
}

int mg_outbound_mail(mg_outbound_t *out, const mg_mail_t *mail, mg_outbound_done_fn cb, void *arg) {
    if (!out || out->destroying || !mail || !cb || !mail->smtp_url) return -1;
    if (strncasecmp(mail->smtp_url, "smtp://", 7) != 0 && strncasecmp(mail->smtp_url, "smtps://", 8) != 0) {
        mg_warn("outbound: SMTP URL is neither smtp nor smtps");
        return -1;
    }
    char *body = mg_outbound_compose(mail);
    if (!body) {
        mg_warn("outbound: mail %s refused: invalid address or header",
                mail->message_id ? mail->message_id : "(no id)");
        return -1;
    }
    s_transfer_t *t = s_transfer_new(out, S_MAIL, mail->smtp_url, mail->timeout_ms, cb, arg);
    if (!t) {
        free(body);
        return -1;
    }
    t->body = body;
    t->body_len = strlen(body);
    /* The Message-ID line as composed, for logs (never the recipient). */
    const char *mid = strstr(body, "Message-ID: ");
    t->label = mg_strndup(mid + 12, strcspn(mid + 12, "\r\n"));

    const char *name, *addr;
    size_t name_len, addr_len;
    s_parse_mailbox(mail->from, &name, &name_len, &addr, &addr_len);
    char *from = mg_asprintf("<%.*s>", (int)addr_len, addr);
    s_parse_mailbox(mail->to, &name, &name_len, &addr, &addr_len);
    char *to = mg_asprintf("<%.*s>", (int)addr_len, addr);
    t->rcpt = curl_slist_append(NULL, to);
    free(to);

    CURL *e = t->easy;
    curl_easy_setopt(e, CURLOPT_MAIL_FROM, from); /* copied by curl */
    free(from);
    curl_easy_setopt(e, CURLOPT_MAIL_RCPT, t->rcpt);
    curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, s_on_read);
    curl_easy_setopt(e, CURLOPT_READDATA, t);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, s_on_reply_line);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)t->body_len);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, s_on_open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, t);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, s_on_close_socket);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, t);
    s_allow_protocols(e, "smtp,smtps");
    if (mail->starttls) curl_easy_setopt(e, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
    if (mail->username && *mail->username) {
        curl_easy_setopt(e, CURLOPT_USERNAME, mail->username);
        curl_easy_setopt(e, CURLOPT_PASSWORD, mail->password ? mail->password : "");
    }
    return s_transfer_start(out, t);
}
