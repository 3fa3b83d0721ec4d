// ctest-args: --threads 4 --n 20000 --ops 48
/*
 * stress_linearizability.c — record concurrent histories and check that
 * each one is linearizable with respect to the sequential map.
 *
 * A round ("history") runs --threads worker threads on one map with a
 * small key set (NKEYS keys) and small values (0..NVALS-1), so that
 * operations on the same key collide often.  Each worker runs its share
 * of --ops random operations: get, put, load_or_store, swap, cas, delete,
 * load_and_delete, cad, clear and (rarely) reserve.  Every call is
 * bracketed by two increments of one global atomic counter, giving its
 * invocation and response times: an operation that responded before
 * another was invoked precedes it in real time.  The main thread sets a
 * known initial state before the round and reads every key after it (the
 * final reads are part of the history).
 *
 * The checker decides linearizability of the whole multi-key history
 * (per-key decomposition would be wrong: clear acts on all keys at one
 * instant).  It is a backtracking search in the style of Wing & Gong with
 * Lowe's memoisation: a configuration is (how many operations of each
 * thread are linearized, map state); from a configuration it tries every
 * thread's next operation that no pending operation precedes in real
 * time, applies it to the sequential map, keeps it if the recorded result
 * matches, and remembers configurations that lead nowhere.  Each thread's
 * operations are linearized in program order, so the set of linearized
 * operations is a vector of per-thread counts.
 *
 * Before the library is tested, the checker tests itself: hand-made
 * histories that are not linearizable (a value never written, an old
 * value after a completed clear, a clear seen on one key but not another,
 * two load_or_store that both stored, ...) must be rejected, hand-made
 * and randomly generated linearizable ones accepted, and random
 * sequential histories with one result altered rejected.
 *
 * Maps alternate between u64 keys and byte-string keys (the empty key
 * included) and are recreated every few rounds; reserve calls with
 * growing sizes start table transitions that the other operations race.
 *
 *   stress_linearizability [--threads N] [--n HISTORIES] [--ops PER_HISTORY]
 *                          [--seconds CAP] [--seed S]
 *
 * --n is multiplied by SM_TEST_SCALE.
 */
#include "testutil.h"

#include <sched.h>

/* ---------------------------------------------------------------------
 * Histories
 * ------------------------------------------------------------------- */
enum {
    L_GET, L_PUT, L_LOS, L_SWAP, L_CAS, L_DEL, L_LAD, L_CAD, L_CLEAR,
    L_RESERVE, L_NTYPES
};

static const char *const op_names[L_NTYPES] = {
    "get", "put", "load_or_store", "swap", "cas", "delete",
    "load_and_delete", "cad", "clear", "reserve"};

#define NKEYS 4
#define NVALS 4                     /* values 0..NVALS-1; state cell v+1 */
#define CELL_BITS 3
#define MAX_THREADS 6
#define MAX_PER_THREAD 120          /* ops of one thread in one history */
#define POS_BITS 7                  /* MAX_PER_THREAD < 1 << POS_BITS */
#define MAX_LANES (MAX_THREADS + 1) /* workers + the main thread's reads */

typedef struct lin_op {
    int type;
    int key;                /* 0..NKEYS-1 (unused by clear, reserve) */
    uint64_t a;             /* value to store, or expected (cas, cad) */
    uint64_t b;             /* desired (cas); size (reserve) */
    int rc;                 /* status returned */
    uint64_t out;           /* *val, *actual or *prev, when defined */
    uint64_t inv, res;      /* logical invocation and response times */
} lin_op;

typedef struct history {
    int lanes;                          /* threads, including final reads */
    int n[MAX_LANES];                   /* ops per lane, program order */
    lin_op op[MAX_LANES][MAX_PER_THREAD];
    int init[NKEYS];                    /* -1 absent, else the value */
} history;

static void hist_reset(history *h, int lanes) {
    h->lanes = lanes;
    for (int t = 0; t < MAX_LANES; t++)
        h->n[t] = 0;
    for (int k = 0; k < NKEYS; k++)
        h->init[k] = -1;
}

static lin_op *hist_add(history *h, int lane, int type, int key, uint64_t a,
                        uint64_t b) {
    ASSERT_LT(lane, MAX_LANES);
    ASSERT_LT(h->n[lane], MAX_PER_THREAD);
    lin_op *o = &h->op[lane][h->n[lane]++];
    memset(o, 0, sizeof *o);
    o->type = type;
    o->key = key;
    o->a = a;
    o->b = b;
    return o;
}

