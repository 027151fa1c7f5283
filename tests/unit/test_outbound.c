/* test_outbound.c -- the messages mg_outbound_compose writes are valid
 * RFC 5322 / MIME: the headers are there, a French subject survives RFC 2047
 * encoding, both parts are quoted-printable in lines of at most 76
 * characters and decode back to the original UTF-8 text, the boundary is
 * random and valid, and no header injection gets through (to compose or to
 * mg_outbound_mail / mg_outbound_webhook, which refuse before any I/O). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

#include "maillage/outbound.h"

static const char s_subject[] = "Nouvelle mise en relation : locaux à Caen";
static const char s_text[] =
    "Bonjour Élise,\n\nLa Ressourcerie du Bocage et l'Épicerie solidaire de Caen pourraient "
    "coopérer : un local de 40 m² est disponible.\n.Point en tête de ligne.\n"
    "Égal = égal, espace finale \nFin.";
static const char s_html[] = "<p>Bonjour <b>Élise</b>, « locaux » à Caen.</p>\r\n";

static mg_mail_t s_mail(void) {
    return (mg_mail_t){
        .from = "Maillage CRESS Normandie <maillage@example.org>",
        .to = "Élise Durand <elise@example.org>",
        .subject = s_subject,
        .text = s_text,
        .html = s_html,
        .message_id = "notif-01J",
    };
}

/* The value of header `name` (unfolded, continuation lines joined without
 * their CRLF), from the header block of `msg`. Caller frees. */
static char *s_header(const char *msg, const char *name) {
    size_t n = strlen(name);
    const char *end = strstr(msg, "\r\n\r\n");
    for (const char *p = msg; p && p < end; p = strstr(p, "\r\n") ? strstr(p, "\r\n") + 2 : NULL) {
        if (strncmp(p, name, n) == 0 && p[n] == ':') {
            p += n + 1;
            while (*p == ' ')
                p++;
            char *out = malloc(strlen(p) + 1);
            size_t o = 0;
            while (*p) {
                if (p[0] == '\r' && p[1] == '\n') {
                    if (p[2] != ' ' && p[2] != '\t') break;
                    p += 2;
                    continue;
                }
                out[o++] = *p++;
            }
            out[o] = '\0';
            return out;
        }
    }
    return NULL;
}

static int s_b64_value(char c) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = strchr(alphabet, c);
    return c && p ? (int)(p - alphabet) : -1;
}

/* Decode a header value made of RFC 2047 B-encoded words separated by
 * blanks, checking each word's length (<= 75). Caller frees. */
static char *s_decode_words(const char *value) {
    char *out = calloc(1, strlen(value) + 1);
    size_t o = 0;
    const char *p = value;
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p) break;
        assert_int_equal(strncmp(p, "=?UTF-8?B?", 10), 0);
        const char *end = strstr(p + 10, "?=");
        assert_non_null(end);
        assert_true(end + 2 - p <= 75);
        uint32_t acc = 0;
        int bits = 0;
        for (const char *c = p + 10; c < end && *c != '='; c++) {
            int v = s_b64_value(*c);
            assert_true(v >= 0);
            acc = (acc << 6) | (uint32_t)v;
            bits += 6;
            if (bits >= 8) {
                bits -= 8;
                out[o++] = (char)((acc >> bits) & 0xff);
            }
        }
        p = end + 2;
    }
    out[o] = '\0';
    return out;
}

/* Decode quoted-printable `qp` (length n) to text with "\n" line ends,
 * checking that no line is longer than 76 characters. Caller frees. */
static char *s_decode_qp(const char *qp, size_t n) {
    char *out = calloc(1, n + 1);
    size_t o = 0, col = 0;
    for (size_t i = 0; i < n; i++) {
        if (qp[i] == '\r' && i + 1 < n && qp[i + 1] == '\n') {
            out[o++] = '\n';
            i++;
            col = 0;
            continue;
        }
        assert_true(qp[i] != '\n'); /* no bare LF */
        col++;
        if (qp[i] == '=') {
            if (qp[i + 1] == '\r' && qp[i + 2] == '\n') { /* soft break */
                assert_true(col <= 76);
                i += 2;
                col = 0;
                continue;
            }
            char hex[3] = {qp[i + 1], qp[i + 2], 0};
            assert_non_null(strchr("0123456789ABCDEF", hex[0]));
            assert_non_null(strchr("0123456789ABCDEF", hex[1]));
            out[o++] = (char)strtol(hex, NULL, 16);
            i += 2;
            col += 2;
        } else {
            assert_true((unsigned char)qp[i] < 0x80);
            out[o++] = qp[i];
        }
        assert_true(col <= 76);
    }
    out[o] = '\0';
    return out;
}

