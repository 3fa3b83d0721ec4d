/*
 * test_backfill.c — a table after any number of insert/delete cycles is
 * laid out like a fresh build of the same keys (B1-B3 in src/map.c).
 *
 * With buckets probed linearly, which slots are occupied and every
 * bucket's overflow count depend only on the set of keys, not on the
 * order they came in, provided no bucket with a free slot is passed by a
 * key.  Deletes keep that true by moving keys back into the slots they
 * free.  So after churn (single thread: every back-fill completes) the
 * map must have no passed hole and the same total overflow count as a
 * map built fresh from the surviving keys with the same seed and size.
 * Without back-fill both checks fail (a churned table keeps keys far
 * from home while holes open nearer).
 *
 * White-box: reads the table through sm__take_census (src/stats.c).
 */
#include "testutil.h"
#include "testkeys.h"

#include "../src/internal.h"

#define SEED 0x5eed5eedull

static sm_map *make(sm_key_kind kind, size_t cap) {
    sm_options o;
    sm_options_init(&o);
    o.key_kind = kind;
    o.initial_capacity = cap;
    o.fixed_seed = 1;
    o.seed = SEED;
    sm_map *m = NULL;
    ASSERT_OK(sm_create(&o, &m));
    return m;
}

static int count_visit(void *ctx, const sm_entry *e) {
    (void)e;
    ++*(size_t *)ctx;
    return 0;
}

/* Let any running resize finish (for_each completes it first). */
static void settle(sm_map *m) {
    size_t n = 0;
    ASSERT_OK(sm_for_each(m, count_visit, &n));
    ASSERT_EQ(n, sm_len(m));
}

/* The census of the current table; a resize may start at any moment
 * (the background thread publishes a prepared grow, T7), so finish it
 * and look again until none runs. */
static sm__census census(sm_map *m) {
    sm__census c;
    for (int tries = 0; tries < 1000; tries++) {
        settle(m);
        if (sm__take_census(m, &c) == SM_OK)
            return c;
    }
    FAIL("a resize kept running");
}

/* Keys are testkeys.h indices (random 64-bit numbers here).  Churn a map
 * holding `live` keys: `rounds` times insert a new key and
 * delete a random live one; with bursts that delete a third of the keys
 * and put them back.  Then compare with a fresh build of the survivors. */
static void churn_case(sm_key_kind kind, size_t cap, size_t live, size_t rounds, uint64_t seed) {
    tu_context("kind=%s cap=%zu live=%zu rounds=%zu", kind == SM_KEY_U64 ? "u64" : "bytes",
               cap, live, rounds);
    tu_rng r = tu_rng_make(seed);
    sm_map *m = make(kind, cap);
    tk_map tm = {m, kind};
    uint64_t *keys = malloc(live * sizeof *keys);
    ASSERT_TRUE(keys != NULL);
    for (size_t i = 0; i < live; i++) {
        keys[i] = tu_rng_next(&r);
        ASSERT_OK(tk_put(&tm, keys[i], keys[i] ^ 1));
    }
    for (size_t i = 0; i < rounds; i++) {
        size_t victim = (size_t)tu_rng_below(&r, live);
        uint64_t fresh = tu_rng_next(&r);
        ASSERT_OK(tk_put(&tm, fresh, fresh ^ 1));
        ASSERT_OK(tk_del(&tm, keys[victim]));
        keys[victim] = fresh;
        if (i % (rounds / 4 + 1) == 0) {
            /* burst: a third out, then back in */
            for (size_t j = 0; j < live; j += 3)
                ASSERT_OK(tk_del(&tm, keys[j]));
            for (size_t j = 0; j < live; j += 3)
                ASSERT_OK(tk_put(&tm, keys[j], keys[j] ^ 1));
        }
    }
    settle(m);
    ASSERT_EQ(sm_len(m), live);
    for (size_t i = 0; i < live; i++) {
        uint64_t v = 0;
        ASSERT_OK(tk_get(&tm, keys[i], &v));
        ASSERT_EQ(v, keys[i] ^ 1);
    }
    for (int i = 0; i < 1000; i++)
        ASSERT_STATUS(tk_get(&tm, tu_rng_next(&r) | 1ull << 63, NULL), SM_NOTFOUND);

    sm__census a = census(m);
    /* the same keys, built fresh in another order, in a table of the
     * same size */
    sm_map *f = make(kind, a.buckets * SM_SLOTS * 7 / 10 - 16);
    tk_map tf = {f, kind};
    for (size_t i = live; i-- > 0;)
        ASSERT_OK(tk_put(&tf, keys[i], keys[i] ^ 1));
    settle(f);
    sm__census b = census(f);
    printf("  %-5s cap=%-7zu live=%-7zu churned: buckets %zu, displaced %.4f, overflow/entry %.4f, "
           "passed holes %zu | fresh: buckets %zu, displaced %.4f, overflow/entry %.4f\n",
           kind == SM_KEY_U64 ? "u64" : "bytes", cap, live, a.buckets,
           (double)a.displaced / (double)a.entries, (double)a.ovf_total / (double)a.entries,
           a.holes_passed, b.buckets, (double)b.displaced / (double)b.entries,
           (double)b.ovf_total / (double)b.entries);
    ASSERT_EQ(a.entries, (size_t)live);
    ASSERT_EQ(b.entries, (size_t)live);
    ASSERT_EQ(a.holes_passed, (size_t)0);
    ASSERT_EQ(b.holes_passed, (size_t)0);
    if (a.buckets == b.buckets)
        ASSERT_EQ(a.ovf_total, b.ovf_total);
    else
        FAIL("fresh build has %zu buckets, churned map %zu", b.buckets, a.buckets);
    free(keys);
    ASSERT_OK(sm_destroy(f));
    ASSERT_OK(sm_destroy(m));
}

