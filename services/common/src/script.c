/* script.c -- command arguments, and a Lua script run with EVALSHA.
 *
 * The script is loaded with SCRIPT LOAD at each (re)connection and run with
 * EVALSHA; a NOSCRIPT answer (Redis restarted, or SCRIPT FLUSH) makes the
 * same call go again as EVAL, which also loads it. Arguments are kept until
 * the reply for that second chance. */
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

struct mg_script {
    mg_redis_t *redis;
    const char *source;
    char sha[41];
};

typedef struct {
    mg_script_t *script;
    mg_args_t args; /* ARGV[0..] = EVALSHA, sha, 0, then the script's ARGV */
    mg_redis_reply_fn cb;
    void *privdata;
    int second_chance;
} s_call_t;

mg_script_t *mg_script_new(mg_redis_t *redis, const char *source) {
    mg_script_t *s = mg_calloc(1, sizeof(*s));
    s->redis = redis;
    s->source = source;
    return s;
}

void mg_script_destroy(mg_script_t **script_p) {
    if (!script_p || !*script_p) return;
    free(*script_p);
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

static int s_send(s_call_t *call);

static void s_on_reply(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_call_t *call = privdata;
    (void)redis;
    if (reply && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8) == 0 &&
        !call->second_chance) {
        call->second_chance = 1;
        free(call->args.argv[0]);
        free(call->args.argv[1]);
        call->args.argv[0] = mg_strdup("EVAL");
        call->args.lens[0] = 4;
        call->args.argv[1] = mg_strdup(call->script->source);
        call->args.lens[1] = strlen(call->script->source);
        if (s_send(call) == 0) return;
        reply = NULL; /* Redis went away meanwhile */
    }
    if (call->cb) call->cb(redis, reply, call->privdata);
    mg_args_clear(&call->args);
    free(call);
}

static int s_send(s_call_t *call) {
    return mg_redis_command_argv(call->script->redis, s_on_reply, call, call->args.argc,
                                 (const char **)call->args.argv, call->args.lens);
}

int mg_script_call(mg_script_t *s, mg_args_t *args, mg_redis_reply_fn cb, void *privdata) {
    s_call_t *call = mg_calloc(1, sizeof(*call));
    call->script = s;
    call->cb = cb;
    call->privdata = privdata;
    mg_args_init(&call->args);
    int sha_known = s->sha[0] != '\0';
    call->second_chance = !sha_known;
    mg_args_str(&call->args, sha_known ? "EVALSHA" : "EVAL");
    mg_args_str(&call->args, sha_known ? s->sha : s->source);
    mg_args_str(&call->args, "0");
    mg_args_move(&call->args, args);
    mg_args_clear(args);
    if (s_send(call) != 0) {
        mg_args_clear(&call->args);
        free(call);
        return -1;
    }
    return 0;
}
