/* test_log.c -- log lines have the documented format, one line per record,
 * no control characters from the message, and the threshold filters before
 * the arguments are evaluated. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <regex.h>
#include <unistd.h>

#include <cmocka.h>

#include "maillage/log.h"

/* Run `fn` with stderr redirected to a pipe; return what it wrote. */
static char *s_capture(void (*fn)(void)) {
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    int saved = dup(STDERR_FILENO);
    dup2(fds[1], STDERR_FILENO);
    close(fds[1]);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    static char buf[65536];
    ssize_t n, total = 0;
    while ((n = read(fds[0], buf + total, sizeof buf - 1 - (size_t)total)) > 0)
        total += n;
    close(fds[0]);
    buf[total] = '\0';
    return buf;
}

static void s_one_info(void) {
    mg_log_init("broker", MG_LOG_INFO);
    mg_info("journal at %s", "redis://127.0.0.1:6379/0");
}

static void lines_have_the_documented_format(void **state) {
    (void)state;
    char *out = s_capture(s_one_info);
    regex_t re;
    assert_int_equal(regcomp(&re,
                             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                             "broker\\[[0-9]+\\] INFO journal at redis://127\\.0\\.0\\.1:6379/0\n$",
                             REG_EXTENDED),
                     0);
    if (regexec(&re, out, 0, NULL, 0) != 0) fail_msg("unexpected line: %s", out);
    regfree(&re);
}

static int s_evaluated;
static int s_side_effect(void) {
    return ++s_evaluated;
}

static void s_filtered(void) {
    mg_log_init("broker", MG_LOG_WARN);
    mg_debug("debug %d", s_side_effect());
    mg_info("info %d", s_side_effect());
    mg_warn("warn");
    mg_error("error");
}

static void the_threshold_filters_before_evaluating_arguments(void **state) {
    (void)state;
    s_evaluated = 0;
    char *out = s_capture(s_filtered);
    assert_int_equal(s_evaluated, 0);
    assert_null(strstr(out, " DEBUG "));
    assert_null(strstr(out, " INFO "));
    assert_non_null(strstr(out, " WARN warn\n"));
    assert_non_null(strstr(out, " ERROR error\n"));
}

static void s_hostile(void) {
    mg_log_init("broker", MG_LOG_INFO);
    mg_warn("rejected event id %s", "evil\n2026-01-01T00:00:00.000Z broker[1] ERROR forged\x1b[2J");
}

static void a_message_cannot_forge_a_line(void **state) {
    (void)state;
    char *out = s_capture(s_hostile);
    assert_int_equal(strchr(out, '\n') - out, (long)strlen(out) - 1); /* one newline, at the end */
    assert_null(strchr(out, '\x1b'));
}

static void s_long(void) {
    static char big[10000];
    memset(big, 'x', sizeof big - 1);
    mg_log_init("broker", MG_LOG_INFO);
    mg_info("%s", big);
}

static void long_messages_are_truncated_on_one_line(void **state) {
    (void)state;
    char *out = s_capture(s_long);
    size_t n = strlen(out);
    assert_true(n <= 4096);
    assert_memory_equal(out + n - 4, "...\n", 4);
    assert_int_equal(strchr(out, '\n') - out, (long)n - 1);
}

static void level_names_parse(void **state) {
    (void)state;
    mg_log_level_t level = MG_LOG_ERROR;
    assert_int_equal(mg_log_level_parse("debug", &level), 0);
    assert_int_equal(level, MG_LOG_DEBUG);
    assert_int_equal(mg_log_level_parse("INFO", &level), 0);
    assert_int_equal(level, MG_LOG_INFO);
    assert_int_equal(mg_log_level_parse("warn", &level), 0);
    assert_int_equal(level, MG_LOG_WARN);
    assert_int_equal(mg_log_level_parse("error", &level), 0);
    assert_int_equal(level, MG_LOG_ERROR);
    assert_int_equal(mg_log_level_parse("verbose", &level), -1);
    assert_int_equal(level, MG_LOG_ERROR); /* untouched */
    assert_int_equal(mg_log_level_parse(NULL, &level), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lines_have_the_documented_format),
        cmocka_unit_test(the_threshold_filters_before_evaluating_arguments),
        cmocka_unit_test(a_message_cannot_forge_a_line),
        cmocka_unit_test(long_messages_are_truncated_on_one_line),
        cmocka_unit_test(level_names_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
