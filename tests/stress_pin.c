// ctest-args: --threads 4 --n 1024 --ops 300000
/*
 * stress_pin.c — values that are pointers, freed by the removal hook,
 * stay valid for pinned readers.
 *
 * Every value is a heap object {magic, key, serial}.  Writers (half of
 * --threads) replace, swap, delete and re-insert values on --n shared keys
 * and now and then clear the map; the removal hook poisons each object
 * and frees it.  Readers (the other half) pin, look up a few keys,
 * check each object they got (live magic, the right key), check the
 * first one again after the others, and unpin; they also walk the map
 * with for_each (which runs pinned) and check every object it shows.
 * A reader that sees a poisoned or foreign object, or (under
 * AddressSanitizer) touches freed memory, fails.  After sm_destroy every
 * object has been freed exactly once.
 *
 *   stress_pin [--threads N] [--n KEYS] [--ops OPS_PER_WRITER]
 *              [--seconds CAP] [--seed S]
 */
#include "testutil.h"
#include "testkeys.h"

#define LIVE 0x4c4956454c495645ull
#define DEAD 0x4445414444454144ull

typedef struct obj {
    _Atomic uint64_t magic;   /* atomic: readers check it while the hook
                                 may be poisoning a (wrongly) freed one */
    uint64_t key;
    uint64_t serial;
} obj;

typedef struct shared {
    tk_map t;
    uint64_t nkeys;
    long long ops;
    double deadline;
    uint64_t seed;
    atomic_ullong made, freed, bad_hook;
    atomic_int writers_left;
    atomic_ullong reads, walks;
} shared;

static uint64_t v_of(obj *o) { return (uint64_t)(uintptr_t)o; }
static obj *o_of(uint64_t v) { return (obj *)(uintptr_t)v; }

static obj *make(shared *sh, uint64_t key, uint64_t serial) {
    obj *o = (obj *)malloc(sizeof *o);
    ASSERT_TRUE(o != NULL);
    atomic_init(&o->magic, LIVE);
    o->key = key;
    o->serial = serial;
    atomic_fetch_add(&sh->made, 1);
    return o;
}

static void hook(void *ctx, uint64_t value, sm_reason why) {
    shared *sh = (shared *)ctx;
    (void)why;
    obj *o = o_of(value);
    if (atomic_exchange(&o->magic, DEAD) != LIVE)
        atomic_fetch_add(&sh->bad_hook, 1);   /* freed twice */
    free(o);
    atomic_fetch_add(&sh->freed, 1);
}

/* An object that ran into the writer's hands but never entered the map. */
static void discard(shared *sh, obj *o) {
    atomic_store(&o->magic, DEAD);
    free(o);
    atomic_fetch_add(&sh->freed, 1);
}

static void check(uint64_t key, uint64_t v, const char *who) {
    obj *o = o_of(v);
    uint64_t m = atomic_load(&o->magic);
    if (m != LIVE)
        FAIL("%s: key %llu's object %p is %s while pinned", who,
             (unsigned long long)key, (void *)o, m == DEAD ? "freed" : "garbage");
    if (o->key != key)
        FAIL("%s: key %llu's object belongs to key %llu", who,
             (unsigned long long)key, (unsigned long long)o->key);
}

typedef struct thr {
    pthread_t th;
    int id;
    shared *sh;
} thr;

static void *writer_main(void *p) {
    thr *me = (thr *)p;
    shared *sh = me->sh;
    tu_rng r = tu_rng_make(tu_mix64(sh->seed + (uint64_t)me->id));
    uint64_t serial = (uint64_t)me->id << 40;
    for (long long step = 0; step < sh->ops; step++) {
        if ((step & 1023) == 0 && sh->deadline > 0 && tu_now_s() > sh->deadline)
            break;
        uint64_t k = tu_rng_below(&r, sh->nkeys), x = tu_rng_below(&r, 1000);
        uint64_t a = 0;
        int s;
        if (x < 450) {
            ASSERT_OK(tk_put(&sh->t, k, v_of(make(sh, k, serial++))));
        } else if (x < 650) {
            s = tk_swap(&sh->t, k, v_of(make(sh, k, serial++)), &a);
            ASSERT_STATUS2(s, SM_OK, SM_NOTFOUND);
        } else if (x < 800) {
            obj *o = make(sh, k, serial++);
            s = tk_los(&sh->t, k, v_of(o), &a);
            if (s == SM_EXISTS)
                discard(sh, o);
            else
                ASSERT_OK(s);
        } else if (x < 900) {
            s = tk_del(&sh->t, k);
            ASSERT_STATUS2(s, SM_OK, SM_NOTFOUND);
        } else if (x < 999) {
            /* replace whatever is there, if it is still there */
            if (tk_get(&sh->t, k, &a) == SM_OK) {
                obj *o = make(sh, k, serial++);
                s = tk_cas(&sh->t, k, a, v_of(o));
                if (s != SM_OK)
                    discard(sh, o);
            }
        } else {
            ASSERT_OK(sm_clear(sh->t.m));
        }
    }
    atomic_fetch_sub(&sh->writers_left, 1);
    return NULL;
}

