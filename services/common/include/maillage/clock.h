/* clock.h -- wall-clock time and ids. Any thread. */
#ifndef MAILLAGE_CLOCK_H
#define MAILLAGE_CLOCK_H

#include <stdint.h>

/* Current time in Unix milliseconds (UTC). */
int64_t mg_clock_now_ms(void);

/* Monotonic time in microseconds, for latency measurements only. */
int64_t mg_clock_monotonic_us(void);

/* Length of a ULID in characters, without the terminating NUL. */
#define MG_ULID_LEN 26

/* Write a new ULID (Crockford base32, 26 chars + NUL) into `out`. Ids made
 * by one process in the same millisecond are strictly increasing. */
void mg_ulid_new(char out[MG_ULID_LEN + 1]);

/* Today's date in Europe/Paris as "YYYY-MM-DD" (11 bytes with NUL), from a
 * Unix time in milliseconds. */
void mg_clock_paris_date(int64_t unix_ms, char out[11]);

/* Offset of Europe/Paris from UTC at `unix_ms`, in seconds: 7200 in summer
 * time, 3600 otherwise (EU rule: summer time from the last Sunday of March
 * 01:00 UTC to the last Sunday of October 01:00 UTC). */
int mg_clock_paris_offset_s(int64_t unix_ms);

#endif
