/* envelope.h -- the Envelope on the wire: event types, codec, validation.
 *
 * The generated protobuf-c types live in maillage/v1/envelope.pb-c.h; this
 * module adds what every program needs around them: the table of event types
 * (topic name <-> payload case), packing and unpacking with size limits, and
 * the validation of everything a producer sends (ids, commune codes, category
 * codes, lengths, UTF-8). Pure functions; any thread. */
#ifndef MAILLAGE_ENVELOPE_H
#define MAILLAGE_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "maillage/v1/envelope.pb-c.h"

typedef Maillage__V1__Envelope mg_envelope_t;
typedef Maillage__V1__Ack mg_ack_t;
typedef Maillage__V1__Envelope__PayloadCase mg_payload_case_t;

/* Current schema version written by Maillage programs. */
#define MG_SCHEMA_VERSION 1

/* Longest id (event, structure, need, offer, ...) in bytes. */
#define MG_ID_MAX 64

/* A relay's header frame on the ingest: this prefix, then the network id it
 * sends for (see producer.h, mg_producer_send_as()). */
#define MG_RELAY_PREFIX "on-behalf-of:"

/* In the reason of the broker's rejection of a relay whose key may not relay
 * (with CURVE): the dead letter then names the relay, not the network. */
#define MG_RELAY_REFUSED "may not relay events for other networks"

/* The start of the reason of the broker's rejection of an event over its
 * source's rate limit ([broker] rate_limit_per_s): not invalid, to be sent
 * again later (see mg_producer_options_t.retry_rate_limited). */
#define MG_RATE_LIMITED "rate limit: "

/* The start of the reason of the broker's rejection of an event that acts on
 * another network's structure, need or offer (journal.h,
 * mg_journal_owner_op()): final, like a permission refusal. */
#define MG_NOT_OWNER "not owner: "

/* The source the broker gives a dead letter whose sender it could not
 * authenticate: not a network (`maillage dlq replay` refuses it). */
#define MG_SOURCE_UNAUTHENTICATED "unauthenticated"

/* ---- Event types ------------------------------------------------------- */

typedef struct {
    const char *type;               /* "need.reported" */
    mg_payload_case_t payload_case; /* MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_REPORTED */
    const char *payload_field;      /* "need_reported" (the oneof field's name) */
    const char *label_fr;           /* "besoin signalé" */
} mg_event_type_t;

/* All event types, in the order of the design; `count` receives their number. */
const mg_event_type_t *mg_event_types(size_t *count);

/* The type named `type`, or NULL if unknown. */
const mg_event_type_t *mg_event_type_by_name(const char *type);

/* The type whose payload case is `payload_case`, or NULL (NOT_SET). */
const mg_event_type_t *mg_event_type_by_case(mg_payload_case_t payload_case);

/* ---- Codec ------------------------------------------------------------- */

/* Unpack a serialized envelope. Returns NULL when the bytes are not a valid
 * protobuf Envelope. Caller owns the result and frees it with
 * mg_envelope_free(). No semantic check: see mg_envelope_validate(). */
mg_envelope_t *mg_envelope_unpack(const uint8_t *data, size_t len);

/* Free an envelope from mg_envelope_unpack(); accepts NULL. */
void mg_envelope_free(mg_envelope_t *env);

/* Serialize `env` into a new buffer. Caller owns *out (free()).
 * Returns the length. */
size_t mg_envelope_pack(const mg_envelope_t *env, uint8_t **out);

/* Serialize `env` (its payload unset) with a payload serialized already:
 * `field` is the payload's field number in Envelope (31 for match_found),
 * `payload` its bytes. Decodes exactly like mg_envelope_pack() of the
 * envelope with that payload set (the payload comes last), without encoding
 * the payload again. Caller frees *out; returns its length. */
size_t mg_envelope_pack_with_payload(const mg_envelope_t *env, unsigned field, const uint8_t *payload,
                                     size_t len, uint8_t **out);

