/* tail.c -- `maillage tail [--from SEQ] [TOPIC...]`: live events of chosen
 * types, as JSON lines or one French line each.
 *
 * A subscriber that only listened to the fan-out would miss what was
 * published before its subscription reached the broker (ZeroMQ's slow
 * joiner) and what a high-water mark dropped. So tail follows the Clone
 * pattern of the ZeroMQ guide: it subscribes first, then reads from the
 * journal whatever it has not seen (from --from, or from the sequence that
 * was last when it started), then prints live events, and whenever a live
 * sequence jumps ahead, or the feed stays quiet for a second while the
 * journal grew, it fills the gap from the journal. Events come out once each,
 * in sequence order. Without Redis it still prints the live feed, with a
 * warning that gaps cannot be filled; when Redis goes away while it runs, it
 * says so, prints the live feed meanwhile, tries again each second and
 * catches up from the journal once it answers. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "cli.h"
#include "maillage/clock.h"
#include "maillage/curve.h"
#include "maillage/journal.h"
#include "maillage/json.h"
#include "maillage/subscriber.h"

typedef struct {
    cli_context_t *ctx;
    redisContext *redis; /* NULL: live only */
    char **topics;
    int n_topics;
    int text;
    uint64_t count;   /* 0 = no limit */
    uint64_t printed;
    uint64_t next_seq; /* the first sequence not yet handled (0 = unknown) */
    int journal_lost;  /* Redis went away: tried again each second, until a read succeeds */
    int64_t retried_us;
} s_tail_t;

static int s_wanted(const s_tail_t *t, const char *type, size_t len)
{
    if (t->n_topics == 0) return 1;
    for (int i = 0; i < t->n_topics; i++) {
        size_t n = strlen(t->topics[i]);
        if (n <= len && memcmp(type, t->topics[i], n) == 0) return 1;
    }
    return 0;
}

/* Print one event. Returns 1 when --count is reached. */
static int s_print(s_tail_t *t, const uint8_t *data, size_t len, uint64_t seq)
{
    mg_envelope_t *env = mg_envelope_unpack(data, len);
    if (!env) {
        cli_error("tail", "événement #%" PRIu64 " : enveloppe illisible (%zu octets) ; ignoré", seq, len);
        return 0;
    }
    env->sequence = seq;
    if (t->text) {
        cli_text_event(stdout, t->ctx, t->redis, env);
    } else {
        char *json = mg_json_dumps_message(&env->base);
        puts(json);
        free(json);
    }
    fflush(stdout);
    mg_envelope_free(env);
    t->printed++;
    return (t->count && t->printed >= t->count) || cli_stdout_closed();
}

typedef struct {
    s_tail_t *tail;
    int done;
} s_catchup_t;

static int s_on_entry(const mg_journal_entry_t *entry, void *arg)
{
    s_catchup_t *cu = arg;
    s_tail_t *t = cu->tail;
    t->next_seq = entry->sequence + 1;
    if (!s_wanted(t, entry->type, strlen(entry->type))) return 0;
    if (s_print(t, entry->envelope, entry->len, entry->sequence)) {
        cu->done = 1;
        return 1;
    }
    return 0;
}

/* A connection again after Redis went away, at most once a second. */
static void s_rejoin(s_tail_t *t) {
    int64_t now = mg_clock_monotonic_us();
    if (!t->journal_lost || t->redis || now - t->retried_us < 1000000) return;
    t->retried_us = now;
    t->redis = cli_redis_connect(t->ctx, NULL);
}

/* Print from the journal the wanted events of sequences next_seq..upto-1
 * (upto 0 = to the end). Returns 1 when --count is reached. On a Redis error
 * warns, goes on live only and tries again each second (s_rejoin()), until
 * a read succeeds. */
static int s_catch_up(s_tail_t *t, uint64_t upto)
{
    char err[512];
    s_rejoin(t);
    if (!t->redis || t->next_seq == 0) return 0;
    if (upto && upto <= t->next_seq) return 0;
    s_catchup_t cu = {t, 0};
    uint64_t from = t->next_seq, max = upto ? upto - t->next_seq : 0;
    if (mg_journal_read(t->redis, t->next_seq, max, s_on_entry, &cu, err, sizeof err) < 0) {
        if (!t->journal_lost) /* once, not at each try (LOADING after a restart) */
            cli_error("tail",
                      "attention : journal injoignable (%s) ; les événements en direct s'affichent en "
                      "attendant, nouvel essai chaque seconde",
                      err);
        redisFree(t->redis);
        t->redis = NULL;
        t->journal_lost = 1;
        t->retried_us = mg_clock_monotonic_us();
    } else if (t->journal_lost) {
        t->journal_lost = 0;
        cli_error("tail", "le journal répond de nouveau : rattrapé à partir de l'événement %" PRIu64, from);
    }
    return cu.done;
}

