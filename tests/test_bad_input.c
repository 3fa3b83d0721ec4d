/*
 * test_bad_input.c — every public function given bad input: a NULL map,
 * a NULL key with a length, over-long keys, bad options, pin misuse,
 * destroy while pinned, unknown status codes.  Each call must return the
 * documented status, and the map must be exactly as it was.
 */
#include "testutil.h"
#include "testkeys.h"

#include <limits.h>

#define NKEYS 50u

/* Every test map holds key indices 0..NKEYS-1 with value 1000 + i. */
static void fill(const tk_map *t) {
    for (uint64_t i = 0; i < NKEYS; i++)
        ASSERT_OK(tk_put(t, i, 1000 + i));
}

static void check_unchanged(const tk_map *t) {
    ASSERT_EQ(sm_len(t->m), NKEYS);
    for (uint64_t i = 0; i < NKEYS; i++) {
        uint64_t v = 0;
        ASSERT_OK(tk_get(t, i, &v));
        ASSERT_EQ(v, 1000 + i);
    }
    uint64_t v;
    ASSERT_STATUS(tk_get(t, NKEYS, &v), SM_NOTFOUND);
}

static int count_visit(void *ctx, const sm_entry *e) {
    (void)e;
    (*(size_t *)ctx)++;
    return 0;
}

static void test_null_map(void) {
    uint64_t v = 0;
    sm_stats st;
    ASSERT_STATUS(sm_get(NULL, "k", 1, &v), SM_EINVAL);
    ASSERT_STATUS(sm_get_u64(NULL, 1, &v), SM_EINVAL);
    ASSERT_STATUS(sm_put(NULL, "k", 1, 1), SM_EINVAL);
    ASSERT_STATUS(sm_put_u64(NULL, 1, 1), SM_EINVAL);
    ASSERT_STATUS(sm_load_or_store(NULL, "k", 1, 1, &v), SM_EINVAL);
    ASSERT_STATUS(sm_load_or_store_u64(NULL, 1, 1, &v), SM_EINVAL);
    ASSERT_STATUS(sm_swap(NULL, "k", 1, 1, &v), SM_EINVAL);
    ASSERT_STATUS(sm_swap_u64(NULL, 1, 1, &v), SM_EINVAL);
    ASSERT_STATUS(sm_cas(NULL, "k", 1, 1, 2), SM_EINVAL);
    ASSERT_STATUS(sm_cas_u64(NULL, 1, 1, 2), SM_EINVAL);
    ASSERT_STATUS(sm_delete(NULL, "k", 1), SM_EINVAL);
    ASSERT_STATUS(sm_delete_u64(NULL, 1), SM_EINVAL);
    ASSERT_STATUS(sm_load_and_delete(NULL, "k", 1, &v), SM_EINVAL);
    ASSERT_STATUS(sm_load_and_delete_u64(NULL, 1, &v), SM_EINVAL);
    ASSERT_STATUS(sm_cad(NULL, "k", 1, 1), SM_EINVAL);
    ASSERT_STATUS(sm_cad_u64(NULL, 1, 1), SM_EINVAL);
    ASSERT_STATUS(sm_clear(NULL), SM_EINVAL);
    ASSERT_STATUS(sm_reserve(NULL, 10), SM_EINVAL);
    size_t calls = 0;
    ASSERT_STATUS(sm_for_each(NULL, count_visit, &calls), SM_EINVAL);
    ASSERT_EQ(calls, 0);
    ASSERT_STATUS(sm_pin(NULL), SM_EINVAL);
    /* sm_unpin(NULL): the operations' rule says SM_EINVAL; a thread with
     * no pin is also SM_EMISUSE.  Either is a refusal. */
    ASSERT_STATUS2(sm_unpin(NULL), SM_EINVAL, SM_EMISUSE);
    ASSERT_STATUS(sm_get_stats(NULL, &st, sizeof st), SM_EINVAL);
    size_t rel = 99;
    ASSERT_STATUS(sm_trim(NULL, &rel), SM_EINVAL);
    ASSERT_STATUS(sm_trim(NULL, NULL), SM_EINVAL);
    ASSERT_EQ(sm_len(NULL), 0);
    ASSERT_OK(sm_destroy(NULL));
    /* NULL output pointer of sm_create */
    sm_options o;
    sm_options_init(&o);
    ASSERT_STATUS(sm_create(&o, NULL), SM_EINVAL);
    ASSERT_STATUS(sm_create(NULL, NULL), SM_EINVAL);
}

