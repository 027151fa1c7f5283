/* fuzz_json.c -- libFuzzer target for the JSON -> protobuf-c converter.
 *
 * Arbitrary bytes are parsed as a JSON Envelope. Whatever they are, the
 * converter must answer without crashing, leaking or reading out of bounds,
 * and with an error message when it refuses. When it accepts, the message is
 * written back as JSON and parsed again: both messages must serialize to the
 * same bytes (the mapping is a bijection on what it accepts), which also
 * proves that its output is always valid input. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "maillage/json.h"
#include "maillage/v1/envelope.pb-c.h"

static uint8_t *s_pack(const ProtobufCMessage *msg, size_t *len) {
    *len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(*len ? *len : 1);
    if (!buf) abort();
    protobuf_c_message_pack(msg, buf);
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const ProtobufCMessageDescriptor *desc = &maillage__v1__envelope__descriptor;
    char err[256];
    err[0] = '\0';
    ProtobufCMessage *msg = mg_json_parse_message(desc, (const char *)data, size, err, sizeof err);
    if (!msg) {
        if (err[0] == '\0') abort(); /* a refusal always says why */
        return 0;
    }

    char *text = mg_json_dumps_message(msg);
    if (!text) abort();
    ProtobufCMessage *again = mg_json_parse_message(desc, text, strlen(text), err, sizeof err);
    if (!again) {
        fprintf(stderr, "own output refused: %s\n%s\n", err, text);
        abort();
    }

    size_t len1, len2;
    uint8_t *bin1 = s_pack(msg, &len1);
    uint8_t *bin2 = s_pack(again, &len2);
    if (len1 != len2 || memcmp(bin1, bin2, len1) != 0) {
        fprintf(stderr, "round trip changed the message:\n%s\n", text);
        abort();
    }

    free(bin1);
    free(bin2);
    free(text);
    protobuf_c_message_free_unpacked(again, NULL);
    protobuf_c_message_free_unpacked(msg, NULL);
    return 0;
}
