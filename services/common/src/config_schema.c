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
        "File holding the Redis password on its first line; empty for none, which\n"
        "only a Redis on loopback or a unix socket is allowed (a host beyond is refused).\n"
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
    INT("broker", "ingest_hwm", "100000", 1, 10000000,
        "Acks that may wait for a producer connection to read them (messages). Keep it\n"
        "above the producers' window (1000 for maillage's own): an ack beyond it is\n"
        "dropped, and the producer sends again (DUPLICATE). (What a producer sends while\n"
        "the broker pauses reading waits in ZeroMQ, up to 16 MiB / max_message_bytes\n"
        "envelopes per connection, at least 16, then in the producer.)"),
    INT("broker", "fanout_hwm", "1000", 1, 10000000,
        "Messages the fan-out keeps for each subscriber (ZeroMQ counts messages, not bytes); beyond, a "
        "subscriber that does not keep up reads the missed events from the journal."),
    INT("broker", "deadletter_maxlen", "100000", 100, 100000000,
        "Approximate number of dead letters kept (older ones are trimmed), by the broker\n"
        "and by the consumers that dead-letter events (the matcher, the notifier)."),
    INT("broker", "deadletter_contact_days", "30", 1, 3650,
        "Days the contact (personal data) of a refused member event is kept apart from\n"
        "its dead letter, for `maillage dlq show` and `replay`: at most this long after\n"
        "the structure's last refused member event; its member.left or `maillage\n"
        "forget` erases it before."),
    STR("broker", "network", "local",
        "Source stamped on envelopes from unauthenticated (loopback) producers."),
    INT("broker", "heartbeat_ms", "1000", 0, 3600000,
        "How often the broker publishes the last journaled sequence on the fan-out\n"
        "(topic _heartbeat), so subscribers notice events journaled but never\n"
        "published; 0 turns it off."),
    INT("broker", "retention_max_age_s", "2592000", 0, 3153600000,
        "Journal entries older than this are trimmed (30 days); 0 = no age limit.\n"
        "Never past the slowest registered consumer unless retention_force is set."),
    INT("broker", "retention_max_events", "2000000", 0, 10000000000,
        "At most this many journal entries are kept; 0 = no size limit. A journal\n"
        "entry of a typical event takes about 400 bytes of Redis memory: size Redis'\n"
        "maxmemory for this many (2,000,000 is about 800 MB) plus the shared state."),
    INT("broker", "retention_interval_s", "60", 1, 86400,
        "How often the broker applies the journal retention."),
    BOOL("broker", "retention_force", "false",
         "Trim by age and size even past consumers that have not read the events yet\n"
         "(they lose them; logged as an error at each trim)."),
    STR("broker", "curve_secret_key_file", "",
        "The broker's CurveZMQ secret key (`maillage keygen`); when set, the ingest and\n"
        "fan-out sockets are CURVE servers and only clients of curve_clients_file may\n"
        "connect. Not readable by group or others. Empty = no CURVE (loopback only)."),
    STR("broker", "curve_clients_file", "",
        "Allow-list of CURVE clients, one per line: \"network_id  PUBLIC_KEY  types\",\n"
        "types a comma-separated list of event types or prefixes (need.*, match.found,\n"
        "* for any, - for none), plus the word relay for a client that sends for other\n"
        "networks (the gateway, `maillage dlq replay`). The network id is stamped as the\n"
        "source of their events. Re-read when it changes (new connections). See SECURITY.md."),
    BOOL("broker", "allow_insecure_remote", "false",
         "Allow endpoints beyond loopback without CURVE (anyone who can connect may emit\n"
         "in any network's name and read the bus); logged as a warning at start."),
    INT("broker", "rate_limit_per_s", "0", 0, 10000000,
        "Events accepted per second and per source (token bucket); beyond it they are\n"
        "rejected with the reason \"rate limit: ...\", other sources unaffected (the\n"
        "matcher sends its own again after a backoff). 0 = no limit."),
    INT("broker", "rate_limit_burst", "0", 0, 10000000,
        "Events a source may send at once above its rate; 0 = rate_limit_per_s."),

    STR("curve", "client_secret_key_file", "",
        "This program's CurveZMQ secret key, to connect to a broker that has\n"
        "[broker] curve_secret_key_file; not readable by group or others. Empty = no CURVE."),
    STR("curve", "client_public_key_file", "",
        "Its public key (checked against the secret; derived from it when empty)."),
    STR("curve", "server_public_key_file", "", "The broker's public key (NAME.pub from `maillage keygen`)."),

    DBL("matcher", "weight_distance", "0.25", 0, 100, "Weight of the distance in a match's score."),
    DBL("matcher", "weight_keywords", "0.25", 0, 100,
        "Weight of the shared keywords (tags, titles, descriptions, folded)."),
    DBL("matcher", "weight_sector", "0.10", 0, 100, "Weight of the NAF affinity of the two structures."),
    DBL("matcher", "weight_intercooperation", "0.10", 0, 100, "Weight of \"both structures of the ESS\"."),
    DBL("matcher", "weight_freshness", "0.10", 0, 100, "Weight of the offer's freshness."),
    DBL("matcher", "weight_feedback", "0.10", 0, 100,
        "Weight of the offer's past answers (\"mise en relation faite\" / \"pas pertinent\")."),
    DBL("matcher", "weight_fairness", "0.10", 0, 100,
        "Weight of fairness: providers proposed many times recently go down."),
    DBL("matcher", "threshold", "0.35", 0, 1, "Minimum score (0..1) for a pair to be proposed (match.found)."),
    DBL("matcher", "material_change", "0.05", 0, 1,
        "A proposed pair whose score moves by at least this much gets a new revision; it stays proposed until "
        "its score falls this much below the threshold (so it must be below the threshold)."),
    INT("matcher", "fairness_window_days", "30", 1, 3650,
        "Proposals of a provider counted over this many days for the fairness component."),
    INT("matcher", "max_candidates", "20", 1, 1000,
        "Most candidates scored per new or updated need or offer (nearest first)."),
    INT("matcher", "outbox_max", "10000", 10, 10000000,
        "Most events of the matcher waiting for the broker's ack (mg:matcher:outbox); beyond, it pauses "
        "until half have been acknowledged, so that a broker down while the matcher works through a "
        "backlog does not grow the outbox without bound."),
    INT("matcher", "max_proposals", "10", 1, 10000,
        "A need gets new proposals only from its best candidates, up to this rank\n"
        "(proposed pairs keep their revisions until they no longer qualify)."),
    INT("matcher", "search_max_km", "300", 1, 20000,
        "Search radius for a need without a radius (radius_km = 0: no limit)."),
    INT("matcher", "collective_min_structures", "3", 0, 100000,
        "Distinct structures of one EPCI with open needs of one category that make a\n"
        "collective need (collective_need.detected); 0 turns the detection off."),
    INT("matcher", "collective_window_days", "90", 1, 3650,
        "Only needs reported within this many days count towards a collective need."),
    INT("matcher", "collective_distance_km", "0", 0, 1000,
        "Also group by distance: collective_min_structures structures with open needs of\n"
        "one category within this many km of the commune of the need that forms the group\n"
        "make a collective need, across EPCIs (0 = by EPCI only)."),
    INT("matcher", "expiry_interval_s", "60", 1, 86400,
        "How often expired needs and offers are closed (need.closed / offer.withdrawn,\n"
        "reason EXPIRED)."),
    INT("matcher", "closed_retention_days", "365", 0, 36500,
        "The match records of a need or offer closed this many days ago are deleted:\n"
        "its proposals' records, explanations, match ids and staff feedback (its closed\n"
        "record stays, so it never reopens). 0 keeps them forever."),
    INT("matcher", "instance", "0", 0, 1023,
        "This instance's number: its consumer (checkpoint) is \"matcher\" for 0 and\n"
        "\"matcher-<instance>\" otherwise. Below instances when instances > 1."),
    INT("matcher", "instances", "1", 1, 1024,
        "Instances sharing the matching work by hash(need_id) % instances. With 1, each\n"
        "instance (give them distinct numbers) matches everything: deterministic ids and\n"
        "the shared match records keep each match once. Running matchers check each\n"
        "other (mg:matcher:live): one with other instances, two with one number, or a\n"
        "share no running matcher handles, is logged as an error or warning."),

    STR("data", "communes_file", MAILLAGE_DATADIR "/communes-normandie.csv",
        "Commune table (INSEE code, name, department, EPCI, coordinates). Commune codes\n"
        "of events must be in it."),
    STR("data", "words_file", "/usr/share/dict/french",
        "French word list (one word per line; Debian's wfrench): the matcher's explanations\n"
        "spell with their accents the common words the texts give plain (\"comptabilite\").\n"
        "Empty: none. A missing file is logged and skipped."),

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

    OPEN("networks",
         "The networks' names as staff read them: one \"id = name\" line each, such as\n"
         "\"urscop-normandie = URSCOP Normandie\" (ids with a colon cannot be named here).\n"
         "Without a line, a network goes by its id; in notifications, by the name of the\n"
         "member structure of that id first, when there is one."),

    STR("notifier", "templates_dir", MAILLAGE_DATADIR "/templates",
        "Directory of the French message templates, one file per notification kind\n"
        "(match.tpl, collective_need.tpl, ...; see config/templates/README.md)."),
    STR("notifier", "staff_url", "http://127.0.0.1:8080/",
        "The staff web page as staff reach it; every message links to it. On loopback\n"
        "(the default) the links in e-mails and chat messages open only on this machine:\n"
        "logged as a warning at start when a staff member receives either."),
    STR("notifier", "default_staff", "accueil",
        "Staff id receiving what no staff member's scope covers (never into silence).\n"
        "Its inbox is written even if no such staff member is declared."),
    INT("notifier", "unanswered_days", "14", 1, 3650,
        "A need still without any match after this many days is notified once\n"
        "(\"besoin sans réponse\")."),
    INT("notifier", "unanswered_check_s", "300", 1, 86400, "How often needs without an answer are looked for."),
    INT("notifier", "retry_for_s", "259200", 60, 2592000,
        "An e-mail or a webhook that fails (refused, timeout, HTTP 5xx/429, SMTP 4xx) is tried\n"
        "again for this long after it was queued, then marked failed; the default (3 days)\n"
        "outlasts a receiver down over a weekend. Keep it below retention_days."),
    INT("notifier", "max_attempts", "0", 0, 100000,
        "Attempts to deliver an e-mail or a webhook before it is marked failed, at most;\n"
        "0 for no limit but retry_for_s."),
    INT("notifier", "retry_base_ms", "1000", 1, 3600000,
        "First retry delay; doubled at each attempt (with +-25 % jitter), up to retry_max_ms."),
    INT("notifier", "retry_max_ms", "3600000", 1, 86400000, "Longest delay between two attempts."),
    INT("notifier", "send_timeout_ms", "10000", 100, 600000,
        "Timeout of one e-mail or webhook attempt; a slow server only delays its own messages."),
    INT("notifier", "max_in_flight", "64", 1, 10000, "E-mails and webhooks being sent at once, at most."),
    STR("notifier", "chat_format", "auto",
        "How webhook messages are written: markdown (Mattermost, Rocket.Chat...), slack\n"
        "(Slack's mrkdwn: it shows Markdown's escapes and headings as they are), or auto:\n"
        "slack for a webhook on hooks.slack.com, markdown for any other."),
    STR("notifier", "smtp_url", "smtp://127.0.0.1:25", "SMTP server: smtp://HOST:PORT or smtps://HOST:PORT."),
    BOOL("notifier", "smtp_starttls", "false", "Require STARTTLS on an smtp:// server."),
    STR("notifier", "smtp_user", "",
        "SMTP user name; empty for no authentication. Refused on an smtp:// server other than\n"
        "this machine without smtp_starttls (the password would travel in clear)."),
    STR("notifier", "smtp_password_file", "",
        "File holding the SMTP password on its first line; not readable or writable by\n"
        "group or others (refused at start)."),
    STR("notifier", "mail_from", "Maillage CRESS Normandie <maillage@localhost>", "From: of the e-mails."),
    INT("notifier", "retention_days", "90", 1, 3650,
        "Notification records (and so their idempotency keys) are kept this long; keep it\n"
        "above the journal's retention so that a replay never notifies twice."),
    INT("notifier", "inbox_max", "1000", 10, 1000000, "Entries kept per staff inbox (the oldest are dropped)."),
    INT("notifier", "staff_refresh_ms", "1000", 50, 600000,
        "How often the staff list is read again from Redis (changes by `maillage staff`)."),

    STR("gateway", "listen", "127.0.0.1:8080",
        "HTTP address of maillage-gateway, HOST:PORT. A host beyond loopback is refused\n"
        "unless allow_plain_http_remote is set."),
    BOOL("gateway", "allow_plain_http_remote", "false",
         "Allow listen beyond loopback. Tokens then travel in clear: put a TLS proxy in\n"
         "front and listen on loopback instead; logged as a warning at start."),
    STR("gateway", "staff_network", "cress",
        "Source network stamped on the events the gateway emits for staff (match.feedback)."),
    INT("gateway", "max_body_bytes", "1048576", 1024, 268435456,
        "Largest request body; bigger ones are answered 413."),
    INT("gateway", "max_batch_events", "1000", 1, 1000000,
        "Most events in one POST /v1/events (array or NDJSON); more are answered 413."),
    INT("gateway", "rate_limit_per_s", "500", 0, 10000000,
        "Events accepted per second and per network (token bucket); beyond it 429 with\n"
        "Retry-After, other networks unaffected. 0 = no limit."),
    INT("gateway", "rate_burst", "1000", 1, 10000000, "Events a network may send at once above its rate."),
    INT("gateway", "ack_timeout_ms", "5000", 10, 600000,
        "Without the broker's answer by then, 503 with Retry-After and the event ids (a retry\n"
        "with the same ids is safe)."),
    INT("gateway", "max_pending", "20000", 1, 10000000,
        "More events than this waiting for the broker: new ones are answered 503 at once."),
    INT("gateway", "token_cache_s", "30", 0, 86400,
        "How long a token read from Redis is trusted; revocations are pushed at once\n"
        "(mg:tokens:revoked), this bounds a missed push. 0 = read Redis on every request."),
    INT("gateway", "stream_heartbeat_s", "15", 1, 3600,
        "Interval of the comment line sent on idle live streams (SSE). A client that\n"
        "acknowledges nothing for two intervals (gone without closing) is disconnected."),
    INT("gateway", "stream_max_clients", "256", 0, 100000, "Live streams (GET /v1/stream) at once; more are answered 503."),
    INT("gateway", "stream_max_per_staff", "8", 1, 100000,
        "Live streams one staff member may hold at once (tabs, devices); more are answered\n"
        "429, so that one member cannot take every stream."),
    BOOL("gateway", "cookie_secure", "false", "Mark the session cookie Secure (set it when a TLS proxy is in front)."),
    STR("gateway", "web_root", "",
        "Empty: the staff page embedded at build time. A directory: serve the page's files\n"
        "from it instead (for editing web/ without rebuilding)."),

    STR("staff.*", "name", "",
        "A staff member (chargé·e de mission) per [staff.<id>] section; written into\n"
        "Redis (mg:staff:<id>, origin config) at each notifier start, except the ids\n"
        "added, edited or removed with `maillage staff` (see `maillage staff --help`).\n"
        "Full name, as shown in messages."),
    STR("staff.*", "email", "", "E-mail address (channel email)."),
    STR("staff.*", "webhook", "", "Incoming webhook URL of a chat: Mattermost, Slack... (channel webhook)."),
    STR("staff.*", "departments", "", "Departments followed, comma-separated (\"14,50\"); empty = all."),
    STR("staff.*", "categories", "", "Categories followed, comma-separated codes (\"locaux,emploi_partage\"); empty = all."),
    STR("staff.*", "networks", "", "Networks followed, comma-separated ids; empty = all."),
    DBL("staff.*", "min_score", "0", 0, 1,
        "Matches scoring below this are not sent to this person (0.4 is the \"40 %\"\n"
        "that `maillage staff show` prints)."),
    STR("staff.*", "channels", "inbox", "Channels, comma-separated among inbox, email, webhook."),
    STR("staff.*", "mode", "immediate",
        "immediate, or digest: e-mails and webhooks gathered in one daily message\n"
        "(the inbox always gets each item at once)."),
    INT("staff.*", "digest_hour", "8", 0, 23, "Hour of the daily digest, Europe/Paris time."),
    INT("staff.*", "quiet_start", "0", 0, 23,
        "Quiet hours, Europe/Paris: immediate e-mails and webhooks from quiet_start:00\n"
        "are held until quiet_end:00 (may span midnight; equal = no quiet hours)."),
    INT("staff.*", "quiet_end", "0", 0, 23, "End of the quiet hours (see quiet_start)."),

    {NULL, NULL, MG_CONFIG_STRING, NULL, 0, 0, NULL},
};
