/* envelope.c -- event types, envelope codec and validation.
 *
 * Validation is the broker's gate: whatever passes here goes into the journal
 * and then into Redis keys, staff notifications and web pages, so every string
 * a producer controls is checked for shape, length and encoding. Each rule
 * names the field it refused in snake_case ("need_reported.need.tags[2]"), so
 * a producer's engineer can fix the right thing from the ack alone. */
#include "maillage/envelope.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "maillage/communes.h"
#include "maillage/mem.h"
#include "maillage/taxonomy.h"

/* ---- Event types ------------------------------------------------------- */

#define S_TYPE(name, CASE, field, label)                                                                     \
    { name, MAILLAGE__V1__ENVELOPE__PAYLOAD_##CASE, field, label }

static const mg_event_type_t s_event_types[] = {
    S_TYPE("member.joined", MEMBER_JOINED, "member_joined", "nouvelle adhésion"),
    S_TYPE("member.updated", MEMBER_UPDATED, "member_updated", "fiche de structure mise à jour"),
    S_TYPE("member.left", MEMBER_LEFT, "member_left", "départ d'une structure adhérente"),
    S_TYPE("need.reported", NEED_REPORTED, "need_reported", "besoin signalé"),
    S_TYPE("need.updated", NEED_UPDATED, "need_updated", "besoin mis à jour"),
    S_TYPE("need.closed", NEED_CLOSED, "need_closed", "besoin clos"),
    S_TYPE("offer.published", OFFER_PUBLISHED, "offer_published", "offre publiée"),
    S_TYPE("offer.updated", OFFER_UPDATED, "offer_updated", "offre mise à jour"),
    S_TYPE("offer.withdrawn", OFFER_WITHDRAWN, "offer_withdrawn", "offre retirée"),
    S_TYPE("cooperation.proposed", COOPERATION_PROPOSED, "cooperation_proposed",
           "proposition de coopération"),
    S_TYPE("cooperation.answered", COOPERATION_ANSWERED, "cooperation_answered",
           "réponse à une proposition de coopération"),
    S_TYPE("match.found", MATCH_FOUND, "match_found", "mise en relation proposée"),
    S_TYPE("match.feedback", MATCH_FEEDBACK, "match_feedback", "suite donnée à une mise en relation"),
    S_TYPE("collective_need.detected", COLLECTIVE_NEED_DETECTED, "collective_need_detected",
           "besoin collectif détecté"),
};

#define S_EVENT_TYPE_COUNT (sizeof s_event_types / sizeof s_event_types[0])

const mg_event_type_t *mg_event_types(size_t *count) {
    if (count) *count = S_EVENT_TYPE_COUNT;
    return s_event_types;
}

const mg_event_type_t *mg_event_type_by_name(const char *type) {
    if (!type) return NULL;
    for (size_t i = 0; i < S_EVENT_TYPE_COUNT; i++) {
        if (strcmp(s_event_types[i].type, type) == 0) return &s_event_types[i];
    }
    return NULL;
}

const mg_event_type_t *mg_event_type_by_case(mg_payload_case_t payload_case) {
    for (size_t i = 0; i < S_EVENT_TYPE_COUNT; i++) {
        if (s_event_types[i].payload_case == payload_case) return &s_event_types[i];
    }
    return NULL;
}

/* ---- Codec ------------------------------------------------------------- */

/* No caller may hand the decoder more than the broker's largest configurable
 * message (max_message_bytes, at most 64 MiB): protobuf-c allocates in
 * proportion to the input. And a little more: the journal holds a message
 * with the broker's stamp (source, received_at_ms, schema_version: under 100
 * bytes) and readers append its sequence (11 bytes at most), so that an
 * envelope the broker accepted is never one its consumers cannot read. */
#define S_UNPACK_MAX_BYTES (64u * 1024u * 1024u + 256u)

/* protobuf-c keeps unknown fields (as it should: a newer producer may send
 * fields this version does not know), but it also keeps one numbered 0 when
 * its tag is written as an overlong varint. Field 0 does not exist in
 * protobuf: other decoders, and protobuf-c itself once the tag is re-encoded,
 * refuse it, so such bytes must not reach the journal. */
static int s_has_invalid_unknown(const ProtobufCMessage *msg) {
    for (unsigned i = 0; i < msg->n_unknown_fields; i++) {
        if (msg->unknown_fields[i].tag == 0) return 1;
    }
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    const char *base = (const char *)msg;
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE) continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            ProtobufCMessage *const *items = *(ProtobufCMessage *const *const *)(base + f->offset);
            for (size_t j = 0; j < n; j++) {
                if (items[j] && s_has_invalid_unknown(items[j])) return 1;
            }
            continue;
        }
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)(base + f->quantifier_offset) != f->id)
            continue;
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)(base + f->offset);
        if (sub && s_has_invalid_unknown(sub)) return 1;
    }
    return 0;
}

mg_envelope_t *mg_envelope_unpack(const uint8_t *data, size_t len) {
    if (!data && len) return NULL;
    if (len > S_UNPACK_MAX_BYTES) return NULL;
    mg_envelope_t *env = maillage__v1__envelope__unpack(NULL, len, data ? data : (const uint8_t *)"");
    if (env && s_has_invalid_unknown(&env->base)) {
        mg_envelope_free(env);
        return NULL;
    }
    return env;
}

void mg_envelope_free(mg_envelope_t *env) {
    if (env) maillage__v1__envelope__free_unpacked(env, NULL);
}

size_t mg_envelope_pack(const mg_envelope_t *env, uint8_t **out) {
    size_t len = maillage__v1__envelope__get_packed_size(env);
    *out = mg_malloc(len);
    return maillage__v1__envelope__pack(env, *out);
}

/* ---- NUL bytes in text fields (mg_envelope_check_nul()) ---------------- */

/* Read a varint at data[*at] (at most 10 bytes, within len); 0 if cut short. */
static int s_read_varint(const uint8_t *data, size_t len, size_t *at, uint64_t *v) {
    *v = 0;
    for (unsigned shift = 0; shift < 70 && *at < len; shift += 7) {
        uint8_t byte = data[(*at)++];
        *v |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) return 1;
    }
    return 0;
}