static void s_usage(FILE *out)
{
    fprintf(out,
            "Usage : maillage tail [OPTIONS] [SUJET...]\n"
            "\n"
            "Affiche les événements à mesure qu'ils sont journalisés, dans l'ordre des séquences,\n"
            "chacun une fois. SUJET est un type d'événement ou son début (« need. »,\n"
            "« offer.published ») ; sans SUJET, tous les types. Commence au prochain événement,\n"
            "ou à --from SEQ (lu dans le journal).\n"
            "\n"
            "Options :\n"
            "      --from SEQ       commencer à la séquence SEQ du journal (1 = le début)\n"
            "  -f, --format FMT     json (par défaut : une enveloppe JSON proto3 par ligne) ou\n"
            "                       text (une ligne en français par événement)\n"
            "  -n, --count N        s'arrêter après N événements\n"
            "%s",
            cli_common_help);
}

int cli_cmd_tail(int argc, char **argv, cli_settings_t *settings)
{
    static const struct option options[] = {CLI_COMMON_LONG_OPTIONS,
                                            {"from", required_argument, NULL, 'F'},
                                            {"format", required_argument, NULL, 'f'},
                                            {"count", required_argument, NULL, 'n'},
                                            {NULL, 0, NULL, 0}};
    s_tail_t t = {0};
    cli_context_t ctx;
    uint64_t from = 0;
    int opt, rc = CLI_EXIT_FAIL;
    char err[512];
    void *zctx = NULL, *sub = NULL, *monitor = NULL;
    char handshake[256] = "";

    while ((opt = cli_getopt("tail", argc, argv, "hf:n:", options)) != -1) {
        if (opt == '?') return CLI_EXIT_USAGE;
        if (cli_settings_option(settings, opt, optarg)) continue;
        switch (opt) {
        case 'h': s_usage(stdout); return CLI_EXIT_OK;
        case 'F':
        case 'n': {
            unsigned long long v;
            if (cli_positive_option("tail", opt == 'F' ? "from" : "count", optarg, &v) != 0)
                return CLI_EXIT_USAGE;
            if (opt == 'F') from = v;
            else t.count = v;
            break;
        }
        case 'f':
            if (strcmp(optarg, "text") == 0) t.text = 1;
            else if (strcmp(optarg, "json") != 0) {
                cli_error("tail", "format inconnu « %s » (json ou text)", optarg);
                return CLI_EXIT_USAGE;
            }
            break;
        default: s_usage(stderr); return CLI_EXIT_USAGE;
        }
    }
    t.topics = argv + optind;
    t.n_topics = argc - optind;
    for (int i = 0; i < t.n_topics; i++)
        if (cli_check_type_prefix("tail", t.topics[i]) != 0) return CLI_EXIT_USAGE;
    int init = cli_context_init(&ctx, settings, "tail");
    if (init != CLI_EXIT_OK) return init;
    t.ctx = &ctx;
    if (t.text) cli_context_load_tables(&ctx, "tail");

    /* Subscribe before reading the journal, so nothing falls between the two. */
    zctx = zmq_ctx_new();
    sub = zmq_socket(zctx, ZMQ_SUB);
    int hwm = 1000000, linger = 0;
    zmq_setsockopt(sub, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(sub, ZMQ_LINGER, &linger, sizeof linger);
    if (t.n_topics == 0) zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
    for (int i = 0; i < t.n_topics; i++) zmq_setsockopt(sub, ZMQ_SUBSCRIBE, t.topics[i], strlen(t.topics[i]));
    if (mg_curve_client_apply(sub) != 0) {
        cli_error("tail", "impossible d'activer CURVE : %s", zmq_strerror(errno));
        goto done;
    }
    /* A refused CURVE key leaves the feed silent: say so (the journal,
     * read each quiet second, still brings the events). */
    if (!(monitor = cli_handshake_monitor(zctx, sub))) {
        cli_error("tail", "impossible de surveiller la connexion à %s : %s", ctx.fanout, zmq_strerror(errno));
        goto done;
    }
    if (zmq_connect(sub, ctx.fanout) != 0) {
        cli_error("tail", "connexion impossible à %s : %s", ctx.fanout, zmq_strerror(errno));
        goto done;
    }

    t.redis = cli_redis_connect(&ctx, "tail");
    if (!t.redis) {
        if (from) goto done; /* --from needs the journal */
        cli_error("tail", "attention : sans le journal, les événements publiés avant l'abonnement "
                          "ou perdus en route ne peuvent pas être rattrapés");
    } else {
        uint64_t last;
        if (mg_journal_last_sequence(t.redis, &last, err, sizeof err) != 0) {
            cli_error("tail", "%s", err);
            goto done;
        }
        t.next_seq = from ? from : last + 1;
        if (from > last + 1) /* not an error (a script may wait for it), but not silent */
            cli_error("tail",
                      "attention : le journal s'arrête à %" PRIu64 " ; attente de l'événement %" PRIu64
                      " (les %" PRIu64 " précédents ne seront pas affichés)",
                      last, from, from - last - 1);
    }
    cli_catch_signals();
    if (s_catch_up(&t, 0)) goto finished;

    int64_t quiet_since_us = mg_clock_monotonic_us();
    while (!cli_interrupted) {
        zmq_pollitem_t items[2] = {{sub, 0, ZMQ_POLLIN, 0}, {monitor, 0, ZMQ_POLLIN, 0}};
        int n = zmq_poll(items, 2, 1000);
        if (n < 0) {
            if (errno == EINTR) continue;
            cli_error("tail", "attente impossible (poll) : %s", zmq_strerror(errno));
            goto done;
        }
        if ((items[1].revents & ZMQ_POLLIN) && cli_handshake_read(monitor, handshake, sizeof handshake))
            cli_error(
                "tail",
                "attention : diffusion %s : %s ; les nouveaux événements sont lus dans le journal chaque "
                "seconde à la place",
                ctx.fanout, handshake);
        if (!(items[0].revents & ZMQ_POLLIN)) {
            /* Quiet for a second: maybe the subscription was not through yet
             * when events were published. The journal knows. (Handshake
             * events, every retry, do not make it a quiet second.) */
            int64_t now = mg_clock_monotonic_us();
            if (now - quiet_since_us < 1000000) continue;
            quiet_since_us = now;
            if (s_catch_up(&t, 0)) goto finished;
            continue;
        }
        quiet_since_us = mg_clock_monotonic_us();
        zmq_msg_t frames[3];
        int nframes = 0, more = 1;
        while (more) {
            zmq_msg_t part;
            zmq_msg_init(&part);
            if (zmq_msg_recv(&part, sub, 0) < 0) {
                zmq_msg_close(&part);
                break;
            }
            more = zmq_msg_more(&part);
            if (nframes < 3) frames[nframes++] = part;
            else zmq_msg_close(&part);
        }
        if (nframes == 2 && zmq_msg_size(&frames[1]) == 8 &&
            zmq_msg_size(&frames[0]) == strlen(MG_HEARTBEAT_TOPIC) &&
            memcmp(zmq_msg_data(&frames[0]), MG_HEARTBEAT_TOPIC, strlen(MG_HEARTBEAT_TOPIC)) == 0) {
            /* The broker's heartbeat: the last journaled sequence. Anything up
             * to it that we have not seen was journaled but not received. */
            const uint8_t *b = zmq_msg_data(&frames[1]);
            uint64_t last = 0;
            for (int i = 0; i < 8; i++) last = (last << 8) | b[i];
            for (int i = 0; i < nframes; i++) zmq_msg_close(&frames[i]);
            if (last >= t.next_seq && s_catch_up(&t, last + 1)) goto finished;
        } else if (nframes == 3 && zmq_msg_size(&frames[1]) == 8) {
            const uint8_t *b = zmq_msg_data(&frames[1]);
            uint64_t seq = 0;
            for (int i = 0; i < 8; i++) seq = (seq << 8) | b[i];
            int finished = 0;
            if (seq > t.next_seq)
                finished = s_catch_up(&t, seq); /* a gap: fill it (without a journal: nothing) */
            if (!finished && (!t.redis || seq >= t.next_seq)) {
                if (seq >= t.next_seq) t.next_seq = seq + 1;
                if (s_wanted(&t, zmq_msg_data(&frames[0]), zmq_msg_size(&frames[0])))
                    finished = s_print(&t, zmq_msg_data(&frames[2]), zmq_msg_size(&frames[2]), seq);
            }
            for (int i = 0; i < nframes; i++) zmq_msg_close(&frames[i]);
            if (finished) goto finished;
        } else {
            for (int i = 0; i < nframes; i++) zmq_msg_close(&frames[i]);
            cli_error("tail", "attention : message de diffusion malformé (%d trames) ignoré", nframes);
        }
    }
finished:
    rc = CLI_EXIT_OK;
done:
    if (t.redis) redisFree(t.redis);
    if (sub) {
        zmq_socket_monitor(sub, NULL, 0);
        zmq_close(sub);
    }
    if (monitor) zmq_close(monitor);
    if (zctx) zmq_ctx_term(zctx);
    cli_context_destroy(&ctx);
    return rc;
}
