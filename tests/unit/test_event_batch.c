/* test_event_batch.c -- mg_event_batch_parse(): an HTTP body of events (one
 * object, an array, NDJSON) becomes validated envelopes, all or nothing, and
 * the first bad element is named by its index and the JSON path of its
 * field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "maillage/clock.h"
#include "maillage/communes.h"
#include "maillage/config.h"
#include "maillage/event_batch.h"
#include "maillage/taxonomy.h"

static mg_taxonomy_t *s_taxonomy;
static mg_communes_t *s_communes;

#define NEED(id, commune)                                                                                              \
    "{" id "\"type\":\"need.reported\",\"needReported\":{\"need\":{\"needId\":\"n-1\",\"structureId\":\"s-1\","       \
    "\"category\":\"locaux\",\"title\":\"Local\",\"commune\":\"" commune "\"}}}"
#define OFFER(id)                                                                                                      \
    "{" id "\"type\":\"offer.published\",\"offerPublished\":{\"offer\":{\"offerId\":\"o-1\",\"providerId\":\"s-2\","   \
    "\"category\":\"materiel\",\"title\":\"Pret\",\"commune\":\"76540\"}}}"

static int s_setup(void **state) {
    (void)state;
    char err[256];
    mg_config_t *cfg = mg_config_load(NULL, err, sizeof err);
    assert_non_null(cfg);
    s_taxonomy = mg_taxonomy_new(cfg, err, sizeof err);
    s_communes = mg_communes_load(mg_config_str(cfg, "data", "communes_file"), err, sizeof err);
    mg_config_destroy(&cfg);
    assert_non_null(s_taxonomy);
    assert_non_null(s_communes);
    return 0;
}

static int s_teardown(void **state) {
    (void)state;
    mg_taxonomy_destroy(&s_taxonomy);
    mg_communes_destroy(&s_communes);
    return 0;
}

static mg_event_batch_options_t s_opts(int ndjson, const char *types) {
    mg_event_batch_options_t o = {.ndjson = ndjson,
                                  .max_events = 3,
                                  .max_envelope_bytes = 262144,
                                  .allowed_types = types,
                                  .taxonomy = s_taxonomy,
                                  .communes = s_communes};
    return o;
}

static mg_event_batch_status_t s_parse(const char *body, int ndjson, const char *types, mg_event_batch_t *b,
                                       mg_event_batch_error_t *e) {
    mg_event_batch_options_t o = s_opts(ndjson, types);
    return mg_event_batch_parse(body, strlen(body), &o, b, e);
}

/* The error of `body`: status, code, index and field as expected, and an
 * empty batch. */
static void s_expect_error(const char *body, int ndjson, const char *types, mg_event_batch_status_t status,
                           const char *code, long index, const char *field) {
    mg_event_batch_t b;
    mg_event_batch_error_t e;
    mg_event_batch_status_t rc = s_parse(body, ndjson, types, &b, &e);
    if (rc != status || strcmp(e.code, code) != 0 || e.index != index || strcmp(e.field, field) != 0)
        fail_msg("%s\n-> status %d code %s index %ld field \"%s\": %s", body, rc, e.code, e.index, e.field, e.message);
    assert_int_equal(b.count, 0);
    assert_null(b.items);
    assert_true(e.message[0] != '\0');
}

static void test_single_object_gets_an_id_and_loses_its_source(void **state) {
    (void)state;
    mg_event_batch_t b;
    mg_event_batch_error_t e;
    const char *body = NEED("\"source\":\"someone-else\",\"receivedAtMs\":\"5\",\"sequence\":\"9\",", "14118");
    assert_int_equal(s_parse(body, 0, NULL, &b, &e), MG_EVENT_BATCH_OK);
    assert_int_equal(b.count, 1);
    assert_true(b.single);
    assert_int_equal(strlen(b.items[0].event_id), MG_ULID_LEN);
    assert_string_equal(b.items[0].type, "need.reported");
    mg_envelope_t *env = mg_envelope_unpack(b.items[0].data, b.items[0].len);
    assert_non_null(env);
    assert_string_equal(env->event_id, b.items[0].event_id);
    assert_string_equal(env->source, "");
    assert_int_equal(env->received_at_ms, 0);
    assert_int_equal(env->sequence, 0);
    assert_string_equal(env->need_reported->need->commune, "14118");
    mg_envelope_free(env);
    mg_event_batch_clear(&b);
}

