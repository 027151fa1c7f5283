/* test_envelope.c -- the event type table, the envelope and ack codecs, and
 * the sequence appended to an already serialized envelope. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "maillage/envelope.h"

static void the_fourteen_types_in_design_order(void **state) {
    (void)state;
    static const char *const design[] = {
        "member.joined",        "member.updated",
        "member.left",          "need.reported",
        "need.updated",         "need.closed",
        "offer.published",      "offer.updated",
        "offer.withdrawn",      "cooperation.proposed",
        "cooperation.answered", "match.found",
        "match.feedback",       "collective_need.detected",
    };
    size_t n = 0;
    const mg_event_type_t *types = mg_event_types(&n);
    assert_int_equal(n, 14);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(types[i].type, design[i]);
        /* The oneof field is the type with '.' -> '_'. */
        char field[64];
        snprintf(field, sizeof field, "%s", design[i]);
        for (char *p = field; *p; p++)
            if (*p == '.') *p = '_';
        assert_string_equal(types[i].payload_field, field);
        /* Payload cases follow the proto's field numbers 20..33. */
        assert_int_equal(types[i].payload_case, 20 + (int)i);
        assert_true(strlen(types[i].label_fr) > 0);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(types[i].label_fr, types[j].label_fr);
        assert_ptr_equal(mg_event_type_by_name(design[i]), &types[i]);
        assert_ptr_equal(mg_event_type_by_case(types[i].payload_case), &types[i]);
    }
    assert_string_equal(mg_event_type_by_name("need.reported")->label_fr, "besoin signalé");
    assert_string_equal(mg_event_type_by_name("member.joined")->label_fr, "nouvelle adhésion");
    assert_null(mg_event_type_by_name("need"));
    assert_null(mg_event_type_by_name(""));
    assert_null(mg_event_type_by_name(NULL));
    assert_null(mg_event_type_by_case(MAILLAGE__V1__ENVELOPE__PAYLOAD__NOT_SET));
}

/* The oneof field names in the generated descriptor agree with the table. */
static void table_agrees_with_the_descriptor(void **state) {
    (void)state;
    size_t n = 0;
    const mg_event_type_t *types = mg_event_types(&n);
    for (size_t i = 0; i < n; i++) {
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(
            &maillage__v1__envelope__descriptor, (unsigned)types[i].payload_case);
        assert_non_null(f);
        assert_string_equal(f->name, types[i].payload_field);
    }
}

static mg_envelope_t *s_sample(Maillage__V1__NeedClosed *closed) {
    static mg_envelope_t env;
    maillage__v1__envelope__init(&env);
    maillage__v1__need_closed__init(closed);
    env.event_id = "01JD0000000000000000000000";
    env.type = "need.closed";
    env.occurred_at_ms = 1764000000000;
    env.schema_version = 1;
    env.payload_case = MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_CLOSED;
    env.need_closed = closed;
    closed->need_id = "need-1";
    closed->structure_id = "asso-1";
    closed->reason = MAILLAGE__V1__CLOSURE__CLOSURE_SATISFIED;
    closed->comment = "Trouvé grâce au réseau.";
    return &env;
}

static void envelope_round_trips(void **state) {
    (void)state;
    Maillage__V1__NeedClosed closed;
    mg_envelope_t *env = s_sample(&closed);
    uint8_t *buf = NULL;
    size_t len = mg_envelope_pack(env, &buf);
    assert_true(len > 0);
    mg_envelope_t *back = mg_envelope_unpack(buf, len);
    assert_non_null(back);
    assert_string_equal(back->event_id, env->event_id);
    assert_string_equal(back->type, "need.closed");
    assert_int_equal(back->occurred_at_ms, 1764000000000);
    assert_int_equal(back->payload_case, MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_CLOSED);
    assert_string_equal(back->need_closed->comment, "Trouvé grâce au réseau.");
    mg_envelope_free(back);
    free(buf);
    mg_envelope_free(NULL);
}