/* Deletes inside for_each's callback must not move keys under the walk
 * (B3): every key present for the whole walk is visited exactly once.
 * The callback deletes odd keys it visited a moment ago, so the holes
 * open just behind the walk's cursor, where back-fill would pull keys
 * from ahead of the cursor to behind it. */
typedef struct walk {
    sm_map *m;
    uint64_t nkeys;             /* even keys 0, 2, ..., 2(nkeys-1) */
    unsigned char *seen;
    uint64_t recent[4];         /* odd keys visited last */
    size_t nrecent, deleted;
} walk;

static int walk_visit(void *ctx, const sm_entry *e) {
    walk *w = ctx;
    uint64_t k = e->key_u64;
    if (k % 2 == 0) {
        ASSERT_LT(k / 2, w->nkeys);
        if (w->seen[k / 2]++)
            FAIL("key %llu visited twice", (unsigned long long)k);
        return 0;
    }
    if (w->nrecent == 4) {
        uint64_t old = w->recent[0];
        memmove(w->recent, w->recent + 1, 3 * sizeof w->recent[0]);
        w->nrecent = 3;
        ASSERT_OK(sm_delete_u64(w->m, old));
        w->deleted++;
    }
    w->recent[w->nrecent++] = k;
    return 0;
}

static void delete_during_walk(void) {
    tu_context("delete during walk");
    const uint64_t n = 9500; /* 2n keys: an 8192-bucket table at load 0.77 */
    sm_map *m = make(SM_KEY_U64, 0);
    for (uint64_t i = 0; i < 2 * n; i++)
        ASSERT_OK(sm_put_u64(m, i, i));
    walk w = {m, n, calloc(n, 1), {0}, 0, 0};
    ASSERT_TRUE(w.seen != NULL);
    ASSERT_OK(sm_for_each(m, walk_visit, &w));
    for (uint64_t i = 0; i < n; i++)
        if (w.seen[i] != 1)
            FAIL("even key %llu visited %d times", (unsigned long long)(2 * i), w.seen[i]);
    ASSERT_GT(w.deleted, (size_t)(n / 2));
    /* the walk is over: deletes back-fill again */
    sm__census c0 = census(m);
    for (uint64_t i = 1; i < 2 * n; i += 2)
        (void)sm_delete_u64(m, i);
    sm__census c = census(m);
    printf("  walk: %zu deletes inside the callback, passed holes after it %zu, "
           "after deleting the rest %zu\n", w.deleted, c0.holes_passed, c.holes_passed);
    ASSERT_EQ(c.entries, (size_t)n);
    ASSERT_EQ(sm_len(m), (size_t)n);
    free(w.seen);
    ASSERT_OK(sm_destroy(m));
}

