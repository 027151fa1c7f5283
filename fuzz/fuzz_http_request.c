/* fuzz_http_request.c -- libFuzzer target for what the gateway reads of a
 * request before any handler (http_request.h).
 *
 * The input is up to four lines: the raw path, the raw query string, an
 * Authorization header and a Cookie header; the first byte's bits 0 and 1
 * say whether the last two are sent at all. Whatever the bytes: a path
 * accepted has at most MG_HTTP_MAX_SEGMENTS segments, none empty, each
 * UTF-8 without NUL and no longer than the raw path; a query accepted has
 * at most MG_HTTP_MAX_PARAMETERS names, no two alike, all UTF-8; a
 * credential found lies inside the header it came from, without blanks
 * around it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <event2/http.h>

#include "maillage/envelope.h"
#include "maillage/http_request.h"

/* The next line of [*p, end) as a new string; *p moves past it. */
static char *s_line(const uint8_t **p, const uint8_t *end) {
    const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
    const uint8_t *stop = nl ? nl : end;
    size_t n = (size_t)(stop - *p);
    char *s = malloc(n + 1);
    if (!s) abort();
    memcpy(s, *p, n);
    s[n] = '\0'; /* a NUL inside cuts it, as a header's C string would be */
    *p = nl ? nl + 1 : end;
    return s;
}

static void s_check_path(const char *raw) {
    mg_http_path_t path;
    mg_http_path_status_t rc = mg_http_path_parse(raw, &path);
    if (rc == MG_HTTP_PATH_MALFORMED && (path.decoded || path.count)) abort();
    if (rc == MG_HTTP_PATH_NO_SUCH && (!path.decoded || path.count)) abort();
    if (rc == MG_HTTP_PATH_OK) {
        if (!path.decoded || !mg_utf8_is_valid(path.decoded, strlen(path.decoded))) abort();
        if (path.count < 0 || path.count > MG_HTTP_MAX_SEGMENTS) abort();
        for (int i = 0; i < path.count; i++) {
            size_t n = strlen(path.seg[i]);
            if (n == 0 || n > strlen(raw) || !mg_utf8_is_valid(path.seg[i], n)) abort();
        }
    }
    mg_http_path_clear(&path);
}

static void s_check_query(const char *qs) {
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    const char *repeated = NULL;
    size_t count = 0;
    mg_http_query_status_t rc = mg_http_query_parse(qs, &q, &repeated, &count);
    if (rc == MG_HTTP_QUERY_REPEATED && !repeated) abort();
    if (rc == MG_HTTP_QUERY_TOO_MANY && count <= MG_HTTP_MAX_PARAMETERS) abort();
    if (rc == MG_HTTP_QUERY_OK) {
        size_t n = 0;
        for (const struct evkeyval *kv = q.tqh_first; kv; kv = kv->next.tqe_next, n++) {
            if (!mg_utf8_is_valid(kv->key, strlen(kv->key)) ||
                !mg_utf8_is_valid(kv->value, strlen(kv->value)))
                abort();
            for (const struct evkeyval *later = kv->next.tqe_next; later; later = later->next.tqe_next)
                if (strcasecmp(kv->key, later->key) == 0) abort();
        }
        if (n > MG_HTTP_MAX_PARAMETERS) abort();
    }
    evhttp_clear_headers(&q);
}

static int s_inside(const char *token, size_t len, const char *header) {
    return header && token >= header && token + len <= header + strlen(header);
}

static void s_check_credential(const char *authorization, const char *cookie) {
    const char *token = NULL;
    size_t len = 0;
    if (!mg_http_credential(authorization, cookie, &token, &len)) return;
    if (len == 0 || !(s_inside(token, len, authorization) || s_inside(token, len, cookie))) abort();
    if (token[0] == ' ' || token[0] == '\t' || token[len - 1] == ' ' || token[len - 1] == '\t') abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const uint8_t *p = data + 1, *end = data + size;
    char *path = s_line(&p, end), *query = s_line(&p, end), *authorization = s_line(&p, end),
         *cookie = s_line(&p, end);
    s_check_path(path);
    s_check_query(query);
    s_check_credential(data[0] & 1 ? authorization : NULL, data[0] & 2 ? cookie : NULL);
    free(path);
    free(query);
    free(authorization);
    free(cookie);
    return 0;
}
