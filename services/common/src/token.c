/* token.c -- bearer tokens: generation, hashing, type patterns; see token.h. */
#include "maillage/token.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "maillage/envelope.h"

static const char s_base64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int mg_token_generate(char out[MG_TOKEN_LEN + 1]) {
    if (sodium_init() < 0) return -1;
    uint8_t raw[32];
    randombytes_buf(raw, sizeof raw);
    size_t n = 0;
    memcpy(out, MG_TOKEN_PREFIX, 4);
    n = 4;
    /* base64url without padding: 32 bytes -> 43 characters. */
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < sizeof raw; i++) {
        acc = (acc << 8) | raw[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[n++] = s_base64url[(acc >> bits) & 63];
        }
    }
    if (bits > 0) out[n++] = s_base64url[(acc << (6 - bits)) & 63];
    out[n] = '\0';
    sodium_memzero(raw, sizeof raw);
    return n == MG_TOKEN_LEN ? 0 : -1;
}

int mg_token_is_well_formed(const char *s, size_t len) {
    if (!s || len != MG_TOKEN_LEN || memcmp(s, MG_TOKEN_PREFIX, 4) != 0) return 0;
    for (size_t i = 4; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

void mg_token_hash_hex(const char *token, size_t len, char out[MG_TOKEN_HASH_LEN + 1]) {
    static const char hex[] = "0123456789abcdef";
    uint8_t digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, (const uint8_t *)token, len);
    for (size_t i = 0; i < sizeof digest; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 15];
    }
    out[MG_TOKEN_HASH_LEN] = '\0';
}

void mg_token_id_from_hash(const char *hash_hex, char out[MG_TOKEN_ID_LEN + 1]) {
    snprintf(out, MG_TOKEN_ID_LEN + 1, "tok-%.12s", hash_hex);
}

/* Walk the patterns of a comma-separated list: each one trimmed, in
 * [start, end). Returns the position after it, or NULL at the end. */
static const char *s_next_pattern(const char *p, const char **start, const char **end) {
    while (*p == ',' || *p == ' ' || *p == '\t') p++;
    if (!*p) return NULL;
    *start = p;
    while (*p && *p != ',') p++;
    const char *e = p;
    while (e > *start && (e[-1] == ' ' || e[-1] == '\t')) e--;
    *end = e;
    return p;
}

int mg_token_types_check(const char *patterns, char *err, size_t errlen) {
    const char *p = patterns, *start, *end;
    int count = 0;
    while ((p = s_next_pattern(p, &start, &end))) {
        size_t n = (size_t)(end - start);
        size_t body = n && start[n - 1] == '*' ? n - 1 : n;
        for (size_t i = 0; i < body; i++) {
            char c = start[i];
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_')) {
                snprintf(err, errlen, "event type pattern \"%.*s\": expected types like need.reported, need.* or *",
                         (int)(n > 64 ? 64 : n), start);
                return -1;
            }
        }
        /* A typo ("ofer.*") would make a token that may post nothing of
         * what its network sends: every such POST answered 403. */
        char pattern[96];
        snprintf(pattern, sizeof pattern, "%.*s", (int)(n > 64 ? 64 : n), start);
        size_t types_count;
        const mg_event_type_t *types = mg_event_types(&types_count);
        int grants = 0;
        for (size_t t = 0; t < types_count && !grants; t++)
            grants = mg_token_types_allow(pattern, types[t].type);
        if (!grants) {
            snprintf(err, errlen,
                     "event type pattern \"%s\" allows no event type%s (member.*, need.*, offer.*, "
                     "cooperation.*; match.found, match.feedback and collective_need.detected only by name)",
                     pattern, n && start[n - 1] == '.' ? ": a prefix ends with *" : "");
            return -1;
        }
        count++;
    }
    if (count == 0) {
        snprintf(err, errlen, "no event type pattern");
        return -1;
    }
    return 0;
}

/* What the chamber's own programs emit: a network token gets these only by
 * naming them, never through "*" or a prefix. */
static int s_type_is_internal(const char *type) {
    return strcmp(type, "match.found") == 0 || strcmp(type, "match.feedback") == 0 ||
           strcmp(type, "collective_need.detected") == 0;
}

int mg_token_types_allow(const char *patterns, const char *type) {
    if (!patterns || !type) return 0;
    const char *p = patterns, *start, *end;
    size_t tlen = strlen(type);
    int internal = s_type_is_internal(type);
    while ((p = s_next_pattern(p, &start, &end))) {
        size_t n = (size_t)(end - start);
        if (n && start[n - 1] == '*') {
            if (!internal && tlen >= n - 1 && memcmp(type, start, n - 1) == 0) return 1;
        } else if (n == tlen && memcmp(type, start, n) == 0) {
            return 1;
        }
    }
    return 0;
}