#if defined(SM_DEBUG) && SM_DEBUG
/* B2, made deterministic with the debug build's step hook: key x sits one
 * bucket past its full home bucket; the lookup of x reads the home bucket
 * (no x), and right then, before it reads the next bucket, the hook
 * deletes a key of the home bucket, whose back-fill moves x into it.  The
 * lookup must still find x (it sees the home bucket's count changed and
 * starts over).  Through the u64 fast path, the general path (caller
 * pinned) and byte keys. */
static sm_map *g_m;
static const char *g_victim_bytes;
static uint64_t g_victim;
static int g_armed;

static void step_hook(void) {
    if (!g_armed)
        return;
    g_armed = 0;
    if (g_victim_bytes)
        ASSERT_OK(sm_delete(g_m, g_victim_bytes, strlen(g_victim_bytes)));
    else
        ASSERT_OK(sm_delete_u64(g_m, g_victim));
}

static uint64_t home_u64(sm_map *m, uint64_t k, size_t buckets) {
    return sm__hash_u64(m, k) & (buckets - 1);
}

static void move_during_lookup(sm_key_kind kind, int pinned) {
    tu_context("move during lookup: %s%s", kind == SM_KEY_U64 ? "u64" : "bytes",
               pinned ? ", pinned" : "");
    sm_map *m = make(kind, 0);
    sm__census c = census(m);
    /* four keys with one home: three fill it, the fourth lands after it */
    char names[4][32];
    uint64_t keys[4];
    size_t nk = 0, home = 0;
    for (uint64_t k = 1; nk < 4; k++) {
        snprintf(names[nk], sizeof names[nk], "k%llu", (unsigned long long)k);
        uint64_t h = kind == SM_KEY_U64
                         ? home_u64(m, k, c.buckets)
                         : sm__hash_bytes(m, names[nk], strlen(names[nk])) & (c.buckets - 1);
        if (nk == 0)
            home = h;
        if (h == home)
            keys[nk++] = k;
    }
    for (size_t i = 0; i < 4; i++) {
        if (kind == SM_KEY_U64)
            ASSERT_OK(sm_put_u64(m, keys[i], 100 + i));
        else
            ASSERT_OK(sm_put(m, names[i], strlen(names[i]), 100 + i));
    }
    c = census(m);
    ASSERT_EQ(c.displaced, (size_t)1);
    g_m = m;
    g_victim = keys[0];
    g_victim_bytes = kind == SM_KEY_U64 ? NULL : names[0];
    g_armed = 1;
    sm__debug_step_hook = step_hook;
    if (pinned)
        ASSERT_OK(sm_pin(m));
    uint64_t v = 0;
    int rc = kind == SM_KEY_U64 ? sm_get_u64(m, keys[3], &v)
                                : sm_get(m, names[3], strlen(names[3]), &v);
    if (pinned)
        ASSERT_OK(sm_unpin(m));
    sm__debug_step_hook = NULL;
    ASSERT_EQ(g_armed, 0); /* the hook ran inside the lookup */
    ASSERT_OK(rc);
    ASSERT_EQ(v, 103u);
    c = census(m);
    ASSERT_EQ(c.displaced, (size_t)0); /* and x did move home */
    ASSERT_OK(sm_destroy(m));
}
#endif

int main(void) {
    size_t rounds = (size_t)tu_scaled(200000, 20000);
    printf("test_backfill: churned map vs fresh build of the same keys\n");
    /* fixed size (initial capacity covers the peak), high and low load */
    churn_case(SM_KEY_U64, 100000, 75000, rounds, 1);
    churn_case(SM_KEY_U64, 100000, 40000, rounds, 2);
    churn_case(SM_KEY_BYTES, 50000, 35000, rounds / 2, 3);
    /* no initial capacity: grows and shrinks through the bursts */
    churn_case(SM_KEY_U64, 0, 50000, rounds, 4);
    churn_case(SM_KEY_BYTES, 0, 20000, rounds / 4, 5);
    delete_during_walk();
#if defined(SM_DEBUG) && SM_DEBUG
    move_during_lookup(SM_KEY_U64, 0);
    move_during_lookup(SM_KEY_U64, 1);
    move_during_lookup(SM_KEY_BYTES, 0);
    printf("  lookups with a key moved under them (debug step hook): found\n");
#else
    printf("  (lookup-during-move cases need the SM_DEBUG build)\n");
#endif
    printf("test_backfill: OK\n");
    return 0;
}