static int walk_visit(void *ctx, const sm_entry *e) {
    shared *sh = (shared *)ctx;
    uint64_t k = tk_index_of_entry(&sh->t, e);
    check(k, e->value, "for_each");
    return 0;
}

static void *reader_main(void *p) {
    thr *me = (thr *)p;
    shared *sh = me->sh;
    tu_rng r = tu_rng_make(tu_mix64(sh->seed + 1000 + (uint64_t)me->id));
    unsigned long long reads = 0, walks = 0;
    while (atomic_load(&sh->writers_left) > 0) {
        ASSERT_OK(sm_pin(sh->t.m));
        uint64_t k0 = tu_rng_below(&r, sh->nkeys), v0 = 0;
        int have = tk_get(&sh->t, k0, &v0) == SM_OK;
        if (have)
            check(k0, v0, "reader");
        for (int i = 0; i < 8; i++, reads++) {
            uint64_t k = tu_rng_below(&r, sh->nkeys), v = 0;
            if (tk_get(&sh->t, k, &v) == SM_OK)
                check(k, v, "reader");
        }
        if (have)
            check(k0, v0, "reader, first object again");
        ASSERT_OK(sm_unpin(sh->t.m));
        if (tu_rng_chance(&r, 1, 512)) {
            ASSERT_OK(sm_for_each(sh->t.m, walk_visit, sh));
            walks++;
        }
    }
    atomic_fetch_add(&sh->reads, reads);
    atomic_fetch_add(&sh->walks, walks);
    return NULL;
}

static void run(sm_key_kind kind, int nthreads, uint64_t nkeys, long long ops,
                double seconds, uint64_t seed) {
    shared sh;
    memset(&sh, 0, sizeof sh);
    int nw = nthreads / 2 > 0 ? nthreads / 2 : 1;
    int nr = nthreads - nw > 0 ? nthreads - nw : 1;
    sh.nkeys = nkeys;
    sh.ops = ops;
    sh.deadline = seconds > 0 ? tu_now_s() + seconds : 0;
    sh.seed = seed;
    atomic_init(&sh.made, 0);
    atomic_init(&sh.freed, 0);
    atomic_init(&sh.bad_hook, 0);
    atomic_init(&sh.writers_left, nw);
    atomic_init(&sh.reads, 0);
    atomic_init(&sh.walks, 0);
    printf("  %s keys: %d writers, %d readers, %llu keys, %lld operations "
           "per writer\n", tu_kind_name(kind), nw, nr,
           (unsigned long long)nkeys, ops);
    fflush(stdout);
    sm_options o;
    sm_options_init(&o);
    o.on_remove = hook;
    o.on_remove_ctx = &sh;
    sh.t = tk_create(kind, &o);
    thr *ts = (thr *)calloc((size_t)(nw + nr), sizeof *ts);
    ASSERT_TRUE(ts != NULL);
    for (int i = 0; i < nw + nr; i++) {
        ts[i] = (thr){0, i, &sh};
        tu_thread_start(&ts[i].th, i < nw ? writer_main : reader_main, &ts[i]);
    }
    for (int i = 0; i < nw + nr; i++)
        tu_thread_join(ts[i].th);
    size_t left = sm_len(sh.t.m);
    ASSERT_OK(sm_destroy(sh.t.m));
    ASSERT_EQ(atomic_load(&sh.bad_hook), 0);
    ASSERT_EQ(atomic_load(&sh.freed), atomic_load(&sh.made));
    printf("    ok: %llu objects made and freed (%zu by destroy), %llu pinned "
           "reads, %llu walks\n", atomic_load(&sh.made), left,
           atomic_load(&sh.reads), atomic_load(&sh.walks));
    fflush(stdout);
    free(ts);
}

int main(int argc, char **argv) {
    tu_args a = {4, 1024, 300000, 0, 0x919ull, 0};
    tu_parse_args(argc, argv, &a);
    uint64_t n = (uint64_t)tu_scaled(a.n, 64);
    long long ops = tu_scaled(a.ops, 10000);
    printf("stress_pin (scale %.3g), seed %llu\n", tu_scale(), a.seed);
    run(SM_KEY_U64, a.threads, n, ops, a.seconds, a.seed);
    run(SM_KEY_BYTES, a.threads, n, ops, a.seconds, a.seed + 1);
    printf("stress_pin: all passed\n");
    return 0;
}
