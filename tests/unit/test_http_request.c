/* test_http_request.c -- what the gateway reads of a request before any
 * handler (http_request.h): the path split then decoded, the query refused
 * when it could be read two ways, the credential from a bearer token or the
 * session cookie, whatever a client sends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <cmocka.h>
#include <event2/http.h>

#include "maillage/http_request.h"

static void test_path_is_split_before_it_is_decoded(void **state) {
    (void)state;
    mg_http_path_t p;
    assert_int_equal(mg_http_path_parse("/v1/needs/x%2Fmatches", &p), MG_HTTP_PATH_OK);
    assert_int_equal(p.count, 3);
    assert_string_equal(p.seg[2], "x/matches");
    assert_string_equal(p.decoded, "/v1/needs/x/matches");
    mg_http_path_clear(&p);

    assert_int_equal(mg_http_path_parse("/v1/communes/%C3%89vreux", &p), MG_HTTP_PATH_OK);
    assert_string_equal(p.seg[2], "\xc3\x89vreux");
    mg_http_path_clear(&p);

    assert_int_equal(mg_http_path_parse("/", &p), MG_HTTP_PATH_OK);
    assert_int_equal(p.count, 0);
    assert_string_equal(p.decoded, "/");
    mg_http_path_clear(&p);

    /* A bad escape stays as it is (libevent's reading). */
    assert_int_equal(mg_http_path_parse("/a%zz/%", &p), MG_HTTP_PATH_OK);
    assert_string_equal(p.seg[0], "a%zz");
    assert_string_equal(p.seg[1], "%");
    mg_http_path_clear(&p);
}

static void test_hostile_paths_are_refused_by_kind(void **state) {
    (void)state;
    static const struct {
        const char *raw;
        mg_http_path_status_t want;
    } cases[] = {
        {"/v1/needs/a%00b", MG_HTTP_PATH_MALFORMED}, /* would end the id early */
        {"/%00", MG_HTTP_PATH_MALFORMED},
        {"/v1/%FF%FE", MG_HTTP_PATH_MALFORMED}, /* not UTF-8 */
        {"/v1/%C0%AF", MG_HTTP_PATH_MALFORMED}, /* an overlong "/" */
        {"/v1//needs", MG_HTTP_PATH_NO_SUCH},
        {"/v1/needs/", MG_HTTP_PATH_NO_SUCH},
        {"//", MG_HTTP_PATH_NO_SUCH},
        {"v1/needs", MG_HTTP_PATH_NO_SUCH},
        {"", MG_HTTP_PATH_NO_SUCH},
        {"/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q", MG_HTTP_PATH_NO_SUCH}, /* 17 segments */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mg_http_path_t p;
        mg_http_path_status_t got = mg_http_path_parse(cases[i].raw, &p);
        if (got != cases[i].want) fail_msg("%s: %d, want %d", cases[i].raw, got, cases[i].want);
        if (got != MG_HTTP_PATH_OK) assert_int_equal(p.count, 0);
        mg_http_path_clear(&p);
    }
    mg_http_path_t p;
    assert_int_equal(mg_http_path_parse("/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p", &p), MG_HTTP_PATH_OK);
    assert_int_equal(p.count, MG_HTTP_MAX_SEGMENTS);
    mg_http_path_clear(&p);
}

/* Parse `qs`; returns the status, `out` cleared after `check` ran. */
static mg_http_query_status_t s_query(const char *qs, const char *name, const char *want_value) {
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    const char *repeated = NULL;
    size_t count = 0;
    mg_http_query_status_t rc = mg_http_query_parse(qs, &q, &repeated, &count);
    if (rc == MG_HTTP_QUERY_OK && name) {
        const char *v = evhttp_find_header(&q, name);
        if (!v || strcmp(v, want_value) != 0)
            fail_msg("%s: %s = %s, want %s", qs, name, v ? v : "(none)", want_value);
    }
    if (rc == MG_HTTP_QUERY_REPEATED && name && strcasecmp(repeated, name) != 0)
        fail_msg("%s: repeated %s, want %s", qs, repeated, name);
    evhttp_clear_headers(&q);
    return rc;
}

