/* token.h -- the bearer tokens of the HTTP gateway.
 *
 * A token is "mgt_" + 43 characters of base64url (32 random bytes). It is
 * shown once, when issued, and stored only hashed: SHA-256 of the whole
 * token text, lowercase hex, names its Redis hash MG_TOKEN_KEY_PREFIX<hash>
 * (fields id, kind, subject, types, label, created_at_ms). MG_TOKENS_KEY maps
 * each token id ("tok-" + the first 12 hex digits of the hash) to the hash,
 * for listing and revoking; a revocation is PUBLISHed on
 * MG_TOKENS_REVOKED_CHANNEL with the hash so every gateway forgets it at once.
 *
 * Pure functions except mg_token_generate() (randomness, libsodium); any
 * thread. */
#ifndef MAILLAGE_TOKEN_H
#define MAILLAGE_TOKEN_H

#include <stddef.h>

#define MG_TOKEN_PREFIX "mgt_"
/* Length of a token's text, without the terminating NUL. */
#define MG_TOKEN_LEN 47
/* Length of the hex SHA-256 of a token, without the NUL. */
#define MG_TOKEN_HASH_LEN 64
/* Length of a token id ("tok-" + 12 hex), without the NUL. */
#define MG_TOKEN_ID_LEN 16

#define MG_TOKEN_KEY_PREFIX "mg:token:"
#define MG_TOKENS_KEY "mg:tokens"
#define MG_TOKENS_REVOKED_CHANNEL "mg:tokens:revoked"

/* Lua that defines the local function revoke_staff_tokens(staff_id): it
 * deletes every token of kind "staff" for that subject (MG_TOKEN_KEY_PREFIX
 * key and MG_TOKENS_KEY entry), PUBLISHes each hash on
 * MG_TOKENS_REVOKED_CHANNEL, and returns how many. The scripts that remove a
 * staff member (`maillage staff remove`, the notifier dropping a [staff.<id>]
 * gone from its config) begin with it. It names keys not passed in KEYS
 * (single-instance Redis, as everywhere in maillage). */
#define MG_TOKEN_REVOKE_STAFF_LUA                                                                            \
    "local function revoke_staff_tokens(id)\n"                                                               \
    "  local all, n = redis.call('HGETALL', '" MG_TOKENS_KEY "'), 0\n"                                       \
    "  for i = 1, #all, 2 do\n"                                                                              \
    "    local key = '" MG_TOKEN_KEY_PREFIX "' .. all[i+1]\n"                                                \
    "    local t = redis.call('HMGET', key, 'kind', 'subject')\n"                                            \
    "    if t[1] == 'staff' and t[2] == id then\n"                                                           \
    "      redis.call('DEL', key)\n"                                                                         \
    "      redis.call('HDEL', '" MG_TOKENS_KEY "', all[i])\n"                                                \
    "      redis.call('PUBLISH', '" MG_TOKENS_REVOKED_CHANNEL "', all[i+1])\n"                               \
    "      n = n + 1\n"                                                                                      \
    "    end\n"                                                                                              \
    "  end\n"                                                                                                \
    "  return n\n"                                                                                           \
    "end\n"

/* The event types a network token may post when `issue` is given none. */
#define MG_TOKEN_DEFAULT_TYPES "member.*,need.*,offer.*,cooperation.*"

/* Write a new random token into `out`. Returns 0, -1 if libsodium cannot be
 * initialised. */
int mg_token_generate(char out[MG_TOKEN_LEN + 1]);

/* 1 if the `len` bytes at `s` have the form of a token (prefix, length,
 * base64url alphabet), else 0. Cheap: run it before hashing what a client
 * sent. */
int mg_token_is_well_formed(const char *s, size_t len);

/* SHA-256 of the `len` bytes at `token`, as 64 lowercase hex digits + NUL. */
void mg_token_hash_hex(const char *token, size_t len, char out[MG_TOKEN_HASH_LEN + 1]);

/* The token id of a hash: "tok-" + its first 12 hex digits + NUL. */
void mg_token_id_from_hash(const char *hash_hex, char out[MG_TOKEN_ID_LEN + 1]);

/* Check a comma-separated list of event-type patterns, as in the CURVE
 * allow-list: exact types ("need.reported"), prefixes ending with '*'
 * ("need.*"), "*" for any. Returns 0, or -1 with a reason in `err`. */
int mg_token_types_check(const char *patterns, char *err, size_t errlen);

/* 1 if `type` is allowed by the comma-separated `patterns`, else 0. The
 * types the chamber's programs emit (match.found, match.feedback,
 * collective_need.detected) are allowed only when named exactly: "*" or
 * "match.*" never grant them to a network. */
int mg_token_types_allow(const char *patterns, const char *type);

#endif
