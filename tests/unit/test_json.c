/* test_json.c -- the proto3 JSON mapping of json.c.
 *
 * Round trips of every event type (JSON -> message -> binary -> message ->
 * JSON, every field set), the canonical details of the output, and each input
 * error naming its field. Scalar types the Maillage schema does not use yet
 * (bytes, float, sint/fixed, proto3 optional, scalar oneofs) are exercised on
 * a small message whose descriptor is written by hand below, the way protoc-c
 * would generate it. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "maillage/json.h"
#include "maillage/v1/envelope.pb-c.h"

/* ---- A hand-written descriptor with every scalar type ------------------ */

typedef struct {
    ProtobufCMessage base;
    int32_t i32;
    int32_t s32;
    int32_t sf32;
    uint32_t u32;
    uint32_t f32;
    int64_t i64;
    int64_t s64;
    int64_t sf64;
    uint64_t u64;
    uint64_t fixed_64_value;
    float fl;
    double db;
    protobuf_c_boolean flag;
    ProtobufCBinaryData blob;
    size_t n_blobs;
    ProtobufCBinaryData *blobs;
    protobuf_c_boolean has_opt_count;
    int32_t opt_count;
    uint32_t choice_case;
    union {
        int32_t choice_num;
        char *choice_text;
    };
    size_t n_ratios;
    float *ratios;
} scalars_t;

#define F(name_, id_, label_, type_, q_, member_, default_, flags_)                                          \
    {                                                                                                        \
        name_, id_, PROTOBUF_C_LABEL_##label_, PROTOBUF_C_TYPE_##type_, q_, offsetof(scalars_t, member_),    \
            NULL, default_, flags_, 0, NULL, NULL                                                            \
    }

static const ProtobufCFieldDescriptor s_scalar_fields[19] = {
    F("i32", 1, NONE, INT32, 0, i32, NULL, 0),
    F("s32", 2, NONE, SINT32, 0, s32, NULL, 0),
    F("sf32", 3, NONE, SFIXED32, 0, sf32, NULL, 0),
    F("u32", 4, NONE, UINT32, 0, u32, NULL, 0),
    F("f32", 5, NONE, FIXED32, 0, f32, NULL, 0),
    F("i64", 6, NONE, INT64, 0, i64, NULL, 0),
    F("s64", 7, NONE, SINT64, 0, s64, NULL, 0),
    F("sf64", 8, NONE, SFIXED64, 0, sf64, NULL, 0),
    F("u64", 9, NONE, UINT64, 0, u64, NULL, 0),
    F("fixed_64_value", 10, NONE, FIXED64, 0, fixed_64_value, NULL, 0),
    F("fl", 11, NONE, FLOAT, 0, fl, NULL, 0),
    F("db", 12, NONE, DOUBLE, 0, db, NULL, 0),
    F("flag", 13, NONE, BOOL, 0, flag, NULL, 0),
    F("blob", 14, NONE, BYTES, 0, blob, NULL, 0),
    F("blobs", 15, REPEATED, BYTES, offsetof(scalars_t, n_blobs), blobs, NULL, 0),
    F("opt_count", 16, OPTIONAL, INT32, offsetof(scalars_t, has_opt_count), opt_count, NULL, 0),
    F("choice_num", 17, NONE, INT32, offsetof(scalars_t, choice_case), choice_num, NULL,
      PROTOBUF_C_FIELD_FLAG_ONEOF),
    F("choice_text", 18, NONE, STRING, offsetof(scalars_t, choice_case), choice_text,
      &protobuf_c_empty_string, PROTOBUF_C_FIELD_FLAG_ONEOF),
    F("ratios", 19, REPEATED, FLOAT, offsetof(scalars_t, n_ratios), ratios, NULL,
      PROTOBUF_C_FIELD_FLAG_PACKED),
};
static const unsigned s_scalar_by_name[19] = {13, 14, 16, 17, 11, 4, 9, 10, 12, 0,
                                              5,  15, 18, 1,  6,  2, 7, 3,  8};
static const ProtobufCIntRange s_scalar_ranges[2] = {{1, 0}, {20, 19}};

