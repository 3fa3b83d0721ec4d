// ctest-args: --threads 4 --n 4000 --ops 300000
/*
 * stress_clear.c — clear racing readers and writers.
 *
 * Writers (half of --threads) each own n/writers keys and run every
 * operation on them; readers (the other half) read all keys and walk the
 * map; one more thread calls sm_clear again and again (and sm_trim
 * every 16th time).  The clearer
 * counts clears started (before the call) and done (after it returns).
 *
 * Invariants no linearization can break, checked on every writer call:
 *   - only the owner stores a key, so an absent key stays absent until
 *     the owner stores it, and a value read is one the owner stored;
 *   - if the number of clears started, read after a call returned, equals
 *     the number of clears done, read before the call that last stored
 *     the key started, then no clear can have come in between: the key
 *     still holds that value and the call's outcome is exact;
 *   - otherwise the key holds that value or is absent (cleared), and the
 *     outcome must be one of the two;
 *   - if more clears are done, read before a call starts, than had been
 *     started, read after the call that last stored or saw the key
 *     returned, then a whole clear came in between: the key is absent.
 * Readers check that every value they see belongs to the key it was
 * found under (values encode their owner and key).
 *
 * Every stored value is unique.  The removal hook marks each value in a
 * table: after sm_destroy, every value that entered the map was seen by
 * the hook exactly once and no other value ever was.
 *
 *   stress_clear [--threads N] [--n KEYS] [--ops OPS_PER_WRITER]
 *                [--seconds CAP] [--seed S]
 */
#include "testutil.h"
#include "testkeys.h"

/* value = owner << 56 | seq << 24 | local key index */
#define V_OWNER(v) ((uint64_t)(v) >> 56)
#define V_SEQ(v) (((uint64_t)(v) >> 24) & 0xffffffffull)
#define V_KEY(v) ((uint64_t)(v) & 0xffffffull)
#define NEVER_STORED(j) ((0xffull << 56) | (j))   /* owner 255: no one */

typedef struct shared {
    tk_map t;
    int nwriters, nreaders;
    uint64_t per;                /* keys per writer */
    long long ops;               /* per writer */
    uint64_t seqs;               /* value numbers per writer: ops + 1 */
    double deadline;
    uint64_t seed;
    atomic_ullong started, done; /* clears */
    atomic_int writers_left;
    atomic_uchar *hooked;        /* per (writer, seq): hook calls */
    atomic_ullong hook_bad;      /* undecodable values */
    atomic_ullong reads, walks;
} shared;

typedef struct writer {
    pthread_t th;
    int id;
    shared *sh;
    unsigned char *present;
    uint64_t *val;
    uint64_t *dw;                /* clears done before the store began */
    uint64_t *se;                /* clears started when it had returned */
    unsigned char *stored;       /* per seq: the value entered the map */
    uint64_t next_seq;
    long long done_ops, uncertain, cleared_seen, surely_cleared;
} writer;

static void hook(void *ctx, uint64_t v, sm_reason why) {
    shared *sh = (shared *)ctx;
    (void)why;
    uint64_t o = V_OWNER(v), s = V_SEQ(v);
    if (o >= (uint64_t)sh->nwriters || s >= sh->seqs || V_KEY(v) >= sh->per) {
        atomic_fetch_add(&sh->hook_bad, 1);
        return;
    }
    atomic_fetch_add(&sh->hooked[o * sh->seqs + s], 1);
}

static uint64_t fresh(writer *w, uint64_t j) {
    uint64_t s = w->next_seq++;
    ASSERT_LT(s, w->sh->seqs);
    return ((uint64_t)w->id << 56) | (s << 24) | j;
}

static void stored(writer *w, uint64_t j, uint64_t v, uint64_t d_pre,
                   uint64_t s_post) {
    w->stored[V_SEQ(v)] = 1;
    w->present[j] = 1;
    w->val[j] = v;
    w->dw[j] = d_pre;
    w->se[j] = s_post;
}

