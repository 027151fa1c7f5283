/* notifier_config.c -- the notifier's start-up checks of its configuration,
 * shared with `maillage config check`; see notifier_config.h. */
#include "maillage/notifier_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "maillage/envelope.h"
#include "maillage/log.h"
#include "maillage/mem.h"
#include "maillage/outbound.h"
#include "maillage/staff.h"

const char *const mg_notifier_kind_files[MG_NOTIFIER_KINDS] = {
    "match",           "collective_need", "cooperation_proposed", "cooperation_answered", "member_joined",
    "unanswered_need", "digest"};

/* The placeholders each template may use (beyond the common ones). */
static const char *const s_kind_vars[MG_NOTIFIER_KINDS][16] = {
    {"need_title", "need_structure", "need_commune", "offer_title", "offer_structure", "offer_commune",
     "category", "department", "score", "distance", "distance_km", "rank", "explanation", NULL},
    {"category", "territory_name", "of_territory", "at_territory", "department", "count", "structures",
     "explanation", "revision", NULL},
    {"from_structure", "to_whom", "addressed_to", "cooperation_kind", "title", "description", "category",
     "department", NULL},
    {"structure", "answer", "answered", "comment", "title", "from_structure", "department", "category", NULL},
    {"structure", "family", "network", "to_network", "commune", "department", "description", NULL},
    {"need_title", "need_structure", "category", "commune", "department", "days", "duration", "reported_on",
     NULL},
    {"count", "opportunities", "date", "items_text", "items_html", NULL},
};

/* The names of a digest's [item_text] and [item_html], which render one
 * item each: these and no other. */
static const char *const s_digest_item_vars[] = {"item_title",      "item_summary", "item_score",
                                                 "item_score_note", "item_link",    NULL};

/* "FILE:LINE" of a key, to begin a message (a `where` buffer in scope). */
#define S_WHERE(section, key) mg_config_where(cfg, section, key, where, sizeof where)

/* The SMTP settings: an smtp:// or smtps:// URL, and never a password in
 * clear to another machine (libcurl sends AUTH on a plain connection when
 * the server offers it). */
static int s_check_smtp(const mg_config_t *cfg, char *err, size_t errlen) {
    char where[512];
    const char *url = mg_config_str(cfg, "notifier", "smtp_url");
    int tls = strncasecmp(url, "smtps://", 8) == 0;
    if (!tls && strncasecmp(url, "smtp://", 7) != 0)
        return mg_fail(err, errlen,
                       "%s: [notifier] smtp_url: \"%s\" is not smtp://HOST:PORT nor smtps://HOST:PORT",
                       S_WHERE("notifier", "smtp_url"), url);
    if (*mg_config_str(cfg, "notifier", "smtp_user") && !tls &&
        !mg_config_bool(cfg, "notifier", "smtp_starttls") && !mg_config_authority_is_loopback(url + 7))
        return mg_fail(
            err, errlen,
            "%s: [notifier] smtp_user: the SMTP password would travel in clear to %s; use smtps:// or "
            "smtp_starttls = true",
            S_WHERE("notifier", "smtp_user"), url);
    return 0;
}

/* One [staff.*] section: what the schema cannot check alone. */
static int s_check_staff_section(const mg_config_t *cfg, const char *section, const mg_taxonomy_t *tax,
                                 const mg_communes_t *communes, char *err, size_t errlen) {
    char where[512];
    static const char *const scopes[] = {"departments", "categories"};
    for (size_t k = 0; k < 2; k++) {
        char bad[128];
        if (mg_staff_scope_unknown(scopes[k], mg_config_str(cfg, section, scopes[k]), tax, communes, bad,
                                   sizeof bad))
            return mg_fail(err, errlen, "%s: [%s] %s: \"%s\" is %s (its member would be told nothing)",
                           S_WHERE(section, scopes[k]), section, scopes[k], bad,
                           k ? "no category of [categories]" : "no department of the commune table");
    }
    const char *mode = mg_config_str(cfg, section, "mode");
    if (strcmp(mode, "immediate") != 0 && strcmp(mode, "digest") != 0)
        return mg_fail(err, errlen, "%s: [%s] mode: expected immediate or digest, got \"%s\"",
                       S_WHERE(section, "mode"), section, mode);
    size_t len;
    for (const char *t, *p = mg_config_str(cfg, section, "channels"); (t = mg_staff_list_next(&p, &len));) {
        char *c = mg_strndup(t, len);
        const char *need = strcmp(c, "email") == 0 ? "email" : strcmp(c, "webhook") == 0 ? "webhook" : NULL;
        int rc = 0;
        if (!need && strcmp(c, "inbox") != 0)
            rc = mg_fail(err, errlen, "%s: [%s] channels: unknown channel \"%s\" (inbox, email, webhook)",
                         S_WHERE(section, "channels"), section, c);
        else if (need && !*mg_config_str(cfg, section, need))
            rc = mg_fail(err, errlen, "%s: [%s] channels: %s needs %s = ...", S_WHERE(section, "channels"),
                         section, c, need);
        free(c);
        if (rc != 0) return -1;
    }
    /* Checked here, not at each send (where every message would fail). */
    const char *email = mg_config_str(cfg, section, "email"), *hook = mg_config_str(cfg, section, "webhook");
    if (*email && !mg_outbound_mailbox_is_valid(email))
        return mg_fail(err, errlen, "%s: [%s] email: \"%s\" is not one e-mail address",
                       S_WHERE(section, "email"), section, email);
    if (*hook && !mg_outbound_webhook_url_is_valid(hook))
        return mg_fail(err, errlen, "%s: [%s] webhook: \"%s\" is not an http(s) URL",
                       S_WHERE(section, "webhook"), section, hook);
    return 0;
}