static void print_op(FILE *f, int lane, const lin_op *o) {
    char args[96];
    switch (o->type) {
    case L_GET: case L_DEL: case L_LAD:
        snprintf(args, sizeof args, "k%d", o->key);
        break;
    case L_PUT: case L_LOS: case L_SWAP:
        snprintf(args, sizeof args, "k%d, %llu", o->key,
                 (unsigned long long)o->a);
        break;
    case L_CAS:
        snprintf(args, sizeof args, "k%d, expected %llu, desired %llu",
                 o->key, (unsigned long long)o->a, (unsigned long long)o->b);
        break;
    case L_CAD:
        snprintf(args, sizeof args, "k%d, expected %llu", o->key,
                 (unsigned long long)o->a);
        break;
    case L_RESERVE:
        snprintf(args, sizeof args, "%llu", (unsigned long long)o->b);
        break;
    default:
        args[0] = '\0';
    }
    char res[64] = "";
    int has_out = (o->type == L_GET || o->type == L_SWAP || o->type == L_LAD)
                      ? o->rc == SM_OK
                      : o->type == L_LOS && (o->rc == SM_OK || o->rc == SM_EXISTS);
    if (has_out)
        snprintf(res, sizeof res, ", out %llu", (unsigned long long)o->out);
    fprintf(f, "  T%d  [%6llu, %6llu]  %s(%s) -> %s%s\n", lane,
            (unsigned long long)o->inv, (unsigned long long)o->res,
            op_names[o->type], args, sm_errname(o->rc), res);
}

/* The whole history in invocation order. */
static void print_history(FILE *f, const history *h) {
    fprintf(f, "  initial state:");
    for (int k = 0; k < NKEYS; k++) {
        if (h->init[k] < 0)
            fprintf(f, " k%d absent;", k);
        else
            fprintf(f, " k%d = %d;", k, h->init[k]);
    }
    fprintf(f, "\n  (T%d is the main thread's reads after the round)\n",
            h->lanes - 1);
    int idx[MAX_LANES] = {0};
    for (;;) {
        int best = -1;
        for (int t = 0; t < h->lanes; t++)
            if (idx[t] < h->n[t] &&
                (best < 0 || h->op[t][idx[t]].inv < h->op[best][idx[best]].inv))
                best = t;
        if (best < 0)
            break;
        print_op(f, best, &h->op[best][idx[best]]);
        idx[best]++;
    }
}

/* ---------------------------------------------------------------------
 * The sequential specification
 * ------------------------------------------------------------------- */
static unsigned cell_of(unsigned st, int key) {
    return (st >> (CELL_BITS * key)) & ((1u << CELL_BITS) - 1);
}

static unsigned with_cell(unsigned st, int key, unsigned cell) {
    unsigned mask = ((1u << CELL_BITS) - 1) << (CELL_BITS * key);
    return (st & ~mask) | (cell << (CELL_BITS * key));
}

static unsigned enc(uint64_t v) { return (unsigned)v + 1; }

/* Apply o to state st.  Returns 1 and *ns if the result the history
 * recorded is the one the sequential map gives, else 0. */
static int spec_apply(const lin_op *o, unsigned st, unsigned *ns) {
    if (o->type == L_CLEAR) {
        *ns = 0;
        return o->rc == SM_OK;
    }
    if (o->type == L_RESERVE) {
        *ns = st;
        return o->rc == SM_OK;
    }
    unsigned cell = cell_of(st, o->key);
    int present = cell != 0;
    uint64_t cur = present ? cell - 1 : 0;
    unsigned ncell = cell;
    int rc = SM_OK, check_out = 0;
    uint64_t out = 0;
    switch (o->type) {
    case L_GET:
        rc = present ? SM_OK : SM_NOTFOUND;
        out = cur;
        check_out = present;
        break;
    case L_PUT:
        ncell = enc(o->a);
        break;
    case L_LOS:
        if (present) {
            rc = SM_EXISTS;
            out = cur;
        } else {
            out = o->a;
            ncell = enc(o->a);
        }
        check_out = 1;
        break;
    case L_SWAP:
        rc = present ? SM_OK : SM_NOTFOUND;
        out = cur;
        check_out = present;
        ncell = enc(o->a);
        break;
    case L_CAS:
        if (!present)
            rc = SM_NOTFOUND;
        else if (cur == o->a)
            ncell = enc(o->b);
        else
            rc = SM_MISMATCH;
        break;
    case L_DEL:
        rc = present ? SM_OK : SM_NOTFOUND;
        ncell = 0;
        break;
    case L_LAD:
        rc = present ? SM_OK : SM_NOTFOUND;
        out = cur;
        check_out = present;
        ncell = 0;
        break;
    case L_CAD:
        if (!present)
            rc = SM_NOTFOUND;
        else if (cur == o->a)
            ncell = 0;
        else
            rc = SM_MISMATCH;
        break;
    default:
        FAIL("unknown op type %d", o->type);
    }
    if (o->rc != rc || (check_out && o->out != out))
        return 0;
    *ns = with_cell(st, o->key, ncell);
    return 1;
}

/* ---------------------------------------------------------------------
 * The checker
 * ------------------------------------------------------------------- */
typedef struct memo {
    uint64_t *keys;
    uint32_t *stamp;
    size_t cap, used;
    uint32_t cur;
} memo;

static void memo_init(memo *s, size_t cap) {
    s->cap = cap;
    s->used = 0;
    s->cur = 1;
    s->keys = (uint64_t *)calloc(cap, sizeof *s->keys);
    s->stamp = (uint32_t *)calloc(cap, sizeof *s->stamp);
    ASSERT_TRUE(s->keys && s->stamp);
}

static void memo_free(memo *s) {
    free(s->keys);
    free(s->stamp);
}