static void s_scalars_init(ProtobufCMessage *msg);

static const ProtobufCMessageDescriptor s_scalars_descriptor = {
    PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
    "test.Scalars",
    "Scalars",
    "Test__Scalars",
    "test",
    sizeof(scalars_t),
    19,
    s_scalar_fields,
    s_scalar_by_name,
    1,
    s_scalar_ranges,
    s_scalars_init,
    NULL,
    NULL,
    NULL,
};

static void s_scalars_init(ProtobufCMessage *msg) {
    memset(msg, 0, sizeof(scalars_t));
    msg->descriptor = &s_scalars_descriptor;
}

/* ---- Helpers ------------------------------------------------------------ */

/* Parse `text` as `desc`, asserting success. */
static ProtobufCMessage *s_parse_ok(const ProtobufCMessageDescriptor *desc, const char *text) {
    char err[512] = "";
    ProtobufCMessage *msg = mg_json_parse_message(desc, text, strlen(text), err, sizeof err);
    if (!msg) print_error("unexpected error: %s\nfor %s\n", err, text);
    assert_non_null(msg);
    return msg;
}

/* Parse `text` as an Envelope, asserting failure with `fragment` in the reason. */
static void s_parse_fails(const ProtobufCMessageDescriptor *desc, const char *text, const char *fragment) {
    char err[512] = "";
    ProtobufCMessage *msg = mg_json_parse_message(desc, text, strlen(text), err, sizeof err);
    if (msg) {
        print_error("accepted: %s\n", text);
        protobuf_c_message_free_unpacked(msg, NULL);
        fail();
    }
    if (!strstr(err, fragment)) print_error("error \"%s\" lacks \"%s\" for %s\n", err, fragment, text);
    assert_non_null(strstr(err, fragment));
}

static uint8_t *s_pack(const ProtobufCMessage *msg, size_t *len) {
    *len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(*len ? *len : 1);
    assert_non_null(buf);
    assert_int_equal(protobuf_c_message_pack(msg, buf), *len);
    return buf;
}

/* Dump `text` through the converter and compare with `expected`. */
static void s_assert_canonical(const ProtobufCMessageDescriptor *desc, const char *text,
                               const char *expected) {
    ProtobufCMessage *msg = s_parse_ok(desc, text);
    char *out = mg_json_dumps_message(msg);
    assert_non_null(out);
    if (strcmp(out, expected) != 0) print_error("got      %s\nexpected %s\n", out, expected);
    assert_string_equal(out, expected);
    free(out);
    protobuf_c_message_free_unpacked(msg, NULL);
}

/* A JSON value for every field of `desc`, recursively: non-default values of
 * every type, 3 elements in every repeated field, French text with accents. */
static json_t *s_sample(const ProtobufCMessageDescriptor *desc, int salt);

static json_t *s_sample_value(const ProtobufCFieldDescriptor *f, int k) {
    char text[160];
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
        snprintf(text, sizeof text, "Épicerie « Le Panier » à Hérouville, %s n°%d — 80 m²", f->name, k);
        return json_string(text);
    case PROTOBUF_C_TYPE_UINT32:
        return json_integer(k == 0 ? 4294967295LL : k);
    case PROTOBUF_C_TYPE_INT32:
        return json_integer(-2147483647 - 1 + k);
    case PROTOBUF_C_TYPE_INT64:
        return json_string(k == 0 ? "9007199254740993" : "-4611686018427387904");
    case PROTOBUF_C_TYPE_UINT64:
        return json_string("18446744073709551615");
    case PROTOBUF_C_TYPE_DOUBLE:
        return json_real(k == 0 ? 0.1 : 12.75);
    case PROTOBUF_C_TYPE_BOOL:
        return json_true();
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = f->descriptor;
        return json_string(ed->values[ed->n_values - 1 - (unsigned)k % (ed->n_values - 1)].name);
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        return s_sample(f->descriptor, k);
    default:
        fail_msg("field %s: type %d not in the schema sample", f->name, f->type);
    }
    return NULL;
}

