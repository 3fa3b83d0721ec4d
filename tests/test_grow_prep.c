/*
 * test_grow_prep.c — grows of big tables are prepared in the background
 * (T7 in src/transition.c): the next table is parked while the
 * background thread faults its pages in, then published.  Every call
 * that can meet a parked table must leave the map right and free it
 * exactly once: clear, trim (discards it), reserve of the same size
 * (adopts it) and of another size (discards it), destroy, and plain
 * inserts that go on until it is published.
 *
 * A table is parked as soon as a big table passes 7/10 load; each
 * scenario fills a 16384-bucket table just past that and acts at once,
 * while the background thread is (most likely) still populating.  The
 * checks hold whichever way the race goes; ASan/LSan builds catch a
 * table freed twice or never.
 */
#include "testutil.h"

#define N_PAST (16384 * 3 * 7 / 10 + 200) /* past 7/10 of 16384 buckets */

static _Atomic unsigned long long hooks;

static void on_remove(void *ctx, uint64_t value, sm_reason why) {
    (void)ctx;
    (void)value;
    (void)why;
    atomic_fetch_add(&hooks, 1);
}

static sm_map *filled(uint64_t n) {
    sm_options o;
    sm_options_init(&o);
    o.on_remove = on_remove;
    sm_map *m = NULL;
    ASSERT_OK(sm_create(&o, &m));
    for (uint64_t k = 0; k < n; k++)
        ASSERT_OK(sm_put_u64(m, k, k + 1));
    return m;
}

static int count_visit(void *ctx, const sm_entry *e) {
    (void)e;
    ++*(size_t *)ctx;
    return 0;
}

/* Checks every key; the walk first completes a resize in progress. */
static void check_all(sm_map *m, uint64_t n) {
    size_t seen = 0;
    ASSERT_OK(sm_for_each(m, count_visit, &seen));
    ASSERT_EQ(seen, (size_t)n);
    ASSERT_EQ(sm_len(m), (size_t)n);
    for (uint64_t k = 0; k < n; k++) {
        uint64_t v = 0;
        ASSERT_OK(sm_get_u64(m, k, &v));
        ASSERT_EQ(v, k + 1);
    }
}

static void destroy_counted(sm_map *m) {
    size_t left = sm_len(m);
    unsigned long long h0 = atomic_load(&hooks);
    ASSERT_OK(sm_destroy(m));
    ASSERT_EQ(atomic_load(&hooks) - h0, (unsigned long long)left);
}

int main(void) {
    int rounds = (int)tu_scaled(20, 3);
    sm_stats st;
    unsigned long long parked_seen = 0;
    for (int r = 0; r < rounds; r++) {
        tu_context("round %d: clear", r);
        atomic_store(&hooks, 0);
        sm_map *m = filled(N_PAST);
        ASSERT_OK(sm_get_stats(m, &st, sizeof st));
        /* Past 7/10 (and under the 4/5 of an unprepared grow) the grow
         * has begun: its table is parked (it shows in table_bytes beside
         * the current one), or already migrating, or done. */
        int parked = st.table_bytes > (uint64_t)16384 * 64 * 3 / 2;
        ASSERT_TRUE(parked || st.transition_in_progress || st.capacity > (uint64_t)16384 * 3);
        parked_seen += parked && !st.transition_in_progress;
        ASSERT_OK(sm_clear(m));
        ASSERT_EQ(sm_len(m), (size_t)0);
        ASSERT_OK(sm_put_u64(m, 7, 8));
        size_t rel = 0;
        ASSERT_OK(sm_trim(m, &rel)); /* waits for the cleared entries' hooks */
        ASSERT_EQ(atomic_load(&hooks), (unsigned long long)N_PAST);
        destroy_counted(m);

        tu_context("round %d: trim", r);
        m = filled(N_PAST);
        for (uint64_t k = 1000; k < N_PAST; k++)
            ASSERT_OK(sm_delete_u64(m, k));
        ASSERT_OK(sm_trim(m, &rel));
        check_all(m, 1000);
        ASSERT_OK(sm_get_stats(m, &st, sizeof st));
        ASSERT_LE(st.table_bytes, (uint64_t)1 << 20);
        destroy_counted(m);

        tu_context("round %d: reserve, same size", r);
        m = filled(N_PAST);
        ASSERT_OK(sm_reserve(m, 60000)); /* 32768 buckets: the parked size */
        check_all(m, N_PAST);
        ASSERT_OK(sm_get_stats(m, &st, sizeof st));
        ASSERT_EQ(st.capacity, (uint64_t)32768 * 3);
        destroy_counted(m);

        tu_context("round %d: reserve, bigger", r);
        m = filled(N_PAST);
        ASSERT_OK(sm_reserve(m, 200000));
        check_all(m, N_PAST);
        ASSERT_OK(sm_get_stats(m, &st, sizeof st));
        ASSERT_GE(st.capacity, (uint64_t)200000);
        destroy_counted(m);

        tu_context("round %d: destroy", r);
        m = filled(N_PAST);
        destroy_counted(m);

        tu_context("round %d: keep inserting", r);
        m = filled(N_PAST);
        for (uint64_t k = N_PAST; k < 4 * N_PAST; k++)
            ASSERT_OK(sm_put_u64(m, k, k + 1));
        check_all(m, 4 * N_PAST);
        destroy_counted(m);
    }
    printf("test_grow_prep: %d rounds, a parked table seen right after the fill in %llu\n",
           rounds, parked_seen);
    printf("test_grow_prep: OK\n");
    return 0;
}