static void test_null_key(void) {
    tk_map t = tk_create(SM_KEY_BYTES, NULL);
    fill(&t);
    uint64_t v = 0;
    const size_t lens[] = {1, 8, SM_KEY_MAX};
    for (size_t j = 0; j < sizeof lens / sizeof lens[0]; j++) {
        size_t len = lens[j];
        tu_context("NULL key, len %zu", len);
        ASSERT_STATUS(sm_get(t.m, NULL, len, &v), SM_EINVAL);
        ASSERT_STATUS(sm_put(t.m, NULL, len, 1), SM_EINVAL);
        ASSERT_STATUS(sm_load_or_store(t.m, NULL, len, 1, &v), SM_EINVAL);
        ASSERT_STATUS(sm_swap(t.m, NULL, len, 1, &v), SM_EINVAL);
        ASSERT_STATUS(sm_cas(t.m, NULL, len, 1, 2), SM_EINVAL);
        ASSERT_STATUS(sm_delete(t.m, NULL, len), SM_EINVAL);
        ASSERT_STATUS(sm_load_and_delete(t.m, NULL, len, &v), SM_EINVAL);
        ASSERT_STATUS(sm_cad(t.m, NULL, len, 1), SM_EINVAL);
        check_unchanged(&t);
    }
    tu_context("%s", "");
    ASSERT_OK(sm_destroy(t.m));
}

static void test_long_key(void) {
    tk_map t = tk_create(SM_KEY_BYTES, NULL);
    fill(&t);
    const size_t big = (size_t)SM_KEY_MAX + 1;
    unsigned char *k = (unsigned char *)calloc(big, 1);
    ASSERT_TRUE(k != NULL);
    uint64_t v = 0;
    /* over-long lengths; for the huge ones only the length may be read */
    const size_t lens[] = {big, big + 1, (size_t)1 << 20, SIZE_MAX / 2, SIZE_MAX};
    for (size_t j = 0; j < sizeof lens / sizeof lens[0]; j++) {
        size_t len = lens[j];
        tu_context("key of %zu bytes", len);
        ASSERT_STATUS(sm_get(t.m, k, len, &v), SM_EKEYLEN);
        ASSERT_STATUS(sm_put(t.m, k, len, 1), SM_EKEYLEN);
        ASSERT_STATUS(sm_load_or_store(t.m, k, len, 1, &v), SM_EKEYLEN);
        ASSERT_STATUS(sm_swap(t.m, k, len, 1, &v), SM_EKEYLEN);
        ASSERT_STATUS(sm_cas(t.m, k, len, 1, 2), SM_EKEYLEN);
        ASSERT_STATUS(sm_delete(t.m, k, len), SM_EKEYLEN);
        ASSERT_STATUS(sm_load_and_delete(t.m, k, len, &v), SM_EKEYLEN);
        ASSERT_STATUS(sm_cad(t.m, k, len, 1), SM_EKEYLEN);
        check_unchanged(&t);
    }
    tu_context("%s", "");
    ASSERT_OK(sm_destroy(t.m));
    free(k);
}

/* Optional outputs may be NULL and the call still does its work. */
static void test_null_outputs(sm_key_kind kind) {
    tk_map t = tk_create(kind, NULL);
    fill(&t);
    ASSERT_OK(tk_get(&t, 3, NULL));
    ASSERT_STATUS(tk_get(&t, NKEYS, NULL), SM_NOTFOUND);
    ASSERT_STATUS(tk_los(&t, 3, 1, NULL), SM_EXISTS);
    ASSERT_OK(tk_los(&t, NKEYS, 7, NULL));
    ASSERT_OK(tk_swap(&t, NKEYS, 8, NULL));
    ASSERT_OK(tk_lad(&t, NKEYS, NULL));
    ASSERT_STATUS(tk_lad(&t, NKEYS, NULL), SM_NOTFOUND);
    ASSERT_STATUS(tk_swap(&t, NKEYS + 1, 9, NULL), SM_NOTFOUND);
    ASSERT_OK(tk_del(&t, NKEYS + 1));
    check_unchanged(&t);
    ASSERT_OK(sm_destroy(t.m));
}