static void memo_clear(memo *s) {
    s->used = 0;
    if (++s->cur == 0) {
        memset(s->stamp, 0, s->cap * sizeof *s->stamp);
        s->cur = 1;
    }
}

static size_t memo_slot(const memo *s, uint64_t key) {
    size_t i = (size_t)tu_mix64(key) & (s->cap - 1);
    while (s->stamp[i] == s->cur && s->keys[i] != key)
        i = (i + 1) & (s->cap - 1);
    return i;
}

static int memo_has(const memo *s, uint64_t key) {
    return s->stamp[memo_slot(s, key)] == s->cur;
}

static void memo_add(memo *s, uint64_t key);

static void memo_grow(memo *s) {
    memo old = *s;
    memo_init(s, old.cap * 2);
    for (size_t i = 0; i < old.cap; i++)
        if (old.stamp[i] == old.cur)
            memo_add(s, old.keys[i]);
    memo_free(&old);
}

static void memo_add(memo *s, uint64_t key) {
    if ((s->used + 1) * 2 > s->cap)
        memo_grow(s);
    size_t i = memo_slot(s, key);
    if (s->stamp[i] != s->cur) {
        s->stamp[i] = s->cur;
        s->keys[i] = key;
        s->used++;
    }
}

typedef struct checker {
    const history *h;
    memo failed;
    int pos[MAX_LANES];
    int total, deepest;
    unsigned long long configs;
} checker;

/* Exact, not hashed: (MAX_LANES * POS_BITS + NKEYS * CELL_BITS) bits. */
_Static_assert(MAX_LANES * POS_BITS + NKEYS * CELL_BITS <= 64,
               "a configuration must fit in 64 bits");
_Static_assert(MAX_PER_THREAD < (1 << POS_BITS), "POS_BITS too small");

static uint64_t config_key(const checker *c, unsigned st) {
    uint64_t k = st;
    for (int t = 0; t < c->h->lanes; t++)
        k = (k << POS_BITS) | (uint64_t)c->pos[t];
    return k;
}

static int search(checker *c, unsigned st, int done) {
    if (done == c->total)
        return 1;
    if (done > c->deepest)
        c->deepest = done;
    uint64_t key = config_key(c, st);
    if (memo_has(&c->failed, key))
        return 0;
    c->configs++;
    const history *h = c->h;
    /* The earliest response among the pending operations: an operation
     * invoked after it cannot be linearized next. */
    uint64_t minres = UINT64_MAX;
    for (int t = 0; t < h->lanes; t++)
        if (c->pos[t] < h->n[t] && h->op[t][c->pos[t]].res < minres)
            minres = h->op[t][c->pos[t]].res;
    for (int t = 0; t < h->lanes; t++) {
        if (c->pos[t] >= h->n[t])
            continue;
        const lin_op *o = &h->op[t][c->pos[t]];
        if (o->inv > minres)
            continue;
        unsigned ns;
        if (!spec_apply(o, st, &ns))
            continue;
        c->pos[t]++;
        int ok = search(c, ns, done + 1);
        c->pos[t]--;
        if (ok)
            return 1;
    }
    memo_add(&c->failed, key);
    return 0;
}

/* 1 if h is linearizable; c->configs counts the configurations explored
 * and c->deepest the longest linearizable prefix found. */
static int check_history(checker *c, const history *h) {
    c->h = h;
    c->total = 0;
    c->deepest = 0;
    c->configs = 0;
    for (int t = 0; t < h->lanes; t++) {
        ASSERT_LE(h->n[t], MAX_PER_THREAD);
        c->pos[t] = 0;
        c->total += h->n[t];
        for (int i = 0; i < h->n[t]; i++) {
            const lin_op *o = &h->op[t][i];
            ASSERT_LT(o->inv, o->res);
            if (i > 0)
                ASSERT_LT(h->op[t][i - 1].res, o->inv);
        }
    }
    unsigned st = 0;
    for (int k = 0; k < NKEYS; k++)
        if (h->init[k] >= 0)
            st = with_cell(st, k, enc((uint64_t)h->init[k]));
    memo_clear(&c->failed);
    return search(c, st, 0);
}

/* ---------------------------------------------------------------------
 * Self-test of the checker
 * ------------------------------------------------------------------- */
static lin_op *hop(history *h, int lane, int type, int key, uint64_t a,
                   uint64_t b, int rc, uint64_t out, uint64_t inv,
                   uint64_t res) {
    lin_op *o = hist_add(h, lane, type, key, a, b);
    o->rc = rc;
    o->out = out;
    o->inv = inv;
    o->res = res;
    return o;
}

static void expect_verdict(checker *c, history *h, int want, const char *what) {
    int got = check_history(c, h);
    if (got != want) {
        fprintf(stderr, "checker self-test '%s': %s, expected %s\n", what,
                got ? "accepted" : "rejected", want ? "accept" : "reject");
        print_history(stderr, h);
        FAIL("the checker is wrong");
    }
}

/* Random linearizable history: operations applied to the sequential map
 * in order, the i-th at point 4i+2, each spread to an interval around its
 * point that stays between its thread's neighbours.  With spread 0 the
 * history is sequential. */