static char *s_boundary_of(const char *msg) {
    char *ctype = s_header(msg, "Content-Type");
    assert_non_null(ctype);
    assert_int_equal(strncmp(ctype, "multipart/alternative;", 22), 0);
    char *b = strstr(ctype, "boundary=\"");
    assert_non_null(b);
    b += 10;
    char *end = strchr(b, '"');
    assert_non_null(end);
    char *boundary = strndup(b, (size_t)(end - b));
    free(ctype);
    return boundary;
}

/* The decoded body of the part whose Content-Type starts with `type`. */
static char *s_part(const char *msg, const char *boundary, const char *type) {
    char delim[128];
    snprintf(delim, sizeof delim, "\r\n--%s\r\n", boundary);
    for (const char *p = strstr(msg, delim); p; p = strstr(p + 1, delim)) {
        const char *headers = p + strlen(delim);
        const char *body = strstr(headers, "\r\n\r\n");
        assert_non_null(body);
        body += 4;
        char *part_headers = strndup(headers, (size_t)(body - headers));
        bool match = strstr(part_headers, type) != NULL;
        if (match) {
            assert_non_null(strstr(part_headers, "charset=UTF-8"));
            assert_non_null(strstr(part_headers, "Content-Transfer-Encoding: quoted-printable"));
        }
        free(part_headers);
        if (!match) continue;
        char close[128];
        snprintf(close, sizeof close, "\r\n--%s", boundary);
        const char *end = strstr(body, close);
        assert_non_null(end);
        /* The CRLF before a delimiter belongs to the delimiter. */
        return s_decode_qp(body, (size_t)(end - body));
    }
    fail_msg("no %s part", type);
    return NULL;
}

static char *s_normalize(const char *s) {
    char *out = strdup(s);
    size_t o = 0;
    for (const char *p = s; *p; p++)
        if (!(p[0] == '\r' && p[1] == '\n')) out[o++] = *p;
    out[o] = '\0';
    return out;
}

static void compose_writes_every_required_header(void **state) {
    (void)state;
    mg_mail_t mail = s_mail();
    const char *extra[] = {"X-Maillage-Kind: match.found", NULL};
    mail.headers = extra;
    char *msg = mg_outbound_compose(&mail);
    assert_non_null(msg);

    char *date = s_header(msg, "Date");
    assert_non_null(date);
    /* "Thu, 26 Nov 2026 13:17:18 +0100": 31 characters, a Paris offset. */
    assert_int_equal(strlen(date), 31);
    assert_true(strstr(date, " +0100") || strstr(date, " +0200"));
    assert_int_equal(date[3], ',');
    free(date);

    char *h = s_header(msg, "Message-ID");
    assert_string_equal(h, "<notif-01J@example.org>");
    free(h);
    h = s_header(msg, "From");
    assert_string_equal(h, "\"Maillage CRESS Normandie\" <maillage@example.org>");
    free(h);
    h = s_header(msg, "MIME-Version");
    assert_string_equal(h, "1.0");
    free(h);
    h = s_header(msg, "Auto-Submitted");
    assert_string_equal(h, "auto-generated");
    free(h);
    h = s_header(msg, "X-Maillage-Kind");
    assert_string_equal(h, "match.found");
    free(h);

    /* Header lines stay within 78 characters. */
    const char *end = strstr(msg, "\r\n\r\n");
    for (const char *p = msg; p < end;) {
        const char *eol = strstr(p, "\r\n");
        assert_true(eol - p <= 78);
        p = eol + 2;
    }
    free(msg);
}

static void message_id_with_a_domain_is_kept_as_is(void **state) {
    (void)state;
    mg_mail_t mail = s_mail();
    mail.message_id = "k1.staff2.mail@maillage.example.org";
    char *msg = mg_outbound_compose(&mail);
    char *h = s_header(msg, "Message-ID");
    assert_string_equal(h, "<k1.staff2.mail@maillage.example.org>");
    free(h);
    free(msg);
}

static void utf8_subject_and_display_name_are_rfc2047_encoded(void **state) {
    (void)state;
    mg_mail_t mail = s_mail();
    char *msg = mg_outbound_compose(&mail);
    char *subject = s_header(msg, "Subject");
    assert_int_equal(strncmp(subject, "=?UTF-8?B?", 10), 0);
    char *decoded = s_decode_words(subject);
    assert_string_equal(decoded, s_subject);
    free(decoded);
    free(subject);

    char *to = s_header(msg, "To");
    char *lt = strstr(to, " <elise@example.org>");
    assert_non_null(lt);
    *lt = '\0';
    decoded = s_decode_words(to);
    assert_string_equal(decoded, "Élise Durand");
    free(decoded);
    free(to);
    free(msg);
}

