/* journal.c -- the journal protocol in Redis: appending (asynchronous, one
 * script call per batch) and reading back (synchronous, for the CLI).
 *
 * Why a script: deduplication, numbering and appending must happen together.
 * With separate commands a crash between INCR and XADD would leave a hole in
 * the sequence, and two retries of one event racing each other could both be
 * journaled. Inside one script Redis runs all of it atomically, and its AOF
 * records the script's effects as one transaction. */
#include "maillage/journal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "maillage/envelope.h"
#include "maillage/log.h"
#include "maillage/mem.h"
#include "maillage/script.h"
#include "maillage/subscriber.h"

/* Per event, two commands: SET NX GET both checks the dedupe key and claims
 * it with the tentative sequence (Redis >= 7.0 accepts NX with GET), and XADD
 * appends; the counter is read once and written once per batch. That halves
 * the commands Redis runs and records in its AOF per event, compared with
 * GET + INCR + XADD + SET.
 *
 * Personal data: an event may carry a contact operation (member.* events,
 * whose contact the broker took out of the envelope). It is applied right
 * after the event's XADD succeeded, so only for events actually journaled
 * (never for a duplicate: a retry of an old member.joined cannot bring back
 * a contact that a later event changed or erased) and in sequence order.
 * The contact keys follow the dedupe keys in KEYS, one per event that has an
 * operation, in the order of the events; each event's third argument is its
 * operation: "" none, "D" delete, "S" followed by the serialized Contact to
 * set.
 *
 * Ownership (mg:owner, a hash: "n:<nid>", "o:<oid>", "p:<pid>" -> the
 * network that reported the item or proposed the cooperation, "s:<sid>" ->
 * the network that sent the structure's member.joined; kept: ids never come
 * back): each event's fourth argument is its owner rule
 * (mg_journal_owner_op(): "<op> <steward> <source> <field> [<sid>]"),
 * checked before the event's XADD, in the same call, so that two events of
 * one batch see each other. A refused event releases its dedupe key (a
 * retry is refused again, not answered DUPLICATE) and its result is the
 * reason, a string beginning with MG_NOT_OWNER. An event is refused when
 * the item it names is another network's, or, for an item without an owner,
 * when the structure it names (the item's, a member event's, a
 * cooperation's party) is. Ops: R a report or a proposal, U an update, C a
 * close, J a member.joined, L a member.left (the structure keeps its owner:
 * it is still its network's if it comes back), A a cooperation's answer. A
 * report, proposal or member.joined records its network as the owner of
 * what has none, unless the matcher already holds its record (mg:need:,
 * mg:offer:, mg:coop:, mg:structure:): one journaled before this rule, or
 * by a steward, stays everyone's, as before. A steward (the chamber's own
 * programs) is never refused and records nothing. These keys are read by
 * name, not passed in KEYS (standalone Redis).
 *
 * If the counter is missing while the stream is not (someone deleted the
 * counter, or restored the stream alone), numbering continues after the
 * stream's last generated id (XINFO STREAM, which survives trimming); a
 * counter found behind the stream is repaired the same way on the first XADD
 * it makes fail. Scripts are not rolled back on error, so XADD runs under
 * pcall: should it still fail, the dedupe key it claimed is deleted and the
 * counter saved before the script fails, leaving every earlier event of the
 * batch fully journaled (their retries are then answered DUPLICATE) and
 * nothing half-done. Sequences are formatted with %d:
 * Lua's default number format would switch to exponents. */
