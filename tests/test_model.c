/*
 * test_model.c — model-based randomized test of stillmap.
 *
 * Millions of random operations (every operation, plus occasional clear,
 * reserve and for_each) on a small-to-medium key space, for each key
 * kind, checked step by step against a trivial reference (an array
 * indexed by key number).  The operation mix swings between insert-heavy
 * and delete-heavy phases and the active key range changes, so that hits,
 * misses, growth and shrink all happen.  The removal hook is counted
 * against the model too: after sm_destroy the calls per reason, and the
 * sum and xor of their values, must match exactly.
 *
 *   test_model [--seed N] [--ops N] [--n KEYS]
 *
 * --ops is per key kind (default 3,000,000); --n is the key space
 * (default 20,000); both are multiplied by SM_TEST_SCALE.  The seed is printed; a failure prints
 * the step number, so a run can be replayed with --seed.
 */
#include "testutil.h"
#include "testkeys.h"
#include "testmodel.h"



/* Values: often small (so that equal-value stores happen), with the
 * extremes, otherwise random. */
static uint64_t rand_val(tu_rng *r) {
    uint64_t x = tu_rng_next(r);
    switch (x % 8) {
    case 0:
        return 0;
    case 1:
        return UINT64_MAX;
    case 2:
    case 3:
        return (x >> 8) % 4;
    default:
        return tu_rng_next(r);
    }
}

/* A value other than v. */
static uint64_t other_val(tu_rng *r, uint64_t v) {
    uint64_t o = rand_val(r);
    return o == v ? v + 1 + (o & 7) : o;
}

typedef struct cmp_ctx {
    const tk_map *t;
    const model *md;
    unsigned char *seen;
    uint64_t calls;
    uint64_t stop_at;   /* 0 = never */
} cmp_ctx;

static int cmp_visit(void *ctx, const sm_entry *e) {
    cmp_ctx *c = (cmp_ctx *)ctx;
    uint64_t i = tk_index_of_entry(c->t, e);
    c->calls++;
    if (i >= c->md->nkeys || !c->md->present[i])
        FAIL("for_each visited key index %llu, absent in the model",
             (unsigned long long)i);
    if (c->seen[i]++)
        FAIL("for_each visited key index %llu twice", (unsigned long long)i);
    ASSERT_EQ(e->value, c->md->val[i]);
    if (c->stop_at && c->calls == c->stop_at)
        return 5;
    return 0;
}

/* The whole map against the model: len, stats, every key, for_each. */
static void full_compare(const tk_map *t, const model *md, unsigned char *seen) {
    ASSERT_EQ(sm_len(t->m), md->len);
    sm_stats st = tu_stats(t->m);
    ASSERT_EQ(st.entries, md->len);
    ASSERT_GE(st.capacity, md->len);
    for (uint64_t i = 0; i < md->nkeys; i++) {
        uint64_t v = 0;
        int s = tk_get(t, i, &v);
        if (md->present[i]) {
            if (s != SM_OK || v != md->val[i])
                FAIL("full compare: key index %llu: %s, value %llu, model %llu",
                     (unsigned long long)i, sm_errname(s),
                     (unsigned long long)v, (unsigned long long)md->val[i]);
        } else if (s != SM_NOTFOUND) {
            FAIL("full compare: key index %llu: %s, absent in the model",
                 (unsigned long long)i, sm_errname(s));
        }
    }
    memset(seen, 0, md->nkeys);
    cmp_ctx c = {t, md, seen, 0, 0};
    ASSERT_OK(sm_for_each(t->m, cmp_visit, &c));
    ASSERT_EQ(c.calls, md->len);
}

