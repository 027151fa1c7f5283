/* config.c -- the INI-style configuration file, checked against one schema.
 *
 * Every value is typed and range-checked at load time, so that a daemon finds
 * out about a typo in its configuration when it starts (with FILE:LINE), not
 * hours later when the key is first used. The schema table lives in
 * config_schema.c; a config holds one value per closed key (its default
 * unless the file sets it) and, per open section, its entries in file order. */
#include "maillage/config.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "maillage/envelope.h"
#include "maillage/log.h"
#include "maillage/mem.h"

/* A configuration file is a few kilobytes; anything this big is a mistake. */
#define S_MAX_FILE_BYTES (1024 * 1024)

typedef struct {
    char *key;
    char *value;
    size_t line; /* 0 for a default */
} s_entry_t;

typedef struct {
    const char *section; /* borrowed from the schema */
    s_entry_t *entries;
    size_t count, cap;
    int set_by_file;
} s_open_t;

/* One section of a templated schema section ("[staff.alice]" of "staff.*"):
 * its own value per schema row of the template (NULL for other rows). */
typedef struct {
    char *section;     /* "staff.alice" */
    const char *templ; /* "staff.*", borrowed from the schema */
    char **values;     /* per schema row */
    size_t *set_line;  /* per schema row */
} s_instance_t;

struct mg_config {
    char *path;
    char *name; /* the file's name in messages: its path, or a buffer's name; NULL for the defaults */
    s_instance_t *instances; /* templated sections, in file order */
    size_t instance_count, instance_cap;
    size_t rows;      /* schema rows, without the terminator */
    char **values;    /* per schema row; NULL for open sections' rows */
    size_t *set_line; /* per schema row: line that set it, 0 if default */
    s_open_t *opens;
    size_t open_count;
};

static size_t s_schema_rows(void) {
    size_t n = 0;
    while (mg_config_schema[n].section)
        n++;
    return n;
}

static void s_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void s_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static s_open_t *s_open_find(const mg_config_t *cfg, const char *section) {
    for (size_t i = 0; i < cfg->open_count; i++) {
        if (strcmp(cfg->opens[i].section, section) == 0) return &cfg->opens[i];
    }
    return NULL;
}

static int s_section_is_open(const char *section) {
    for (size_t i = 0; mg_config_schema[i].section; i++) {
        if (!mg_config_schema[i].key && strcmp(mg_config_schema[i].section, section) == 0) return 1;
    }
    return 0;
}

/* 1 if `section` is the name of a template ("staff.*"). */
static int s_is_template(const char *section) {
    size_t n = strlen(section);
    return n >= 2 && section[n - 2] == '.' && section[n - 1] == '*';
}

/* The template ("staff.*", borrowed from the schema) that `section`
 * ("staff.alice") is an instance of, or NULL. The id after the prefix is
 * [A-Za-z0-9_-]{1,64}. */
static const char *s_template_of(const char *section) {
    for (size_t i = 0; mg_config_schema[i].section; i++) {
        const char *t = mg_config_schema[i].section;
        if (!s_is_template(t)) continue;
        size_t plen = strlen(t) - 1; /* "staff." */
        if (strncmp(section, t, plen) != 0) continue;
        const char *id = section + plen;
        size_t idlen = strlen(id);
        if (idlen == 0 || idlen > 64) return NULL;
        for (const char *p = id; *p; p++) {
            char c = *p;
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                  c == '-'))
                return NULL;
        }
        return t;
    }
    return NULL;
}

static s_instance_t *s_instance_find(const mg_config_t *cfg, const char *section) {
    for (size_t i = 0; i < cfg->instance_count; i++) {
        if (strcmp(cfg->instances[i].section, section) == 0) return &cfg->instances[i];
    }
    return NULL;
}

/* The instance `section` of `templ`, created with the template's defaults
 * when first seen. */
static s_instance_t *s_instance_get(mg_config_t *cfg, const char *section, const char *templ) {
    s_instance_t *in = s_instance_find(cfg, section);
    if (in) return in;
    if (cfg->instance_count == cfg->instance_cap) {
        cfg->instance_cap = cfg->instance_cap ? cfg->instance_cap * 2 : 8;
        cfg->instances = mg_realloc(cfg->instances, cfg->instance_cap * sizeof *cfg->instances);
    }
    in = &cfg->instances[cfg->instance_count++];
    in->section = mg_strdup(section);
    in->templ = templ;
    in->values = mg_calloc(cfg->rows, sizeof *in->values);
    in->set_line = mg_calloc(cfg->rows, sizeof *in->set_line);
    for (size_t i = 0; i < cfg->rows; i++) {
        const mg_config_key_t *k = &mg_config_schema[i];
        if (k->key && strcmp(k->section, templ) == 0) in->values[i] = mg_strdup(k->default_value ? k->default_value : "");
    }
    return in;
}

