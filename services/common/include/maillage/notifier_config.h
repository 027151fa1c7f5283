/* notifier_config.h -- what maillage-notifier checks of its configuration
 * at start-up beyond the schema (config.h), shared with `maillage config
 * check`, so that a file the check calls OK is one the notifier starts with:
 * [notifier] settings that depend on each other, the [staff.*] sections
 * (a channel needs its address) and the message templates of
 * templates_dir. (Its secret file is read with mg_config_read_secret().)
 *
 * Pure but for reading files; any thread. */
#ifndef MAILLAGE_NOTIFIER_CONFIG_H
#define MAILLAGE_NOTIFIER_CONFIG_H

#include <stddef.h>

#include "maillage/communes.h"
#include "maillage/config.h"
#include "maillage/taxonomy.h"
#include "maillage/template.h"

/* The kinds of notification, each with its template file
 * "<templates_dir>/<mg_notifier_kind_files[k]>.tpl". */
typedef enum {
    MG_NOTIFIER_KIND_MATCH,
    MG_NOTIFIER_KIND_COLLECTIVE,
    MG_NOTIFIER_KIND_COOP_PROPOSED,
    MG_NOTIFIER_KIND_COOP_ANSWERED,
    MG_NOTIFIER_KIND_MEMBER,
    MG_NOTIFIER_KIND_UNANSWERED,
    MG_NOTIFIER_KIND_DIGEST,
    MG_NOTIFIER_KINDS
} mg_notifier_kind_t;

extern const char *const mg_notifier_kind_files[MG_NOTIFIER_KINDS];

/* Check the [notifier] settings that the schema cannot check one by one
 * (default_staff an id, retry_for_s within retention_days, the SMTP URL and
 * that no SMTP password travels in clear, mail_from one address, chat_format
 * auto, markdown or slack) and each
 * [staff.*] section (departments of `communes` and categories of `tax`,
 * mg_staff_scope_unknown(), with the tables the caller loaded from `cfg`;
 * mode; channels known and each with its address; email and webhook well
 * formed). Files are not read. Returns 0, or -1 with the reason in `err`,
 * which begins with the FILE:LINE of the key at fault (mg_config_where()). */
int mg_notifier_config_check(const mg_config_t *cfg, const mg_taxonomy_t *tax, const mg_communes_t *communes,
                             char *err, size_t errlen);

/* Load the template of every kind from [notifier] templates_dir into
 * `templates` and check them: [subject] and [text] present, no unknown
 * placeholder. Returns 0; or -1 with the reason in `err` and `templates`
 * left empty. Clear each with mg_template_file_clear(). */
int mg_notifier_templates_load(const mg_config_t *cfg, mg_template_file_t templates[MG_NOTIFIER_KINDS],
                               char *err, size_t errlen);

#endif
