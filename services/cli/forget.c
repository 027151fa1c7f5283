/* forget.c -- `maillage forget STRUCTURE_ID [--yes]`: erase a structure's
 * personal data (the contact of its member records: name, e-mail, phone,
 * role) from everywhere Maillage keeps it, for the right to erasure.
 *
 * Where a contact can be (docs/redis-keys.md):
 *
 *   mg:contact:<sid>  the one place it is kept on purpose: the broker takes
 *                     the contact out of member.joined / member.updated and
 *                     its append script keeps it there;
 *   mg:deadletter     the broker's dead letters keep the raw bytes it
 *                     rejected, a contact included; a consumer's dead letter
 *                     copies a journal entry (without contact since the
 *                     broker strips it, with one in a legacy journal);
 *   mg:journal        only in entries written before the broker stripped
 *                     contacts (a legacy journal).
 *
 * Nothing else holds it: the matcher keeps structures without their
 * contact, the notifier only names structures (integration.personal_data
 * searches every key of a full run for the contact's bytes).
 *
 * Dead letters go when they decode to a member event of the structure (its
 * id, or the same id but for case and blanks, which is why it was refused)
 * that carries a contact, when their raw bytes contain one of its contact's
 * values (name, e-mail, phone, from every copy found), or when they do not
 * decode but hold the structure's id: as protobuf (a member event cut at
 * max_message_bytes may hold an older contact known nowhere else), or as a
 * JSON string beside a "contact" (JSON sent to the ZeroMQ ingest): after a
 * member.left, no value is known to search for. They are not XDEL'd (XDEL
 * leaves an entry's bytes in its stream node while the node lives: DUMP, the
 * AOF's rewrite and the backups would keep them): the dead letters are
 * copied without them, with the same ids, into MG_DEADLETTER_REWRITE_KEY,
 * and the copy renamed over mg:deadletter.
 *
 * Legacy journal entries cannot be edited in place (a stream entry is
 * immutable, and deleting it would leave a hole that consumers catching up
 * take for a trimmed event), so the journal is copied the same way into
 * MG_JOURNAL_REWRITE_KEY, the structure's entries re-encoded without their
 * contact. Until the rename nothing is changed: a run that fails (another
 * rewrite under way, Redis out of memory for the copy) can be run again. Either copy ends with one script
 * that copies what was appended meanwhile, drops what the retention trimmed meanwhile and renames the copy
 * over the stream: readers see the old stream or the new one, identical but
 * for the contacts.
 *
 * Works on Redis directly (a blocking connection), whether the daemons run
 * or not. Messages are in French (operators and staff). */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"
#include "maillage/envelope.h"
#include "maillage/journal.h"
#include "maillage/mem.h"
#include "maillage/redis.h"

#define S_CMD "forget"

/* Shortest contact value searched for in raw bytes: shorter ones (a
 * two-letter name) would match unrelated dead letters. */
#define S_MIN_VALUE 5

/* Entries per XRANGE page (and XADD pipeline) of the journal copy. */
#define S_PAGE 500

/* The copy and the lock expire this long after the last page copied, if
 * `forget` dies before the end. */
#define S_REWRITE_TTL_S 3600

static void s_usage(FILE *out) {
    fprintf(out,
            "Usage : maillage forget [OPTIONS] STRUCTURE_ID\n"
            "\n"
            "Efface les données personnelles d'une structure (le contact de sa fiche : nom,\n"
            "e-mail, téléphone, fonction) partout où Maillage les garde : mg:contact:<id>,\n"
            "les lettres mortes qui les contiennent, et les entrées du journal écrites avant\n"
            "que le service de réception (broker) ne retire les contacts (le journal est alors\n"
            "réécrit, à l'identique sauf ces contacts). Fonctionne que les démons tournent ou\n"
            "non. Une structure déjà effacée n'a plus rien à effacer (succès) ; un identifiant\n"
            "que rien ne nomme est une erreur (code 1).\n"
            "\n"
            "  --yes        ne pas demander de confirmation\n"
            "  --dry-run    dire ce qui serait effacé, sans rien effacer\n"
            "\n"
            "Options :\n"
            "%s",
            cli_common_help);
}