/* The call saw the key present. */
static void seen(writer *w, uint64_t j, uint64_t d_pre, uint64_t s_post) {
    w->dw[j] = d_pre;
    w->se[j] = s_post;
}

#define STATUS_IS(s, a, b) ((s) == (a) || (s) == (b))

static void *writer_main(void *p) {
    writer *w = (writer *)p;
    shared *sh = w->sh;
    tu_rng r = tu_rng_make(tu_mix64(sh->seed + (uint64_t)w->id));
    const uint64_t base = (uint64_t)w->id * sh->per;
    for (long long step = 0; step < sh->ops; step++) {
        if ((step & 1023) == 0 && sh->deadline > 0 && tu_now_s() > sh->deadline)
            break;
        uint64_t j = tu_rng_below(&r, sh->per), i = base + j;
        uint64_t x = tu_rng_below(&r, 100);
        uint64_t nv = fresh(w, j), a = 0;
        tu_context("writer %d step %lld op %llu key index %llu", w->id, step,
                   (unsigned long long)x, (unsigned long long)i);
        uint64_t d_pre = atomic_load(&sh->done);
        if (w->present[j] && d_pre > w->se[j]) {
            /* a clear started after the key was last stored or seen and
             * has returned: the key is gone */
            w->present[j] = 0;
            w->surely_cleared++;
        }
        const int P = w->present[j];
        const uint64_t cur = w->val[j];
        int s;
        if (x < 25) {
            s = tk_get(&sh->t, i, &a);
        } else if (x < 45) {
            s = tk_put(&sh->t, i, nv);
        } else if (x < 55) {
            s = tk_los(&sh->t, i, nv, &a);
        } else if (x < 62) {
            s = tk_swap(&sh->t, i, nv, &a);
        } else if (x < 72) {
            s = tk_cas(&sh->t, i, P ? cur : NEVER_STORED(j), nv);
        } else if (x < 76) {
            s = tk_cas(&sh->t, i, NEVER_STORED(j), nv);
        } else if (x < 86) {
            s = tk_del(&sh->t, i);
        } else if (x < 93) {
            s = tk_lad(&sh->t, i, &a);
        } else if (x < 97) {
            s = tk_cad(&sh->t, i, P ? cur : NEVER_STORED(j));
        } else {
            s = tk_cad(&sh->t, i, NEVER_STORED(j));
        }
        uint64_t s_post = atomic_load(&sh->started);
        /* Is the last stored value certainly still there? */
        const int certain = P && s_post == w->dw[j];
        const int maybe = P && !certain;       /* present or cleared */
        if (maybe)
            w->uncertain++;
        if (x < 25) {                                   /* get */
            if (certain) {
                ASSERT_OK(s);
            } else if (!P) {
                ASSERT_STATUS(s, SM_NOTFOUND);
            } else {
                ASSERT_STATUS2(s, SM_OK, SM_NOTFOUND);
            }
            if (s == SM_OK) {
                ASSERT_EQ(a, cur);
                seen(w, j, d_pre, s_post);
            } else {
                w->cleared_seen += P;
                w->present[j] = 0;
            }
        } else if (x < 45) {                            /* put */
            ASSERT_OK(s);
            stored(w, j, nv, d_pre, s_post);
        } else if (x < 55) {                            /* load_or_store */
            if (certain) {
                ASSERT_STATUS(s, SM_EXISTS);
            } else if (!P) {
                ASSERT_OK(s);
            } else {
                ASSERT_STATUS2(s, SM_OK, SM_EXISTS);
            }
            if (s == SM_OK) {
                ASSERT_EQ(a, nv);
                w->cleared_seen += P;
                stored(w, j, nv, d_pre, s_post);
            } else {
                ASSERT_EQ(a, cur);
                seen(w, j, d_pre, s_post);
            }
        } else if (x < 62) {                            /* swap */
            if (certain) {
                ASSERT_OK(s);
            } else if (!P) {
                ASSERT_STATUS(s, SM_NOTFOUND);
            } else {
                ASSERT_STATUS2(s, SM_OK, SM_NOTFOUND);
            }
            if (s == SM_OK)
                ASSERT_EQ(a, cur);
            else
                w->cleared_seen += P;
            stored(w, j, nv, d_pre, s_post);
        } else if (x < 76) {                            /* cas */
            int right = x < 72 && P;
            if (!P) {
                ASSERT_STATUS(s, SM_NOTFOUND);
            } else if (certain) {
                ASSERT_STATUS(s, right ? SM_OK : SM_MISMATCH);
            } else {
                ASSERT_STATUS2(s, right ? SM_OK : SM_MISMATCH, SM_NOTFOUND);
            }
            if (s == SM_OK) {
                stored(w, j, nv, d_pre, s_post);
            } else if (s == SM_MISMATCH) {
                seen(w, j, d_pre, s_post);
            } else {
                w->cleared_seen += P;
                w->present[j] = 0;
            }
        } else {                                        /* removals */
            int right = P && x < 97;    /* delete, lad, cad(cur) */
            if (!P) {
                ASSERT_STATUS(s, SM_NOTFOUND);
            } else if (certain) {
                ASSERT_STATUS(s, right ? SM_OK : SM_MISMATCH);
            } else {
                ASSERT_STATUS2(s, right ? SM_OK : SM_MISMATCH, SM_NOTFOUND);
            }
            if (s == SM_OK && x >= 86 && x < 93)
                ASSERT_EQ(a, cur);
            if (s == SM_MISMATCH) {
                seen(w, j, d_pre, s_post);
            } else {
                if (s == SM_NOTFOUND)
                    w->cleared_seen += P;
                w->present[j] = 0;
            }
        }
        w->done_ops++;
    }
    atomic_fetch_sub(&sh->writers_left, 1);
    return NULL;
}