static void s_camel(const char *name, char *out) {
    int up = 0;
    for (; *name; name++) {
        if (*name == '_') {
            up = 1;
        } else {
            *out++ = up && *name >= 'a' && *name <= 'z' ? (char)(*name - 32) : *name;
            up = 0;
        }
    }
    *out = '\0';
}

static json_t *s_sample(const ProtobufCMessageDescriptor *desc, int salt) {
    json_t *obj = json_object();
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) continue;
        char name[128];
        s_camel(f->name, name);
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            json_t *arr = json_array();
            for (int k = 0; k < 3; k++)
                json_array_append_new(arr, s_sample_value(f, k));
            json_object_set_new(obj, name, arr);
        } else {
            json_object_set_new(obj, name, s_sample_value(f, salt));
        }
    }
    return obj;
}

/* ---- Tests -------------------------------------------------------------- */

/* Every event type: a fully populated envelope goes JSON -> message ->
 * binary -> message -> JSON and comes back identical, and its compact text
 * parses back to the same bytes. */
static void test_round_trip_of_every_event_type(void **state) {
    (void)state;
    const ProtobufCMessageDescriptor *env_desc = &maillage__v1__envelope__descriptor;
    int payloads = 0;
    for (unsigned i = 0; i < env_desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *pf = &env_desc->fields[i];
        if (!(pf->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)) continue;
        payloads++;

        json_t *doc = s_sample(env_desc, 0);
        char pname[128];
        s_camel(pf->name, pname);
        json_object_set_new(doc, pname, s_sample(pf->descriptor, 1));

        char err[512] = "";
        ProtobufCMessage *msg = mg_json_to_message(env_desc, doc, err, sizeof err);
        if (!msg) print_error("%s: %s\n", pf->name, err);
        assert_non_null(msg);
        assert_int_equal(((Maillage__V1__Envelope *)msg)->payload_case, pf->id);

        size_t len;
        uint8_t *bin = s_pack(msg, &len);
        ProtobufCMessage *back = protobuf_c_message_unpack(env_desc, NULL, len, bin);
        assert_non_null(back);
        json_t *again = mg_json_from_message(back);
        assert_non_null(again);
        if (!json_equal(doc, again)) {
            char *a = json_dumps(doc, JSON_COMPACT), *b = json_dumps(again, JSON_COMPACT);
            print_error("%s\nsent %s\ngot  %s\n", pf->name, a, b);
            free(a);
            free(b);
        }
        assert_true(json_equal(doc, again));

        char *text = mg_json_dumps_message(back);
        ProtobufCMessage *third = s_parse_ok(env_desc, text);
        size_t len3;
        uint8_t *bin3 = s_pack(third, &len3);
        assert_int_equal(len3, len);
        assert_memory_equal(bin3, bin, len);

        free(bin3);
        protobuf_c_message_free_unpacked(third, NULL);
        free(text);
        json_decref(again);
        protobuf_c_message_free_unpacked(back, NULL);
        free(bin);
        protobuf_c_message_free_unpacked(msg, NULL);
        json_decref(doc);
    }
    assert_int_equal(payloads, 14);
}