/* What was found of the structure's personal data. */
typedef struct {
    const char *sid;
    int contact_key; /* mg:contact:<sid> exists */
    int known;       /* a member event of it in the journal, or its directory record (matcher, notifier) */
    char **values;   /* contact values to search for in raw bytes (owned) */
    size_t nvalues;
    uint64_t *legacy; /* journal sequences whose entry holds its contact */
    size_t nlegacy;
    char **deadletters; /* ids of the dead letters holding it (owned) */
    char **held;        /* and the structure each one's bytes are held under, "" if none (owned) */
    size_t ndeadletters;
    int held_key; /* mg:deadletter:held:<sid> exists */
} s_found_t;

static void s_found_clear(s_found_t *f) {
    for (size_t i = 0; i < f->nvalues; i++)
        free(f->values[i]);
    for (size_t i = 0; i < f->ndeadletters; i++) {
        free(f->deadletters[i]);
        free(f->held[i]);
    }
    free(f->values);
    free(f->legacy);
    free(f->deadletters);
    free(f->held);
    const char *sid = f->sid;
    memset(f, 0, sizeof *f);
    f->sid = sid;
}

static void s_add_value(s_found_t *f, const char *v) {
    if (!v || strlen(v) < S_MIN_VALUE) return;
    for (size_t i = 0; i < f->nvalues; i++)
        if (strcmp(f->values[i], v) == 0) return;
    f->values = mg_realloc(f->values, (f->nvalues + 1) * sizeof *f->values);
    f->values[f->nvalues++] = mg_strdup(v);
}

static void s_add_contact_values(s_found_t *f, const Maillage__V1__Contact *c) {
    s_add_value(f, c->name);
    s_add_value(f, c->email);
    s_add_value(f, c->phone);
}

