// ctest-args: --threads 4 --n 60000 --ops 2000000
/*
 * stress_backfill.c — keys that deletes move back along their chains
 * (B1-B3 in src/map.c) are never missed by a concurrent lookup or walk.
 *
 * --n stable keys are stored first and never written again.  Churn
 * threads (half of --threads) each own a range of other keys and insert
 * and delete them at random, about half live, so the table stays dense
 * (load ~0.7) and nearly every delete that frees a slot passed by other
 * keys moves one of them, stable keys included.  The other threads look
 * up random stable keys (every lookup must hit, with the right value),
 * keys never stored (must miss) and churn keys (if found, the value must
 * be right); one of them also walks the map with sm_for_each, which must
 * visit every stable key exactly once per walk.
 *
 * The window in which a lookup can meet a move of its own key is a few
 * nanoseconds, so this run is not the proof that lookups re-check (B2):
 * test_backfill lands a move inside a lookup deterministically (debug
 * build).  What this run covers is the rest under real concurrency:
 * locking (B1), walks (B3), migration, and TSan's view of it all.
 *
 * u64 keys, then byte keys with a quarter of the keys.
 *
 *   stress_backfill [--threads N] [--n KEYS] [--ops OPS_PER_CHURNER]
 *                   [--seconds CAP] [--seed S]
 */
#include "testutil.h"
#include "testkeys.h"

#define MISS_BASE (1ull << 41)

static uint64_t val_of(uint64_t i) { return tu_mix64(i ^ 0x77ull); }

typedef struct shared {
    tk_map t;
    uint64_t n;          /* stable keys: indices [0, n) */
    uint64_t range;      /* churn keys per churn thread */
    long long ops;
    double deadline;
    uint64_t seed;
    atomic_int churners_left;
    atomic_ullong reads, walks, deletes;
} shared;

typedef struct thr {
    pthread_t th;
    int id, churner;
    shared *sh;
} thr;

static void *churn_main(void *arg) {
    thr *me = arg;
    shared *sh = me->sh;
    tu_rng r = tu_rng_make(sh->seed * 31 + (uint64_t)me->id);
    uint64_t base = sh->n + (uint64_t)me->id * sh->range;
    unsigned char *live = calloc(sh->range, 1);
    ASSERT_TRUE(live != NULL);
    unsigned long long dels = 0;
    for (long long op = 0; op < sh->ops; op++) {
        if ((op & 1023) == 0 && sh->deadline > 0 && tu_now_s() > sh->deadline)
            break;
        uint64_t j = tu_rng_below(&r, sh->range);
        tu_context("churn %d op %lld key %llu", me->id, op, (unsigned long long)(base + j));
        if (live[j]) {
            ASSERT_OK(tk_del(&sh->t, base + j));
            dels++;
        } else {
            ASSERT_OK(tk_put(&sh->t, base + j, val_of(base + j)));
        }
        live[j] ^= 1;
    }
    free(live);
    atomic_fetch_add(&sh->deletes, dels);
    atomic_fetch_sub(&sh->churners_left, 1);
    return NULL;
}

typedef struct walkctx {
    shared *sh;
    unsigned char *seen;
} walkctx;

static int walk_visit(void *ctx, const sm_entry *e) {
    walkctx *w = ctx;
    uint64_t i = tk_index_of_entry(&w->sh->t, e);
    if (e->value != val_of(i))
        FAIL("walk: key %llu has value %llu", (unsigned long long)i,
             (unsigned long long)e->value);
    if (i < w->sh->n && w->seen[i]++)
        FAIL("walk: stable key %llu visited twice", (unsigned long long)i);
    return 0;
}

