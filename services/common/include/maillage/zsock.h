/* zsock.h -- a ZeroMQ socket inside a libevent loop, done right.
 *
 * ZMQ_FD is edge-triggered: it signals that ZMQ_EVENTS may have changed, not
 * that a message is waiting. So on every wake-up this module reads ZMQ_EVENTS
 * and drains the socket until EAGAIN, at most `batch_max` messages per turn
 * (then it re-arms itself with event_active() so other events get a turn), and
 * after every send it re-checks ZMQ_EVENTS, because a send can consume the
 * pending read signal. Runs in the thread of the event base. */
#ifndef MAILLAGE_ZSOCK_H
#define MAILLAGE_ZSOCK_H

#include <stddef.h>

#include <event2/event.h>
#include <zmq.h>

typedef struct mg_zsock mg_zsock_t;

/* Most frames of a message handed to on_message: a message of more frames
 * comes as its first MG_ZSOCK_MAX_FRAMES - 1 and its last one (so that it
 * can still be answered), frame_count = MG_ZSOCK_MAX_FRAMES. */
#define MG_ZSOCK_MAX_FRAMES 16

/* Called once per received multipart message. `frames` are borrowed until the
 * callback returns (the callback may zmq_msg_move() one out to keep it). */
typedef void (*mg_zsock_message_fn)(mg_zsock_t *zsock, zmq_msg_t *frames, size_t frame_count, void *arg);

/* Called once at the end of each drained batch, after its messages: the place
 * to flush work gathered over the batch (e.g. a Redis pipeline). May be NULL. */
typedef void (*mg_zsock_batch_fn)(mg_zsock_t *zsock, void *arg);

/* Watch `socket` (borrowed: the caller keeps ownership and closes it after
 * destroying the zsock) in `base`. `on_message` may be NULL for send-only
 * sockets.
 * Returns NULL on error (errno set). Caller owns the result. */
mg_zsock_t *mg_zsock_new(struct event_base *base, void *socket, size_t batch_max,
                         mg_zsock_message_fn on_message, mg_zsock_batch_fn on_batch, void *arg);

/* Stop watching and free; accepts NULL and sets *zsock_p to NULL. */
void mg_zsock_destroy(mg_zsock_t **zsock_p);

/* The watched socket (borrowed). */
void *mg_zsock_socket(const mg_zsock_t *zsock);

/* Send `frame_count` frames as one multipart message, without blocking, then
 * re-check the socket's events. Returns 0 on success, -1 with errno set
 * (EAGAIN: high-water mark reached, EHOSTUNREACH: unknown ROUTER peer). */
int mg_zsock_send(mg_zsock_t *zsock, const void *const *data, const size_t *len, size_t frame_count);

/* From on_message: end the batch after this message (on_batch runs, then
 * reading goes on at the loop's next turn), e.g. when the batch holds
 * enough bytes. No effect outside on_message. */
void mg_zsock_end_batch(mg_zsock_t *zsock);

/* Stop (paused = 1) or resume (0) reading; used for back-pressure, for
 * instance while the journal is unavailable. */
void mg_zsock_pause(mg_zsock_t *zsock, int paused);

#endif