static void random_history(history *h, tu_rng *r, int threads, int nops,
                           int spread) {
    hist_reset(h, threads);
    unsigned st = 0;
    for (int k = 0; k < NKEYS; k++) {
        if (tu_rng_chance(r, 1, 2)) {
            h->init[k] = (int)tu_rng_below(r, NVALS);
            st = with_cell(st, k, enc((uint64_t)h->init[k]));
        }
    }
    int lane_of[4 * MAX_PER_THREAD];
    uint64_t point[4 * MAX_PER_THREAD];
    ASSERT_LE(nops, 4 * MAX_PER_THREAD);
    for (int i = 0; i < nops; i++) {
        int t = (int)tu_rng_below(r, (uint64_t)threads);
        if (h->n[t] >= MAX_PER_THREAD)
            t = (t + 1) % threads;
        int type = (int)tu_rng_below(r, L_NTYPES);
        if (type == L_CLEAR && tu_rng_chance(r, 2, 3))
            type = L_GET;
        int key = (int)tu_rng_below(r, NKEYS);
        uint64_t a = tu_rng_below(r, NVALS), b = tu_rng_below(r, NVALS);
        if (type == L_RESERVE)
            b = 100;
        lin_op *o = hist_add(h, t, type, key, a, b);
        /* compute the result the sequential map gives */
        unsigned cell = cell_of(st, key);
        int present = cell != 0;
        uint64_t cur = present ? cell - 1 : 0;
        o->rc = SM_OK;
        o->out = 0;
        switch (type) {
        case L_GET: o->rc = present ? SM_OK : SM_NOTFOUND; o->out = cur; break;
        case L_LOS:
            o->rc = present ? SM_EXISTS : SM_OK;
            o->out = present ? cur : a;
            break;
        case L_SWAP: o->rc = present ? SM_OK : SM_NOTFOUND; o->out = cur; break;
        case L_CAS: case L_CAD:
            o->rc = !present ? SM_NOTFOUND : cur == a ? SM_OK : SM_MISMATCH;
            break;
        case L_DEL: o->rc = present ? SM_OK : SM_NOTFOUND; break;
        case L_LAD: o->rc = present ? SM_OK : SM_NOTFOUND; o->out = cur; break;
        default: break;
        }
        unsigned ns;
        ASSERT_TRUE(spec_apply(o, st, &ns));
        st = ns;
        lane_of[i] = t;
        point[i] = 4 * (uint64_t)i + 2;
    }
    /* intervals: each thread's ops keep program order and real-time
     * separation; each contains its own point */
    int idx[MAX_LANES] = {0};
    uint64_t prev_res[MAX_LANES] = {0};
    for (int i = 0; i < nops; i++) {
        int t = lane_of[i];
        lin_op *o = &h->op[t][idx[t]++];
        uint64_t lo = prev_res[t] + 1, inv = point[i], res = point[i] + 1;
        if (spread > 0) {
            uint64_t room = point[i] - lo;
            uint64_t back = tu_rng_below(r, (uint64_t)spread * 4 + 1);
            inv = point[i] - (back < room ? back : room);
            /* the next op of this thread starts after res; reach at most
             * to just before the next op's point of this thread */
            uint64_t next = UINT64_MAX;
            for (int j = i + 1; j < nops; j++)
                if (lane_of[j] == t) {
                    next = point[j];
                    break;
                }
            uint64_t fwd = 1 + tu_rng_below(r, (uint64_t)spread * 4 + 1);
            res = point[i] + fwd;
            if (next != UINT64_MAX && res >= next - 1)
                res = next - 2;
            if (res <= point[i])
                res = point[i] + 1;
        }
        o->inv = inv;
        o->res = res;
        prev_res[t] = res;
    }
}

/* Change one observable result of a sequential history; 0 if none. */
static int mutate(history *h, tu_rng *r) {
    for (int tries = 0; tries < 50; tries++) {
        int t = (int)tu_rng_below(r, (uint64_t)h->lanes);
        if (h->n[t] == 0)
            continue;
        lin_op *o = &h->op[t][tu_rng_below(r, (uint64_t)h->n[t])];
        int out_used = ((o->type == L_GET || o->type == L_SWAP ||
                         o->type == L_LAD) && o->rc == SM_OK) ||
                       o->type == L_LOS;
        if (out_used && tu_rng_chance(r, 1, 2)) {
            o->out = (o->out + 1 + tu_rng_below(r, NVALS - 1)) % NVALS;
            return 1;
        }
        static const int statuses[] = {SM_OK, SM_NOTFOUND, SM_EXISTS,
                                       SM_MISMATCH};
        int s = statuses[tu_rng_below(r, 4)];
        if (s != o->rc) {
            o->rc = s;
            return 1;
        }
    }
    return 0;
}

