// ctest-args: --threads 2 --n 20000 --ops 150
/*
 * stress_shrink_refill.c — a big shrink, then inserts at once.
 *
 * Churn threads (--threads) each insert a batch of fresh keys (up to --n)
 * and delete them again, --ops times: every emptied batch starts a large
 * shrink, and the next batch's inserts (and the deletes after them) run
 * into that shrink while it is still migrating.  Meanwhile a walker runs
 * sm_for_each (which finishes a running resize) and a reader looks up a
 * set of keys that stay in the map the whole time.  Checks: every stay
 * key is always found with its value; the churn's outcomes are exact
 * (fresh keys are absent, deleted keys were present); the walker never
 * sees a stay key twice nor misses one; at the end only the stay keys
 * are left.
 *
 * A watchdog fails the test if no churn thread finishes a batch for
 * TU_STALL_S seconds: that is a hang, not slowness.
 *
 *   stress_shrink_refill [--threads N] [--n BATCH] [--ops BATCHES]
 *                        [--seconds CAP] [--seed S]
 */
#include "testutil.h"
#include "testkeys.h"

#define STAY 200u                 /* key indices [0, STAY) never leave */
#define TU_STALL_S 120.0

static uint64_t val_of(uint64_t i) { return tu_mix64(i * 3 + 1); }

typedef struct shared {
    tk_map t;
    uint64_t batch;
    long long cycles;
    double deadline;
    uint64_t seed;
    atomic_int churners_left;
    atomic_ullong progress;       /* batches finished, all threads */
    atomic_ullong walks, reads;
} shared;

typedef struct thr {
    pthread_t th;
    int id;
    shared *sh;
} thr;

static void *churn_main(void *p) {
    thr *me = (thr *)p;
    shared *sh = me->sh;
    tu_rng r = tu_rng_make(tu_mix64(sh->seed + (uint64_t)me->id));
    /* each thread its own fresh keys: index = STAY + id + k * 64 */
    uint64_t next = 0;
    for (long long c = 0; c < sh->cycles; c++) {
        if (sh->deadline > 0 && tu_now_s() > sh->deadline)
            break;
        uint64_t n = sh->batch / 4 + tu_rng_below(&r, sh->batch - sh->batch / 4 + 1);
        uint64_t first = next;
        tu_context("churn %d, batch %lld (%llu keys)", me->id, c,
                   (unsigned long long)n);
        for (uint64_t j = 0; j < n; j++, next++) {
            uint64_t i = STAY + (uint64_t)me->id + next * 64, a = 0;
            int s = (j & 1) ? tk_los(&sh->t, i, val_of(i), &a)
                            : tk_swap(&sh->t, i, val_of(i), &a);
            if (j & 1) {
                ASSERT_OK(s);
                ASSERT_EQ(a, val_of(i));
            } else {
                ASSERT_STATUS(s, SM_NOTFOUND);
            }
        }
        for (uint64_t k = first; k < next; k++) {
            uint64_t i = STAY + (uint64_t)me->id + k * 64, a = 0;
            if (k & 1) {
                ASSERT_OK(tk_lad(&sh->t, i, &a));
                ASSERT_EQ(a, val_of(i));
            } else {
                ASSERT_OK(tk_del(&sh->t, i));
            }
        }
        atomic_fetch_add(&sh->progress, 1);
    }
    atomic_fetch_sub(&sh->churners_left, 1);
    return NULL;
}

static void *reader_main(void *p) {
    thr *me = (thr *)p;
    shared *sh = me->sh;
    tu_rng r = tu_rng_make(tu_mix64(sh->seed + 500));
    unsigned long long n = 0;
    while (atomic_load(&sh->churners_left) > 0) {
        for (int k = 0; k < 64; k++, n++) {
            uint64_t i = tu_rng_below(&r, STAY), v = 0;
            int s = tk_get(&sh->t, i, &v);
            if (s != SM_OK)
                FAIL("reader %d: stay key %llu: %s", me->id,
                     (unsigned long long)i, sm_errname(s));
            ASSERT_EQ(v, val_of(i));
        }
    }
    atomic_fetch_add(&sh->reads, n);
    return NULL;
}

typedef struct walk_ctx {
    shared *sh;
    unsigned char seen[STAY];
} walk_ctx;

static int walk_visit(void *ctx, const sm_entry *e) {
    walk_ctx *c = (walk_ctx *)ctx;
    uint64_t i = tk_index_of_entry(&c->sh->t, e);
    ASSERT_EQ(e->value, val_of(i));
    if (i < STAY && c->seen[i]++)
        FAIL("walk: stay key %llu visited twice", (unsigned long long)i);
    return 0;
}

