/*
 * test_alloc_fail.c — allocation-failure sweep.
 *
 * A scripted workload (create; inserts that force growth; overwrites and
 * deletes with a removal hook, so hook records are allocated; clear;
 * reserve; shrink; trim; pins; destroy) runs once per k = 1, 2, 3, ... with the
 * k-th allocation of the run failing.  For every call:
 *
 *   - SM_ENOMEM is only returned when a failure was injected, the map
 *     then equals the model (the failed call had no effect), and the same
 *     call repeated succeeds with the outcome the model predicts;
 *   - a call during which a failure was injected but that succeeded
 *     anyway (the header allows this for the periodic resize check)
 *     must have had exactly its normal effect;
 *   - sm_create that fails returns SM_ENOMEM, sets *out to NULL and
 *     leaks nothing.
 *
 * After each sm_destroy no allocation is outstanding, every free got the
 * size of its malloc, and the removal hook saw exactly the values the
 * model says left the map.  The sweep ends with the first run in which
 * no failure was injected.  Both key kinds are swept.
 *
 *   test_alloc_fail [--n KEYS]      (default 160, scaled, at least 60)
 */
#include "testutil.h"
#include "testkeys.h"
#include "testmodel.h"

enum op {
    OP_PUT, OP_LOS, OP_SWAP, OP_CAS, OP_DEL, OP_LAD, OP_CAD, OP_CLEAR,
    OP_RESERVE, OP_TRIM, OP_FOREACH, OP_PIN, OP_UNPIN, OP_COUNT
};

static const char *op_name[OP_COUNT] = {
    "put", "load_or_store", "swap", "cas", "delete", "load_and_delete",
    "cad", "clear", "reserve", "trim", "for_each", "pin", "unpin"};


typedef struct run_state {
    sm_key_kind kind;
    tu_alloc al;
    tu_hooks hk;
    model md;
    tk_map t;
    unsigned char *seen;
} run_state;

typedef struct sweep_totals {
    long long enomem[OP_COUNT];
    long long absorbed[OP_COUNT];
    long long create_fail;
    long long foreign_calls;
    long long foreign_injected;
    long long runs;
} sweep_totals;

static sweep_totals tot;

/* ---------------------------------------------------------------------
 * Model and comparison
 * ------------------------------------------------------------------- */

typedef struct cmp_ctx {
    run_state *rs;
    uint64_t calls;
} cmp_ctx;

static int cmp_visit(void *ctx, const sm_entry *e) {
    cmp_ctx *c = (cmp_ctx *)ctx;
    model *md = &c->rs->md;
    uint64_t i = tk_index_of_entry(&c->rs->t, e);
    c->calls++;
    if (i >= md->nkeys || !md->present[i])
        FAIL("for_each visited key index %llu, absent in the model",
             (unsigned long long)i);
    if (c->rs->seen[i]++)
        FAIL("for_each visited key index %llu twice", (unsigned long long)i);
    ASSERT_EQ(e->value, md->val[i]);
    return 0;
}

static void compare(run_state *rs) {
    model *md = &rs->md;
    ASSERT_EQ(sm_len(rs->t.m), md->len);
    for (uint64_t i = 0; i < md->nkeys; i++) {
        uint64_t v = 0;
        int s = tk_get(&rs->t, i, &v);
        if (md->present[i]) {
            if (s != SM_OK || v != md->val[i])
                FAIL("key index %llu: %s, value %llu, model %llu",
                     (unsigned long long)i, sm_errname(s),
                     (unsigned long long)v, (unsigned long long)md->val[i]);
        } else if (s != SM_NOTFOUND) {
            FAIL("key index %llu: %s, absent in the model",
                 (unsigned long long)i, sm_errname(s));
        }
    }
    memset(rs->seen, 0, md->nkeys);
    cmp_ctx c = {rs, 0};
    ASSERT_OK(sm_for_each(rs->t.m, cmp_visit, &c));
    ASSERT_EQ(c.calls, md->len);
}

/* ---------------------------------------------------------------------
 * One scripted call: predict, run, check; on SM_ENOMEM check that
 * nothing changed and run it again.
 * ------------------------------------------------------------------- */