typedef struct reader {
    pthread_t th;
    int id;
    shared *sh;
} reader;

static void check_value(shared *sh, uint64_t i, uint64_t v) {
    uint64_t owner = i / sh->per, j = i % sh->per;
    if (V_OWNER(v) != owner || V_KEY(v) != j || V_SEQ(v) >= sh->seqs)
        FAIL("key index %llu (writer %llu, key %llu) holds value 0x%llx, "
             "which was stored for another key", (unsigned long long)i,
             (unsigned long long)owner, (unsigned long long)j,
             (unsigned long long)v);
}

typedef struct walk_ctx {
    shared *sh;
    uint64_t calls;
} walk_ctx;

static int walk_visit(void *ctx, const sm_entry *e) {
    walk_ctx *c = (walk_ctx *)ctx;
    uint64_t i = tk_index_of_entry(&c->sh->t, e);
    if (i >= c->sh->per * (uint64_t)c->sh->nwriters)
        FAIL("walk: key index %llu was never stored", (unsigned long long)i);
    check_value(c->sh, i, e->value);
    c->calls++;
    return 0;
}

static void *reader_main(void *p) {
    reader *rd = (reader *)p;
    shared *sh = rd->sh;
    tu_rng r = tu_rng_make(tu_mix64(sh->seed + 1000 + (uint64_t)rd->id));
    const uint64_t nkeys = sh->per * (uint64_t)sh->nwriters;
    unsigned long long reads = 0, walks = 0;
    while (atomic_load(&sh->writers_left) > 0) {
        for (int k = 0; k < 256; k++, reads++) {
            uint64_t i = tu_rng_below(&r, nkeys), v = 0;
            int s = tk_get(&sh->t, i, &v);
            if (s == SM_OK)
                check_value(sh, i, v);
            else
                ASSERT_STATUS(s, SM_NOTFOUND);
        }
        ASSERT_LE(sm_len(sh->t.m), nkeys);
        if (tu_rng_chance(&r, 1, 64)) {
            walk_ctx c = {sh, 0};
            ASSERT_OK(sm_for_each(sh->t.m, walk_visit, &c));
            walks++;
        }
    }
    atomic_fetch_add(&sh->reads, reads);
    atomic_fetch_add(&sh->walks, walks);
    return NULL;
}

