/* log.h -- logging to stderr, one line per record.
 *
 * Format: "2026-11-26T11:00:00.123Z broker[1234] INFO message". The level is
 * checked before the arguments are evaluated, so a debug line costs nothing
 * when debug is off. Never log personal data (contact fields): pass ids.
 * Any thread (each line is written with one write(2)). */
#ifndef MAILLAGE_LOG_H
#define MAILLAGE_LOG_H

#include <stddef.h>

typedef enum {
    MG_LOG_DEBUG = 0,
    MG_LOG_INFO = 1,
    MG_LOG_WARN = 2,
    MG_LOG_ERROR = 3,
} mg_log_level_t;

extern mg_log_level_t mg_log_threshold;

/* Set the program name shown on each line (borrowed; must outlive logging)
 * and the minimum level. */
void mg_log_init(const char *program, mg_log_level_t level);

/* Parse "debug", "info", "warn" or "error". Returns 0 on success, -1 if the
 * name is unknown (and *level is untouched). */
int mg_log_level_parse(const char *name, mg_log_level_t *level);

void mg_log_write(mg_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Write a failure's reason into the caller's buffer `err` (of `errlen`
 * bytes; nothing when it is NULL or empty) and return -1: the convention of
 * every function that reports why it failed through (err, errlen), and is
 * not logging (its caller decides where the reason goes). */
int mg_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define MG_LOG(level, ...)                                                                         \
    do {                                                                                           \
        if ((level) >= mg_log_threshold) mg_log_write((level), __VA_ARGS__);                       \
    } while (0)
#define mg_debug(...) MG_LOG(MG_LOG_DEBUG, __VA_ARGS__)
#define mg_info(...) MG_LOG(MG_LOG_INFO, __VA_ARGS__)
#define mg_warn(...) MG_LOG(MG_LOG_WARN, __VA_ARGS__)
#define mg_error(...) MG_LOG(MG_LOG_ERROR, __VA_ARGS__)

#endif