static void s_instance_clear(s_instance_t *in, size_t rows) {
    for (size_t i = 0; i < rows; i++)
        free(in->values[i]);
    free(in->values);
    free(in->set_line);
    free(in->section);
}

static int s_section_is_known(const char *section) {
    for (size_t i = 0; mg_config_schema[i].section; i++) {
        if (strcmp(mg_config_schema[i].section, section) == 0) return 1;
    }
    return 0;
}

/* Schema row of a closed key, or -1. */
static long s_row_find(const char *section, const char *key) {
    for (size_t i = 0; mg_config_schema[i].section; i++) {
        const mg_config_key_t *k = &mg_config_schema[i];
        if (k->key && strcmp(k->section, section) == 0 && strcmp(k->key, key) == 0) return (long)i;
    }
    return -1;
}

static void s_open_add(s_open_t *open, const char *key, const char *value, size_t line) {
    if (open->count == open->cap) {
        open->cap = open->cap ? open->cap * 2 : 16;
        open->entries = mg_realloc(open->entries, open->cap * sizeof *open->entries);
    }
    open->entries[open->count].key = mg_strdup(key);
    open->entries[open->count].value = mg_strdup(value);
    open->entries[open->count].line = line;
    open->count++;
}

static void s_open_clear(s_open_t *open) {
    for (size_t i = 0; i < open->count; i++) {
        free(open->entries[i].key);
        free(open->entries[i].value);
    }
    open->count = 0;
}

static int s_parse_bool(const char *v, bool *out) {
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

static int s_parse_int(const char *v, long long *out) {
    if (!*v) return -1;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || *end || end == v || v[0] == ' ' || v[0] == '\t') return -1;
    *out = n;
    return 0;
}

static int s_parse_double(const char *v, double *out) {
    if (!*v) return -1;
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || *end || end == v || !isfinite(d) || v[0] == ' ' || v[0] == '\t') return -1;
    /* strtod also reads hex floats; a config file should not. */
    if (strpbrk(v, "xX")) return -1;
    *out = d;
    return 0;
}

/* Check `value` against the row's type and range; on error write a reason
 * (without the FILE:LINE prefix) into `why`. */
static int s_check_value(const mg_config_key_t *k, const char *section, const char *value, char *why,
                         size_t whylen) {
    switch (k->type) {
    case MG_CONFIG_STRING:
        return 0;
    case MG_CONFIG_INT: {
        long long n;
        if (s_parse_int(value, &n) < 0 || (double)n < k->min || (double)n > k->max) {
            s_err(why, whylen, "[%s] %s: expected an integer from %.0f to %.0f, got \"%s\"", section, k->key,
                  k->min, k->max, value);
            return -1;
        }
        return 0;
    }
    case MG_CONFIG_DOUBLE: {
        double d;
        if (s_parse_double(value, &d) < 0 || d < k->min || d > k->max) {
            s_err(why, whylen, "[%s] %s: expected a number from %g to %g, got \"%s\"", section, k->key,
                  k->min, k->max, value);
            return -1;
        }
        return 0;
    }
    case MG_CONFIG_BOOL: {
        bool b;
        if (s_parse_bool(value, &b) < 0) {
            s_err(why, whylen, "[%s] %s: expected true or false, got \"%s\"", section, k->key, value);
            return -1;
        }
        return 0;
    }
    }
    return -1;
}

