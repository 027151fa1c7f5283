/* test_config.c -- the configuration file: defaults, typed values, every
 * error with FILE:LINE, open sections, and config/maillage.conf in step with
 * the schema. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "maillage/config.h"

static char s_err[512];

static mg_config_t *s_load(const char *text) {
    s_err[0] = '\0';
    return mg_config_load_buffer("test.conf", text, strlen(text), s_err, sizeof s_err);
}

/* Load `text`, expect failure with exactly `message`. */
static void s_expect_error(const char *text, const char *message) {
    mg_config_t *cfg = s_load(text);
    if (cfg) {
        mg_config_destroy(&cfg);
        fail_msg("accepted: %s", text);
    }
    assert_string_equal(s_err, message);
}

static const mg_config_key_t *s_first_of_type(mg_config_type_t type) {
    for (size_t i = 0; mg_config_schema[i].section; i++) {
        const mg_config_key_t *k = &mg_config_schema[i];
        if (k->key && k->type == type) {
            /* Skip keys of open sections: they are entries, not typed keys. */
            int open = 0;
            for (size_t j = 0; mg_config_schema[j].section; j++)
                if (!mg_config_schema[j].key && strcmp(mg_config_schema[j].section, k->section) == 0)
                    open = 1;
            if (!open) return k;
        }
    }
    return NULL;
}

static void defaults_need_no_file(void **state) {
    (void)state;
    mg_config_t *cfg = mg_config_load(NULL, s_err, sizeof s_err);
    assert_non_null(cfg);
    assert_null(mg_config_path(cfg));
    assert_string_equal(mg_config_str(cfg, "log", "level"), "info");
    assert_string_equal(mg_config_str(cfg, "redis", "url"), "redis://127.0.0.1:6379/0");
    assert_string_equal(mg_config_str(cfg, "redis", "user"), "");
    assert_int_equal(mg_config_int(cfg, "broker", "max_message_bytes"), 262144);
    assert_int_equal(mg_config_open_count(cfg, "categories"), 12);
    const char *key, *value;
    mg_config_open_entry(cfg, "categories", 0, &key, &value);
    assert_string_equal(key, "locaux");
    assert_string_equal(value, "Locaux");
    mg_config_destroy(&cfg);
    assert_null(cfg);
    mg_config_destroy(&cfg); /* accepts NULL */
}

static void every_default_has_a_doc_and_passes_its_own_check(void **state) {
    (void)state;
    mg_config_t *cfg = mg_config_load(NULL, s_err, sizeof s_err);
    assert_non_null(cfg); /* loading defaults checks each against its type/range */
    for (size_t i = 0; mg_config_schema[i].section; i++) {
        const mg_config_key_t *k = &mg_config_schema[i];
        if (k->key && !k->doc) {
            /* Only entries of an open section may go undocumented. */
            int open = 0;
            for (size_t j = 0; mg_config_schema[j].section; j++)
                if (!mg_config_schema[j].key && strcmp(mg_config_schema[j].section, k->section) == 0)
                    open = 1;
            if (!open) fail_msg("[%s] %s has no doc", k->section, k->key);
        }
        if (k->key && k->type == MG_CONFIG_INT) {
            long long v = mg_config_int(cfg, k->section, k->key);
            assert_true((double)v >= k->min && (double)v <= k->max);
        }
    }
    mg_config_destroy(&cfg);
}

static void values_are_trimmed_and_typed(void **state) {
    (void)state;
    mg_config_t *cfg = s_load("# comment\n"
                              "; another comment\n"
                              "\n"
                              "  [ broker ]  \n"
                              "  batch_max   =   64  \r\n"
                              "ingest = tcp://127.0.0.1:9000\n"
                              "[redis]\n"
                              "user =\n"
                              "url = unix:///tmp/r.sock?db=2\n"
                              "[broker]\n" /* a section may be reopened */
                              "fanout = ipc:///tmp/f # not a comment\n");
    assert_non_null(cfg);
    assert_int_equal(mg_config_int(cfg, "broker", "batch_max"), 64);
    assert_string_equal(mg_config_str(cfg, "broker", "ingest"), "tcp://127.0.0.1:9000");
    assert_string_equal(mg_config_str(cfg, "broker", "fanout"), "ipc:///tmp/f # not a comment");
    assert_string_equal(mg_config_str(cfg, "redis", "url"), "unix:///tmp/r.sock?db=2");
    assert_string_equal(mg_config_str(cfg, "redis", "user"), "");
    /* Keys the file does not set keep their defaults. */
    assert_int_equal(mg_config_int(cfg, "broker", "dedupe_window_s"), 604800);
    mg_config_destroy(&cfg);
    /* A file saved with a byte order mark reads as without (before: "line 1:
     * expected key = value or [section]" for a line that looked right). */
    cfg = s_load("\xEF\xBB\xBF[broker]\r\nbatch_max = 32\r\n");
    assert_non_null(cfg);
    assert_int_equal(mg_config_int(cfg, "broker", "batch_max"), 32);
    mg_config_destroy(&cfg);
}