/* The first string field of message `desc` in data[0..len) (or of its known
 * sub-messages, down to `depth` levels) that holds a NUL: 1 with its path
 * after `prefix` in `field`, else 0 (also for bytes that stop parsing: what
 * the decoder accepted, this walk only reads). */
static int s_find_nul(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                      const char *prefix, char *field, size_t cap, int depth) {
    size_t at = 0;
    while (at < len) {
        uint64_t key, n;
        if (!s_read_varint(data, len, &at, &key)) return 0;
        switch (key & 7) {
        case 0:
            if (!s_read_varint(data, len, &at, &n)) return 0;
            break;
        case 1:
            at += 8;
            break;
        case 5:
            at += 4;
            break;
        case 2: {
            if (!s_read_varint(data, len, &at, &n) || n > len - at) return 0;
            const uint8_t *value = data + at;
            at += n;
            const ProtobufCFieldDescriptor *f =
                key >> 3 <= UINT32_MAX ? protobuf_c_message_descriptor_get_field(desc, (unsigned)(key >> 3))
                                       : NULL;
            if (!f) break;
            if (f->type == PROTOBUF_C_TYPE_STRING && memchr(value, 0, n)) {
                snprintf(field, cap, "%s%s", prefix, f->name);
                return 1;
            }
            if (f->type == PROTOBUF_C_TYPE_MESSAGE && depth > 0) {
                char inner[128];
                snprintf(inner, sizeof(inner), "%s%s.", prefix, f->name);
                if (s_find_nul(f->descriptor, value, n, inner, field, cap, depth - 1)) return 1;
            }
            break;
        }
        default:
            return 0; /* groups: refused by the decoder anyway */
        }
    }
    return 0;
}

int mg_envelope_check_nul(const uint8_t *data, size_t len, mg_invalid_t *why) {
    mg_invalid_t local;
    if (!why) why = &local;
    why->field[0] = why->reason[0] = '\0';
    if (!data ||
        !s_find_nul(&maillage__v1__envelope__descriptor, data, len, "", why->field, sizeof(why->field), 8))
        return 0;
    snprintf(why->reason, sizeof(why->reason), "a NUL byte in a text field");
    return -1;
}

static size_t s_varint(uint64_t v, uint8_t *out) {
    size_t n = 0;
    do {
        uint8_t byte = v & 0x7f;
        v >>= 7;
        out[n++] = v ? (uint8_t)(byte | 0x80) : byte;
    } while (v);
    return n;
}

size_t mg_envelope_pack_with_payload(const mg_envelope_t *env, unsigned field, const uint8_t *payload,
                                     size_t len, uint8_t **out) {
    size_t head = maillage__v1__envelope__get_packed_size(env);
    *out = mg_malloc(head + 20 + len);
    size_t n = maillage__v1__envelope__pack(env, *out);
    n += s_varint((uint64_t)field << 3 | 2, *out + n); /* wire type 2: length-delimited */
    n += s_varint(len, *out + n);
    if (len) memcpy(*out + n, payload, len);
    return n + len;
}

size_t mg_envelope_append_sequence(const uint8_t *data, size_t len, uint64_t seq, uint8_t *out) {
    if (len) memmove(out, data, len);
    size_t n = len;
    out[n++] = (6 << 3) | 0; /* field 6 (sequence), wire type varint */
    return n + s_varint(seq, out + n);
}

size_t mg_ack_pack(const mg_ack_t *ack, uint8_t **out) {
    size_t len = maillage__v1__ack__get_packed_size(ack);
    *out = mg_malloc(len);
    return maillage__v1__ack__pack(ack, *out);
}

mg_ack_t *mg_ack_unpack(const uint8_t *data, size_t len) {
    if (!data && len) return NULL;
    if (len > S_UNPACK_MAX_BYTES) return NULL;
    mg_ack_t *ack = maillage__v1__ack__unpack(NULL, len, data ? data : (const uint8_t *)"");
    if (ack && s_has_invalid_unknown(&ack->base)) {
        mg_ack_free(ack);
        return NULL;
    }
    return ack;
}

void mg_ack_free(mg_ack_t *ack) {
    if (ack) maillage__v1__ack__free_unpacked(ack, NULL);
}

const char *mg_ack_status_name(Maillage__V1__Ack__Status status) {
    switch (status) {
    case MAILLAGE__V1__ACK__STATUS__STATUS_UNSPECIFIED:
        return "unspecified";
    case MAILLAGE__V1__ACK__STATUS__STATUS_ACCEPTED:
        return "accepted";
    case MAILLAGE__V1__ACK__STATUS__STATUS_DUPLICATE:
        return "duplicate";
    case MAILLAGE__V1__ACK__STATUS__STATUS_REJECTED:
        return "rejected";
    case MAILLAGE__V1__ACK__STATUS__STATUS_UNAVAILABLE:
        return "unavailable";
    default:
        return "unknown";
    }
}

/* ---- Primitive checks -------------------------------------------------- */

size_t mg_utf8_bom_len(const char *s, size_t len) {
    return s && len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
}

int mg_utf8_is_valid(const char *str, size_t len) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        unsigned cp;
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            cp = c & 0x07;
        } else {
            return 0; /* continuation byte, overlong 2-byte lead (C0, C1) or > U+10FFFF */
        }
        if (len - i <= need) return 0;
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (need == 2 && cp < 0x800) return 0; /* overlong */
        if (need == 3 && (cp < 0x10000 || cp > 0x10FFFF)) return 0;
        if (cp >= 0xD800 && cp <= 0xDFFF) return 0; /* surrogates */
        i += need + 1;
    }
    return 1;
}

static int s_is_id_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == ':' || c == '-';
}

int mg_id_is_valid(const char *s) {
    if (!s || !*s) return 0;
    /* A path segment of their own in the API's URLs (/v1/offers/<id>),
     * which clients resolve away. */
    if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0) return 0;
    size_t n = 0;
    for (; s[n]; n++) {
        if (n >= MG_ID_MAX || !s_is_id_char(s[n])) return 0;
    }
    static const char reserved[] = ":items";
    return n < sizeof(reserved) - 1 || strcmp(s + n - (sizeof(reserved) - 1), reserved) != 0;
}