static void run(sm_key_kind kind, uint64_t seed, long long nops, uint64_t nkeys) {
    printf("  %s keys: seed %llu, %lld operations, %llu keys\n",
           tu_kind_name(kind), (unsigned long long)seed, nops,
           (unsigned long long)nkeys);
    fflush(stdout);
    tu_rng r = tu_rng_make(seed);
    model md;
    memset(&md, 0, sizeof md);
    md.nkeys = nkeys;
    md.present = (unsigned char *)calloc(nkeys, 1);
    md.val = (uint64_t *)calloc(nkeys, sizeof *md.val);
    unsigned char *seen = (unsigned char *)calloc(nkeys, 1);
    ASSERT_TRUE(md.present && md.val && seen);

    tu_hooks hk;
    tu_hooks_init(&hk);
    sm_options o;
    sm_options_init(&o);
    o.fixed_seed = 1;
    o.seed = tu_mix64(seed);
    o.on_remove = tu_hooks_fn;
    o.on_remove_ctx = &hk;
    tk_map t = tk_create(kind, &o);

    /* a phase is a few times the key space, so that it can fill or
     * drain it */
    const long long phase_len = (long long)nkeys * 5;
    const long long compare_every = 100000;
    uint64_t active = nkeys;
    int phase = 2;
    unsigned long long n_clear = 0, n_reserve = 0, n_foreach = 0;
    uint64_t max_len = 0;

    for (long long step = 0; step < nops; step++) {
        if (step % phase_len == 0) {
            /* new phase: direction (0 drain, 1 fill, 2 balanced) and the
             * active key range; every fourth pair of phases fills and then
             * drains the whole key space, so the table grows and shrinks */
            long long ph = step / phase_len;
            if (ph % 8 == 0 && ph > 0) {
                /* after the drain: empty all but a sliver of the key
                 * space, so that any shrink policy has to act */
                tu_context("%s keys, seed %llu, sweep before step %lld",
                           tu_kind_name(kind), (unsigned long long)seed, step);
                for (uint64_t k = 0; k < nkeys; k++) {
                    if (!md.present[k] || k % 64 == 0)
                        continue;
                    uint64_t got = 0;
                    ASSERT_OK(tk_lad(&t, k, &got));
                    ASSERT_EQ(got, md.val[k]);
                    model_del(&md, k);
                }
                ASSERT_EQ(sm_len(t.m), md.len);
            }
            if (ph % 8 == 6 || ph % 8 == 7) {
                phase = ph % 8 == 6 ? 1 : 0;
                active = nkeys;
            } else {
                phase = (int)tu_rng_below(&r, 3);
                uint64_t pick = tu_rng_below(&r, 4);
                active = pick == 0 ? 64 : pick == 1 ? nkeys / 8 : nkeys;
            }
            if (active < 1)
                active = 1;
        }
        tu_context("%s keys, seed %llu, step %lld", tu_kind_name(kind),
                   (unsigned long long)seed, step);
        uint64_t i = tu_rng_below(&r, active);
        uint64_t x = tu_rng_below(&r, 1000);
        uint64_t v = 0, a = 0;
        int s;
        const int here = md.present[i];
        const uint64_t cur = md.val[i];

        /* Filling, most deletes become puts; draining, most stores
         * become deletes. */
        if (x >= 600 && x < 850 && phase == 1 && tu_rng_chance(&r, 7, 10))
            x = 200;
        else if (x >= 200 && x < 600 && phase == 0 && tu_rng_chance(&r, 9, 10))
            x = 600;

        if (x < 200) {                                  /* get */
            s = tk_get(&t, i, &v);
            if (here) {
                ASSERT_OK(s);
                ASSERT_EQ(v, cur);
            } else {
                ASSERT_STATUS(s, SM_NOTFOUND);
            }
        } else if (x < 320) {                           /* put */
            uint64_t nv = rand_val(&r);
            ASSERT_OK(tk_put(&t, i, nv));
            model_set(&md, i, nv);
        } else if (x < 400) {                           /* load_or_store */
            uint64_t nv = rand_val(&r);
            s = tk_los(&t, i, nv, &a);
            if (here) {
                ASSERT_STATUS(s, SM_EXISTS);
                ASSERT_EQ(a, cur);
            } else {
                ASSERT_OK(s);
                ASSERT_EQ(a, nv);
                model_set(&md, i, nv);
            }
        } else if (x < 470) {                           /* swap */
            uint64_t nv = rand_val(&r);
            s = tk_swap(&t, i, nv, &a);
            if (here) {
                ASSERT_OK(s);
                ASSERT_EQ(a, cur);
            } else {
                ASSERT_STATUS(s, SM_NOTFOUND);
            }
            model_set(&md, i, nv);
        } else if (x < 600) {                           /* cas */
            uint64_t nv = rand_val(&r);
            uint64_t exp = here && tu_rng_chance(&r, 2, 3) ? cur : other_val(&r, cur);
            s = tk_cas(&t, i, exp, nv);
            if (!here) {
                ASSERT_STATUS(s, SM_NOTFOUND);
            } else if (exp == cur) {
                ASSERT_OK(s);
                model_set(&md, i, nv);
            } else {
                ASSERT_STATUS(s, SM_MISMATCH);
            }
        } else if (x < 700) {                           /* delete */
            s = tk_del(&t, i);
            if (here) {
                ASSERT_OK(s);
                model_del(&md, i);
            } else {
                ASSERT_STATUS(s, SM_NOTFOUND);
            }
        } else if (x < 770) {                           /* load_and_delete */
            s = tk_lad(&t, i, &a);
            if (here) {
                ASSERT_OK(s);
                ASSERT_EQ(a, cur);
                model_del(&md, i);
            } else {
                ASSERT_STATUS(s, SM_NOTFOUND);
            }
        } else if (x < 850) {                           /* cad */
            uint64_t exp = here && tu_rng_chance(&r, 2, 3) ? cur : other_val(&r, cur);
            s = tk_cad(&t, i, exp);
            if (!here) {
                ASSERT_STATUS(s, SM_NOTFOUND);
            } else if (exp == cur) {
                ASSERT_OK(s);
                model_del(&md, i);
            } else {
                ASSERT_STATUS(s, SM_MISMATCH);
            }
        } else if (x < 998) {                           /* a key never stored */
            uint64_t j = nkeys + tu_rng_below(&r, nkeys);
            ASSERT_STATUS(tk_get(&t, j, &v), SM_NOTFOUND);
        } else {                                        /* rare extras */
            uint64_t y = tu_rng_below(&r, 1000);
            if (y < 3) {
                ASSERT_OK(sm_clear(t.m));
                model_clear(&md, SM_REMOVED_CLEAR);
                n_clear++;
            } else if (y < 30) {
                /* small: a reserve may keep the table from shrinking
                 * below it, and the run wants shrinks too */
                ASSERT_OK(sm_reserve(t.m, (size_t)tu_rng_below(&r, nkeys / 16 + 1)));
                n_reserve++;
            } else if (y < 400) {
                /* a for_each that stops part way */
                memset(seen, 0, nkeys);
                uint64_t stop = md.len ? 1 + tu_rng_below(&r, md.len) : 0;
                cmp_ctx c = {&t, &md, seen, 0, stop};
                int rc = sm_for_each(t.m, cmp_visit, &c);
                if (stop) {
                    ASSERT_EQ(rc, 5);
                    ASSERT_EQ(c.calls, stop);
                } else {
                    ASSERT_OK(rc);
                    ASSERT_EQ(c.calls, 0);
                }
                n_foreach++;
            }
        }
        ASSERT_EQ(sm_len(t.m), md.len);
        if (md.len > max_len)
            max_len = md.len;

        if ((step + 1) % compare_every == 0 || step + 1 == nops) {
            full_compare(&t, &md, seen);
            /* every removal so far reaches the hook */
            unsigned long long want = tu_expect_total(&md.hooks);
            int ok;
            TU_WAIT_UNTIL(ok, atomic_load(&hk.calls) >= want, TU_HOOK_WAIT_S);
            if (!ok)
                FAIL("%llu removal hooks called, %llu values removed",
                     atomic_load(&hk.calls), want);
            ASSERT_EQ(atomic_load(&hk.calls), want);
        }
    }
    tu_context("%s keys, seed %llu, destroy", tu_kind_name(kind),
               (unsigned long long)seed);
    sm_stats st = tu_stats(t.m);
    model_clear(&md, SM_REMOVED_DESTROY);
    ASSERT_OK(sm_destroy(t.m));
    ASSERT_HOOKS_MATCH(&hk, &md.hooks);
    printf("    ok: max len %llu, grows %llu, shrinks %llu, %llu clears, "
           "%llu reserves, %llu partial walks, %llu hooks\n",
           (unsigned long long)max_len, (unsigned long long)st.grows_total,
           (unsigned long long)st.shrinks_total, n_clear, n_reserve, n_foreach,
           atomic_load(&hk.calls));
    /* the run is only worth something if the table moved both ways */
    ASSERT_GT(st.grows_total, 0);
    ASSERT_GT(st.shrinks_total, 0);
    free(md.present);
    free(md.val);
    free(seen);
}

int main(int argc, char **argv) {
    tu_args a = {1, 20000, 3000000, 0, 0x5eed2024ull, 0};
    tu_parse_args(argc, argv, &a);
    long long nops = tu_scaled(a.ops, 200000);
    uint64_t nkeys = (uint64_t)tu_scaled(a.n, 2000);
    printf("test_model (scale %.3g): seed %llu (replay with --seed %llu)\n",
           tu_scale(), a.seed, a.seed);
    run(SM_KEY_U64, a.seed, nops, nkeys);
    run(SM_KEY_BYTES, a.seed + 1, nops, nkeys);
    printf("test_model: all passed\n");
    return 0;
}
