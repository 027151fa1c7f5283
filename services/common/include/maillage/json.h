/* json.h -- protobuf-c messages <-> protobuf's canonical proto3 JSON mapping.
 *
 * One generic converter driven by the protobuf-c descriptors, so every message
 * of the schema (present and future) converts without code of its own. The
 * mapping is the one of https://protobuf.dev/programming-guides/proto3/#json:
 * lowerCamelCase names, enums as their names, 64-bit integers as strings,
 * bytes as base64, fields at their default value omitted on output.
 * On input, both the lowerCamelCase and the original snake_case names are
 * accepted, enums by name or number, 64-bit integers as strings or numbers,
 * and "null" means the default; unknown fields, duplicate names, values of the
 * wrong type or out of range, and two members of one oneof are errors.
 * Pure functions; any thread. */
#ifndef MAILLAGE_JSON_H
#define MAILLAGE_JSON_H

#include <stddef.h>

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

/* Convert `msg` to a JSON object. Caller owns the result (json_decref). */
json_t *mg_json_from_message(const ProtobufCMessage *msg);

/* Convert the JSON object `json` into a new message of type `desc`.
 * Returns NULL on error, with `err` set to a reason naming the offending
 * field's JSON path ("needReported.need.radiusKm: expected an integer").
 * Caller owns the result (protobuf_c_message_free_unpacked(msg, NULL)). */
ProtobufCMessage *mg_json_to_message(const ProtobufCMessageDescriptor *desc, const json_t *json,
                                     char *err, size_t errlen);

/* Convenience: serialize `msg` as compact one-line JSON (keys in field
 * order). Caller owns the string (free()). */
char *mg_json_dumps_message(const ProtobufCMessage *msg);

/* Convenience: parse the text `text` (length `len`) as one JSON object and
 * convert it. Same contract as mg_json_to_message(); a JSON syntax error is
 * reported with its line and column. Nesting deeper than 64 is refused. */
ProtobufCMessage *mg_json_parse_message(const ProtobufCMessageDescriptor *desc, const char *text,
                                        size_t len, char *err, size_t errlen);

/* A JSON string of the `len` bytes at `s`, which should be UTF-8: invalid
 * sequences become U+FFFD rather than failing (jansson refuses them). Never
 * NULL; caller owns the reference. */
json_t *mg_json_string_lossy(const char *s, size_t len);

/* Nesting depth of `j` (a scalar is 0, {"a":1} is 1), counting no further
 * than `limit` + 1, so checking a document against a limit never walks all
 * of a deep one. */
int mg_json_depth(const json_t *j, int limit);

/* Why jansson refused a text, said for the producer: its own message, but
 * not the names of its flags ("\u0000 is not allowed without JSON_ALLOW_NUL"
 * reads "\u0000 (NUL) is not allowed in a string"). */
const char *mg_json_error_text(const json_error_t *e);

#endif