static mg_config_t *s_new_with_defaults(char *err, size_t errlen) {
    mg_config_t *cfg = mg_calloc(1, sizeof *cfg);
    cfg->rows = s_schema_rows();
    cfg->values = mg_calloc(cfg->rows, sizeof *cfg->values);
    cfg->set_line = mg_calloc(cfg->rows, sizeof *cfg->set_line);
    cfg->opens = mg_calloc(cfg->rows, sizeof *cfg->opens);

    for (size_t i = 0; i < cfg->rows; i++) {
        const mg_config_key_t *k = &mg_config_schema[i];
        if (!k->key) {
            if (!s_open_find(cfg, k->section)) cfg->opens[cfg->open_count++].section = k->section;
            continue;
        }
        if (s_section_is_open(k->section)) {
            s_open_t *open = s_open_find(cfg, k->section);
            /* Rows of an open section must follow its marker (schema rule). */
            assert(open != NULL);
            if (open) s_open_add(open, k->key, k->default_value ? k->default_value : "", 0);
            continue;
        }
        char why[512];
        const char *def = k->default_value ? k->default_value : "";
        if (s_check_value(k, k->section, def, why, sizeof why) < 0) {
            s_err(err, errlen, "built-in default: %s", why);
            mg_config_destroy(&cfg);
            return NULL;
        }
        cfg->values[i] = mg_strdup(def);
    }
    return cfg;
}

static int s_is_key_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
}

static char *s_trim(char *s) {
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

/* Parse one line (NUL-terminated, no newline) into cfg. */
static int s_parse_line(mg_config_t *cfg, const char *name, size_t lineno, char *line, const char **section,
                        char *err, size_t errlen) {
    char *s = s_trim(line);
    if (*s == '\0' || *s == '#' || *s == ';') return 0;

    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            s_err(err, errlen, "%s:%zu: control character in line", name, lineno);
            return -1;
        }
    }
    if (!mg_utf8_is_valid(s, strlen(s))) {
        s_err(err, errlen, "%s:%zu: invalid UTF-8", name, lineno);
        return -1;
    }

    if (*s == '[') {
        char *close = strchr(s, ']');
        if (!close) {
            s_err(err, errlen, "%s:%zu: missing ']' in section header", name, lineno);
            return -1;
        }
        if (*s_trim(close + 1) != '\0') {
            s_err(err, errlen, "%s:%zu: unexpected text after section header", name, lineno);
            return -1;
        }
        *close = '\0';
        char *sec = s_trim(s + 1);
        if (!s_is_template(sec)) {
            const char *templ = s_template_of(sec);
            if (templ) {
                *section = s_instance_get(cfg, sec, templ)->section;
                return 0;
            }
        }
        if (!s_section_is_known(sec) || s_is_template(sec)) {
            s_err(err, errlen, "%s:%zu: unknown section [%s]", name, lineno, sec);
            return -1;
        }
        for (size_t i = 0; mg_config_schema[i].section; i++) {
            if (strcmp(mg_config_schema[i].section, sec) == 0) {
                *section = mg_config_schema[i].section;
                break;
            }
        }
        s_open_t *open = s_open_find(cfg, *section);
        if (open && !open->set_by_file) {
            /* The file defines this open section: it replaces the defaults. */
            s_open_clear(open);
            open->set_by_file = 1;
        }
        return 0;
    }

    char *eq = strchr(s, '=');
    if (!eq) {
        s_err(err, errlen, "%s:%zu: expected \"key = value\" or \"[section]\"", name, lineno);
        return -1;
    }
    *eq = '\0';
    char *key = s_trim(s);
    char *value = s_trim(eq + 1);
    if (*key == '\0') {
        s_err(err, errlen, "%s:%zu: missing key before '='", name, lineno);
        return -1;
    }
    for (const char *p = key; *p; p++) {
        if (!s_is_key_char(*p)) {
            s_err(err, errlen, "%s:%zu: invalid key \"%s\" (letters, digits, '_', '-', '.')", name, lineno,
                  key);
            return -1;
        }
    }
    if (!*section) {
        s_err(err, errlen, "%s:%zu: key \"%s\" outside any section", name, lineno, key);
        return -1;
    }

    s_open_t *open = s_open_find(cfg, *section);
    if (open) {
        for (size_t i = 0; i < open->count; i++) {
            if (strcmp(open->entries[i].key, key) == 0) {
                s_err(err, errlen, "%s:%zu: [%s] %s: repeated key (first set on line %zu)", name, lineno,
                      *section, key, open->entries[i].line);
                return -1;
            }
        }
        s_open_add(open, key, value, lineno);
        return 0;
    }

    s_instance_t *in = s_instance_find(cfg, *section);
    long row = s_row_find(in ? in->templ : *section, key);
    if (row < 0) {
        s_err(err, errlen, "%s:%zu: unknown key \"%s\" in section [%s]", name, lineno, key, *section);
        return -1;
    }
    char **values = in ? in->values : cfg->values;
    size_t *set_line = in ? in->set_line : cfg->set_line;
    if (set_line[row]) {
        s_err(err, errlen, "%s:%zu: [%s] %s: repeated key (first set on line %zu)", name, lineno, *section,
              key, set_line[row]);
        return -1;
    }
    char why[512];
    if (s_check_value(&mg_config_schema[row], *section, value, why, sizeof why) < 0) {
        s_err(err, errlen, "%s:%zu: %s", name, lineno, why);
        return -1;
    }
    free(values[row]);
    values[row] = mg_strdup(value);
    set_line[row] = lineno;
    return 0;
}