/* The details that make the output the canonical mapping. */
static void test_canonical_output(void **state) {
    (void)state;
    /* camelCase names, int64 as strings, uint32 as numbers, defaults omitted,
     * keys in field-number order whatever the input order. */
    s_assert_canonical(
        &maillage__v1__envelope__descriptor,
        "{\"need_reported\":{\"need\":{\"radius_km\":0,\"category\":\"locaux\",\"need_id\":\"n1\","
        "\"tags\":[],\"urgency\":3}},\"schema_version\":1,\"occurred_at_ms\":1700000000000123,"
        "\"source\":\"\",\"event_id\":\"e1\",\"sequence\":\"0\"}",
        "{\"eventId\":\"e1\",\"occurredAtMs\":\"1700000000000123\",\"schemaVersion\":1,"
        "\"needReported\":{\"need\":{\"needId\":\"n1\",\"category\":\"locaux\",\"urgency\":3}}}");
    /* Enums by name; an unknown number stays a number; false/0.0 omitted. */
    s_assert_canonical(
        &maillage__v1__envelope__descriptor,
        "{\"offerPublished\":{\"offer\":{\"freeOfCharge\":false,\"conditions\":{\"essOnly\":true,"
        "\"families\":[\"FAMILY_COOPERATIVE\",7,42]}}}}",
        "{\"offerPublished\":{\"offer\":{\"conditions\":{\"essOnly\":true,"
        "\"families\":[\"FAMILY_COOPERATIVE\",\"FAMILY_PUBLIC_BODY\",42]}}}}");
    s_assert_canonical(
        &maillage__v1__envelope__descriptor,
        "{\"matchFound\":{\"score\":0.1,\"distanceKm\":12,\"rank\":1,\"retired\":true,"
        "\"components\":[{\"name\":\"distance\",\"value\":0.30000000000000004,\"weight\":0}]}}",
        "{\"matchFound\":{\"score\":0.1,\"rank\":1,\"components\":[{\"name\":\"distance\","
        "\"value\":0.30000000000000004}],\"distanceKm\":12.0,\"retired\":true}}");
    /* A set oneof member is written even when empty. */
    s_assert_canonical(&maillage__v1__envelope__descriptor, "{\"needClosed\":{}}", "{\"needClosed\":{}}");
    s_assert_canonical(&maillage__v1__envelope__descriptor,
                       "{\"needClosed\":{\"reason\":\"CLOSURE_UNSPECIFIED\"}}", "{\"needClosed\":{}}");
    /* Text escaped as JSON requires, UTF-8 kept as is. */
    s_assert_canonical(&maillage__v1__envelope__descriptor,
                       "{\"eventId\":\"é\\\"\\\\\\n\\u0001\\u00e9\\ud83c\\udf31\"}",
                       "{\"eventId\":\"é\\\"\\\\\\n\\u0001é🌱\"}");
    /* null is the default. */
    s_assert_canonical(&maillage__v1__envelope__descriptor,
                       "{\"eventId\":null,\"needReported\":null,\"sequence\":null,\"correlationId\":\"c\"}",
                       "{\"correlationId\":\"c\"}");
    s_assert_canonical(&maillage__v1__envelope__descriptor, "{}", "{}");
}

/* Names: lowerCamelCase exactly as protoc derives it, snake_case accepted. */
static void test_names(void **state) {
    (void)state;
    s_assert_canonical(&s_scalars_descriptor, "{\"fixed_64_value\":\"5\",\"opt_count\":0}",
                       "{\"fixed64Value\":\"5\",\"optCount\":0}");
    s_assert_canonical(&s_scalars_descriptor, "{\"fixed64Value\":5}", "{\"fixed64Value\":\"5\"}");
    s_parse_fails(&s_scalars_descriptor, "{\"fixed64value\":5}", "fixed64value: unknown field");
    s_parse_fails(&s_scalars_descriptor, "{\"Fixed64Value\":5}", "Fixed64Value: unknown field");
}