static void test_array_keeps_order_and_ids(void **state) {
    (void)state;
    mg_event_batch_t b;
    mg_event_batch_error_t e;
    const char *body = "[" NEED("\"eventId\":\"a-1\",", "14118") "," OFFER("\"eventId\":\"a-2\",") "," NEED("", "50129") "]";
    assert_int_equal(s_parse(body, 0, NULL, &b, &e), MG_EVENT_BATCH_OK);
    assert_int_equal(b.count, 3);
    assert_false(b.single);
    assert_string_equal(b.items[0].event_id, "a-1");
    assert_string_equal(b.items[1].event_id, "a-2");
    assert_string_equal(b.items[1].type, "offer.published");
    assert_int_equal(strlen(b.items[2].event_id), MG_ULID_LEN);
    mg_event_batch_clear(&b);
    assert_int_equal(b.count, 0);
}

static void test_ndjson_skips_blank_lines_and_crlf(void **state) {
    (void)state;
    mg_event_batch_t b;
    mg_event_batch_error_t e;
    const char *body = "\n" NEED("\"eventId\":\"l-1\",", "14118") "\r\n  \n" OFFER("\"eventId\":\"l-2\",") "\r\n";
    assert_int_equal(s_parse(body, 1, NULL, &b, &e), MG_EVENT_BATCH_OK);
    assert_int_equal(b.count, 2);
    assert_false(b.single);
    assert_string_equal(b.items[1].event_id, "l-2");
    mg_event_batch_clear(&b);
}

static void test_invalid_element_is_named_by_index_and_field(void **state) {
    (void)state;
    s_expect_error("[" NEED("", "14118") "," NEED("", "99999") "]", 0, NULL, MG_EVENT_BATCH_INVALID,
                   "invalid_event", 1, "needReported.need.commune");
    s_expect_error(NEED("", "99999"), 0, NULL, MG_EVENT_BATCH_INVALID, "invalid_event", 0,
                   "needReported.need.commune");
    s_expect_error(NEED("", "14118") "\n" NEED("", "1411"), 1, NULL, MG_EVENT_BATCH_INVALID, "invalid_event", 1,
                   "needReported.need.commune");
    /* Wrong JSON types and unknown fields are named by the converter. */
    s_expect_error("[{\"type\":\"need.reported\",\"needReported\":{\"need\":{\"radiusKm\":\"far\"}}}]", 0, NULL,
                   MG_EVENT_BATCH_INVALID, "invalid_event", 0, "needReported.need.radiusKm");
    s_expect_error("{\"type\":\"need.reported\",\"bogus\":1}", 0, NULL, MG_EVENT_BATCH_INVALID, "invalid_event", 0,
                   "bogus");
    s_expect_error("{\"eventId\":\"a b\",\"type\":\"need.closed\",\"needClosed\":{\"needId\":\"n-1\"}}", 0, NULL,
                   MG_EVENT_BATCH_INVALID, "invalid_event", 0, "eventId");
    /* A type and a payload that disagree. */
    s_expect_error("{\"type\":\"offer.published\",\"needClosed\":{\"needId\":\"n-1\"}}", 0, NULL,
                   MG_EVENT_BATCH_INVALID, "invalid_event", 0, "type");
}

