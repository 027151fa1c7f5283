/* log.c -- one line per record on stderr.
 *
 * Each record is formatted into a stack buffer and written with a single
 * write(2), so lines from several threads (or from a daemon and its children
 * sharing stderr) never interleave. Control characters in the message are
 * replaced by spaces: a value coming from a producer must not be able to
 * forge a log line. */
#include "maillage/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

mg_log_level_t mg_log_threshold = MG_LOG_INFO;
static const char *s_program = "maillage";

static const char *const s_level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void mg_log_init(const char *program, mg_log_level_t level) {
    if (program && *program) s_program = program;
    mg_log_threshold = level;
}

int mg_fail(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int mg_log_level_parse(const char *name, mg_log_level_t *level) {
    static const struct {
        const char *name;
        mg_log_level_t level;
    } names[] = {
        {"debug", MG_LOG_DEBUG},  {"info", MG_LOG_INFO},   {"warn", MG_LOG_WARN},
        {"warning", MG_LOG_WARN}, {"error", MG_LOG_ERROR},
    };
    if (!name) return -1;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcasecmp(name, names[i].name) == 0) {
            *level = names[i].level;
            return 0;
        }
    }
    return -1;
}

void mg_log_write(mg_log_level_t level, const char *fmt, ...) {
    char line[4096];
    int saved_errno = errno; /* callers often log then inspect errno */
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    if ((unsigned)level > MG_LOG_ERROR) level = MG_LOG_ERROR;

    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s[%ld] %s ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000),
                     s_program, (long)getpid(), s_level_names[level]);
    if (n < 0) n = 0;
    size_t head = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;

    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + head, sizeof line - head, fmt, ap);
    va_end(ap);
    size_t len = head;
    if (m > 0) len += (size_t)m < sizeof line - head ? (size_t)m : sizeof line - head - 1;
    /* Keep room for the newline; a truncated message ends in "...". */
    if (len > sizeof line - 2) {
        len = sizeof line - 2;
        memcpy(line + len - 3, "...", 3);
    }
    for (size_t i = head; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c < 0x20 || c == 0x7f) line[i] = ' ';
    }
    line[len++] = '\n';

    ssize_t written;
    do {
        written = write(STDERR_FILENO, line, len);
    } while (written < 0 && errno == EINTR);
    errno = saved_errno;
}
