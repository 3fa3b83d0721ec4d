// ctest-args: --threads 4 --n 20000 --ops 12
/*
 * stress_load_or_store.c — exactly one winner per key.
 *
 * In each round, --threads threads race load_or_store over the same --n
 * keys (in different orders), each with its own value.  Per key exactly
 * one call returns SM_OK (with *actual its own value) and every other call
 * returns SM_EXISTS with *actual the winner's value; the map then holds
 * the winner's value for every key.  Between rounds the map is cleared
 * (with no other call running).  After sm_destroy the removal hook has
 * seen each round's winning values once: SM_REMOVED_CLEAR for all rounds
 * but the last, SM_REMOVED_DESTROY for the last.  --ops is the number of
 * rounds.  Both key kinds.
 *
 *   stress_load_or_store [--threads N] [--n KEYS] [--ops ROUNDS]
 *                        [--seconds CAP] [--seed S]
 *
 * n and the rounds are multiplied by SM_TEST_SCALE; --seconds (default
 * none) makes the round that starts after it the last.
 */
#include "testutil.h"
#include "testkeys.h"

typedef struct shared {
    tk_map t;
    int nthreads;
    uint64_t nkeys;
    int rounds;
    int round;                 /* written by main between barriers */
    tu_barrier go, done;
    uint64_t seed;
} shared;

typedef struct worker {
    pthread_t th;
    int id;
    shared *sh;
    unsigned char *won;        /* per key, this round */
    uint64_t *actual;          /* per key, this round */
} worker;

static uint64_t value_of(int round, int tid) {
    return ((uint64_t)(round + 1) << 32) | ((uint64_t)tid << 8) | 0x5a;
}

static void *worker_main(void *p) {
    worker *w = (worker *)p;
    shared *sh = w->sh;
    const uint64_t n = sh->nkeys;
    for (;;) {
        tu_barrier_wait(&sh->go);
        int round = sh->round;
        if (round >= sh->rounds)
            break;
        const uint64_t mine = value_of(round, w->id);
        /* each thread its own order: a rotation, forwards or backwards */
        uint64_t start = tu_mix64(sh->seed + (uint64_t)round * 131 + (uint64_t)w->id) % n;
        int back = (w->id + round) & 1;
        for (uint64_t j = 0; j < n; j++) {
            uint64_t k = back ? (start + n - j) % n : (start + j) % n;
            uint64_t a = 0;
            int s = tk_los(&sh->t, k, mine, &a);
            if (s == SM_OK) {
                ASSERT_EQ(a, mine);
                w->won[k] = 1;
            } else {
                ASSERT_STATUS(s, SM_EXISTS);
                ASSERT_NE(a, mine);
                w->won[k] = 0;
            }
            w->actual[k] = a;
        }
        tu_barrier_wait(&sh->done);
    }
    return NULL;
}