static void test_control_characters_and_nul_are_refused(void **state) {
    (void)state;
    s_expect_error("{\"type\":\"need.reported\",\"needReported\":{\"need\":{\"needId\":\"n-1\",\"structureId\":\"s-1\","
                   "\"category\":\"locaux\",\"title\":\"a\\u0007b\",\"commune\":\"14118\"}}}",
                   0, NULL, MG_EVENT_BATCH_INVALID, "invalid_event", 0, "needReported.need.title");
    /* jansson refuses \u0000 without JSON_ALLOW_NUL, and raw bytes below 0x20. */
    s_expect_error("{\"type\":\"need.reported\",\"needReported\":{\"need\":{\"title\":\"a\\u0000b\"}}}", 0, NULL,
                   MG_EVENT_BATCH_INVALID, "invalid_json", -1, "");
    s_expect_error("{\"type\":\"need.reported\",\"needReported\":{\"need\":{\"title\":\"a\001b\"}}}", 0, NULL,
                   MG_EVENT_BATCH_INVALID, "invalid_json", -1, "");
    mg_event_batch_t b;
    mg_event_batch_error_t e;
    mg_event_batch_options_t o = s_opts(0, NULL);
    static const char with_nul[] = "[{\"eventId\":\"x\0\"}]";
    assert_int_equal(mg_event_batch_parse(with_nul, sizeof with_nul - 1, &o, &b, &e), MG_EVENT_BATCH_INVALID);
    assert_string_equal(e.code, "invalid_json");
    assert_string_equal(e.message, "a NUL byte at byte 14 of the body"); /* not jansson's "end of file" */
    s_parse("{\"type\":\"need.reported\",\"needReported\":{\"need\":{\"title\":\"a\\u0000b\"}}}", 0, NULL, &b,
            &e);
    assert_non_null(strstr(e.message, "\\u0000 (NUL) is not allowed in a string"));
    assert_null(strstr(e.message, "JSON_ALLOW_NUL")); /* no name of the library's flags */
}

static void test_a_byte_order_mark_is_read_past(void **state) {
    (void)state;
    mg_event_batch_t b;
    mg_event_batch_error_t e;
    for (int ndjson = 0; ndjson < 2; ndjson++) {
        assert_int_equal(s_parse("\xEF\xBB\xBF" NEED("", "14118"), ndjson, NULL, &b, &e), MG_EVENT_BATCH_OK);
        assert_int_equal(b.count, 1);
        mg_event_batch_clear(&b);
    }
}

static void test_invalid_utf8_and_deep_nesting_are_refused(void **state) {
    (void)state;
    s_expect_error("{\"type\":\"need.reported\",\"needReported\":{\"need\":{\"title\":\"\xff\xfe\"}}}", 0, NULL,
                   MG_EVENT_BATCH_INVALID, "invalid_json", -1, "");
    char *deep = malloc(200001);
    memset(deep, '[', 200000);
    deep[200000] = '\0';
    s_expect_error(deep, 0, NULL, MG_EVENT_BATCH_INVALID, "invalid_json", 0, "");
    /* Within jansson's limit but deeper than an Envelope can be. */
    char nested[1024] = "{\"type\":\"need.reported\",\"bogus\":";
    for (int i = 0; i < 100; i++) strcat(nested, "[");
    for (int i = 0; i < 100; i++) strcat(nested, "]");
    strcat(nested, "}");
    s_expect_error(nested, 0, NULL, MG_EVENT_BATCH_INVALID, "invalid_event", 0, "");
    free(deep);
}

static void test_syntax_error_names_the_array_element(void **state) {
    (void)state;
    s_expect_error("[" NEED("", "14118") ", {\"type\": }]", 0, NULL, MG_EVENT_BATCH_INVALID, "invalid_json", 1, "");
    s_expect_error(NEED("", "14118") "\n{oops\n", 1, NULL, MG_EVENT_BATCH_INVALID, "invalid_json", 1, "");
    s_expect_error(NEED("", "14118") " trailing", 0, NULL, MG_EVENT_BATCH_INVALID, "invalid_json", -1, "");
}

static void test_empty_and_non_objects_are_refused(void **state) {
    (void)state;
    s_expect_error("", 0, NULL, MG_EVENT_BATCH_INVALID, "empty_body", -1, "");
    s_expect_error(" \n\t", 0, NULL, MG_EVENT_BATCH_INVALID, "empty_body", -1, "");
    s_expect_error("\n\r\n", 1, NULL, MG_EVENT_BATCH_INVALID, "empty_body", -1, "");
    s_expect_error("[]", 0, NULL, MG_EVENT_BATCH_INVALID, "empty_body", -1, "");
    s_expect_error("42", 0, NULL, MG_EVENT_BATCH_INVALID, "invalid_json", -1, "");
    s_expect_error("[" NEED("", "14118") ",7]", 0, NULL, MG_EVENT_BATCH_INVALID, "invalid_event", 1, "");
    s_expect_error("[1,2]", 1, NULL, MG_EVENT_BATCH_INVALID, "invalid_event", 0, "");
}

