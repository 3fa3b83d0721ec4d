// ctest-args: --threads 4 --n 8 --ops 200000
/*
 * stress_cas_counter.c — shared counters incremented with get + cas.
 *
 * --threads threads each make --ops increments on --n shared counters
 * (keys 0..n-1), choosing the counter at random, with a retry loop of
 * get and compare-and-swap.  No increment may be lost or doubled: each
 * counter's final value is its start plus the increments the threads
 * counted for it.  A thread's successive reads of one counter never go
 * backwards.  The removal hook sees every replaced value exactly once:
 * the counts, sums and xors of the replaced values are computed and
 * compared after sm_destroy.
 *
 * Variants:
 *   preset   u64 keys, counters created before the threads start, with
 *            a start value near UINT64_MAX so that they wrap through 0;
 *   create   u64 keys, created on first use with load_or_store;
 *   bytes    byte keys, created on first use with load_or_store.
 *
 *   stress_cas_counter [--threads N] [--n COUNTERS] [--ops INCREMENTS]
 *                      [--seconds CAP] [--seed S]
 *
 * --ops is multiplied by SM_TEST_SCALE; --seconds (default none) stops
 * each variant early, and the counts are checked all the same.
 */
#include "testutil.h"
#include "testkeys.h"

#define START (UINT64_MAX - 5000)

typedef struct shared {
    tk_map t;
    uint64_t ncounters;
    long long ops;
    int create;            /* counters made on first use */
    uint64_t seed;
    double deadline;       /* 0 = none */
    tu_barrier start;
} shared;

typedef struct worker {
    pthread_t th;
    int id;
    shared *sh;
    uint64_t *incs;        /* per counter: increments made */
    uint64_t *created;     /* per counter: 1 if this thread created it */
    uint64_t *last;        /* per counter: offset last seen, + 1 (0 = none) */
    long long retries;
} worker;

/* A read must not go back in time: offsets from START only grow. */
static void saw(worker *w, uint64_t k, uint64_t v) {
    uint64_t off = v - START + 1;
    if (off < w->last[k])
        FAIL("thread %d: counter %llu went back from %llu to %llu", w->id,
             (unsigned long long)k, (unsigned long long)(w->last[k] - 1),
             (unsigned long long)(off - 1));
    w->last[k] = off;
}

static void *worker_main(void *p) {
    worker *w = (worker *)p;
    shared *sh = w->sh;
    tu_rng r = tu_rng_make(tu_mix64(sh->seed + (uint64_t)w->id));
    tu_barrier_wait(&sh->start);
    for (long long n = 0; n < sh->ops; n++) {
        if ((n & 1023) == 0 && sh->deadline > 0 && tu_now_s() > sh->deadline)
            break;
        uint64_t k = tu_rng_below(&r, sh->ncounters);
        uint64_t v = 0;
        int s;
        if (sh->create) {
            s = tk_los(&sh->t, k, START + 1, &v);
            if (s == SM_OK) {
                ASSERT_EQ(v, START + 1);
                w->created[k]++;
                w->incs[k]++;
                saw(w, k, v);
                continue;
            }
            ASSERT_STATUS(s, SM_EXISTS);
        } else {
            ASSERT_OK(tk_get(&sh->t, k, &v));
        }
        for (;;) {
            saw(w, k, v);
            s = tk_cas(&sh->t, k, v, v + 1);
            if (s == SM_OK)
                break;
            ASSERT_STATUS(s, SM_MISMATCH);
            w->retries++;
            ASSERT_OK(tk_get(&sh->t, k, &v));
        }
        saw(w, k, v + 1);
        w->incs[k]++;
    }
    return NULL;
}

