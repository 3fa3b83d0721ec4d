// ctest-args: --threads 4 --n 2000000
/*
 * stress_grow_readers.c — lookups of present keys never miss while the
 * table grows and shrinks under them.
 *
 * Writers (half of --threads) grow the map from empty to --n keys: writer
 * w inserts key indices w, w + W, w + 2W, ... in order and publishes how
 * many it has inserted (a release store).  Readers (the other half) look
 * up random keys below those marks: each must be found with its value;
 * they also look up keys never stored (must miss) and churn keys (if
 * found, the value must be right).  A churn thread inserts a batch of
 * fresh keys from a disjoint range (ten times the writers' keys, up to
 * n/4) and deletes them again, over and over, so shrinks and grows
 * interleave with the writers' growth; while the map is small the
 * writers wait for the churn, so that the table shrinks several times
 * with their keys in it; after every other batch it calls sm_trim.  A walker
 * thread runs sm_for_each again and again: no key may be visited twice
 * (no key is ever re-inserted), values must be right, and every key
 * published before the walk started must be visited.
 *
 * u64 keys, then byte keys with a quarter of the keys.
 *
 *   stress_grow_readers [--threads N] [--n KEYS] [--seconds CAP] [--seed S]
 *
 * n is multiplied by SM_TEST_SCALE.  --seconds (default none) stops the
 * writers early; everything published is checked all the same.
 */
#include "testutil.h"
#include "testkeys.h"

#define CHURN_BASE (1ull << 40)
#define MISS_BASE (1ull << 41)

static uint64_t val_of(uint64_t i) { return tu_mix64(i ^ 0xabcull); }

typedef struct shared {
    tk_map t;
    int nwriters;
    uint64_t n;                  /* keys the writers insert in all */
    uint64_t churn_batch;
    double deadline;
    uint64_t seed;
    atomic_ullong *hw;           /* per writer: keys published */
    atomic_ullong churn_pos;     /* first key index of the churn batch */
    atomic_ullong published;     /* all writers' keys */
    atomic_ullong cycles;        /* churn cycles completed */
    uint64_t slow_until;         /* writers wait for the churn below this */
    uint64_t slow_step;
    atomic_int writers_done;
    atomic_int stop;             /* readers, churn, walker: finish */
    /* statistics */
    atomic_ullong reads, churn_cycles, walks;
} shared;

typedef struct thr {
    pthread_t th;
    int id;
    shared *sh;
} thr;

static void *writer_main(void *p) {
    thr *me = (thr *)p;
    shared *sh = me->sh;
    const uint64_t w = (uint64_t)me->id, W = (uint64_t)sh->nwriters;
    uint64_t j = 0;
    for (uint64_t i = w; i < sh->n; i += W, j++) {
        if ((j & 1023) == 0 && sh->deadline > 0 && tu_now_s() > sh->deadline)
            break;
        /* While the map is small, let each churn cycle (ten times the
         * writers' keys, inserted and deleted) catch up, so that the
         * table shrinks with these keys in it. */
        uint64_t pub = atomic_load(&sh->published);
        while (pub < sh->slow_until &&
               pub >= (atomic_load(&sh->cycles) + 1) * sh->slow_step)
            tu_sleep_us(50);
        int s = tk_put(&sh->t, i, val_of(i));
        if (s != SM_OK)
            FAIL("writer %d: put of key index %llu: %s", me->id,
                 (unsigned long long)i, sm_errname(s));
        atomic_store_explicit(&sh->hw[w], j + 1, memory_order_release);
        atomic_fetch_add(&sh->published, 1);
    }
    atomic_fetch_add(&sh->writers_done, 1);
    return NULL;
}

static void *reader_main(void *p) {
    thr *me = (thr *)p;
    shared *sh = me->sh;
    tu_rng r = tu_rng_make(tu_mix64(sh->seed + 100 + (uint64_t)me->id));
    unsigned long long n = 0;
    const uint64_t W = (uint64_t)sh->nwriters;
    while (!atomic_load(&sh->stop)) {
        for (int k = 0; k < 64; k++, n++) {
            uint64_t w = tu_rng_below(&r, W);
            uint64_t hw = atomic_load_explicit(&sh->hw[w], memory_order_acquire);
            uint64_t v = 0;
            uint64_t x = tu_rng_below(&r, 16);
            if (x < 13 && hw > 0) {
                /* a key published before this lookup started */
                uint64_t i = tu_rng_below(&r, hw) * W + w;
                int s = tk_get(&sh->t, i, &v);
                if (s != SM_OK)
                    FAIL("reader %d: key index %llu published (writer %llu "
                         "at %llu) but get says %s", me->id,
                         (unsigned long long)i, (unsigned long long)w,
                         (unsigned long long)hw, sm_errname(s));
                if (v != val_of(i))
                    FAIL("reader %d: key index %llu has value %llu, stored "
                         "%llu", me->id, (unsigned long long)i,
                         (unsigned long long)v, (unsigned long long)val_of(i));
            } else if (x < 15) {
                uint64_t i = atomic_load(&sh->churn_pos) + tu_rng_below(&r, 4096);
                int s = tk_get(&sh->t, i, &v);
                if (s == SM_OK)
                    ASSERT_EQ(v, val_of(i));
                else
                    ASSERT_STATUS(s, SM_NOTFOUND);
            } else {
                uint64_t i = MISS_BASE + tu_rng_below(&r, sh->n + 1);
                ASSERT_STATUS(tk_get(&sh->t, i, &v), SM_NOTFOUND);
            }
        }
    }
    atomic_fetch_add(&sh->reads, n);
    return NULL;
}

