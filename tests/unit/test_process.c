/* test_process.c -- a process' id among the daemons sharing one Redis
 * (mg_process_id()) and knowing that another one of this machine has ended
 * (mg_process_ended()): what lets a notifier take the place of one killed,
 * and a matcher restarted after kill -9 not take its predecessor for a twin. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "maillage/daemon.h"

/* `mine` with its pid replaced by `pid`: another process of this machine. */
static void s_with_pid(const char *mine, long pid, char *out, size_t len) {
    const char *last = strrchr(mine, ':');
    const char *p = last;
    while (p > mine && p[-1] != ':')
        p--;
    snprintf(out, len, "%.*s%ld%s", (int)(p - mine), mine, pid, last);
}

static void id_names_host_pid_machine_and_nonce(void **state) {
    (void)state;
    const char *id = mg_process_id();
    char host[64] = "?", expect[96];
    gethostname(host, sizeof(host) - 1);
    snprintf(expect, sizeof(expect), "%s:%ld:", host, (long)getpid());
    assert_int_equal(strncmp(id, expect, strlen(expect)), 0);
    const char *rest = id + strlen(expect);
    assert_int_equal(strlen(rest), 17); /* 8 hex digits, '.', 8 of a ULID */
    assert_int_equal(rest[8], '.');
    assert_ptr_equal(mg_process_id(), id); /* made once */
}

static void a_process_that_ended_is_known_and_one_running_is_not(void **state) {
    (void)state;
    const char *mine = mg_process_id();
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) _exit(0);
    char other[256];
    s_with_pid(mine, (long)child, other, sizeof(other));
    assert_false(mg_process_ended(other)); /* a zombie still holds its pid */
    assert_int_equal(waitpid(child, NULL, 0), child);
    assert_true(mg_process_ended(other));
    s_with_pid(mine, (long)getppid(), other, sizeof(other));
    assert_false(mg_process_ended(other)); /* running */
    assert_false(mg_process_ended(mine));  /* this one */
}

static void another_machines_process_or_junk_is_never_ended(void **state) {
    (void)state;
    const char *mine = mg_process_id();
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) _exit(0);
    assert_int_equal(waitpid(child, NULL, 0), child);
    char other[256];
    s_with_pid(mine, (long)child, other, sizeof(other));
    assert_true(mg_process_ended(other));
    /* The same pid on another host, or another machine (boot, namespace). */
    char moved[300];
    snprintf(moved, sizeof(moved), "x%s", other);
    assert_false(mg_process_ended(moved));
    snprintf(moved, sizeof(moved), "%s", other);
    char *machine = strrchr(moved, ':') + 1;
    machine[0] = machine[0] == '0' ? '1' : '0';
    assert_false(mg_process_ended(moved));
    assert_false(mg_process_ended(""));
    assert_false(mg_process_ended("host:12:abc"));
    assert_false(mg_process_ended("host:-5:0123abcd.ABCDEFGH"));
    assert_false(mg_process_ended(":12:0123abcd.ABCDEFGH"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(id_names_host_pid_machine_and_nonce),
        cmocka_unit_test(a_process_that_ended_is_known_and_one_running_is_not),
        cmocka_unit_test(another_machines_process_or_junk_is_never_ended),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