static void self_test(uint64_t seed) {
    checker c;
    memo_init(&c.failed, 1 << 12);
    history *h = (history *)malloc(sizeof *h);
    ASSERT_TRUE(h != NULL);
    int rejected = 0, accepted = 0;

    /* get returns a value nobody wrote */
    hist_reset(h, 2);
    hop(h, 0, L_PUT, 0, 1, 0, SM_OK, 0, 1, 2);
    hop(h, 1, L_GET, 0, 0, 0, SM_OK, 3, 3, 4);
    expect_verdict(&c, h, 0, "get of a value never written"), rejected++;

    /* a get after a completed clear sees the old value */
    hist_reset(h, 2);
    h->init[0] = 1;
    hop(h, 0, L_CLEAR, 0, 0, 0, SM_OK, 0, 1, 2);
    hop(h, 1, L_GET, 0, 0, 0, SM_OK, 1, 3, 4);
    expect_verdict(&c, h, 0, "old value after a completed clear"), rejected++;

    /* the same with the get concurrent with the clear: fine */
    hist_reset(h, 2);
    h->init[0] = 1;
    hop(h, 0, L_CLEAR, 0, 0, 0, SM_OK, 0, 1, 4);
    hop(h, 1, L_GET, 0, 0, 0, SM_OK, 1, 2, 3);
    hop(h, 1, L_GET, 0, 0, 0, SM_NOTFOUND, 0, 5, 6);
    expect_verdict(&c, h, 1, "old value during a clear"), accepted++;

    /* two concurrent load_or_store on an absent key both stored */
    hist_reset(h, 2);
    hop(h, 0, L_LOS, 0, 1, 0, SM_OK, 1, 1, 4);
    hop(h, 1, L_LOS, 0, 2, 0, SM_OK, 2, 2, 3);
    expect_verdict(&c, h, 0, "two load_or_store both stored"), rejected++;

    /* ... one stored, the other saw it: fine */
    hist_reset(h, 2);
    hop(h, 0, L_LOS, 0, 1, 0, SM_OK, 1, 1, 4);
    hop(h, 1, L_LOS, 0, 2, 0, SM_EXISTS, 1, 2, 3);
    expect_verdict(&c, h, 1, "load_or_store stored once"), accepted++;

    /* a clear seen by one key but not by another (the clear spans both
     * gets, yet k0 reads as cleared before k1 reads as not cleared) */
    hist_reset(h, 2);
    h->init[0] = 1;
    h->init[1] = 2;
    hop(h, 0, L_CLEAR, 0, 0, 0, SM_OK, 0, 1, 10);
    hop(h, 1, L_GET, 0, 0, 0, SM_NOTFOUND, 0, 2, 3);
    hop(h, 1, L_GET, 1, 0, 0, SM_OK, 2, 4, 5);
    expect_verdict(&c, h, 0, "clear not atomic across keys"), rejected++;

    /* ... the other order is fine */
    hist_reset(h, 2);
    h->init[0] = 1;
    h->init[1] = 2;
    hop(h, 0, L_CLEAR, 0, 0, 0, SM_OK, 0, 1, 10);
    hop(h, 1, L_GET, 1, 0, 0, SM_OK, 2, 2, 3);
    hop(h, 1, L_GET, 0, 0, 0, SM_NOTFOUND, 0, 4, 5);
    expect_verdict(&c, h, 1, "clear between two gets"), accepted++;

    /* a stale read after a newer write completed */
    hist_reset(h, 2);
    hop(h, 0, L_PUT, 0, 1, 0, SM_OK, 0, 1, 2);
    hop(h, 0, L_PUT, 0, 2, 0, SM_OK, 0, 3, 4);
    hop(h, 1, L_GET, 0, 0, 0, SM_OK, 1, 5, 6);
    expect_verdict(&c, h, 0, "stale read"), rejected++;

    /* reads concurrent with a put may see either side */
    hist_reset(h, 3);
    hop(h, 0, L_PUT, 0, 1, 0, SM_OK, 0, 1, 6);
    hop(h, 1, L_GET, 0, 0, 0, SM_NOTFOUND, 0, 2, 3);
    hop(h, 2, L_GET, 0, 0, 0, SM_OK, 1, 2, 3);
    hop(h, 1, L_GET, 0, 0, 0, SM_OK, 1, 4, 5);
    expect_verdict(&c, h, 1, "reads around a put"), accepted++;

    /* ... but once a read saw the new value, a later read may not see
     * the old one */
    hist_reset(h, 3);
    hop(h, 0, L_PUT, 0, 1, 0, SM_OK, 0, 1, 10);
    hop(h, 1, L_GET, 0, 0, 0, SM_OK, 1, 2, 3);
    hop(h, 2, L_GET, 0, 0, 0, SM_NOTFOUND, 0, 4, 5);
    expect_verdict(&c, h, 0, "new-old inversion"), rejected++;

    /* cas succeeds against a value the key does not hold */
    hist_reset(h, 1);
    h->init[2] = 3;
    hop(h, 0, L_CAS, 2, 1, 0, SM_OK, 0, 1, 2);
    expect_verdict(&c, h, 0, "cas against the wrong value"), rejected++;

    /* two load_and_delete both get the one value */
    hist_reset(h, 2);
    h->init[3] = 2;
    hop(h, 0, L_LAD, 3, 0, 0, SM_OK, 2, 1, 4);
    hop(h, 1, L_LAD, 3, 0, 0, SM_OK, 2, 2, 3);
    expect_verdict(&c, h, 0, "value deleted twice"), rejected++;

    /* swap chain: each swap sees the value before it */
    hist_reset(h, 3);
    h->init[1] = 0;
    hop(h, 0, L_SWAP, 1, 1, 0, SM_OK, 2, 1, 9);
    hop(h, 1, L_SWAP, 1, 2, 0, SM_OK, 0, 2, 8);
    hop(h, 2, L_SWAP, 1, 3, 0, SM_OK, 1, 3, 7);
    hop(h, 2, L_GET, 1, 0, 0, SM_OK, 3, 10, 11);
    expect_verdict(&c, h, 1, "swap chain"), accepted++;

    /* a successful cad, then a get still sees the value */
    hist_reset(h, 2);
    h->init[0] = 2;
    hop(h, 0, L_CAD, 0, 2, 0, SM_OK, 0, 1, 2);
    hop(h, 1, L_GET, 0, 0, 0, SM_OK, 2, 3, 4);
    expect_verdict(&c, h, 0, "value after cad"), rejected++;

    /* random linearizable histories, concurrent and sequential, and
     * sequential ones with one result changed */
    tu_rng r = tu_rng_make(seed ^ 0x5e1f7e57ull);
    int random_ok = 0, random_bad = 0;
    for (int i = 0; i < 400; i++) {
        int threads = 1 + (int)tu_rng_below(&r, 4);
        int nops = 4 + (int)tu_rng_below(&r, 56);
        int spread = i % 3 == 0 ? 0 : 1 + (int)tu_rng_below(&r, 12);
        random_history(h, &r, threads, nops, spread);
        tu_context("random self-test history %d (spread %d)", i, spread);
        expect_verdict(&c, h, 1, "random linearizable history");
        random_ok++;
        if (spread == 0 && mutate(h, &r)) {
            expect_verdict(&c, h, 0, "sequential history with a wrong result");
            random_bad++;
        }
    }
    tu_context("%s", "");
    printf("  checker self-test: %d hand-made histories rejected, %d "
           "accepted; %d random linearizable accepted, %d altered "
           "sequential rejected\n", rejected, accepted, random_ok, random_bad);
    fflush(stdout);
    ASSERT_GT(random_bad, 50);
    memo_free(&c.failed);
    free(h);
}