/* clang-format off */
const char mg_journal_append_script[] =
    "local window = ARGV[1]\n"
    "local n = (#ARGV - 1) / 4\n"
    MG_JOURNAL_STREAM_TOP_LUA
    "local OWN = 'mg:owner'\n"
    "local KINDS = {n = 'need', o = 'offer', s = 'structure', p = 'cooperation proposal'}\n"
    "local RECORDS = {n = 'mg:need:', o = 'mg:offer:', s = 'mg:structure:', p = 'mg:coop:'}\n"
    "-- Why the owner rule refuses the event, or nil; and the owner it read.\n"
    "local function owner_refuses(op, steward, src, field, sid)\n"
    "  if steward == '1' then return nil end\n"
    "  local k, id = string.sub(field, 1, 1), string.sub(field, 3)\n"
    "  local cur = redis.call('HGET', OWN, field)\n"
    "  if cur and cur ~= src then\n"
    "    return '" MG_NOT_OWNER "network ' .. src .. (op == 'A' and ' may not act for ' or ' may not change ') ..\n"
    "      KINDS[k] .. ' ' .. id .. ': it belongs to network ' .. cur\n"
    "  end\n"
    "  -- An item's owner may change it whoever owns its structure; an item\n"
    "  -- without one (new, or from before the rule) goes by its structure.\n"
    "  if cur then return nil, cur end\n"
    "  if sid ~= '' then\n"
    "    local so = redis.call('HGET', OWN, 's:' .. sid)\n"
    "    if so and so ~= src then\n"
    "      return '" MG_NOT_OWNER "network ' .. src .. ' may not act for structure ' .. sid ..\n"
    "        ': it belongs to network ' .. so\n"
    "    end\n"
    "  end\n"
    "  return nil\n"
    "end\n"
    "-- What a journaled event's rule records (`owned`: the owner its check read).\n"
    "local function owner_keep(op, steward, src, field, owned)\n"
    "  if steward == '1' then return end\n"
    "  if op == 'R' or op == 'J' then\n"
    "    local k, id = string.sub(field, 1, 1), string.sub(field, 3)\n"
    "    if not owned and redis.call('EXISTS', RECORDS[k] .. id) == 0 then\n"
    "      redis.call('HSET', OWN, field, src)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "local last = redis.call('GET', KEYS[2])\n"
    "local seq = tonumber(last or '0')\n"
    "if not last then seq = stream_top() end\n"
    "local first = seq\n"
    "local out = {}\n"
    "local ck = n + 2\n"
    "for k = 1, n do\n"
    "  local i = k + 2\n"
    "  local j = 4 * k - 2\n"
    "  local op = ARGV[j + 2]\n"
    "  if op ~= '' then ck = ck + 1 end\n"
    "  local oop, ost, osrc, ofield, osid = string.match(ARGV[j + 3], '^(%u) (%d) (%S+) (%S+) ?(%S*)$')\n"
    "  local s = string.format('%d', seq + 1)\n"
    "  local seen = redis.call('SET', KEYS[i], s, 'NX', 'GET', 'EX', window)\n"
    "  local refused, owned\n"
    "  if not seen and oop then refused, owned = owner_refuses(oop, ost, osrc, ofield, osid) end\n"
    "  if seen then\n"
    "    out[k] = -tonumber(seen)\n"
    "  elseif refused then\n"
    "    redis.call('DEL', KEYS[i])\n"
    "    out[k] = refused\n"
    "  else\n"
    "    local ok = redis.pcall('XADD', KEYS[1], s .. '-0', 't', ARGV[j], 'e', ARGV[j + 1])\n"
    "    if type(ok) == 'table' and ok.err then\n"
    "      local top = stream_top()\n"
    "      if top > seq then\n"
    "        seq = top\n"
    "        s = string.format('%d', seq + 1)\n"
    "        redis.call('SET', KEYS[i], s, 'EX', window)\n"
    "        ok = redis.pcall('XADD', KEYS[1], s .. '-0', 't', ARGV[j], 'e', ARGV[j + 1])\n"
    "      end\n"
    "    end\n"
    "    if type(ok) == 'table' and ok.err then\n"
    "      redis.call('DEL', KEYS[i])\n"
    "      if seq ~= first then redis.call('SET', KEYS[2], string.format('%d', seq)) end\n"
    "      return ok\n"
    "    end\n"
    "    if op == 'D' then\n"
    "      redis.call('DEL', KEYS[ck])\n"
    "      -- A member.left: the bytes its dead letters held with a contact too.\n"
    "      if oop == 'L' then redis.call('DEL', '" MG_DEADLETTER_HELD_PREFIX "' .. string.sub(ofield, 3)) end\n"
    "    elseif string.sub(op, 1, 1) == 'S' then\n"
    "      redis.call('SET', KEYS[ck], string.sub(op, 2))\n"
    "    end\n"
    "    if oop then owner_keep(oop, ost, osrc, ofield, owned) end\n"
    "    seq = seq + 1\n"
    "    out[k] = seq\n"
    "  end\n"
    "end\n"
    "if seq ~= first or not last then redis.call('SET', KEYS[2], string.format('%d', seq)) end\n"
    "return out\n";
/* clang-format on */

/* Held bytes kept per structure at most: beyond, a refused member event's
 * contact is not kept (a producer refused again and again cannot fill
 * Redis, nor make each call scan more). */
#define S_HELD_PER_STRUCTURE 100

/* A dead letter, ARGV: maxlen, reason, field, source, received_at_ms, raw,
 * raw_len, the sid whose mg:deadletter:held:<sid> keeps the bytes received
 * ("" for none), those bytes, the hash's time to live (s) and the most it
 * holds. First the structure's held bytes whose letters are gone (trimmed:
 * ids before the stream's first) go; the bytes are held (and the letter
 * names its sid) if fewer than the most remain. Keys are read by name
 * (standalone Redis). Returns the dead letter's id. */