static int s_is_blank(int c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* 1 if `id` is `sid`, or with `near`, an invalid id (refused so by the
 * broker) that is `sid` but for ASCII case and the blanks around it. */
static int s_same_id(const char *id, const char *sid, int near) {
    if (strcmp(id, sid) == 0) return 1;
    if (!near || mg_id_is_valid(id)) return 0;
    while (s_is_blank(*id))
        id++;
    size_t n = strlen(sid);
    if (strncasecmp(id, sid, n) != 0) return 0;
    for (id += n; *id; id++)
        if (!s_is_blank(*id)) return 0;
    return 1;
}

/* The structure record of a member.joined / member.updated of `sid` (see
 * s_same_id() for `near`), or NULL. Borrowed from `env`. */
static Maillage__V1__Structure *s_member_of(const mg_envelope_t *env, const char *sid, int near) {
    Maillage__V1__Structure *st = NULL;
    if (env->payload_case == MAILLAGE__V1__ENVELOPE__PAYLOAD_MEMBER_JOINED && env->member_joined)
        st = env->member_joined->structure;
    else if (env->payload_case == MAILLAGE__V1__ENVELOPE__PAYLOAD_MEMBER_UPDATED && env->member_updated)
        st = env->member_updated->structure;
    return st && st->structure_id && s_same_id(st->structure_id, sid, near) ? st : NULL;
}

/* 1 if `st` carries a contact (an empty Contact message is none). */
static int s_has_contact(const Maillage__V1__Structure *st) {
    return st && st->contact && maillage__v1__contact__get_packed_size(st->contact) > 0;
}

/* The serialized envelope `data` re-encoded without the contact of `sid`'s
 * record, into *out (caller owns it); 0, or -1 if the bytes are not a
 * member event of `sid` with a contact (then nothing is allocated). */
static int s_redact(const uint8_t *data, size_t len, const char *sid, uint8_t **out, size_t *outlen) {
    mg_envelope_t *env = mg_envelope_unpack(data, len);
    if (!env) return -1;
    Maillage__V1__Structure *st = s_member_of(env, sid, 0);
    if (!s_has_contact(st)) {
        mg_envelope_free(env);
        return -1;
    }
    Maillage__V1__Contact *contact = st->contact;
    st->contact = NULL;
    *outlen = maillage__v1__envelope__get_packed_size(env);
    *out = mg_malloc(*outlen ? *outlen : 1);
    maillage__v1__envelope__pack(env, *out);
    st->contact = contact; /* freed with the envelope */
    mg_envelope_free(env);
    return 0;
}

/* ---- looking ---------------------------------------------------------------- */

static int s_on_journal_entry(const mg_journal_entry_t *e, void *arg) {
    s_found_t *f = arg;
    if (strcmp(e->type, "member.joined") != 0 && strcmp(e->type, "member.updated") != 0) return 0;
    mg_envelope_t *env = mg_envelope_unpack(e->envelope, e->len);
    if (!env) return 0;
    const Maillage__V1__Structure *st = s_member_of(env, f->sid, 0);
    if (st) f->known = 1;
    if (s_has_contact(st)) {
        f->legacy = mg_realloc(f->legacy, (f->nlegacy + 1) * sizeof *f->legacy);
        f->legacy[f->nlegacy++] = e->sequence;
        s_add_contact_values(f, st->contact);
    }
    mg_envelope_free(env);
    return 0;
}

static void s_add_deadletter(s_found_t *f, const mg_deadletter_entry_t *dl) {
    for (size_t i = 0; i < f->ndeadletters; i++)
        if (strcmp(f->deadletters[i], dl->id) == 0) return;
    f->deadletters = mg_realloc(f->deadletters, (f->ndeadletters + 1) * sizeof *f->deadletters);
    f->held = mg_realloc(f->held, (f->ndeadletters + 1) * sizeof *f->held);
    f->held[f->ndeadletters] = mg_strdup(dl->held);
    f->deadletters[f->ndeadletters++] = mg_strdup(dl->id);
}

/* First pass: dead letters that decode to a member event of the structure
 * with a contact (their values join the search). */
static int s_on_deadletter_decoded(const mg_deadletter_entry_t *dl, void *arg) {
    s_found_t *f = arg;
    mg_envelope_t *env = mg_envelope_unpack(dl->raw, dl->raw_len);
    if (!env) return 0;
    const Maillage__V1__Structure *st = s_member_of(env, f->sid, 1);
    if (s_has_contact(st)) {
        s_add_deadletter(f, dl);
        s_add_contact_values(f, st->contact);
    }
    mg_envelope_free(env);
    return 0;
}

/* 1 if `needle` occurs in the `len` bytes at `p` (memmem is a GNU extension). */
static int s_contains(const uint8_t *p, size_t len, const char *needle) {
    size_t n = strlen(needle);
    for (size_t i = 0; n && i + n <= len; i++)
        if (p[i] == (uint8_t)needle[0] && memcmp(p + i, needle, n) == 0) return 1;
    return 0;
}

/* 1 if the bytes hold `sid` as the first field of a message, as the
 * structure_id of a Structure (or a MemberLeft) is encoded: tag 0x0a (field
 * 1, length-delimited), its length, its bytes. */
static int s_mentions_structure(const uint8_t *p, size_t len, const char *sid) {
    uint8_t marker[2 + MG_ID_MAX];
    size_t n = strlen(sid);
    marker[0] = 0x0a;
    marker[1] = (uint8_t)n; /* ids are at most 64 bytes: a one-byte varint */
    memcpy(marker + 2, sid, n);
    for (size_t i = 0; i + n + 2 <= len; i++)
        if (p[i] == 0x0a && memcmp(p + i, marker, n + 2) == 0) return 1;
    return 0;
}

/* 1 if the bytes hold `sid` as a JSON string ("sid", blanks inside the
 * quotes allowed, any case): how a member event sent as JSON names it. */
static int s_mentions_structure_json(const uint8_t *p, size_t len, const char *sid) {
    size_t n = strlen(sid);
    for (size_t i = 0; i + n <= len; i++) {
        if (strncasecmp((const char *)p + i, sid, n) != 0) continue;
        size_t b = i, e = i + n;
        while (b > 0 && s_is_blank(p[b - 1]))
            b--;
        while (e < len && s_is_blank(p[e]))
            e++;
        if (b > 0 && p[b - 1] == '"' && e < len && p[e] == '"') return 1;
    }
    return 0;
}

/* Second pass: any dead letter whose bytes contain one of the values, and
 * any that does not decode (cut at max_message_bytes, or not protobuf) but
 * holds the structure's id: a member event of it, cut, may hold a contact
 * whose values are known nowhere else (an older one, since replaced, or any
 * once a member.left erased mg:contact). */
static int s_on_deadletter_bytes(const mg_deadletter_entry_t *dl, void *arg) {
    s_found_t *f = arg;
    for (size_t i = 0; i < f->nvalues; i++) {
        if (s_contains(dl->raw, dl->raw_len, f->values[i])) {
            s_add_deadletter(f, dl);
            return 0;
        }
    }
    if (s_contains(dl->raw, dl->raw_len, "\"contact\"") &&
        s_mentions_structure_json(dl->raw, dl->raw_len, f->sid)) {
        s_add_deadletter(f, dl);
        return 0;
    }
    if (s_mentions_structure(dl->raw, dl->raw_len, f->sid)) {
        mg_envelope_t *env = mg_envelope_unpack(dl->raw, dl->raw_len);
        if (!env) s_add_deadletter(f, dl);
        mg_envelope_free(env);
    }
    return 0;
}

/* An integer reply's value, or -1 after a message. */
static long long s_integer(redisContext *c, redisReply *r, const char *what) {
    long long v = -1;
    if (r && r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    else
        cli_error(S_CMD, "redis : %s : %s", what, r && r->type == REDIS_REPLY_ERROR ? r->str : c->errstr);
    if (r) freeReplyObject(r);
    return v;
}

/* Find every copy of the structure's contact. 0, or -1 after a message. */
static int s_look(redisContext *c, s_found_t *f) {
    char err[512];
    redisReply *r = redisCommand(c, "GET %s%s", MG_CONTACT_KEY_PREFIX, f->sid);
    if (!r || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL)) {
        cli_error(S_CMD, "redis : GET %s%s : %s", MG_CONTACT_KEY_PREFIX, f->sid,
                  r && r->type == REDIS_REPLY_ERROR ? r->str : c->errstr);
        if (r) freeReplyObject(r);
        return -1;
    }
    if (r->type == REDIS_REPLY_STRING) {
        f->contact_key = 1;
        Maillage__V1__Contact *contact =
            maillage__v1__contact__unpack(NULL, (size_t)r->len, (const uint8_t *)r->str);
        if (contact) {
            s_add_contact_values(f, contact);
            maillage__v1__contact__free_unpacked(contact, NULL);
        }
    }
    freeReplyObject(r);
    r = redisCommand(c, "EXISTS mg:structure:%s mg:notifier:structure:%s", f->sid, f->sid);
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        cli_error(S_CMD, "redis : EXISTS mg:structure:%s : %s", f->sid,
                  r && r->type == REDIS_REPLY_ERROR ? r->str : c->errstr);
        if (r) freeReplyObject(r);
        return -1;
    }
    f->known = f->contact_key || r->integer > 0;
    freeReplyObject(r);
    long long held = s_integer(c, redisCommand(c, "EXISTS %s%s", MG_DEADLETTER_HELD_PREFIX, f->sid), "EXISTS");
    if (held < 0) return -1;
    f->held_key = held > 0;
    if (mg_journal_read(c, 1, 0, s_on_journal_entry, f, err, sizeof err) < 0 ||
        mg_journal_deadletters(c, 0, s_on_deadletter_decoded, f, err, sizeof err) < 0 ||
        mg_journal_deadletters(c, 0, s_on_deadletter_bytes, f, err, sizeof err) < 0) {
        cli_error(S_CMD, "%s", err);
        return -1;
    }
    return 0;
}

