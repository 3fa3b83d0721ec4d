// ctest-args: --threads 4 --n 200000 --ops 400000
/*
 * stress_ranges.c — threads on disjoint key ranges.
 *
 * Each of --threads threads owns n/threads keys.  It inserts, overwrites,
 * deletes and re-inserts in its range (every operation) in three stages:
 * filling, draining (so the shared table grows and shrinks under the
 * other threads), and mixed, a quarter, a half and a quarter of the
 * operations; between draining and mixed each thread calls sm_trim.  Nobody else touches its keys, so every
 * outcome is predictable and is checked against the thread's own model,
 * while the other threads force resizes.  At the end the map must equal
 * the union of the models (checked with get, for_each and sm_len), and
 * after sm_destroy the removal hook must have seen exactly the values the
 * models say left the map.  u64 keys first, then byte keys (half the
 * keys and operations).
 *
 *   stress_ranges [--threads N] [--n KEYS] [--ops OPS_PER_THREAD]
 *                 [--seconds CAP] [--seed S]
 *
 * n and ops are multiplied by SM_TEST_SCALE; --seconds (default none)
 * stops the threads early, and everything is checked all the same.
 */
#include "testutil.h"
#include "testkeys.h"

typedef struct worker {
    pthread_t th;
    int id;
    tk_map *t;
    uint64_t base, nkeys;      /* key indices [base, base + nkeys) */
    long long ops;
    uint64_t seed;
    double deadline;           /* 0 = none */
    /* the model */
    unsigned char *present;
    uint64_t *val;
    uint64_t len;
    tu_hook_expect hooks;
    long long done;
} worker;

static void w_set(worker *w, uint64_t j, uint64_t v) {
    if (!w->present[j]) {
        w->present[j] = 1;
        w->len++;
    } else if (w->val[j] != v) {
        tu_expect_hook(&w->hooks, w->val[j], SM_REMOVED_REPLACE);
    }
    w->val[j] = v;
}

static void w_del(worker *w, uint64_t j) {
    tu_expect_hook(&w->hooks, w->val[j], SM_REMOVED_DELETE);
    w->present[j] = 0;
    w->len--;
}

static void w_check_range(worker *w) {
    for (uint64_t j = 0; j < w->nkeys; j++) {
        uint64_t v = 0;
        int s = tk_get(w->t, w->base + j, &v);
        if (w->present[j]) {
            if (s != SM_OK || v != w->val[j])
                FAIL("thread %d key index %llu: %s value %llu, expected %llu",
                     w->id, (unsigned long long)(w->base + j), sm_errname(s),
                     (unsigned long long)v, (unsigned long long)w->val[j]);
        } else if (s != SM_NOTFOUND) {
            FAIL("thread %d key index %llu: %s, expected absent", w->id,
                 (unsigned long long)(w->base + j), sm_errname(s));
        }
    }
}