static void long_subject_and_names_are_folded_without_splitting_characters(void **state) {
    (void)state;
    char subject[401] = "";
    for (int i = 0; i < 100; i++)
        strcat(subject, i % 2 ? "é" : "àb");
    mg_mail_t mail = s_mail();
    mail.subject = subject;
    mail.to = "Élise-Marguerite de la Ressourcerie du Bocage, coopérative d'intérêt collectif "
              "<elise.marguerite.durand@ressourcerie-du-bocage.example.org>";
    char *msg = mg_outbound_compose(&mail);
    /* Folded: no header line passes 76 characters (RFC 2047 2). */
    const char *head_end = strstr(msg, "\r\n\r\n");
    for (const char *p = msg; p < head_end;) {
        const char *eol = strstr(p, "\r\n");
        assert_true(eol - p <= 76);
        p = eol + 2;
    }
    char *value = s_header(msg, "Subject");
    /* Every encoded word decodes on its own to valid UTF-8: none ends in
     * the middle of a character. */
    for (char *w = strstr(value, "=?UTF-8?B?"); w; w = strstr(w + 1, "=?UTF-8?B?")) {
        char *end = strstr(w, "?=");
        char *one = strndup(w, (size_t)(end + 2 - w));
        char *text = s_decode_words(one);
        size_t n = strlen(text);
        assert_true(n > 0);
        assert_true(((unsigned char)text[n - 1] & 0xc0) != 0xc0);
        assert_true(((unsigned char)text[0] & 0xc0) != 0x80);
        free(text);
        free(one);
    }
    char *decoded = s_decode_words(value);
    assert_string_equal(decoded, subject);
    free(decoded);
    free(value);
    free(msg);
}

static void short_ascii_subject_stays_readable(void **state) {
    (void)state;
    mg_mail_t mail = s_mail();
    mail.subject = "Digest du jour";
    mail.to = "staff@example.org";
    char *msg = mg_outbound_compose(&mail);
    assert_non_null(strstr(msg, "\r\nSubject: Digest du jour\r\n"));
    assert_non_null(strstr(msg, "\r\nTo: staff@example.org\r\n"));
    free(msg);
}

static void both_parts_are_quoted_printable_and_decode_to_the_original(void **state) {
    (void)state;
    /* A long line of accents forces soft breaks. */
    char text[2048] = "";
    strcat(text, s_text);
    strcat(text, "\n");
    for (int i = 0; i < 120; i++)
        strcat(text, "é");
    strcat(text, "\n");
    mg_mail_t mail = s_mail();
    mail.text = text;
    char *msg = mg_outbound_compose(&mail);
    char *boundary = s_boundary_of(msg);

    char *plain = s_part(msg, boundary, "text/plain");
    assert_string_equal(plain, text);
    char *html = s_part(msg, boundary, "text/html");
    char *want = s_normalize(s_html);
    assert_string_equal(html, want);
    /* The risky characters are encoded: a leading dot, '=' and a blank at
     * the end of a line. */
    assert_non_null(strstr(msg, "\r\n=2EPoint"));
    assert_non_null(strstr(msg, "=3D"));
    assert_non_null(strstr(msg, "finale=20\r\n"));
    free(want);
    free(html);
    free(plain);
    free(boundary);
    free(msg);
}

static void boundary_is_valid_random_and_frames_two_parts(void **state) {
    (void)state;
    mg_mail_t mail = s_mail();
    char *a = mg_outbound_compose(&mail), *b = mg_outbound_compose(&mail);
    char *ba = s_boundary_of(a), *bb = s_boundary_of(b);
    assert_string_not_equal(ba, bb);
    size_t n = strlen(ba);
    assert_true(n >= 1 && n <= 70); /* RFC 2046 5.1.1 */
    for (const char *c = ba; *c; c++)
        assert_non_null(strchr("0123456789abcdefghijklmnopqrstuvwxyz"
                               "ABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=?",
                               *c));
    char delim[128], close[128];
    snprintf(delim, sizeof delim, "\r\n--%s\r\n", ba);
    snprintf(close, sizeof close, "\r\n--%s--\r\n", ba);
    int count = 0;
    for (const char *p = strstr(a, delim); p; p = strstr(p + 1, delim))
        count++;
    assert_int_equal(count, 2);
    const char *end = strstr(a, close);
    assert_non_null(end);
    assert_string_equal(end + strlen(close), "");
    free(ba);
    free(bb);
    free(a);
    free(b);
}