static void s_print_found(const s_found_t *f) {
    printf("Données personnelles de la structure « %s » trouvées :\n", f->sid);
    if (f->contact_key) printf("  - son contact (%s%s)\n", MG_CONTACT_KEY_PREFIX, f->sid);
    if (f->ndeadletters)
        printf("  - %zu %s (%s) qui %s ce contact\n", f->ndeadletters,
               f->ndeadletters > 1 ? "lettres mortes" : "lettre morte", MG_DEADLETTER_KEY,
               f->ndeadletters > 1 ? "contiennent" : "contient");
    if (f->held_key)
        printf("  - les octets reçus de ses événements refusés (%s%s)\n", MG_DEADLETTER_HELD_PREFIX, f->sid);
    if (f->nlegacy) {
        const char *s = f->nlegacy > 1 ? "s" : "";
        printf("  - %zu entrée%s du journal (%s) écrite%s avant que le service de réception (broker) ne "
               "retire les contacts, séquence%s",
               f->nlegacy, s, MG_JOURNAL_KEY, s, s);
        for (size_t i = 0; i < f->nlegacy && i < 20; i++)
            printf("%s %" PRIu64, i ? "," : "", f->legacy[i]);
        printf("%s : le journal sera réécrit à l'identique, sans ces contacts\n",
               f->nlegacy > 20 ? ", …" : "");
    }
}

/* ---- erasing ---------------------------------------------------------------- */

/* The last step of a stream's rewrite, atomic. KEYS: the stream (the
 * journal, the dead letters), the copy; ARGV: the id of the last entry read,
 * then the ids left out of the copy. Copies what was appended since
 * (verbatim: only a broker from before the stripping would append a contact
 * to the journal, and the check after the rewrite reports it, as it would a
 * new dead letter), trims the copy to what the retention (or MAXLEN) kept,
 * checks that the copy holds every entry but those left out, gives it the
 * stream's last generated id (which the journal's append script falls back
 * on) and no expiry, and renames it over the stream (or deletes the stream
 * if only entries left out were in it). Returns {renamed (0/1), entries
 * appended meanwhile, entries left out that were still there}. */