int mg_notifier_config_check(const mg_config_t *cfg, const mg_taxonomy_t *tax, const mg_communes_t *communes,
                             char *err, size_t errlen) {
    char where[512];
    if (!mg_id_is_valid(mg_config_str(cfg, "notifier", "default_staff")))
        return mg_fail(err, errlen, "%s: [notifier] default_staff: not a valid id",
                       S_WHERE("notifier", "default_staff"));
    long long retry_for_s = mg_config_int(cfg, "notifier", "retry_for_s");
    if (retry_for_s >= mg_config_int(cfg, "notifier", "retention_days") * 86400)
        return mg_fail(err, errlen,
                       "%s: [notifier] retry_for_s: %lld s outlasts the records it retries (retention_days)",
                       S_WHERE("notifier", "retry_for_s"), retry_for_s);
    if (s_check_smtp(cfg, err, errlen) != 0) return -1;
    const char *chat = mg_config_str(cfg, "notifier", "chat_format");
    if (strcmp(chat, "auto") != 0 && strcmp(chat, "markdown") != 0 && strcmp(chat, "slack") != 0)
        return mg_fail(err, errlen, "%s: [notifier] chat_format: \"%s\" is not auto, markdown nor slack",
                       S_WHERE("notifier", "chat_format"), chat);
    const char *from = mg_config_str(cfg, "notifier", "mail_from");
    if (!mg_outbound_mailbox_is_valid(from))
        return mg_fail(err, errlen, "%s: [notifier] mail_from: \"%s\" is not one e-mail address",
                       S_WHERE("notifier", "mail_from"), from);
    for (size_t i = 0; i < mg_config_instance_count(cfg, "staff.*"); i++)
        if (s_check_staff_section(cfg, mg_config_instance_section(cfg, "staff.*", i), tax, communes, err,
                                  errlen) != 0)
            return -1;
    return 0;
}

int mg_notifier_templates_load(const mg_config_t *cfg, mg_template_file_t templates[MG_NOTIFIER_KINDS],
                               char *err, size_t errlen) {
    const char *dir = mg_config_str(cfg, "notifier", "templates_dir");
    char why[512];
    memset(templates, 0, MG_NOTIFIER_KINDS * sizeof(*templates));
    for (int k = 0; k < MG_NOTIFIER_KINDS; k++) {
        char file[1024];
        snprintf(file, sizeof(file), "%s/%s.tpl", dir, mg_notifier_kind_files[k]);
        if (mg_template_file_load(file, &templates[k], why, sizeof(why)) != 0) {
            mg_fail(err, errlen, "%s", why);
            goto err;
        }
        const mg_template_file_t *t = &templates[k];
        int digest = k == MG_NOTIFIER_KIND_DIGEST;
        if (!t->part[MG_TEMPLATE_SUBJECT] || !t->part[MG_TEMPLATE_TEXT] ||
            (digest && !t->part[MG_TEMPLATE_ITEM_TEXT]) ||
            (digest && t->part[MG_TEMPLATE_HTML] && !t->part[MG_TEMPLATE_ITEM_HTML])) {
            mg_fail(err, errlen, "%s: [subject] and [text] are required%s", file,
                    digest
                        ? ", and [item_text] (with [item_html] when there is [html]): each item of the digest"
                        : "");
            goto err;
        }
        const char *known[40];
        size_t nk = 0;
        known[nk++] = "staff_name";
        known[nk++] = "why";
        known[nk++] = "link";
        for (size_t v = 0; s_kind_vars[k][v]; v++)
            known[nk++] = s_kind_vars[k][v];
        known[nk] = NULL;
        for (int p = 0; p < MG_TEMPLATE_PARTS; p++) {
            int item = p == MG_TEMPLATE_ITEM_TEXT || p == MG_TEMPLATE_ITEM_HTML;
            if (!t->part[p]) continue;
            if (item && !digest) {
                mg_fail(err, errlen, "%s:%d: [%s] is a part of digest.tpl only", file, t->line[p] - 1,
                        p == MG_TEMPLATE_ITEM_TEXT ? "item_text" : "item_html");
                goto err;
            }
            char bad[80];
            int line = 1;
            int rc =
                mg_template_check(t->part[p], item ? s_digest_item_vars : known, bad, sizeof(bad), &line);
            if (rc == -1) {
                const char *hint = item ? " (an item's part knows item_title, item_summary, item_score, "
                                          "item_score_note and item_link)"
                                   : digest && strncmp(bad, "item_", 5) == 0
                                       ? " (item_* names go in [item_text] and [item_html])"
                                       : "";
                mg_fail(err, errlen, "%s:%d: unknown placeholder {{%s}}%s", file, t->line[p] + line - 1, bad,
                        hint);
                goto err;
            }
            if (rc == -2) {
                mg_fail(err, errlen,
                        "%s:%d: \"%s\" is no placeholder ({{name}}: lowercase letters, digits and _, closed "
                        "by }})",
                        file, t->line[p] + line - 1, bad);
                goto err;
            }
        }
    }
    return 0;
err:
    for (int k = 0; k < MG_NOTIFIER_KINDS; k++)
        mg_template_file_clear(&templates[k]);
    return -1;
}