static void *walker_main(void *p) {
    thr *me = (thr *)p;
    shared *sh = me->sh;
    walk_ctx c;
    c.sh = sh;
    unsigned long long walks = 0;
    while (atomic_load(&sh->churners_left) > 0) {
        memset(c.seen, 0, sizeof c.seen);
        ASSERT_OK(sm_for_each(sh->t.m, walk_visit, &c));
        for (uint64_t i = 0; i < STAY; i++)
            if (!c.seen[i])
                FAIL("walk: stay key %llu not visited", (unsigned long long)i);
        walks++;
        (void)me;
    }
    atomic_fetch_add(&sh->walks, walks);
    return NULL;
}

static void run(sm_key_kind kind, int nchurn, uint64_t batch, long long cycles,
                double seconds, uint64_t seed) {
    shared sh;
    memset(&sh, 0, sizeof sh);
    sh.batch = batch;
    sh.cycles = cycles;
    sh.deadline = seconds > 0 ? tu_now_s() + seconds : 0;
    sh.seed = seed;
    atomic_init(&sh.churners_left, nchurn);
    atomic_init(&sh.progress, 0);
    atomic_init(&sh.walks, 0);
    atomic_init(&sh.reads, 0);
    printf("  %s keys: %d churn threads, batches of up to %llu keys, %lld "
           "batches each, 1 walker, 1 reader\n", tu_kind_name(kind), nchurn,
           (unsigned long long)batch, cycles);
    fflush(stdout);
    sh.t = tk_create(kind, NULL);
    for (uint64_t i = 0; i < STAY; i++)
        ASSERT_OK(tk_put(&sh.t, i, val_of(i)));

    int total = nchurn + 2;
    thr *ts = (thr *)calloc((size_t)total, sizeof *ts);
    ASSERT_TRUE(ts != NULL);
    for (int i = 0; i < total; i++) {
        ts[i] = (thr){0, i, &sh};
        tu_thread_start(&ts[i].th,
                        i < nchurn ? churn_main : i == nchurn ? reader_main
                                                              : walker_main,
                        &ts[i]);
    }
    /* watchdog: batches must keep finishing */
    unsigned long long last = 0;
    double since = tu_now_s();
    while (atomic_load(&sh.churners_left) > 0) {
        tu_sleep_us(10000);
        unsigned long long p = atomic_load(&sh.progress);
        if (p != last) {
            last = p;
            since = tu_now_s();
        } else if (tu_now_s() - since > TU_STALL_S) {
            sm_stats st = tu_stats(sh.t.m);
            FAIL("hang: no batch finished for %.0f s (%llu batches done; "
                 "len %zu, capacity %llu, resize running %d)", TU_STALL_S,
                 p, sm_len(sh.t.m), (unsigned long long)st.capacity,
                 st.transition_in_progress);
        }
    }
    for (int i = 0; i < total; i++)
        tu_thread_join(ts[i].th);

    ASSERT_EQ(sm_len(sh.t.m), STAY);
    for (uint64_t i = 0; i < STAY; i++) {
        uint64_t v = 0;
        ASSERT_OK(tk_get(&sh.t, i, &v));
        ASSERT_EQ(v, val_of(i));
    }
    sm_stats st = tu_stats(sh.t.m);
    printf("    ok: %llu batches, %llu walks, %llu reads, grows %llu, "
           "shrinks %llu\n", atomic_load(&sh.progress),
           atomic_load(&sh.walks), atomic_load(&sh.reads),
           (unsigned long long)st.grows_total,
           (unsigned long long)st.shrinks_total);
    fflush(stdout);
    ASSERT_OK(sm_destroy(sh.t.m));
    free(ts);
}

int main(int argc, char **argv) {
    tu_args a = {2, 20000, 150, 0, 0x5f1ull, 0};
    tu_parse_args(argc, argv, &a);
    uint64_t batch = (uint64_t)tu_scaled(a.n, 2000);
    long long cycles = tu_scaled(a.ops, 20);
    printf("stress_shrink_refill (scale %.3g), seed %llu\n", tu_scale(), a.seed);
    run(SM_KEY_BYTES, a.threads, batch, cycles, a.seconds, a.seed);
    run(SM_KEY_U64, a.threads, batch, cycles, a.seconds, a.seed + 1);
    printf("stress_shrink_refill: all passed\n");
    return 0;
}
