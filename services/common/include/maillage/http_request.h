/* http_request.h -- what the gateway reads of an HTTP request before any
 * handler runs: the path's segments, the query's parameters and the
 * credential (a bearer token or the staff page's session cookie).
 *
 * Every input is text a client chose; each function answers any bytes
 * without crashing and says which way a request is refused, for the
 * gateway to answer with its status. Hostile cases in
 * tests/unit/test_http_request.c, fuzz target fuzz/fuzz_http_request.c.
 *
 * Pure (no I/O); any thread. */
#ifndef MAILLAGE_HTTP_REQUEST_H
#define MAILLAGE_HTTP_REQUEST_H

#include <stddef.h>

#include <event2/keyvalq_struct.h>

/* Most path segments and query parameters a request may carry (the API
 * reads at most ten parameters). */
#define MG_HTTP_MAX_SEGMENTS   16
#define MG_HTTP_MAX_PARAMETERS 32

/* The name of the staff page's session cookie. */
#define MG_HTTP_SESSION_COOKIE "mg_session"

typedef struct {
    char *decoded;                   /* the whole path, %-decoded (owned) */
    char *seg[MG_HTTP_MAX_SEGMENTS]; /* each segment decoded on its own (into `buf_`) */
    int count;                       /* 0 for "/" */
    char *buf_;
} mg_http_path_t;

typedef enum {
    MG_HTTP_PATH_OK = 0,
    MG_HTTP_PATH_MALFORMED, /* a "%00" or not UTF-8 once decoded (HTTP 400) */
    MG_HTTP_PATH_NO_SUCH,   /* no resource has such a path: not starting with
                               "/", an empty segment ("//", a trailing "/"),
                               more than MG_HTTP_MAX_SEGMENTS (HTTP 404) */
} mg_http_path_status_t;

/* Parse the raw (still %-encoded) path of a request target (not NULL: "/"
 * for none) into `path`.
 * The path is split first, then each segment decoded: a "%2F" is a
 * character of its segment ("/v1/needs/x%2Fmatches" has three segments, the
 * last "x/matches"), not a separator. A bad escape ("%zz") stays as it is,
 * as libevent leaves it. `path` is always to be cleared, whatever the
 * status; `decoded` is set unless MALFORMED, the segments only when OK. */
mg_http_path_status_t mg_http_path_parse(const char *raw_path, mg_http_path_t *path);
void mg_http_path_clear(mg_http_path_t *path);

typedef enum {
    MG_HTTP_QUERY_OK = 0,
    MG_HTTP_QUERY_MALFORMED, /* a "%00", or a name or value not UTF-8 once decoded */
    MG_HTTP_QUERY_TOO_MANY,  /* more than MG_HTTP_MAX_PARAMETERS */
    MG_HTTP_QUERY_REPEATED,  /* a name given twice (ignoring case, as
                                evhttp_find_header() reads them) */
} mg_http_query_status_t;

/* Parse the raw query string `qs` (without its "?"; not NULL) into `out`, an empty
 * list the caller clears with evhttp_clear_headers() whatever the status.
 * Values are %-decoded, "+" as a space; names are kept as sent (libevent's
 * reading: "?d%65partment=14" names no department). Empty pairs
 * ("a=1&&b=2", a trailing "&") are passed over and a name alone ("?x") has
 * an empty value, as browsers build them. A name given
 * twice is refused, since which one would count is anyone's guess; so is
 * "%00", which would end a decoded value early ("locaux%00x" read as
 * "locaux"). For REPEATED, *repeated (if not NULL) is the name, in `out`;
 * for TOO_MANY, *count (if not NULL) is how many there are. */
mg_http_query_status_t mg_http_query_parse(const char *qs, struct evkeyvalq *out, const char **repeated,
                                           size_t *count);

/* The credential of a request: the token of `authorization` (an
 * Authorization header's value, NULL without one) when its scheme is
 * "Bearer" (any case); else, only if there is no Authorization header at
 * all and `cookie` (a Cookie header's value, or NULL) is given, the value of
 * its MG_HTTP_SESSION_COOKIE, without the quotes RFC 6265 allows around it.
 * Blanks around the token are dropped. Returns 1 with *token pointing into
 * the header and *len its length (at least 1), or 0 when there is none. */
int mg_http_credential(const char *authorization, const char *cookie, const char **token, size_t *len);

#endif