static void test_forbidden_type_is_403_naming_type(void **state) {
    (void)state;
    s_expect_error("[" NEED("", "14118") "," OFFER("") "]", 0, "need.*", MG_EVENT_BATCH_FORBIDDEN, "forbidden_type", 1,
                   "type");
    mg_event_batch_t b;
    mg_event_batch_error_t e;
    assert_int_equal(s_parse("[" NEED("", "14118") "," OFFER("") "]", 0, "need.*,offer.published", &b, &e),
                     MG_EVENT_BATCH_OK);
    mg_event_batch_clear(&b);
}

static void test_too_many_events_is_413_before_any_work(void **state) {
    (void)state;
    s_expect_error("[{},{},{},{}]", 0, NULL, MG_EVENT_BATCH_TOO_MANY, "too_many_events", -1, "");
    s_expect_error("{}\n{}\n{}\n{}\n", 1, NULL, MG_EVENT_BATCH_TOO_MANY, "too_many_events", -1, "");
}

static void test_duplicate_ids_in_one_body_are_refused(void **state) {
    (void)state;
    s_expect_error("[" NEED("\"eventId\":\"d-1\",", "14118") "," OFFER("\"eventId\":\"d-1\",") "]", 0, NULL,
                   MG_EVENT_BATCH_INVALID, "duplicate_event_id", 1, "eventId");
    /* The earliest repeat is named, with the element it repeats. */
    mg_event_batch_t b;
    mg_event_batch_error_t e;
    const char *body = NEED("\"eventId\":\"z\",", "14118") "\n" NEED("\"eventId\":\"a\",", "14118") "\n" NEED(
        "\"eventId\":\"a\",", "14118") "\n" NEED("\"eventId\":\"z\",", "14118");
    mg_event_batch_options_t o = s_opts(1, NULL);
    o.max_events = 10;
    assert_int_equal(mg_event_batch_parse(body, strlen(body), &o, &b, &e), MG_EVENT_BATCH_INVALID);
    assert_string_equal(e.code, "duplicate_event_id");
    assert_int_equal(e.index, 2);
    assert_non_null(strstr(e.message, "element 1 "));
}

static void test_event_bigger_than_the_broker_takes_is_refused(void **state) {
    (void)state;
    mg_event_batch_t b;
    mg_event_batch_error_t e;
    mg_event_batch_options_t o = s_opts(0, NULL);
    o.max_envelope_bytes = 40;
    const char *body = NEED("", "14118");
    assert_int_equal(mg_event_batch_parse(body, strlen(body), &o, &b, &e), MG_EVENT_BATCH_INVALID);
    assert_string_equal(e.code, "event_too_large");
}

static void test_camel_path(void **state) {
    (void)state;
    char out[64];
    mg_event_batch_camel_path("need_reported.need.radius_km", out, sizeof out);
    assert_string_equal(out, "needReported.need.radiusKm");
    mg_event_batch_camel_path("", out, sizeof out);
    assert_string_equal(out, "");
    mg_event_batch_camel_path("offer_published.offer.territory[2]", out, 12);
    assert_string_equal(out, "offerPublis"); /* truncated to fit */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_object_gets_an_id_and_loses_its_source),
        cmocka_unit_test(test_array_keeps_order_and_ids),
        cmocka_unit_test(test_ndjson_skips_blank_lines_and_crlf),
        cmocka_unit_test(test_invalid_element_is_named_by_index_and_field),
        cmocka_unit_test(test_control_characters_and_nul_are_refused),
        cmocka_unit_test(test_a_byte_order_mark_is_read_past),
        cmocka_unit_test(test_invalid_utf8_and_deep_nesting_are_refused),
        cmocka_unit_test(test_syntax_error_names_the_array_element),
        cmocka_unit_test(test_empty_and_non_objects_are_refused),
        cmocka_unit_test(test_forbidden_type_is_403_naming_type),
        cmocka_unit_test(test_too_many_events_is_413_before_any_work),
        cmocka_unit_test(test_duplicate_ids_in_one_body_are_refused),
        cmocka_unit_test(test_event_bigger_than_the_broker_takes_is_refused),
        cmocka_unit_test(test_camel_path),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