static void run(sm_key_kind kind, int nthreads, uint64_t nkeys, int rounds,
                uint64_t seed, double seconds) {
    double deadline = seconds > 0 ? tu_now_s() + seconds : 0;
    printf("  %s keys: %d threads, %llu keys, %d rounds\n", tu_kind_name(kind),
           nthreads, (unsigned long long)nkeys, rounds);
    fflush(stdout);
    tu_hooks hk;
    tu_hooks_init(&hk);
    tu_hook_expect want;
    memset(&want, 0, sizeof want);
    sm_options o;
    sm_options_init(&o);
    o.on_remove = tu_hooks_fn;
    o.on_remove_ctx = &hk;
    shared sh;
    sh.t = tk_create(kind, &o);
    sh.nthreads = nthreads;
    sh.nkeys = nkeys;
    sh.rounds = rounds;
    sh.round = 0;
    sh.seed = seed;
    tu_barrier_init(&sh.go, (unsigned)nthreads + 1);
    tu_barrier_init(&sh.done, (unsigned)nthreads + 1);
    worker *ws = (worker *)calloc((size_t)nthreads, sizeof *ws);
    ASSERT_TRUE(ws != NULL);
    for (int i = 0; i < nthreads; i++) {
        ws[i].id = i;
        ws[i].sh = &sh;
        ws[i].won = (unsigned char *)calloc(nkeys, 1);
        ws[i].actual = (uint64_t *)calloc(nkeys, sizeof(uint64_t));
        ASSERT_TRUE(ws[i].won && ws[i].actual);
        tu_thread_start(&ws[i].th, worker_main, &ws[i]);
    }
    uint64_t *wins = (uint64_t *)calloc((size_t)nthreads, sizeof(uint64_t));
    ASSERT_TRUE(wins != NULL);
    for (int round = 0; round < rounds; round++) {
        if (round > 0 && deadline > 0 && tu_now_s() > deadline)
            rounds = sh.rounds = round + 1;   /* this one is the last */
        sh.round = round;
        tu_barrier_wait(&sh.go);       /* the race */
        tu_barrier_wait(&sh.done);
        for (uint64_t k = 0; k < nkeys; k++) {
            tu_context("%s keys, round %d, key index %llu", tu_kind_name(kind),
                       round, (unsigned long long)k);
            int winner = -1;
            for (int i = 0; i < nthreads; i++)
                if (ws[i].won[k]) {
                    if (winner >= 0)
                        FAIL("threads %d and %d both stored the key", winner, i);
                    winner = i;
                }
            if (winner < 0)
                FAIL("no thread stored the key");
            wins[winner]++;
            uint64_t wv = value_of(round, winner);
            for (int i = 0; i < nthreads; i++)
                ASSERT_EQ(ws[i].actual[k], wv);
            uint64_t v = 0;
            ASSERT_OK(tk_get(&sh.t, k, &v));
            ASSERT_EQ(v, wv);
            tu_expect_hook(&want, wv, round + 1 < rounds ? SM_REMOVED_CLEAR
                                                         : SM_REMOVED_DESTROY);
        }
        tu_context("%s keys, round %d", tu_kind_name(kind), round);
        ASSERT_EQ(sm_len(sh.t.m), nkeys);
        if (round + 1 < rounds) {
            ASSERT_OK(sm_clear(sh.t.m));
            ASSERT_EQ(sm_len(sh.t.m), 0);
            uint64_t v;
            ASSERT_STATUS(tk_get(&sh.t, 0, &v), SM_NOTFOUND);
            ASSERT_STATUS(tk_get(&sh.t, nkeys - 1, &v), SM_NOTFOUND);
        }
    }
    sh.round = rounds;
    tu_barrier_wait(&sh.go);           /* release the threads */
    for (int i = 0; i < nthreads; i++)
        tu_thread_join(ws[i].th);
    ASSERT_OK(sm_destroy(sh.t.m));
    ASSERT_HOOKS_MATCH(&hk, &want);
    printf("    ok; keys won per thread:");
    for (int i = 0; i < nthreads; i++)
        printf(" %llu", (unsigned long long)wins[i]);
    printf("\n");
    fflush(stdout);
    for (int i = 0; i < nthreads; i++) {
        free(ws[i].won);
        free(ws[i].actual);
    }
    free(ws);
    free(wins);
    tu_barrier_destroy(&sh.go);
    tu_barrier_destroy(&sh.done);
}

int main(int argc, char **argv) {
    tu_args a = {4, 20000, 12, 0, 0x105ull, 0};
    tu_parse_args(argc, argv, &a);
    uint64_t n = (uint64_t)tu_scaled(a.n, 1000);
    int rounds = (int)tu_scaled(a.ops, 3);
    printf("stress_load_or_store (scale %.3g), seed %llu\n", tu_scale(), a.seed);
    run(SM_KEY_U64, a.threads, n, rounds, a.seed, a.seconds);
    run(SM_KEY_BYTES, a.threads, n, rounds, a.seed + 1, a.seconds);
    printf("stress_load_or_store: all passed\n");
    return 0;
}
