/* http_request.c -- the path, query and credential of an HTTP request
 * (http_request.h). */
#include "maillage/http_request.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/http.h>

#include "maillage/mem.h"
#include "maillage/envelope.h" /* mg_utf8_is_valid() */

/* evhttp_uridecode() fails only for want of memory: so does mg_malloc(). */
static char *s_uridecode(const char *text, size_t *len) {
    char *decoded = evhttp_uridecode(text, 0, len);
    if (!decoded) abort();
    return decoded;
}

mg_http_path_status_t mg_http_path_parse(const char *raw_path, mg_http_path_t *path) {
    memset(path, 0, sizeof *path);
    size_t len = 0;
    char *decoded = s_uridecode(raw_path, &len);
    if (strlen(decoded) != len || !mg_utf8_is_valid(decoded, len)) {
        free(decoded);
        return MG_HTTP_PATH_MALFORMED;
    }
    path->decoded = decoded;
    if (raw_path[0] != '/') return MG_HTTP_PATH_NO_SUCH;
    /* Split the raw path, then decode each segment in place: a decoded
     * segment is never longer than its raw form, and none holds a "%00"
     * since the whole path has none. */
    char *p = path->buf_ = mg_strdup(raw_path + 1);
    if (!*p) return MG_HTTP_PATH_OK; /* "/" has no segment */
    for (;;) {
        char *slash = strchr(p, '/');
        if (slash) *slash = '\0';
        if (!*p || path->count == MG_HTTP_MAX_SEGMENTS) {
            path->count = 0;
            return MG_HTTP_PATH_NO_SUCH;
        }
        size_t n = 0;
        char *segment = s_uridecode(p, &n);
        memcpy(p, segment, n + 1);
        free(segment);
        path->seg[path->count++] = p;
        if (!slash) break;
        p = slash + 1;
    }
    return MG_HTTP_PATH_OK;
}

void mg_http_path_clear(mg_http_path_t *path) {
    free(path->decoded);
    free(path->buf_);
    memset(path, 0, sizeof *path);
}

/* Every decoded name and value is UTF-8 text. */
static int s_query_is_text(const struct evkeyvalq *query) {
    for (const struct evkeyval *kv = query->tqh_first; kv; kv = kv->next.tqe_next)
        if (!mg_utf8_is_valid(kv->key, strlen(kv->key)) || !mg_utf8_is_valid(kv->value, strlen(kv->value)))
            return 0;
    return 1;
}

mg_http_query_status_t mg_http_query_parse(const char *qs, struct evkeyvalq *out, const char **repeated,
                                           size_t *count) {
    /* Drop the empty pairs and give a name alone its "=": libevent refuses
     * both. At worst "a&b&..." gains one "=" per pair. */
    size_t len = strlen(qs);
    char *norm = mg_malloc(2 * len + 1), *w = norm;
    for (const char *p = qs; *p;) {
        size_t n = strcspn(p, "&");
        if (n > 0) {
            if (w > norm) *w++ = '&';
            memcpy(w, p, n);
            w += n;
            if (!memchr(p, '=', n)) *w++ = '=';
        }
        p += n + (p[n] == '&');
    }
    *w = '\0';
    int bad = strstr(norm, "%00") || evhttp_parse_query_str(norm, out) != 0 || !s_query_is_text(out);
    free(norm);
    if (bad) return MG_HTTP_QUERY_MALFORMED;
    size_t n = 0;
    for (const struct evkeyval *kv = out->tqh_first; kv; kv = kv->next.tqe_next)
        n++;
    if (n > MG_HTTP_MAX_PARAMETERS) {
        if (count) *count = n;
        return MG_HTTP_QUERY_TOO_MANY;
    }
    for (const struct evkeyval *kv = out->tqh_first; kv; kv = kv->next.tqe_next)
        for (const struct evkeyval *later = kv->next.tqe_next; later; later = later->next.tqe_next)
            if (strcasecmp(kv->key, later->key) == 0) {
                if (repeated) *repeated = kv->key;
                return MG_HTTP_QUERY_REPEATED;
            }
    return MG_HTTP_QUERY_OK;
}

static int s_blank(char c) {
    return c == ' ' || c == '\t';
}

/* [*p, *p + *len) without the blanks around it. */
static void s_trim(const char **p, size_t *len) {
    while (*len && s_blank(**p)) {
        (*p)++;
        (*len)--;
    }
    while (*len && s_blank((*p)[*len - 1]))
        (*len)--;
}

int mg_http_credential(const char *authorization, const char *cookie, const char **token, size_t *len) {
    const char *value = NULL;
    size_t n = 0;
    if (authorization) {
        if (strncasecmp(authorization, "Bearer", 6) != 0 || !s_blank(authorization[6])) return 0;
        value = authorization + 7;
        n = strlen(value);
    } else {
        static const size_t name_len = sizeof MG_HTTP_SESSION_COOKIE - 1;
        for (const char *p = cookie; p && *p;) {
            size_t pair = strcspn(p, ";");
            const char *name = p;
            size_t name_n = pair;
            const char *eq = memchr(p, '=', pair);
            if (eq) name_n = (size_t)(eq - p);
            s_trim(&name, &name_n);
            if (eq && name_n == name_len && strncmp(name, MG_HTTP_SESSION_COOKIE, name_len) == 0) {
                value = eq + 1;
                n = pair - (size_t)(eq + 1 - p);
                s_trim(&value, &n);
                if (n >= 2 && value[0] == '"' && value[n - 1] == '"') { /* RFC 6265 allows quotes */
                    value++;
                    n -= 2;
                }
                break;
            }
            p += pair + (p[pair] == ';');
        }
    }
    if (!value) return 0;
    s_trim(&value, &n);
    if (n == 0) return 0;
    *token = value;
    *len = n;
    return 1;
}
