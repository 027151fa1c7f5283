/* clock.c -- wall-clock time, ULIDs and the Paris calendar date.
 *
 * ULIDs (https://github.com/ulid/spec): 48 bits of Unix milliseconds then 80
 * random bits, in Crockford base32. Within one millisecond (or if the wall
 * clock steps back) the previous id's random part is incremented instead of
 * drawn again, so ids made by one process sort in creation order. A mutex
 * keeps that true across threads; a forked child starts a fresh sequence.
 *
 * The Paris date uses the EU summer-time rule directly (UTC+2 from the last
 * Sunday of March 01:00 UTC to the last Sunday of October 01:00 UTC, UTC+1
 * otherwise) rather than TZ/localtime_r, so it does not depend on the
 * process's TZ or on tzdata being installed in a container. */
#include "maillage/clock.h"

#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "maillage/log.h"

int64_t mg_clock_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mg_clock_monotonic_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- ULID ---------------------------------------------------------------- */

static pthread_mutex_t s_ulid_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t s_ulid_last_ms;
static uint8_t s_ulid_last_random[10];
static pid_t s_ulid_pid; /* the process that drew s_ulid_last_random */

static void s_random_bytes(uint8_t *buf, size_t len) {
    size_t got = 0;
    while (got < len) {
        ssize_t n = getrandom(buf + got, len - got, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            /* Without entropy ids could collide across processes: unsafe. */
            mg_error("getrandom failed: %s", strerror(errno));
            abort();
        }
        got += (size_t)n;
    }
}

/* Increment the 80-bit big-endian number; returns false on overflow. */
static bool s_increment(uint8_t r[10]) {
    for (int i = 9; i >= 0; i--) {
        if (++r[i] != 0) return true;
    }
    return false;
}

void mg_ulid_new(char out[MG_ULID_LEN + 1]) {
    static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    uint8_t bytes[16];
    uint64_t now = (uint64_t)mg_clock_now_ms();

    pthread_mutex_lock(&s_ulid_lock);
    /* A forked child inherits the state: incrementing it would give both
     * processes the same ids in that millisecond, so draw afresh. */
    pid_t pid = getpid();
    if (pid != s_ulid_pid) {
        s_ulid_pid = pid;
        s_ulid_last_ms = 0;
    }
    if (now > s_ulid_last_ms) {
        s_ulid_last_ms = now;
        s_random_bytes(s_ulid_last_random, sizeof s_ulid_last_random);
    } else if (!s_increment(s_ulid_last_random)) {
        /* 2^80 ids in one millisecond cannot happen; borrow the next one. */
        s_ulid_last_ms++;
        s_random_bytes(s_ulid_last_random, sizeof s_ulid_last_random);
    }
    uint64_t ms = s_ulid_last_ms & 0xFFFFFFFFFFFFULL;
    for (int i = 0; i < 6; i++)
        bytes[i] = (uint8_t)(ms >> (8 * (5 - i)));
    memcpy(bytes + 6, s_ulid_last_random, 10);
    pthread_mutex_unlock(&s_ulid_lock);

    /* 128 bits -> 26 base32 digits; the first digit carries only 3 bits. */
    int bit = -2; /* 26*5 = 130 bits: two leading zero bits */
    for (int c = 0; c < MG_ULID_LEN; c++) {
        unsigned v = 0;
        for (int k = 0; k < 5; k++, bit++) {
            unsigned b = 0;
            if (bit >= 0) b = (bytes[bit / 8] >> (7 - bit % 8)) & 1u;
            v = (v << 1) | b;
        }
        out[c] = alphabet[v];
    }
    out[MG_ULID_LEN] = '\0';
}

/* ---- Paris date -------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t s_days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void s_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int64_t s_floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
    return q;
}

/* Unix seconds of the last Sunday of `month` (3 or 10) of `year`, 01:00 UTC. */
static int64_t s_last_sunday_1h(int64_t year, unsigned month) {
    int64_t last = s_days_from_civil(year, month, 31); /* March and October have 31 days */
    int64_t weekday = (last + 4) % 7;                  /* 1970-01-01 was a Thursday (4) */
    if (weekday < 0) weekday += 7;
    return (last - weekday) * 86400 + 3600;
}