/* ---------------------------------------------------------------------
 * Running the library
 * ------------------------------------------------------------------- */
static const uint64_t u64_keys[NKEYS] = {0, 1, UINT64_MAX,
                                         0x9e3779b97f4a7c15ull};
static const char long_key[] =
    "a byte-string key long enough to need more than one word of blob";
static const unsigned char nul_key[3] = {'a', 0, 'b'};

static void byte_key(int k, const void **p, size_t *len) {
    switch (k) {
    case 0: *p = NULL; *len = 0; break;                 /* the empty key */
    case 1: *p = "a"; *len = 1; break;
    case 2: *p = nul_key; *len = sizeof nul_key; break;
    default: *p = long_key; *len = sizeof long_key - 1; break;
    }
}

typedef struct shared {
    sm_map *m;
    sm_key_kind kind;
    history *h;
    int threads;
    atomic_ullong clock;
    atomic_int gen;
    atomic_int arrived;         /* start barrier of the round */
    atomic_int done;
    atomic_int quit;
    pthread_mutex_t mu;         /* the main thread sleeps until done */
    pthread_cond_t cv;
    atomic_uint reserve_level;
} shared;

static int run_op(shared *sh, lin_op *o) {
    sm_map *m = sh->m;
    uint64_t out = 0;
    int rc;
    if (o->type == L_CLEAR)
        return sm_clear(m);
    if (o->type == L_RESERVE)
        return sm_reserve(m, (size_t)o->b);
    if (sh->kind == SM_KEY_U64) {
        uint64_t k = u64_keys[o->key];
        switch (o->type) {
        case L_GET: rc = sm_get_u64(m, k, &out); break;
        case L_PUT: rc = sm_put_u64(m, k, o->a); break;
        case L_LOS: rc = sm_load_or_store_u64(m, k, o->a, &out); break;
        case L_SWAP: rc = sm_swap_u64(m, k, o->a, &out); break;
        case L_CAS: rc = sm_cas_u64(m, k, o->a, o->b); break;
        case L_DEL: rc = sm_delete_u64(m, k); break;
        case L_LAD: rc = sm_load_and_delete_u64(m, k, &out); break;
        case L_CAD: rc = sm_cad_u64(m, k, o->a); break;
        default: FAIL("bad op %d", o->type);
        }
    } else {
        const void *p;
        size_t len;
        byte_key(o->key, &p, &len);
        switch (o->type) {
        case L_GET: rc = sm_get(m, p, len, &out); break;
        case L_PUT: rc = sm_put(m, p, len, o->a); break;
        case L_LOS: rc = sm_load_or_store(m, p, len, o->a, &out); break;
        case L_SWAP: rc = sm_swap(m, p, len, o->a, &out); break;
        case L_CAS: rc = sm_cas(m, p, len, o->a, o->b); break;
        case L_DEL: rc = sm_delete(m, p, len); break;
        case L_LAD: rc = sm_load_and_delete(m, p, len, &out); break;
        case L_CAD: rc = sm_cad(m, p, len, o->a); break;
        default: FAIL("bad op %d", o->type);
        }
    }
    o->out = out;
    return rc;
}