static int s_all_digits(const char *s, size_t n) {
    if (strlen(s) != n) return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
    }
    return 1;
}

static int s_is_leap(int y) {
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* 1 if `s` is "YYYY-MM-DD" naming a real day of the Gregorian calendar. */
static int s_date_is_valid(const char *s) {
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-') return 0;
    for (int i = 0; i < 10; i++) {
        if (i == 4 || i == 7) continue;
        if (s[i] < '0' || s[i] > '9') return 0;
    }
    int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    int m = (s[5] - '0') * 10 + (s[6] - '0');
    int d = (s[8] - '0') * 10 + (s[9] - '0');
    if (y < 1 || m < 1 || m > 12 || d < 1) return 0;
    int max = days[m - 1] + (m == 2 && s_is_leap(y));
    return d <= max;
}

/* Department codes: "14", "2A"/"2B", overseas "971".."976". */
static int s_department_is_valid(const char *s) {
    size_t n = strlen(s);
    if (n == 2) {
        if (s[0] == '2' && (s[1] == 'A' || s[1] == 'B')) return 1;
        return s_all_digits(s, 2) && strcmp(s, "00") != 0 && strcmp(s, "20") != 0;
    }
    return n == 3 && s[0] == '9' && s[1] == '7' && s[2] >= '1' && s[2] <= '6';
}

/* Pragmatic e-mail shape: local@domain.tld, ASCII, no spaces. */
static int s_email_is_valid(const char *s) {
    const char *at = strchr(s, '@');
    size_t len = strlen(s);
    if (!at || at == s || len > 254 || strchr(at + 1, '@')) return 0;
    if ((size_t)(at - s) > 64) return 0;
    for (const char *p = s; p < at; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c >= 0x7f || strchr("()<>,;:\\\"[]", c)) return 0;
    }
    const char *dom = at + 1;
    if (!*dom || *dom == '.' || *dom == '-' || !strchr(dom, '.')) return 0;
    char prev = '.';
    for (const char *p = dom; *p; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                 c == '.';
        if (!ok || (c == '.' && prev == '.')) return 0;
        prev = c;
    }
    return prev != '.' && prev != '-';
}

static int s_naf_is_valid(const char *s) {
    return strlen(s) == 6 && s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9' && s[2] == '.' &&
           s[3] >= '0' && s[3] <= '9' && s[4] >= '0' && s[4] <= '9' && s[5] >= 'A' && s[5] <= 'Z';
}

static int s_category_shape_is_valid(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 32) return 0;
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_')) return 0;
    }
    return 1;
}

/* ---- Validation context ------------------------------------------------ */

typedef struct {
    const mg_taxonomy_t *taxonomy;
    const mg_communes_t *communes;
    mg_invalid_t *why;
} s_ctx_t;

/* Text classes: what a field may contain besides printable characters. */
typedef enum {
    S_LINE, /* ids, titles, names: no control character at all */
    S_TEXT, /* descriptions, comments: newline and tab allowed */
} s_text_t;

/* Limits (bytes). */
#define S_NAME_MAX   200
#define S_TITLE_MAX  200
#define S_SHORT_MAX  200
#define S_TEXT_MAX   4000
#define S_TAGS_MAX   32
#define S_TAG_MAX    48
#define S_LIST_MAX   64
#define S_IDS_MAX    1000
#define S_URL_MAX    500
#define S_RADIUS_MAX 2000

static int s_fail(s_ctx_t *c, const char *field, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int s_fail(s_ctx_t *c, const char *field, const char *fmt, ...) {
    if (c->why) {
        snprintf(c->why->field, sizeof c->why->field, "%s", field);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->why->reason, sizeof c->why->reason, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Append `s` to buf at *at, keeping room for the NUL (truncates silently:
 * paths of this schema are far below the buffer size). */
static void s_append(char *buf, size_t len, size_t *at, const char *s, size_t n) {
    if (*at + n >= len) n = *at + 1 < len ? len - *at - 1 : 0;
    memcpy(buf + *at, s, n);
    *at += n;
}

/* Compose "prefix.name" (or "prefix.name[i]" when index >= 0). Called for
 * every field of every valid envelope, so it avoids the printf machinery (it
 * was the largest item of the broker's profile). */
static const char *s_path(char *buf, size_t len, const char *prefix, const char *name, long index) {
    size_t at = 0;
    if (prefix && *prefix) {
        s_append(buf, len, &at, prefix, strlen(prefix));
        s_append(buf, len, &at, ".", 1);
    }
    s_append(buf, len, &at, name, strlen(name));
    if (index >= 0) {
        char digits[24];
        size_t n = 0;
        unsigned long v = (unsigned long)index;
        do digits[sizeof digits - 1 - n++] = (char)('0' + v % 10);
        while ((v /= 10) && n < sizeof digits - 2);
        s_append(buf, len, &at, "[", 1);
        s_append(buf, len, &at, digits + sizeof digits - n, n);
        s_append(buf, len, &at, "]", 1);
    }
    buf[at] = '\0';
    return buf;
}

#define S_PATH(name) s_path(path, sizeof path, prefix, (name), -1)

/* Whether `s` (n bytes, valid UTF-8) holds only spaces: ASCII, no-break
 * (U+00A0, U+202F), the typographic ones (U+2000..U+200B, U+205F) and the
 * ideographic (U+3000). */
static bool s_is_blank(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        if (u[i] == ' ' || u[i] == '\t' || u[i] == '\n')
            i += 1;
        else if (i + 1 < n && u[i] == 0xc2 && u[i + 1] == 0xa0)
            i += 2;
        else if (i + 2 < n && u[i] == 0xe2 && u[i + 1] == 0x80 && (u[i + 2] <= 0x8b || u[i + 2] == 0xaf))
            i += 3;
        else if (i + 2 < n && u[i] == 0xe2 && u[i + 1] == 0x81 && u[i + 2] == 0x9f)
            i += 3;
        else if (i + 2 < n && u[i] == 0xe3 && u[i + 1] == 0x80 && u[i + 2] == 0x80)
            i += 3;
        else
            return false;
    }
    return true;
}

/* A string the producer wrote: valid UTF-8, no forbidden control character
 * (C0 but newline and tab in S_TEXT, DEL, C1, and the bidirectional
 * embeddings, overrides and isolates U+202A..U+202E, U+2066..U+2069, which
 * reorder what a terminal or a page shows after them), at most `max` bytes,
 * non-empty and not spaces only when `required`. */
static int s_check_text(s_ctx_t *c, const char *field, const char *s, size_t max, s_text_t kind,
                        bool required) {
    if (!s) s = "";
    size_t n = strlen(s);
    if (n == 0) return required ? s_fail(c, field, "required") : 0;
    if (n > max) return s_fail(c, field, "too long (%zu bytes, at most %zu)", n, max);
    if (!mg_utf8_is_valid(s, n)) return s_fail(c, field, "not valid UTF-8");
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f) {
            if (kind == S_TEXT && (ch == '\n' || ch == '\t')) continue;
            return s_fail(c, field, "control character (0x%02x) at byte %zu", ch, i);
        }
        if (ch == 0xc2 && (unsigned char)s[i + 1] < 0xa0) /* C1: 0x80..0x9f (valid UTF-8: s[i + 1] exists) */
            return s_fail(c, field, "control character (U+%04X) at byte %zu", (unsigned char)s[i + 1], i);
        if (ch == 0xe2) {
            unsigned cp =
                0x2000 | ((unsigned)((unsigned char)s[i + 1] & 0x3f) << 6) | ((unsigned char)s[i + 2] & 0x3f);
            if ((cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069))
                return s_fail(c, field, "bidirectional control character (U+%04X) at byte %zu", cp, i);
        }
    }
    if (required && s_is_blank(s, n)) return s_fail(c, field, "required (only spaces)");
    return 0;
}