static int exec(run_state *rs, enum op op, uint64_t i, uint64_t a, uint64_t b,
                uint64_t *out) {
    switch (op) {
    case OP_PUT: return tk_put(&rs->t, i, a);
    case OP_LOS: return tk_los(&rs->t, i, a, out);
    case OP_SWAP: return tk_swap(&rs->t, i, a, out);
    case OP_CAS: return tk_cas(&rs->t, i, a, b);
    case OP_DEL: return tk_del(&rs->t, i);
    case OP_LAD: return tk_lad(&rs->t, i, out);
    case OP_CAD: return tk_cad(&rs->t, i, a);
    case OP_CLEAR: return sm_clear(rs->t.m);
    case OP_RESERVE: return sm_reserve(rs->t.m, (size_t)a);
    case OP_TRIM: return sm_trim(rs->t.m, NULL);
    case OP_FOREACH: {
        memset(rs->seen, 0, rs->md.nkeys);
        cmp_ctx c = {rs, 0};
        int st = sm_for_each(rs->t.m, cmp_visit, &c);
        if (st == SM_OK)
            ASSERT_EQ(c.calls, rs->md.len);
        return st;
    }
    case OP_PIN: return sm_pin(rs->t.m);
    case OP_UNPIN: return sm_unpin(rs->t.m);
    default: FAIL("bad op %d", (int)op);
    }
}

static void apply(run_state *rs, enum op op, uint64_t i, uint64_t a, uint64_t b,
                  int st, uint64_t out) {
    model *md = &rs->md;
    const int here = i < md->nkeys && md->present[i];
    const uint64_t cur = here ? md->val[i] : 0;
    switch (op) {
    case OP_PUT:
        ASSERT_OK(st);
        model_set(md, i, a);
        break;
    case OP_LOS:
        if (here) {
            ASSERT_STATUS(st, SM_EXISTS);
            ASSERT_EQ(out, cur);
        } else {
            ASSERT_OK(st);
            ASSERT_EQ(out, a);
            model_set(md, i, a);
        }
        break;
    case OP_SWAP:
        if (here) {
            ASSERT_OK(st);
            ASSERT_EQ(out, cur);
        } else {
            ASSERT_STATUS(st, SM_NOTFOUND);
        }
        model_set(md, i, a);
        break;
    case OP_CAS:
        if (!here) {
            ASSERT_STATUS(st, SM_NOTFOUND);
        } else if (cur == a) {
            ASSERT_OK(st);
            model_set(md, i, b);
        } else {
            ASSERT_STATUS(st, SM_MISMATCH);
        }
        break;
    case OP_DEL:
    case OP_LAD:
        if (here) {
            ASSERT_OK(st);
            if (op == OP_LAD)
                ASSERT_EQ(out, cur);
            model_del(md, i);
        } else {
            ASSERT_STATUS(st, SM_NOTFOUND);
        }
        break;
    case OP_CAD:
        if (!here) {
            ASSERT_STATUS(st, SM_NOTFOUND);
        } else if (cur == a) {
            ASSERT_OK(st);
            model_del(md, i);
        } else {
            ASSERT_STATUS(st, SM_MISMATCH);
        }
        break;
    case OP_CLEAR:
        ASSERT_OK(st);
        model_clear(md, SM_REMOVED_CLEAR);
        break;
    case OP_RESERVE:
    case OP_TRIM:
    case OP_FOREACH:
    case OP_PIN:
    case OP_UNPIN:
        ASSERT_OK(st);
        break;
    default:
        FAIL("bad op %d", (int)op);
    }
}