static const char s_deadletter_script[] =
    "local stream = '" MG_DEADLETTER_KEY "'\n"
    "local f = {'reason', ARGV[2], 'field', ARGV[3], 'source', ARGV[4], 'received_at_ms', ARGV[5],\n"
    "           'raw', ARGV[6], 'raw_len', ARGV[7]}\n"
    "local held = nil\n"
    "if ARGV[8] ~= '' then\n"
    "  held = '" MG_DEADLETTER_HELD_PREFIX "' .. ARGV[8]\n"
    "  local function parse(s)\n"
    "    local ms, n = string.match(s, '^(%d+)-(%d+)$')\n"
    "    return tonumber(ms) or 0, tonumber(n) or 0\n"
    "  end\n"
    "  local first = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)[1]\n"
    "  local fms, fn = math.huge, 0\n"
    "  if first then fms, fn = parse(first[1]) end\n"
    "  local kept = 0\n"
    "  for _, old in ipairs(redis.call('HKEYS', held)) do\n"
    "    local ms, n = parse(old)\n"
    "    if ms < fms or (ms == fms and n < fn) then redis.call('HDEL', held, old) else kept = kept + 1 end\n"
    "  end\n"
    "  if kept < tonumber(ARGV[11]) then f[#f + 1] = 'held'; f[#f + 1] = ARGV[8] else held = nil end\n"
    "end\n"
    "local id = redis.call('XADD', stream, 'MAXLEN', '~', ARGV[1], '*', unpack(f))\n"
    "if held then\n"
    "  redis.call('HSET', held, id, ARGV[9])\n"
    "  redis.call('EXPIRE', held, ARGV[10])\n"
    "end\n"
    "return id\n";

struct mg_journal {
    mg_redis_t *redis;
    mg_script_t *append;     /* mg_journal_append_script */
    mg_script_t *deadletter; /* s_deadletter_script */
    char window[24];
    size_t window_len;
    char deadletter_maxlen[24];
    long long held_ttl_s; /* of mg:deadletter:held:<sid> */
    /* Appends refused in a row (Redis out of memory, read-only): the first
     * and then the powers of two are logged, not each batch, and the end of
     * the streak is. */
    unsigned long long failing;
};

/* One script call in flight, with the bytes of the keys and contact
 * operations its arguments point to, kept until the reply (script.h). */
typedef struct {
    mg_journal_t *journal;
    mg_journal_append_fn cb;
    void *arg;
    size_t count;
    char *keys; /* the dedupe and contact keys, one after the other (owned) */
    char *ops;  /* the contact operations "S<contact>" to set (owned) */
} s_append_t;

mg_journal_t *mg_journal_new(mg_redis_t *redis, long long dedupe_window_s, long long deadletter_maxlen,
                             long long held_ttl_s) {
    mg_journal_t *journal = mg_calloc(1, sizeof(*journal));
    journal->redis = redis;
    journal->held_ttl_s = held_ttl_s > 0 ? held_ttl_s : 1;
    journal->append = mg_script_new(redis, mg_journal_append_script);
    journal->deadletter = mg_script_new(redis, s_deadletter_script);
    snprintf(journal->window, sizeof(journal->window), "%lld", dedupe_window_s > 0 ? dedupe_window_s : 1);
    journal->window_len = strlen(journal->window);
    snprintf(journal->deadletter_maxlen, sizeof(journal->deadletter_maxlen), "%lld",
             deadletter_maxlen > 0 ? deadletter_maxlen : 1);
    return journal;
}

void mg_journal_destroy(mg_journal_t **journal_p) {
    if (!journal_p || !*journal_p) return;
    mg_script_destroy(&(*journal_p)->append);
    mg_script_destroy(&(*journal_p)->deadletter);
    free(*journal_p);
    *journal_p = NULL;
}

void mg_journal_redis_up(mg_journal_t *journal) {
    mg_script_redis_up(journal->append);
    mg_script_redis_up(journal->deadletter);
}

static void s_append_free(s_append_t *call) {
    if (!call) return;
    free(call->keys);
    free(call->ops);
    free(call);
}

static void s_on_append(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_append_t *call = privdata;
    mg_journal_result_t *results = NULL;
    (void)redis;
    if (!reply) goto done; /* connection lost: the caller answers "unavailable" */
    if (reply->type == REDIS_REPLY_ERROR) {
        unsigned long long n = ++call->journal->failing;
        if ((n & (n - 1)) == 0)
            mg_error("journal: append script failed (%llu batch(es) in a row): %s", n, reply->str);
        goto done;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != call->count) {
        mg_error("journal: append script returned an unexpected reply (type %d)", reply->type);
        goto done;
    }
    results = mg_calloc(call->count ? call->count : 1, sizeof(*results));
    for (size_t i = 0; i < call->count; i++) {
        const redisReply *r = reply->element[i];
        if (r->type == REDIS_REPLY_STRING) { /* refused by the owner rule: the reason */
            results[i].refused = r->str;
            continue;
        }
        if (r->type != REDIS_REPLY_INTEGER || r->integer == 0) {
            mg_error("journal: append script returned a non-sequence for item %zu", i);
            free(results);
            results = NULL;
            goto done;
        }
        results[i].duplicate = r->integer < 0;
        results[i].sequence = (uint64_t)(r->integer < 0 ? -r->integer : r->integer);
    }
    if (call->journal->failing) {
        mg_info("journal: appends succeed again after %llu failed batch(es)", call->journal->failing);
        call->journal->failing = 0;
    }
done:
    call->cb(call->journal, results, call->count, call->arg);
    free(results);
    s_append_free(call);
}

