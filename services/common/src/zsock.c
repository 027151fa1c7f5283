/* zsock.c -- a ZeroMQ socket inside a libevent loop.
 *
 * ZMQ_FD becomes readable when ZMQ_EVENTS *may* have changed, and only on the
 * edge: if we leave a message in the socket and go back to sleep, nothing
 * will ever wake us up for it. Hence the three rules implemented here:
 *   1. on every wake-up, drain until ZMQ_EVENTS says there is nothing left
 *      (or batch_max messages were read: then re-arm with event_active() so
 *      that the other events of the loop get their turn first);
 *   2. after every send, re-check ZMQ_EVENTS, because the send may have
 *      consumed the edge that announced an incoming message;
 *   3. when reading resumes after a pause, re-check as well (the edge may
 *      have come and gone while we were not listening). */
#include "maillage/zsock.h"

#include <errno.h>
#include <stdlib.h>

#include "maillage/log.h"
#include "maillage/mem.h"

#define S_MAX_FRAMES MG_ZSOCK_MAX_FRAMES

struct mg_zsock {
    struct event_base *base;
    void *socket;
    struct event *event;
    size_t batch_max;
    mg_zsock_message_fn on_message;
    mg_zsock_batch_fn on_batch;
    void *arg;
    int paused;
    int draining;               /* inside s_drain: a send must not re-arm recursively */
    int end_batch;              /* mg_zsock_end_batch(): flush after this message */
    unsigned long long truncated; /* messages with too many frames */
};

/* 1 if the socket has a message waiting, 0 if not, -1 on error. */
static int s_readable(mg_zsock_t *zsock) {
    int events = 0;
    size_t len = sizeof(events);
    for (;;) {
        if (zmq_getsockopt(zsock->socket, ZMQ_EVENTS, &events, &len) == 0) break;
        if (errno == EINTR) continue;
        return -1;
    }
    return (events & ZMQ_POLLIN) ? 1 : 0;
}

/* Read one whole multipart message and hand it to the callback. Returns 1 if a
 * message was consumed (delivered or dropped), 0 on EAGAIN, -1 on error. */
static int s_read_one(mg_zsock_t *zsock) {
    zmq_msg_t frames[S_MAX_FRAMES];
    size_t count = 0;
    int too_many = 0;
    for (;;) {
        zmq_msg_t *frame = &frames[count < S_MAX_FRAMES ? count : S_MAX_FRAMES - 1];
        if (count >= S_MAX_FRAMES) {
            /* Keep reading the rest of the message into the last slot, so
             * that it ends holding the last frame. */
            zmq_msg_close(frame);
            too_many = 1;
        }
        zmq_msg_init(frame);
        int rc;
        do {
            rc = zmq_msg_recv(frame, zsock->socket, ZMQ_DONTWAIT);
        } while (rc < 0 && errno == EINTR);
        if (rc < 0) {
            int saved = errno;
            zmq_msg_close(frame);
            size_t kept = count < S_MAX_FRAMES ? count : S_MAX_FRAMES - 1;
            for (size_t i = 0; i < kept; i++)
                zmq_msg_close(&frames[i]);
            /* Frames of one message arrive atomically, so EAGAIN can only
             * happen before the first one. */
            if (saved == EAGAIN && count == 0) return 0;
            errno = saved;
            return -1;
        }
        int more = zmq_msg_more(frame);
        count++;
        if (!more) break;
    }
    if (too_many) {
        count = S_MAX_FRAMES;
        zsock->truncated++;
        mg_warn(
            "zsock: a message of more than %d frames delivered as its first %d and its last (%llu so far)",
            S_MAX_FRAMES, S_MAX_FRAMES - 1, zsock->truncated);
    }
    if (zsock->on_message) zsock->on_message(zsock, frames, count, zsock->arg);
    for (size_t i = 0; i < count; i++)
        zmq_msg_close(&frames[i]);
    return 1;
}