static void *clearer_main(void *p) {
    shared *sh = (shared *)p;
    tu_rng r = tu_rng_make(sh->seed ^ 0xc1ea5ull);
    unsigned long long k = 0;
    while (atomic_load(&sh->writers_left) > 0) {
        atomic_fetch_add(&sh->started, 1);
        ASSERT_OK(sm_clear(sh->t.m));
        atomic_fetch_add(&sh->done, 1);
        if (++k % 16 == 0)
            ASSERT_OK(sm_trim(sh->t.m, NULL));   /* changes no content */
        /* pacing only: let the map fill up a little between clears */
        tu_sleep_us(50 + (unsigned long)tu_rng_below(&r, 400));
    }
    return NULL;
}

static void run(sm_key_kind kind, int nthreads, uint64_t nkeys, long long ops,
                double seconds, uint64_t seed) {
    shared sh;
    memset(&sh, 0, sizeof sh);
    sh.nwriters = nthreads / 2 > 0 ? nthreads / 2 : 1;
    sh.nreaders = nthreads - sh.nwriters > 0 ? nthreads - sh.nwriters : 1;
    sh.per = nkeys / (uint64_t)sh.nwriters;
    if (sh.per < 8)
        sh.per = 8;
    ASSERT_LT(sh.per, 1u << 24);
    sh.ops = ops;
    sh.seqs = (uint64_t)ops + 1;
    ASSERT_LT(sh.seqs, 1ull << 32);
    sh.deadline = seconds > 0 ? tu_now_s() + seconds : 0;
    sh.seed = seed;
    atomic_init(&sh.started, 0);
    atomic_init(&sh.done, 0);
    atomic_init(&sh.writers_left, sh.nwriters);
    atomic_init(&sh.hook_bad, 0);
    atomic_init(&sh.reads, 0);
    atomic_init(&sh.walks, 0);
    size_t nh = (size_t)sh.seqs * (size_t)sh.nwriters;
    sh.hooked = (atomic_uchar *)malloc(nh * sizeof(atomic_uchar));
    ASSERT_TRUE(sh.hooked != NULL);
    for (size_t k = 0; k < nh; k++)
        atomic_init(&sh.hooked[k], 0);
    printf("  %s keys: %d writers x %llu keys, %lld operations each, %d "
           "readers, 1 clearer\n", tu_kind_name(kind), sh.nwriters,
           (unsigned long long)sh.per, ops, sh.nreaders);
    fflush(stdout);
    sm_options o;
    sm_options_init(&o);
    o.on_remove = hook;
    o.on_remove_ctx = &sh;
    sh.t = tk_create(kind, &o);

    writer *ws = (writer *)calloc((size_t)sh.nwriters, sizeof *ws);
    reader *rs = (reader *)calloc((size_t)sh.nreaders, sizeof *rs);
    ASSERT_TRUE(ws && rs);
    for (int k = 0; k < sh.nwriters; k++) {
        writer *w = &ws[k];
        w->id = k;
        w->sh = &sh;
        w->present = (unsigned char *)calloc(sh.per, 1);
        w->val = (uint64_t *)calloc(sh.per, sizeof(uint64_t));
        w->dw = (uint64_t *)calloc(sh.per, sizeof(uint64_t));
        w->se = (uint64_t *)calloc(sh.per, sizeof(uint64_t));
        w->stored = (unsigned char *)calloc(sh.seqs, 1);
        ASSERT_TRUE(w->present && w->val && w->dw && w->se && w->stored);
    }
    pthread_t clearer;
    for (int k = 0; k < sh.nwriters; k++)
        tu_thread_start(&ws[k].th, writer_main, &ws[k]);
    for (int k = 0; k < sh.nreaders; k++) {
        rs[k].id = k;
        rs[k].sh = &sh;
        tu_thread_start(&rs[k].th, reader_main, &rs[k]);
    }
    tu_thread_start(&clearer, clearer_main, &sh);
    for (int k = 0; k < sh.nwriters; k++)
        tu_thread_join(ws[k].th);
    for (int k = 0; k < sh.nreaders; k++)
        tu_thread_join(rs[k].th);
    tu_thread_join(clearer);

    /* quiet: each key holds its last value or was cleared */
    uint64_t present = 0;
    long long done_ops = 0, uncertain = 0, cleared_seen = 0, surely = 0;
    uint64_t s_now = atomic_load(&sh.started), d_now = atomic_load(&sh.done);
    for (int k = 0; k < sh.nwriters; k++) {
        writer *w = &ws[k];
        done_ops += w->done_ops;
        uncertain += w->uncertain;
        cleared_seen += w->cleared_seen;
        surely += w->surely_cleared;
        for (uint64_t j = 0; j < sh.per; j++) {
            uint64_t i = (uint64_t)k * sh.per + j, v = 0;
            tu_context("final check, key index %llu", (unsigned long long)i);
            int s = tk_get(&sh.t, i, &v);
            if (!w->present[j] || d_now > w->se[j]) {
                ASSERT_STATUS(s, SM_NOTFOUND);
            } else if (s_now == w->dw[j]) {
                ASSERT_OK(s);
            } else {
                ASSERT_STATUS2(s, SM_OK, SM_NOTFOUND);
            }
            if (s == SM_OK) {
                ASSERT_EQ(v, w->val[j]);
                present++;
            }
        }
    }
    tu_context("final counts");
    ASSERT_EQ(sm_len(sh.t.m), present);
    walk_ctx c = {&sh, 0};
    ASSERT_OK(sm_for_each(sh.t.m, walk_visit, &c));
    ASSERT_EQ(c.calls, present);
    sm_stats st = tu_stats(sh.t.m);
    ASSERT_EQ(st.clears_total, atomic_load(&sh.done));
    ASSERT_OK(sm_destroy(sh.t.m));

    /* every value that entered the map left it exactly once */
    ASSERT_EQ(atomic_load(&sh.hook_bad), 0);
    unsigned long long entered = 0;
    for (int k = 0; k < sh.nwriters; k++) {
        writer *w = &ws[k];
        for (uint64_t s = 0; s < sh.seqs; s++) {
            unsigned h = atomic_load(&sh.hooked[(uint64_t)k * sh.seqs + s]);
            if (h != w->stored[s])
                FAIL("value of writer %d number %llu: stored %d, hook called "
                     "%u times", k, (unsigned long long)s, w->stored[s], h);
            entered += w->stored[s];
        }
    }
    printf("    ok: %lld writer operations (%lld with the key possibly "
           "cleared, %lld found cleared, %lld surely cleared), %llu reads, "
           "%llu walks, %llu clears, %llu values stored and removed\n",
           done_ops, uncertain, cleared_seen, surely, atomic_load(&sh.reads),
           atomic_load(&sh.walks), atomic_load(&sh.done), entered);
    fflush(stdout);
    /* the run must have exercised the uncertain paths */
    ASSERT_GT(atomic_load(&sh.done), 0);
    for (int k = 0; k < sh.nwriters; k++) {
        free(ws[k].present);
        free(ws[k].val);
        free(ws[k].dw);
        free(ws[k].se);
        free(ws[k].stored);
    }
    free(ws);
    free(rs);
    free(sh.hooked);
}

int main(int argc, char **argv) {
    tu_args a = {4, 4000, 300000, 0, 0xc1ea2ull, 0};
    tu_parse_args(argc, argv, &a);
    uint64_t n = (uint64_t)tu_scaled(a.n, 200);
    long long ops = tu_scaled(a.ops, 10000);
    printf("stress_clear (scale %.3g), seed %llu\n", tu_scale(), a.seed);
    run(SM_KEY_U64, a.threads, n, ops, a.seconds, a.seed);
    run(SM_KEY_BYTES, a.threads, n, ops, a.seconds, a.seed + 1);
    printf("stress_clear: all passed\n");
    return 0;
}
