/* script.c -- command arguments, and a Lua script run with EVALSHA.
 *
 * The script is loaded with SCRIPT LOAD at each (re)connection and run with
 * EVALSHA; a NOSCRIPT answer (Redis restarted, or SCRIPT FLUSH) makes the
 * same call go again as EVAL, which also loads it, and holds new calls until
 * the others sent before it are sent again too, so calls run in the order
 * they were made. Arguments are kept until the reply for that second
 * chance. */
#include "maillage/script.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "maillage/log.h"
#include "maillage/mem.h"

/* ---- arguments ------------------------------------------------------------ */

void mg_args_init(mg_args_t *a) {
    memset(a, 0, sizeof(*a));
}

void mg_args_bytes(mg_args_t *a, const void *data, size_t len) {
    if (a->argc == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 32;
        a->argv = mg_realloc(a->argv, (size_t)a->cap * sizeof(*a->argv));
        a->lens = mg_realloc(a->lens, (size_t)a->cap * sizeof(*a->lens));
    }
    char *copy = mg_malloc(len + 1);
    if (len) memcpy(copy, data, len);
    copy[len] = '\0';
    a->argv[a->argc] = copy;
    a->lens[a->argc] = len;
    a->argc++;
}

void mg_args_str(mg_args_t *a, const char *s) {
    if (!s) s = "";
    mg_args_bytes(a, s, strlen(s));
}

void mg_args_int(mg_args_t *a, long long v) {
    /* By hand: several per pair of every event, and printf is slow. */
    char buf[24], *p = buf + sizeof(buf);
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) *--p = '-';
    mg_args_bytes(a, p, (size_t)(buf + sizeof(buf) - p));
}

void mg_args_double(mg_args_t *a, double v) {
    char buf[512]; /* "%.6f" of the largest double: 309 digits, the point and six */
    int n = isfinite(v) ? snprintf(buf, sizeof(buf), "%.6f", v) : snprintf(buf, sizeof(buf), "0");
    mg_args_bytes(a, buf, (size_t)n);
}

static void s_args_reserve(mg_args_t *a, int n) {
    if (a->cap >= n) return;
    while (a->cap < n)
        a->cap = a->cap ? a->cap * 2 : 32;
    a->argv = mg_realloc(a->argv, (size_t)a->cap * sizeof(*a->argv));
    a->lens = mg_realloc(a->lens, (size_t)a->cap * sizeof(*a->lens));
}

void mg_args_move(mg_args_t *dst, mg_args_t *src) {
    if (src->argc == 0) return;
    s_args_reserve(dst, dst->argc + src->argc);
    memcpy(dst->argv + dst->argc, src->argv, (size_t)src->argc * sizeof(*src->argv));
    memcpy(dst->lens + dst->argc, src->lens, (size_t)src->argc * sizeof(*src->lens));
    dst->argc += src->argc;
    src->argc = 0; /* the strings are dst's now */
}

void mg_args_clear(mg_args_t *a) {
    for (int i = 0; i < a->argc; i++)
        free(a->argv[i]);
    free(a->argv);
    free(a->lens);
    memset(a, 0, sizeof(*a));
}

/* ---- the script ------------------------------------------------------------- */

typedef struct s_call s_call_t;

struct mg_script {
    mg_redis_t *redis;
    const char *source;
    char sha[41]; /* "" until SCRIPT LOAD answers (the SHA1 of the source: it never changes) */
    /* After a NOSCRIPT (the script cache flushed), the calls sent with
     * EVALSHA before it fail too and are sent again with EVAL, in their
     * order; a new call sent meanwhile would run before them. So new calls
     * are held until every EVALSHA sent has its reply. */
    size_t by_sha;               /* EVALSHA calls awaiting their reply */
    int holding;                 /* a NOSCRIPT came: hold new calls */
    s_call_t *held, **held_tail; /* new calls held, oldest first */
};

struct s_call {
    mg_script_t *script;
    /* EVALSHA|EVAL, sha|source, numkeys, then the caller's arguments. */
    int argc;
    const char **argv;
    size_t *lens;
    char numkeys[24];
    mg_args_t owned; /* mg_script_call()'s arguments, kept until the reply */
    mg_redis_reply_fn cb;
    void *privdata;
    int retried;    /* sent with EVAL: a NOSCRIPT cannot come (or came once) */
    int by_sha;     /* sent with EVALSHA, reply to come */
    s_call_t *next; /* in script->held */
};

mg_script_t *mg_script_new(mg_redis_t *redis, const char *source) {
    mg_script_t *s = mg_calloc(1, sizeof(*s));
    s->redis = redis;
    s->source = source;
    s->held_tail = &s->held;
    return s;
}

static void s_call_free(s_call_t *call) {
    mg_args_clear(&call->owned);
    free(call->argv);
    free(call->lens);
    free(call);
}

/* Answer `call` (a NULL reply: nothing was done) and free it. */
static void s_call_lost(s_call_t *call) {
    if (call->cb) call->cb(call->script->redis, NULL, call->privdata);
    s_call_free(call);
}

