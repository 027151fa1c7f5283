/* fuzz_allow_list.c -- libFuzzer target for the broker's CURVE allow-list
 * ([broker] curve_clients_file), through mg_curve_allow_list_check(), the
 * parser the broker loads the file with (curve.h).
 *
 * Whatever the bytes (passed as they come, not NUL-terminated, so a read
 * past their end is caught): the check answers without crashing, leaking
 * or reading out of bounds; a refusal says why in one line; a list it
 * accepts holds at most one key per line, and reads the same with a UTF-8
 * byte order mark before it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "maillage/curve.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    char err[256] = "";
    int n = mg_curve_allow_list_check(text, size, err, sizeof err);
    if (n < 0) {
        if (n != -1 || !err[0] || strchr(err, '\n')) abort();
        return 0;
    }
    size_t lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    if ((size_t)n > lines) abort();
    /* (Not near the 1 MiB bound, which the mark's 3 bytes could cross.) */
    if ((size >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0) || size > 65536) return 0;
    char *marked = malloc(size + 3);
    if (!marked) abort();
    memcpy(marked, "\xef\xbb\xbf", 3);
    memcpy(marked + 3, data, size);
    if (mg_curve_allow_list_check(marked, size + 3, err, sizeof err) != n) abort();
    free(marked);
    return 0;
}