static void nul_in_a_text_field_is_found(void **state) {
    (void)state;
    Maillage__V1__NeedClosed closed;
    mg_envelope_t *env = s_sample(&closed);
    uint8_t *buf = NULL;
    size_t len = mg_envelope_pack(env, &buf);
    mg_invalid_t why;
    assert_int_equal(mg_envelope_check_nul(buf, len, &why), 0);
    assert_string_equal(why.field, "");
    /* "Trouvé grâce au réseau." with a NUL inside: nested, its path named. */
    size_t at = 0;
    while (at + 4 <= len && memcmp(buf + at, "au r", 4) != 0)
        at++;
    assert_true(at + 4 <= len);
    buf[at + 2] = '\0';
    mg_envelope_t *taken = mg_envelope_unpack(buf, len);
    assert_non_null(taken); /* protobuf-c takes it */
    mg_envelope_free(taken);
    assert_int_equal(mg_envelope_check_nul(buf, len, &why), -1);
    assert_string_equal(why.field, "need_closed.comment");
    assert_non_null(strstr(why.reason, "NUL"));
    /* A NUL in bytes that are not text (an unknown field) is no text's. */
    static const uint8_t unknown[] = {0x0a, 0x01, 'a', 0xfa, 0x3e, 0x02, 'x', 0x00};
    assert_int_equal(mg_envelope_check_nul(unknown, sizeof unknown, NULL), 0);
    static const uint8_t id[] = {0x0a, 0x03, 'a', 0x00, 'b'};
    assert_int_equal(mg_envelope_check_nul(id, sizeof id, &why), -1);
    assert_string_equal(why.field, "event_id");
    free(buf);
}

static void garbage_does_not_unpack(void **state) {
    (void)state;
    static const uint8_t bad[] = {0x0a, 0x05, 'a', 'b'}; /* length 5, 2 bytes left */
    assert_null(mg_envelope_unpack(bad, sizeof bad));
    static const uint8_t bad_wire[] = {0x0f}; /* wire type 7 does not exist */
    assert_null(mg_envelope_unpack(bad_wire, sizeof bad_wire));
    /* Field number 0 does not exist; protobuf-c would keep it as an unknown
     * field when its tag is an overlong varint, at the top or nested. */
    static const uint8_t field_zero[] = {0x0a, 0x01, 'a', 0x82, 0x00, 0x00};
    assert_null(mg_envelope_unpack(field_zero, sizeof field_zero));
    static const uint8_t nested_zero[] = {0x0a, 0x01, 'a', 0xba, 0x01, 0x03, 0x82, 0x00, 0x00};
    assert_null(mg_envelope_unpack(nested_zero, sizeof nested_zero));
    /* A field this version does not know (a newer producer) is kept. */
    static const uint8_t future[] = {0x0a, 0x01, 'a', 0xf8, 0x3e, 0x01}; /* field 1007 = 1 */
    mg_envelope_t *env = mg_envelope_unpack(future, sizeof future);
    assert_non_null(env);
    mg_envelope_free(env);
    /* An empty buffer is a valid, empty Envelope (validation refuses it). */
    mg_envelope_t *empty = mg_envelope_unpack((const uint8_t *)"", 0);
    assert_non_null(empty);
    assert_int_equal(empty->payload_case, MAILLAGE__V1__ENVELOPE__PAYLOAD__NOT_SET);
    mg_envelope_free(empty);
}

/* An envelope of max_message_bytes' largest value (64 MiB), accepted by the
 * broker, still unpacks with its stamp and sequence; much more does not. */
static void the_largest_message_unpacks_stamped(void **state) {
    (void)state;
    size_t limit = 64u * 1024u * 1024u, stamped = limit + 120;
    uint8_t *buf = calloc(1, stamped + 1024);
    assert_non_null(buf);
    for (size_t len = stamped; len <= stamped + 1024; len += 1024) {
        /* event_id "e", then unknown field 15 (bytes) filling up to len. */
        size_t n = 0, body = len - 3 - 1 - 4;
        buf[n++] = 0x0a, buf[n++] = 0x01, buf[n++] = 'e';
        buf[n++] = (15 << 3) | 2;
        for (size_t v = body, i = 0; i < 4; i++, v >>= 7)
            buf[n++] = (uint8_t)((v & 0x7f) | (i < 3 ? 0x80 : 0));
        assert_int_equal(n + body, len);
        mg_envelope_t *env = mg_envelope_unpack(buf, len);
        if (len == stamped) {
            assert_non_null(env);
            assert_string_equal(env->event_id, "e");
            mg_envelope_free(env);
        } else {
            assert_null(env);
        }
    }
    free(buf);
}

static void appended_sequence_wins_without_reencoding(void **state) {
    (void)state;
    static const uint64_t seqs[] = {0, 1, 127, 128, 300, 16384, 1ULL << 35, UINT64_MAX};
    Maillage__V1__NeedClosed closed;
    mg_envelope_t *env = s_sample(&closed);
    env->sequence = 42; /* an earlier value the appended one must override */
    uint8_t *buf = NULL;
    size_t len = mg_envelope_pack(env, &buf);
    for (size_t i = 0; i < sizeof seqs / sizeof seqs[0]; i++) {
        uint8_t *out = malloc(len + 11);
        size_t n = mg_envelope_append_sequence(buf, len, seqs[i], out);
        assert_true(n > len && n <= len + 11);
        assert_memory_equal(out, buf, len);
        mg_envelope_t *back = mg_envelope_unpack(out, n);
        assert_non_null(back);
        assert_true(back->sequence == seqs[i]);
        assert_string_equal(back->need_closed->need_id, "need-1");
        mg_envelope_free(back);
        free(out);
    }
    /* The 10-byte varint of UINT64_MAX: 1 tag byte + 10 = the documented 11. */
    uint8_t *out = malloc(len + 11);
    assert_int_equal(mg_envelope_append_sequence(buf, len, UINT64_MAX, out), len + 11);
    free(out);
    free(buf);
}