int mg_journal_append(mg_journal_t *journal, const mg_journal_item_t *items, size_t count,
                      mg_journal_append_fn cb, void *arg) {
    if (count == 0 || !mg_redis_is_up(journal->redis)) return -1;
    size_t contacts = 0, set_bytes = 0;
    for (size_t i = 0; i < count; i++) {
        if (!items[i].contact_sid) continue;
        contacts++;
        if (items[i].contact) set_bytes += 1 + items[i].contact_len;
    }
    s_append_t *call = mg_calloc(1, sizeof(*call));
    call->journal = journal;
    call->cb = cb;
    call->arg = arg;
    call->count = count;
    /* journal counter dedupe... contact... window (type envelope op)... */
    int numkeys = 2 + (int)count + (int)contacts;
    int argc = numkeys + 1 + 4 * (int)count;
    const char **argv = mg_malloc((size_t)argc * sizeof(*argv));
    size_t *argvlen = mg_malloc((size_t)argc * sizeof(*argvlen));
    /* One allocation for all the keys: no formatting per event. */
    enum {
        S_PREFIX_LEN = sizeof(MG_DEDUPE_KEY_PREFIX) - 1,
        S_CONTACT_LEN = sizeof(MG_CONTACT_KEY_PREFIX) - 1
    };
    call->keys =
        mg_malloc(count * (S_PREFIX_LEN + 2 * MG_ID_MAX + 1) + contacts * (S_CONTACT_LEN + MG_ID_MAX));
    call->ops = set_bytes ? mg_malloc(set_bytes) : NULL;

    int a = 0;
#define S_ARG(p, n) (argv[a] = (p), argvlen[a] = (n), a++)
    S_ARG(MG_JOURNAL_KEY, strlen(MG_JOURNAL_KEY));
    S_ARG(MG_JOURNAL_SEQ_KEY, strlen(MG_JOURNAL_SEQ_KEY));
    char *key = call->keys;
    for (size_t i = 0; i < count; i++) {
        /* mg:dedupe:<source>:<event_id>; both are at most MG_ID_MAX bytes.
         * A ':' of the source is written '|' (never in an id), so that the
         * source ends at the first ':': source "a" with id "b:c" and source
         * "a:b" with id "c" have keys of their own. */
        size_t source_len = strnlen(items[i].source, MG_ID_MAX);
        size_t id_len = strnlen(items[i].event_id, MG_ID_MAX);
        size_t key_len = S_PREFIX_LEN + source_len + 1 + id_len;
        memcpy(key, MG_DEDUPE_KEY_PREFIX, S_PREFIX_LEN);
        for (size_t k = 0; k < source_len; k++)
            key[S_PREFIX_LEN + k] = items[i].source[k] == ':' ? '|' : items[i].source[k];
        key[S_PREFIX_LEN + source_len] = ':';
        memcpy(key + S_PREFIX_LEN + source_len + 1, items[i].event_id, id_len);
        S_ARG(key, key_len);
        key += key_len;
    }
    for (size_t i = 0; i < count; i++) {
        /* mg:contact:<sid>, in the order of the events that have one. */
        if (!items[i].contact_sid) continue;
        size_t sid_len = strnlen(items[i].contact_sid, MG_ID_MAX);
        memcpy(key, MG_CONTACT_KEY_PREFIX, S_CONTACT_LEN);
        memcpy(key + S_CONTACT_LEN, items[i].contact_sid, sid_len);
        S_ARG(key, S_CONTACT_LEN + sid_len);
        key += S_CONTACT_LEN + sid_len;
    }
    S_ARG(journal->window, journal->window_len);
    char *op = call->ops;
    for (size_t i = 0; i < count; i++) {
        S_ARG(items[i].type, strlen(items[i].type));
        S_ARG((const char *)items[i].envelope, items[i].len);
        if (!items[i].contact_sid) {
            S_ARG("", 0);
        } else if (!items[i].contact) {
            S_ARG("D", 1);
        } else {
            op[0] = 'S';
            if (items[i].contact_len) memcpy(op + 1, items[i].contact, items[i].contact_len);
            S_ARG(op, 1 + items[i].contact_len);
            op += 1 + items[i].contact_len;
        }
        S_ARG(items[i].owner ? items[i].owner : "", items[i].owner ? strlen(items[i].owner) : 0);
    }
#undef S_ARG
    int rc = mg_script_call_argv(journal->append, numkeys, argc, argv, argvlen, s_on_append, call);
    free(argv); /* copied by the call; the bytes stay */
    free(argvlen);
    if (rc != 0) s_append_free(call);
    return rc;
}