mg_config_t *mg_config_load_buffer(const char *name, const char *data, size_t len, char *err, size_t errlen) {
    if (!name) name = "(config)";
    mg_config_t *cfg = s_new_with_defaults(err, errlen);
    if (!cfg) return NULL;
    if (len > S_MAX_FILE_BYTES) {
        s_err(err, errlen, "%s: too large (%zu bytes, at most %d)", name, len, S_MAX_FILE_BYTES);
        goto err;
    }
    cfg->name = mg_strdup(name);
    const char *section = NULL;
    size_t lineno = 0;
    /* A UTF-8 byte order mark (left by Windows editors) is no part of line 1. */
    size_t pos = mg_utf8_bom_len(data, len);
    char *line = NULL;
    while (pos < len) {
        lineno++;
        const char *start = data + pos;
        const char *nl = memchr(start, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - start) : len - pos;
        pos += n + (nl ? 1 : 0);
        if (memchr(start, '\0', n)) {
            s_err(err, errlen, "%s:%zu: NUL byte in line", name, lineno);
            goto err;
        }
        if (n > 0 && start[n - 1] == '\r') n--; /* files edited on Windows */
        line = mg_strndup(start, n);
        int rc = s_parse_line(cfg, name, lineno, line, &section, err, errlen);
        free(line);
        if (rc < 0) goto err;
    }
    return cfg;

err:
    mg_config_destroy(&cfg);
    return NULL;
}

mg_config_t *mg_config_load(const char *path, char *err, size_t errlen) {
    if (!path) return s_new_with_defaults(err, errlen);

    FILE *f = fopen(path, "rb");
    if (!f) {
        s_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 8192;
            buf = mg_realloc(buf, cap);
        }
        errno = 0;
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) break;
        if (len > S_MAX_FILE_BYTES) break;
    }
    int read_error = ferror(f) ? (errno ? errno : EIO) : 0;
    fclose(f);
    if (read_error) {
        s_err(err, errlen, "%s: cannot read: %s", path, strerror(read_error)); /* a directory: EISDIR */
        free(buf);
        return NULL;
    }
    mg_config_t *cfg = mg_config_load_buffer(path, buf, len, err, errlen);
    free(buf);
    if (cfg) cfg->path = mg_strdup(path);
    return cfg;
}

void mg_config_destroy(mg_config_t **cfg_p) {
    if (!cfg_p || !*cfg_p) return;
    mg_config_t *cfg = *cfg_p;
    for (size_t i = 0; i < cfg->rows; i++)
        free(cfg->values[i]);
    for (size_t i = 0; i < cfg->open_count; i++) {
        s_open_clear(&cfg->opens[i]);
        free(cfg->opens[i].entries);
    }
    for (size_t i = 0; i < cfg->instance_count; i++)
        s_instance_clear(&cfg->instances[i], cfg->rows);
    free(cfg->instances);
    free(cfg->values);
    free(cfg->set_line);
    free(cfg->opens);
    free(cfg->path);
    free(cfg->name);
    free(cfg);
    *cfg_p = NULL;
}

/* The value of a closed key of the given type; anything else is a bug. */
/* The schema row of a key the program reads (asserted to be one), and in
 * `*in` the instance of a templated section it belongs to (NULL if none). */
static long s_key_row(const mg_config_t *cfg, const char *section, const char *key, const s_instance_t **in) {
    assert(cfg && section && key);
    *in = s_instance_find(cfg, section);
    long row = s_row_find(*in ? (*in)->templ : section, key);
    assert(row >= 0 && "unknown configuration key");
    return row;
}

static const char *s_value(const mg_config_t *cfg, const char *section, const char *key,
                           mg_config_type_t type) {
    const s_instance_t *in;
    long row = s_key_row(cfg, section, key, &in);
    assert(mg_config_schema[row].type == type && "configuration key of another type");
    char *const *values = in ? in->values : cfg->values;
    assert(values[row] && "key of an open section: use mg_config_open_entry");
    if (row < 0 || !values[row]) abort();
    (void)type;
    return values[row];
}

