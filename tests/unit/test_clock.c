/* test_clock.c -- ULIDs sort in creation order and the Paris date follows the
 * EU summer-time switches. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "maillage/clock.h"

static const char s_crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static uint64_t s_ulid_ms(const char *id) {
    uint64_t v = 0;
    for (int i = 0; i < 10; i++)
        v = (v << 5) | (uint64_t)(strchr(s_crockford, id[i]) - s_crockford);
    return v;
}

static void ulid_has_26_crockford_characters(void **state) {
    (void)state;
    char id[MG_ULID_LEN + 1];
    mg_ulid_new(id);
    assert_int_equal(strlen(id), 26);
    for (int i = 0; i < 26; i++)
        assert_non_null(strchr(s_crockford, id[i]));
    assert_true(id[0] <= '7'); /* 128 bits: the first digit carries 3 */
}

static void ulid_carries_the_current_millisecond(void **state) {
    (void)state;
    char id[MG_ULID_LEN + 1];
    int64_t before = mg_clock_now_ms();
    mg_ulid_new(id);
    int64_t after = mg_clock_now_ms();
    uint64_t ms = s_ulid_ms(id);
    assert_true(ms >= (uint64_t)before);
    assert_true(ms <= (uint64_t)after + 1);
}

static void ulids_of_one_process_strictly_increase(void **state) {
    (void)state;
    char prev[MG_ULID_LEN + 1], id[MG_ULID_LEN + 1];
    mg_ulid_new(prev);
    /* Many ids per millisecond: monotonic within one ms must hold. */
    for (int i = 0; i < 100000; i++) {
        mg_ulid_new(id);
        assert_true(strcmp(prev, id) < 0);
        memcpy(prev, id, sizeof id);
    }
}

static void ulids_of_two_processes_differ(void **state) {
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    char mine[MG_ULID_LEN + 1], theirs[MG_ULID_LEN + 1] = {0};
    if (pid == 0) {
        mg_ulid_new(mine);
        ssize_t w = write(fds[1], mine, MG_ULID_LEN);
        _exit(w == MG_ULID_LEN ? 0 : 1);
    }
    mg_ulid_new(mine);
    assert_int_equal(read(fds[0], theirs, MG_ULID_LEN), MG_ULID_LEN);
    close(fds[0]);
    close(fds[1]);
    assert_string_not_equal(mine, theirs);
}

static void now_and_monotonic_are_sane(void **state) {
    (void)state;
    assert_true(mg_clock_now_ms() > 1577836800000LL); /* after 2020 */
    int64_t a = mg_clock_monotonic_us();
    int64_t b = mg_clock_monotonic_us();
    assert_true(b >= a);
}

static void paris_offset_switches_at_01h00_utc(void **state) {
    (void)state;
    static const struct {
        int64_t switch_s; /* instant of the switch, Unix seconds */
        int before, after;
    } cases[] = {
        {1774746000, 3600, 7200}, /* 2026-03-29 01:00Z, summer time starts */
        {1792890000, 7200, 3600}, /* 2026-10-25 01:00Z, summer time ends */
        {1711846800, 3600, 7200}, /* 2024-03-31 */
        {1729990800, 7200, 3600}, /* 2024-10-27 */
        {1743296400, 3600, 7200}, /* 2025-03-30 */
        {1761440400, 7200, 3600}, /* 2025-10-26 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(mg_clock_paris_offset_s(cases[i].switch_s * 1000 - 1), cases[i].before);
        assert_int_equal(mg_clock_paris_offset_s(cases[i].switch_s * 1000), cases[i].after);
    }
}

static void paris_date_on_both_sides_of_midnight_and_switches(void **state) {
    (void)state;
    static const struct {
        int64_t s;
        const char *date;
    } cases[] = {
        {1784066399, "2026-07-14"}, /* 21:59:59Z = 23:59:59 summer */
        {1784066400, "2026-07-15"}, /* 22:00:00Z = 00:00 */
        {1768517999, "2026-01-15"}, /* 22:59:59Z = 23:59:59 winter */
        {1768518000, "2026-01-16"}, /* 23:00:00Z = 00:00 */
        {1774737000, "2026-03-28"}, /* 22:30Z the evening before summer time: 23:30 */
        {1774823400, "2026-03-30"}, /* 22:30Z the evening of the switch: 00:30 */
        {1792881000, "2026-10-25"}, /* 22:30Z the evening before winter time: 00:30 */
        {1792967400, "2026-10-25"}, /* 22:30Z the evening of the switch: 23:30 */
        {1709208000, "2024-02-29"}, /* leap day */
        {951867000, "2000-03-01"},  /* 2000-02-29 23:30Z = 00:30 on 1 March */
    };
    char out[11];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mg_clock_paris_date(cases[i].s * 1000, out);
        assert_string_equal(out, cases[i].date);
    }
    mg_clock_paris_date(-1, out); /* 1969-12-31 23:59:59.999Z */
    assert_string_equal(out, "1970-01-01");
}