void mg_script_destroy(mg_script_t **script_p) {
    if (!script_p || !*script_p) return;
    mg_script_t *s = *script_p;
    s->redis = NULL; /* destroyed first: the callbacks below get NULL */
    while (s->held) {
        s_call_t *call = s->held;
        s->held = call->next;
        s_call_lost(call);
    }
    free(s);
    *script_p = NULL;
}

static void s_on_loaded(mg_redis_t *redis, redisReply *reply, void *privdata) {
    mg_script_t *s = privdata;
    (void)redis;
    if (reply && reply->type == REDIS_REPLY_STRING && reply->len == 40) {
        memcpy(s->sha, reply->str, 40);
        s->sha[40] = '\0';
    } else if (reply) {
        mg_error("redis: SCRIPT LOAD refused: %s",
                 reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
    }
}

void mg_script_redis_up(mg_script_t *s) {
    const char *argv[3] = {"SCRIPT", "LOAD", s->source};
    size_t lens[3] = {6, 4, strlen(s->source)};
    mg_redis_command_argv(s->redis, s_on_loaded, s, 3, argv, lens);
}

static void s_on_reply(mg_redis_t *redis, redisReply *reply, void *privdata);

/* Send `call`: EVALSHA when the sha is known and it was not refused yet,
 * else EVAL (which also loads the script). */
static int s_send(s_call_t *call) {
    mg_script_t *s = call->script;
    call->by_sha = !call->retried && s->sha[0] != '\0';
    if (!call->by_sha) call->retried = 1;
    call->argv[0] = call->by_sha ? "EVALSHA" : "EVAL";
    call->argv[1] = call->by_sha ? s->sha : s->source;
    call->lens[0] = strlen(call->argv[0]);
    call->lens[1] = strlen(call->argv[1]);
    if (mg_redis_command_argv(s->redis, s_on_reply, call, call->argc, call->argv, call->lens) != 0) return -1;
    if (call->by_sha) s->by_sha++;
    return 0;
}

/* Once no EVALSHA sent before a NOSCRIPT awaits its reply, send the calls
 * held meanwhile, in their order (or answer them lost). */
static void s_release_held(mg_script_t *s) {
    if (!s->holding || s->by_sha > 0) return;
    s->holding = 0;
    s_call_t *call = s->held;
    s->held = NULL;
    s->held_tail = &s->held;
    while (call) {
        s_call_t *next = call->next;
        call->next = NULL;
        if (s_send(call) != 0) s_call_lost(call);
        call = next;
    }
}

static void s_on_reply(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_call_t *call = privdata;
    mg_script_t *s = call->script;
    if (call->by_sha) {
        call->by_sha = 0;
        s->by_sha--;
    }
    if (reply && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8) == 0 &&
        !call->retried) {
        s->holding = 1;
        call->retried = 1;
        int sent = s_send(call) == 0; /* as EVAL: the callback comes with its reply */
        s_release_held(s);
        if (sent) return;
        reply = NULL; /* Redis went away meanwhile */
    }
    if (call->cb) call->cb(redis, reply, call->privdata);
    s_call_free(call);
    s_release_held(s);
}

/* A call of `s` with the caller's `argc` arguments (the vectors copied, not
 * the bytes they point to). */
static s_call_t *s_call_new(mg_script_t *s, int numkeys, int argc, const char *const *argv,
                            const size_t *lens, mg_redis_reply_fn cb, void *privdata) {
    s_call_t *call = mg_calloc(1, sizeof(*call));
    call->script = s;
    call->cb = cb;
    call->privdata = privdata;
    call->argc = 3 + argc;
    call->argv = mg_malloc((size_t)call->argc * sizeof(*call->argv));
    call->lens = mg_malloc((size_t)call->argc * sizeof(*call->lens));
    snprintf(call->numkeys, sizeof(call->numkeys), "%d", numkeys);
    call->argv[2] = call->numkeys;
    call->lens[2] = strlen(call->numkeys);
    if (argc > 0) {
        memcpy(call->argv + 3, argv, (size_t)argc * sizeof(*argv));
        memcpy(call->lens + 3, lens, (size_t)argc * sizeof(*lens));
    }
    return call;
}

/* Send `call`, or hold it behind the calls a NOSCRIPT sends again. On -1
 * (Redis down) it is freed without its callback. */
static int s_call_start(s_call_t *call) {
    mg_script_t *s = call->script;
    if (!mg_redis_is_up(s->redis)) {
        s_call_free(call);
        return -1;
    }
    if (s->holding) {
        *s->held_tail = call;
        s->held_tail = &call->next;
        return 0;
    }
    if (s_send(call) != 0) {
        s_call_free(call);
        return -1;
    }
    return 0;
}

int mg_script_call_argv(mg_script_t *s, int numkeys, int argc, const char *const *argv, const size_t *lens,
                        mg_redis_reply_fn cb, void *privdata) {
    return s_call_start(s_call_new(s, numkeys, argc, argv, lens, cb, privdata));
}

int mg_script_call(mg_script_t *s, mg_args_t *args, mg_redis_reply_fn cb, void *privdata) {
    s_call_t *call = s_call_new(s, 0, args->argc, (const char *const *)args->argv, args->lens, cb, privdata);
    call->owned = *args; /* the strings the call points to: freed with it */
    mg_args_init(args);
    return s_call_start(call);
}