const char *mg_config_str(const mg_config_t *cfg, const char *section, const char *key) {
    return s_value(cfg, section, key, MG_CONFIG_STRING);
}

long long mg_config_int(const mg_config_t *cfg, const char *section, const char *key) {
    long long n = 0;
    s_parse_int(s_value(cfg, section, key, MG_CONFIG_INT), &n);
    return n;
}

double mg_config_double(const mg_config_t *cfg, const char *section, const char *key) {
    double d = 0;
    s_parse_double(s_value(cfg, section, key, MG_CONFIG_DOUBLE), &d);
    return d;
}

bool mg_config_bool(const mg_config_t *cfg, const char *section, const char *key) {
    bool b = false;
    s_parse_bool(s_value(cfg, section, key, MG_CONFIG_BOOL), &b);
    return b;
}

const char *mg_config_where(const mg_config_t *cfg, const char *section, const char *key, char *out,
                            size_t outlen) {
    const s_instance_t *in;
    long row = s_key_row(cfg, section, key, &in);
    size_t line = row >= 0 ? (in ? in->set_line : cfg->set_line)[row] : 0;
    const char *file = cfg->name ? cfg->name : "(defaults)";
    if (line)
        snprintf(out, outlen, "%s:%zu", file, line);
    else
        snprintf(out, outlen, "%s", file);
    return out;
}

size_t mg_config_open_count(const mg_config_t *cfg, const char *section) {
    s_open_t *open = s_open_find(cfg, section);
    assert(open && "not an open section");
    return open ? open->count : 0;
}

void mg_config_open_entry(const mg_config_t *cfg, const char *section, size_t index, const char **key,
                          const char **value) {
    s_open_t *open = s_open_find(cfg, section);
    assert(open && index < open->count);
    if (!open || index >= open->count) abort();
    if (key) *key = open->entries[index].key;
    if (value) *value = open->entries[index].value;
}

size_t mg_config_instance_count(const mg_config_t *cfg, const char *templ) {
    size_t n = 0;
    for (size_t i = 0; i < cfg->instance_count; i++)
        if (strcmp(cfg->instances[i].templ, templ) == 0) n++;
    return n;
}

const char *mg_config_instance_section(const mg_config_t *cfg, const char *templ, size_t index) {
    for (size_t i = 0; i < cfg->instance_count; i++) {
        if (strcmp(cfg->instances[i].templ, templ) != 0) continue;
        if (index-- == 0) return cfg->instances[i].section;
    }
    assert(0 && "instance index out of range");
    abort();
}

const char *mg_config_path(const mg_config_t *cfg) {
    return cfg->path;
}

/* ---- Documented defaults ------------------------------------------------ */

static void s_write_doc(FILE *out, const char *doc) {
    if (!doc) return;
    const char *p = doc;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        fprintf(out, "# %.*s\n", (int)n, p);
        p += n + (nl ? 1 : 0);
    }
}

/* The line saying what values `k` takes, for the numbers and booleans. */
static void s_write_type(FILE *out, const mg_config_key_t *k) {
    switch (k->type) {
    case MG_CONFIG_INT:
        fprintf(out, "# Integer from %.0f to %.0f.\n", k->min, k->max);
        break;
    case MG_CONFIG_DOUBLE:
        fprintf(out, "# Number from %g to %g.\n", k->min, k->max);
        break;
    case MG_CONFIG_BOOL:
        fprintf(out, "# true or false.\n");
        break;
    case MG_CONFIG_STRING:
        break;
    }
}

static void s_write_key(FILE *out, const mg_config_key_t *k) {
    const char *def = k->default_value ? k->default_value : "";
    s_write_doc(out, k->doc);
    s_write_type(out, k);
#ifdef MAILLAGE_DATADIR
    /* A default inside the data directory is an absolute path of the build
     * machine: document it without writing that path into the shipped file. */
    size_t dl = strlen(MAILLAGE_DATADIR);
    if (strncmp(def, MAILLAGE_DATADIR "/", dl + 1) == 0) {
        fprintf(out, "# Default: %s in Maillage's data directory (fixed at build time).\n", def + dl + 1);
        fprintf(out, "# %s = /path/to/%s\n", k->key, def + dl + 1);
        return;
    }
#endif
    if (*def)
        fprintf(out, "%s = %s\n", k->key, def);
    else
        fprintf(out, "%s =\n", k->key);
}