/* Every scalar type, on the hand-written message. */
static void test_scalar_types(void **state) {
    (void)state;
    const char *in =
        "{\"i32\":-5,\"s32\":-2147483648,\"sf32\":\"-7\",\"u32\":4294967295,\"f32\":1.0,"
        "\"i64\":-9223372036854775808,\"s64\":\"-9223372036854775808\",\"sf64\":\"9223372036854775807\","
        "\"u64\":\"18446744073709551615\",\"fixed64Value\":1e3,\"fl\":0.1,\"db\":\"-Infinity\","
        "\"flag\":true,\"blob\":\"3q2-7w\",\"blobs\":[\"AA==\",\"\",\"_-8=\",\"YWJj\"],"
        "\"choiceNum\":0,\"ratios\":[\"NaN\",\"Infinity\",1.5,\"2.5\"]}";
    const char *out = "{\"i32\":-5,\"s32\":-2147483648,\"sf32\":-7,\"u32\":4294967295,\"f32\":1,"
                      "\"i64\":\"-9223372036854775808\",\"s64\":\"-9223372036854775808\","
                      "\"sf64\":\"9223372036854775807\",\"u64\":\"18446744073709551615\","
                      "\"fixed64Value\":\"1000\",\"fl\":0.1,\"db\":\"-Infinity\",\"flag\":true,"
                      "\"blob\":\"3q2+7w==\",\"blobs\":[\"AA==\",\"\",\"/+8=\",\"YWJj\"],\"choiceNum\":0,"
                      "\"ratios\":[\"NaN\",\"Infinity\",1.5,2.5]}";
    s_assert_canonical(&s_scalars_descriptor, in, out);

    ProtobufCMessage *msg = s_parse_ok(&s_scalars_descriptor, in);
    scalars_t *s = (scalars_t *)msg;
    assert_int_equal(s->s32, INT32_MIN);
    assert_true(s->i64 == INT64_MIN);
    assert_true(s->u64 == UINT64_MAX);
    assert_true(s->fl == 0.1f);
    assert_int_equal(s->blob.len, 4);
    assert_memory_equal(s->blob.data, "\xde\xad\xbe\xef", 4);
    assert_int_equal(s->n_blobs, 4);
    assert_int_equal(s->blobs[1].len, 0);
    assert_int_equal(s->choice_case, 17);
    assert_true(isnan(s->ratios[0]) && isinf(s->ratios[1]));
    /* The binary form is valid protobuf that protobuf-c reads back. */
    size_t len;
    uint8_t *bin = s_pack(msg, &len);
    ProtobufCMessage *back = protobuf_c_message_unpack(&s_scalars_descriptor, NULL, len, bin);
    assert_non_null(back);
    char *text = mg_json_dumps_message(back);
    assert_string_equal(text, out);
    free(text);
    protobuf_c_message_free_unpacked(back, NULL);
    free(bin);
    protobuf_c_message_free_unpacked(msg, NULL);

    /* Oneof strings and proto3 optionals are written when set, even empty. */
    s_assert_canonical(&s_scalars_descriptor, "{\"choiceText\":\"\"}", "{\"choiceText\":\"\"}");
    s_assert_canonical(&s_scalars_descriptor, "{\"choice_text\":\"déjà\",\"optCount\":-1}",
                       "{\"optCount\":-1,\"choiceText\":\"déjà\"}");
    /* A float is written as its shortest decimal, not as a widened double. */
    s_assert_canonical(&s_scalars_descriptor, "{\"fl\":3.4028234663852886e38,\"ratios\":[0.3,1e-7]}",
                       "{\"fl\":3.4028235e+38,\"ratios\":[0.3,1e-07]}");
}

static void test_scalar_errors(void **state) {
    (void)state;
    const ProtobufCMessageDescriptor *d = &s_scalars_descriptor;
    s_parse_fails(d, "{\"i32\":2147483648}", "i32: value 2147483648 out of range for int32");
    s_parse_fails(d, "{\"i32\":-2147483649}", "i32: value -2147483649 out of range");
    s_parse_fails(d, "{\"i32\":1.5}", "i32: expected an integer");
    s_parse_fails(d, "{\"i32\":\"1.0\"}", "i32: expected an integer");
    s_parse_fails(d, "{\"i32\":\" 1\"}", "i32: expected an integer");
    s_parse_fails(d, "{\"i32\":true}", "i32: expected an integer, got a boolean");
    s_parse_fails(d, "{\"u32\":-1}", "u32: value -1 out of range for uint32");
    s_parse_fails(d, "{\"u64\":\"-1\"}", "u64: value -1 out of range");
    s_parse_fails(d, "{\"u64\":\"18446744073709551616\"}", "u64: value 18446744073709551616 out of range");
    s_parse_fails(d, "{\"i64\":\"9223372036854775808\"}", "i64: value 9223372036854775808 out of range");
    s_parse_fails(d, "{\"i64\":1e19}", "i64: value 1e+19 out of range");
    s_parse_fails(d, "{\"i64\":[1]}", "i64: expected an integer, got an array");
    s_parse_fails(d, "{\"fl\":1e39}", "fl: value 1e+39 out of range for float");
    s_parse_fails(d, "{\"db\":\"nan\"}", "db: expected a number");
    s_parse_fails(d, "{\"db\":\"1e999\"}", "db: value 1e999 out of range");
    s_parse_fails(d, "{\"db\":\"0x10\"}", "db: expected a number");
    s_parse_fails(d, "{\"flag\":1}", "flag: expected true or false, got a number");
    s_parse_fails(d, "{\"blob\":\"abc*\"}", "blob: invalid base64");
    s_parse_fails(d, "{\"blob\":\"a\"}", "blob: invalid base64");
    s_parse_fails(d, "{\"blob\":\"ab=\"}", "blob: invalid base64");
    s_parse_fails(d, "{\"blob\":7}", "blob: expected a base64 string");
    s_parse_fails(d, "{\"blobs\":[\"AA\",\"!\"]}", "blobs[1]: invalid base64");
    s_parse_fails(d, "{\"ratios\":[1,null]}", "ratios[1]: null is not allowed");
    s_parse_fails(d, "{\"choiceNum\":1,\"choiceText\":\"x\"}", "choiceText: only one of \"choiceNum\" and");
    s_parse_fails(d, "{\"opt_count\":1,\"optCount\":2}", "optCount: duplicate field");
    /* null for one oneof member does not count as setting it. */
    s_assert_canonical(d, "{\"choiceNum\":null,\"choiceText\":\"x\"}", "{\"choiceText\":\"x\"}");
}

