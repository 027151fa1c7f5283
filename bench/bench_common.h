/* bench_common.h -- helpers shared by the benchmark programs (not a test).
 *
 * Every benchmark runs for a bounded time, prints its figures as one line of
 * "key=value" pairs on stdout for bench/run.sh, and exits 0 only if every
 * message it counted was acknowledged as it should. */
#ifndef MAILLAGE_BENCH_COMMON_H
#define MAILLAGE_BENCH_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Size of the events every benchmark sends (the "200-byte events"). */
#define BENCH_EVENT_BYTES 200

static inline uint64_t bench_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int bench_cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The q-quantile (0..1) of n samples; sorts them. */
static inline double bench_quantile_us(uint64_t *ns, size_t n, double q) {
    if (n == 0) return 0;
    qsort(ns, n, sizeof(*ns), bench_cmp_u64);
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return (double)ns[i] / 1000.0;
}

/* Write a fixed-width decimal id of `width` digits at `out`. */
static inline void bench_fill_digits(char *out, size_t width, uint64_t n) {
    for (size_t i = width; i > 0; i--) {
        out[i - 1] = (char)('0' + n % 10);
        n /= 10;
    }
}

#endif
