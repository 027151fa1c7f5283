/* config_schema.c -- every configuration key of the system, with its default.
 *
 * One table for all programs, so that each of them rejects keys nobody knows
 * while accepting the sections of the others. Add a row here when a program
 * needs a new key; config/maillage.conf is regenerated from this table
 * (`maillage config defaults`) and a unit test keeps the two in step. */
#include "maillage/config.h"

#define STR(s, k, def, doc) {s, k, MG_CONFIG_STRING, def, 0, 0, doc}
#define INT(s, k, def, lo, hi, doc) {s, k, MG_CONFIG_INT, def, lo, hi, doc}
#define DBL(s, k, def, lo, hi, doc) {s, k, MG_CONFIG_DOUBLE, def, lo, hi, doc}
#define BOOL(s, k, def, doc) {s, k, MG_CONFIG_BOOL, def, 0, 0, doc}
#define OPEN(s, doc) {s, NULL, MG_CONFIG_STRING, NULL, 0, 0, doc}

const mg_config_key_t mg_config_schema[] = {
    STR("log", "level", "info", "Minimum level logged to stderr: debug, info, warn or error."),

    STR("redis", "url", "redis://127.0.0.1:6379/0",
        "Redis holding the journal and the shared state: redis://HOST:PORT/DB or\n"
        "unix:///path/to/redis.sock (optionally ?db=N)."),
    STR("redis", "user", "", "ACL user name; empty for the default user."),
    STR("redis", "password_file", "",
        "File holding the Redis password on its first line; empty for none.\n"
        "It must not be readable by group or others."),
    INT("redis", "connect_timeout_ms", "2000", 10, 600000, "Timeout of one connection attempt."),
    INT("redis", "reconnect_min_ms", "100", 1, 600000,
        "First delay before reconnecting after Redis is lost; doubles up to reconnect_max_ms."),
    INT("redis", "reconnect_max_ms", "5000", 1, 3600000, "Longest delay between reconnection attempts."),

    STR("broker", "ingest", "tcp://127.0.0.1:7450",
        "ZeroMQ endpoint (ROUTER) where producers send envelopes and get acks."),
    STR("broker", "fanout", "tcp://127.0.0.1:7451",
        "ZeroMQ endpoint (PUB) where journaled events are published to subscribers."),
    INT("broker", "max_message_bytes", "262144", 1024, 67108864,
        "Largest envelope accepted; bigger ones are rejected (and dead-lettered, truncated)."),
    INT("broker", "dedupe_window_s", "604800", 60, 31536000,
        "How long an event id is remembered to answer retries as duplicates."),
    INT("broker", "batch_max", "512", 1, 65536,
        "Most envelopes read from the ingest socket per loop turn (and journaled in one pipeline)."),
    INT("broker", "ingest_hwm", "100000", 0, 10000000, "High-water mark of the ingest socket (messages)."),
    INT("broker", "fanout_hwm", "100000", 0, 10000000, "High-water mark of the fan-out socket per subscriber."),
    INT("broker", "deadletter_maxlen", "100000", 100, 100000000,
        "Approximate number of dead letters kept (older ones are trimmed)."),
    STR("broker", "network", "local",
        "Source stamped on envelopes from unauthenticated (loopback) producers."),
    INT("broker", "heartbeat_ms", "1000", 0, 3600000,
        "How often the broker publishes the last journaled sequence on the fan-out\n"
        "(topic _heartbeat), so subscribers notice events journaled but never\n"
        "published; 0 turns it off."),
    INT("broker", "retention_max_age_s", "2592000", 0, 3153600000,
        "Journal entries older than this are trimmed (30 days); 0 = no age limit.\n"
        "Never past the slowest registered consumer unless retention_force is set."),
    INT("broker", "retention_max_events", "10000000", 0, 10000000000,
        "At most this many journal entries are kept; 0 = no size limit."),
    INT("broker", "retention_interval_s", "60", 1, 86400,
        "How often the broker applies the journal retention."),
    BOOL("broker", "retention_force", "false",
         "Trim by age and size even past consumers that have not read the events yet\n"
         "(they lose them; logged as an error at each trim)."),

    STR("data", "communes_file", MAILLAGE_DATADIR "/communes-normandie.csv",
        "Commune table (INSEE code, name, department, EPCI, coordinates). Commune codes\n"
        "of events must be in it."),

    OPEN("categories",
         "Need and offer categories: one \"code = French label\" line each. Codes are\n"
         "stable identifiers of [a-z_]; setting this section replaces the defaults."),
    STR("categories", "locaux", "Locaux", NULL),
    STR("categories", "financement", "Financement", NULL),
    STR("categories", "competences", "Compétences et mécénat de compétences", NULL),
    STR("categories", "emploi_partage", "Emploi partagé", NULL),
    STR("categories", "achats", "Achats responsables et sous-traitance", NULL),
    STR("categories", "logistique", "Logistique (transport, stockage)", NULL),
    STR("categories", "materiel", "Matériel et réemploi", NULL),
    STR("categories", "formation", "Formation", NULL),
    STR("categories", "benevolat", "Bénévolat", NULL),
    STR("categories", "numerique", "Outils numériques", NULL),
    STR("categories", "communication", "Communication", NULL),
    STR("categories", "accompagnement", "Accompagnement", NULL),

    {NULL, NULL, MG_CONFIG_STRING, NULL, 0, 0, NULL},
};