/* Each input error on the real schema names the field by its JSON path. */
static void test_errors_name_the_field(void **state) {
    (void)state;
    const ProtobufCMessageDescriptor *d = &maillage__v1__envelope__descriptor;
    s_parse_fails(d, "{\"needReported\":{\"need\":{\"radiusKm\":\"loin\"}}}",
                  "needReported.need.radiusKm: expected an integer");
    s_parse_fails(d, "{\"needReported\":{\"need\":{\"radiusKm\":2.5}}}",
                  "needReported.need.radiusKm: expected an integer");
    s_parse_fails(d, "{\"needReported\":{\"need\":{\"radiusKm\":-3}}}",
                  "needReported.need.radiusKm: value -3 out");
    s_parse_fails(d, "{\"needReported\":{\"need\":{\"couleur\":\"bleu\"}}}",
                  "needReported.need.couleur: unknown field");
    s_parse_fails(d, "{\"needReported\":{\"need\":{\"need_id\":\"a\",\"needId\":\"b\"}}}",
                  "needReported.need.needId: duplicate field");
    s_parse_fails(d, "{\"eventId\":\"a\",\"eventId\":\"b\"}", "duplicate object key");
    s_parse_fails(d, "{\"needReported\":{},\"offerPublished\":{}}", "offerPublished: only one of");
    s_parse_fails(d, "{\"need_reported\":[]}", "needReported: expected an object, got an array");
    s_parse_fails(d, "{\"needReported\":{\"need\":{\"tags\":[\"a\",{}]}}}",
                  "needReported.need.tags[1]: expected a string, got an object");
    s_parse_fails(d, "{\"matchFound\":{\"components\":[{},{\"value\":\"x\"}]}}",
                  "matchFound.components[1].value: expected a number");
    s_parse_fails(d, "{\"needClosed\":{\"reason\":\"SATISFIED\"}}",
                  "needClosed.reason: unknown value \"SATISFIED\" of enum maillage.v1.Closure");
    s_parse_fails(d, "{\"needClosed\":{\"reason\":2147483648}}", "needClosed.reason: value 2147483648 out");
    s_parse_fails(d, "{\"needClosed\":{\"reason\":true}}", "needClosed.reason: expected an enum");
    s_parse_fails(d, "{\"matchFound\":{\"retired\":\"true\"}}", "matchFound.retired: expected true or false");
    s_parse_fails(d, "{\"schemaVersion\":4294967296}", "schemaVersion: value 4294967296 out of range");
    s_parse_fails(d, "{\"sequence\":123456789012345678901234567890}", "sequence: invalid JSON");
    s_parse_fails(d, "{\"matchFound\":{\"score\":1e999}}", "matchFound.score: invalid JSON");
    s_parse_fails(d, "{\"eventId\":\"caf\xc3\"}", "eventId: invalid JSON");
    s_parse_fails(d, "{\"memberJoined\":{\"structure\":{\"contact\":{\"name\":\"\xed\xa0\x80\"}}}}",
                  "memberJoined.structure.contact.name: invalid JSON");
    s_parse_fails(d, "[]", "expected a JSON object, got an array");
    s_parse_fails(d, "{\"eventId\":", "invalid JSON at line 1");
    s_parse_fails(d, "{} {}", "invalid JSON");

    /* Strings a json_t built in code may hold, which jansson's parser refuses. */
    json_t *doc = json_pack("{s:s%}", "eventId", "a\0b", (size_t)3);
    char err[256];
    assert_null(mg_json_to_message(d, doc, err, sizeof err));
    assert_string_equal(err, "eventId: string contains a NUL character");
    json_decref(doc);
    doc = json_object();
    json_object_set_new(doc, "eventId", json_string_nocheck("\xff"));
    assert_null(mg_json_to_message(d, doc, err, sizeof err));
    assert_string_equal(err, "eventId: string is not valid UTF-8");
    json_decref(doc);
    assert_null(mg_json_to_message(d, NULL, err, sizeof err));
}

