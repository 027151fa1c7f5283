/* test_redis.c -- the [redis] section: URL forms, credentials kept out of
 * the URL, and a password file nobody else may read; the numbers Redis
 * gives (mg_redis_u64()). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "maillage/config.h"
#include "maillage/redis.h"

static char s_dir[] = "/tmp/maillage-test-redis-XXXXXX";
static char s_err[512];

static int s_group_setup(void **state) {
    (void)state;
    return mkdtemp(s_dir) ? 0 : -1;
}

static int s_group_teardown(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", s_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void s_write(const char *name, const char *text, mode_t mode) {
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", s_dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

/* Parse a config made of `redis_section` lines; returns 0/-1 like the API. */
static int s_options(const char *redis_section, mg_redis_options_t *opts) {
    char text[1024];
    snprintf(text, sizeof(text), "[redis]\n%s", redis_section);
    s_write("test.conf", text, 0600);
    char path[256];
    snprintf(path, sizeof(path), "%s/test.conf", s_dir);
    mg_config_t *cfg = mg_config_load(path, s_err, sizeof(s_err));
    assert_non_null(cfg);
    int rc = mg_redis_options_from_config(cfg, opts, s_err, sizeof(s_err));
    mg_config_destroy(&cfg);
    return rc;
}

static void tcp_url_with_port_and_database(void **state) {
    (void)state;
    mg_redis_options_t o;
    /* A host beyond loopback needs a password (refused without one, below). */
    s_write("pw-remote", "s3cret\n", 0600);
    char conf[512];
    snprintf(conf, sizeof(conf), "url = redis://10.0.0.5:6380/3\npassword_file = %s/pw-remote\n", s_dir);
    assert_int_equal(s_options(conf, &o), 0);
    assert_string_equal(o.host, "10.0.0.5");
    assert_int_equal(o.port, 6380);
    assert_int_equal(o.db, 3);
    assert_null(o.socket_path);
    assert_string_equal(o.password, "s3cret");
    assert_int_equal(o.connect_timeout_ms, 2000);
    mg_redis_options_clear(&o);
}

static void tcp_url_defaults_port_and_database(void **state) {
    (void)state;
    mg_redis_options_t o;
    assert_int_equal(s_options("url = redis://localhost\n", &o), 0);
    assert_string_equal(o.host, "localhost");
    assert_int_equal(o.port, 6379);
    assert_int_equal(o.db, 0);
    mg_redis_options_clear(&o);
    assert_int_equal(s_options("url = redis://[::1]:7000/\n", &o), 0);
    assert_string_equal(o.host, "::1");
    assert_int_equal(o.port, 7000);
    mg_redis_options_clear(&o);
}

static void unix_url_with_database(void **state) {
    (void)state;
    mg_redis_options_t o;
    assert_int_equal(s_options("url = unix:///run/redis/redis.sock?db=2\n", &o), 0);
    assert_string_equal(o.socket_path, "/run/redis/redis.sock");
    assert_null(o.host);
    assert_int_equal(o.db, 2);
    mg_redis_options_clear(&o);
}

static void bad_urls_are_refused_with_a_reason(void **state) {
    (void)state;
    static const char *const bad[][2] = {
        {"url = http://127.0.0.1:6379\n", "expected redis://"},
        {"url = redis://127.0.0.1:0/0\n", "invalid port"},
        {"url = redis://127.0.0.1:99999/0\n", "invalid port"},
        {"url = redis://127.0.0.1:6379/x\n", "invalid database"},
        {"url = redis://:secret@127.0.0.1:6379/0\n", "no credentials in the URL"},
        {"url = unix://relative.sock\n", "absolute path"},
        {"url = unix:///tmp/r.sock?database=1\n", "?db=N"},
        {"url = redis://10.0.0.5:6380/3\n", "refusing a Redis beyond loopback without a password"},
        {"url = redis://redis.example.org\n", "refusing a Redis beyond loopback without a password"},
    };
    char where[256];
    snprintf(where, sizeof(where), "%s/test.conf:2: [redis] url", s_dir); /* the file's line 2 */
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mg_redis_options_t o;
        assert_int_equal(s_options(bad[i][0], &o), -1);
        if (!strstr(s_err, bad[i][1])) fail_msg("%s: got \"%s\"", bad[i][0], s_err);
        if (strncmp(s_err, where, strlen(where)) != 0)
            fail_msg("%s: got \"%s\", not at its line", bad[i][0], s_err);
    }
}

static void password_file_first_line_and_user(void **state) {
    (void)state;
    s_write("pw", "s3cret\nignored\n", 0600);
    char conf[512];
    snprintf(conf, sizeof(conf), "url = redis://127.0.0.1:6379/0\nuser = maillage\npassword_file = %s/pw\n",
             s_dir);
    mg_redis_options_t o;
    assert_int_equal(s_options(conf, &o), 0);
    assert_string_equal(o.user, "maillage");
    assert_string_equal(o.password, "s3cret");
    mg_redis_options_clear(&o);
    assert_null(o.password);
}

static void password_file_readable_by_others_is_refused(void **state) {
    (void)state;
    s_write("pw-open", "s3cret\n", 0644);
    char conf[512];
    snprintf(conf, sizeof(conf), "password_file = %s/pw-open\n", s_dir);
    mg_redis_options_t o;
    assert_int_equal(s_options(conf, &o), -1);
    assert_non_null(strstr(s_err, "accessible by group or others"));
    s_write("pw-group", "s3cret\n", 0640);
    snprintf(conf, sizeof(conf), "password_file = %s/pw-group\n", s_dir);
    assert_int_equal(s_options(conf, &o), -1);
    snprintf(conf, sizeof(conf), "password_file = %s/missing\n", s_dir);
    assert_int_equal(s_options(conf, &o), -1);
    assert_non_null(strstr(s_err, "No such file"));
}

static void user_without_password_is_refused(void **state) {
    (void)state;
    mg_redis_options_t o;
    assert_int_equal(s_options("user = maillage\n", &o), -1);
    assert_non_null(strstr(s_err, "password_file"));
}

static void numbers_and_stream_ids_are_read_and_nothing_else(void **state) {
    (void)state;
    uint64_t v = 7;
    assert_int_equal(mg_redis_u64("0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(mg_redis_u64("18446744073709551615", &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(mg_redis_u64("1764000000000-3", &v), 0);
    assert_true(v == 1764000000000ULL);
    static const char *const bad[] = {"",  "-1", " 5", "+5", "5 ", "12a", "0x10", "18446744073709551616",
                                      "-", NULL};
    for (const char *const *b = bad; *b; b++) {
        v = 7;
        assert_int_equal(mg_redis_u64(*b, &v), -1);
        assert_int_equal(v, 7);
    }
    assert_int_equal(mg_redis_u64(NULL, &v), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tcp_url_with_port_and_database),
        cmocka_unit_test(tcp_url_defaults_port_and_database),
        cmocka_unit_test(unix_url_with_database),
        cmocka_unit_test(bad_urls_are_refused_with_a_reason),
        cmocka_unit_test(password_file_first_line_and_user),
        cmocka_unit_test(password_file_readable_by_others_is_refused),
        cmocka_unit_test(user_without_password_is_refused),
        cmocka_unit_test(numbers_and_stream_ids_are_read_and_nothing_else),
    };
    return cmocka_run_group_tests(tests, s_group_setup, s_group_teardown);
}
