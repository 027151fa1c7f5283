/* bench_nats.c -- NATS JetStream figures for the comparison (not a test).
 *
 *   bench_nats URL throughput SECONDS MAX_PENDING TAG
 *       js_PublishAsync with a message id (Nats-Msg-Id, JetStream's
 *       deduplication), for SECONDS, then js_PublishAsyncComplete; prints
 *       "acked=N seconds=S rate=R" (publishes acknowledged per second).
 *   bench_nats URL latency COUNT TAG
 *       js_Publish (synchronous), one at a time; prints "p50_us=.. p99_us=..".
 *
 * The stream BENCH (subject bench.>, file storage) is created if missing.
 * Payloads are BENCH_EVENT_BYTES bytes, like the broker's envelopes. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

#include "bench_common.h"

static volatile int64_t s_errors;

static void s_on_err(jsCtx *js, jsPubAckErr *pae, void *closure) {
    (void)js;
    (void)closure;
    if (s_errors++ == 0)
        fprintf(stderr, "bench_nats: async publish failed: %s\n", pae->ErrText ? pae->ErrText : "?");
}

static int s_check(natsStatus s, const char *what) {
    if (s == NATS_OK) return 0;
    fprintf(stderr, "bench_nats: %s: %s\n", what, natsStatus_GetText(s));
    return -1;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: bench_nats URL throughput SECONDS MAX_PENDING TAG | URL latency COUNT TAG\n");
        return 2;
    }
    int throughput = strcmp(argv[2], "throughput") == 0;
    const char *tag = argv[argc - 1];
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsOptions jo;
    jsErrCode jerr = 0;
    int rc = 1;
    char payload[BENCH_EVENT_BYTES];
    memset(payload, 'x', sizeof(payload));

    if (s_check(natsConnection_ConnectTo(&nc, argv[1]), "connect") != 0) goto out;
    jsOptions_Init(&jo);
    jo.PublishAsync.ErrHandler = s_on_err;
    if (throughput) jo.PublishAsync.MaxPending = atoi(argv[4]);
    if (s_check(natsConnection_JetStream(&js, nc, &jo), "JetStream context") != 0) goto out;

    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = "BENCH";
    const char *subjects[] = {"bench.>"};
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    jsStreamInfo *si = NULL;
    natsStatus st = js_AddStream(&si, js, &sc, NULL, &jerr);
    if (st != NATS_OK && jerr != JSStreamNameExistErr) {
        s_check(st, "add stream");
        goto out;
    }
    jsStreamInfo_Destroy(si);

    char subject[64], id[64];
    snprintf(subject, sizeof(subject), "bench.%s", tag);
    jsPubOptions po;
    if (throughput) {
        double seconds = atof(argv[3]);
        uint64_t t0 = bench_now_ns(), stop = t0 + (uint64_t)(seconds * 1e9);
        int64_t n = 0;
        while (bench_now_ns() < stop) {
            for (int k = 0; k < 256; k++, n++) {
                jsPubOptions_Init(&po);
                snprintf(id, sizeof(id), "%s-%016" PRId64, tag, n);
                po.MsgId = id;
                if (s_check(js_PublishAsync(js, subject, payload, sizeof(payload), &po), "publish async") != 0)
                    goto out;
            }
        }
        jsPubOptions_Init(&po);
        po.MaxWait = 30000;
        if (s_check(js_PublishAsyncComplete(js, &po), "publish async complete") != 0) goto out;
        double elapsed = (double)(bench_now_ns() - t0) / 1e9;
        int64_t acked = n - s_errors;
        printf("acked=%" PRId64 " bad=%" PRId64 " seconds=%.3f rate=%.0f\n", acked, (int64_t)s_errors, elapsed,
               (double)acked / elapsed);
        rc = s_errors ? 1 : 0;
    } else {
        long count = atol(argv[3]);
        uint64_t *samples = calloc((size_t)count, sizeof(*samples));
        for (long i = -100; i < count; i++) {
            jsPubOptions_Init(&po);
            snprintf(id, sizeof(id), "%s-%016ld", tag, i + 100);
            po.MsgId = id;
            jsPubAck *pa = NULL;
            uint64_t a = bench_now_ns();
            st = js_Publish(&pa, js, subject, payload, sizeof(payload), &po, &jerr);
            uint64_t b = bench_now_ns();
            if (s_check(st, "publish") != 0) {
                free(samples);
                goto out;
            }
            jsPubAck_Destroy(pa);
            if (i >= 0) samples[i] = b - a;
        }
        double p50 = bench_quantile_us(samples, (size_t)count, 0.50);
        double p99 = bench_quantile_us(samples, (size_t)count, 0.99);
        printf("count=%ld bad=0 p50_us=%.1f p99_us=%.1f\n", count, p50, p99);
        free(samples);
        rc = 0;
    }
out:
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    nats_Close();
    return rc;
}
