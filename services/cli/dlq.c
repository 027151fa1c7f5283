/* dlq.c -- `maillage dlq [list|show ID|replay ID]`: the dead letters, i.e.
 * what the broker refused (kept with the reason and the raw bytes so an
 * operator can tell a producer exactly what was wrong) and the events a
 * consumer gave up on after its retries. `replay` re-injects one: a consumer's
 * dead letter goes back into that consumer's retry set, a refused input is
 * sent to the broker again (useful once the cause is fixed, e.g. a category
 * added to the taxonomy). A replayed dead letter is deleted. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include <zmq.h>

#include "maillage/clock.h"
#include "maillage/curve.h"
#include "maillage/journal.h"
#include "maillage/json.h"
#include "maillage/subscriber.h"

/* "2026-11-16 09:00:00.123 UTC" */
static void s_time(int64_t ms, char *out, size_t outlen)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (ms <= 0 || !gmtime_r(&secs, &tm)) {
        snprintf(out, outlen, "?");
        return;
    }
    char day[32];
    strftime(day, sizeof day, "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(out, outlen, "%s.%03d UTC", day, (int)(ms % 1000));
}

static int s_on_list(const mg_deadletter_entry_t *dl, void *arg)
{
    char when[64];
    (void)arg;
    s_time(dl->received_at_ms, when, sizeof when);
    printf("%s  %s  source=%s  %zu octets  %s", dl->id, when, dl->source && *dl->source ? dl->source : "?",
           dl->original_len, dl->reason);
    if (dl->field && *dl->field) printf(" (%s)", dl->field);
    printf("\n");
    return 0;
}

/* The bytes as a C-like escaped string, at most `max` of them. */
static void s_escaped(const uint8_t *p, size_t len, size_t max)
{
    putchar('"');
    for (size_t i = 0; i < len && i < max; i++) {
        uint8_t c = p[i];
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c == '\n') printf("\\n");
        else if (c == '\t') printf("\\t");
        else if (c >= 0x20 && c < 0x7f) putchar(c);
        else printf("\\x%02x", c);
    }
    putchar('"');
    if (len > max) printf("…");
    putchar('\n');
}

/* xxd-like: offset, 16 bytes in hex, the printable ones. */
static void s_hexdump(const uint8_t *p, size_t len, size_t max)
{
    size_t n = len < max ? len : max;
    for (size_t off = 0; off < n; off += 16) {
        printf("  %08zx  ", off);
        for (size_t i = 0; i < 16; i++) {
            if (off + i < n) printf("%02x ", p[off + i]);
            else printf("   ");
            if (i == 7) putchar(' ');
        }
        printf(" |");
        for (size_t i = 0; i < 16 && off + i < n; i++) putchar(isprint(p[off + i]) ? p[off + i] : '.');
        printf("|\n");
    }
    if (len > max) printf("  … (%zu octets de plus)\n", len - max);
}

static void s_show(const mg_deadletter_entry_t *dl, size_t preview)
{
    char when[64];
    s_time(dl->received_at_ms, when, sizeof when);
    printf("identifiant :   %s\n", dl->id);
    printf("reçue le :      %s\n", when);
    printf("source :        %s\n", dl->source && *dl->source ? dl->source : "?");
    printf("motif :         %s\n", dl->reason);
    printf("champ :         %s\n", dl->field && *dl->field ? dl->field : "(aucun)");
    printf("taille :        %zu octet%s reçu%s, %zu conservé%s\n", dl->original_len,
           dl->original_len > 1 ? "s" : "", dl->original_len > 1 ? "s" : "", dl->raw_len,
           dl->raw_len > 1 ? "s" : "");
    if (*dl->held && dl->held_erased)
        printf("contact :       effacé (départ de la structure « %s » ou maillage forget) : les octets "
               "montrés sont l'événement sans lui\n",
               dl->held);
    else if (*dl->held)
        printf("contact :       gardé à part (%s%s), effacé au départ de la structure\n",
               MG_DEADLETTER_HELD_PREFIX, dl->held);
    printf("échappés :      ");
    s_escaped(dl->raw, dl->raw_len, preview);
    printf("hexadécimal :\n");
    s_hexdump(dl->raw, dl->raw_len, preview);
    /* If the bytes still decode as an Envelope, its JSON is the quickest way
     * to see what the producer meant. */
    mg_envelope_t *env = dl->raw_len ? mg_envelope_unpack(dl->raw, dl->raw_len) : NULL;
    if (env) {
        char *json = mg_json_dumps_message(&env->base);
        printf("en Envelope :   %s\n", json);
        free(json);
        mg_envelope_free(env);
    } else {
        printf("en Envelope :   (ne se décode pas en Envelope)\n");
    }
}