static void text_only_mail_is_a_single_part(void **state) {
    (void)state;
    mg_mail_t mail = s_mail();
    mail.html = NULL;
    char *msg = mg_outbound_compose(&mail);
    char *ctype = s_header(msg, "Content-Type");
    assert_string_equal(ctype, "text/plain; charset=UTF-8");
    free(ctype);
    assert_null(strstr(msg, "multipart"));
    char *body = strstr(msg, "\r\n\r\n") + 4;
    char *plain = s_decode_qp(body, strlen(body));
    char *want = s_normalize(s_text);
    assert_int_equal(strncmp(plain, want, strlen(want)), 0);
    free(want);
    free(plain);
    free(msg);
}

static void display_names_are_quoted_safely(void **state) {
    (void)state;
    mg_mail_t mail = s_mail();
    mail.from = "CRESS \"Normandie\", Caen <maillage@example.org>";
    char *msg = mg_outbound_compose(&mail);
    char *from = s_header(msg, "From");
    assert_string_equal(from, "\"CRESS \\\"Normandie\\\", Caen\" <maillage@example.org>");
    free(from);
    free(msg);
}

static void header_injection_is_refused(void **state) {
    (void)state;
    const char *bad_headers[][2] = {
        {"X-A: b\r\nBcc: victim@example.org", NULL},
        {"X-A: b\nBcc: victim@example.org", NULL},
        {"Bcc: victim@example.org", NULL},
        {"To: other@example.org", NULL},
        {"No colon here", NULL},
        {"Bad Name: value", NULL},
        {"X-Accent: é", NULL},
    };
    for (size_t i = 0; i < sizeof bad_headers / sizeof bad_headers[0]; i++) {
        mg_mail_t mail = s_mail();
        mail.headers = bad_headers[i];
        assert_null(mg_outbound_compose(&mail));
    }
    const char *bad_to[] = {"elise@example.org\r\nBcc: victim@example.org",
                            "elise@example.org\nBcc: victim@example.org",
                            "a@example.org, b@example.org",
                            "Name <a@example.org> <b@example.org>",
                            "no-at-sign",
                            "",
                            "élise@example.org",
                            "<a@example.org>\r\n",
                            NULL};
    for (size_t i = 0; i < sizeof bad_to / sizeof bad_to[0]; i++) {
        mg_mail_t mail = s_mail();
        mail.to = bad_to[i];
        assert_null(mg_outbound_compose(&mail));
    }
    mg_mail_t mail = s_mail();
    mail.subject = "Salut\r\nBcc: victim@example.org";
    assert_null(mg_outbound_compose(&mail));
    mail = s_mail();
    mail.subject = "Salut\nBcc: victim@example.org";
    assert_null(mg_outbound_compose(&mail));
    mail = s_mail();
    mail.from = "Maillage <maillage@example.org>\r\nBcc: victim@example.org";
    assert_null(mg_outbound_compose(&mail));
    mail = s_mail();
    mail.message_id = "id>\r\nBcc: victim@example.org";
    assert_null(mg_outbound_compose(&mail));
    mail = s_mail();
    mail.message_id = "a b";
    assert_null(mg_outbound_compose(&mail));
}

static int s_calls;
static void addresses_and_webhook_urls_are_checked_as_sending_would(void **state) {
    (void)state;
    const char *mailboxes[] = {"claire@cress.example", "Claire Dupont <claire@cress.example>",
                               "  maillage@localhost  ", "Maillage CRESS Normandie <maillage@localhost>"};
    for (size_t i = 0; i < sizeof mailboxes / sizeof mailboxes[0]; i++)
        assert_true(mg_outbound_mailbox_is_valid(mailboxes[i]));
    const char *not_one[] = {"",
                             "claire",
                             "claire@",
                             "@cress.example",
                             "claire@cress.example, remi@cress.example",
                             "claire@cress.example;remi@cress.example",
                             "a@b@c",
                             "Claire <claire@cress.example",
                             "claire@cress.example\r\nBcc: x@y.z",
                             "<a@b> <c@d>"};
    for (size_t i = 0; i < sizeof not_one / sizeof not_one[0]; i++)
        assert_false(mg_outbound_mailbox_is_valid(not_one[i]));
    assert_false(mg_outbound_mailbox_is_valid(NULL));
    const char *urls[] = {"http://127.0.0.1:8065/hooks/x", "https://chat.cress.example/hooks/abc",
                          "HTTPS://x"};
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++)
        assert_true(mg_outbound_webhook_url_is_valid(urls[i]));
    const char *bad_urls[] = {"",
                              "ftp://x/",
                              "http://",
                              "https:///path",
                              "http://host/a b",
                              "mattermost.example",
                              "file:///etc/passwd",
                              "http://x/\n",
                              NULL};
    for (size_t i = 0; i < sizeof bad_urls / sizeof bad_urls[0]; i++)
        assert_false(mg_outbound_webhook_url_is_valid(bad_urls[i]));
    /* Slack's webhooks, by their host only */
    assert_true(mg_outbound_webhook_is_slack("https://hooks.slack.com/services/T000/B000/XXXX"));
    assert_true(mg_outbound_webhook_is_slack("HTTPS://Hooks.Slack.com:443/services/T/B/X"));
    const char *not_slack[] = {"https://hooks.slack.com.evil.example/services/x", "http://hooks.slack.com/x",
                               "https://chat.cress.example/hooks/abc", "https://hooks.slack.com",
                               "https://hooks.slack.com:x@chat.cress.example/hooks/abc",
                               "https://hooks.slack.com:443@chat.cress.example/hooks/abc", NULL};
    for (size_t i = 0; i < sizeof not_slack / sizeof not_slack[0]; i++)
        assert_false(mg_outbound_webhook_is_slack(not_slack[i]));
}