static void run(const char *name, sm_key_kind kind, int create, int nthreads,
                uint64_t ncounters, long long ops, uint64_t seed, double seconds) {
    printf("  %s: %d threads, %llu counters, %lld increments each\n", name,
           nthreads, (unsigned long long)ncounters, ops);
    fflush(stdout);
    tu_hooks hk;
    tu_hooks_init(&hk);
    sm_options o;
    sm_options_init(&o);
    o.on_remove = tu_hooks_fn;
    o.on_remove_ctx = &hk;
    shared sh;
    sh.t = tk_create(kind, &o);
    sh.ncounters = ncounters;
    sh.ops = ops;
    sh.create = create;
    sh.seed = seed;
    sh.deadline = seconds > 0 ? tu_now_s() + seconds : 0;
    tu_barrier_init(&sh.start, (unsigned)nthreads);
    if (!create)
        for (uint64_t k = 0; k < ncounters; k++)
            ASSERT_OK(tk_put(&sh.t, k, START));

    worker *ws = (worker *)calloc((size_t)nthreads, sizeof *ws);
    ASSERT_TRUE(ws != NULL);
    for (int i = 0; i < nthreads; i++) {
        ws[i].id = i;
        ws[i].sh = &sh;
        ws[i].incs = (uint64_t *)calloc(ncounters, sizeof(uint64_t));
        ws[i].created = (uint64_t *)calloc(ncounters, sizeof(uint64_t));
        ws[i].last = (uint64_t *)calloc(ncounters, sizeof(uint64_t));
        ASSERT_TRUE(ws[i].incs && ws[i].created && ws[i].last);
        tu_thread_start(&ws[i].th, worker_main, &ws[i]);
    }
    long long retries = 0;
    for (int i = 0; i < nthreads; i++) {
        tu_thread_join(ws[i].th);
        retries += ws[i].retries;
    }

    tu_hook_expect want;
    memset(&want, 0, sizeof want);
    uint64_t total = 0;
    for (uint64_t k = 0; k < ncounters; k++) {
        uint64_t incs = 0, created = 0;
        for (int i = 0; i < nthreads; i++) {
            incs += ws[i].incs[k];
            created += ws[i].created[k];
        }
        total += incs;
        tu_context("%s: counter %llu", name, (unsigned long long)k);
        uint64_t v = 0;
        if (incs == 0 && create) {
            ASSERT_STATUS(tk_get(&sh.t, k, &v), SM_NOTFOUND);
            continue;
        }
        if (create)
            ASSERT_EQ(created, 1);     /* exactly one creator */
        ASSERT_OK(tk_get(&sh.t, k, &v));
        ASSERT_EQ(v, START + incs);
        /* every value but the last was replaced once by the next */
        for (uint64_t x = create ? START + 1 : START; x != START + incs; x++)
            tu_expect_hook(&want, x, SM_REMOVED_REPLACE);
        tu_expect_hook(&want, START + incs, SM_REMOVED_DESTROY);
    }
    tu_context("%s: totals", name);
    if (sh.deadline == 0)
        ASSERT_EQ(total, (uint64_t)ops * (uint64_t)nthreads);
    ASSERT_OK(sm_destroy(sh.t.m));
    ASSERT_HOOKS_MATCH(&hk, &want);
    printf("    ok: %llu increments, %lld cas retries\n",
           (unsigned long long)total, retries);
    fflush(stdout);
    for (int i = 0; i < nthreads; i++) {
        free(ws[i].incs);
        free(ws[i].created);
        free(ws[i].last);
    }
    free(ws);
    tu_barrier_destroy(&sh.start);
}

int main(int argc, char **argv) {
    tu_args a = {4, 8, 200000, 0, 0xc0c0ull, 0};
    tu_parse_args(argc, argv, &a);
    long long ops = tu_scaled(a.ops, 5000);
    uint64_t n = (uint64_t)a.n;
    printf("stress_cas_counter (scale %.3g), seed %llu\n", tu_scale(), a.seed);
    run("preset", SM_KEY_U64, 0, a.threads, n, ops, a.seed, a.seconds);
    run("create", SM_KEY_U64, 1, a.threads, n, ops, a.seed + 1, a.seconds);
    run("bytes", SM_KEY_BYTES, 1, a.threads, n, ops, a.seed + 2, a.seconds);
    printf("stress_cas_counter: all passed\n");
    return 0;
}