/* Bad options: SM_EINVAL, *out NULL, nothing allocated. */
static void expect_bad_options(const sm_options *o, int want1, int want2) {
    sm_map *m = (sm_map *)(uintptr_t)0x1234;
    int st = sm_create(o, &m);
    if (st != want1 && st != want2)
        FAIL("sm_create returned %s, expected %s or %s", sm_errname(st),
             sm_errname(want1), sm_errname(want2));
    ASSERT_TRUE(m == NULL);
}

static void *never_malloc(void *ctx, size_t size) {
    (void)ctx;
    (void)size;
    FAIL("the allocator of rejected options was used");
}

static void never_free(void *ctx, void *p, size_t size) {
    (void)ctx;
    (void)p;
    (void)size;
    FAIL("the allocator of rejected options was used");
}

static void test_bad_options(void) {
    sm_options o;
    tu_alloc al;
    tu_alloc_init(&al);

    const size_t sizes[] = {0, 1, sizeof(sm_options) - 1, sizeof(sm_options) + 1,
                            2 * sizeof(sm_options), SIZE_MAX};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        tu_context("struct_size %zu", sizes[i]);
        sm_options_init(&o);
        o.allocator = &al.base;
        o.struct_size = sizes[i];
        expect_bad_options(&o, SM_EINVAL, SM_EINVAL);
    }
    const int kinds[] = {2, 3, -1, 100, INT_MAX};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        tu_context("key_kind %d", kinds[i]);
        sm_options_init(&o);
        o.allocator = &al.base;
        o.key_kind = (sm_key_kind)kinds[i];
        expect_bad_options(&o, SM_EINVAL, SM_EINVAL);
    }
    tu_context("allocator without malloc");
    sm_allocator bad = {NULL, never_free, NULL};
    sm_options_init(&o);
    o.allocator = &bad;
    expect_bad_options(&o, SM_EINVAL, SM_EINVAL);
    tu_context("allocator without free");
    bad = (sm_allocator){never_malloc, NULL, NULL};
    expect_bad_options(&o, SM_EINVAL, SM_EINVAL);
    tu_context("allocator with neither");
    bad = (sm_allocator){NULL, NULL, NULL};
    expect_bad_options(&o, SM_EINVAL, SM_EINVAL);

    /* a capacity no machine has: refused one way or the other */
    tu_context("initial_capacity SIZE_MAX");
    sm_options_init(&o);
    o.allocator = &al.base;
    o.initial_capacity = SIZE_MAX;
    expect_bad_options(&o, SM_EINVAL, SM_ENOMEM);
    o.initial_capacity = SIZE_MAX / 3;
    expect_bad_options(&o, SM_EINVAL, SM_ENOMEM);
    tu_context("%s", "");
    ASSERT_EQ(tu_alloc_outstanding(&al), 0);
    ASSERT_EQ(atomic_load(&al.bad_frees), 0);

    /* the options struct is copied: changing it later changes nothing */
    sm_options_init(&o);
    o.key_kind = SM_KEY_BYTES;
    o.allocator = &al.base;
    sm_map *m = NULL;
    ASSERT_OK(sm_create(&o, &m));
    o.key_kind = SM_KEY_U64;
    o.allocator = NULL;
    memset(&o, 0xee, sizeof o);
    ASSERT_OK(sm_put(m, "k", 1, 5));
    ASSERT_STATUS(sm_put_u64(m, 1, 5), SM_EKIND);
    ASSERT_OK(sm_destroy(m));
    ASSERT_EQ(tu_alloc_outstanding(&al), 0);
}