void mg_journal_owner_op(const mg_envelope_t *env, const char *source, int steward,
                         char out[MG_JOURNAL_OWNER_MAX]) {
    char op = 0, kind = 'n';
    const char *id = NULL, *sid = "";
    switch (env->payload_case) {
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_REPORTED:
        op = 'R', id = env->need_reported->need->need_id, sid = env->need_reported->need->structure_id;
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_UPDATED:
        op = 'U', id = env->need_updated->need->need_id, sid = env->need_updated->need->structure_id;
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_CLOSED:
        op = 'C', id = env->need_closed->need_id, sid = env->need_closed->structure_id;
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_OFFER_PUBLISHED:
        op = 'R', kind = 'o', id = env->offer_published->offer->offer_id;
        sid = env->offer_published->offer->provider_id;
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_OFFER_UPDATED:
        op = 'U', kind = 'o', id = env->offer_updated->offer->offer_id;
        sid = env->offer_updated->offer->provider_id;
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_OFFER_WITHDRAWN:
        op = 'C', kind = 'o', id = env->offer_withdrawn->offer_id, sid = env->offer_withdrawn->provider_id;
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_MEMBER_JOINED:
        op = 'J', kind = 's', id = env->member_joined->structure->structure_id;
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_MEMBER_UPDATED:
        op = 'U', kind = 's', id = env->member_updated->structure->structure_id;
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_MEMBER_LEFT:
        op = 'L', kind = 's', id = env->member_left->structure_id;
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_COOPERATION_PROPOSED:
        op = 'R', kind = 'p', id = env->cooperation_proposed->proposal_id;
        sid = env->cooperation_proposed->from_structure_id;
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_COOPERATION_ANSWERED:
        op = 'A', kind = 's', id = env->cooperation_answered->structure_id;
        break;
    default:
        break;
    }
    /* Validated events: ids are valid ids (no blank), the source too. */
    if (!op || !id || !*id || !source || !*source) {
        out[0] = '\0';
        return;
    }
    snprintf(out, MG_JOURNAL_OWNER_MAX, "%c %d %s %c:%s%s%s", op, steward ? 1 : 0, source, kind, id,
             sid && *sid ? " " : "", sid ? sid : "");
}

/* ---- retention ---------------------------------------------------------------- */

/* The floor a consumer holds is its checkpoint, or just below the lowest
 * sequence it has parked for retry (mg:retry:<name>), whichever is lower: a
 * parked event must still be in the journal when its retry comes.
 * Sequences are formatted with %d (Lua's default would switch to exponents).
 * Marks: ZADD NX keeps, for each sequence, the first time the journal was
 * seen at it, so an idle journal still ages; only the newest mark older than
 * the cutoff is needed, the ones before it are deleted. */
const char mg_journal_retention_script[] =
    "local now = tonumber(ARGV[1])\n"
    "local max_age = tonumber(ARGV[2])\n"
    "local max_events = tonumber(ARGV[3])\n"
    "local force = ARGV[4] == '1'\n"
    "local last = tonumber(redis.call('GET', KEYS[2]) or '0') or 0\n"
    "local want = 0\n"
    "if max_age > 0 then\n"
    "  redis.call('ZADD', KEYS[3], 'NX', ARGV[1], string.format('%d', last))\n"
    "  local m = redis.call('ZREVRANGEBYSCORE', KEYS[3], string.format('%d', now - max_age), '-inf',\n"
    "                       'WITHSCORES', 'LIMIT', 0, 1)\n"
    "  if #m > 0 then\n"
    "    want = tonumber(m[1]) + 1\n"
    "    redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. m[2])\n"
    "  end\n"
    "else\n"
    "  redis.call('DEL', KEYS[3])\n"
    "end\n"
    "if max_events > 0 and last > max_events and last - max_events + 1 > want then\n"
    "  want = last - max_events + 1\n"
    "end\n"
    "local floor = -1\n"
    "local slowest = ''\n"
    "for _, name in ipairs(redis.call('SMEMBERS', KEYS[4])) do\n"
    "  local s = tonumber(redis.call('HGET', ARGV[5] .. name, 'seq') or '0') or 0\n"
    "  for _, parked in ipairs(redis.call('ZRANGE', ARGV[6] .. name, 0, -1)) do\n"
    "    local p = (tonumber(parked) or 1) - 1\n"
    "    if p < s then s = p end\n"
    "  end\n"
    "  if floor < 0 or s < floor then floor = s; slowest = name end\n"
    "end\n"
    "local apply = want\n"
    "if not force and floor >= 0 and floor + 1 < apply then apply = floor + 1 end\n"
    "local trimmed = 0\n"
    "if apply > 1 then\n"
    "  trimmed = redis.call('XTRIM', KEYS[1], 'MINID', string.format('%d-0', apply))\n"
    "else\n"
    "  apply = 0\n"
    "end\n"
    "return {trimmed, want, apply, floor, slowest, last}\n";

typedef struct {
    mg_journal_t *journal;
    mg_journal_trim_fn cb;
    void *arg;
} s_trim_t;