static void call(run_state *rs, enum op op, uint64_t i, uint64_t a, uint64_t b) {
    uint64_t out = 0;
    tu_context("%s keys, %s(index %llu, %llu, %llu)", tu_kind_name(rs->kind),
               op_name[op], (unsigned long long)i, (unsigned long long)a,
               (unsigned long long)b);
    long long inj0 = atomic_load(&rs->al.injected);
    int st = exec(rs, op, i, a, b, &out);
    long long inj1 = atomic_load(&rs->al.injected);
    if (st == SM_ENOMEM) {
        if (inj1 == inj0)
            FAIL("SM_ENOMEM with no allocation failure injected");
        tot.enomem[op]++;
        /* the failed call had no effect ... */
        compare(rs);
        /* ... and succeeds when repeated (the allocator fails once) */
        out = 0;
        st = exec(rs, op, i, a, b, &out);
        if (st == SM_ENOMEM)
            FAIL("SM_ENOMEM again on retry, with no failure armed");
    } else if (inj1 != inj0) {
        tot.absorbed[op]++;
        apply(rs, op, i, a, b, st, out);
        compare(rs);
        return;
    }
    apply(rs, op, i, a, b, st, out);
}

/* ---------------------------------------------------------------------
 * The script.  Returns the number of failures injected in the run.
 * ------------------------------------------------------------------- */
static long long script(sm_key_kind kind, uint64_t n, long long fail_at) {
    static run_state rs;
    memset(&rs, 0, sizeof rs);
    rs.kind = kind;
    tu_alloc_init(&rs.al);
    tu_alloc_set_owner(&rs.al);
    tu_hooks_init(&rs.hk);
    rs.md.nkeys = 3 * n;
    rs.md.present = (unsigned char *)calloc(rs.md.nkeys, 1);
    rs.md.val = (uint64_t *)calloc(rs.md.nkeys, sizeof(uint64_t));
    rs.seen = (unsigned char *)calloc(rs.md.nkeys, 1);
    ASSERT_TRUE(rs.md.present && rs.md.val && rs.seen);

    sm_options o;
    sm_options_init(&o);
    o.key_kind = kind;
    o.allocator = &rs.al.base;
    o.on_remove = tu_hooks_fn;
    o.on_remove_ctx = &rs.hk;
    rs.t.kind = kind;
    if (fail_at > 0)
        tu_alloc_arm(&rs.al, fail_at, 0);

    tu_context("%s keys, sm_create", tu_kind_name(kind));
    sm_map *m = (sm_map *)&rs;    /* any non-NULL value */
    int st = sm_create(&o, &m);
    if (st == SM_ENOMEM) {
        ASSERT_TRUE(m == NULL);
        ASSERT_EQ(tu_alloc_outstanding(&rs.al), 0);
        tot.create_fail++;
        st = sm_create(&o, &m);
    }
    ASSERT_OK(st);
    ASSERT_TRUE(m != NULL);
    rs.t.m = m;

    /* inserts that grow the table several times */
    for (uint64_t i = 0; i < n; i++)
        call(&rs, OP_PUT, i, i, 0);
    /* overwrites with another value (hook records), and with the same */
    for (uint64_t i = 0; i < n; i += 3)
        call(&rs, OP_PUT, i, i + 1000000, 0);
    for (uint64_t i = 0; i < n; i += 5)
        call(&rs, OP_PUT, i, rs.md.val[i], 0);
    /* deletes (hook records) */
    for (uint64_t i = 1; i < n; i += 4)
        call(&rs, OP_DEL, i, 0, 0);
    /* the other operations, hits and misses */
    for (uint64_t i = 0; i < n; i += 7) {
        call(&rs, OP_LOS, i, 77, 0);
        call(&rs, OP_SWAP, i + 1, 88 + i, 0);
        call(&rs, OP_CAS, i + 2, rs.md.val[i + 2], 99);
        call(&rs, OP_CAS, i + 3, 12345, 6);
        call(&rs, OP_CAD, i + 4, 4242, 0);
        call(&rs, OP_CAD, i + 5, rs.md.val[i + 5], 0);
        call(&rs, OP_LAD, i + 6, 0, 0);
    }
    call(&rs, OP_FOREACH, 0, 0, 0);
    call(&rs, OP_CLEAR, 0, 0, 0);
    call(&rs, OP_CLEAR, 0, 0, 0);
    for (uint64_t i = 0; i < n / 2; i++)
        call(&rs, OP_PUT, i, i * 3, 0);
    for (uint64_t i = n; i < 3 * n; i++)
        call(&rs, OP_LOS, i, i, 0);
    /* delete most: the periodic check shrinks the table */
    for (uint64_t i = 0; i < 3 * n; i++)
        if (i % 16)
            call(&rs, OP_LAD, i, 0, 0);
    call(&rs, OP_TRIM, 0, 0, 0);
    for (uint64_t i = 0; i < 3 * n; i += 16)
        call(&rs, OP_SWAP, i, i + 7, 0);
    call(&rs, OP_CLEAR, 0, 0, 0);
    /* three quarters deleted: too full for the periodic shrink, so the
     * trim has a smaller table to allocate */
    for (uint64_t i = 0; i < 2 * n; i++)
        call(&rs, OP_PUT, i, i + 5, 0);
    for (uint64_t i = 0; i < 2 * n; i++)
        if (i % 4)
            call(&rs, OP_DEL, i, 0, 0);
    call(&rs, OP_TRIM, 0, 0, 0);
    call(&rs, OP_RESERVE, 0, 4 * n, 0);
    for (uint64_t i = 2 * n; i < 3 * n; i++)
        call(&rs, OP_LOS, i, i, 0);
    call(&rs, OP_PIN, 0, 0, 0);
    call(&rs, OP_DEL, 0, 0, 0);
    call(&rs, OP_PUT, 16, 1, 0);
    call(&rs, OP_UNPIN, 0, 0, 0);
    call(&rs, OP_FOREACH, 0, 0, 0);
    compare(&rs);

    tu_context("%s keys, sm_destroy", tu_kind_name(kind));
    model_clear(&rs.md, SM_REMOVED_DESTROY);
    ASSERT_OK(sm_destroy(rs.t.m));
    tu_alloc_disarm(&rs.al);
    ASSERT_EQ(tu_alloc_outstanding(&rs.al), 0);
    ASSERT_EQ(atomic_load(&rs.al.outstanding_bytes), 0);
    ASSERT_EQ(atomic_load(&rs.al.bad_frees), 0);
    ASSERT_HOOKS_MATCH(&rs.hk, &rs.md.hooks);
    /* a failure injected inside sm_destroy must not have lost anything
     * either; count it with the rest */
    long long injected = atomic_load(&rs.al.injected);
    tot.foreign_calls += atomic_load(&rs.al.foreign_calls);
    tot.foreign_injected += atomic_load(&rs.al.injected_foreign);
    tot.runs++;
    free(rs.md.present);
    free(rs.md.val);
    free(rs.seen);
    return injected;
}