static int s_check_id(s_ctx_t *c, const char *field, const char *s, bool required) {
    if (!s || !*s) return required ? s_fail(c, field, "required") : 0;
    if (!mg_id_is_valid(s))
        return s_fail(
            c, field,
            "not a valid id (1 to %d characters of A-Z a-z 0-9 . _ : -, not . nor .., not ending in :items)",
            MG_ID_MAX);
    return 0;
}

static int s_check_ids(s_ctx_t *c, const char *prefix, const char *name, char **ids, size_t n, size_t max,
                       bool required) {
    char path[128];
    if (n == 0 && required) return s_fail(c, S_PATH(name), "at least one id required");
    if (n > max) return s_fail(c, S_PATH(name), "too many entries (%zu, at most %zu)", n, max);
    for (size_t i = 0; i < n; i++) {
        if (s_check_id(c, s_path(path, sizeof path, prefix, name, (long)i), ids[i], true) < 0) return -1;
    }
    return 0;
}

static int s_check_commune(s_ctx_t *c, const char *field, const char *s, bool required) {
    if (!s || !*s) return required ? s_fail(c, field, "required") : 0;
    if (!mg_commune_code_is_valid(s)) return s_fail(c, field, "not an INSEE commune code (5 characters)");
    if (c->communes && !mg_communes_find(c->communes, s))
        return s_fail(c, field, "unknown commune code \"%s\"", s);
    return 0;
}

static int s_check_category(s_ctx_t *c, const char *field, const char *s, bool required) {
    if (!s || !*s) return required ? s_fail(c, field, "required") : 0;
    if (!s_category_shape_is_valid(s)) return s_fail(c, field, "not a category code ([a-z_], 1 to 32)");
    if (c->taxonomy && !mg_taxonomy_label(c->taxonomy, s))
        return s_fail(c, field, "unknown category \"%s\"", s);
    return 0;
}

static int s_check_date(s_ctx_t *c, const char *field, const char *s) {
    if (!s || !*s) return 0;
    if (!s_date_is_valid(s)) return s_fail(c, field, "not a date YYYY-MM-DD");
    return 0;
}

/* A date bounding an item's validity: a real day from 2000 on (the
 * matcher counts days from 1970 and reads a negative day as "none": an
 * item valid until 1969 would never expire). "YYYY-MM-DD" compares
 * correctly as a string. */
static int s_check_validity_date(s_ctx_t *c, const char *field, const char *s) {
    if (s_check_date(c, field, s) < 0) return -1;
    if (s && *s && strcmp(s, "2000-01-01") < 0) return s_fail(c, field, "before 2000-01-01");
    return 0;
}

/* valid_from and valid_until, each optional; from <= until when both set. */
static int s_check_validity(s_ctx_t *c, const char *prefix, const char *from, const char *until) {
    char path[128];
    if (s_check_validity_date(c, S_PATH("valid_from"), from) < 0) return -1;
    if (s_check_validity_date(c, S_PATH("valid_until"), until) < 0) return -1;
    if (from && *from && until && *until && strcmp(from, until) > 0)
        return s_fail(c, S_PATH("valid_until"), "before valid_from");
    return 0;
}

static int s_check_territory_entry(s_ctx_t *c, const char *field, const char *s) {
    if (!s || !*s) return s_fail(c, field, "empty territory");
    if (strncmp(s, "dep:", 4) == 0) {
        if (!s_department_is_valid(s + 4)) return s_fail(c, field, "not a department code after \"dep:\"");
        return 0;
    }
    if (strncmp(s, "epci:", 5) == 0) {
        if (!s_all_digits(s + 5, 9)) return s_fail(c, field, "not an EPCI SIREN (9 digits) after \"epci:\"");
        return 0;
    }
    if (!mg_commune_code_is_valid(s))
        return s_fail(c, field, "expected \"dep:NN\", \"epci:<9 digits>\" or a commune code");
    return s_check_commune(c, field, s, true);
}