static void s_on_trim(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_trim_t *call = privdata;
    (void)redis;
    mg_journal_trim_result_t result;
    const mg_journal_trim_result_t *out = NULL;
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 6) {
        redisReply **e = reply->element;
        int ok = 1;
        for (size_t i = 0; i < 6; i++)
            if (e[i]->type != (i == 4 ? REDIS_REPLY_STRING : REDIS_REPLY_INTEGER)) ok = 0;
        if (ok) {
            memset(&result, 0, sizeof(result));
            result.trimmed = (uint64_t)e[0]->integer;
            result.wanted_min = (uint64_t)e[1]->integer;
            result.applied_min = (uint64_t)e[2]->integer;
            result.has_consumers = e[3]->integer >= 0;
            result.slowest_seq = e[3]->integer >= 0 ? (uint64_t)e[3]->integer : 0;
            snprintf(result.slowest, sizeof(result.slowest), "%s", e[4]->str);
            result.last_seq = (uint64_t)e[5]->integer;
            out = &result;
        } else {
            mg_error("journal: retention script returned an unexpected reply");
        }
    } else if (reply) {
        mg_error("journal: retention script failed: %s",
                 reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
    }
    if (call->cb) call->cb(call->journal, out, call->arg);
    free(call);
}

int mg_journal_trim(mg_journal_t *journal, const mg_journal_retention_t *policy, mg_journal_trim_fn cb,
                    void *arg) {
    if (!mg_redis_is_up(journal->redis)) return -1;
    char now[24], age[24], events[24];
    snprintf(now, sizeof(now), "%" PRId64, policy->now_ms);
    snprintf(age, sizeof(age), "%" PRIu64, policy->max_age_ms);
    snprintf(events, sizeof(events), "%" PRIu64, policy->max_events);
    /* Once a minute: EVAL (Redis caches the script by its sha anyway). */
    const char *argv[] = {"EVAL",           mg_journal_retention_script, "4",
                          MG_JOURNAL_KEY,   MG_JOURNAL_SEQ_KEY,          MG_JOURNAL_MARKS_KEY,
                          MG_CONSUMERS_KEY, now,                         age,
                          events,           policy->force ? "1" : "0",   MG_CONSUMER_KEY_PREFIX,
                          MG_RETRY_KEY_PREFIX};
    enum { S_ARGC = sizeof(argv) / sizeof(argv[0]) };
    size_t argvlen[S_ARGC];
    for (size_t i = 0; i < S_ARGC; i++)
        argvlen[i] = strlen(argv[i]);
    s_trim_t *call = mg_malloc(sizeof(*call));
    *call = (s_trim_t){journal, cb, arg};
    if (mg_redis_command_argv(journal->redis, s_on_trim, call, S_ARGC, argv, argvlen) != 0) {
        free(call);
        return -1;
    }
    return 0;
}

/* ---- dead letters ---------------------------------------------------------------- */

typedef struct {
    mg_journal_t *journal;
    mg_journal_done_fn cb;
    void *arg;
} s_deadletter_t;

static void s_on_deadletter(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_deadletter_t *call = privdata;
    (void)redis;
    int stored = reply && reply->type == REDIS_REPLY_STRING;
    if (reply && reply->type == REDIS_REPLY_ERROR) mg_error("journal: dead letter refused: %s", reply->str);
    if (call->cb) call->cb(call->journal, stored, call->arg);
    free(call);
}

int mg_journal_deadletter(mg_journal_t *journal, const mg_deadletter_t *dl, mg_journal_done_fn cb,
                          void *arg) {
    if (!mg_redis_is_up(journal->redis)) return -1;
    mg_args_t a;
    mg_args_init(&a);
    mg_args_str(&a, journal->deadletter_maxlen);
    mg_args_str(&a, dl->reason);
    mg_args_str(&a, dl->field);
    mg_args_str(&a, dl->source);
    mg_args_int(&a, dl->received_at_ms);
    mg_args_bytes(&a, dl->raw, dl->raw ? dl->raw_len : 0);
    mg_args_int(&a, (long long)dl->original_len);
    mg_args_str(&a, dl->held_sid);
    mg_args_bytes(&a, dl->held, dl->held_sid ? dl->held_len : 0);
    mg_args_int(&a, journal->held_ttl_s);
    mg_args_int(&a, S_HELD_PER_STRUCTURE);
    s_deadletter_t *call = mg_malloc(sizeof(*call));
    *call = (s_deadletter_t){journal, cb, arg};
    if (mg_script_call(journal->deadletter, &a, s_on_deadletter, call) != 0) {
        free(call);
        return -1;
    }
    return 0;
}

/* ---- synchronous readers ---------------------------------------------------- */

/* Entries per XRANGE call: big enough to amortize round trips, small enough
 * to keep one reply in memory comfortably. */
#define S_PAGE 1000