/* Send `raw` to the broker's ingest once more, on behalf of `source`, the
 * network it came from (so it is journaled in that network's name, deduped
 * with its other events and bound by its rights), and wait for its ack (5 s,
 * three tries with the same bytes: the event id inside makes retries safe).
 * Returns 0 if the broker accepted it (or already had it), 1 if it rejected
 * it again (it then keeps a new dead letter with the current reason, which
 * may replace this one: s_drop_if_superseded()), -1 otherwise (this one is
 * kept); says why when not 0. */
static int s_resend(const char *ingest, const char *source, const uint8_t *raw, size_t len)
{
    int rc = -1;
    char header[sizeof(MG_RELAY_PREFIX) + MG_ID_MAX];
    snprintf(header, sizeof(header), MG_RELAY_PREFIX "%s", source);
    void *zctx = zmq_ctx_new();
    void *dealer = zctx ? zmq_socket(zctx, ZMQ_DEALER) : NULL, *monitor = NULL;
    char handshake[256] = ""; /* why the broker does not answer, if a handshake said it */
    int linger = 0;
    if (!dealer || zmq_setsockopt(dealer, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        mg_curve_client_apply(dealer) != 0 || !(monitor = cli_handshake_monitor(zctx, dealer)) ||
        zmq_connect(dealer, ingest) != 0) {
        cli_error("dlq", "connexion impossible au broker (%s) : %s", ingest, zmq_strerror(zmq_errno()));
        goto done;
    }
    /* A refusal by the network's rate limit is not final (the broker keeps
     * no dead letter of it): sent again after a pause, for up to 30 s. */
    int64_t limited_until = mg_clock_monotonic_us() + 30 * 1000000LL, pause_ms = 200;
    for (int attempt = 0; attempt < 3 && !cli_interrupted; attempt++) {
        /* Never block: once a handshake failed (a refused CURVE key), the
         * DEALER has no peer to queue for, and a blocking send would wait
         * forever. A message not sent is waited for like one unanswered. */
        if (zmq_send(dealer, header, strlen(header), ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)
            zmq_send(dealer, raw, len, ZMQ_DONTWAIT); /* the rest of a message whose first frame went */
        /* Up to 5 s for the answer, reading the handshakes meanwhile. */
        int64_t deadline = mg_clock_monotonic_us() + 5000000;
        int answered = 0;
        while (!answered && !cli_interrupted) {
            int64_t left_ms = (deadline - mg_clock_monotonic_us()) / 1000;
            if (left_ms <= 0) break;
            zmq_pollitem_t items[2] = {{dealer, 0, ZMQ_POLLIN, 0}, {monitor, 0, ZMQ_POLLIN, 0}};
            if (zmq_poll(items, 2, (long)left_ms) < 0 && zmq_errno() != EINTR) break;
            if (items[1].revents & ZMQ_POLLIN) cli_handshake_read(monitor, handshake, sizeof handshake);
            answered = (items[0].revents & ZMQ_POLLIN) != 0;
        }
        if (!answered) continue;
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, dealer, 0) < 0) {
            zmq_msg_close(&msg);
            continue;
        }
        mg_ack_t *ack = mg_ack_unpack(zmq_msg_data(&msg), zmq_msg_size(&msg));
        zmq_msg_close(&msg);
        if (!ack) {
            cli_error("dlq", "le broker a répondu autre chose qu'un Ack");
            goto done;
        }
        if (ack->status == MAILLAGE__V1__ACK__STATUS__STATUS_ACCEPTED ||
            ack->status == MAILLAGE__V1__ACK__STATUS__STATUS_DUPLICATE) {
            printf("Renvoyé au broker au nom de « %s » : %s, séquence %" PRIu64 ".\n", source,
                   mg_ack_status_name(ack->status), ack->sequence);
            rc = 0;
        } else if (ack->status == MAILLAGE__V1__ACK__STATUS__STATUS_REJECTED &&
                   strncmp(ack->reason, MG_RATE_LIMITED, strlen(MG_RATE_LIMITED)) == 0) {
            if (mg_clock_monotonic_us() < limited_until) {
                mg_ack_free(ack);
                cli_sleep_ms(pause_ms);
                pause_ms = pause_ms * 2 > 2000 ? 2000 : pause_ms * 2;
                attempt--; /* answered: not a lost attempt */
                continue;
            }
            cli_error("dlq",
                      "la limite de débit du réseau la refuse encore (%s) : réessayez plus tard ; la lettre "
                      "morte est "
                      "conservée",
                      ack->reason);
        } else if (ack->status == MAILLAGE__V1__ACK__STATUS__STATUS_REJECTED &&
                   strstr(ack->reason, MG_RELAY_REFUSED)) {
            /* The broker's new dead letter names this CLI's key, not the
             * network: keep this one. */
            cli_error("dlq",
                      "le broker la refuse : %s (pour envoyer au nom d'un autre réseau, la clé CURVE de ce "
                      "CLI doit "
                      "avoir « relay » dans la liste d'autorisation ; la lettre morte est conservée, et le "
                      "broker en "
                      "garde une de ce refus au nom du CLI)",
                      ack->reason);
        } else if (ack->status == MAILLAGE__V1__ACK__STATUS__STATUS_REJECTED) {
            cli_error("dlq", "le broker la refuse encore : %s%s%s%s", ack->reason, *ack->field ? " (" : "",
                      ack->field, *ack->field ? ")" : "");
            rc = 1;
        } else {
            cli_error("dlq", "le broker ne peut pas la journaliser maintenant (%s) : réessayez plus tard",
                      ack->reason);
        }
        mg_ack_free(ack);
        goto done;
    }
    if (*handshake)
        cli_error("dlq", "pas de réponse du broker (%s) : %s", ingest, handshake);
    else
        cli_error("dlq", "pas de réponse du broker (%s)", ingest);
done:
    if (dealer) {
        zmq_socket_monitor(dealer, NULL, 0);
        zmq_close(dealer);
    }
    if (monitor) zmq_close(monitor);
    if (zctx) zmq_ctx_term(zctx);
    return rc;
}