static int s_check_territory(s_ctx_t *c, const char *prefix, const char *name, char **entries, size_t n) {
    char path[128];
    if (n > S_LIST_MAX) return s_fail(c, S_PATH(name), "too many entries (%zu, at most %d)", n, S_LIST_MAX);
    for (size_t i = 0; i < n; i++) {
        if (s_check_territory_entry(c, s_path(path, sizeof path, prefix, name, (long)i), entries[i]) < 0)
            return -1;
    }
    return 0;
}

static int s_check_tags(s_ctx_t *c, const char *prefix, char **tags, size_t n) {
    char path[128];
    if (n > S_TAGS_MAX) return s_fail(c, S_PATH("tags"), "too many tags (%zu, at most %d)", n, S_TAGS_MAX);
    for (size_t i = 0; i < n; i++) {
        if (s_check_text(c, s_path(path, sizeof path, prefix, "tags", (long)i), tags[i], S_TAG_MAX, S_LINE,
                         true) < 0)
            return -1;
    }
    return 0;
}

static int s_check_enum(s_ctx_t *c, const char *field, const ProtobufCEnumDescriptor *desc, int value,
                        bool required) {
    if (!protobuf_c_enum_descriptor_get_value(desc, value))
        return s_fail(c, field, "unknown %s value %d", desc->short_name, value);
    if (required && value == 0) return s_fail(c, field, "required");
    return 0;
}

static int s_check_finite_range(s_ctx_t *c, const char *field, double v, double lo, double hi) {
    if (!isfinite(v) || v < lo || v > hi) return s_fail(c, field, "must be within %g..%g", lo, hi);
    return 0;
}

/* ---- Messages ---------------------------------------------------------- */

static int s_check_contact(s_ctx_t *c, const char *prefix, const Maillage__V1__Contact *ct) {
    char path[128];
    if (!ct) return 0;
    if (s_check_text(c, S_PATH("name"), ct->name, S_NAME_MAX, S_LINE, false) < 0) return -1;
    if (s_check_text(c, S_PATH("email"), ct->email, 254, S_LINE, false) < 0) return -1;
    if (ct->email && *ct->email && !s_email_is_valid(ct->email))
        return s_fail(c, S_PATH("email"), "not an e-mail address");
    if (s_check_text(c, S_PATH("phone"), ct->phone, 32, S_LINE, false) < 0) return -1;
    for (const char *p = ct->phone; p && *p; p++) {
        if (!strchr("0123456789 +().-", *p)) return s_fail(c, S_PATH("phone"), "not a phone number");
    }
    if (s_check_text(c, S_PATH("role"), ct->role, S_NAME_MAX, S_LINE, false) < 0) return -1;
    return 0;
}

static int s_check_structure(s_ctx_t *c, const char *prefix, const Maillage__V1__Structure *st) {
    char path[128];
    if (!st) return s_fail(c, prefix, "required");
    if (s_check_id(c, S_PATH("structure_id"), st->structure_id, true) < 0) return -1;
    if (s_check_text(c, S_PATH("name"), st->name, S_NAME_MAX, S_LINE, true) < 0) return -1;
    if (*st->siren && !s_all_digits(st->siren, 9))
        return s_fail(c, S_PATH("siren"), "not a SIREN (9 digits)");
    if (*st->siret) {
        if (!s_all_digits(st->siret, 14)) return s_fail(c, S_PATH("siret"), "not a SIRET (14 digits)");
        if (*st->siren && strncmp(st->siret, st->siren, 9) != 0)
            return s_fail(c, S_PATH("siret"), "does not start with the SIREN");
    }
    if (s_check_enum(c, S_PATH("family"), &maillage__v1__family__descriptor, (int)st->family, false) < 0)
        return -1;
    if (*st->legal_category && !s_all_digits(st->legal_category, 4))
        return s_fail(c, S_PATH("legal_category"), "not an INSEE legal category (4 digits)");
    if (*st->naf_code && !s_naf_is_valid(st->naf_code))
        return s_fail(c, S_PATH("naf_code"), "not a NAF code (NN.NNL, e.g. 88.10A)");
    if (s_check_commune(c, S_PATH("commune"), st->commune, true) < 0) return -1;
    if (s_check_ids(c, prefix, "networks", st->networks, st->n_networks, S_LIST_MAX, false) < 0) return -1;
    if (st->n_labels > S_LIST_MAX)
        return s_fail(c, S_PATH("labels"), "too many entries (%zu, at most %d)", st->n_labels, S_LIST_MAX);
    for (size_t i = 0; i < st->n_labels; i++) {
        const char *field = s_path(path, sizeof path, prefix, "labels", (long)i);
        if (s_check_text(c, field, st->labels[i], S_TAG_MAX, S_LINE, true) < 0) return -1;
    }
    if (s_check_text(c, S_PATH("website"), st->website, S_URL_MAX, S_LINE, false) < 0) return -1;
    if (*st->website && strncmp(st->website, "https://", 8) != 0 && strncmp(st->website, "http://", 7) != 0)
        return s_fail(c, S_PATH("website"), "not an http:// or https:// address");
    if (s_check_text(c, S_PATH("description"), st->description, S_TEXT_MAX, S_TEXT, false) < 0) return -1;
    return s_check_contact(c, S_PATH("contact"), st->contact);
}

static int s_check_need(s_ctx_t *c, const char *prefix, const Maillage__V1__Need *nd) {
    char path[128];
    if (!nd) return s_fail(c, prefix, "required");
    if (s_check_id(c, S_PATH("need_id"), nd->need_id, true) < 0) return -1;
    if (s_check_id(c, S_PATH("structure_id"), nd->structure_id, true) < 0) return -1;
    if (s_check_category(c, S_PATH("category"), nd->category, true) < 0) return -1;
    if (s_check_tags(c, prefix, nd->tags, nd->n_tags) < 0) return -1;
    if (s_check_text(c, S_PATH("title"), nd->title, S_TITLE_MAX, S_LINE, true) < 0) return -1;
    if (s_check_text(c, S_PATH("description"), nd->description, S_TEXT_MAX, S_TEXT, false) < 0) return -1;
    if (s_check_commune(c, S_PATH("commune"), nd->commune, true) < 0) return -1;
    if (nd->radius_km > S_RADIUS_MAX)
        return s_fail(c, S_PATH("radius_km"), "must be within 0..%d", S_RADIUS_MAX);
    if (s_check_validity(c, prefix, nd->valid_from, nd->valid_until) < 0) return -1;
    if (s_check_text(c, S_PATH("quantity"), nd->quantity, S_SHORT_MAX, S_LINE, false) < 0) return -1;
    if (nd->urgency > 3) return s_fail(c, S_PATH("urgency"), "must be within 0..3");
    return 0;
}