static void *churn_main(void *p) {
    thr *me = (thr *)p;
    shared *sh = me->sh;
    uint64_t next = CHURN_BASE;
    unsigned long long cycles = 0;
    while (!atomic_load(&sh->stop) || cycles == 0) {
        uint64_t first = next;
        uint64_t batch = 10 * atomic_load(&sh->published);
        if (batch < 1000)
            batch = 1000;
        if (batch > sh->churn_batch)
            batch = sh->churn_batch;
        atomic_store(&sh->churn_pos, first);
        for (uint64_t j = 0; j < batch; j++, next++) {
            uint64_t a = 0;
            ASSERT_OK(tk_los(&sh->t, next, val_of(next), &a));
            ASSERT_EQ(a, val_of(next));
        }
        for (uint64_t i = first; i < next; i++) {
            uint64_t v = 0;
            ASSERT_OK(tk_lad(&sh->t, i, &v));
            ASSERT_EQ(v, val_of(i));
        }
        /* every other cycle, give the memory back right away */
        if (cycles % 2 == 1)
            ASSERT_OK(sm_trim(sh->t.m, NULL));
        cycles++;   /* the next batch has fresh keys: none is re-used */
        atomic_store(&sh->cycles, cycles);
    }
    atomic_fetch_add(&sh->churn_cycles, cycles);
    return NULL;
}

typedef struct walk_ctx {
    shared *sh;
    unsigned char *seen;         /* writers' keys */
    uint64_t *churn;             /* churn keys seen */
    size_t nchurn, cap;
    uint64_t calls;
} walk_ctx;

