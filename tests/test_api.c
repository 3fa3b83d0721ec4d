/*
 * test_api.c — unit tests of every public stillmap operation, on both key
 * kinds: outcomes, edge keys, iteration, pins, statistics, removal hooks,
 * growth and shrink, reserve.
 */
#include "testutil.h"
#include "testkeys.h"

#include <math.h>
#include <stddef.h>

#define RUN(call)                                                            \
    do {                                                                     \
        printf("  %s\n", #call);                                             \
        fflush(stdout);                                                      \
        tu_context("%s", #call);                                             \
        call;                                                                \
    } while (0)

/* Value stored for key index i in the bulk tests; covers 0 and ~0 too. */
static uint64_t val_of(uint64_t i) { return tu_mix64(i + 0x51ull) ^ (i & 1 ? ~0ull : 0); }

/* ---------------------------------------------------------------------
 * Removal-hook log: every call recorded, in order, under a mutex.
 * ------------------------------------------------------------------- */
typedef struct hook_rec {
    uint64_t value;
    int reason;
} hook_rec;

#define LOG_CAP 8192

typedef struct hook_log {
    pthread_mutex_t mu;
    hook_rec rec[LOG_CAP];
    size_t n;
    atomic_size_t count;
    /* Re-entrancy (test_hooks_reentrant): when t.m is set, a hook for a
     * value v < REENTRANT_LIMIT removed by delete puts key
     * REENTRANT_BASE + v = v + REENTRANT_LIMIT into the same map, checks
     * it with a get, and the first such hook tries sm_destroy. */
    tk_map t;
    atomic_int destroy_tried;
    atomic_int destroy_rc;
    atomic_int trim_rc;
    atomic_int reentrant_bad;
} hook_log;

static void log_init(hook_log *l) {
    memset(l, 0, sizeof *l);
    pthread_mutex_init(&l->mu, NULL);
    atomic_init(&l->count, 0);
    atomic_init(&l->destroy_tried, 0);
    atomic_init(&l->destroy_rc, 0);
    atomic_init(&l->trim_rc, 0);
    atomic_init(&l->reentrant_bad, 0);
}

#define REENTRANT_BASE 1000000u
#define REENTRANT_LIMIT 1000000u

static void log_hook(void *ctx, uint64_t value, sm_reason reason) {
    hook_log *l = (hook_log *)ctx;
    if (l->t.m != NULL && reason == SM_REMOVED_DELETE &&
        value < REENTRANT_LIMIT) {
        (void)sm_len(l->t.m);
        uint64_t v = ~0ull;
        if (tk_put(&l->t, REENTRANT_BASE + value, value + REENTRANT_LIMIT) != SM_OK)
            atomic_fetch_add(&l->reentrant_bad, 1);
        if (tk_get(&l->t, REENTRANT_BASE + value, &v) != SM_OK ||
            v != value + REENTRANT_LIMIT)
            atomic_fetch_add(&l->reentrant_bad, 1);
        if (atomic_exchange(&l->destroy_tried, 1) == 0) {
            atomic_store(&l->destroy_rc, sm_destroy(l->t.m));
            atomic_store(&l->trim_rc, sm_trim(l->t.m, NULL));
        }
    }
    pthread_mutex_lock(&l->mu);
    if (l->n < LOG_CAP)
        l->rec[l->n] = (hook_rec){value, (int)reason};
    l->n++;
    pthread_mutex_unlock(&l->mu);
    atomic_fetch_add(&l->count, 1);
}

static int log_has(hook_log *l, uint64_t value, int reason) {
    int found = 0;
    pthread_mutex_lock(&l->mu);
    for (size_t i = 0; i < l->n && i < LOG_CAP; i++)
        if (l->rec[i].value == value && l->rec[i].reason == reason)
            found++;
    pthread_mutex_unlock(&l->mu);
    return found;
}

/* Wait for the hook (value, reason) to have been called. */
#define EXPECT_HOOK(l, value, reason)                                        \
    do {                                                                     \
        int ok_;                                                             \
        TU_WAIT_UNTIL(ok_, log_has((l), (value), (reason)) > 0,              \
                      TU_HOOK_WAIT_S);                                       \
        if (!ok_)                                                            \
            FAIL("removal hook (%llu, %s) not called within %.0f s",         \
                 (unsigned long long)(value), #reason, TU_HOOK_WAIT_S);      \
    } while (0)

/* ---------------------------------------------------------------------
 * Version, status strings, options
 * ------------------------------------------------------------------- */
static void test_version(void) {
    unsigned want = (STILLMAP_VERSION_MAJOR << 16) |
                    (STILLMAP_VERSION_MINOR << 8) | STILLMAP_VERSION_PATCH;
    ASSERT_EQ(sm_version(), want);
    char buf[64];
    snprintf(buf, sizeof buf, "%d.%d.%d", STILLMAP_VERSION_MAJOR,
             STILLMAP_VERSION_MINOR, STILLMAP_VERSION_PATCH);
    ASSERT_STREQ(buf, STILLMAP_VERSION_STRING);
}

static void test_status_strings(void) {
    /* The header's table is the contract for both functions. */
#define CHECK_STATUS(name, val, msg)                                         \
    ASSERT_EQ(SM_##name, val);                                               \
    ASSERT_STREQ(sm_errname(val), "SM_" #name);                              \
    ASSERT_STREQ(sm_strerror(val), msg);
    SM_STATUS_MAP(CHECK_STATUS)
#undef CHECK_STATUS
    /* Outcomes are non-negative, errors negative. */
    ASSERT_TRUE(SM_OK == 0 && SM_NOTFOUND > 0 && SM_EXISTS > 0 && SM_MISMATCH > 0);
    ASSERT_TRUE(SM_ENOMEM < 0 && SM_EINVAL < 0 && SM_EKEYLEN < 0 &&
                SM_EKIND < 0 && SM_EMISUSE < 0 && SM_EBUSY < 0);
    const int unknown[] = {4, 5, 100, -7, -100, 1 << 20, -(1 << 20)};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        ASSERT_STREQ(sm_strerror(unknown[i]), "unknown status");
        ASSERT_STREQ(sm_errname(unknown[i]), "SM_UNKNOWN");
    }
}

static void test_options_init(void) {
    sm_options o;
    memset(&o, 0xab, sizeof o);
    sm_options_init(&o);
    ASSERT_EQ(o.struct_size, sizeof(sm_options));
    ASSERT_EQ(o.key_kind, SM_KEY_U64);
    ASSERT_EQ(o.initial_capacity, 0);
    ASSERT_EQ(o.fixed_seed, 0);
    ASSERT_TRUE(o.allocator == NULL);
    ASSERT_TRUE(o.on_remove == NULL);
    ASSERT_TRUE(o.on_remove_ctx == NULL);
    /* The defaults make a working u64 map. */
    sm_map *m = NULL;
    ASSERT_OK(sm_create(&o, &m));
    ASSERT_OK(sm_put_u64(m, 1, 2));
    ASSERT_OK(sm_destroy(m));
}

static void test_create_defaults(void) {
    sm_map *m = NULL;
    uint64_t v = 0;
    ASSERT_OK(sm_create(NULL, &m));
    ASSERT_TRUE(m != NULL);
    ASSERT_EQ(sm_len(m), 0);
    ASSERT_STATUS(sm_get_u64(m, 0, &v), SM_NOTFOUND);
    ASSERT_OK(sm_put_u64(m, 0, 42));
    ASSERT_OK(sm_get_u64(m, 0, &v));
    ASSERT_EQ(v, 42);
    ASSERT_STATUS(sm_put(m, "a", 1, 1), SM_EKIND);
    ASSERT_EQ(sm_len(m), 1);
    ASSERT_OK(sm_destroy(m));
    /* An empty map destroys cleanly too. */
    ASSERT_OK(sm_create(NULL, &m));
    ASSERT_OK(sm_destroy(m));
}

/* ---------------------------------------------------------------------
 * Every operation, every outcome, optional output pointers.
 * Indices 0 and 1 are key 0 / UINT64_MAX (u64) and the empty key (bytes).
 * ------------------------------------------------------------------- */
static void expect_val(const tk_map *t, uint64_t i, uint64_t want) {
    uint64_t v = ~want;
    ASSERT_OK(tk_get(t, i, &v));
    ASSERT_EQ(v, want);
    ASSERT_OK(tk_get(t, i, NULL));
}

static void expect_absent(const tk_map *t, uint64_t i) {
    uint64_t v = 0;
    ASSERT_STATUS(tk_get(t, i, &v), SM_NOTFOUND);
    ASSERT_STATUS(tk_get(t, i, NULL), SM_NOTFOUND);
}

static void test_outcomes(sm_key_kind kind) {
    tk_map t = tk_create(kind, NULL);
    uint64_t a;
    const uint64_t n = 6;
    for (uint64_t i = 0; i < n; i++) {
        const uint64_t x = i == 0 ? 0 : i == 1 ? UINT64_MAX : i == 2 ? 1 : 1000 + i;
        tu_context("%s outcomes, key index %llu", tu_kind_name(kind),
                   (unsigned long long)i);
        /* absent: every operation that needs the key says so, and none
         * of them inserts it */
        expect_absent(&t, i);
        ASSERT_STATUS(tk_del(&t, i), SM_NOTFOUND);
        ASSERT_STATUS(tk_lad(&t, i, &a), SM_NOTFOUND);
        ASSERT_STATUS(tk_lad(&t, i, NULL), SM_NOTFOUND);
        ASSERT_STATUS(tk_cad(&t, i, x), SM_NOTFOUND);
        ASSERT_STATUS(tk_cas(&t, i, x, x + 1), SM_NOTFOUND);
        expect_absent(&t, i);
        ASSERT_EQ(sm_len(t.m), i);

        /* put inserts, then assigns */
        ASSERT_OK(tk_put(&t, i, x));
        expect_val(&t, i, x);
        ASSERT_EQ(sm_len(t.m), i + 1);
        ASSERT_OK(tk_put(&t, i, x + 5));
        expect_val(&t, i, x + 5);
        ASSERT_OK(tk_put(&t, i, x));
        ASSERT_OK(tk_put(&t, i, x)); /* same value again */
        expect_val(&t, i, x);
        ASSERT_EQ(sm_len(t.m), i + 1);

        /* load_or_store on a present key keeps it */
        a = 12345;
        ASSERT_STATUS(tk_los(&t, i, 777, &a), SM_EXISTS);
        ASSERT_EQ(a, x);
        ASSERT_STATUS(tk_los(&t, i, 778, NULL), SM_EXISTS);
        expect_val(&t, i, x);

        /* swap on a present key */
        a = 0;
        ASSERT_OK(tk_swap(&t, i, x ^ 0xff, &a));
        ASSERT_EQ(a, x);
        expect_val(&t, i, x ^ 0xff);
        ASSERT_OK(tk_swap(&t, i, x, NULL));
        expect_val(&t, i, x);
        ASSERT_OK(tk_swap(&t, i, x, &a)); /* same value */
        ASSERT_EQ(a, x);
        expect_val(&t, i, x);

        /* compare-and-swap */
        ASSERT_STATUS(tk_cas(&t, i, x + 1, 5), SM_MISMATCH);
        ASSERT_STATUS(tk_cas(&t, i, ~x, x), SM_MISMATCH);
        expect_val(&t, i, x);
        ASSERT_OK(tk_cas(&t, i, x, ~x));
        expect_val(&t, i, ~x);
        ASSERT_OK(tk_cas(&t, i, ~x, ~x));
        expect_val(&t, i, ~x);
        ASSERT_OK(tk_cas(&t, i, ~x, x));
        expect_val(&t, i, x);
        ASSERT_EQ(sm_len(t.m), i + 1);

        /* compare-and-delete */
        ASSERT_STATUS(tk_cad(&t, i, x + 1), SM_MISMATCH);
        ASSERT_STATUS(tk_cad(&t, i, ~x), SM_MISMATCH);
        expect_val(&t, i, x);
        ASSERT_EQ(sm_len(t.m), i + 1);
        ASSERT_OK(tk_cad(&t, i, x));
        expect_absent(&t, i);
        ASSERT_EQ(sm_len(t.m), i);

        /* load_or_store on an absent key stores */
        a = ~x;
        ASSERT_OK(tk_los(&t, i, x, &a));
        ASSERT_EQ(a, x);
        expect_val(&t, i, x);
        ASSERT_EQ(sm_len(t.m), i + 1);

        /* load_and_delete */
        a = ~x;
        ASSERT_OK(tk_lad(&t, i, &a));
        ASSERT_EQ(a, x);
        expect_absent(&t, i);
        ASSERT_EQ(sm_len(t.m), i);

        /* swap on an absent key inserts and says NOTFOUND */
        ASSERT_STATUS(tk_swap(&t, i, x, &a), SM_NOTFOUND);
        expect_val(&t, i, x);
        ASSERT_EQ(sm_len(t.m), i + 1);

        /* delete */
        ASSERT_OK(tk_del(&t, i));
        expect_absent(&t, i);
        ASSERT_STATUS(tk_del(&t, i), SM_NOTFOUND);
        ASSERT_EQ(sm_len(t.m), i);

        /* the NULL-output forms */
        ASSERT_OK(tk_los(&t, i, x, NULL));
        expect_val(&t, i, x);
        ASSERT_OK(tk_lad(&t, i, NULL));
        expect_absent(&t, i);
        ASSERT_STATUS(tk_swap(&t, i, x, NULL), SM_NOTFOUND);
        expect_val(&t, i, x);
        ASSERT_EQ(sm_len(t.m), i + 1);
        /* key i stays for the next round */
    }
    for (uint64_t i = 0; i < n; i++)
        expect_val(&t, i, i == 0 ? 0 : i == 1 ? UINT64_MAX : i == 2 ? 1 : 1000 + i);
    ASSERT_EQ(sm_len(t.m), n);
    ASSERT_OK(sm_destroy(t.m));
}

/* Calls of the other kind's functions: SM_EKIND, nothing changes. */
static void test_wrong_kind(void) {
    uint64_t v = 0;
    tk_map u = tk_create(SM_KEY_U64, NULL);
    tk_map b = tk_create(SM_KEY_BYTES, NULL);
    ASSERT_OK(sm_put_u64(u.m, 7, 70));
    ASSERT_OK(sm_put(b.m, "seven", 5, 70));

    ASSERT_STATUS(sm_get(u.m, "seven", 5, &v), SM_EKIND);
    ASSERT_STATUS(sm_put(u.m, "seven", 5, 1), SM_EKIND);
    ASSERT_STATUS(sm_load_or_store(u.m, "seven", 5, 1, &v), SM_EKIND);
    ASSERT_STATUS(sm_swap(u.m, "seven", 5, 1, &v), SM_EKIND);
    ASSERT_STATUS(sm_cas(u.m, "seven", 5, 70, 1), SM_EKIND);
    ASSERT_STATUS(sm_delete(u.m, "seven", 5), SM_EKIND);
    ASSERT_STATUS(sm_load_and_delete(u.m, "seven", 5, &v), SM_EKIND);
    ASSERT_STATUS(sm_cad(u.m, "seven", 5, 70), SM_EKIND);
    ASSERT_STATUS(sm_put(u.m, NULL, 0, 1), SM_EKIND);
    ASSERT_EQ(sm_len(u.m), 1);
    ASSERT_OK(sm_get_u64(u.m, 7, &v));
    ASSERT_EQ(v, 70);

    ASSERT_STATUS(sm_get_u64(b.m, 7, &v), SM_EKIND);
    ASSERT_STATUS(sm_put_u64(b.m, 7, 1), SM_EKIND);
    ASSERT_STATUS(sm_load_or_store_u64(b.m, 7, 1, &v), SM_EKIND);
    ASSERT_STATUS(sm_swap_u64(b.m, 7, 1, &v), SM_EKIND);
    ASSERT_STATUS(sm_cas_u64(b.m, 7, 70, 1), SM_EKIND);
    ASSERT_STATUS(sm_delete_u64(b.m, 7), SM_EKIND);
    ASSERT_STATUS(sm_load_and_delete_u64(b.m, 7, &v), SM_EKIND);
    ASSERT_STATUS(sm_cad_u64(b.m, 7, 70), SM_EKIND);
    ASSERT_EQ(sm_len(b.m), 1);
    ASSERT_OK(sm_get(b.m, "seven", 5, &v));
    ASSERT_EQ(v, 70);

    ASSERT_OK(sm_destroy(u.m));
    ASSERT_OK(sm_destroy(b.m));
}

/* ---------------------------------------------------------------------
 * Byte keys: empty key, SM_KEY_MAX, near-identical keys, NUL bytes
 * ------------------------------------------------------------------- */
static void test_empty_key(void) {
    tk_map t = tk_create(SM_KEY_BYTES, NULL);
    uint64_t v = 0;
    static const char nonempty[] = "x";
    /* NULL and a real pointer with len 0 name the same key */
    ASSERT_STATUS(sm_get(t.m, NULL, 0, &v), SM_NOTFOUND);
    ASSERT_OK(sm_put(t.m, NULL, 0, 11));
    ASSERT_OK(sm_get(t.m, nonempty, 0, &v));
    ASSERT_EQ(v, 11);
    ASSERT_EQ(sm_len(t.m), 1);
    ASSERT_OK(sm_put(t.m, nonempty, 0, 12));
    ASSERT_EQ(sm_len(t.m), 1);
    ASSERT_OK(sm_get(t.m, NULL, 0, &v));
    ASSERT_EQ(v, 12);
    /* it is not the key "x" nor "\0" */
    ASSERT_STATUS(sm_get(t.m, nonempty, 1, &v), SM_NOTFOUND);
    ASSERT_STATUS(sm_get(t.m, "\0", 1, &v), SM_NOTFOUND);
    ASSERT_OK(sm_put(t.m, "\0", 1, 13));
    ASSERT_OK(sm_get(t.m, NULL, 0, &v));
    ASSERT_EQ(v, 12);
    ASSERT_EQ(sm_len(t.m), 2);
    /* every operation on it, mixing the two spellings */
    ASSERT_STATUS(sm_load_or_store(t.m, NULL, 0, 99, &v), SM_EXISTS);
    ASSERT_EQ(v, 12);
    ASSERT_OK(sm_swap(t.m, nonempty, 0, 14, &v));
    ASSERT_EQ(v, 12);
    ASSERT_STATUS(sm_cas(t.m, NULL, 0, 12, 15), SM_MISMATCH);
    ASSERT_OK(sm_cas(t.m, NULL, 0, 14, 15));
    ASSERT_STATUS(sm_cad(t.m, nonempty, 0, 14), SM_MISMATCH);
    ASSERT_OK(sm_load_and_delete(t.m, NULL, 0, &v));
    ASSERT_EQ(v, 15);
    ASSERT_STATUS(sm_get(t.m, nonempty, 0, &v), SM_NOTFOUND);
    ASSERT_STATUS(sm_swap(t.m, NULL, 0, 16, &v), SM_NOTFOUND);
    ASSERT_OK(sm_cad(t.m, nonempty, 0, 16));
    ASSERT_STATUS(sm_delete(t.m, NULL, 0), SM_NOTFOUND);
    ASSERT_OK(sm_load_or_store(t.m, nonempty, 0, 17, &v));
    ASSERT_EQ(v, 17);
    ASSERT_OK(sm_delete(t.m, NULL, 0));
    ASSERT_OK(sm_get(t.m, "\0", 1, &v));
    ASSERT_EQ(v, 13);
    ASSERT_EQ(sm_len(t.m), 1);
    ASSERT_OK(sm_destroy(t.m));
}

typedef struct bkey {
    unsigned char b[136];
    size_t len;
} bkey;

typedef struct bkey_visit {
    const bkey *keys;
    size_t nkeys;
    const uint64_t *want;     /* value per key, or NULL */
    const unsigned char *present;
    unsigned *seen;
    size_t calls;
} bkey_visit;

static int bkey_visitor(void *ctx, const sm_entry *e) {
    bkey_visit *bv = (bkey_visit *)ctx;
    bv->calls++;
    ASSERT_EQ(e->key_u64, 0);
    for (size_t i = 0; i < bv->nkeys; i++) {
        if (bv->keys[i].len == e->len &&
            (e->len == 0 || memcmp(bv->keys[i].b, e->key, e->len) == 0)) {
            bv->seen[i]++;
            ASSERT_TRUE(bv->present[i]);
            ASSERT_EQ(e->value, bv->want[i]);
            return 0;
        }
    }
    FAIL("sm_for_each visited a key (len %zu) that is not in the map", e->len);
}

static size_t add_bkey(bkey *keys, size_t n, const unsigned char *b, size_t len) {
    for (size_t i = 0; i < n; i++)
        if (keys[i].len == len && memcmp(keys[i].b, b, len) == 0)
            return n;
    memcpy(keys[n].b, b, len);
    keys[n].len = len;
    return n + 1;
}

/* Keys that differ only in length, in their last byte, or in NUL bytes. */
static void test_similar_keys(void) {
    static bkey keys[600];
    static uint64_t want[600];
    static unsigned char present[600];
    static unsigned seen[600];
    unsigned char base[136], tmp[136];
    size_t n = 0;
    for (size_t i = 0; i < sizeof base; i++)
        base[i] = (unsigned char)('A' + (i * 7) % 26);
    static const size_t lens[] = {0, 1, 2, 3, 4, 7, 8, 9, 15, 16, 17, 23, 24,
                                  25, 31, 32, 33, 47, 48, 49, 63, 64, 65, 127, 128};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        size_t L = lens[li];
        n = add_bkey(keys, n, base, L);
        if (L > 0) {
            memcpy(tmp, base, L);
            tmp[L - 1] ^= 1;               /* last byte differs by one bit */
            n = add_bkey(keys, n, tmp, L);
            tmp[L - 1] = 0;                /* last byte NUL */
            n = add_bkey(keys, n, tmp, L);
            tmp[L - 1] = 0xff;
            n = add_bkey(keys, n, tmp, L);
        }
        memcpy(tmp, base, L);
        tmp[L] = 0;                        /* one NUL byte longer */
        n = add_bkey(keys, n, tmp, L + 1);
        tmp[L] = base[L];                  /* one byte longer */
        n = add_bkey(keys, n, tmp, L + 1);
        memset(tmp, 0, L + 1);             /* all NUL */
        n = add_bkey(keys, n, tmp, L + 1);
        memset(tmp, 0xff, L + 1);
        n = add_bkey(keys, n, tmp, L + 1);
    }
    ASSERT_LE(n, sizeof keys / sizeof keys[0]);

    tk_map t = tk_create(SM_KEY_BYTES, NULL);
    uint64_t v;
    for (size_t i = 0; i < n; i++) {
        want[i] = 1000 + i;
        present[i] = 1;
        ASSERT_OK(sm_put(t.m, keys[i].b, keys[i].len, want[i]));
        ASSERT_EQ(sm_len(t.m), i + 1);
    }
    for (size_t i = 0; i < n; i++) {
        tu_context("similar key %zu (len %zu)", i, keys[i].len);
        ASSERT_OK(sm_get(t.m, keys[i].b, keys[i].len, &v));
        ASSERT_EQ(v, want[i]);
    }
    bkey_visit bv = {keys, n, want, present, seen, 0};
    ASSERT_OK(sm_for_each(t.m, bkey_visitor, &bv));
    ASSERT_EQ(bv.calls, n);
    for (size_t i = 0; i < n; i++)
        ASSERT_EQ(seen[i], 1);
    /* remove every other key; the neighbours are untouched */
    for (size_t i = 0; i < n; i += 2) {
        ASSERT_OK(sm_delete(t.m, keys[i].b, keys[i].len));
        present[i] = 0;
    }
    for (size_t i = 0; i < n; i++) {
        tu_context("similar key %zu (len %zu) after deletes", i, keys[i].len);
        if (present[i]) {
            ASSERT_OK(sm_get(t.m, keys[i].b, keys[i].len, &v));
            ASSERT_EQ(v, want[i]);
        } else {
            ASSERT_STATUS(sm_get(t.m, keys[i].b, keys[i].len, &v), SM_NOTFOUND);
        }
    }
    ASSERT_EQ(sm_len(t.m), n / 2);
    memset(seen, 0, sizeof seen);
    bv.calls = 0;
    ASSERT_OK(sm_for_each(t.m, bkey_visitor, &bv));
    ASSERT_EQ(bv.calls, n / 2);
    for (size_t i = 0; i < n; i++)
        ASSERT_EQ(seen[i], present[i]);
    ASSERT_OK(sm_destroy(t.m));
}

typedef struct max_visit {
    const unsigned char *key;
    size_t calls, matched;
} max_visit;

static int max_visitor(void *ctx, const sm_entry *e) {
    max_visit *mv = (max_visit *)ctx;
    mv->calls++;
    if (e->len == SM_KEY_MAX && memcmp(e->key, mv->key, SM_KEY_MAX) == 0 &&
        e->value == 1)
        mv->matched++;
    return 0;
}

static void test_key_max(void) {
    const size_t big = (size_t)SM_KEY_MAX + 1;
    unsigned char *k = (unsigned char *)malloc(big);
    ASSERT_TRUE(k != NULL);
    tu_rng r = tu_rng_make(99);
    for (size_t i = 0; i < big; i++)
        k[i] = (unsigned char)tu_rng_next(&r);
    tk_map t = tk_create(SM_KEY_BYTES, NULL);
    uint64_t v = 0;

    /* exactly SM_KEY_MAX bytes works */
    ASSERT_OK(sm_put(t.m, k, SM_KEY_MAX, 1));
    ASSERT_OK(sm_get(t.m, k, SM_KEY_MAX, &v));
    ASSERT_EQ(v, 1);
    ASSERT_STATUS(sm_get(t.m, k, SM_KEY_MAX - 1, &v), SM_NOTFOUND);
    ASSERT_EQ(sm_len(t.m), 1);

    /* one more byte: SM_EKEYLEN from every operation, nothing changes,
     * even though the first SM_KEY_MAX bytes name a stored key */
    ASSERT_STATUS(sm_get(t.m, k, big, &v), SM_EKEYLEN);
    ASSERT_STATUS(sm_put(t.m, k, big, 2), SM_EKEYLEN);
    ASSERT_STATUS(sm_load_or_store(t.m, k, big, 2, &v), SM_EKEYLEN);
    ASSERT_STATUS(sm_swap(t.m, k, big, 2, &v), SM_EKEYLEN);
    ASSERT_STATUS(sm_cas(t.m, k, big, 1, 2), SM_EKEYLEN);
    ASSERT_STATUS(sm_delete(t.m, k, big), SM_EKEYLEN);
    ASSERT_STATUS(sm_load_and_delete(t.m, k, big, &v), SM_EKEYLEN);
    ASSERT_STATUS(sm_cad(t.m, k, big, 1), SM_EKEYLEN);
    ASSERT_EQ(sm_len(t.m), 1);
    v = 0;
    ASSERT_OK(sm_get(t.m, k, SM_KEY_MAX, &v));
    ASSERT_EQ(v, 1);

    max_visit mv = {k, 0, 0};
    ASSERT_OK(sm_for_each(t.m, max_visitor, &mv));
    ASSERT_EQ(mv.calls, 1);
    ASSERT_EQ(mv.matched, 1);

    /* the other operations with a maximal key */
    ASSERT_OK(sm_swap(t.m, k, SM_KEY_MAX, 3, &v));
    ASSERT_EQ(v, 1);
    ASSERT_OK(sm_cas(t.m, k, SM_KEY_MAX, 3, 4));
    ASSERT_OK(sm_cad(t.m, k, SM_KEY_MAX, 4));
    ASSERT_EQ(sm_len(t.m), 0);
    ASSERT_OK(sm_load_or_store(t.m, k + 1, SM_KEY_MAX, 5, &v));
    ASSERT_OK(sm_load_and_delete(t.m, k + 1, SM_KEY_MAX, &v));
    ASSERT_EQ(v, 5);
    ASSERT_EQ(sm_len(t.m), 0);
    ASSERT_OK(sm_destroy(t.m));
    free(k);
}

/* ---------------------------------------------------------------------
 * u64 edge keys and values, under several hash seeds
 * ------------------------------------------------------------------- */
static size_t edge_keys(uint64_t *out, size_t cap) {
    size_t n = 0;
#define ADD(x)                                                               \
    do {                                                                     \
        uint64_t x_ = (x);                                                   \
        int dup_ = 0;                                                        \
        for (size_t j_ = 0; j_ < n; j_++)                                    \
            if (out[j_] == x_) {                                             \
                dup_ = 1;                                                    \
                break;                                                       \
            }                                                                \
        if (!dup_ && n < cap)                                                \
            out[n++] = x_;                                                   \
    } while (0)
    for (uint64_t i = 0; i < 300; i++) {
        ADD(i);
        ADD(UINT64_MAX - i);
    }
    for (int b = 0; b < 64; b++) {
        uint64_t p = 1ull << b;
        ADD(p);
        ADD(~p);
        ADD(p - 1);
        ADD(p + 1);
        ADD(~(p - 1));
    }
    for (unsigned byte = 0; byte < 256; byte++) {
        ADD(0x0101010101010101ull * byte);       /* every byte equal */
        ADD((uint64_t)byte << 56);               /* top byte only */
        ADD(((uint64_t)byte << 56) | 0xffffffffffffffull);
    }
    ADD(0xdeadbeefdeadbeefull);
    ADD(0x8000000000000001ull);
    ADD(0x7fffffffffffffffull);
    ADD(0x00000000ffffffffull);
    ADD(0xffffffff00000000ull);
    ADD(0x5555555555555555ull);
    ADD(0xaaaaaaaaaaaaaaaaull);
#undef ADD
    return n;
}

static void test_u64_edges(void) {
    enum { CAP = 4096, NRAND = 20000 };
    static uint64_t keys[CAP + NRAND];
    size_t n = edge_keys(keys, CAP);
    const size_t nrand = (size_t)tu_scaled(NRAND, 2000);
    tu_rng r = tu_rng_make(7);
    for (size_t i = 0; i < nrand; i++)
        keys[n++] = tu_rng_next(&r);
    /* a repeated random key would break the counts: there are none with
     * this seed, and the len checks below would say so */
    struct {
        int fixed;
        uint64_t seed;
    } seeds[] = {{1, 0}, {1, 1}, {1, UINT64_MAX}, {1, 0x9e3779b97f4a7c15ull},
                 {0, 0}};
    for (size_t s = 0; s < sizeof seeds / sizeof seeds[0]; s++) {
        sm_options o;
        sm_options_init(&o);
        o.fixed_seed = seeds[s].fixed;
        o.seed = seeds[s].seed;
        sm_map *m = NULL;
        ASSERT_OK(sm_create(&o, &m));
        uint64_t v;
        for (size_t i = 0; i < n; i++) {
            tu_context("u64 edges, seed set %zu, key 0x%llx", s,
                       (unsigned long long)keys[i]);
            ASSERT_OK(sm_put_u64(m, keys[i], ~keys[i]));
            ASSERT_OK(sm_get_u64(m, keys[i], &v));
            ASSERT_EQ(v, ~keys[i]);
        }
        ASSERT_EQ(sm_len(m), n);
        for (size_t i = 0; i < n; i++) {
            tu_context("u64 edges, seed set %zu, key 0x%llx", s,
                       (unsigned long long)keys[i]);
            ASSERT_OK(sm_get_u64(m, keys[i], &v));
            ASSERT_EQ(v, ~keys[i]);
        }
        /* value edge cases on the key edge cases */
        for (size_t i = 0; i < n; i += 2) {
            uint64_t nv = (i & 2) ? 0 : UINT64_MAX;
            ASSERT_OK(sm_cas_u64(m, keys[i], ~keys[i], nv));
            ASSERT_OK(sm_get_u64(m, keys[i], &v));
            ASSERT_EQ(v, nv);
        }
        /* delete the odd ones; the even ones stay */
        for (size_t i = 1; i < n; i += 2)
            ASSERT_OK(sm_delete_u64(m, keys[i]));
        ASSERT_EQ(sm_len(m), (n + 1) / 2);
        for (size_t i = 0; i < n; i++) {
            tu_context("u64 edges after deletes, seed set %zu, key 0x%llx", s,
                       (unsigned long long)keys[i]);
            int st = sm_get_u64(m, keys[i], &v);
            if (i & 1) {
                ASSERT_STATUS(st, SM_NOTFOUND);
            } else {
                ASSERT_OK(st);
                ASSERT_EQ(v, (i & 2) ? 0 : UINT64_MAX);
            }
        }
        ASSERT_OK(sm_destroy(m));
    }
}

/* ---------------------------------------------------------------------
 * for_each
 * ------------------------------------------------------------------- */
enum visit_mode {
    VISIT_CHECK,      /* check value and count */
    VISIT_STOP,       /* return stop_rc at call number stop_at */
    VISIT_UPDATE,     /* put(key, value + 1) from inside the callback */
    VISIT_INSERT,     /* insert fresh keys from inside the callback */
    VISIT_GET         /* get(key) from inside the callback */
};

typedef struct visit {
    tk_map *t;
    enum visit_mode mode;
    uint64_t nkeys;          /* indices [0, nkeys) may be visited ... */
    uint64_t extra_base;     /* ... and [extra_base, extra_next) */
    uint64_t extra_next;
    unsigned char *seen;     /* nkeys entries */
    unsigned char *seen_extra;
    const uint64_t *want;    /* expected value per index, [0, nkeys) */
    size_t calls;
    size_t stop_at;
    int stop_rc;
} visit;

static int visitor(void *ctx, const sm_entry *e) {
    visit *vs = (visit *)ctx;
    uint64_t i = tk_index_of_entry(vs->t, e);
    vs->calls++;
    if (i >= vs->extra_base && i < vs->extra_next) {
        /* a key inserted during the walk: at most once */
        if (vs->seen_extra[i - vs->extra_base]++)
            FAIL("key index %llu (inserted during the walk) visited twice",
                 (unsigned long long)i);
        ASSERT_EQ(e->value, i);
        return 0;
    }
    if (i >= vs->nkeys)
        FAIL("visited key index %llu was never stored", (unsigned long long)i);
    if (vs->seen[i]++)
        FAIL("key index %llu visited twice", (unsigned long long)i);
    ASSERT_EQ(e->value, vs->want[i]);
    switch (vs->mode) {
    case VISIT_CHECK:
        break;
    case VISIT_STOP:
        if (vs->calls == vs->stop_at)
            return vs->stop_rc;
        break;
    case VISIT_UPDATE:
        ASSERT_OK(tk_put(vs->t, i, vs->want[i] + 1));
        break;
    case VISIT_INSERT:
        for (int j = 0; j < 4; j++) {
            ASSERT_OK(tk_put(vs->t, vs->extra_next, vs->extra_next));
            vs->extra_next++;
        }
        break;
    case VISIT_GET: {
        uint64_t v = ~e->value;
        ASSERT_OK(tk_get(vs->t, i, &v));
        ASSERT_EQ(v, e->value);
        break;
    }
    }
    return 0;
}

static void test_for_each(sm_key_kind kind) {
    const uint64_t n = 5000;
    tk_map t = tk_create(kind, NULL);
    uint64_t *want = (uint64_t *)calloc(n, sizeof *want);
    unsigned char *seen = (unsigned char *)calloc(n, 1);
    unsigned char *seen_extra = (unsigned char *)calloc(4 * n + 8, 1);
    ASSERT_TRUE(want && seen && seen_extra);
    visit vs = {&t, VISIT_CHECK, n, 0, 0, seen, seen_extra, want, 0, 0, 0};

    /* empty map: no calls */
    ASSERT_OK(sm_for_each(t.m, visitor, &vs));
    ASSERT_EQ(vs.calls, 0);

    for (uint64_t i = 0; i < n; i++) {
        want[i] = val_of(i);
        ASSERT_OK(tk_put(&t, i, want[i]));
    }

    /* each key exactly once, right values */
    ASSERT_OK(sm_for_each(t.m, visitor, &vs));
    ASSERT_EQ(vs.calls, n);
    for (uint64_t i = 0; i < n; i++)
        ASSERT_EQ(seen[i], 1);

    /* stop on a non-zero return, which is passed back */
    const int stops[][2] = {{10, 7}, {1, -42}, {1, 1}, {(int)n, 3}};
    for (size_t s = 0; s < sizeof stops / sizeof stops[0]; s++) {
        memset(seen, 0, n);
        vs.mode = VISIT_STOP;
        vs.calls = 0;
        vs.stop_at = (size_t)stops[s][0];
        vs.stop_rc = stops[s][1];
        ASSERT_EQ(sm_for_each(t.m, visitor, &vs), stops[s][1]);
        ASSERT_EQ(vs.calls, stops[s][0]);
    }

    /* get from inside the callback */
    memset(seen, 0, n);
    vs.mode = VISIT_GET;
    vs.calls = 0;
    ASSERT_OK(sm_for_each(t.m, visitor, &vs));
    ASSERT_EQ(vs.calls, n);

    /* updating the visited key does not make it visited again */
    memset(seen, 0, n);
    vs.mode = VISIT_UPDATE;
    vs.calls = 0;
    ASSERT_OK(sm_for_each(t.m, visitor, &vs));
    ASSERT_EQ(vs.calls, n);
    for (uint64_t i = 0; i < n; i++) {
        ASSERT_EQ(seen[i], 1);
        want[i]++;
        expect_val(&t, i, want[i]);
    }

    /* inserting during the walk (enough to grow the table): every key
     * that was there all along is visited once, no key twice */
    memset(seen, 0, n);
    vs.mode = VISIT_INSERT;
    vs.calls = 0;
    vs.extra_base = vs.extra_next = 1u << 20;
    ASSERT_OK(sm_for_each(t.m, visitor, &vs));
    for (uint64_t i = 0; i < n; i++)
        ASSERT_EQ(seen[i], 1);
    ASSERT_EQ(vs.extra_next - vs.extra_base, 4 * n);
    ASSERT_EQ(sm_len(t.m), 5 * n);
    for (uint64_t i = vs.extra_base; i < vs.extra_next; i++)
        expect_val(&t, i, i);

    /* NULL callback */
    ASSERT_STATUS(sm_for_each(t.m, NULL, NULL), SM_EINVAL);
    ASSERT_OK(sm_destroy(t.m));
    free(want);
    free(seen);
    free(seen_extra);
}

/* ---------------------------------------------------------------------
 * Pins
 * ------------------------------------------------------------------- */
static void test_pin(void) {
    static hook_log lg;
    log_init(&lg);
    sm_options o;
    sm_options_init(&o);
    o.on_remove = log_hook;
    o.on_remove_ctx = &lg;
    tk_map t = tk_create(SM_KEY_U64, &o);
    uint64_t v = 0;

    /* nesting */
    ASSERT_OK(sm_pin(t.m));
    ASSERT_OK(sm_pin(t.m));
    ASSERT_OK(sm_pin(t.m));
    ASSERT_OK(sm_unpin(t.m));
    ASSERT_OK(sm_unpin(t.m));
    ASSERT_OK(sm_unpin(t.m));
    ASSERT_STATUS(sm_unpin(t.m), SM_EMISUSE);

    /* every operation works while pinned */
    ASSERT_OK(sm_pin(t.m));
    ASSERT_OK(sm_put_u64(t.m, 1, 100));
    ASSERT_OK(sm_get_u64(t.m, 1, &v));
    ASSERT_EQ(v, 100);
    ASSERT_OK(sm_put_u64(t.m, 2, 200));
    ASSERT_EQ(sm_len(t.m), 2);
    ASSERT_OK(sm_unpin(t.m));

    /* a value read while pinned does not get its hook until the unpin */
    ASSERT_OK(sm_pin(t.m));
    ASSERT_OK(sm_get_u64(t.m, 1, &v));
    ASSERT_EQ(v, 100);
    ASSERT_OK(sm_delete_u64(t.m, 1));
    ASSERT_OK(sm_swap_u64(t.m, 2, 201, &v));   /* 200 leaves too */
    ASSERT_EQ(v, 200);
    /* give the reclaimer every chance to misbehave */
    for (int i = 0; i < 50; i++) {
        tu_sleep_us(1000);
        ASSERT_EQ(log_has(&lg, 100, SM_REMOVED_DELETE), 0);
        ASSERT_EQ(log_has(&lg, 200, SM_REMOVED_REPLACE), 0);
    }
    ASSERT_OK(sm_unpin(t.m));
    EXPECT_HOOK(&lg, 100, SM_REMOVED_DELETE);
    EXPECT_HOOK(&lg, 200, SM_REMOVED_REPLACE);
    ASSERT_OK(sm_destroy(t.m));
    ASSERT_EQ(atomic_load(&lg.count), 3); /* + 201 on destroy */
    ASSERT_EQ(log_has(&lg, 201, SM_REMOVED_DESTROY), 1);
    pthread_mutex_destroy(&lg.mu);
}

/* ---------------------------------------------------------------------
 * len, clear
 * ------------------------------------------------------------------- */
static void test_clear(sm_key_kind kind) {
    const uint64_t n = 3000;
    tk_map t = tk_create(kind, NULL);
    ASSERT_OK(sm_clear(t.m));              /* empty map */
    ASSERT_EQ(sm_len(t.m), 0);
    sm_stats s0 = tu_stats(t.m);
    for (int round = 0; round < 3; round++) {
        for (uint64_t i = 0; i < n; i++) {
            ASSERT_OK(tk_put(&t, i, val_of(i) + (uint64_t)round));
            ASSERT_EQ(sm_len(t.m), i + 1);
        }
        ASSERT_OK(sm_clear(t.m));
        ASSERT_EQ(sm_len(t.m), 0);
        for (uint64_t i = 0; i < n; i++)
            expect_absent(&t, i);
        visit vs = {&t, VISIT_CHECK, 0, 0, 0, NULL, NULL, NULL, 0, 0, 0};
        ASSERT_OK(sm_for_each(t.m, visitor, &vs));
        ASSERT_EQ(vs.calls, 0);
        /* the map works as new after a clear */
        uint64_t a = 0;
        ASSERT_OK(tk_los(&t, 5, 55, &a));
        ASSERT_EQ(a, 55);
        ASSERT_STATUS(tk_swap(&t, 6, 66, &a), SM_NOTFOUND);
        expect_val(&t, 5, 55);
        expect_val(&t, 6, 66);
        ASSERT_EQ(sm_len(t.m), 2);
        ASSERT_OK(sm_clear(t.m));
        ASSERT_OK(sm_clear(t.m));
        ASSERT_EQ(sm_len(t.m), 0);
    }
    sm_stats s1 = tu_stats(t.m);
    ASSERT_GE(s1.clears_total, s0.clears_total + 9);
    ASSERT_EQ(s1.entries, 0);
    ASSERT_OK(sm_destroy(t.m));
}

/* ---------------------------------------------------------------------
 * Statistics
 * ------------------------------------------------------------------- */

/* Stats once no resize is migrating (the background thread finishes
 * one without help); then every gauge is stable in a quiet map. */
static sm_stats settled_stats(sm_map *m) {
    sm_stats st;
    int ok;
    TU_WAIT_UNTIL(ok, (st = tu_stats(m), st.transition_in_progress == 0), 20.0);
    if (!ok)
        FAIL("a resize was still migrating after 20 s in a quiet map");
    return st;
}

static void check_stats_sane(sm_map *m, uint64_t entries) {
    sm_stats st = settled_stats(m);
    ASSERT_EQ(st.struct_size, sizeof(sm_stats));
    ASSERT_EQ(st.entries, entries);
    ASSERT_EQ(st.entries, sm_len(m));
    ASSERT_GE(st.capacity, st.entries);
    ASSERT_GT(st.capacity, 0);
    ASSERT_GT(st.table_bytes, 0);
    double lf = (double)st.entries / (double)st.capacity;
    if (fabs(st.load_factor - lf) > 1e-9)
        FAIL("load_factor %.12f, entries/capacity %.12f", st.load_factor, lf);
    ASSERT_TRUE(st.load_factor >= 0.0 && st.load_factor <= 1.0);
}

static void test_stats(sm_key_kind kind) {
    tu_alloc al;
    tu_alloc_init(&al);
    sm_options o;
    sm_options_init(&o);
    o.allocator = &al.base;
    tk_map t = tk_create(kind, &o);
    check_stats_sane(t.m, 0);
    sm_stats s0 = tu_stats(t.m);
    ASSERT_EQ(s0.entry_bytes, 0);

    const uint64_t n = 20000;
    uint64_t keybytes = 0;
    unsigned char kb[TK_MAXLEN];
    for (uint64_t i = 0; i < n; i++) {
        ASSERT_OK(tk_put(&t, i, val_of(i)));
        keybytes += tk_bytes_key(i, kb);
    }
    check_stats_sane(t.m, n);
    sm_stats s1 = tu_stats(t.m);
    ASSERT_GT(s1.grows_total, s0.grows_total);
    ASSERT_GT(s1.table_bytes, s0.table_bytes);
    /* the table memory comes from the map's allocator */
    ASSERT_LE(s1.table_bytes, (uint64_t)atomic_load(&al.outstanding_bytes));
    if (kind == SM_KEY_BYTES) {
        ASSERT_GE(s1.entry_bytes, keybytes);
        ASSERT_LE(s1.table_bytes + s1.entry_bytes,
                  (uint64_t)atomic_load(&al.outstanding_bytes));
    } else {
        ASSERT_EQ(s1.entry_bytes, 0);
    }

    /* counters are monotonic; clear counts */
    ASSERT_OK(sm_clear(t.m));
    sm_stats s2 = tu_stats(t.m);
    ASSERT_EQ(s2.entries, 0);
    ASSERT_EQ(s2.clears_total, s1.clears_total + 1);
    ASSERT_GE(s2.grows_total, s1.grows_total);
    ASSERT_GE(s2.shrinks_total, s1.shrinks_total);
    ASSERT_GE(s2.buckets_migrated_total, s1.buckets_migrated_total);
    /* the old entries are reclaimed in the background: pending drops to 0 */
    int ok;
    sm_stats s3;
    TU_WAIT_UNTIL(ok, (s3 = tu_stats(t.m), s3.pending_reclaim_objects == 0 &&
                                               s3.pending_reclaim_bytes == 0),
                  TU_HOOK_WAIT_S);
    if (!ok)
        FAIL("pending reclamation stuck at %llu objects / %llu bytes",
             (unsigned long long)s3.pending_reclaim_objects,
             (unsigned long long)s3.pending_reclaim_bytes);
    ASSERT_EQ(s3.entry_bytes, 0);
    check_stats_sane(t.m, 0);

    /* a smaller (older) struct gets its prefix; the rest is untouched */
    ASSERT_OK(tk_put(&t, 1, 1));
    ASSERT_OK(tk_put(&t, 2, 2));
    const size_t sizes[] = {offsetof(sm_stats, entries) + sizeof(uint64_t),
                            offsetof(sm_stats, load_factor),
                            offsetof(sm_stats, grows_total), sizeof(sm_stats)};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t sz = sizes[i];
        unsigned char buf[sizeof(sm_stats) + 32];
        memset(buf, 0xcd, sizeof buf);
        tu_context("sm_get_stats with size %zu", sz);
        ASSERT_OK(sm_get_stats(t.m, (sm_stats *)(void *)buf, sz));
        sm_stats got;
        memcpy(&got, buf, sizeof got);
        ASSERT_EQ(got.struct_size, sz);
        ASSERT_EQ(got.entries, 2);
        if (sz > offsetof(sm_stats, capacity))
            ASSERT_GE(got.capacity, 2);
        for (size_t j = sz; j < sizeof buf; j++)
            if (buf[j] != 0xcd)
                FAIL("sm_get_stats(size %zu) wrote byte %zu", sz, j);
    }
    unsigned char buf[sizeof(sm_stats)];
    ASSERT_STATUS(sm_get_stats(t.m, (sm_stats *)(void *)buf,
                               offsetof(sm_stats, entries) + sizeof(uint64_t) - 1),
                  SM_EINVAL);
    ASSERT_STATUS(sm_get_stats(t.m, (sm_stats *)(void *)buf, 0), SM_EINVAL);
    ASSERT_OK(sm_destroy(t.m));
    ASSERT_EQ(tu_alloc_outstanding(&al), 0);
    ASSERT_EQ(atomic_load(&al.bad_frees), 0);
}

/* ---------------------------------------------------------------------
 * Removal hooks: value and reason for every way a value leaves
 * ------------------------------------------------------------------- */
static void test_hooks(sm_key_kind kind) {
    static hook_log lg;
    log_init(&lg);
    sm_options o;
    sm_options_init(&o);
    o.on_remove = log_hook;
    o.on_remove_ctx = &lg;
    tk_map t = tk_create(kind, &o);
    uint64_t v;
    hook_rec want[64];
    size_t nw = 0;
#define WANT(val, why)                                                       \
    do {                                                                     \
        want[nw++] = (hook_rec){(val), (why)};                               \
        EXPECT_HOOK(&lg, (val), (why));                                      \
    } while (0)

    ASSERT_OK(tk_put(&t, 1, 100));
    ASSERT_OK(tk_del(&t, 1));
    WANT(100, SM_REMOVED_DELETE);

    ASSERT_OK(tk_put(&t, 2, 200));
    ASSERT_OK(tk_put(&t, 2, 201));
    WANT(200, SM_REMOVED_REPLACE);
    ASSERT_OK(tk_put(&t, 2, 201));           /* same value: no hook */
    ASSERT_OK(tk_swap(&t, 2, 202, &v));
    ASSERT_EQ(v, 201);
    WANT(201, SM_REMOVED_REPLACE);
    ASSERT_OK(tk_swap(&t, 2, 202, &v));      /* same value: no hook */
    ASSERT_OK(tk_cas(&t, 2, 202, 203));
    WANT(202, SM_REMOVED_REPLACE);
    ASSERT_OK(tk_cas(&t, 2, 203, 203));      /* same value: no hook */
    ASSERT_STATUS(tk_cas(&t, 2, 999, 204), SM_MISMATCH);
    ASSERT_STATUS(tk_los(&t, 2, 205, &v), SM_EXISTS);
    ASSERT_STATUS(tk_cad(&t, 2, 999), SM_MISMATCH);

    ASSERT_STATUS(tk_swap(&t, 3, 300, &v), SM_NOTFOUND);
    ASSERT_OK(tk_lad(&t, 3, &v));
    ASSERT_EQ(v, 300);
    WANT(300, SM_REMOVED_DELETE);

    ASSERT_OK(tk_los(&t, 4, 400, &v));
    ASSERT_OK(tk_cad(&t, 4, 400));
    WANT(400, SM_REMOVED_DELETE);

    ASSERT_OK(tk_put(&t, 5, 0));
    ASSERT_OK(tk_put(&t, 5, UINT64_MAX));
    WANT(0, SM_REMOVED_REPLACE);
    ASSERT_OK(tk_del(&t, 5));
    WANT(UINT64_MAX, SM_REMOVED_DELETE);

    ASSERT_OK(tk_put(&t, 6, 600));
    ASSERT_OK(tk_put(&t, 7, 700));
    ASSERT_OK(tk_put(&t, 0, 800));
    ASSERT_OK(sm_clear(t.m));
    WANT(600, SM_REMOVED_CLEAR);
    WANT(700, SM_REMOVED_CLEAR);
    WANT(800, SM_REMOVED_CLEAR);
    WANT(203, SM_REMOVED_CLEAR);

    sm_stats st;
    int ok;
    TU_WAIT_UNTIL(ok, (st = tu_stats(t.m), st.hooks_called_total == nw),
                  TU_HOOK_WAIT_S);
    if (!ok)
        FAIL("hooks_called_total %llu, hooks seen %zu",
             (unsigned long long)st.hooks_called_total, nw);

    ASSERT_OK(tk_put(&t, 8, 900));
    ASSERT_OK(tk_put(&t, 9, 1000));
    ASSERT_OK(sm_destroy(t.m));
    want[nw++] = (hook_rec){900, SM_REMOVED_DESTROY};
    want[nw++] = (hook_rec){1000, SM_REMOVED_DESTROY};
#undef WANT

    /* after destroy the log is complete: exactly the expected calls */
    ASSERT_EQ(atomic_load(&lg.count), nw);
    ASSERT_EQ(lg.n, nw);
    for (size_t i = 0; i < nw; i++) {
        int c = 0;
        for (size_t j = 0; j < nw; j++)
            if (want[j].value == want[i].value && want[j].reason == want[i].reason)
                c++;
        tu_context("hook (%llu, reason %d)", (unsigned long long)want[i].value,
                   want[i].reason);
        ASSERT_EQ(log_has(&lg, want[i].value, want[i].reason), c);
    }
    pthread_mutex_destroy(&lg.mu);
}

/* A hook calls back into its own map: reads, a put, and sm_destroy and
 * sm_trim, which must be refused. */
static void test_hooks_reentrant(sm_key_kind kind) {
    static hook_log lg;
    log_init(&lg);
    sm_options o;
    sm_options_init(&o);
    o.on_remove = log_hook;
    o.on_remove_ctx = &lg;
    tk_map t = tk_create(kind, &o);
    lg.t = t;
    const uint64_t n = 300;
    for (uint64_t i = 0; i < n; i++)
        ASSERT_OK(tk_put(&t, i, i));
    for (uint64_t i = 0; i < n; i++)
        ASSERT_OK(tk_del(&t, i));
    /* each delete's hook puts one key; wait for all of them */
    int ok;
    TU_WAIT_UNTIL(ok, atomic_load(&lg.count) == n, TU_HOOK_WAIT_S);
    if (!ok)
        FAIL("%zu of %llu hooks called", atomic_load(&lg.count),
             (unsigned long long)n);
    ASSERT_EQ(atomic_load(&lg.destroy_tried), 1);
    ASSERT_STATUS(atomic_load(&lg.destroy_rc), SM_EMISUSE);
    ASSERT_STATUS(atomic_load(&lg.trim_rc), SM_EMISUSE);
    ASSERT_EQ(atomic_load(&lg.reentrant_bad), 0);
    ASSERT_EQ(sm_len(t.m), n);
    for (uint64_t i = 0; i < n; i++) {
        expect_absent(&t, i);
        expect_val(&t, REENTRANT_BASE + i, i + REENTRANT_LIMIT);
    }
    ASSERT_OK(sm_destroy(t.m));
    ASSERT_EQ(atomic_load(&lg.count), 2 * n);
    for (uint64_t i = 0; i < n; i++) {
        ASSERT_EQ(log_has(&lg, i, SM_REMOVED_DELETE), 1);
        ASSERT_EQ(log_has(&lg, i + REENTRANT_LIMIT, SM_REMOVED_DESTROY), 1);
    }
    pthread_mutex_destroy(&lg.mu);
}

/* ---------------------------------------------------------------------
 * Growth to 100k+ and shrink back
 * ------------------------------------------------------------------- */
static void test_grow_shrink(sm_key_kind kind) {
    /* 100k+ keys; byte keys may go lower under a sanitizer's scale */
    const uint64_t n = (uint64_t)tu_scaled(200000, kind == SM_KEY_U64 ? 100000 : 50000);
    tk_map t = tk_create(kind, NULL);
    sm_stats s0 = tu_stats(t.m);
    for (uint64_t i = 0; i < n; i++) {
        ASSERT_OK(tk_put(&t, i, val_of(i)));
        ASSERT_EQ(sm_len(t.m), i + 1);
    }
    for (uint64_t i = 0; i < n; i++) {
        tu_context("grow: key index %llu", (unsigned long long)i);
        expect_val(&t, i, val_of(i));
    }
    for (uint64_t i = n; i < n + 1000; i++)
        expect_absent(&t, i);
    check_stats_sane(t.m, n);
    sm_stats s1 = tu_stats(t.m);
    ASSERT_GT(s1.grows_total, s0.grows_total);
    ASSERT_GE(s1.capacity, n);
    const uint64_t peak = s1.capacity;

    /* delete 99% */
    uint64_t left = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (i % 100 == 0) {
            left++;
            continue;
        }
        ASSERT_OK(tk_del(&t, i));
    }
    ASSERT_EQ(sm_len(t.m), left);

    /* keep operating on what is left until the table has shrunk; the
     * kept keys hold val_of(i) + round */
    sm_stats s2 = tu_stats(t.m);
    uint64_t ops = 0, round = 0;
    while (round < 400 && s2.capacity > peak / 8) {
        for (uint64_t i = 0; i < n; i += 100) {
            expect_val(&t, i, val_of(i) + round);
            ASSERT_OK(tk_put(&t, i, val_of(i) + round + 1));
            ops += 2;
        }
        round++;
        s2 = tu_stats(t.m);
        if (round > 200)
            tu_sleep_us(1000);   /* leave the background thread room */
    }
    if (s2.capacity > peak / 8)
        FAIL("no shrink: capacity %llu at peak, %llu after deleting 99%% "
             "(%llu entries left) and %llu more operations",
             (unsigned long long)peak, (unsigned long long)s2.capacity,
             (unsigned long long)left, (unsigned long long)ops);
    printf("    %llu keys; capacity %llu at the peak, %llu after deleting 99%% "
           "and %llu rounds of operations\n", (unsigned long long)n,
           (unsigned long long)peak, (unsigned long long)s2.capacity,
           (unsigned long long)round);
    ASSERT_GT(s2.shrinks_total, s1.shrinks_total);
    ASSERT_EQ(sm_len(t.m), left);
    check_stats_sane(t.m, left);
    sm_stats s3 = tu_stats(t.m);
    ASSERT_LT(s3.table_bytes, s1.table_bytes);
    for (uint64_t i = 0; i < n; i++) {
        tu_context("after shrink: key index %llu", (unsigned long long)i);
        if (i % 100 == 0)
            expect_val(&t, i, val_of(i) + round);
        else
            expect_absent(&t, i);
    }
    /* and it grows again */
    for (uint64_t i = 0; i < n; i++)
        ASSERT_OK(tk_put(&t, i, i));
    ASSERT_EQ(sm_len(t.m), n);
    for (uint64_t i = 0; i < n; i++)
        expect_val(&t, i, i);
    ASSERT_OK(sm_destroy(t.m));
}

/* ---------------------------------------------------------------------
 * reserve and initial_capacity: the inserts that follow allocate no table
 * ------------------------------------------------------------------- */
static void test_reserve(sm_key_kind kind) {
    const uint64_t n = 50000;
    tu_alloc al;
    tu_alloc_init(&al);
    sm_options o;
    sm_options_init(&o);
    o.allocator = &al.base;
    tk_map t = tk_create(kind, &o);

    ASSERT_OK(sm_reserve(t.m, 0));
    ASSERT_STATUS(sm_reserve(t.m, SIZE_MAX), SM_EINVAL);
    ASSERT_STATUS2(sm_reserve(t.m, SIZE_MAX / 2), SM_EINVAL, SM_ENOMEM);
    ASSERT_STATUS2(sm_reserve(t.m, (size_t)1 << 50), SM_EINVAL, SM_ENOMEM);
    ASSERT_EQ(sm_len(t.m), 0);
    ASSERT_OK(tk_put(&t, 1, 1));
    ASSERT_OK(sm_reserve(t.m, n));
    ASSERT_EQ(sm_len(t.m), 1);
    expect_val(&t, 1, 1);
    /* A table for n entries has at least 8n bytes; any later table big
     * enough to matter would too. */
    atomic_store(&al.max_size, 0);
    for (uint64_t i = 0; i < n; i++)
        ASSERT_OK(tk_put(&t, i, val_of(i)));
    if ((uint64_t)atomic_load(&al.max_size) >= 8 * n)
        FAIL("an allocation of %lld bytes during %llu inserts after "
             "sm_reserve(%llu)", atomic_load(&al.max_size),
             (unsigned long long)n, (unsigned long long)n);
    ASSERT_EQ(sm_len(t.m), n);
    check_stats_sane(t.m, n);
    sm_stats st = tu_stats(t.m);
    ASSERT_GE(st.capacity, n);

    /* reserving less than there is changes nothing */
    ASSERT_OK(sm_reserve(t.m, 10));
    sm_stats st2 = settled_stats(t.m);
    ASSERT_GE(st2.capacity, n);
    ASSERT_EQ(sm_len(t.m), n);
    for (uint64_t i = 0; i < n; i++)
        expect_val(&t, i, val_of(i));
    ASSERT_OK(sm_destroy(t.m));
    ASSERT_EQ(tu_alloc_outstanding(&al), 0);

    /* initial_capacity does the same at creation */
    o.initial_capacity = n;
    t = tk_create(kind, &o);
    atomic_store(&al.max_size, 0);
    for (uint64_t i = 0; i < n; i++)
        ASSERT_OK(tk_put(&t, i, val_of(i)));
    if ((uint64_t)atomic_load(&al.max_size) >= 8 * n)
        FAIL("an allocation of %lld bytes during %llu inserts into a map "
             "created with initial_capacity %llu", atomic_load(&al.max_size),
             (unsigned long long)n, (unsigned long long)n);
    ASSERT_EQ(sm_len(t.m), n);
    ASSERT_OK(sm_destroy(t.m));
    ASSERT_EQ(tu_alloc_outstanding(&al), 0);
    ASSERT_EQ(atomic_load(&al.bad_frees), 0);
}

/* ---------------------------------------------------------------------
 * sm_trim: finish resizes, shrink to fit, free what was retired (hooks
 * called before it returns)
 * ------------------------------------------------------------------- */
static void test_trim(sm_key_kind kind) {
    tu_alloc al;
    tu_alloc_init(&al);
    tu_hooks hk;
    tu_hooks_init(&hk);
    sm_options o;
    sm_options_init(&o);
    o.allocator = &al.base;
    o.on_remove = tu_hooks_fn;
    o.on_remove_ctx = &hk;
    tk_map t = tk_create(kind, &o);
    size_t rel = 12345;
    ASSERT_OK(sm_trim(t.m, &rel));          /* empty map */
    ASSERT_OK(sm_trim(t.m, NULL));

    const uint64_t n = (uint64_t)tu_scaled(100000, 20000);
    for (uint64_t i = 0; i < n; i++)
        ASSERT_OK(tk_put(&t, i, val_of(i)));
    sm_stats s1 = settled_stats(t.m);
    uint64_t deleted = 0;
    for (uint64_t i = 0; i < n; i++)
        if (i % 50) {
            ASSERT_OK(tk_del(&t, i));
            deleted++;
        }
    const uint64_t left = n - deleted;
    long long a0 = atomic_load(&al.outstanding_bytes);
    rel = 0;
    ASSERT_OK(sm_trim(t.m, &rel));
    /* on return: no resize running, nothing pending, every hook called */
    sm_stats st = tu_stats(t.m);
    ASSERT_EQ(st.transition_in_progress, 0);
    ASSERT_EQ(st.pending_reclaim_objects, 0);
    ASSERT_EQ(st.pending_reclaim_bytes, 0);
    ASSERT_EQ(atomic_load(&hk.by_reason[SM_REMOVED_DELETE]), deleted);
    ASSERT_EQ(st.hooks_called_total, deleted);
    ASSERT_EQ(st.entries, left);
    /* shrunk to fit: load at most 7/10, and not much emptier than that */
    if ((double)st.entries > 0.7 * (double)st.capacity)
        FAIL("after sm_trim: %llu entries in %llu slots",
             (unsigned long long)st.entries, (unsigned long long)st.capacity);
    ASSERT_LE(st.capacity, 4 * st.entries + 64);
    ASSERT_LT(st.capacity, s1.capacity);
    ASSERT_GT(rel, 0);
    ASSERT_LE(rel, (unsigned long long)a0);
    ASSERT_LT(atomic_load(&al.outstanding_bytes), a0);
    for (uint64_t i = 0; i < n; i++) {
        if (i % 50 == 0)
            expect_val(&t, i, val_of(i));
        else
            expect_absent(&t, i);
    }

    /* never below the reserve floor */
    ASSERT_OK(sm_reserve(t.m, 10000));
    ASSERT_OK(sm_trim(t.m, NULL));
    st = tu_stats(t.m);
    ASSERT_GE(st.capacity, 10000);
    ASSERT_EQ(st.entries, left);

    /* a running resize is completed */
    for (uint64_t i = n; i < n + 30000; i++)
        ASSERT_OK(tk_put(&t, i, i));
    ASSERT_OK(sm_trim(t.m, NULL));
    st = tu_stats(t.m);
    ASSERT_EQ(st.transition_in_progress, 0);
    ASSERT_EQ(st.entries, left + 30000);
    ASSERT_GE(st.capacity, left + 30000);

    /* refused while pinned; nothing changes */
    ASSERT_OK(sm_pin(t.m));
    ASSERT_STATUS(sm_trim(t.m, &rel), SM_EMISUSE);
    ASSERT_OK(sm_unpin(t.m));
    ASSERT_EQ(sm_len(t.m), left + 30000);

    /* after a clear, trim returns once the cleared values' hooks ran */
    ASSERT_OK(sm_clear(t.m));
    ASSERT_OK(sm_trim(t.m, NULL));
    ASSERT_EQ(atomic_load(&hk.by_reason[SM_REMOVED_CLEAR]), left + 30000);
    st = tu_stats(t.m);
    ASSERT_EQ(st.pending_reclaim_objects, 0);
    ASSERT_EQ(st.entry_bytes, 0);
    ASSERT_OK(sm_destroy(t.m));
    ASSERT_EQ(atomic_load(&hk.by_reason[SM_REMOVED_DESTROY]), 0);
    ASSERT_EQ(atomic_load(&hk.by_reason[SM_REMOVED_REPLACE]), 0);
    ASSERT_EQ(tu_alloc_outstanding(&al), 0);
    ASSERT_EQ(atomic_load(&al.bad_frees), 0);
}

/* ---------------------------------------------------------------------
 * Short-lived threads, and everything freed on destroy
 * ------------------------------------------------------------------- */
typedef struct short_arg {
    tk_map *t;
    uint64_t base;
} short_arg;

static void *short_thread(void *p) {
    short_arg *a = (short_arg *)p;
    uint64_t v;
    ASSERT_OK(sm_pin(a->t->m));
    for (uint64_t i = 0; i < 50; i++) {
        ASSERT_OK(tk_put(a->t, a->base + i, i));
        ASSERT_OK(tk_get(a->t, a->base + i, &v));
        ASSERT_EQ(v, i);
    }
    ASSERT_OK(sm_unpin(a->t->m));
    for (uint64_t i = 0; i < 50; i += 2)
        ASSERT_OK(tk_del(a->t, a->base + i));
    return NULL;
}

static void test_thread_exit(sm_key_kind kind) {
    tu_alloc al;
    tu_alloc_init(&al);
    tu_hooks hk;
    tu_hooks_init(&hk);
    sm_options o;
    sm_options_init(&o);
    o.allocator = &al.base;
    o.on_remove = tu_hooks_fn;
    o.on_remove_ctx = &hk;
    tk_map t = tk_create(kind, &o);
    enum { ROUNDS = 16, PER = 4 };
    short_arg args[ROUNDS * PER];
    for (int r = 0; r < ROUNDS; r++) {
        pthread_t th[PER];
        for (int j = 0; j < PER; j++) {
            args[r * PER + j] = (short_arg){&t, (uint64_t)(r * PER + j) * 100};
            tu_thread_start(&th[j], short_thread, &args[r * PER + j]);
        }
        for (int j = 0; j < PER; j++)
            tu_thread_join(th[j]);
    }
    ASSERT_EQ(sm_len(t.m), ROUNDS * PER * 25);
    for (uint64_t k = 0; k < ROUNDS * PER; k++)
        for (uint64_t i = 0; i < 50; i++) {
            if (i % 2)
                expect_val(&t, k * 100 + i, i);
            else
                expect_absent(&t, k * 100 + i);
        }
    ASSERT_OK(sm_clear(t.m));
    for (uint64_t i = 0; i < 100; i++)
        ASSERT_OK(tk_put(&t, i, i));
    ASSERT_OK(sm_destroy(t.m));
    ASSERT_EQ(atomic_load(&hk.by_reason[SM_REMOVED_DELETE]), ROUNDS * PER * 25);
    ASSERT_EQ(atomic_load(&hk.by_reason[SM_REMOVED_CLEAR]), ROUNDS * PER * 25);
    ASSERT_EQ(atomic_load(&hk.by_reason[SM_REMOVED_DESTROY]), 100);
    ASSERT_EQ(atomic_load(&hk.by_reason[SM_REMOVED_REPLACE]), 0);
    ASSERT_EQ(tu_alloc_outstanding(&al), 0);
    ASSERT_EQ(atomic_load(&al.outstanding_bytes), 0);
    ASSERT_EQ(atomic_load(&al.bad_frees), 0);
}

int main(void) {
    printf("test_api (scale %.3g)\n", tu_scale());
    RUN(test_version());
    RUN(test_status_strings());
    RUN(test_options_init());
    RUN(test_create_defaults());
    RUN(test_wrong_kind());
    RUN(test_empty_key());
    RUN(test_similar_keys());
    RUN(test_key_max());
    RUN(test_u64_edges());
    RUN(test_pin());
    for (int k = 0; k < 2; k++) {
        sm_key_kind kind = k ? SM_KEY_BYTES : SM_KEY_U64;
        printf(" key kind %s\n", tu_kind_name(kind));
        RUN(test_outcomes(kind));
        RUN(test_for_each(kind));
        RUN(test_clear(kind));
        RUN(test_stats(kind));
        RUN(test_hooks(kind));
        RUN(test_hooks_reentrant(kind));
        RUN(test_reserve(kind));
        RUN(test_trim(kind));
        RUN(test_thread_exit(kind));
        RUN(test_grow_shrink(kind));
    }
    printf("test_api: all passed\n");
    return 0;
}