static void sweep(sm_key_kind kind, uint64_t n) {
    memset(&tot, 0, sizeof tot);
    long long clean = script(kind, n, 0);
    ASSERT_EQ(clean, 0);
    long long k = 1;
    for (;; k++) {
        if (script(kind, n, k) == 0)
            break;
        if (k > 10000000)
            FAIL("the sweep does not end");
    }
    printf("  %s keys, %llu keys: %lld runs, last failing allocation #%lld\n",
           tu_kind_name(kind), (unsigned long long)n, tot.runs, k - 1);
    printf("    create failed %lld times\n", tot.create_fail);
    for (int op = 0; op < OP_COUNT; op++)
        if (tot.enomem[op] || tot.absorbed[op])
            printf("    %-16s SM_ENOMEM %lld, failure absorbed %lld\n",
                   op_name[op], tot.enomem[op], tot.absorbed[op]);
    printf("    allocations on other threads: %lld (%lld of them failed)\n",
           tot.foreign_calls, tot.foreign_injected);
    if (tot.foreign_calls)
        printf("    NOTE: stillmap allocated on a thread other than the "
               "caller's (its background thread)\n");
    fflush(stdout);
}

int main(int argc, char **argv) {
    tu_args a = {1, 160, 0, 0, 0, 0};
    tu_parse_args(argc, argv, &a);
    uint64_t n = (uint64_t)tu_scaled(a.n, 60);
    printf("test_alloc_fail (scale %.3g)\n", tu_scale());
    fflush(stdout);
    sweep(SM_KEY_U64, n);
    sweep(SM_KEY_BYTES, n);
    printf("test_alloc_fail: all passed\n");
    return 0;
}