static void payload_packed_apart_decodes_like_one_pack(void **state) {
    (void)state;
    Maillage__V1__NeedClosed closed;
    mg_envelope_t *env = s_sample(&closed);
    uint8_t *whole = NULL;
    size_t whole_len = mg_envelope_pack(env, &whole);
    /* The payload alone (a long comment makes its length a 2-byte varint). */
    char comment[400];
    memset(comment, 'x', sizeof comment - 1);
    comment[sizeof comment - 1] = '\0';
    for (int round = 0; round < 2; round++) {
        if (round == 1) closed.comment = comment;
        size_t plen = maillage__v1__need_closed__get_packed_size(&closed);
        uint8_t *payload = malloc(plen);
        maillage__v1__need_closed__pack(&closed, payload);
        mg_envelope_t head = *env;
        head.payload_case = MAILLAGE__V1__ENVELOPE__PAYLOAD__NOT_SET;
        uint8_t *out = NULL;
        size_t n = mg_envelope_pack_with_payload(&head, MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_CLOSED, payload,
                                                 plen, &out);
        mg_envelope_t *back = mg_envelope_unpack(out, n);
        assert_non_null(back);
        assert_string_equal(back->event_id, env->event_id);
        assert_int_equal(back->payload_case, MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_CLOSED);
        assert_string_equal(back->need_closed->need_id, "need-1");
        assert_string_equal(back->need_closed->comment, closed.comment);
        /* Byte for byte what one pack gives (the payload field is the last). */
        if (round == 0) {
            assert_int_equal(n, whole_len);
            assert_memory_equal(out, whole, n);
        }
        mg_envelope_free(back);
        free(out);
        free(payload);
    }
    free(whole);
}

static void ack_round_trips(void **state) {
    (void)state;
    mg_ack_t ack = MAILLAGE__V1__ACK__INIT;
    ack.event_id = "evt-1";
    ack.status = MAILLAGE__V1__ACK__STATUS__STATUS_REJECTED;
    ack.reason = "unknown commune code \"99999\"";
    ack.field = "need_reported.need.commune";
    uint8_t *buf = NULL;
    size_t len = mg_ack_pack(&ack, &buf);
    mg_ack_t *back = mg_ack_unpack(buf, len);
    assert_non_null(back);
    assert_string_equal(back->event_id, "evt-1");
    assert_int_equal(back->status, MAILLAGE__V1__ACK__STATUS__STATUS_REJECTED);
    assert_string_equal(back->field, "need_reported.need.commune");
    mg_ack_free(back);
    mg_ack_free(NULL);
    free(buf);
    static const uint8_t bad[] = {0x0a, 0x7f};
    assert_null(mg_ack_unpack(bad, sizeof bad));
}

static void ack_status_names(void **state) {
    (void)state;
    assert_string_equal(mg_ack_status_name(MAILLAGE__V1__ACK__STATUS__STATUS_ACCEPTED), "accepted");
    assert_string_equal(mg_ack_status_name(MAILLAGE__V1__ACK__STATUS__STATUS_DUPLICATE), "duplicate");
    assert_string_equal(mg_ack_status_name(MAILLAGE__V1__ACK__STATUS__STATUS_REJECTED), "rejected");
    assert_string_equal(mg_ack_status_name(MAILLAGE__V1__ACK__STATUS__STATUS_UNAVAILABLE), "unavailable");
    assert_string_equal(mg_ack_status_name(MAILLAGE__V1__ACK__STATUS__STATUS_UNSPECIFIED), "unspecified");
    assert_string_equal(mg_ack_status_name((Maillage__V1__Ack__Status)99), "unknown");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_fourteen_types_in_design_order),
        cmocka_unit_test(table_agrees_with_the_descriptor),
        cmocka_unit_test(envelope_round_trips),
        cmocka_unit_test(nul_in_a_text_field_is_found),
        cmocka_unit_test(garbage_does_not_unpack),
        cmocka_unit_test(the_largest_message_unpacks_stamped),
        cmocka_unit_test(appended_sequence_wins_without_reencoding),
        cmocka_unit_test(payload_packed_apart_decodes_like_one_pack),
        cmocka_unit_test(ack_round_trips),
        cmocka_unit_test(ack_status_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