/* Drain up to batch_max messages, then flush the batch. */
static void s_drain(mg_zsock_t *zsock) {
    size_t read = 0;
    int again = 0;
    zsock->draining = 1;
    while (!zsock->paused) {
        if (read >= zsock->batch_max || zsock->end_batch) {
            /* The cap is reached: let other events run, come back soon. */
            zsock->end_batch = 0;
            again = s_readable(zsock) == 1;
            break;
        }
        int ready = s_readable(zsock);
        if (ready <= 0) {
            if (ready < 0 && errno != ETERM)
                mg_error("zsock: reading ZMQ_EVENTS failed: %s", zmq_strerror(errno));
            break;
        }
        int rc = s_read_one(zsock);
        if (rc == 0) continue; /* spurious POLLIN: ask ZMQ_EVENTS again */
        if (rc < 0) {
            if (errno != ETERM) mg_error("zsock: receive failed: %s", zmq_strerror(errno));
            break;
        }
        read++;
    }
    zsock->draining = 0;
    if (read > 0 && zsock->on_batch) zsock->on_batch(zsock, zsock->arg);
    /* A send from on_batch may have consumed the edge: check once more. */
    if (!again && !zsock->paused && s_readable(zsock) == 1) again = 1;
    if (again && !zsock->paused) event_active(zsock->event, EV_READ, 0);
}

static void s_on_event(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    s_drain(arg);
}

mg_zsock_t *mg_zsock_new(struct event_base *base, void *socket, size_t batch_max,
                         mg_zsock_message_fn on_message, mg_zsock_batch_fn on_batch, void *arg) {
    if (!base || !socket || batch_max == 0) {
        errno = EINVAL;
        return NULL;
    }
    int fd = -1;
    size_t len = sizeof(fd);
    if (zmq_getsockopt(socket, ZMQ_FD, &fd, &len) != 0) return NULL;

    mg_zsock_t *zsock = mg_calloc(1, sizeof(*zsock));
    zsock->base = base;
    zsock->socket = socket;
    zsock->batch_max = batch_max;
    zsock->on_message = on_message;
    zsock->on_batch = on_batch;
    zsock->arg = arg;
    zsock->event = event_new(base, fd, EV_READ | EV_PERSIST, s_on_event, zsock);
    if (!zsock->event || event_add(zsock->event, NULL) != 0) goto err;
    /* Messages may already be queued (the edge happened before we watched). */
    if (on_message) event_active(zsock->event, EV_READ, 0);
    return zsock;
err:
    if (zsock->event) event_free(zsock->event);
    free(zsock);
    errno = ENOMEM;
    return NULL;
}

void mg_zsock_destroy(mg_zsock_t **zsock_p) {
    if (!zsock_p || !*zsock_p) return;
    mg_zsock_t *zsock = *zsock_p;
    event_free(zsock->event);
    free(zsock);
    *zsock_p = NULL;
}

void *mg_zsock_socket(const mg_zsock_t *zsock) {
    return zsock->socket;
}

int mg_zsock_send(mg_zsock_t *zsock, const void *const *data, const size_t *len, size_t frame_count) {
    int rc = 0;
    for (size_t i = 0; i < frame_count; i++) {
        int flags = ZMQ_DONTWAIT | (i + 1 < frame_count ? ZMQ_SNDMORE : 0);
        int sent;
        do {
            sent = zmq_send(zsock->socket, data[i], len[i], flags);
        } while (sent < 0 && errno == EINTR);
        if (sent < 0) {
            /* ZeroMQ sends multipart messages atomically: if the first frame
             * went out, the others cannot fail with EAGAIN. */
            rc = -1;
            break;
        }
    }
    int saved = errno;
    /* The send may have swallowed the edge announcing an incoming message.
     * Inside s_drain the loop re-checks by itself. */
    if (!zsock->draining && !zsock->paused && zsock->on_message && s_readable(zsock) == 1)
        event_active(zsock->event, EV_READ, 0);
    errno = saved;
    return rc;
}

void mg_zsock_end_batch(mg_zsock_t *zsock) {
    if (zsock->draining) zsock->end_batch = 1;
}

void mg_zsock_pause(mg_zsock_t *zsock, int paused) {
    if (zsock->paused == !!paused) return;
    zsock->paused = !!paused;
    if (paused) {
        event_del(zsock->event);
    } else {
        event_add(zsock->event, NULL);
        /* Messages that arrived meanwhile signalled an edge we ignored. */
        if (zsock->on_message) event_active(zsock->event, EV_READ, 0);
    }
}