/* Append "sequence = seq" to an already serialized envelope: protobuf keeps the
 * last value of a repeated scalar field, so the result decodes with that
 * sequence without re-encoding the rest. `out` must hold len + 11 bytes.
 * Returns the new length. */
size_t mg_envelope_append_sequence(const uint8_t *data, size_t len, uint64_t seq, uint8_t *out);

/* Serialize an ack into a new buffer. Caller owns *out. Returns the length. */
size_t mg_ack_pack(const mg_ack_t *ack, uint8_t **out);

/* Unpack an ack; NULL if invalid. Caller frees with mg_ack_free(). */
mg_ack_t *mg_ack_unpack(const uint8_t *data, size_t len);
void mg_ack_free(mg_ack_t *ack);

/* English name of an ack status ("accepted", "duplicate", ...). Static. */
const char *mg_ack_status_name(Maillage__V1__Ack__Status status);

/* ---- Validation -------------------------------------------------------- */

typedef struct mg_taxonomy mg_taxonomy_t;
typedef struct mg_communes mg_communes_t;

/* Why an envelope was refused: the offending field's path in snake_case
 * ("need_reported.need.commune", or "" for the whole message) and a reason
 * in English for the producer's engineers. */
typedef struct {
    char field[128];
    char reason[256];
} mg_invalid_t;

/* Check everything a producer controls: event_id (1..64 of [A-Za-z0-9._:-]),
 * a known type that agrees with the payload, schema version, every id and
 * commune code and category code inside the payload (commune codes must be in
 * `communes` and categories in `taxonomy`; either may be NULL to check only
 * the format), dates (YYYY-MM-DD, valid_from <= valid_until), lengths of every
 * text, and UTF-8 validity of every string (no control characters except
 * newline and tab in descriptions). source, received_at_ms and sequence are
 * not checked: the broker stamps them.
 * Returns 0 if valid, -1 otherwise with `why` filled in. */
int mg_envelope_validate(const mg_envelope_t *env, const mg_taxonomy_t *taxonomy,
                         const mg_communes_t *communes, mg_invalid_t *why);

/* Check the serialized envelope `data` (which mg_envelope_unpack() took) for
 * a text field holding a NUL byte: protobuf-c keeps a string's bytes after
 * one while every reader of the unpacked envelope stops there, so such a
 * field would be validated and journaled cut short (two event ids differing
 * after a NUL would be one event). Returns 0 if none does, else -1 with
 * `why` filled in (the first such field's path, as mg_envelope_validate()
 * names fields). Unknown fields are not looked into. */
int mg_envelope_check_nul(const uint8_t *data, size_t len, mg_invalid_t *why);

/* File the places of a valid envelope under today's communes: each commune
 * code of its payload (a structure's, a need's, an offer's commune, the
 * commune entries of a territory) that is a former commune's, merged since
 * into another (see communes.h), is replaced in place by the code of the
 * commune it merged into; a territory that then names a commune twice keeps
 * it once. `env` must come from mg_envelope_unpack() (its strings are
 * writable, its lists freed by malloc's allocator). Returns how many codes
 * were replaced. */
int mg_envelope_current_communes(mg_envelope_t *env, const mg_communes_t *communes);

/* 1 if `s` is a valid id (1..MG_ID_MAX of [A-Za-z0-9._:-], neither "." nor
 * "..", not ending in ":items"), else 0. Ids go into Redis keys: nothing
 * else may, and no id may name another's key (mg:structure:<sid>:items is
 * structure <sid>'s items); they are path segments of the API's URLs, which
 * clients resolve "." and ".." away from. */
int mg_id_is_valid(const char *s);

/* 1 if the `len` bytes at `s` are well-formed UTF-8 (no overlong forms, no
 * surrogates), else 0. */
int mg_utf8_is_valid(const char *s, size_t len);

/* 3 if the `len` bytes at `s` start with a UTF-8 byte order mark (EF BB BF,
 * as Windows tools write at the start of a file; no part of its text), else
 * 0: how many bytes a reader skips. */
size_t mg_utf8_bom_len(const char *s, size_t len);

#endif