static void test_query_reads_what_browsers_build(void **state) {
    (void)state;
    assert_int_equal(s_query("category=locaux&&department=14&", "department", "14"), MG_HTTP_QUERY_OK);
    assert_int_equal(s_query("x", "x", ""), MG_HTTP_QUERY_OK);
    assert_int_equal(s_query("q=caf%C3%A9+bio", "q", "caf\xc3\xa9 bio"), MG_HTTP_QUERY_OK);
    assert_int_equal(s_query("d%65partment=14", "d%65partment", "14"), MG_HTTP_QUERY_OK); /* names stay raw */
    assert_int_equal(s_query("", NULL, NULL), MG_HTTP_QUERY_OK);
    assert_int_equal(s_query("&&&", NULL, NULL), MG_HTTP_QUERY_OK);
}

static void test_query_that_reads_two_ways_is_refused(void **state) {
    (void)state;
    assert_int_equal(s_query("category=locaux%00x", NULL, NULL), MG_HTTP_QUERY_MALFORMED);
    assert_int_equal(s_query("a%00=1", NULL, NULL), MG_HTTP_QUERY_MALFORMED);
    assert_int_equal(s_query("q=%FF", NULL, NULL), MG_HTTP_QUERY_MALFORMED);
    assert_int_equal(s_query("\xff=1", NULL, NULL), MG_HTTP_QUERY_MALFORMED);
    assert_int_equal(s_query("q=\xc3", NULL, NULL), MG_HTTP_QUERY_MALFORMED);
    assert_int_equal(s_query("category=locaux&Category=emploi", "category", NULL), MG_HTTP_QUERY_REPEATED);
    char many[MG_HTTP_MAX_PARAMETERS * 8 + 16] = "";
    for (int i = 0; i <= MG_HTTP_MAX_PARAMETERS; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%sp%d=1", i ? "&" : "", i);
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    size_t count = 0;
    assert_int_equal(mg_http_query_parse(many, &q, NULL, &count), MG_HTTP_QUERY_TOO_MANY);
    assert_int_equal(count, MG_HTTP_MAX_PARAMETERS + 1);
    evhttp_clear_headers(&q);
}

/* The credential found, as a string ("" for none). */
static const char *s_credential(const char *authorization, const char *cookie) {
    static char out[128];
    const char *token = NULL;
    size_t len = 0;
    out[0] = '\0';
    if (mg_http_credential(authorization, cookie, &token, &len)) {
        assert_true(len > 0 && len < sizeof out);
        memcpy(out, token, len);
        out[len] = '\0';
    }
    return out;
}

static void test_credential_from_a_bearer_token_or_the_session_cookie(void **state) {
    (void)state;
    assert_string_equal(s_credential("Bearer abc", NULL), "abc");
    assert_string_equal(s_credential("bearer \t abc  ", "mg_session=other"), "abc");
    assert_string_equal(s_credential(NULL, "theme=dark; mg_session=s3cr3t; lang=fr"), "s3cr3t");
    assert_string_equal(s_credential(NULL, "mg_session=\"quoted\""), "quoted"); /* RFC 6265 */
    assert_string_equal(s_credential(NULL, " mg_session = spaced ;"), "spaced");
    /* None: another scheme (and then no cookie), an empty token, a cookie of
     * a longer or shorter name, an empty value. */
    assert_string_equal(s_credential("Basic dXNlcjpwYXNz", "mg_session=s3cr3t"), "");
    assert_string_equal(s_credential("Bearer   ", NULL), "");
    assert_string_equal(s_credential("Bearerabc", NULL), "");
    assert_string_equal(s_credential("Bearer", NULL), "");
    assert_string_equal(s_credential(NULL, "xmg_session=a; mg_sessions=b; mg_sessio=c"), "");
    assert_string_equal(s_credential(NULL, "mg_session=; mg_session=later"), "");
    assert_string_equal(s_credential(NULL, "mg_session=\"\""), "");
    assert_string_equal(s_credential(NULL, "mg_session"), "");
    assert_string_equal(s_credential(NULL, ";;;="), "");
    assert_string_equal(s_credential(NULL, NULL), "");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_is_split_before_it_is_decoded),
        cmocka_unit_test(test_hostile_paths_are_refused_by_kind),
        cmocka_unit_test(test_query_reads_what_browsers_build),
        cmocka_unit_test(test_query_that_reads_two_ways_is_refused),
        cmocka_unit_test(test_credential_from_a_bearer_token_or_the_session_cookie),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