int mg_clock_paris_offset_s(int64_t unix_ms) {
    int64_t secs = s_floor_div(unix_ms, 1000);
    int64_t y;
    unsigned m, d;
    s_civil_from_days(s_floor_div(secs, 86400), &y, &m, &d);
    if (secs >= s_last_sunday_1h(y, 3) && secs < s_last_sunday_1h(y, 10)) return 7200;
    return 3600;
}

void mg_clock_paris_date(int64_t unix_ms, char out[11]) {
    int64_t secs = s_floor_div(unix_ms, 1000);
    int64_t y;
    unsigned m, d;
    s_civil_from_days(s_floor_div(secs + mg_clock_paris_offset_s(unix_ms), 86400), &y, &m, &d);
    if (y < 0) y = 0;
    if (y > 9999) y = 9999;
    /* Built by hand: snprintf into 11 bytes trips -Wformat-truncation. */
    out[0] = (char)('0' + y / 1000);
    out[1] = (char)('0' + y / 100 % 10);
    out[2] = (char)('0' + y / 10 % 10);
    out[3] = (char)('0' + y % 10);
    out[4] = '-';
    out[5] = (char)('0' + m / 10);
    out[6] = (char)('0' + m % 10);
    out[7] = '-';
    out[8] = (char)('0' + d / 10);
    out[9] = (char)('0' + d % 10);
    out[10] = '\0';
}

/* ---- the test clock ------------------------------------------------------------ */

static int s_test_checked;
static const char *s_test_file;
static int64_t s_test_offset_ms, s_test_read_us;

const char *mg_clock_test_file(void) {
    if (!s_test_checked) {
        s_test_checked = 1;
        const char *f = getenv("MAILLAGE_CLOCK_FILE");
        s_test_file = f && *f ? f : NULL;
    }
    return s_test_file;
}

int64_t mg_clock_service_now_ms(void) {
    if (!mg_clock_test_file()) return mg_clock_now_ms();
    /* Read again at most every 20 ms: cheap enough, and tests see a change
     * within one timer tick. */
    int64_t mono = mg_clock_monotonic_us();
    if (s_test_read_us == 0 || mono - s_test_read_us > 20000) {
        s_test_read_us = mono;
        FILE *fp = fopen(s_test_file, "r");
        if (fp) {
            long long off;
            if (fscanf(fp, "%lld", &off) == 1) s_test_offset_ms = off;
            fclose(fp);
        }
    }
    return mg_clock_now_ms() + s_test_offset_ms;
}

/* ---- deterministic ids --------------------------------------------------------- */

uint64_t mg_hash_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void mg_hash_hex(const char *const *parts, size_t n, char out[33]) {
    uint64_t a = 1469598103934665603ull, b = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < n; i++) {
        for (const unsigned char *p = (const unsigned char *)parts[i];; p++) {
            unsigned char c = *p ? *p : 0x1f;
            a = (a ^ c) * 1099511628211ull;
            b = (b ^ c) * 0x100000001b3ull + 0x632be59bd9b4e019ull;
            b = (b << 13) | (b >> 51);
            if (!*p) break;
        }
    }
    /* By hand: the matcher runs this for every pair of every event, and
     * printf is slow. */
    static const char hex[] = "0123456789abcdef";
    uint64_t v[2] = {mg_hash_mix64(a), mg_hash_mix64(b ^ a)};
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 16; i++) out[k * 16 + i] = hex[(v[k] >> (60 - 4 * i)) & 0xf];
    out[32] = '\0';
}

long long mg_clock_day_number(const char *date) {
    int y, mo, d;
    if (!date || strlen(date) != 10 || sscanf(date, "%4d-%2d-%2d", &y, &mo, &d) != 3) return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31) return -1;
    /* days_from_civil (H. Hinnant) */
    y -= mo <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153u * (unsigned)(mo + (mo > 2 ? -3 : 9)) + 2) / 5 + (unsigned)d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long long)doe - 719468;
}

int64_t mg_clock_paris_day_start_ms(const char *date) {
    long long day = mg_clock_day_number(date);
    if (day < 0) return -1;
    int64_t utc_midnight = (int64_t)day * 86400000;
    /* Paris's midnight is 1 or 2 hours before; the offset at UTC midnight is
     * that of the day (summer time changes at 01:00 UTC). */
    return utc_midnight - (int64_t)mg_clock_paris_offset_s(utc_midnight) * 1000;
}