long long mg_journal_read(redisContext *c, uint64_t from_seq, uint64_t max_count, mg_journal_entry_fn cb,
                          void *arg, char *err, size_t errlen) {
    long long delivered = 0;
    uint64_t next = from_seq ? from_seq : 1;
    uint8_t *buf = NULL;
    size_t bufcap = 0;
    for (;;) {
        uint64_t want = S_PAGE;
        if (max_count && max_count - (uint64_t)delivered < want) want = max_count - (uint64_t)delivered;
        if (want == 0) break;
        redisReply *reply =
            redisCommand(c, "XRANGE %s %" PRIu64 "-0 + COUNT %" PRIu64, MG_JOURNAL_KEY, next, want);
        if (!reply) {
            free(buf);
            return mg_fail(err, errlen, "redis: %s", c->errstr);
        }
        if (reply->type != REDIS_REPLY_ARRAY) {
            mg_fail(err, errlen, "redis: XRANGE %s: %s", MG_JOURNAL_KEY,
                    reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
            goto err;
        }
        int stop = 0;
        for (size_t i = 0; i < reply->elements && !stop; i++) {
            const redisReply *entry = reply->element[i];
            mg_journal_entry_t e;
            if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 ||
                entry->element[0]->type != REDIS_REPLY_STRING ||
                mg_redis_u64(entry->element[0]->str, &e.sequence) != 0) {
                mg_fail(err, errlen, "%s: malformed entry", MG_JOURNAL_KEY);
                goto err;
            }
            const redisReply *type = mg_redis_field(entry->element[1], MG_JOURNAL_FIELD_TYPE);
            const redisReply *env = mg_redis_field(entry->element[1], MG_JOURNAL_FIELD_ENVELOPE);
            if (!type || !env) {
                mg_fail(err, errlen, "%s: entry %s lacks its type or envelope", MG_JOURNAL_KEY,
                        entry->element[0]->str);
                goto err;
            }
            size_t need = (size_t)env->len + 11;
            if (need > bufcap) {
                free(buf);
                buf = mg_malloc(need);
                bufcap = need;
            }
            e.type = type->str;
            e.envelope = buf;
            e.len = mg_envelope_append_sequence((const uint8_t *)env->str, (size_t)env->len, e.sequence, buf);
            delivered++;
            next = e.sequence + 1;
            if (cb && cb(&e, arg) != 0) stop = 1;
        }
        size_t got = reply->elements;
        freeReplyObject(reply);
        if (stop || got < want) break;
        continue;
    err:
        freeReplyObject(reply);
        free(buf);
        return -1;
    }
    free(buf);
    return delivered;
}

/* clang-format off */
const char mg_journal_head_script[] =
    MG_JOURNAL_STREAM_TOP_LUA
    "local last = redis.call('GET', KEYS[2])\n"
    "if not last then return stream_top() end\n"
    "return tonumber(last) or redis.error_reply(KEYS[2] .. ' is not a sequence')\n";
/* clang-format on */

int mg_journal_last_sequence(redisContext *c, uint64_t *seq, char *err, size_t errlen) {
    redisReply *reply =
        redisCommand(c, "EVAL %s 2 %s %s", mg_journal_head_script, MG_JOURNAL_KEY, MG_JOURNAL_SEQ_KEY);
    if (!reply) return (int)mg_fail(err, errlen, "redis: %s", c->errstr);
    int rc = 0;
    if (reply->type == REDIS_REPLY_INTEGER && reply->integer >= 0) {
        *seq = (uint64_t)reply->integer;
    } else {
        rc = (int)mg_fail(err, errlen, "redis: the journal's last sequence: %s",
                          reply->type == REDIS_REPLY_ERROR ? reply->str : "not a sequence");
    }
    freeReplyObject(reply);
    return rc;
}

/* Dead letters are read this many at a time: each may hold up to
 * deadletter_max_bytes of raw bytes, and the whole stream in one reply would
 * weigh on Redis' output buffer and on the reader. */
#define S_DEADLETTER_PAGE 32

