/*
 * demo.c — clear a map of 1,000,000 entries while two threads read it.
 *
 * The main thread inserts N u64 keys while two reader threads look up
 * random keys; then, with the readers still running, it calls sm_clear and
 * reports how long the call took, sm_len before and after, and the worst
 * lookup latency the readers saw around the clear.  Every lookup is timed
 * on its own with CLOCK_MONOTONIC, so each latency includes the cost of
 * reading the clock (tens of nanoseconds).
 *
 * Exits 0 when the counts are right and no reader saw a wrong value.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <stillmap.h>

enum { N = 1000000, READERS = 2 };

/* What the main thread is doing; each lookup is charged to the phase that
 * was current when it started. */
enum phase { PH_INSERT, PH_FULL, PH_CLEAR, PH_STOP, PH_COUNT = PH_STOP };

/* Around the clear: readers are timed from this long before the call... */
#define BEFORE_CLEAR_MS 10
/* ...to this long after it (the reclaimer frees the old entries meanwhile). */
#define AFTER_CLEAR_MS 50
/* The brief's bar for a reader's worst lookup around a clear. */
#define SLOW_NS 100000u

static _Atomic int phase = PH_INSERT;

struct reader {
    pthread_t tid;
    sm_map *m;
    uint64_t rng;
    uint64_t lookups[PH_COUNT];
    uint64_t worst_ns[PH_COUNT];
    uint64_t slow[PH_COUNT]; /* lookups that took longer than SLOW_NS */
    uint64_t wrong; /* hits whose value is not the one stored */
};

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(unsigned ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static uint64_t value_of(uint64_t key) { return key * 2654435761u + 1; }

static uint64_t next_rand(uint64_t *s) { /* xorshift64 */
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void *reader_main(void *arg) {
    struct reader *r = arg;
    int ph;
    while ((ph = atomic_load_explicit(&phase, memory_order_acquire)) != PH_STOP) {
        uint64_t key = next_rand(&r->rng) % N, v = 0;
        uint64_t t0 = now_ns();
        int rc = sm_get_u64(r->m, key, &v);
        uint64_t dt = now_ns() - t0;
        r->lookups[ph]++;
        if (dt > r->worst_ns[ph]) r->worst_ns[ph] = dt;
        if (dt > SLOW_NS) r->slow[ph]++;
        if (rc == SM_OK ? v != value_of(key) : rc != SM_NOTFOUND) r->wrong++;
    }
    return NULL;
}

static const char *fmt_ns(char *buf, size_t size, uint64_t ns) {
    if (ns < 1000)
        snprintf(buf, size, "%llu ns", (unsigned long long)ns);
    else if (ns < 1000000)
        snprintf(buf, size, "%.1f us", ns / 1e3);
    else if (ns < 1000000000)
        snprintf(buf, size, "%.1f ms", ns / 1e6);
    else
        snprintf(buf, size, "%.2f s", ns / 1e9);
    return buf;
}

static void row(const char *what, const char *value, const char *note) {
    printf("  %-44s %12s  %s\n", what, value, note ? note : "");
}

int main(void) {
    sm_map *m;
    int rc = sm_create(NULL, &m);
    if (rc != SM_OK) {
        fprintf(stderr, "sm_create: %s\n", sm_strerror(rc));
        return 1;
    }

    struct reader rd[READERS];
    memset(rd, 0, sizeof rd);
    for (int i = 0; i < READERS; i++) {
        rd[i].m = m;
        rd[i].rng = 0x9e3779b97f4a7c15u * (uint64_t)(i + 1);
        if (pthread_create(&rd[i].tid, NULL, reader_main, &rd[i]) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            return 1;
        }
    }

    /* 1. Insert N keys while the readers look them up. */
    uint64_t worst_put = 0, t_ins = now_ns();
    int put_errors = 0;
    for (uint64_t k = 0; k < N; k++) {
        uint64_t t0 = now_ns();
        if (sm_put_u64(m, k, value_of(k)) != SM_OK) put_errors++;
        uint64_t dt = now_ns() - t0;
        if (dt > worst_put) worst_put = dt;
    }
    t_ins = now_ns() - t_ins;

    /* 2. Full map, readers hitting. */
    atomic_store_explicit(&phase, PH_FULL, memory_order_release);
    sleep_ms(20);
    size_t len_before = sm_len(m);

    /* 3. Clear while the readers run. */
    atomic_store_explicit(&phase, PH_CLEAR, memory_order_release);
    sleep_ms(BEFORE_CLEAR_MS);
    uint64_t t0 = now_ns();
    int clear_rc = sm_clear(m);
    uint64_t t_clear = now_ns() - t0;
    size_t len_after = sm_len(m);
    sleep_ms(AFTER_CLEAR_MS);

    atomic_store_explicit(&phase, PH_STOP, memory_order_release);
    uint64_t lookups[PH_COUNT] = {0}, worst[PH_COUNT] = {0}, slow[PH_COUNT] = {0};
    uint64_t wrong = 0;
    for (int i = 0; i < READERS; i++) {
        pthread_join(rd[i].tid, NULL);
        for (int p = 0; p < PH_COUNT; p++) {
            lookups[p] += rd[i].lookups[p];
            slow[p] += rd[i].slow[p];
            if (rd[i].worst_ns[p] > worst[p]) worst[p] = rd[i].worst_ns[p];
        }
        wrong += rd[i].wrong;
    }
    size_t len_end = sm_len(m);
    int destroy_rc = sm_destroy(m);

    char a[32], b[64];
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    printf("stillmap %s demo: sm_clear on a map of %d u64 keys while %d threads read it"
           " (%ld CPUs online)\n\n",
           STILLMAP_VERSION_STRING, N, READERS, cpus);
    printf("  %-44s %12s  %s\n", "measure", "value", "note");
    printf("  %-44s %12s  %s\n", "--------------------------------------------",
           "------------", "----");
    snprintf(b, sizeof b, "%.2f M puts/s, each put timed",
             t_ins ? N / (t_ins / 1e9) / 1e6 : 0.0);
    row("insert 1,000,000 keys (main thread)", fmt_ns(a, sizeof a, t_ins), b);
    row("worst single sm_put_u64", fmt_ns(a, sizeof a, worst_put), NULL);
    snprintf(b, sizeof b, "%llu lookups", (unsigned long long)lookups[PH_INSERT]);
    row("worst reader lookup while inserting", fmt_ns(a, sizeof a, worst[PH_INSERT]), b);
    snprintf(a, sizeof a, "%zu", len_before);
    row("sm_len before sm_clear", a, "entries");
    snprintf(b, sizeof b, "returned %s", sm_errname(clear_rc));
    row("sm_clear call", fmt_ns(a, sizeof a, t_clear), b);
    snprintf(a, sizeof a, "%zu", len_after);
    row("sm_len right after sm_clear", a, "entries");
    snprintf(b, sizeof b, "%d ms before to %d ms after; %llu lookups",
             BEFORE_CLEAR_MS, AFTER_CLEAR_MS, (unsigned long long)lookups[PH_CLEAR]);
    row("worst reader lookup around sm_clear", fmt_ns(a, sizeof a, worst[PH_CLEAR]), b);
    snprintf(a, sizeof a, "%llu", (unsigned long long)slow[PH_CLEAR]);
    snprintf(b, sizeof b, "of %llu (%.4f%%)", (unsigned long long)lookups[PH_CLEAR],
             lookups[PH_CLEAR] ? 100.0 * slow[PH_CLEAR] / lookups[PH_CLEAR] : 0.0);
    row("  of them slower than 100 us", a, b);
    snprintf(a, sizeof a, "%llu", (unsigned long long)wrong);
    row("wrong values or errors seen by readers", a, NULL);

    if (cpus > 0 && cpus < READERS + 2)
        printf("\n  Note: %d readers, the main thread and stillmap's reclaimer thread share\n"
               "  %ld CPUs, so a worst case of about a millisecond or more can be a reader\n"
               "  preempted by the scheduler rather than time spent in the map.\n",
               READERS, cpus);

    int ok = put_errors == 0 && len_before == N && clear_rc == SM_OK &&
             len_after == 0 && len_end == 0 && wrong == 0 && destroy_rc == SM_OK;
    printf("\n%s\n", ok ? "demo: OK" : "demo: FAILED (see the table above)");
    return ok ? 0 : 1;
}
