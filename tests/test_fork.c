/*
 * test_fork — a map stays usable in the child of fork(), even when another
 * thread of the parent was reading it (and possibly pinned) at the fork,
 * and the parent is unaffected.  Each round the child deletes, clears,
 * refills, trims and destroys its copy (sm_destroy and sm_trim wait for
 * the reclaimer, which must have been restarted in the child) and reports
 * through its exit status.
 */
#include "testutil.h"

#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

static sm_map *g_map;
static _Atomic int g_stop;

static void *reader(void *arg) {
    (void)arg;
    uint64_t v;
    while (!atomic_load(&g_stop)) {
        sm_pin(g_map);
        sm_get_u64(g_map, 7, &v);
        sm_unpin(g_map);
    }
    return NULL;
}

static int child_work(uint64_t n) {
    for (uint64_t i = 0; i < n; i++)
        if (sm_delete_u64(g_map, i) != SM_OK)
            return 10;
    if (sm_len(g_map) != 0)
        return 11;
    for (uint64_t i = 0; i < n / 10; i++)
        if (sm_put_u64(g_map, i, i + 1) != SM_OK)
            return 12;
    if (sm_clear(g_map) != SM_OK || sm_len(g_map) != 0)
        return 13;
    for (uint64_t i = 0; i < n / 10; i++)
        if (sm_put_u64(g_map, i, i + 2) != SM_OK)
            return 14;
    size_t released = 0;
    if (sm_trim(g_map, &released) != SM_OK)
        return 15;
    uint64_t v = 0;
    if (sm_get_u64(g_map, 3, &v) != SM_OK || v != 5)
        return 16;
    return sm_destroy(g_map) == SM_OK ? 0 : 17;
}

int main(void) {
    const uint64_t n = (uint64_t)tu_scaled(100000, 10000);
    const int rounds = (int)tu_scaled(10, 3);
    printf("test_fork (scale %g): %d rounds, %llu keys\n", tu_scale(), rounds,
           (unsigned long long)n);
    ASSERT_OK(sm_create(NULL, &g_map));
    for (uint64_t i = 0; i < n; i++)
        ASSERT_OK(sm_put_u64(g_map, i, i));
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, reader, NULL), 0);
    for (int r = 0; r < rounds; r++) {
        tu_context("round %d", r);
        fflush(stdout);
        pid_t pid = fork();
        ASSERT_TRUE(pid >= 0);
        if (pid == 0)
            _exit(child_work(n));
        int st = 0;
        ASSERT_EQ(waitpid(pid, &st, 0), pid);
        ASSERT_TRUE(WIFEXITED(st));
        ASSERT_EQ(WEXITSTATUS(st), 0);
        /* the parent's map is untouched by the child */
        ASSERT_EQ(sm_len(g_map), n);
        uint64_t v = 0;
        ASSERT_OK(sm_get_u64(g_map, n - 1, &v));
        ASSERT_EQ(v, n - 1);
    }
    atomic_store(&g_stop, 1);
    pthread_join(th, NULL);
    ASSERT_OK(sm_destroy(g_map));
    printf("ok\n");
    return 0;
}