static void integers_are_range_checked(void **state) {
    (void)state;
    mg_config_t *cfg = s_load("[broker]\nbatch_max = 65536\n");
    assert_non_null(cfg);
    mg_config_destroy(&cfg);
    s_expect_error("[broker]\nbatch_max = 65537\n",
                   "test.conf:2: [broker] batch_max: expected an integer from 1 to 65536, got \"65537\"");
    s_expect_error("[broker]\nbatch_max = 0\n",
                   "test.conf:2: [broker] batch_max: expected an integer from 1 to 65536, got \"0\"");
    s_expect_error("[broker]\nbatch_max = 12abc\n",
                   "test.conf:2: [broker] batch_max: expected an integer from 1 to 65536, got \"12abc\"");
    s_expect_error("[broker]\nbatch_max =\n",
                   "test.conf:2: [broker] batch_max: expected an integer from 1 to 65536, got \"\"");
    s_expect_error("[broker]\nbatch_max = 99999999999999999999999\n",
                   "test.conf:2: [broker] batch_max: expected an integer from 1 to 65536, got "
                   "\"99999999999999999999999\"");
    /* 0 is ZeroMQ's "no limit": the broker's memory bounds cannot be switched off. */
    s_expect_error("[broker]\nfanout_hwm = 0\n",
                   "test.conf:2: [broker] fanout_hwm: expected an integer from 1 to 10000000, got \"0\"");
    s_expect_error("[broker]\ningest_hwm = 0\n",
                   "test.conf:2: [broker] ingest_hwm: expected an integer from 1 to 10000000, got \"0\"");
}

static void booleans_accept_the_usual_words(void **state) {
    (void)state;
    const mg_config_key_t *k = s_first_of_type(MG_CONFIG_BOOL);
    if (!k) skip(); /* no boolean key in the schema yet */
    static const char *const yes[] = {"true", "yes", "on", "1", "TRUE"};
    static const char *const no[] = {"false", "no", "off", "0", "No"};
    char text[256];
    for (size_t i = 0; i < 5; i++) {
        snprintf(text, sizeof text, "[%s]\n%s = %s\n", k->section, k->key, yes[i]);
        mg_config_t *cfg = s_load(text);
        assert_non_null(cfg);
        assert_true(mg_config_bool(cfg, k->section, k->key));
        mg_config_destroy(&cfg);
        snprintf(text, sizeof text, "[%s]\n%s = %s\n", k->section, k->key, no[i]);
        cfg = s_load(text);
        assert_non_null(cfg);
        assert_false(mg_config_bool(cfg, k->section, k->key));
        mg_config_destroy(&cfg);
    }
    snprintf(text, sizeof text, "[%s]\n%s = maybe\n", k->section, k->key);
    assert_null(s_load(text));
    assert_non_null(strstr(s_err, "test.conf:2:"));
    assert_non_null(strstr(s_err, "expected true or false"));
}

static void doubles_are_range_checked(void **state) {
    (void)state;
    const mg_config_key_t *k = s_first_of_type(MG_CONFIG_DOUBLE);
    if (!k) skip(); /* no number key in the schema yet */
    char text[256];
    snprintf(text, sizeof text, "[%s]\n%s = %.17g\n", k->section, k->key, k->min);
    mg_config_t *cfg = s_load(text);
    assert_non_null(cfg);
    assert_true(mg_config_double(cfg, k->section, k->key) == k->min);
    mg_config_destroy(&cfg);
    static const char *const bad[] = {"nan", "inf", "1e999", "0x10", "abc", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, "[%s]\n%s = %s\n", k->section, k->key, bad[i]);
        assert_null(s_load(text));
        assert_non_null(strstr(s_err, "test.conf:2:"));
    }
    snprintf(text, sizeof text, "[%s]\n%s = %.17g\n", k->section, k->key, k->max + 1);
    assert_null(s_load(text));
}