/* The allocator struct itself is copied in, too. */
static void test_allocator_copied(void) {
    tu_alloc al;
    tu_alloc_init(&al);
    sm_allocator *copy = (sm_allocator *)malloc(sizeof *copy);
    ASSERT_TRUE(copy != NULL);
    *copy = al.base;
    sm_options o;
    sm_options_init(&o);
    o.allocator = copy;
    sm_map *m = NULL;
    ASSERT_OK(sm_create(&o, &m));
    memset(copy, 0, sizeof *copy);
    free(copy);
    for (uint64_t i = 0; i < 5000; i++)
        ASSERT_OK(sm_put_u64(m, i, i));
    ASSERT_OK(sm_destroy(m));
    ASSERT_EQ(tu_alloc_outstanding(&al), 0);
}

static void test_unpin_misuse(void) {
    tk_map t = tk_create(SM_KEY_U64, NULL);
    fill(&t);
    ASSERT_STATUS(sm_unpin(t.m), SM_EMISUSE);
    ASSERT_OK(sm_pin(t.m));
    ASSERT_OK(sm_unpin(t.m));
    ASSERT_STATUS(sm_unpin(t.m), SM_EMISUSE);
    ASSERT_OK(sm_pin(t.m));
    ASSERT_OK(sm_pin(t.m));
    ASSERT_OK(sm_unpin(t.m));
    ASSERT_OK(sm_unpin(t.m));
    ASSERT_STATUS(sm_unpin(t.m), SM_EMISUSE);
    check_unchanged(&t);
    ASSERT_OK(sm_destroy(t.m));
}

static void *fresh_thread_unpin(void *p) {
    sm_map *m = (sm_map *)p;
    /* a thread that never called stillmap holds no pin */
    ASSERT_STATUS(sm_unpin(m), SM_EMISUSE);
    return NULL;
}

static void test_unpin_fresh_thread(void) {
    tk_map t = tk_create(SM_KEY_U64, NULL);
    fill(&t);
    ASSERT_OK(sm_pin(t.m));          /* this thread's pin is not theirs */
    pthread_t th;
    tu_thread_start(&th, fresh_thread_unpin, t.m);
    tu_thread_join(th);
    ASSERT_OK(sm_unpin(t.m));
    check_unchanged(&t);
    ASSERT_OK(sm_destroy(t.m));
}

typedef struct destroy_in_walk {
    sm_map *m;
    int rc;
    size_t calls;
} destroy_in_walk;

static int destroy_visitor(void *ctx, const sm_entry *e) {
    (void)e;
    destroy_in_walk *d = (destroy_in_walk *)ctx;
    if (d->calls++ == 0)
        d->rc = sm_destroy(d->m);
    return 0;
}

static void test_destroy_pinned(sm_key_kind kind) {
    tk_map t = tk_create(kind, NULL);
    tk_map other = tk_create(kind, NULL);
    fill(&t);
    fill(&other);

    /* pinned through this map */
    ASSERT_OK(sm_pin(t.m));
    ASSERT_STATUS(sm_destroy(t.m), SM_EMISUSE);
    check_unchanged(&t);
    ASSERT_OK(tk_put(&t, NKEYS + 5, 1));       /* still usable */
    ASSERT_OK(tk_del(&t, NKEYS + 5));
    ASSERT_OK(sm_pin(t.m));
    ASSERT_OK(sm_unpin(t.m));
    ASSERT_STATUS(sm_destroy(t.m), SM_EMISUSE); /* still one pin */
    ASSERT_OK(sm_unpin(t.m));

    /* a pin taken through another map is a pin all the same */
    ASSERT_OK(sm_pin(other.m));
    ASSERT_STATUS(sm_destroy(t.m), SM_EMISUSE);
    ASSERT_STATUS(sm_trim(t.m, NULL), SM_EMISUSE);
    ASSERT_OK(sm_unpin(other.m));
    check_unchanged(&t);

    /* sm_trim refuses a pinned thread too */
    ASSERT_OK(sm_pin(t.m));
    size_t rel = 0;
    ASSERT_STATUS(sm_trim(t.m, &rel), SM_EMISUSE);
    ASSERT_OK(sm_unpin(t.m));
    check_unchanged(&t);

    /* for_each's callback runs pinned */
    destroy_in_walk d = {t.m, 0, 0};
    ASSERT_OK(sm_for_each(t.m, destroy_visitor, &d));
    ASSERT_STATUS(d.rc, SM_EMISUSE);
    ASSERT_EQ(d.calls, NKEYS);
    check_unchanged(&t);

    ASSERT_OK(sm_destroy(t.m));
    check_unchanged(&other);
    ASSERT_OK(sm_destroy(other.m));
}