/* Put a consumer's dead letter `id` back into its retry set, due now, with
 * its attempts reset (the consumer retries it at its next retry tick), and
 * delete the dead letter, in one step, only if the consumer is still
 * registered and the journal still holds the sequence (retention never trims
 * a parked one, but may have trimmed it while it was a dead letter): else
 * the dead letter, its only copy, is kept. */
static int s_requeue(redisContext *c, const char *id, const char *consumer, const char *seq)
{
    static const char script[] =
        "if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return -1 end\n"
        "if #redis.call('XRANGE', KEYS[2], ARGV[2], ARGV[2]) == 0 then return -2 end\n"
        "redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])\n"
        "redis.call('HDEL', KEYS[4], ARGV[2])\n"
        "redis.call('XDEL', KEYS[5], ARGV[4])\n"
        "return 1\n";
    if (!mg_id_is_valid(consumer) || strspn(seq, "0123456789") != strlen(seq) || !*seq) {
        cli_error("dlq", "lettre morte de consommateur malformée (consommateur « %s », séquence « %s »)",
                  consumer, seq);
        return -1;
    }
    char retry[sizeof(MG_RETRY_KEY_PREFIX) + MG_ID_MAX], attempts[sizeof(retry) + 9], now[24];
    snprintf(retry, sizeof(retry), MG_RETRY_KEY_PREFIX "%s", consumer);
    snprintf(attempts, sizeof(attempts), "%s:attempts", retry);
    snprintf(now, sizeof(now), "%lld", (long long)mg_clock_now_ms());
    redisReply *r = redisCommand(c, "EVAL %s 5 %s %s %s %s %s %s %s %s %s", script, MG_CONSUMERS_KEY,
                                 MG_JOURNAL_KEY, retry, attempts, MG_DEADLETTER_KEY, consumer, seq, now, id);
    long long status = r && r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
    if (status == 0)
        cli_error("dlq", "erreur Redis, rien n'est réinjecté : %s", r ? (r->str ? r->str : "?") : c->errstr);
    else if (status == -1)
        cli_error(
            "dlq",
            "le consommateur « %s » n'est plus enregistré (voir « maillage consumers ») : la lettre morte "
            "est conservée",
            consumer);
    else if (status == -2)
        cli_error(
            "dlq",
            "la séquence %s n'est plus dans le journal (rétention) : la lettre morte est conservée, avec "
            "ses octets",
            seq);
    else
        printf("Réinjecté chez le consommateur « %s » : séquence %s, nouvelles tentatives.\n", consumer, seq);
    if (r) freeReplyObject(r);
    return status == 1 ? 0 : -1;
}