/* Cross-check with the system's tzdata, hour by hour over ten years, when it
 * is installed (it is not in every container). */
static void paris_date_agrees_with_tzdata(void **state) {
    (void)state;
    if (access("/usr/share/zoneinfo/Europe/Paris", R_OK) != 0) skip();
    setenv("TZ", "Europe/Paris", 1);
    tzset();
    char mine[11], theirs[11];
    for (int64_t s = 1577836800; s < 1893456000; s += 1800) { /* 2020..2030 */
        time_t t = (time_t)s;
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(theirs, sizeof theirs, "%Y-%m-%d", &tm);
        mg_clock_paris_date(s * 1000, mine);
        if (strcmp(mine, theirs) != 0) fail_msg("at %lld: %s, tzdata says %s", (long long)s, mine, theirs);
        assert_int_equal(mg_clock_paris_offset_s(s * 1000), tm.tm_gmtoff);
    }
}

static void day_numbers_and_the_start_of_a_paris_day(void **state) {
    (void)state;
    assert_int_equal(mg_clock_day_number("1970-01-01"), 0);
    assert_int_equal(mg_clock_day_number("2026-11-27"), 20784);
    assert_int_equal(mg_clock_day_number("2024-02-29") + 1, mg_clock_day_number("2024-03-01"));
    const char *bad[] = {"", "2026-13-01", "2026-11-27T", "27/11/2026", "2026-00-10"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(mg_clock_day_number(bad[i]), -1);
        assert_int_equal(mg_clock_paris_day_start_ms(bad[i]), -1);
    }
    /* Winter: 23:00 UTC the day before; summer: 22:00 UTC; and the days the
     * clocks change (at 01:00 UTC, after Paris's midnight). */
    assert_int_equal(mg_clock_paris_day_start_ms("2026-11-27"), 1795734000000LL);
    assert_int_equal(mg_clock_paris_day_start_ms("2026-07-14"), 1783980000000LL);
    assert_int_equal(mg_clock_paris_day_start_ms("2026-03-29"), 1774738800000LL);
    assert_int_equal(mg_clock_paris_day_start_ms("2026-10-25"), 1792879200000LL);
    char date[11];
    mg_clock_paris_date(mg_clock_paris_day_start_ms("2026-10-25"), date);
    assert_string_equal(date, "2026-10-25");
    mg_clock_paris_date(mg_clock_paris_day_start_ms("2026-10-25") - 1, date);
    assert_string_equal(date, "2026-10-24");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ulid_has_26_crockford_characters),
        cmocka_unit_test(ulid_carries_the_current_millisecond),
        cmocka_unit_test(ulids_of_one_process_strictly_increase),
        cmocka_unit_test(ulids_of_two_processes_differ),
        cmocka_unit_test(now_and_monotonic_are_sane),
        cmocka_unit_test(paris_offset_switches_at_01h00_utc),
        cmocka_unit_test(paris_date_on_both_sides_of_midnight_and_switches),
        cmocka_unit_test(paris_date_agrees_with_tzdata),
        cmocka_unit_test(day_numbers_and_the_start_of_a_paris_day),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
