/* config.h -- the one INI-style configuration file of every Maillage program.
 *
 * Syntax: "[section]" lines, "key = value" lines, comments starting with '#'
 * or ';' on their own line, blank lines. Values are trimmed; no quoting.
 * Every known key has a default (see config_schema.c, and config/maillage.conf
 * which documents each one), so an empty or absent file is a valid config.
 * An unknown section or key, a value of the wrong type, or a repeated key is
 * an error reported as "FILE:LINE: message". Sections declared "open" in the
 * schema (like [categories]) accept any key; their entries are enumerated.
 * A templated section ("staff.*") stands for any number of sections
 * ([staff.alice], [staff.bob]) with the same keys.
 *
 * Loaded once at start-up (and again on SIGHUP); read-only afterwards, so any
 * thread may read it. */
#ifndef MAILLAGE_CONFIG_H
#define MAILLAGE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef enum {
    MG_CONFIG_STRING,
    MG_CONFIG_INT,    /* decimal integer, within [min, max] */
    MG_CONFIG_DOUBLE, /* decimal number, within [min, max] */
    MG_CONFIG_BOOL,   /* true/false, yes/no, on/off, 1/0 */
} mg_config_type_t;

/* One known key. `section` NULL terminates the schema table. */
typedef struct {
    const char *section;
    const char *key; /* NULL for an open section's marker row */
    mg_config_type_t type;
    const char *default_value;
    double min, max; /* for INT and DOUBLE */
    const char *doc; /* one or a few lines, English, for config/maillage.conf */
} mg_config_key_t;

/* The schema of the whole system, shared by every program. */
extern const mg_config_key_t mg_config_schema[];

typedef struct mg_config mg_config_t;

/* Load `path`, or only the defaults when `path` is NULL.
 * On error returns NULL and writes one line ("FILE:LINE: reason") to `err`.
 * Caller owns the result and destroys it with mg_config_destroy(). */
mg_config_t *mg_config_load(const char *path, char *err, size_t errlen);

/* Like mg_config_load(), from the `len` bytes at `data` (need not be
 * NUL-terminated); `name` stands for the file name in error messages
 * ("(config)" if NULL) and mg_config_path() returns NULL. For tests and
 * fuzzing. Caller owns the result. */
mg_config_t *mg_config_load_buffer(const char *name, const char *data, size_t len, char *err, size_t errlen);

/* Frees the config; accepts NULL and sets *cfg_p to NULL. */
void mg_config_destroy(mg_config_t **cfg_p);

/* Typed accessors. The (section, key) pair must be in the schema with that
 * type: asking for an unknown key is a programmer error (assert). Strings are
 * borrowed from the config and valid until it is destroyed. */
const char *mg_config_str(const mg_config_t *cfg, const char *section, const char *key);
long long mg_config_int(const mg_config_t *cfg, const char *section, const char *key);
double mg_config_double(const mg_config_t *cfg, const char *section, const char *key);
bool mg_config_bool(const mg_config_t *cfg, const char *section, const char *key);

/* Where the value of a closed key comes from, to begin an error message:
 * "FILE:LINE" when the file sets it, "FILE" when it keeps its default
 * ("(defaults)" without a file). Written to `out`, which is returned. */
const char *mg_config_where(const mg_config_t *cfg, const char *section, const char *key, char *out,
                            size_t outlen);

/* Entries of an open section, in file order (defaults first if the file does
 * not set the section at all). Returns the count; key/value are borrowed. */
size_t mg_config_open_count(const mg_config_t *cfg, const char *section);
void mg_config_open_entry(const mg_config_t *cfg, const char *section, size_t index, const char **key,
                          const char **value);

/* Templated sections. A schema section named "prefix.*" ("staff.*") stands
 * for any number of sections "[prefix.ID]" in the file (ID of
 * [A-Za-z0-9_-]{1,64}), each checked against the template's keys and typed
 * like a closed section; read their values with the typed accessors and the
 * full section name: mg_config_str(cfg, "staff.alice", "email"). Asking the
 * template itself ("staff.*") gives the defaults.
 * mg_config_instance_count() is the number of such sections of `templ` in
 * the file; mg_config_instance_section() the full name of the index-th, in
 * file order (borrowed; index out of range is a programmer error). */
size_t mg_config_instance_count(const mg_config_t *cfg, const char *templ);
const char *mg_config_instance_section(const mg_config_t *cfg, const char *templ, size_t index);

/* Whether `host` (a configured host name or address, without port; an IPv6
 * address with or without its brackets) is this machine: localhost, an
 * address of 127.0.0.0/8 or ::1 (not a name that merely starts with
 * "127."). */
bool mg_config_host_is_loopback(const char *host);

/* The same for the host of `authority`: "host[:port]" and anything after
 * it ("/path", "?query"), an IPv6 address in brackets, as in a URL after
 * "scheme://" or a ZeroMQ tcp:// endpoint. */
bool mg_config_authority_is_loopback(const char *authority);

/* The first line of secret file `path` (a password), refused when the file
 * is not a regular file, is accessible by group or others (a password anyone
 * on the machine can read protects nothing) or has an empty first line.
 * `what` names the setting in the messages ("[redis] password_file").
 * Caller owns the result (explicit_bzero it before free); NULL with the
 * reason in `err`. */
char *mg_config_read_secret(const char *what, const char *path, char *err, size_t errlen);

/* The path the config was loaded from, or NULL for defaults. Borrowed. */
const char *mg_config_path(const mg_config_t *cfg);

/* Write the documented default configuration (every key, commented with its
 * doc) to `out`. config/maillage.conf is this output; a test keeps them equal. */
void mg_config_write_defaults(FILE *out);

#endif