/* After the broker rejected dead letter `dl` again: delete it (and its
 * held bytes) only if the broker kept a newer one of the same bytes from the
 * same network, so that the event always has one copy (it keeps none when
 * its dead letters are over budget or Redis failed it). The same bytes: the
 * same stored ones, or the bytes received held apart (a letter written
 * before contacts were held has them in `raw`). */
static void s_drop_if_superseded(redisContext *c, const char *id, const mg_deadletter_entry_t *dl) {
    static const char script[] =
        "for _, e in ipairs(redis.call('XREVRANGE', KEYS[1], '+', '(' .. ARGV[1], 'COUNT', 1000)) do\n"
        "  local f = {}\n"
        "  for i = 1, #e[2], 2 do f[e[2][i]] = e[2][i + 1] end\n"
        "  if f.source == ARGV[2] and (f.raw == ARGV[3] or (f.held and\n"
        "      redis.call('HGET', '" MG_DEADLETTER_HELD_PREFIX "' .. f.held, e[1]) == ARGV[5])) then\n"
        "    if ARGV[4] ~= '' then redis.call('HDEL', '" MG_DEADLETTER_HELD_PREFIX
        "' .. ARGV[4], ARGV[1]) end\n"
        "    return redis.call('XDEL', KEYS[1], ARGV[1])\n"
        "  end\n"
        "end\n"
        "return 0\n";
    /* The broker answers before its new dead letter is written: look for
     * it for up to 2 s. */
    redisReply *r = NULL;
    for (int tries = 0; tries < 20; tries++) {
        if (r) freeReplyObject(r);
        r = redisCommand(c, "EVAL %s 1 %s %s %s %b %s %b", script, MG_DEADLETTER_KEY, id, dl->source,
                         dl->stored, dl->stored_len, dl->held, dl->raw, dl->raw_len);
        if (!r || r->type != REDIS_REPLY_INTEGER || r->integer == 1) break;
        cli_sleep_ms(100);
    }
    if (!r || r->type != REDIS_REPLY_INTEGER || r->integer != 1)
        cli_error("dlq", "le broker n'en a pas gardé de nouvelle lettre morte : celle-ci est conservée");
    else
        printf("Le nouveau refus remplace cette lettre morte.\n");
    if (r) freeReplyObject(r);
}

/* Refuse `id`, which XRANGE read as a range (a millisecond time without its
 * "-N", or another spelling of an id): show and replay act on one dead
 * letter and delete exactly the one named, so the operator must name it in
 * full. `r` is the XRANGE reply, with at least one entry. */
static void s_not_exact(const char *id, const redisReply *r) {
    char ids[5 * 48] = ""; /* a stream id is at most 41 characters */
    size_t shown = 0, len = 0;
    for (size_t i = 0; i < r->elements && shown < 5; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 1 || e->element[0]->type != REDIS_REPLY_STRING)
            continue;
        len +=
            (size_t)snprintf(ids + len, sizeof ids - len, "%s%.41s", shown++ ? ", " : "", e->element[0]->str);
    }
    cli_error("dlq",
              "« %s » n'est pas un identifiant complet de lettre morte ; identifiant%s complet%s : %s%s", id,
              r->elements > 1 ? "s" : "", r->elements > 1 ? "s" : "", ids, r->elements > shown ? ", …" : "");
}

/* Whether `id` is spelled as a stream entry's id, <ms>-<seq>, or its
 * millisecond alone (which s_refuse_range() answers with the complete ids). */
static int s_stream_id_is_valid(const char *id) {
    size_t ms = strspn(id, "0123456789");
    if (ms == 0 || ms > 20) return 0;
    if (id[ms] == '\0') return 1;
    if (id[ms] != '-') return 0;
    size_t seq = strspn(id + ms + 1, "0123456789");
    return seq > 0 && seq <= 20 && id[ms + 1 + seq] == '\0';
}