/* One timed call: invocation and response from the shared clock. */
static void timed_op(shared *sh, lin_op *o) {
    o->inv = atomic_fetch_add(&sh->clock, 1);
    o->rc = run_op(sh, o);
    o->res = atomic_fetch_add(&sh->clock, 1);
}

#ifndef SPINS_PER_YIELD
#define SPINS_PER_YIELD 4096u
#endif

typedef struct worker {
    pthread_t th;
    int id;
    shared *sh;
    tu_rng r;
} worker;

/* Spin for a while between yields: a thread that holds a core is then
 * usually spinning, not in the kernel, when the round starts. */
static void spin_wait_yield(unsigned *spins) {
    if (++*spins % SPINS_PER_YIELD == 0)
        sched_yield();
}

static void *worker_main(void *p) {
    worker *w = (worker *)p;
    shared *sh = w->sh;
    int seen = 0;
    for (;;) {
        unsigned spins = 0;
        int g;
        while ((g = atomic_load(&sh->gen)) == seen) {
            if (atomic_load(&sh->quit))
                return NULL;
            spin_wait_yield(&spins);
        }
        seen = g;
        /* start together: spin until every worker has arrived, so that
         * the threads that hold a core run their ops at the same time */
        atomic_fetch_add(&sh->arrived, 1);
        spins = 0;
        while (atomic_load(&sh->arrived) < sh->threads)
            spin_wait_yield(&spins);
        history *h = sh->h;
        for (int i = 0; i < h->n[w->id]; i++) {
            lin_op *o = &h->op[w->id][i];
            timed_op(sh, o);
            /* vary the interleavings a little */
            if (tu_rng_chance(&w->r, 1, 4)) {
                volatile unsigned sink = 0;
                unsigned n = (unsigned)tu_rng_below(&w->r, 200);
                for (unsigned k = 0; k < n; k++)
                    sink += k;
                (void)sink;
            }
        }
        if (atomic_fetch_add(&sh->done, 1) + 1 == sh->threads) {
            pthread_mutex_lock(&sh->mu);
            pthread_cond_signal(&sh->cv);
            pthread_mutex_unlock(&sh->mu);
        }
    }
}

static int random_type(tu_rng *r) {
    /* weights: get 22, put 12, los 11, swap 10, cas 13, del 8, lad 8,
     * cad 10, clear 5, reserve 1 */
    static const int w[L_NTYPES] = {22, 12, 11, 10, 13, 8, 8, 10, 5, 1};
    int x = (int)tu_rng_below(r, 100);
    for (int t = 0; t < L_NTYPES; t++) {
        if (x < w[t])
            return t;
        x -= w[t];
    }
    return L_GET;
}

static sm_map *new_map(sm_key_kind kind, tu_rng *r) {
    sm_options o;
    sm_options_init(&o);
    o.key_kind = kind;
    o.initial_capacity = tu_rng_chance(r, 1, 2) ? 0 : (size_t)tu_rng_below(r, 64);
    sm_map *m = NULL;
    ASSERT_OK(sm_create(&o, &m));
    return m;
}

/* Set the initial state of the next round (no other thread runs). */
static void set_initial(shared *sh, history *h, tu_rng *r) {
    if (tu_rng_chance(r, 1, 3))
        ASSERT_OK(sm_clear(sh->m));
    for (int k = 0; k < NKEYS; k++) {
        lin_op o;
        memset(&o, 0, sizeof o);
        o.key = k;
        if (tu_rng_chance(r, 2, 3)) {
            h->init[k] = (int)tu_rng_below(r, NVALS);
            o.type = L_PUT;
            o.a = (uint64_t)h->init[k];
            ASSERT_OK(run_op(sh, &o));
        } else {
            h->init[k] = -1;
            o.type = L_DEL;
            ASSERT_STATUS2(run_op(sh, &o), SM_OK, SM_NOTFOUND);
        }
    }
}

static int overlapping_ops(const history *h) {
    int n = 0;
    for (int t = 0; t < h->lanes; t++)
        for (int i = 0; i < h->n[t]; i++) {
            const lin_op *a = &h->op[t][i];
            int hit = 0;
            for (int u = 0; u < h->lanes && !hit; u++) {
                if (u == t)
                    continue;
                for (int j = 0; j < h->n[u] && !hit; j++) {
                    const lin_op *b = &h->op[u][j];
                    hit = a->inv < b->res && b->inv < a->res;
                }
            }
            n += hit;
        }
    return n;
}