static void test_misc(void) {
    tk_map t = tk_create(SM_KEY_U64, NULL);
    fill(&t);
    ASSERT_STATUS(sm_for_each(t.m, NULL, NULL), SM_EINVAL);
    ASSERT_STATUS(sm_reserve(t.m, SIZE_MAX), SM_EINVAL);
    sm_stats st;
    memset(&st, 0x5a, sizeof st);
    ASSERT_STATUS(sm_get_stats(t.m, NULL, sizeof st), SM_EINVAL);
    ASSERT_STATUS(sm_get_stats(t.m, &st, 0), SM_EINVAL);
    ASSERT_STATUS(sm_get_stats(t.m, &st, 1), SM_EINVAL);
    ASSERT_STATUS(sm_get_stats(t.m, &st, offsetof(sm_stats, entries)), SM_EINVAL);
    check_unchanged(&t);
    ASSERT_OK(sm_destroy(t.m));

    const int unknown[] = {INT_MIN, INT_MIN + 1, -1000, -7, 4, 5, 1000, INT_MAX};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        tu_context("status %d", unknown[i]);
        ASSERT_STREQ(sm_strerror(unknown[i]), "unknown status");
        ASSERT_STREQ(sm_errname(unknown[i]), "SM_UNKNOWN");
    }
}

#if defined(SM_DEBUG) && SM_DEBUG
/* Debug builds catch a map used after sm_destroy. */
static void test_debug_use_after_destroy(void) {
    sm_map *m = NULL;
    uint64_t v = 0;
    ASSERT_OK(sm_create(NULL, &m));
    ASSERT_OK(sm_put_u64(m, 1, 2));
    ASSERT_OK(sm_destroy(m));
    ASSERT_STATUS(sm_get_u64(m, 1, &v), SM_EMISUSE);
    ASSERT_STATUS(sm_put_u64(m, 1, 3), SM_EMISUSE);
    ASSERT_STATUS(sm_delete_u64(m, 1), SM_EMISUSE);
    ASSERT_STATUS(sm_clear(m), SM_EMISUSE);
    ASSERT_STATUS(sm_reserve(m, 10), SM_EMISUSE);
    ASSERT_STATUS(sm_trim(m, NULL), SM_EMISUSE);
    ASSERT_STATUS(sm_pin(m), SM_EMISUSE);
    ASSERT_STATUS(sm_destroy(m), SM_EMISUSE);
}
#endif

#define RUN(call)                                                            \
    do {                                                                     \
        printf("  %s\n", #call);                                             \
        fflush(stdout);                                                      \
        call;                                                                \
    } while (0)

int main(void) {
    printf("test_bad_input\n");
    RUN(test_null_map());
    RUN(test_null_key());
    RUN(test_long_key());
    RUN(test_null_outputs(SM_KEY_U64));
    RUN(test_null_outputs(SM_KEY_BYTES));
    RUN(test_bad_options());
    RUN(test_allocator_copied());
    RUN(test_unpin_misuse());
    RUN(test_unpin_fresh_thread());
    RUN(test_destroy_pinned(SM_KEY_U64));
    RUN(test_destroy_pinned(SM_KEY_BYTES));
    RUN(test_misc());
#if defined(SM_DEBUG) && SM_DEBUG
    RUN(test_debug_use_after_destroy());
#endif
    printf("test_bad_input: all passed\n");
    return 0;
}