static void unknown_sections_and_keys_are_named(void **state) {
    (void)state;
    s_expect_error("[log]\nlevel = info\n\n[brokre]\n", "test.conf:4: unknown section [brokre]");
    s_expect_error("[broker]\nbatchmax = 3\n", "test.conf:2: unknown key \"batchmax\" in section [broker]");
    s_expect_error("level = info\n", "test.conf:1: key \"level\" outside any section");
}

static void repeated_keys_are_refused(void **state) {
    (void)state;
    s_expect_error("[broker]\nbatch_max = 3\n[log]\n[broker]\nbatch_max = 4\n",
                   "test.conf:5: [broker] batch_max: repeated key (first set on line 2)");
    s_expect_error("[categories]\nlocaux = Locaux\nlocaux = Bureaux\n",
                   "test.conf:3: [categories] locaux: repeated key (first set on line 2)");
}

static void malformed_lines_are_refused(void **state) {
    (void)state;
    s_expect_error("[broker\n", "test.conf:1: missing ']' in section header");
    s_expect_error("[broker] x\n", "test.conf:1: unexpected text after section header");
    s_expect_error("[broker]\nbatch_max\n", "test.conf:2: expected \"key = value\" or \"[section]\"");
    s_expect_error("[broker]\n = 3\n", "test.conf:2: missing key before '='");
    s_expect_error("[broker]\nbatch max = 3\n",
                   "test.conf:2: invalid key \"batch max\" (letters, digits, '_', '-', '.')");
    s_expect_error("[broker]\nnetwork = a\x01"
                   "b\n",
                   "test.conf:2: control character in line");
    s_expect_error("[broker]\nnetwork = \xc3\x28\n", "test.conf:2: invalid UTF-8");
    static const char nul[] = "[broker]\nnetwork = a\0b\n";
    assert_null(mg_config_load_buffer("test.conf", nul, sizeof nul - 1, s_err, sizeof s_err));
    assert_string_equal(s_err, "test.conf:2: NUL byte in line");
}

static void an_open_section_set_by_the_file_replaces_the_defaults(void **state) {
    (void)state;
    mg_config_t *cfg = s_load("[categories]\nzz_last = Dernière\nlocaux = Bureaux et locaux\n");
    assert_non_null(cfg);
    assert_int_equal(mg_config_open_count(cfg, "categories"), 2);
    const char *key, *value;
    mg_config_open_entry(cfg, "categories", 0, &key, &value);
    assert_string_equal(key, "zz_last");
    assert_string_equal(value, "Dernière");
    mg_config_open_entry(cfg, "categories", 1, &key, &value);
    assert_string_equal(key, "locaux");
    assert_string_equal(value, "Bureaux et locaux");
    mg_config_destroy(&cfg);

    /* Naming the section empty leaves it empty: the file is explicit. */
    cfg = s_load("[categories]\n");
    assert_non_null(cfg);
    assert_int_equal(mg_config_open_count(cfg, "categories"), 0);
    mg_config_destroy(&cfg);
}