static const char s_finish_script[] =
    "local rest = redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+')\n"
    "for _, e in ipairs(rest) do redis.call('XADD', KEYS[2], e[1], unpack(e[2])) end\n"
    "local gone = 0\n"
    "for j = 2, #ARGV do\n"
    "  if #redis.call('XRANGE', KEYS[1], ARGV[j], ARGV[j]) > 0 then gone = gone + 1 end\n"
    "end\n"
    "local head = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)\n"
    "if #head == 0 then\n"
    "  redis.call('DEL', KEYS[2])\n"
    "  return {0, #rest, 0}\n"
    "end\n"
    "local have = 0\n"
    "if redis.call('EXISTS', KEYS[2]) == 1 then\n"
    "  redis.call('XTRIM', KEYS[2], 'MINID', head[1][1])\n"
    "  have = redis.call('XLEN', KEYS[2])\n"
    "end\n"
    "if have + gone ~= redis.call('XLEN', KEYS[1]) then\n"
    "  redis.call('DEL', KEYS[2])\n"
    "  return redis.error_reply('the stream changed in an unexpected way during the copy')\n"
    "end\n"
    "if have == 0 then\n"
    "  redis.call('DEL', KEYS[1])\n"
    "  return {1, #rest, gone}\n"
    "end\n"
    "local info = redis.call('XINFO', 'STREAM', KEYS[1])\n"
    "for k = 1, #info, 2 do\n"
    "  if info[k] == 'last-generated-id' then redis.call('XSETID', KEYS[2], info[k + 1]) end\n"
    "end\n"
    "redis.call('PERSIST', KEYS[2])\n"
    "redis.call('RENAME', KEYS[2], KEYS[1])\n"
    "return {1, #rest, gone}\n";