/* Look one entry up by stream id with XRANGE id id (journal.h lists; show
 * needs a single entry, which may be old), then show it, or replay it when
 * `ingest` is not NULL. */
static int s_show_id(redisContext *c, const char *id, size_t preview, const char *ingest)
{
    redisReply *r = redisCommand(c, "XRANGE %s %s %s", MG_DEADLETTER_KEY, id, id);
    redisReply *held = NULL; /* the bytes received, if kept apart (mg_journal_deadletter_entry()) */
    int rc = -1;
    if (!r) {
        cli_error_redis("dlq", c, NULL);
        return -1;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        cli_error("dlq", "« %s » n'est pas un identifiant de lettre morte (%s)", id, r->str);
        goto done;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
        cli_error("dlq", "aucune lettre morte d'identifiant %s (voir « maillage dlq list »)", id);
        goto done;
    }
    redisReply *entry = r->element[0];
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 ||
        entry->element[0]->type != REDIS_REPLY_STRING || entry->element[1]->type != REDIS_REPLY_ARRAY) {
        cli_error("dlq", "entrée malformée : %s", id);
        goto done;
    }
    if (strcmp(entry->element[0]->str, id) != 0) {
        s_not_exact(id, r);
        goto done;
    }
    mg_deadletter_entry_t dl;
    char err[256];
    if (mg_journal_deadletter_entry(c, id, entry->element[1], &dl, &held, err, sizeof err) != 0) {
        cli_error("dlq", "%s", err);
        goto done;
    }
    if (!ingest) {
        if (*dl.consumer) printf("consommateur :  %s (séquence %s)\n", dl.consumer, dl.seq);
        s_show(&dl, preview);
        rc = 0;
        goto done;
    }
    if (*dl.consumer) {
        rc = s_requeue(c, id, dl.consumer, dl.seq);
        goto done;
    }
    if (dl.held_erased) {
        cli_error("dlq",
                  "son contact a été effacé (départ de la structure « %s » ou maillage forget) : elle n'est "
                  "pas renvoyée ; le réseau peut envoyer l'événement à nouveau",
                  dl.held);
    } else if (dl.raw_len < dl.original_len) {
        cli_error("dlq", "seuls %zu de ses %zu octets ont été conservés : elle ne peut pas être renvoyée",
                  dl.raw_len, dl.original_len);
    } else if (strncmp(dl.source, MG_CONSUMER_SOURCE_PREFIX, strlen(MG_CONSUMER_SOURCE_PREFIX)) == 0) {
        /* A consumer's, without the field that names it: not input a network
         * sent (resent, it would be journaled in the name of a network
         * "consumer:<name>"), nor something to put back in a retry set. */
        cli_error(
            "dlq",
            "lettre morte de consommateur malformée (source « %s » sans champ consumer) : elle n'est pas "
            "réinjectée et reste dans la file",
            dl.source);
    } else if (!mg_id_is_valid(dl.source) || strcmp(dl.source, MG_SOURCE_UNAUTHENTICATED) == 0) {
        cli_error("dlq", "sa source « %s » n'est pas un réseau : elle ne peut pas être renvoyée en son nom",
                  dl.source);
    } else {
        rc = s_resend(ingest, dl.source, dl.raw, dl.raw_len);
    }
    if (rc == 0) { /* journaled */
        redisReply *del = redisCommand(c, "XDEL %s %s", MG_DEADLETTER_KEY, id);
        if (del) freeReplyObject(del);
        if (*dl.held && (del = redisCommand(c, "HDEL %s%s %s", MG_DEADLETTER_HELD_PREFIX, dl.held, id)))
            freeReplyObject(del);
    } else if (rc > 0) {
        s_drop_if_superseded(c, id, &dl);
        rc = -1;
    }
done:
    if (held) freeReplyObject(held);
    freeReplyObject(r);
    return rc;
}