static char *s_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = malloc(1 << 20);
    *len = fread(buf, 1, (1 << 20) - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static void shipped_config_is_the_documented_defaults(void **state) {
    (void)state;
    size_t shipped_len = 0;
    char *shipped = s_read_file(MAILLAGE_SOURCE_DIR "/config/maillage.conf", &shipped_len);
    assert_non_null(shipped);
    char *generated = NULL;
    size_t generated_len = 0;
    FILE *mem = open_memstream(&generated, &generated_len);
    mg_config_write_defaults(mem);
    fclose(mem);
    if (shipped_len != generated_len || memcmp(shipped, generated, shipped_len) != 0)
        fail_msg("config/maillage.conf differs from mg_config_write_defaults(): regenerate it with "
                 "`maillage config defaults > config/maillage.conf`");
    free(shipped);
    free(generated);
}

static void shipped_config_loads_to_the_defaults(void **state) {
    (void)state;
    const char *path = MAILLAGE_SOURCE_DIR "/config/maillage.conf";
    mg_config_t *cfg = mg_config_load(path, s_err, sizeof s_err);
    if (!cfg) fail_msg("%s", s_err);
    mg_config_t *defaults = mg_config_load(NULL, s_err, sizeof s_err);
    assert_string_equal(mg_config_path(cfg), path);
    for (size_t i = 0; mg_config_schema[i].section; i++) {
        const mg_config_key_t *k = &mg_config_schema[i];
        if (!k->key) continue;
        int open = 0;
        for (size_t j = 0; mg_config_schema[j].section; j++)
            if (!mg_config_schema[j].key && strcmp(mg_config_schema[j].section, k->section) == 0) open = 1;
        if (open) continue;
        switch (k->type) {
        case MG_CONFIG_STRING:
            assert_string_equal(mg_config_str(cfg, k->section, k->key),
                                mg_config_str(defaults, k->section, k->key));
            break;
        case MG_CONFIG_INT:
            assert_int_equal(mg_config_int(cfg, k->section, k->key),
                             mg_config_int(defaults, k->section, k->key));
            break;
        case MG_CONFIG_DOUBLE:
            assert_true(mg_config_double(cfg, k->section, k->key) ==
                        mg_config_double(defaults, k->section, k->key));
            break;
        case MG_CONFIG_BOOL:
            assert_int_equal(mg_config_bool(cfg, k->section, k->key),
                             mg_config_bool(defaults, k->section, k->key));
            break;
        }
    }
    size_t n = mg_config_open_count(defaults, "categories");
    assert_int_equal(mg_config_open_count(cfg, "categories"), n);
    for (size_t i = 0; i < n; i++) {
        const char *k1, *v1, *k2, *v2;
        mg_config_open_entry(cfg, "categories", i, &k1, &v1);
        mg_config_open_entry(defaults, "categories", i, &k2, &v2);
        assert_string_equal(k1, k2);
        assert_string_equal(v1, v2);
    }
    mg_config_destroy(&cfg);
    mg_config_destroy(&defaults);
}

static void file_errors_name_the_file(void **state) {
    (void)state;
    assert_null(mg_config_load("/nonexistent/maillage.conf", s_err, sizeof s_err));
    assert_string_equal(s_err, "/nonexistent/maillage.conf: cannot open: No such file or directory");

    char path[] = "/tmp/maillage-test-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char text[] = "[log]\nlevel = info\nverbose = 1\n";
    assert_int_equal(write(fd, text, sizeof text - 1), sizeof text - 1);
    close(fd);
    assert_null(mg_config_load(path, s_err, sizeof s_err));
    char expected[256];
    snprintf(expected, sizeof expected, "%s:3: unknown key \"verbose\" in section [log]", path);
    assert_string_equal(s_err, expected);
    unlink(path);
}

/* Where a value comes from, for the start-up checks' messages: the line
 * that set it, the file when it keeps its default. A directory is no
 * file: said so. */
static void a_value_is_placed_at_its_line(void **state) {
    (void)state;
    const char text[] = "[log]\nlevel = info\n\n[staff.alice]\nname = Alice\nmode = digest\n";
    mg_config_t *cfg = mg_config_load_buffer("site.conf", text, sizeof text - 1, s_err, sizeof s_err);
    assert_non_null(cfg);
    char where[64];
    assert_string_equal(mg_config_where(cfg, "log", "level", where, sizeof where), "site.conf:2");
    assert_string_equal(mg_config_where(cfg, "redis", "url", where, sizeof where), "site.conf");
    assert_string_equal(mg_config_where(cfg, "staff.alice", "mode", where, sizeof where), "site.conf:6");
    assert_string_equal(mg_config_where(cfg, "staff.alice", "email", where, sizeof where), "site.conf");
    mg_config_destroy(&cfg);
    cfg = mg_config_load(NULL, s_err, sizeof s_err);
    assert_string_equal(mg_config_where(cfg, "log", "level", where, sizeof where), "(defaults)");
    mg_config_destroy(&cfg);

    assert_null(mg_config_load("/tmp", s_err, sizeof s_err));
    assert_string_equal(s_err, "/tmp: cannot read: Is a directory");
}

static void oversized_input_is_refused(void **state) {
    (void)state;
    size_t len = 2 * 1024 * 1024;
    char *big = malloc(len);
    memset(big, '#', len);
    assert_null(mg_config_load_buffer("big.conf", big, len, s_err, sizeof s_err));
    assert_non_null(strstr(s_err, "big.conf: too large"));
    free(big);
}

/* [staff.ID] sections: any number, each checked against the "staff.*"
 * template, typed, enumerated in file order, defaults from the template. */
static void templated_sections_are_checked_typed_and_enumerated(void **state) {
    (void)state;
    mg_config_t *cfg = s_load("[staff.alice]\nname = Alice\ndepartments = 14,50\nmin_score = 0.5\n\n"
                              "[staff.bob-2]\nname = Bob\n");
    assert_non_null(cfg);
    assert_int_equal(mg_config_instance_count(cfg, "staff.*"), 2);
    assert_string_equal(mg_config_instance_section(cfg, "staff.*", 0), "staff.alice");
    assert_string_equal(mg_config_instance_section(cfg, "staff.*", 1), "staff.bob-2");
    assert_string_equal(mg_config_str(cfg, "staff.alice", "departments"), "14,50");
    assert_true(mg_config_double(cfg, "staff.alice", "min_score") == 0.5);
    /* Unset keys take the template's defaults. */
    assert_string_equal(mg_config_str(cfg, "staff.bob-2", "channels"),
                        mg_config_str(cfg, "staff.*", "channels"));
    mg_config_destroy(&cfg);

    cfg = s_load("[log]\nlevel = info\n");
    assert_non_null(cfg);
    assert_int_equal(mg_config_instance_count(cfg, "staff.*"), 0);
    mg_config_destroy(&cfg);
}

static void templated_sections_refuse_what_the_template_does(void **state) {
    (void)state;
    mg_config_t *cfg = s_load("[staff.alice]\nnickname = Al\n");
    assert_null(cfg);
    assert_non_null(strstr(s_err, "test.conf:2:"));
    assert_non_null(strstr(s_err, "nickname"));

    cfg = s_load("[staff.alice]\nmin_score = 2\n");
    assert_null(cfg);
    assert_non_null(strstr(s_err, "test.conf:2:"));

    cfg = s_load("[staff.alice]\nname = A\nname = B\n");
    assert_null(cfg);
    assert_non_null(strstr(s_err, "test.conf:3:"));

    /* An id that could not be a Redis key part, or an empty one. */
    cfg = s_load("[staff.al ice]\nname = A\n");
    assert_null(cfg);
    assert_non_null(strstr(s_err, "test.conf:1:"));
    cfg = s_load("[staff.]\nname = A\n");
    assert_null(cfg);
    assert_non_null(strstr(s_err, "test.conf:1:"));
}

static void loopback_hosts_are_this_machine_only(void **state) {
    (void)state;
    const char *here[] = {"localhost", "127.0.0.1", "127.1.2.3", "::1", "[::1]"};
    for (size_t i = 0; i < sizeof here / sizeof here[0]; i++)
        assert_true(mg_config_host_is_loopback(here[i]));
    const char *elsewhere[] = {"",      "127.relais.example.org", "10.0.0.1", "0.0.0.0",  "::",
                               "[::2]", "localhost.example",      "[::1",     "128.0.0.1"};
    for (size_t i = 0; i < sizeof elsewhere / sizeof elsewhere[0]; i++)
        assert_false(mg_config_host_is_loopback(elsewhere[i]));
    const char *here_authority[] = {"127.0.0.1:5555", "localhost", "[::1]:25", "localhost/path",
                                    "127.0.0.1?x"};
    for (size_t i = 0; i < sizeof here_authority / sizeof here_authority[0]; i++)
        assert_true(mg_config_authority_is_loopback(here_authority[i]));
    const char *elsewhere_authority[] = {"",    "127.relais.example.org:587", "0.0.0.0:5555", "[::2]:25",
                                         ":25", "127.0.0.1.example.org:1"};
    for (size_t i = 0; i < sizeof elsewhere_authority / sizeof elsewhere_authority[0]; i++)
        assert_false(mg_config_authority_is_loopback(elsewhere_authority[i]));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_need_no_file),
        cmocka_unit_test(every_default_has_a_doc_and_passes_its_own_check),
        cmocka_unit_test(values_are_trimmed_and_typed),
        cmocka_unit_test(integers_are_range_checked),
        cmocka_unit_test(booleans_accept_the_usual_words),
        cmocka_unit_test(doubles_are_range_checked),
        cmocka_unit_test(unknown_sections_and_keys_are_named),
        cmocka_unit_test(repeated_keys_are_refused),
        cmocka_unit_test(malformed_lines_are_refused),
        cmocka_unit_test(an_open_section_set_by_the_file_replaces_the_defaults),
        cmocka_unit_test(shipped_config_is_the_documented_defaults),
        cmocka_unit_test(shipped_config_loads_to_the_defaults),
        cmocka_unit_test(file_errors_name_the_file),
        cmocka_unit_test(a_value_is_placed_at_its_line),
        cmocka_unit_test(oversized_input_is_refused),
        cmocka_unit_test(templated_sections_are_checked_typed_and_enumerated),
        cmocka_unit_test(templated_sections_refuse_what_the_template_does),
        cmocka_unit_test(loopback_hosts_are_this_machine_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