void mg_config_write_defaults(FILE *out) {
    fputs("# Maillage configuration.\n"
          "#\n"
          "# One file for every Maillage program (broker, matcher, notifier, gateway and\n"
          "# the maillage CLI): each reads the sections it needs, and all of them reject\n"
          "# a section or key that nobody knows, with FILE:LINE.\n"
          "#\n"
          "# Syntax: \"[section]\" lines, \"key = value\" lines, comments on lines of their\n"
          "# own starting with '#' or ';'. Values are taken as written (trimmed, no quotes).\n"
          "# Every key below is set to its default: an empty file means the same.\n"
          "# This file is generated by `maillage config defaults`; keep it in step.\n",
          out);
    size_t rows = s_schema_rows();
    for (size_t i = 0; i < rows; i++) {
        const char *section = mg_config_schema[i].section;
        size_t first = 0;
        while (strcmp(mg_config_schema[first].section, section) != 0)
            first++;
        if (first != i) continue; /* section already written */

        if (s_is_template(section)) {
            /* Not a section of its own: an example, commented out, of the
             * sections it stands for. */
            size_t plen = strlen(section) - 1;
            fprintf(out, "\n# [%.*s<id>] sections, any number of them, each with these keys:\n", (int)plen, section);
            fprintf(out, "# [%.*sexample]\n", (int)plen, section);
            for (size_t j = i; j < rows; j++) {
                const mg_config_key_t *k = &mg_config_schema[j];
                if (strcmp(k->section, section) != 0 || !k->key) continue;
                s_write_doc(out, k->doc);
                s_write_type(out, k);
                fprintf(out, "# %s = %s\n", k->key, k->default_value ? k->default_value : "");
            }
            continue;
        }
        fprintf(out, "\n[%s]\n", section);
        int open = s_section_is_open(section);
        int written = 0;
        for (size_t j = i; j < rows; j++) {
            const mg_config_key_t *k = &mg_config_schema[j];
            if (strcmp(k->section, section) != 0) continue;
            if (open) {
                /* The marker's doc, then plain "code = label" lines. */
                if (!k->key)
                    s_write_doc(out, k->doc);
                else
                    fprintf(out, "%s = %s\n", k->key, k->default_value ? k->default_value : "");
                continue;
            }
            if (written++ && k->doc) fputc('\n', out);
            s_write_key(out, k);
        }
    }
}

bool mg_config_authority_is_loopback(const char *authority) {
    size_t len = authority[0] == '[' ? strcspn(authority, "]") + 1 : strcspn(authority, ":/?#");
    char host[64];
    if (len == 0 || len >= sizeof host) return false;
    memcpy(host, authority, len);
    host[len] = '\0';
    return mg_config_host_is_loopback(host);
}

bool mg_config_host_is_loopback(const char *host) {
    char bare[64];
    size_t len = strlen(host);
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']') host++, len -= 2;
    if (len == 0 || len >= sizeof bare) return false;
    memcpy(bare, host, len);
    bare[len] = '\0';
    struct in_addr a4;
    struct in6_addr a6;
    if (strcasecmp(bare, "localhost") == 0) return true;
    if (inet_pton(AF_INET, bare, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, bare, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

char *mg_config_read_secret(const char *what, const char *path, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        mg_fail(err, errlen, "%s %s: %s", what, path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        mg_fail(err, errlen, "%s %s: not a regular file", what, path);
        close(fd);
        return NULL;
    }
    if (st.st_mode & (S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH)) {
        mg_fail(err, errlen, "%s %s is accessible by group or others (mode %03o); run chmod 600 on it", what,
                path, (unsigned)(st.st_mode & 0777));
        close(fd);
        return NULL;
    }
    char line[1024];
    ssize_t got;
    do {
        got = read(fd, line, sizeof(line) - 1);
    } while (got < 0 && errno == EINTR);
    int saved = errno;
    close(fd);
    if (got < 0) {
        mg_fail(err, errlen, "%s %s: %s", what, path, strerror(saved));
        return NULL;
    }
    line[got] = '\0';
    line[strcspn(line, "\r\n")] = '\0';
    if (!line[0]) {
        mg_fail(err, errlen, "%s %s: empty first line", what, path);
        return NULL;
    }
    char *secret = mg_strdup(line);
    explicit_bzero(line, sizeof(line));
    return secret;
}