/* Release the lock only if it is still ours. */
static const char s_unlock_script[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end\n"
    "return 0\n";

/* What a stream's rewrite changes: with `sid`, that structure's member
 * events lose their contact; the entries named in `skip` are left out. */
typedef struct {
    const char *sid;
    char *const *skip;
    size_t nskip;
} s_rewrite_t;

/* XADD one copied entry to `copy` in the pipeline, its `e` redacted if it is
 * one of `w->sid`'s member events with a contact. Returns 1 if redacted, 0
 * if copied as is, -1 if left out (one of `w->skip`: nothing sent). */
static int s_append_copy(redisContext *c, const redisReply *entry, const char *copy, const s_rewrite_t *w) {
    for (size_t i = 0; i < w->nskip; i++)
        if (strcmp(w->skip[i], entry->element[0]->str) == 0) return -1;
    const char *sid = w->sid;
    const redisReply *fields = entry->element[1];
    size_t argc = 3 + fields->elements;
    const char **argv = mg_malloc(argc * sizeof *argv);
    size_t *argvlen = mg_malloc(argc * sizeof *argvlen);
    argv[0] = "XADD";
    argv[1] = copy;
    argv[2] = entry->element[0]->str;
    argvlen[0] = 4;
    argvlen[1] = strlen(copy);
    argvlen[2] = (size_t)entry->element[0]->len;
    uint8_t *redacted = NULL;
    size_t redacted_len = 0;
    const redisReply *type = mg_redis_field(fields, MG_JOURNAL_FIELD_TYPE);
    int member =
        sid && type && (strcmp(type->str, "member.joined") == 0 || strcmp(type->str, "member.updated") == 0);
    for (size_t i = 0; i < fields->elements; i++) {
        const redisReply *v = fields->element[i];
        argv[3 + i] = v->str ? v->str : "";
        argvlen[3 + i] = v->str ? (size_t)v->len : 0;
        if (member && i % 2 == 1 && fields->element[i - 1]->str &&
            strcmp(fields->element[i - 1]->str, MG_JOURNAL_FIELD_ENVELOPE) == 0 &&
            s_redact((const uint8_t *)v->str, (size_t)v->len, sid, &redacted, &redacted_len) == 0) {
            argv[3 + i] = (const char *)redacted;
            argvlen[3 + i] = redacted_len;
        }
    }
    redisAppendCommandArgv(c, (int)argc, argv, argvlen);
    free(argv);
    free(argvlen);
    int was = redacted != NULL;
    free(redacted);
    return was;
}

/* Rewrite stream `key` (the journal, or the dead letters; `what` names it in
 * messages) through the copy `copy` (see the top of the file), as `w` says,
 * if it changes anything. Nothing is lost if it fails: it can be run again.
 * Returns the number of entries redacted and left out, or -1 after a
 * message. */
static long long s_rewrite_stream(redisContext *c, const char *key, const char *copy, const s_rewrite_t *w,
                                  const char *what) {
    char owner[96], from[64] = "-", last[48] = "";
    char host[64] = "?";
    gethostname(host, sizeof host - 1);
    snprintf(owner, sizeof owner, "%s:%ld", host, (long)getpid());
    redisReply *r =
        redisCommand(c, "SET %s %s NX EX %d", MG_JOURNAL_REWRITE_LOCK_KEY, owner, S_REWRITE_TTL_S);
    if (!r || r->type != REDIS_REPLY_STATUS) {
        if (r && r->type == REDIS_REPLY_NIL)
            cli_error(S_CMD, "une autre réécriture est en cours (%s) ; réessayez quand elle sera finie",
                      MG_JOURNAL_REWRITE_LOCK_KEY);
        else
            cli_error(S_CMD, "redis : %s", r && r->type == REDIS_REPLY_ERROR ? r->str : c->errstr);
        if (r) freeReplyObject(r);
        return -1;
    }
    freeReplyObject(r);
    long long redacted = 0, read = 0, left_out = 0;
    r = redisCommand(c, "DEL %s", copy); /* a copy left by an interrupted run */
    if (!r) goto fail_io;
    freeReplyObject(r);
    for (;;) {
        r = redisCommand(c, "XRANGE %s %s + COUNT %d", key, from, S_PAGE);
        if (!r) goto fail_io;
        if (r->type != REDIS_REPLY_ARRAY) goto fail_reply;
        size_t n = r->elements;
        for (size_t i = 0; i < n; i++) {
            const redisReply *e = r->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
                e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY) {
                cli_error(S_CMD, "%s : entrée malformée ; %s non réécrit", key, what);
                freeReplyObject(r);
                goto fail;
            }
        }
        size_t appended = 0;
        for (size_t i = 0; i < n; i++) {
            int done = s_append_copy(c, r->element[i], copy, w);
            redacted += done > 0;
            left_out += done < 0;
            appended += done >= 0;
        }
        if (n) {
            snprintf(last, sizeof last, "%s", r->element[n - 1]->element[0]->str);
            snprintf(from, sizeof from, "(%s", last);
        }
        freeReplyObject(r);
        /* Every reply of the pipeline is read, even after a refusal, so that
         * the next commands get their own. */
        int refused = 0;
        for (size_t i = 0; i < appended; i++) {
            redisReply *added = NULL;
            if (redisGetReply(c, (void **)&added) != REDIS_OK) goto fail_io;
            if (added->type != REDIS_REPLY_STRING && !refused++)
                cli_error(S_CMD, "redis : copie refusée : %s ; %s non réécrit",
                          added->type == REDIS_REPLY_ERROR ? added->str : "réponse inattendue", what);
            freeReplyObject(added);
        }
        if (refused) goto fail;
        /* The copy and the lock live on while pages come; they expire if
         * the CLI dies. */
        for (int k = 0; k < 2 && n; k++) {
            r = redisCommand(c, "EXPIRE %s %d", k ? MG_JOURNAL_REWRITE_LOCK_KEY : copy, S_REWRITE_TTL_S);
            if (!r) goto fail_io;
            freeReplyObject(r);
        }
        read += (long long)n;
        if (n < S_PAGE) break;
    }
    long long changed = 0;
    if (read == 0 || redacted + left_out == 0) { /* trimmed meanwhile: nothing left to change */
        r = redisCommand(c, "DEL %s", copy);
        if (!r) goto fail_io;
        freeReplyObject(r);
    } else {
        size_t argc = 6 + w->nskip;
        const char **argv = mg_malloc(argc * sizeof *argv);
        argv[0] = "EVAL";
        argv[1] = s_finish_script;
        argv[2] = "2";
        argv[3] = key;
        argv[4] = copy;
        argv[5] = last;
        for (size_t i = 0; i < w->nskip; i++)
            argv[6 + i] = w->skip[i];
        r = redisCommandArgv(c, (int)argc, argv, NULL);
        free(argv);
        if (!r) goto fail_io;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) goto fail_reply;
        /* Renamed: what it redacted, and what it left out that was still there. */
        if (r->element[0]->integer == 1) changed = redacted + r->element[2]->integer;
        freeReplyObject(r);
    }
    r = redisCommand(c, "EVAL %s 1 %s %s", s_unlock_script, MG_JOURNAL_REWRITE_LOCK_KEY, owner);
    if (r) freeReplyObject(r);
    return changed;