static void *read_main(void *arg) {
    thr *me = arg;
    shared *sh = me->sh;
    tu_rng r = tu_rng_make(sh->seed * 77 + (uint64_t)me->id);
    int walker = me->id == 0;
    unsigned char *seen = walker ? malloc(sh->n) : NULL;
    unsigned long long reads = 0, walks = 0;
    while (atomic_load(&sh->churners_left) > 0) {
        for (int k = 0; k < 1024; k++) {
            uint64_t i = tu_rng_below(&r, sh->n), v = 0;
            tu_context("reader %d stable key %llu", me->id, (unsigned long long)i);
            ASSERT_OK(tk_get(&sh->t, i, &v));
            ASSERT_EQ(v, val_of(i));
            uint64_t miss = MISS_BASE + tu_rng_below(&r, 1u << 20);
            ASSERT_STATUS(tk_get(&sh->t, miss, NULL), SM_NOTFOUND);
            uint64_t c = sh->n + tu_rng_below(&r, sh->range);
            int rc = tk_get(&sh->t, c, &v);
            ASSERT_TRUE(rc == SM_OK || rc == SM_NOTFOUND);
            if (rc == SM_OK)
                ASSERT_EQ(v, val_of(c));
            reads += 3;
        }
        if (walker) {
            memset(seen, 0, sh->n);
            walkctx w = {sh, seen};
            tu_context("walk %llu", walks);
            ASSERT_OK(sm_for_each(sh->t.m, walk_visit, &w));
            for (uint64_t i = 0; i < sh->n; i++)
                if (seen[i] != 1)
                    FAIL("walk: stable key %llu visited %d times", (unsigned long long)i, seen[i]);
            walks++;
        }
    }
    free(seen);
    atomic_fetch_add(&sh->reads, reads);
    atomic_fetch_add(&sh->walks, walks);
    return NULL;
}

static void run(sm_key_kind kind, int threads, uint64_t n, long long ops, double seconds,
                uint64_t seed) {
    printf("  %s keys: %llu stable, %d threads, %lld ops per churn thread\n",
           kind == SM_KEY_U64 ? "u64" : "byte", (unsigned long long)n, threads, ops);
    fflush(stdout);
    shared sh;
    memset(&sh, 0, sizeof sh);
    sh.t = tk_create(kind, NULL);
    sh.n = n;
    sh.ops = ops;
    sh.seed = seed;
    sh.deadline = seconds > 0 ? tu_now_s() + seconds : 0;
    for (uint64_t i = 0; i < n; i++)
        ASSERT_OK(tk_put(&sh.t, i, val_of(i)));
    int nchurn = threads / 2 > 0 ? threads / 2 : 1;
    int nread = threads - nchurn > 0 ? threads - nchurn : 1;
    sh.range = n / (3 * (uint64_t)nchurn) + 1; /* about n/6 churn keys live */
    atomic_store(&sh.churners_left, nchurn);
    thr *ts = calloc((size_t)(nchurn + nread), sizeof *ts);
    ASSERT_TRUE(ts != NULL);
    for (int i = 0; i < nchurn + nread; i++) {
        ts[i].sh = &sh;
        ts[i].churner = i < nchurn;
        ts[i].id = ts[i].churner ? i : i - nchurn;
        ASSERT_EQ(pthread_create(&ts[i].th, NULL, ts[i].churner ? churn_main : read_main, &ts[i]), 0);
    }
    for (int i = 0; i < nchurn + nread; i++)
        ASSERT_EQ(pthread_join(ts[i].th, NULL), 0);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t v = 0;
        ASSERT_OK(tk_get(&sh.t, i, &v));
        ASSERT_EQ(v, val_of(i));
    }
    sm_stats st;
    ASSERT_OK(sm_get_stats(sh.t.m, &st, sizeof st));
    printf("    ok: %llu deletes, %llu reads, %llu walks, load %.2f at the end\n",
           atomic_load(&sh.deletes), atomic_load(&sh.reads), atomic_load(&sh.walks),
           st.load_factor);
    fflush(stdout);
    ASSERT_GT(atomic_load(&sh.walks), 0ull);
    ASSERT_OK(sm_destroy(sh.t.m));
    free(ts);
}

int main(int argc, char **argv) {
    tu_args a = {4, 60000, 2000000, 0, 0xbf11ull, 0};
    tu_parse_args(argc, argv, &a);
    uint64_t n = (uint64_t)tu_scaled(a.n, 1000);
    long long ops = tu_scaled(a.ops, 20000);
    printf("stress_backfill (scale %.3g), seed %llu\n", tu_scale(), a.seed);
    run(SM_KEY_U64, a.threads, n, ops, a.seconds, a.seed);
    run(SM_KEY_BYTES, a.threads, n / 4 + 1, ops / 4, a.seconds, a.seed + 1);
    printf("stress_backfill: all passed\n");
    return 0;
}