static void s_usage(FILE *out)
{
    fprintf(out,
            "Usage : maillage dlq [OPTIONS] [list]\n"
            "        maillage dlq [OPTIONS] show ID\n"
            "        maillage dlq [OPTIONS] replay ID\n"
            "\n"
            "Les lettres mortes : ce que le broker a refusé, avec le motif, le champ en\n"
            "cause, la source, l'heure et les octets reçus ; et les événements qu'un\n"
            "consommateur a abandonnés après ses nouvelles tentatives, avec le nom du\n"
            "consommateur et la séquence.\n"
            "  list        une ligne par lettre morte, de la plus ancienne à la plus récente\n"
            "              (par défaut)\n"
            "  show ID     tout sur l'une d'elles, avec un aperçu échappé et hexadécimal\n"
            "  replay ID   la réinjecter : dans les nouvelles tentatives de son consommateur,\n"
            "              ou, pour une entrée refusée, renvoyée au broker au nom du réseau\n"
            "              d'où elle vient ; supprimée une fois réinjectée\n"
            "ID est l'identifiant complet qu'affiche list (« 1795828102169-0 », pas son heure\n"
            "seule).\n"
            "\n"
            "Options :\n"
            "  -n, --count N        n'afficher que les N dernières (par défaut : toutes)\n"
            "      --bytes N        octets affichés par show (256 par défaut)\n"
            "%s",
            cli_common_help);
}

int cli_cmd_dlq(int argc, char **argv, cli_settings_t *settings)
{
    static const struct option options[] = {CLI_COMMON_LONG_OPTIONS,
                                            {"count", required_argument, NULL, 'n'},
                                            {"bytes", required_argument, NULL, 'b'},
                                            {NULL, 0, NULL, 0}};
    cli_context_t ctx;
    size_t count = 0, preview = 256;
    int opt, rc = CLI_EXIT_FAIL;
    char err[512];

    while ((opt = cli_getopt("dlq", argc, argv, "hn:", options)) != -1) {
        if (opt == '?') return CLI_EXIT_USAGE;
        if (cli_settings_option(settings, opt, optarg)) continue;
        switch (opt) {
        case 'h': s_usage(stdout); return CLI_EXIT_OK;
        case 'n':
        case 'b': {
            unsigned long long v;
            if (cli_positive_option("dlq", opt == 'n' ? "count" : "bytes", optarg, &v) != 0)
                return CLI_EXIT_USAGE;
            if (opt == 'n') count = (size_t)v;
            else preview = (size_t)v;
            break;
        }
        default: s_usage(stderr); return CLI_EXIT_USAGE;
        }
    }
    const char *action = optind < argc ? argv[optind] : "list";
    const char *id = NULL;
    if (strcmp(action, "list") == 0) {
        if (argc - optind > 1) {
            cli_error("dlq", "list ne prend pas d'argument, pas « %s » (--count N pour les N dernières)",
                      argv[optind + 1]);
            return CLI_EXIT_USAGE;
        }
    } else if (strcmp(action, "show") == 0 || strcmp(action, "replay") == 0) {
        if (argc - optind != 2) {
            cli_error("dlq", "%s attend un ID (voir « maillage dlq list »)", action);
            return CLI_EXIT_USAGE;
        }
        id = argv[optind + 1];
        if (!s_stream_id_is_valid(id)) {
            cli_error("dlq",
                      "« %s » n'est pas un identifiant de lettre morte : ils s'écrivent 1764428400000-0 "
                      "(voir « maillage dlq list »)",
                      id);
            return CLI_EXIT_USAGE;
        }
    } else {
        goto usage;
    }
    int init = cli_context_init(&ctx, settings, "dlq");
    if (init != CLI_EXIT_OK) return init;
    redisContext *redis = cli_redis_connect(&ctx, "dlq");
    if (!redis) goto done;
    if (id) {
        const char *ingest = strcmp(action, "replay") == 0 ? ctx.ingest : NULL;
        rc = s_show_id(redis, id, preview, ingest) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
    } else {
        long long n = mg_journal_deadletters(redis, count, s_on_list, NULL, err, sizeof err);
        if (n < 0) {
            cli_error("dlq", "%s", err);
        } else {
            if (n == 0) printf("Aucun message rejeté : la file des lettres mortes est vide.\n");
            rc = CLI_EXIT_OK;
        }
    }
    redisFree(redis);
done:
    fflush(stdout);
    cli_context_destroy(&ctx);
    return rc;
usage:
    cli_error("dlq", "action inconnue « %s » (list, show ID ou replay ID)", action);
    return CLI_EXIT_USAGE;
}