fail_reply:
    cli_error(S_CMD, "redis : %s ; %s non réécrit",
              r->type == REDIS_REPLY_ERROR ? r->str : "réponse inattendue", what);
    freeReplyObject(r);
    goto fail;
fail_io:
    cli_error(S_CMD, "redis : %s ; %s non réécrit", c->errstr, what);
    return -1; /* the connection is gone: the copy expires, the lock too */
fail:
    r = redisCommand(c, "DEL %s", copy);
    if (r) freeReplyObject(r);
    r = redisCommand(c, "EVAL %s 1 %s %s", s_unlock_script, MG_JOURNAL_REWRITE_LOCK_KEY, owner);
    if (r) freeReplyObject(r);
    return -1;
}

/* Erase what was found, saying what as it goes (so that a failure half-way
 * leaves an exact account). 0, or -1 after a message. */
static int s_erase(redisContext *c, const s_found_t *f) {
    printf("Effacement des données personnelles de la structure « %s » :\n", f->sid);
    /* The streams first, the contact last: a run that fails half-way can be
     * run again, and still knows the contact's values to search for. The
     * dead letters are left out of a copy of the stream, not XDEL'd: XDEL
     * only marks an entry deleted, its bytes stay in its stream node. */
    long long deadletters = 0;
    if (f->ndeadletters) {
        s_rewrite_t w = {.skip = f->deadletters, .nskip = f->ndeadletters};
        deadletters =
            s_rewrite_stream(c, MG_DEADLETTER_KEY, MG_DEADLETTER_REWRITE_KEY, &w, "flux des lettres mortes");
        if (deadletters < 0) return -1;
    }
    printf("  - lettres mortes (%s) : %lld effacée%s\n", MG_DEADLETTER_KEY, deadletters,
           deadletters > 1 ? "s" : "");
    /* Their bytes held apart: the structure's all, another's one by one
     * (a letter of theirs that held this contact). */
    for (size_t i = 0; i < f->ndeadletters; i++) {
        if (!*f->held[i] || strcmp(f->held[i], f->sid) == 0) continue;
        if (s_integer(
                c, redisCommand(c, "HDEL %s%s %s", MG_DEADLETTER_HELD_PREFIX, f->held[i], f->deadletters[i]),
                "HDEL") < 0)
            return -1;
    }
    long long held = s_integer(c, redisCommand(c, "DEL %s%s", MG_DEADLETTER_HELD_PREFIX, f->sid), "DEL");
    if (held < 0) return -1;
    printf("  - octets reçus gardés à part (%s%s) : %s\n", MG_DEADLETTER_HELD_PREFIX, f->sid,
           held ? "effacés" : "aucun");
    fflush(stdout);
    long long journal = 0;
    if (f->nlegacy) {
        s_rewrite_t w = {.sid = f->sid};
        journal = s_rewrite_stream(c, MG_JOURNAL_KEY, MG_JOURNAL_REWRITE_KEY, &w, "journal");
        if (journal < 0) return -1;
    }
    printf("  - entrées du journal (%s) : %lld réécrite%s sans le contact\n", MG_JOURNAL_KEY, journal,
           journal > 1 ? "s" : "");
    long long contact = 0;
    if (f->contact_key) {
        contact = s_integer(c, redisCommand(c, "DEL %s%s", MG_CONTACT_KEY_PREFIX, f->sid), "DEL");
        if (contact < 0) return -1;
    }
    printf("  - contact (%s%s) : %lld effacé\n", MG_CONTACT_KEY_PREFIX, f->sid, contact);
    return 0;
}

/* 1 if the operator answered yes on stdin. */
static int s_confirm(const char *sid) {
    char line[64];
    printf("Effacer définitivement ces données de « %s » ? Tapez « oui » pour confirmer : ", sid);
    fflush(stdout);
    if (!fgets(line, sizeof line, stdin)) {
        printf("\n");
        cli_error(S_CMD, "pas de réponse (entrée fermée) : rien n'a été effacé ; --yes pour ne pas demander");
        return 0;
    }
    line[strcspn(line, "\r\n")] = '\0';
    if (strcasecmp(line, "oui") == 0 || strcasecmp(line, "o") == 0 || strcasecmp(line, "yes") == 0 ||
        strcasecmp(line, "y") == 0)
        return 1;
    printf("Abandon : rien n'a été effacé.\n");
    return 0;
}