static void *worker_main(void *p) {
    worker *w = (worker *)p;
    tu_rng r = tu_rng_make(w->seed);
    uint64_t counter = 0;
    /* stages: fill a quarter, drain half, mixed a quarter */
    const long long drain_at = w->ops / 4, mixed_at = 3 * (w->ops / 4);
    for (long long step = 0; step < w->ops; step++) {
        if ((step & 1023) == 0 && w->deadline > 0 && tu_now_s() > w->deadline)
            break;
        if (step == drain_at || step == mixed_at) {
            tu_context("thread %d: range check before step %lld", w->id, step);
            w_check_range(w);
            if (step == mixed_at) {
                /* drained: shrink now, under the other threads */
                ASSERT_OK(sm_trim(w->t->m, NULL));
                w_check_range(w);
            }
        }
        int mode = step < drain_at ? 0 : step < mixed_at ? 1 : 2;
        uint64_t j = tu_rng_below(&r, w->nkeys);
        uint64_t i = w->base + j;
        const int here = w->present[j];
        const uint64_t cur = w->val[j];
        uint64_t nv = ((uint64_t)w->id << 48) | ++counter;
        if (tu_rng_chance(&r, 1, 16) && here)
            nv = cur;                     /* a store of the same value */
        uint64_t x = tu_rng_below(&r, 100), a = 0, v = 0;
        int s;
        if (mode == 0 && x >= 60)
            x = x % 60;                   /* filling: no removals */
        else if (mode == 1 && x < 60 && tu_rng_chance(&r, 19, 20))
            x = 60 + x % 40;              /* draining: mostly removals */
        tu_context("thread %d step %lld op %llu key index %llu", w->id, step,
                   (unsigned long long)x, (unsigned long long)i);
        if (x < 15) {
            s = tk_get(w->t, i, &v);
            if (here) {
                ASSERT_OK(s);
                ASSERT_EQ(v, cur);
            } else {
                ASSERT_STATUS(s, SM_NOTFOUND);
            }
        } else if (x < 35) {
            ASSERT_OK(tk_put(w->t, i, nv));
            w_set(w, j, nv);
        } else if (x < 45) {
            s = tk_los(w->t, i, nv, &a);
            if (here) {
                ASSERT_STATUS(s, SM_EXISTS);
                ASSERT_EQ(a, cur);
            } else {
                ASSERT_OK(s);
                ASSERT_EQ(a, nv);
                w_set(w, j, nv);
            }
        } else if (x < 52) {
            s = tk_swap(w->t, i, nv, &a);
            if (here) {
                ASSERT_OK(s);
                ASSERT_EQ(a, cur);
            } else {
                ASSERT_STATUS(s, SM_NOTFOUND);
            }
            w_set(w, j, nv);
        } else if (x < 60) {
            uint64_t exp = tu_rng_chance(&r, 3, 4) ? cur : cur + 1;
            s = tk_cas(w->t, i, exp, nv);
            if (!here) {
                ASSERT_STATUS(s, SM_NOTFOUND);
            } else if (exp == cur) {
                ASSERT_OK(s);
                w_set(w, j, nv);
            } else {
                ASSERT_STATUS(s, SM_MISMATCH);
            }
        } else if (x < 80) {
            s = tk_del(w->t, i);
            if (here) {
                ASSERT_OK(s);
                w_del(w, j);
            } else {
                ASSERT_STATUS(s, SM_NOTFOUND);
            }
        } else if (x < 90) {
            s = tk_lad(w->t, i, &a);
            if (here) {
                ASSERT_OK(s);
                ASSERT_EQ(a, cur);
                w_del(w, j);
            } else {
                ASSERT_STATUS(s, SM_NOTFOUND);
            }
        } else {
            uint64_t exp = tu_rng_chance(&r, 3, 4) ? cur : cur ^ 1;
            s = tk_cad(w->t, i, exp);
            if (!here) {
                ASSERT_STATUS(s, SM_NOTFOUND);
            } else if (exp == cur) {
                ASSERT_OK(s);
                w_del(w, j);
            } else {
                ASSERT_STATUS(s, SM_MISMATCH);
            }
        }
        w->done++;
    }
    tu_context("thread %d: final range check", w->id);
    w_check_range(w);
    return NULL;
}

typedef struct walk {
    worker *ws;
    int nthreads;
    uint64_t per;
    tk_map *t;
    unsigned char *seen;
    uint64_t calls;
} walk;

static int walk_visit(void *ctx, const sm_entry *e) {
    walk *wk = (walk *)ctx;
    uint64_t i = tk_index_of_entry(wk->t, e);
    uint64_t tid = i / wk->per;
    if (tid >= (uint64_t)wk->nthreads)
        FAIL("for_each visited key index %llu outside every range",
             (unsigned long long)i);
    worker *w = &wk->ws[tid];
    uint64_t j = i - w->base;
    if (!w->present[j])
        FAIL("for_each visited key index %llu, absent in thread %d's model",
             (unsigned long long)i, w->id);
    if (wk->seen[i]++)
        FAIL("for_each visited key index %llu twice", (unsigned long long)i);
    ASSERT_EQ(e->value, w->val[j]);
    wk->calls++;
    return 0;
}

