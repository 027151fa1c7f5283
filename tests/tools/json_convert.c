/* json_convert.c -- the JSON converter as a filter, for interop tests.
 *
 *   json_convert to-binary maillage.v1.Envelope  < doc.json  > msg.bin
 *   json_convert to-json   maillage.v1.Envelope  < msg.bin   > doc.json
 *
 * Reads all of stdin, writes the result on stdout. On invalid input, prints
 * one "json_convert: <reason>" line on stderr and exits 1; usage errors exit 2.
 * Any message reachable from Envelope or Ack (by message-typed fields) can be
 * named, so the tests can drive nested messages too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "maillage/json.h"
#include "maillage/v1/envelope.pb-c.h"

/* Depth-first search of the message named `name` from `desc`. */
static const ProtobufCMessageDescriptor *s_find(const ProtobufCMessageDescriptor *desc, const char *name,
                                                int depth) {
    if (strcmp(desc->name, name) == 0) return desc;
    if (depth > 16) return NULL;
    for (unsigned i = 0; i < desc->n_fields; i++) {
        if (desc->fields[i].type != PROTOBUF_C_TYPE_MESSAGE) continue;
        const ProtobufCMessageDescriptor *found = s_find(desc->fields[i].descriptor, name, depth + 1);
        if (found) return found;
    }
    return NULL;
}

static unsigned char *s_read_all(FILE *in, size_t *len) {
    size_t cap = 65536, n = 0;
    unsigned char *buf = malloc(cap);
    if (!buf) return NULL;
    for (;;) {
        if (n == cap) {
            unsigned char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                return NULL;
            }
            buf = bigger;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, in);
        n += got;
        if (got == 0) break;
    }
    *len = n;
    return buf;
}

int main(int argc, char **argv) {
    if (argc != 3 || (strcmp(argv[1], "to-binary") != 0 && strcmp(argv[1], "to-json") != 0)) {
        fprintf(stderr, "usage: json_convert to-binary|to-json MessageFullName\n");
        return 2;
    }
    const ProtobufCMessageDescriptor *desc = s_find(&maillage__v1__envelope__descriptor, argv[2], 0);
    if (!desc) desc = s_find(&maillage__v1__ack__descriptor, argv[2], 0);
    if (!desc) {
        fprintf(stderr, "json_convert: unknown message %s\n", argv[2]);
        return 2;
    }

    size_t len;
    unsigned char *input = s_read_all(stdin, &len);
    if (!input) {
        fprintf(stderr, "json_convert: cannot read stdin\n");
        return 1;
    }

    int status = 1;
    if (strcmp(argv[1], "to-binary") == 0) {
        char err[512];
        ProtobufCMessage *msg = mg_json_parse_message(desc, (const char *)input, len, err, sizeof err);
        if (!msg) {
            fprintf(stderr, "json_convert: %s\n", err);
        } else {
            size_t size = protobuf_c_message_get_packed_size(msg);
            unsigned char *out = malloc(size ? size : 1);
            if (out) {
                protobuf_c_message_pack(msg, out);
                status = fwrite(out, 1, size, stdout) == size ? 0 : 1;
                free(out);
            }
            protobuf_c_message_free_unpacked(msg, NULL);
        }
    } else {
        ProtobufCMessage *msg = protobuf_c_message_unpack(desc, NULL, len, input);
        if (!msg) {
            fprintf(stderr, "json_convert: input is not a valid %s\n", desc->name);
        } else {
            char *text = mg_json_dumps_message(msg);
            if (text) {
                printf("%s\n", text);
                status = 0;
                free(text);
            }
            protobuf_c_message_free_unpacked(msg, NULL);
        }
    }
    free(input);
    return status;
}