static int s_check_conditions(s_ctx_t *c, const char *prefix, const Maillage__V1__OfferConditions *cd) {
    char path[128];
    if (!cd) return 0;
    if (s_check_ids(c, prefix, "member_of", cd->member_of, cd->n_member_of, S_LIST_MAX, false) < 0) return -1;
    if (cd->n_families > 16) return s_fail(c, S_PATH("families"), "too many entries");
    for (size_t i = 0; i < cd->n_families; i++) {
        const char *field = s_path(path, sizeof path, prefix, "families", (long)i);
        if (s_check_enum(c, field, &maillage__v1__family__descriptor, (int)cd->families[i], true) < 0)
            return -1;
    }
    if (cd->n_departments > S_LIST_MAX) return s_fail(c, S_PATH("departments"), "too many entries");
    for (size_t i = 0; i < cd->n_departments; i++) {
        if (!s_department_is_valid(cd->departments[i]))
            return s_fail(c, s_path(path, sizeof path, prefix, "departments", (long)i),
                          "not a department code (\"14\")");
    }
    return 0;
}

static int s_check_offer(s_ctx_t *c, const char *prefix, const Maillage__V1__Offer *of) {
    char path[128];
    if (!of) return s_fail(c, prefix, "required");
    if (s_check_id(c, S_PATH("offer_id"), of->offer_id, true) < 0) return -1;
    if (s_check_id(c, S_PATH("provider_id"), of->provider_id, true) < 0) return -1;
    if (s_check_category(c, S_PATH("category"), of->category, true) < 0) return -1;
    if (s_check_tags(c, prefix, of->tags, of->n_tags) < 0) return -1;
    if (s_check_text(c, S_PATH("title"), of->title, S_TITLE_MAX, S_LINE, true) < 0) return -1;
    if (s_check_text(c, S_PATH("description"), of->description, S_TEXT_MAX, S_TEXT, false) < 0) return -1;
    /* An offer is placed by its commune, its territory, or both. */
    if (s_check_commune(c, S_PATH("commune"), of->commune, of->n_territory == 0) < 0) return -1;
    if (of->radius_km > S_RADIUS_MAX)
        return s_fail(c, S_PATH("radius_km"), "must be within 0..%d", S_RADIUS_MAX);
    if (s_check_territory(c, prefix, "territory", of->territory, of->n_territory) < 0) return -1;
    if (s_check_text(c, S_PATH("capacity"), of->capacity, S_SHORT_MAX, S_LINE, false) < 0) return -1;
    if (s_check_validity(c, prefix, of->valid_from, of->valid_until) < 0) return -1;
    if (s_check_conditions(c, S_PATH("conditions"), of->conditions) < 0) return -1;
    if (s_check_text(c, S_PATH("terms"), of->terms, S_SHORT_MAX, S_LINE, false) < 0) return -1;
    return 0;
}

static int s_check_member_joined(s_ctx_t *c, const char *prefix, const Maillage__V1__MemberJoined *m) {
    char path[128];
    if (s_check_structure(c, S_PATH("structure"), m->structure) < 0) return -1;
    if (s_check_id(c, S_PATH("network"), m->network, true) < 0) return -1;
    return s_check_date(c, S_PATH("joined_on"), m->joined_on);
}

static int s_check_member_left(s_ctx_t *c, const char *prefix, const Maillage__V1__MemberLeft *m) {
    char path[128];
    if (s_check_id(c, S_PATH("structure_id"), m->structure_id, true) < 0) return -1;
    if (s_check_id(c, S_PATH("network"), m->network, true) < 0) return -1;
    if (s_check_date(c, S_PATH("left_on"), m->left_on) < 0) return -1;
    return s_check_text(c, S_PATH("reason"), m->reason, S_TEXT_MAX, S_TEXT, false);
}

static int s_check_need_closed(s_ctx_t *c, const char *prefix, const Maillage__V1__NeedClosed *m) {
    char path[128];
    if (s_check_id(c, S_PATH("need_id"), m->need_id, true) < 0) return -1;
    if (s_check_id(c, S_PATH("structure_id"), m->structure_id, true) < 0) return -1;
    if (s_check_enum(c, S_PATH("reason"), &maillage__v1__closure__descriptor, (int)m->reason, false) < 0)
        return -1;
    return s_check_text(c, S_PATH("comment"), m->comment, S_TEXT_MAX, S_TEXT, false);
}

static int s_check_offer_withdrawn(s_ctx_t *c, const char *prefix, const Maillage__V1__OfferWithdrawn *m) {
    char path[128];
    if (s_check_id(c, S_PATH("offer_id"), m->offer_id, true) < 0) return -1;
    if (s_check_id(c, S_PATH("provider_id"), m->provider_id, true) < 0) return -1;
    if (s_check_enum(c, S_PATH("reason"), &maillage__v1__closure__descriptor, (int)m->reason, false) < 0)
        return -1;
    return s_check_text(c, S_PATH("comment"), m->comment, S_TEXT_MAX, S_TEXT, false);
}