static void s_count(const mg_outbound_result_t *r, void *arg) {
    (void)r;
    (void)arg;
    s_calls++;
}

static void invalid_requests_fail_at_once_without_callback(void **state) {
    (void)state;
    struct event_base *base = event_base_new();
    mg_outbound_t *out = mg_outbound_new(base);
    assert_non_null(out);
    s_calls = 0;
    mg_mail_t mail = s_mail();
    mail.smtp_url = "smtp://127.0.0.1:1";
    mail.to = "a@example.org\r\nRCPT TO:<victim@example.org>";
    assert_int_equal(mg_outbound_mail(out, &mail, s_count, NULL), -1);
    mail = s_mail();
    mail.smtp_url = "http://127.0.0.1:1/";
    assert_int_equal(mg_outbound_mail(out, &mail, s_count, NULL), -1);
    mail.smtp_url = NULL;
    assert_int_equal(mg_outbound_mail(out, &mail, s_count, NULL), -1);
    assert_int_equal(mg_outbound_webhook(out, "file:///etc/passwd", "{}", NULL, 100, s_count, NULL), -1);
    assert_int_equal(mg_outbound_webhook(out, "smtp://127.0.0.1:1", "{}", NULL, 100, s_count, NULL), -1);
    /* An idempotency key that would break the header line. */
    assert_int_equal(mg_outbound_webhook(out, "http://127.0.0.1:9/", "{}", "a\r\nX-Evil: 1", 100, s_count, NULL), -1);
    assert_int_equal(mg_outbound_pending(out), 0);
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(s_calls, 0);
    mg_outbound_destroy(&out);
    assert_null(out);
    mg_outbound_destroy(&out); /* accepts NULL */
    event_base_free(base);
}

static void destroy_ends_requests_in_flight_once_as_retryable(void **state) {
    (void)state;
    struct event_base *base = event_base_new();
    mg_outbound_t *out = mg_outbound_new(base);
    s_calls = 0;
    /* Never run the loop: the transfer cannot have gone anywhere. */
    assert_int_equal(mg_outbound_webhook(out, "http://127.0.0.1:9/", "{}", NULL, 1000, s_count, NULL), 0);
    assert_int_equal(mg_outbound_pending(out), 1);
    assert_int_equal(s_calls, 0); /* never before the call returns */
    mg_outbound_destroy(&out);
    assert_int_equal(s_calls, 1);
    event_base_free(base);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(compose_writes_every_required_header),
        cmocka_unit_test(message_id_with_a_domain_is_kept_as_is),
        cmocka_unit_test(utf8_subject_and_display_name_are_rfc2047_encoded),
        cmocka_unit_test(long_subject_and_names_are_folded_without_splitting_characters),
        cmocka_unit_test(short_ascii_subject_stays_readable),
        cmocka_unit_test(both_parts_are_quoted_printable_and_decode_to_the_original),
        cmocka_unit_test(boundary_is_valid_random_and_frames_two_parts),
        cmocka_unit_test(text_only_mail_is_a_single_part),
        cmocka_unit_test(display_names_are_quoted_safely),
        cmocka_unit_test(header_injection_is_refused),
        cmocka_unit_test(addresses_and_webhook_urls_are_checked_as_sending_would),
        cmocka_unit_test(invalid_requests_fail_at_once_without_callback),
        cmocka_unit_test(destroy_ends_requests_in_flight_once_as_retryable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