/* XRANGE or XREVRANGE of the dead letters from `from` to `to`, one page. */
static redisReply *s_deadletter_page(redisContext *c, const char *range, const char *from, const char *to,
                                     char *err, size_t errlen) {
    redisReply *reply =
        redisCommand(c, "%s %s %s %s COUNT %d", range, MG_DEADLETTER_KEY, from, to, S_DEADLETTER_PAGE);
    if (!reply) {
        mg_fail(err, errlen, "redis: %s", c->errstr);
        return NULL;
    }
    if (reply->type != REDIS_REPLY_ARRAY) {
        mg_fail(err, errlen, "redis: %s %s: %s", range, MG_DEADLETTER_KEY,
                reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
        freeReplyObject(reply);
        return NULL;
    }
    return reply;
}

/* The id of the last entry of page `reply` (which has one), into `id` as an
 * exclusive bound "(<id>" for the next page. */
static int s_deadletter_next_bound(const redisReply *reply, char *id, size_t idlen) {
    const redisReply *last = reply->element[reply->elements - 1];
    if (last->type != REDIS_REPLY_ARRAY || last->elements != 2 ||
        last->element[0]->type != REDIS_REPLY_STRING)
        return -1;
    snprintf(id, idlen, "(%s", last->element[0]->str);
    return 0;
}

int mg_journal_deadletter_entry(redisContext *c, const char *id, const redisReply *fields,
                                mg_deadletter_entry_t *e, redisReply **held, char *err, size_t errlen) {
    const redisReply *reason = mg_redis_field(fields, "reason"), *field = mg_redis_field(fields, "field"),
                     *source = mg_redis_field(fields, "source"),
                     *received = mg_redis_field(fields, "received_at_ms"),
                     *raw = mg_redis_field(fields, "raw"), *raw_len = mg_redis_field(fields, "raw_len"),
                     *sid = mg_redis_field(fields, "held"), *consumer = mg_redis_field(fields, "consumer"),
                     *seq = mg_redis_field(fields, "seq");
    uint64_t received_ms = 0, original = 0;
    if (received) mg_redis_u64(received->str, &received_ms);
    *e = (mg_deadletter_entry_t){
        .id = id,
        .reason = reason ? reason->str : "",
        .field = field ? field->str : "",
        .source = source ? source->str : "",
        .received_at_ms = (int64_t)received_ms,
        .stored = raw ? (const uint8_t *)raw->str : (const uint8_t *)"",
        .stored_len = raw ? (size_t)raw->len : 0,
        .held = sid ? sid->str : "",
        .consumer = consumer ? consumer->str : "",
        .seq = seq ? seq->str : "",
    };
    e->raw = e->stored;
    e->raw_len = e->stored_len;
    e->original_len = raw_len && mg_redis_u64(raw_len->str, &original) == 0 ? (size_t)original : e->raw_len;
    *held = NULL;
    if (!*e->held) return 0;
    redisReply *r = redisCommand(c, "HGET %s%s %s", MG_DEADLETTER_HELD_PREFIX, e->held, id);
    if (!r || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL)) {
        mg_fail(err, errlen, "redis: HGET %s%s: %s", MG_DEADLETTER_HELD_PREFIX, e->held,
                !r                             ? c->errstr
                : r->type == REDIS_REPLY_ERROR ? r->str
                                               : "unexpected reply");
        if (r) freeReplyObject(r);
        return -1;
    }
    if (r->type == REDIS_REPLY_STRING) {
        e->raw = (const uint8_t *)r->str;
        e->raw_len = (size_t)r->len;
        *held = r;
    } else {
        e->held_erased = 1;
        freeReplyObject(r);
    }
    return 0;
}

long long mg_journal_deadletters(redisContext *c, size_t max_count, mg_deadletter_entry_fn cb, void *arg,
                                 char *err, size_t errlen) {
    char from[64] = "-", bound[64];
    redisReply *reply;
    if (max_count) { /* where the last max_count begin: back from the end, keeping only that */
        size_t seen = 0;
        int more = 1;
        snprintf(bound, sizeof(bound), "+");
        while (more) {
            if (!(reply = s_deadletter_page(c, "XREVRANGE", bound, "-", err, errlen))) return -1;
            size_t n = reply->elements;
            if (seen + n >= max_count) {
                const redisReply *first = reply->element[max_count - seen - 1];
                if (first->type == REDIS_REPLY_ARRAY && first->elements == 2 &&
                    first->element[0]->type == REDIS_REPLY_STRING)
                    snprintf(from, sizeof(from), "%s", first->element[0]->str);
            }
            more = n == S_DEADLETTER_PAGE && seen + n < max_count &&
                   s_deadletter_next_bound(reply, bound, sizeof(bound)) == 0;
            seen += n;
            freeReplyObject(reply);
        }
    }
    long long delivered = 0;
    for (;;) {
        if (!(reply = s_deadletter_page(c, "XRANGE", from, "+", err, errlen))) return -1;
        int stop = 0;
        for (size_t i = 0; i < reply->elements && !stop; i++) {
            const redisReply *entry = reply->element[i];
            if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 ||
                entry->element[0]->type != REDIS_REPLY_STRING)
                continue;
            mg_deadletter_entry_t e;
            redisReply *held;
            if (mg_journal_deadletter_entry(c, entry->element[0]->str, entry->element[1], &e, &held, err,
                                            errlen) != 0) {
                freeReplyObject(reply);
                return -1;
            }
            delivered++;
            stop = (cb && cb(&e, arg) != 0) || (max_count && (size_t)delivered == max_count);
            if (held) freeReplyObject(held);
        }
        int more = !stop && reply->elements == S_DEADLETTER_PAGE &&
                   s_deadletter_next_bound(reply, from, sizeof(from)) == 0;
        freeReplyObject(reply);
        if (!more) return delivered;
    }
}