static int walk_visit(void *ctx, const sm_entry *e) {
    walk_ctx *c = (walk_ctx *)ctx;
    uint64_t i = tk_index_of_entry(&c->sh->t, e);
    c->calls++;
    if (e->value != val_of(i))
        FAIL("walk: key index %llu has value %llu, stored %llu",
             (unsigned long long)i, (unsigned long long)e->value,
             (unsigned long long)val_of(i));
    if (i < c->sh->n) {
        if (c->seen[i]++)
            FAIL("walk: key index %llu visited twice", (unsigned long long)i);
    } else if (i >= CHURN_BASE && i < MISS_BASE) {
        if (c->nchurn == c->cap) {
            c->cap = c->cap ? 2 * c->cap : 4096;
            c->churn = (uint64_t *)realloc(c->churn, c->cap * sizeof(uint64_t));
            ASSERT_TRUE(c->churn != NULL);
        }
        c->churn[c->nchurn++] = i;
    } else {
        FAIL("walk: key index %llu was never stored", (unsigned long long)i);
    }
    return 0;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void one_walk(shared *sh, walk_ctx *c, uint64_t *before) {
    const uint64_t W = (uint64_t)sh->nwriters;
    for (uint64_t w = 0; w < W; w++)
        before[w] = atomic_load_explicit(&sh->hw[w], memory_order_acquire);
    memset(c->seen, 0, sh->n);
    c->nchurn = 0;
    c->calls = 0;
    ASSERT_OK(sm_for_each(sh->t.m, walk_visit, c));
    /* present for the whole walk: visited */
    for (uint64_t w = 0; w < W; w++)
        for (uint64_t j = 0; j < before[w]; j++)
            if (!c->seen[j * W + w])
                FAIL("walk: key index %llu (published before the walk) not "
                     "visited", (unsigned long long)(j * W + w));
    if (c->nchurn > 1)
        qsort(c->churn, c->nchurn, sizeof(uint64_t), cmp_u64);
    for (size_t k = 1; k < c->nchurn; k++)
        if (c->churn[k] == c->churn[k - 1])
            FAIL("walk: churn key index %llu visited twice",
                 (unsigned long long)c->churn[k]);
}

static void *walker_main(void *p) {
    thr *me = (thr *)p;
    shared *sh = me->sh;
    walk_ctx c;
    memset(&c, 0, sizeof c);
    c.sh = sh;
    c.seen = (unsigned char *)calloc(sh->n, 1);
    uint64_t *before = (uint64_t *)calloc((size_t)sh->nwriters, sizeof(uint64_t));
    ASSERT_TRUE(c.seen && before);
    unsigned long long walks = 0;
    while (!atomic_load(&sh->stop) || walks < 2) {
        one_walk(sh, &c, before);
        walks++;
    }
    atomic_fetch_add(&sh->walks, walks);
    free(c.seen);
    free(c.churn);
    free(before);
    return NULL;
}

static void run(sm_key_kind kind, int nthreads, uint64_t n, double seconds,
                uint64_t seed) {
    shared sh;
    memset(&sh, 0, sizeof sh);
    sh.nwriters = nthreads / 2 > 0 ? nthreads / 2 : 1;
    int nreaders = nthreads - sh.nwriters > 0 ? nthreads - sh.nwriters : 1;
    sh.n = n;
    sh.churn_batch = n / 4 > 1000 ? n / 4 : 1000;   /* the largest batch */
    sh.slow_step = n / 256 > 0 ? n / 256 : 1;
    sh.slow_until = n / 64;
    sh.deadline = seconds > 0 ? tu_now_s() + seconds : 0;
    sh.seed = seed;
    sh.hw = (atomic_ullong *)calloc((size_t)sh.nwriters, sizeof(atomic_ullong));
    ASSERT_TRUE(sh.hw != NULL);
    for (int w = 0; w < sh.nwriters; w++)
        atomic_init(&sh.hw[w], 0);
    atomic_init(&sh.writers_done, 0);
    atomic_init(&sh.stop, 0);
    atomic_init(&sh.churn_pos, CHURN_BASE);
    atomic_init(&sh.published, 0);
    atomic_init(&sh.cycles, 0);
    atomic_init(&sh.reads, 0);
    atomic_init(&sh.churn_cycles, 0);
    atomic_init(&sh.walks, 0);
    printf("  %s keys: %d writers to %llu keys, %d readers, churn batches up "
           "to %llu, 1 walker\n", tu_kind_name(kind), sh.nwriters,
           (unsigned long long)n, nreaders, (unsigned long long)sh.churn_batch);
    fflush(stdout);
    sh.t = tk_create(kind, NULL);

    int total = sh.nwriters + nreaders + 2;
    thr *ts = (thr *)calloc((size_t)total, sizeof *ts);
    ASSERT_TRUE(ts != NULL);
    int k = 0;
    for (int i = 0; i < sh.nwriters; i++, k++) {
        ts[k] = (thr){0, i, &sh};
        tu_thread_start(&ts[k].th, writer_main, &ts[k]);
    }
    for (int i = 0; i < nreaders; i++, k++) {
        ts[k] = (thr){0, i, &sh};
        tu_thread_start(&ts[k].th, reader_main, &ts[k]);
    }
    ts[k] = (thr){0, 0, &sh};
    tu_thread_start(&ts[k].th, churn_main, &ts[k]);
    k++;
    ts[k] = (thr){0, 0, &sh};
    tu_thread_start(&ts[k].th, walker_main, &ts[k]);
    k++;
    for (int i = 0; i < sh.nwriters; i++)
        tu_thread_join(ts[i].th);
    atomic_store(&sh.stop, 1);
    for (int i = sh.nwriters; i < total; i++)
        tu_thread_join(ts[i].th);

    /* quiet now: exactly the published keys */
    uint64_t published = 0;
    const uint64_t W = (uint64_t)sh.nwriters;
    for (uint64_t w = 0; w < W; w++)
        published += atomic_load(&sh.hw[w]);
    ASSERT_EQ(sm_len(sh.t.m), published);
    for (uint64_t w = 0; w < W; w++) {
        uint64_t hw = atomic_load(&sh.hw[w]);
        for (uint64_t j = 0; j < hw; j++) {
            uint64_t v = 0, i = j * W + w;
            tu_context("final check, key index %llu", (unsigned long long)i);
            ASSERT_OK(tk_get(&sh.t, i, &v));
            ASSERT_EQ(v, val_of(i));
        }
    }
    walk_ctx c;
    memset(&c, 0, sizeof c);
    c.sh = &sh;
    c.seen = (unsigned char *)calloc(n, 1);
    uint64_t *before = (uint64_t *)calloc(W, sizeof(uint64_t));
    ASSERT_TRUE(c.seen && before);
    one_walk(&sh, &c, before);
    ASSERT_EQ(c.calls, published);
    ASSERT_EQ(c.nchurn, 0);
    sm_stats st = tu_stats(sh.t.m);
    ASSERT_EQ(st.entries, published);
    printf("    ok: %llu keys, %llu lookups, %llu churn cycles, %llu walks, "
           "grows %llu, shrinks %llu\n", (unsigned long long)published,
           atomic_load(&sh.reads), atomic_load(&sh.churn_cycles),
           atomic_load(&sh.walks), (unsigned long long)st.grows_total,
           (unsigned long long)st.shrinks_total);
    fflush(stdout);
    ASSERT_OK(sm_destroy(sh.t.m));
    free(c.seen);
    free(c.churn);
    free(before);
    free(ts);
    free(sh.hw);
}

int main(int argc, char **argv) {
    tu_args a = {4, 2000000, 0, 0, 0x9e7ull, 0};
    tu_parse_args(argc, argv, &a);
    uint64_t n = (uint64_t)tu_scaled(a.n, 20000);
    printf("stress_grow_readers (scale %.3g), seed %llu\n", tu_scale(), a.seed);
    run(SM_KEY_U64, a.threads, n, a.seconds, a.seed);
    run(SM_KEY_BYTES, a.threads, n / 4, a.seconds, a.seed + 1);
    printf("stress_grow_readers: all passed\n");
    return 0;
}
