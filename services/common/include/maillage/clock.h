/* clock.h -- wall-clock time and ids. Any thread. */
#ifndef MAILLAGE_CLOCK_H
#define MAILLAGE_CLOCK_H

#include <stddef.h>
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

/* Days from 1970-01-01 to `date` ("YYYY-MM-DD"), or -1 if it is not a date
 * of that form. */
long long mg_clock_day_number(const char *date);

/* When `date` ("YYYY-MM-DD") begins in Europe/Paris, in Unix ms, or -1 if it
 * is not a date of that form. */
int64_t mg_clock_paris_day_start_ms(const char *date);

/* The time a daemon acts on, in Unix ms: the wall clock, plus the offset in
 * milliseconds written in the file named by MAILLAGE_CLOCK_FILE when that
 * variable is set (re-read at most every 20 ms), so integration tests can move
 * a daemon to tomorrow. Tests only: a daemon using it logs a warning at start
 * when mg_clock_test_file() is not NULL. One event-loop thread. */
int64_t mg_clock_service_now_ms(void);

/* The test clock file (MAILLAGE_CLOCK_FILE), or NULL when there is none. */
const char *mg_clock_test_file(void);

/* ---- Deterministic ids ---------------------------------------------------- */

/* A 64-bit finaliser (splitmix64): spreads the bits of `z`. */
uint64_t mg_hash_mix64(uint64_t z);

/* 128 bits of hash of `parts` (each followed by a 0x1f separator, which no id
 * contains) as 32 lowercase hex digits + NUL: the stable ids of matches and
 * notifications, derived from what they are about. Not cryptographic. */
void mg_hash_hex(const char *const *parts, size_t n, char out[33]);

#endif