static int s_check_cooperation_proposed(s_ctx_t *c, const char *prefix,
                                        const Maillage__V1__CooperationProposed *m) {
    char path[128];
    if (s_check_id(c, S_PATH("proposal_id"), m->proposal_id, true) < 0) return -1;
    if (s_check_id(c, S_PATH("from_structure_id"), m->from_structure_id, true) < 0) return -1;
    if (s_check_id(c, S_PATH("to_structure_id"), m->to_structure_id, false) < 0) return -1;
    if (*m->to_structure_id && strcmp(m->to_structure_id, m->from_structure_id) == 0)
        return s_fail(c, S_PATH("to_structure_id"), "same as from_structure_id");
    if (!*m->to_structure_id && m->n_territory == 0)
        return s_fail(c, S_PATH("to_structure_id"), "required when no territory is given");
    if (s_check_territory(c, prefix, "territory", m->territory, m->n_territory) < 0) return -1;
    if (s_check_enum(c, S_PATH("kind"), &maillage__v1__cooperation_kind__descriptor, (int)m->kind, false) < 0)
        return -1;
    if (s_check_category(c, S_PATH("category"), m->category, false) < 0) return -1;
    if (s_check_text(c, S_PATH("title"), m->title, S_TITLE_MAX, S_LINE, true) < 0) return -1;
    if (s_check_text(c, S_PATH("description"), m->description, S_TEXT_MAX, S_TEXT, false) < 0) return -1;
    return s_check_validity_date(c, S_PATH("valid_until"), m->valid_until);
}

static int s_check_cooperation_answered(s_ctx_t *c, const char *prefix,
                                        const Maillage__V1__CooperationAnswered *m) {
    char path[128];
    if (s_check_id(c, S_PATH("proposal_id"), m->proposal_id, true) < 0) return -1;
    if (s_check_id(c, S_PATH("structure_id"), m->structure_id, true) < 0) return -1;
    if (s_check_enum(c, S_PATH("answer"), &maillage__v1__cooperation_answer__descriptor, (int)m->answer,
                     true) < 0)
        return -1;
    return s_check_text(c, S_PATH("comment"), m->comment, S_TEXT_MAX, S_TEXT, false);
}

static int s_check_match_found(s_ctx_t *c, const char *prefix, const Maillage__V1__MatchFound *m) {
    char path[128];
    if (s_check_id(c, S_PATH("match_id"), m->match_id, true) < 0) return -1;
    if (s_check_id(c, S_PATH("need_id"), m->need_id, true) < 0) return -1;
    if (s_check_id(c, S_PATH("offer_id"), m->offer_id, true) < 0) return -1;
    if (s_check_id(c, S_PATH("need_structure_id"), m->need_structure_id, true) < 0) return -1;
    if (s_check_id(c, S_PATH("offer_structure_id"), m->offer_structure_id, true) < 0) return -1;
    if (s_check_category(c, S_PATH("category"), m->category, true) < 0) return -1;
    if (s_check_finite_range(c, S_PATH("score"), m->score, 0.0, 1.0) < 0) return -1;
    if (m->n_components > 16) return s_fail(c, S_PATH("components"), "too many entries (at most 16)");
    for (size_t i = 0; i < m->n_components; i++) {
        char sub[128];
        s_path(sub, sizeof sub, prefix, "components", (long)i);
        const Maillage__V1__ScoreComponent *sc = m->components[i];
        if (!sc) return s_fail(c, sub, "missing");
        if (s_check_text(c, s_path(path, sizeof path, sub, "name", -1), sc->name, S_TAG_MAX, S_LINE, true) <
            0)
            return -1;
        if (s_check_finite_range(c, s_path(path, sizeof path, sub, "value", -1), sc->value, 0.0, 1.0) < 0)
            return -1;
        if (s_check_finite_range(c, s_path(path, sizeof path, sub, "weight", -1), sc->weight, 0.0, 1000.0) <
            0)
            return -1;
        if (s_check_text(c, s_path(path, sizeof path, sub, "detail", -1), sc->detail, S_SHORT_MAX, S_LINE,
                         false) < 0)
            return -1;
    }
    if (s_check_text(c, S_PATH("explanation"), m->explanation, S_TEXT_MAX, S_TEXT, false) < 0) return -1;
    /* -1: no distance (an offer placed by its territory only) */
    if (m->distance_km != -1.0 &&
        s_check_finite_range(c, S_PATH("distance_km"), m->distance_km, 0.0, 40075.0) < 0)
        return -1;
    if (*m->department && !s_department_is_valid(m->department))
        return s_fail(c, S_PATH("department"), "not a department code (\"14\")");
    return 0;
}

static int s_check_match_feedback(s_ctx_t *c, const char *prefix, const Maillage__V1__MatchFeedback *m) {
    char path[128];
    if (s_check_id(c, S_PATH("match_id"), m->match_id, true) < 0) return -1;
    if (s_check_id(c, S_PATH("staff_id"), m->staff_id, true) < 0) return -1;
    if (s_check_enum(c, S_PATH("outcome"), &maillage__v1__match_outcome__descriptor, (int)m->outcome, true) <
        0)
        return -1;
    return s_check_text(c, S_PATH("comment"), m->comment, S_TEXT_MAX, S_TEXT, false);
}

static int s_check_collective(s_ctx_t *c, const char *prefix, const Maillage__V1__CollectiveNeedDetected *m) {
    char path[128];
    if (s_check_id(c, S_PATH("collective_id"), m->collective_id, true) < 0) return -1;
    if (s_check_category(c, S_PATH("category"), m->category, true) < 0) return -1;
    if (s_check_territory_entry(c, S_PATH("territory"), m->territory) < 0) return -1;
    if (s_check_text(c, S_PATH("territory_name"), m->territory_name, S_NAME_MAX, S_LINE, false) < 0)
        return -1;
    if (s_check_ids(c, prefix, "need_ids", m->need_ids, m->n_need_ids, S_IDS_MAX, true) < 0) return -1;
    if (s_check_ids(c, prefix, "structure_ids", m->structure_ids, m->n_structure_ids, S_IDS_MAX, false) < 0)
        return -1;
    return s_check_text(c, S_PATH("explanation"), m->explanation, S_TEXT_MAX, S_TEXT, false);
}

