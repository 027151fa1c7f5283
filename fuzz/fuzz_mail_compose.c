/* fuzz_mail_compose.c -- libFuzzer target for mg_outbound_compose.
 *
 * The input is split at NUL bytes into from, to, subject, text, html,
 * message-id and one extra header. Whatever they are, compose must not
 * crash, leak or read out of bounds; when a header field holds CR or LF it
 * must refuse (header injection); and what it writes must be a message an
 * SMTP server accepts as is: only CRLF line ends, header lines within 998
 * characters, body lines within 76 (quoted-printable) and 8-bit clean. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "maillage/outbound.h"

#define FIELDS 7

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *copy = malloc(size + 1);
    if (!copy) abort();
    memcpy(copy, data, size);
    copy[size] = '\0';
    const char *field[FIELDS] = {"a@b.c", "d@e.f", "", "", NULL, NULL, NULL};
    char *p = copy;
    for (int i = 0; i < FIELDS && p <= copy + size; i++) {
        field[i] = p;
        p += strlen(p) + 1;
    }
    const char *headers[] = {field[6], NULL};
    mg_mail_t mail = {.from = field[0],
                      .to = field[1],
                      .subject = field[2],
                      .text = field[3],
                      .html = field[4],
                      .message_id = field[5],
                      .headers = field[6] ? headers : NULL};
    char *msg = mg_outbound_compose(&mail);
    if (msg) {
        for (int i = 0; i < 3; i++)
            if (strpbrk(field[i], "\r\n")) abort(); /* an injection got through */
        if (field[6] && strpbrk(field[6], "\r\n")) abort();
        const char *body = strstr(msg, "\r\n\r\n");
        if (!body) abort();
        size_t col = 0;
        for (const char *c = msg; *c; c++) {
            if (c[0] == '\r' && c[1] == '\n') {
                col = 0;
                c++;
                continue;
            }
            if (*c == '\r' || *c == '\n') abort(); /* bare CR or LF */
            col++;
            if (c > body && (col > 76 || (unsigned char)*c >= 0x80)) abort();
            if (col > 998) abort();
        }
        free(msg);
    }
    free(copy);
    return 0;
}