/* Nesting beyond 64 levels is refused, naming the top-level field. */
static void test_nesting_limit(void **state) {
    (void)state;
    char text[1024];
    for (int depth = 63; depth <= 64; depth++) {
        /* {"correlationId": [[...]]}: depth levels in all, the object included. */
        int n = snprintf(text, sizeof text, "{\"correlationId\":");
        for (int i = 0; i < depth - 1; i++)
            text[n++] = '[';
        for (int i = 0; i < depth - 1; i++)
            text[n++] = ']';
        text[n++] = '}';
        text[n] = '\0';
        s_parse_fails(&maillage__v1__envelope__descriptor, text,
                      "correlationId: expected a string, got an array");
    }
    int n = snprintf(text, sizeof text, "{\"correlationId\":");
    for (int i = 0; i < 64; i++)
        text[n++] = '[';
    for (int i = 0; i < 64; i++)
        text[n++] = ']';
    text[n++] = '}';
    text[n] = '\0';
    s_parse_fails(&maillage__v1__envelope__descriptor, text, "correlationId: nested deeper than 64 levels");
}

/* Output of messages built by hand, as producers in C do: strings left at the
 * shared empty string, NULL submessages, invalid UTF-8 from the wire. */
static void test_output_of_hand_built_messages(void **state) {
    (void)state;
    Maillage__V1__Envelope env = MAILLAGE__V1__ENVELOPE__INIT;
    Maillage__V1__NeedClosed closed = MAILLAGE__V1__NEED_CLOSED__INIT;
    env.event_id = "e\xff\xfe"
                   "1";
    env.received_at_ms = -1;
    env.payload_case = MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_CLOSED;
    env.need_closed = &closed;
    closed.reason = MAILLAGE__V1__CLOSURE__CLOSURE_EXPIRED;
    char *text = mg_json_dumps_message(&env.base);
    assert_string_equal(text, "{\"eventId\":\"e\xef\xbf\xbd\xef\xbf\xbd"
                              "1\",\"receivedAtMs\":\"-1\","
                              "\"needClosed\":{\"reason\":\"CLOSURE_EXPIRED\"}}");
    free(text);

    Maillage__V1__Ack ack = MAILLAGE__V1__ACK__INIT;
    ack.status = MAILLAGE__V1__ACK__STATUS__STATUS_DUPLICATE;
    ack.sequence = 42;
    text = mg_json_dumps_message(&ack.base);
    assert_string_equal(text, "{\"status\":\"STATUS_DUPLICATE\",\"sequence\":\"42\"}");
    free(text);
    assert_null(mg_json_from_message(NULL));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_of_every_event_type),
        cmocka_unit_test(test_canonical_output),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_scalar_types),
        cmocka_unit_test(test_scalar_errors),
        cmocka_unit_test(test_errors_name_the_field),
        cmocka_unit_test(test_nesting_limit),
        cmocka_unit_test(test_output_of_hand_built_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