/* The payload's own rules; `prefix` is the oneof field's name. */
static int s_check_payload(s_ctx_t *c, const mg_envelope_t *env, const char *prefix) {
    char path[128];
    switch (env->payload_case) {
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_MEMBER_JOINED:
        return s_check_member_joined(c, prefix, env->member_joined);
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_MEMBER_UPDATED:
        return s_check_structure(c, S_PATH("structure"), env->member_updated->structure);
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_MEMBER_LEFT:
        return s_check_member_left(c, prefix, env->member_left);
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_REPORTED:
        return s_check_need(c, S_PATH("need"), env->need_reported->need);
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_UPDATED:
        return s_check_need(c, S_PATH("need"), env->need_updated->need);
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_CLOSED:
        return s_check_need_closed(c, prefix, env->need_closed);
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_OFFER_PUBLISHED:
        return s_check_offer(c, S_PATH("offer"), env->offer_published->offer);
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_OFFER_UPDATED:
        return s_check_offer(c, S_PATH("offer"), env->offer_updated->offer);
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_OFFER_WITHDRAWN:
        return s_check_offer_withdrawn(c, prefix, env->offer_withdrawn);
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_COOPERATION_PROPOSED:
        return s_check_cooperation_proposed(c, prefix, env->cooperation_proposed);
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_COOPERATION_ANSWERED:
        return s_check_cooperation_answered(c, prefix, env->cooperation_answered);
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_MATCH_FOUND:
        return s_check_match_found(c, prefix, env->match_found);
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_MATCH_FEEDBACK:
        return s_check_match_feedback(c, prefix, env->match_feedback);
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_COLLECTIVE_NEED_DETECTED:
        return s_check_collective(c, prefix, env->collective_need_detected);
    default:
        return s_fail(c, "", "no payload");
    }
}

int mg_envelope_validate(const mg_envelope_t *env, const mg_taxonomy_t *taxonomy,
                         const mg_communes_t *communes, mg_invalid_t *why) {
    s_ctx_t c = {taxonomy, communes, why};
    if (why) why->field[0] = why->reason[0] = '\0';
    if (!env) return s_fail(&c, "", "no envelope");

    if (s_check_id(&c, "event_id", env->event_id, true) < 0) return -1;
    if (!env->type || !*env->type) return s_fail(&c, "type", "required");
    const mg_event_type_t *type = mg_event_type_by_name(env->type);
    if (!type) {
        /* Echo the type only if it is printable: the reason reaches logs. */
        if (s_check_text(&c, "type", env->type, 64, S_LINE, true) < 0) return -1;
        return s_fail(&c, "type", "unknown event type \"%s\"", env->type);
    }
    if (env->schema_version > MG_SCHEMA_VERSION)
        return s_fail(&c, "schema_version", "unsupported schema version %u (this broker reads up to %d)",
                      env->schema_version, MG_SCHEMA_VERSION);
    if (env->occurred_at_ms < 0 || env->occurred_at_ms > 253402300799999LL)
        return s_fail(&c, "occurred_at_ms", "not a Unix time in milliseconds");
    if (s_check_id(&c, "correlation_id", env->correlation_id, false) < 0) return -1;
    if (env->payload_case == MAILLAGE__V1__ENVELOPE__PAYLOAD__NOT_SET)
        return s_fail(&c, type->payload_field, "required: no payload set");
    if (env->payload_case != type->payload_case) {
        const mg_event_type_t *actual = mg_event_type_by_case(env->payload_case);
        return s_fail(&c, "type", "type \"%s\" does not match the payload (%s)", env->type,
                      actual ? actual->payload_field : "unknown");
    }
    /* Every member of the oneof union is a pointer: a C producer may set the
     * case and forget the message (the decoder never does). */
    if (!env->member_joined) return s_fail(&c, type->payload_field, "required: payload message missing");
    return s_check_payload(&c, env, type->payload_field);
}

/* 1 if the commune code `code` (or a territory entry) was a former
 * commune's, then replaced in place by the current commune's code. */
static int s_current_code(const mg_communes_t *communes, char *code) {
    if (!code || !mg_commune_code_is_valid(code)) return 0; /* "", "dep:14", "epci:..." */
    const mg_commune_t *c = mg_communes_find(communes, code);
    if (!c || strcmp(c->code, code) == 0) return 0;
    memcpy(code, c->code, sizeof c->code); /* both are 5 characters */
    return 1;
}

/* The same for the `*n` entries of a territory. A list naming several
 * communes déléguées of one commune (or one and the commune itself) would
 * then name it twice: a repeated entry is dropped (freed: `codes` comes
 * from the unpacker, whose allocator is malloc's). */
static int s_current_codes(const mg_communes_t *communes, char **codes, size_t *n) {
    int moved = 0;
    for (size_t i = 0; i < *n; i++)
        moved += s_current_code(communes, codes[i]);
    if (!moved) return 0;
    size_t kept = 0;
    for (size_t i = 0; i < *n; i++) {
        int repeated = 0;
        for (size_t j = 0; j < kept && !repeated; j++)
            repeated = strcmp(codes[j], codes[i]) == 0;
        if (repeated)
            free(codes[i]);
        else
            codes[kept++] = codes[i];
    }
    *n = kept;
    return moved;
}

int mg_envelope_current_communes(mg_envelope_t *env, const mg_communes_t *communes) {
    if (!env || !communes || !env->member_joined) return 0;
    const Maillage__V1__Need *need = NULL;
    Maillage__V1__Offer *offer = NULL;
    switch (env->payload_case) {
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_MEMBER_JOINED:
        return env->member_joined->structure
                   ? s_current_code(communes, env->member_joined->structure->commune)
                   : 0;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_MEMBER_UPDATED:
        return env->member_updated->structure
                   ? s_current_code(communes, env->member_updated->structure->commune)
                   : 0;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_REPORTED:
        need = env->need_reported->need;
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_UPDATED:
        need = env->need_updated->need;
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_OFFER_PUBLISHED:
        offer = env->offer_published->offer;
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_OFFER_UPDATED:
        offer = env->offer_updated->offer;
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_COOPERATION_PROPOSED:
        return s_current_codes(communes, env->cooperation_proposed->territory,
                               &env->cooperation_proposed->n_territory);
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_COLLECTIVE_NEED_DETECTED:
        return s_current_code(communes, env->collective_need_detected->territory);
    default:
        return 0;
    }
    if (need) return s_current_code(communes, need->commune);
    if (!offer) return 0;
    return s_current_code(communes, offer->commune) +
           s_current_codes(communes, offer->territory, &offer->n_territory);
}