int cli_cmd_forget(int argc, char **argv, cli_settings_t *settings) {
    enum { S_OPT_YES = 2001, S_OPT_DRY_RUN };
    static const struct option options[] = {CLI_COMMON_LONG_OPTIONS,
                                            {"yes", no_argument, NULL, S_OPT_YES},
                                            {"dry-run", no_argument, NULL, S_OPT_DRY_RUN},
                                            {NULL, 0, NULL, 0}};
    int opt, yes = 0, dry_run = 0;
    while ((opt = cli_getopt(S_CMD, argc, argv, "hy", options)) != -1) {
        if (opt == '?') return CLI_EXIT_USAGE;
        if (cli_settings_option(settings, opt, optarg)) continue;
        switch (opt) {
        case 'h':
            s_usage(stdout);
            return CLI_EXIT_OK;
        case 'y':
        case S_OPT_YES:
            yes = 1;
            break;
        case S_OPT_DRY_RUN:
            dry_run = 1;
            break;
        default:
            s_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (argc - optind != 1) {
        cli_error(S_CMD, "attendu : un identifiant de structure (maillage forget --help)");
        return CLI_EXIT_USAGE;
    }
    s_found_t found = {.sid = argv[optind]};
    if (!mg_id_is_valid(found.sid)) {
        cli_error(
            S_CMD,
            "« %s » n'est pas un identifiant de structure (1 à %d caractères parmi A-Z a-z 0-9 . _ : -)",
            found.sid, MG_ID_MAX);
        return CLI_EXIT_USAGE;
    }

    cli_context_t ctx;
    int init = cli_context_init(&ctx, settings, S_CMD);
    if (init != CLI_EXIT_OK) return init;
    int rc = CLI_EXIT_FAIL;
    redisContext *c = cli_redis_connect(&ctx, S_CMD);
    if (!c || s_look(c, &found) != 0) goto done;
    if (!found.contact_key && !found.ndeadletters && !found.nlegacy && !found.held_key) {
        /* Nothing left of a structure known (erased already: harmless), or
         * an id nothing names (a typo: the request is not met). */
        if (!found.known) {
            cli_error(S_CMD,
                      "aucune structure « %s » n'est connue (ni dans le journal, ni dans l'annuaire) : "
                      "vérifiez l'identifiant ; rien n'a été effacé",
                      found.sid);
            goto done;
        }
        printf("Aucune donnée personnelle de la structure « %s » n'a été trouvée : rien à effacer.\n",
               found.sid);
        rc = CLI_EXIT_OK;
        goto done;
    }
    s_print_found(&found);
    if (dry_run) {
        printf("(--dry-run : rien n'a été effacé)\n");
        rc = CLI_EXIT_OK;
        goto done;
    }
    if (!yes && !s_confirm(found.sid)) goto done;
    if (s_erase(c, &found) != 0) goto done;

    /* Look again: a broker from before the stripping, still running, could
     * have journaled a contact meanwhile; say so rather than claim success. */
    s_found_clear(&found);
    if (s_look(c, &found) != 0) goto done;
    if (found.contact_key || found.ndeadletters || found.nlegacy || found.held_key) {
        cli_error(
            S_CMD,
            "des données de « %s » sont apparues pendant l'effacement (un événement reçu entre-temps) : "
            "relancez la commande",
            found.sid);
        goto done;
    }
    printf("Vérifié : plus aucune donnée personnelle de « %s » dans %s%s, %s, %s%s ni %s.\n", found.sid,
           MG_CONTACT_KEY_PREFIX, found.sid, MG_DEADLETTER_KEY, MG_DEADLETTER_HELD_PREFIX, found.sid,
           MG_JOURNAL_KEY);
    printf("Rappel : le fichier AOF de Redis et ses sauvegardes gardent les écritures passées jusqu'à leur "
           "réécriture (BGREWRITEAOF) ou leur expiration.\n");
    rc = CLI_EXIT_OK;
done:
    fflush(stdout);
    s_found_clear(&found);
    if (c) redisFree(c);
    cli_context_destroy(&ctx);
    return rc;
}