int main(int argc, char **argv) {
    tu_args a = {4, 20000, 48, 0, 0x11ea7ull, 0};
    tu_parse_args(argc, argv, &a);
    if (a.threads > MAX_THREADS)
        a.threads = MAX_THREADS;
    long long histories = tu_scaled(a.n, 50);
    int per_thread = (int)(a.ops / a.threads);
    if (per_thread < 1)
        per_thread = 1;
    if (per_thread > MAX_PER_THREAD)
        per_thread = MAX_PER_THREAD;
    printf("stress_linearizability (scale %.3g), seed %llu: %lld histories, "
           "%d threads x %d ops, %d keys, values 0..%d\n", tu_scale(), a.seed,
           histories, a.threads, per_thread, NKEYS, NVALS - 1);
    fflush(stdout);

    self_test(a.seed);

    shared sh;
    memset(&sh, 0, sizeof sh);
    sh.threads = a.threads;
    sh.h = (history *)malloc(sizeof *sh.h);
    ASSERT_TRUE(sh.h != NULL);
    atomic_init(&sh.clock, 1);
    atomic_init(&sh.gen, 0);
    atomic_init(&sh.arrived, 0);
    atomic_init(&sh.done, 0);
    atomic_init(&sh.quit, 0);
    pthread_mutex_init(&sh.mu, NULL);
    pthread_cond_init(&sh.cv, NULL);
    atomic_init(&sh.reserve_level, 0);
    tu_rng r = tu_rng_make(tu_mix64(a.seed));

    worker ws[MAX_THREADS];
    for (int t = 0; t < a.threads; t++) {
        ws[t].id = t;
        ws[t].sh = &sh;
        ws[t].r = tu_rng_make(tu_mix64(a.seed + 77 + (uint64_t)t));
        tu_thread_start(&ws[t].th, worker_main, &ws[t]);
    }

    checker c;
    memo_init(&c.failed, 1 << 14);
    double deadline = a.seconds > 0 ? tu_now_s() + a.seconds : 0;
    unsigned long long ops_checked = 0, overlapped = 0, configs = 0;
    unsigned long long per_kind[2] = {0, 0}, clears = 0, reserves = 0;
    long long done_h = 0;
    for (long long hn = 0; hn < histories; hn++) {
        if (deadline > 0 && tu_now_s() > deadline)
            break;
        if (hn % 16 == 0) {
            if (sh.m)
                ASSERT_OK(sm_destroy(sh.m));
            sh.kind = (hn / 16) % 2 ? SM_KEY_BYTES : SM_KEY_U64;
            sh.m = new_map(sh.kind, &r);
            atomic_store(&sh.reserve_level, 0);
        }
        history *h = sh.h;
        hist_reset(h, a.threads + 1);
        set_initial(&sh, h, &r);
        for (int t = 0; t < a.threads; t++) {
            for (int i = 0; i < per_thread; i++) {
                int type = random_type(&r);
                int key = (int)tu_rng_below(&r, NKEYS);
                uint64_t va = tu_rng_below(&r, NVALS);
                uint64_t vb = tu_rng_below(&r, NVALS);
                if (type == L_RESERVE) {
                    unsigned lv = atomic_fetch_add(&sh.reserve_level, 1);
                    vb = (uint64_t)16 << (lv % 8);   /* up to 2048 */
                    reserves++;
                }
                clears += type == L_CLEAR;
                hist_add(h, t, type, key, va, vb);
            }
        }
        atomic_store(&sh.done, 0);
        atomic_store(&sh.arrived, 0);
        atomic_fetch_add(&sh.gen, 1);
        pthread_mutex_lock(&sh.mu);
        while (atomic_load(&sh.done) < a.threads)
            pthread_cond_wait(&sh.cv, &sh.mu);
        pthread_mutex_unlock(&sh.mu);
        /* the main thread reads every key after the round */
        for (int k = 0; k < NKEYS; k++) {
            lin_op *o = hist_add(h, a.threads, L_GET, k, 0, 0);
            timed_op(&sh, o);
        }
        tu_context("history %lld (%s keys)", hn, tu_kind_name(sh.kind));
        if (!check_history(&c, h)) {
            fprintf(stderr,
                    "history %lld on a %s-key map is NOT linearizable "
                    "(longest linearizable prefix found: %d of %d ops):\n",
                    hn, tu_kind_name(sh.kind), c.deepest, c.total);
            print_history(stderr, h);
            FAIL("non-linearizable history");
        }
        for (int t = 0; t < h->lanes; t++)
            ops_checked += (unsigned long long)h->n[t];
        overlapped += (unsigned long long)overlapping_ops(h);
        configs += c.configs;
        per_kind[sh.kind == SM_KEY_BYTES]++;
        done_h++;
    }
    tu_context("%s", "");
    atomic_store(&sh.quit, 1);
    for (int t = 0; t < a.threads; t++)
        tu_thread_join(ws[t].th);
    if (sh.m)
        ASSERT_OK(sm_destroy(sh.m));
    memo_free(&c.failed);
    pthread_mutex_destroy(&sh.mu);
    pthread_cond_destroy(&sh.cv);
    free(sh.h);

    printf("  histories checked: %lld (%llu u64-key, %llu byte-key)\n",
           done_h, per_kind[0], per_kind[1]);
    printf("  ops checked: %llu (%llu overlapped another thread's op; %llu "
           "clears, %llu reserves issued)\n", ops_checked, overlapped, clears,
           reserves);
    printf("  search configurations explored: %llu\n", configs);
    ASSERT_GT(done_h, 0);
    printf("stress_linearizability: all passed\n");
    return 0;
}