static void run(sm_key_kind kind, int nthreads, uint64_t nkeys, long long ops,
                uint64_t seed, double seconds) {
    uint64_t per = nkeys / (uint64_t)nthreads;
    if (per < 16)
        per = 16;
    printf("  %s keys: %d threads x %llu keys, %lld operations each, seed %llu\n",
           tu_kind_name(kind), nthreads, (unsigned long long)per, ops,
           (unsigned long long)seed);
    fflush(stdout);
    tu_hooks hk;
    tu_hooks_init(&hk);
    sm_options o;
    sm_options_init(&o);
    o.on_remove = tu_hooks_fn;
    o.on_remove_ctx = &hk;
    tk_map t = tk_create(kind, &o);
    worker *ws = (worker *)calloc((size_t)nthreads, sizeof *ws);
    ASSERT_TRUE(ws != NULL);
    double deadline = seconds > 0 ? tu_now_s() + seconds : 0;
    for (int k = 0; k < nthreads; k++) {
        worker *w = &ws[k];
        w->id = k;
        w->t = &t;
        w->base = (uint64_t)k * per;
        w->nkeys = per;
        w->ops = ops;
        w->seed = tu_mix64(seed + (uint64_t)k);
        w->deadline = deadline;
        w->present = (unsigned char *)calloc(per, 1);
        w->val = (uint64_t *)calloc(per, sizeof(uint64_t));
        ASSERT_TRUE(w->present && w->val);
    }
    for (int k = 0; k < nthreads; k++)
        tu_thread_start(&ws[k].th, worker_main, &ws[k]);
    for (int k = 0; k < nthreads; k++)
        tu_thread_join(ws[k].th);

    /* the map is the union of the models */
    uint64_t total = 0;
    long long done = 0;
    tu_hook_expect want;
    memset(&want, 0, sizeof want);
    for (int k = 0; k < nthreads; k++) {
        worker *w = &ws[k];
        total += w->len;
        done += w->done;
        tu_context("main: thread %d's range", k);
        w_check_range(w);
        for (int r = 0; r < 5; r++) {
            want.count[r] += w->hooks.count[r];
            want.sum[r] += w->hooks.sum[r];
            want.xr[r] ^= w->hooks.xr[r];
        }
    }
    tu_context("main: totals");
    ASSERT_EQ(sm_len(t.m), total);
    sm_stats st = tu_stats(t.m);
    ASSERT_EQ(st.entries, total);
    walk wk = {ws, nthreads, per, &t, (unsigned char *)calloc(per * (uint64_t)nthreads, 1), 0};
    ASSERT_TRUE(wk.seen != NULL);
    ASSERT_OK(sm_for_each(t.m, walk_visit, &wk));
    ASSERT_EQ(wk.calls, total);

    for (int k = 0; k < nthreads; k++)
        for (uint64_t j = 0; j < per; j++)
            if (ws[k].present[j])
                tu_expect_hook(&want, ws[k].val[j], SM_REMOVED_DESTROY);
    ASSERT_OK(sm_destroy(t.m));
    ASSERT_HOOKS_MATCH(&hk, &want);
    printf("    ok: %lld operations, %llu entries at the end, grows %llu, "
           "shrinks %llu, %llu hooks\n", done, (unsigned long long)total,
           (unsigned long long)st.grows_total,
           (unsigned long long)st.shrinks_total, atomic_load(&hk.calls));
    fflush(stdout);
    for (int k = 0; k < nthreads; k++) {
        free(ws[k].present);
        free(ws[k].val);
    }
    free(ws);
    free(wk.seen);
}

int main(int argc, char **argv) {
    tu_args a = {4, 200000, 400000, 0, 0x7a9e5ull, 0};
    tu_parse_args(argc, argv, &a);
    uint64_t n = (uint64_t)tu_scaled(a.n, 2000);
    long long ops = tu_scaled(a.ops, 20000);
    printf("stress_ranges (scale %.3g): replay with --seed %llu\n", tu_scale(),
           a.seed);
    run(SM_KEY_U64, a.threads, n, ops, a.seed, a.seconds);
    run(SM_KEY_BYTES, a.threads, n / 2, ops / 2, a.seed + 1, a.seconds);
    printf("stress_ranges: all passed\n");
    return 0;
}
