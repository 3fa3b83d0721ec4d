/*
 * sm_bench — stillmap against its peers on the workloads of
 * docs/WORKLOADS.md (T1-T4, T7, T10's insert latency), u64 keys.
 *
 *   sm_bench --lib stillmap|absl|urcu|tbb|cuckoo|stdmap|glib|ck --test T1|T2|T3|T4|T7|T10
 *            [--n N] [--threads T] [--latency] [--lock] [--seed S]
 *   sm_bench --lib stillmap|absl --test T9-1|T9-2|T9-3   (string keys)
 *   sm_bench --lib memref --test T2 [--mem-bytes B]   (memory reference)
 *
 * One test per process.  Prints one JSON object line to stdout:
 *   {"date":..., "lib":..., "test":..., "n":..., "threads":...,
 *    "ops":..., "secs":..., "ops_per_s":..., "p50_ns":..., "p999_ns":...,
 *    "max_ns":..., "clock_ns":..., "rss_bytes":..., "rss_base_bytes":...,
 *    "ok":true|false}
 * "cpu_secs" is the CPU time of the timed loop summed over its threads
 * (CLOCK_THREAD_CPUTIME_ID) and "ops_per_cpu_s" ops per CPU second: on a
 * machine shared with other work it moves much less than wall time.
 * Plus, for latency runs, "slow_ops" (ops over 50 us), "slow_waited" (of
 * those, ops during which the thread waited on the run queue) and
 * "max_own_ns" (the worst op less its run-queue wait: roughly the worst
 * op the map itself caused); for T1/T10/T4, "rss_1s_bytes" (RSS one
 * second after the timed loop) and "minflt" (T1/T10: page faults in it).
 * and a human-readable line to stderr.  Latency fields are null unless
 * --latency (T10 implies it).  rss_base_bytes is the RSS before the map
 * was created (key arrays already touched), so rss_bytes - rss_base_bytes
 * is what the map holds.  Counts are verified after the timed part
 * (untimed); the exit status is 0 if they are right, 1 if not, 2 on a
 * usage or setup error.
 *
 * Keys are splitmix64(i).  T1 inserts i = 0..N-1 in order (the keys are
 * spread anyway); T2 looks them up, T4 deletes them, in a shuffled order;
 * T3 looks up splitmix64(N + i), never inserted.  T7 prefills i < N of a
 * key space of 2N; every thread runs --ops operations (default 2,000,000)
 * on random keys of the space: 90% get, 5% put, 5% delete.
 * Values are value_of(key), checked by every lookup that finds the key.
 * --repeat K runs T2/T3's lookup pass K times (ops = K*N), for profiling.
 * The timed loops are the out-of-line functions phase_* and mixed_main.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "adapter.h"
#include "bench_util.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdarg.h>
#include <sys/resource.h>

static inline uint64_t value_of(uint64_t key)
{
    return key * 3 + 1;
}

struct cfg {
    const char *lib;
    const char *test;       /* T1..T10 as given */
    size_t n;
    int threads;
    int latency;
    int lock;               /* force the rwlock wrapper */
    uint64_t seed;
    uint64_t ops_per_thread;
    int repeat;             /* T2/T3: run the lookup pass this many times */
    const char *trace;      /* T6: CSV of the recorded lookups */
    size_t mem_bytes;       /* memref: array size (0: stillmap's table) */
};

struct result {
    uint64_t ops;
    uint64_t ns;
    uint64_t cpu_ns;         /* CPU time of the timed loop, all threads */
    uint64_t p50, p999, max, clock_ns;
    int have_lat;
    size_t rss_base, rss, rss_1s;
    /* latency runs: ops slower than SLOW_NS, those during which the thread
     * waited for a CPU, the worst op less that wait; page faults */
    uint64_t slow, slow_waited, max_own, minflt;
    int ok;
    char why[160];
    char lib_stats[512];     /* adapter's describe(), after the timed loop */
    char extra[1024];        /* test-specific JSON members, each with ',' */
};

static void xadd(struct result *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void xadd(struct result *r, const char *fmt, ...)
{
    size_t used = strlen(r->extra);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->extra + used, sizeof r->extra - used, fmt, ap);
    va_end(ap);
}

/* The libraries compiled in: the --lib name and the adapter. */
static const struct {
    const char *name;
    const bench_adapter *ad;
} adapters[] = {
#ifdef SM_BENCH_HAVE_STILLMAP
    {"stillmap", &bench_adapter_stillmap},
#endif
#ifdef SM_BENCH_HAVE_ABSL
    {"absl", &bench_adapter_absl},
#endif
#ifdef SM_BENCH_HAVE_URCU
    {"urcu", &bench_adapter_urcu},
#endif
#ifdef SM_BENCH_HAVE_TBB
    {"tbb", &bench_adapter_tbb},
#endif
#ifdef SM_BENCH_HAVE_CUCKOO
    {"cuckoo", &bench_adapter_cuckoo},
#endif
#ifdef SM_BENCH_HAVE_STDMAP
    {"stdmap", &bench_adapter_stdmap},
#endif
#ifdef SM_BENCH_HAVE_GLIB
    {"glib", &bench_adapter_glib},
#endif
#ifdef SM_BENCH_HAVE_CK
    {"ck", &bench_adapter_ck},
#endif
    /* not a map: the machine's own floor for the latency tests */
    {"floor", &bench_adapter_floor},
    {NULL, NULL},
};

static const bench_adapter *find_adapter(const char *name)
{
    for (size_t i = 0; adapters[i].name; i++)
        if (strcmp(name, adapters[i].name) == 0)
            return adapters[i].ad;
    return NULL;
}

static void list_adapters(FILE *f)
{
    fprintf(f, "libraries compiled in:");
    for (size_t i = 0; adapters[i].name; i++)
        fprintf(f, " %s", adapters[i].name);
    fprintf(f, "\n");
}

static void *xmalloc_touched(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "sm_bench: out of memory (%zu bytes)\n", bytes);
        exit(2);
    }
    memset(p, 0, bytes);  /* fault it in before the baseline RSS */
    return p;
}

static void fail(struct result *r, const char *fmt, size_t a, size_t b)
{
    if (!r->ok)
        return;
    r->ok = 0;
    snprintf(r->why, sizeof r->why, fmt, a, b);
}

static void *create_or_die(const bench_adapter *ad)
{
    void *m = ad->create(0);
    if (!m) {
        fprintf(stderr, "sm_bench: %s: create failed\n", ad->name);
        exit(2);
    }
    return m;
}

static void thread_init(const bench_adapter *ad)
{
    if (ad->thread_init)
        ad->thread_init();
}

static void thread_fini(const bench_adapter *ad)
{
    if (ad->thread_fini)
        ad->thread_fini();
}

static void describe(const bench_adapter *ad, void *m, struct result *r)
{
    if (ad->describe)
        ad->describe(m, r->lib_stats, sizeof r->lib_stats);
}

/* Untimed: insert keys[0..n) or die. */
static void fill(const bench_adapter *ad, void *m, const uint64_t *keys,
                 size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ad->put(m, keys[i], value_of(keys[i])) != 0) {
            fprintf(stderr, "sm_bench: %s: put failed while filling\n",
                    ad->name);
            exit(2);
        }
}

/* Untimed: count keys found with the right value. */
static size_t count_present(const bench_adapter *ad, void *m,
                            const uint64_t *keys, size_t n, size_t *wrong)
{
    size_t found = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t v;
        int rc = ad->get(m, keys[i], &v);
        if (rc == 1) {
            found++;
            if (v != value_of(keys[i]))
                (*wrong)++;
        } else if (rc < 0) {
            (*wrong)++;
        }
    }
    return found;
}

static uint64_t clock_overhead_ns(void)
{
    uint64_t v[1001];
    for (int i = 0; i < 1001; i++) {
        uint64_t a = bu_now_ns();
        uint64_t b = bu_now_ns();
        v[i] = b - a;
    }
    bu_sort_u64(v, 1001);
    return v[500];
}

/* ---------------------------------------------------------------- */
/* The timed loops, kept out of line so that profilers can single them
 * out (valgrind --toggle-collect=phase_*, perf report --symbols).      */
/* ---------------------------------------------------------------- */
static BU_NOINLINE size_t phase_put(const bench_adapter *ad, void *m,
                                    const uint64_t *keys, size_t n)
{
    size_t errors = 0;
    for (size_t i = 0; i < n; i++)
        errors += ad->put(m, keys[i], value_of(keys[i])) != 0;
    return errors;
}

/* An op slower than this is looked at: the thread's run-queue wait
 * (run_delay of /proc/thread-self/schedstat) since the last look is taken
 * out of it, leaving roughly what the map itself cost.  The baseline is
 * refreshed every 4096 ops, so a short wait during earlier fast ops of
 * the same window can be charged to the slow op (at most ~50 us each);
 * time the hypervisor steals from the vCPU is not seen at all. */
#define SLOW_NS 50000u

static uint64_t run_delay_ns(int fd)
{
    char buf[128];
    unsigned long long cpu = 0, wait = 0;
    if (fd < 0)
        return 0;
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    if (sscanf(buf, "%llu %llu", &cpu, &wait) != 2)
        return 0;
    return wait;
}

static BU_NOINLINE size_t phase_put_timed(const bench_adapter *ad, void *m,
                                          const uint64_t *keys, size_t n,
                                          uint64_t *lat, struct result *r)
{
    size_t errors = 0;
    int fd = open("/proc/thread-self/schedstat", O_RDONLY);
    uint64_t w0 = run_delay_ns(fd);
    for (size_t i = 0; i < n; i++) {
        uint64_t a = bu_now_ns();
        errors += ad->put(m, keys[i], value_of(keys[i])) != 0;
        uint64_t d = bu_now_ns() - a;
        lat[i] = d;
        if (BU_UNLIKELY(d > SLOW_NS)) {
            uint64_t w = run_delay_ns(fd);
            uint64_t waited = w - w0, own = d > waited ? d - waited : 0;
            w0 = w;
            r->slow++;
            if (waited > 0)
                r->slow_waited++;
            if (own > r->max_own)
                r->max_own = own;
        } else if (BU_UNLIKELY((i & 4095) == 0)) {
            w0 = run_delay_ns(fd);
        }
    }
    if (fd >= 0)
        close(fd);
    return errors;
}

static uint64_t minor_faults(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)ru.ru_minflt;
}

/* RSS one second later: what the map gives back by itself. */
static size_t rss_after_1s(void)
{
    struct timespec ts = {1, 0};
    nanosleep(&ts, NULL);
    return bu_rss_bytes();
}

static BU_NOINLINE size_t phase_get(const bench_adapter *ad, void *m,
                                    const uint64_t *probe, size_t n,
                                    uint64_t *sum, size_t *errors)
{
    size_t hits = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t v = 0;
        int rc = ad->get(m, probe[i], &v);
        hits += rc == 1;
        *errors += rc < 0;
        *sum += v;
    }
    return hits;
}

static BU_NOINLINE size_t phase_del(const bench_adapter *ad, void *m,
                                    const uint64_t *probe, size_t n,
                                    size_t *errors)
{
    size_t hits = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = ad->del(m, probe[i]);
        hits += rc == 1;
        *errors += rc < 0;
    }
    return hits;
}

/* ---------------------------------------------------------------- */
/* T1 / T10: insert                                                  */
/* ---------------------------------------------------------------- */
static void t_insert(const bench_adapter *ad, const struct cfg *c,
                     struct result *r)
{
    size_t n = c->n;
    uint64_t *keys = xmalloc_touched(n * sizeof *keys);
    uint64_t *lat = c->latency ? xmalloc_touched(n * sizeof *lat) : NULL;
    for (size_t i = 0; i < n; i++)
        keys[i] = bu_splitmix64(i);
    thread_init(ad);
    r->rss_base = bu_rss_bytes();
    void *m = create_or_die(ad);
    size_t errors = 0;

    uint64_t f0 = minor_faults();
    uint64_t c0 = bu_thread_cpu_ns();
    uint64_t t0 = bu_now_ns();
    if (!lat)
        errors = phase_put(ad, m, keys, n);
    else
        errors = phase_put_timed(ad, m, keys, n, lat, r);
    r->ns = bu_now_ns() - t0;
    r->cpu_ns = bu_thread_cpu_ns() - c0;
    r->minflt = minor_faults() - f0;
    r->ops = n;
    r->rss = bu_rss_bytes();
    r->rss_1s = rss_after_1s();
    describe(ad, m, r);

    size_t wrong = 0;
    if (errors)
        fail(r, "%zu put errors (of %zu)", errors, n);
    if (ad->len(m) != n)
        fail(r, "len %zu != n %zu", ad->len(m), n);
    /* the floor is an array, not a map: colliding keys overwrite */
    size_t found = ad == &bench_adapter_floor ? n : count_present(ad, m, keys, n, &wrong);
    if (found != n || wrong)
        fail(r, "found %zu of %zu inserted keys (or wrong values)", found, n);
    if (lat) {
        bu_sort_u64(lat, n);
        r->have_lat = 1;
        r->p50 = bu_pct(lat, n, 0.5);
        r->p999 = bu_pct(lat, n, 0.999);
        r->max = lat[n - 1];
        r->clock_ns = clock_overhead_ns();
    }
    ad->destroy(m);
    thread_fini(ad);
    free(lat);
    free(keys);
}

/* ---------------------------------------------------------------- */
/* T2, T3, T4                                                        */
/* ---------------------------------------------------------------- */
static void t_lookup_delete(const bench_adapter *ad, const struct cfg *c,
                            struct result *r, char which)
{
    size_t n = c->n;
    uint64_t *keys = xmalloc_touched(n * sizeof *keys);
    uint64_t *probe = xmalloc_touched(n * sizeof *probe);
    for (size_t i = 0; i < n; i++)
        keys[i] = bu_splitmix64(i);
    if (which == '3') {
        for (size_t i = 0; i < n; i++)
            probe[i] = bu_splitmix64(n + i);
    } else {
        memcpy(probe, keys, n * sizeof *keys);
        bu_shuffle_u64(probe, n, c->seed);
    }
    thread_init(ad);
    r->rss_base = bu_rss_bytes();
    void *m = create_or_die(ad);
    fill(ad, m, keys, n);

    size_t hits = 0, errors = 0;
    uint64_t sum = 0;
    int reps = which == '4' ? 1 : c->repeat;
    uint64_t c0 = bu_thread_cpu_ns();
    uint64_t t0 = bu_now_ns();
    if (which == '4') {
        hits = phase_del(ad, m, probe, n, &errors);
    } else {
        for (int k = 0; k < reps; k++)
            hits += phase_get(ad, m, probe, n, &sum, &errors);
    }
    r->ns = bu_now_ns() - t0;
    r->cpu_ns = bu_thread_cpu_ns() - c0;
    r->ops = (uint64_t)n * (uint64_t)reps;
    r->rss = bu_rss_bytes();
    if (which == '4')
        r->rss_1s = rss_after_1s();
    describe(ad, m, r);

    if (errors)
        fail(r, "%zu errors (of %zu)", errors, n);
    if (which == '2') {
        uint64_t want = 0;
        for (size_t i = 0; i < n; i++)
            want += value_of(keys[i]);
        want *= (uint64_t)reps;
        if (hits != n * (size_t)reps)
            fail(r, "lookup-hit found %zu of %zu", hits, n * (size_t)reps);
        if (sum != want)
            fail(r, "lookup-hit returned wrong values (%zu of %zu hits)",
                 hits, n);
    } else if (which == '3') {
        if (hits != 0)
            fail(r, "lookup-miss found %zu of %zu absent keys", hits, n);
    } else {
        if (hits != n)
            fail(r, "delete removed %zu of %zu", hits, n);
        if (ad->len(m) != 0)
            fail(r, "len %zu after deleting all %zu", ad->len(m), n);
        size_t wrong = 0;
        size_t left = count_present(ad, m, keys, n, &wrong);
        if (left)
            fail(r, "%zu of %zu keys still found after delete", left, n);
    }
    ad->destroy(m);
    thread_fini(ad);
    free(probe);
    free(keys);
}

/* ---------------------------------------------------------------- */
/* T7: mixed                                                         */
/* ---------------------------------------------------------------- */
struct mixed_shared {
    const bench_adapter *ad;
    void *m;
    uint64_t space;          /* 2N */
    uint64_t ops;
    _Atomic int ready;
    _Atomic int go;
};

struct mixed_thread {
    struct mixed_shared *sh;
    uint64_t seed;
    pthread_t th;
    /* out */
    uint64_t gets, hits, puts, dels, removed, wrong, errors, cpu_ns;
};

static void *mixed_main(void *p)
{
    struct mixed_thread *t = p;
    struct mixed_shared *sh = t->sh;
    const bench_adapter *ad = sh->ad;
    void *m = sh->m;
    uint64_t s = t->seed, space = sh->space;
    uint64_t gets = 0, hits = 0, puts = 0, dels = 0, removed = 0;
    uint64_t wrong = 0, errors = 0;

    thread_init(ad);
    atomic_fetch_add(&sh->ready, 1);
    while (!atomic_load_explicit(&sh->go, memory_order_acquire))
        sched_yield();
    uint64_t c0 = bu_thread_cpu_ns();
    for (uint64_t i = 0; i < sh->ops; i++) {
        uint64_t r = bu_rand(&s);
        uint64_t key = bu_splitmix64(bu_below(r, space));
        unsigned pct = (unsigned)((uint32_t)r % 100u);
        if (pct < 90) {
            uint64_t v;
            int rc = ad->get(m, key, &v);
            gets++;
            if (rc == 1) {
                hits++;
                wrong += v != value_of(key);
            } else {
                errors += rc < 0;
            }
        } else if (pct < 95) {
            puts++;
            errors += ad->put(m, key, value_of(key)) != 0;
        } else {
            int rc = ad->del(m, key);
            dels++;
            removed += rc == 1;
            errors += rc < 0;
        }
    }
    t->cpu_ns = bu_thread_cpu_ns() - c0;
    thread_fini(ad);
    t->gets = gets;
    t->hits = hits;
    t->puts = puts;
    t->dels = dels;
    t->removed = removed;
    t->wrong = wrong;
    t->errors = errors;
    return NULL;
}

static void t_mixed(const bench_adapter *ad, const struct cfg *c,
                    struct result *r)
{
    size_t n = c->n;
    int nt = c->threads;
    uint64_t *keys = xmalloc_touched(2 * n * sizeof *keys);
    for (size_t i = 0; i < 2 * n; i++)
        keys[i] = bu_splitmix64(i);
    struct mixed_thread *th = xmalloc_touched((size_t)nt * sizeof *th);
    struct mixed_shared sh;
    thread_init(ad);
    r->rss_base = bu_rss_bytes();
    sh.ad = ad;
    sh.m = create_or_die(ad);
    sh.space = 2 * n;
    sh.ops = c->ops_per_thread;
    atomic_store(&sh.ready, 0);
    atomic_store(&sh.go, 0);
    fill(ad, sh.m, keys, n);

    for (int i = 0; i < nt; i++) {
        th[i].sh = &sh;
        th[i].seed = c->seed * 1000003u + (uint64_t)i * 0x9e3779b97f4a7c15ull;
        if (pthread_create(&th[i].th, NULL, mixed_main, &th[i]) != 0) {
            fprintf(stderr, "sm_bench: pthread_create failed\n");
            exit(2);
        }
    }
    while (atomic_load(&sh.ready) < nt)
        sched_yield();
    uint64_t t0 = bu_now_ns();
    atomic_store_explicit(&sh.go, 1, memory_order_release);
    for (int i = 0; i < nt; i++)
        pthread_join(th[i].th, NULL);
    r->ns = bu_now_ns() - t0;
    r->rss = bu_rss_bytes();
    describe(ad, sh.m, r);

    uint64_t ops = 0, wrong = 0, errors = 0;
    for (int i = 0; i < nt; i++) {
        ops += th[i].gets + th[i].puts + th[i].dels;
        r->cpu_ns += th[i].cpu_ns;
        wrong += th[i].wrong;
        errors += th[i].errors;
    }
    r->ops = ops;
    if (ops != (uint64_t)nt * c->ops_per_thread)
        fail(r, "ran %zu ops, expected %zu", (size_t)ops,
             (size_t)((uint64_t)nt * c->ops_per_thread));
    if (wrong || errors)
        fail(r, "%zu wrong values, %zu errors", (size_t)wrong, (size_t)errors);
    size_t bad = 0;
    size_t present = count_present(ad, sh.m, keys, 2 * n, &bad);
    if (present != ad->len(sh.m))
        fail(r, "len %zu but %zu keys found", ad->len(sh.m), present);
    if (bad)
        fail(r, "%zu keys with wrong values (of %zu)", bad, present);
    ad->destroy(sh.m);
    thread_fini(ad);
    free(th);
    free(keys);
}

/* ---------------------------------------------------------------- */
/* T5: churn                                                         */
/* ---------------------------------------------------------------- */
/* Step i inserts keys[i] and deletes keys[i - half], the oldest live. */
static BU_NOINLINE size_t phase_churn(const bench_adapter *ad, void *m,
                                      const uint64_t *keys, size_t half,
                                      size_t steps, size_t *errors)
{
    size_t removed = 0;
    for (size_t i = half; i < half + steps; i++) {
        *errors += ad->put(m, keys[i], value_of(keys[i])) != 0;
        int rc = ad->del(m, keys[i - half]);
        removed += rc == 1;
        *errors += rc < 0;
    }
    return removed;
}

static void t_churn(const bench_adapter *ad, const struct cfg *c,
                    struct result *r)
{
    size_t n = c->n, half = n / 2, steps = 5 * n;
    size_t total = half + steps;
    uint64_t *keys = xmalloc_touched(total * sizeof *keys);
    uint64_t *probe = xmalloc_touched((half ? half : 1) * sizeof *probe);
    for (size_t i = 0; i < total; i++)
        keys[i] = bu_splitmix64(i);
    /* the live keys after the churn: i in [steps, total) */
    memcpy(probe, keys + steps, half * sizeof *keys);
    bu_shuffle_u64(probe, half, c->seed);
    thread_init(ad);
    r->rss_base = bu_rss_bytes();
    void *m = create_or_die(ad);
    fill(ad, m, keys, half);
    size_t rss_filled = bu_rss_bytes();

    size_t errors = 0;
    uint64_t c0 = bu_thread_cpu_ns();
    uint64_t t0 = bu_now_ns();
    size_t removed = phase_churn(ad, m, keys, half, steps, &errors);
    r->ns = bu_now_ns() - t0;
    r->cpu_ns = bu_thread_cpu_ns() - c0;
    r->ops = 2 * (uint64_t)steps;   /* one put and one delete per step */
    size_t rss_churned = bu_rss_bytes();

    uint64_t sum = 0;
    uint64_t t1 = bu_now_ns();
    size_t hits = phase_get(ad, m, probe, half, &sum, &errors);
    uint64_t lookup_ns = bu_now_ns() - t1;
    r->rss = bu_rss_bytes();
    r->rss_1s = rss_after_1s();
    describe(ad, m, r);
    xadd(r, "\"churn_steps\":%zu,\"lookup_after_churn_ops\":%zu,"
         "\"lookup_after_churn_ops_per_s\":%.0f,"
         "\"rss_filled_bytes\":%zu,\"rss_churned_bytes\":%zu,",
         steps, half,
         lookup_ns ? (double)half * 1e9 / (double)lookup_ns : 0.0,
         rss_filled, rss_churned);

    uint64_t want = 0;
    for (size_t i = 0; i < half; i++)
        want += value_of(probe[i]);
    if (errors)
        fail(r, "%zu errors (of %zu churn steps)", errors, steps);
    if (removed != steps)
        fail(r, "churn removed %zu of %zu oldest keys", removed, steps);
    if (hits != half || sum != want)
        fail(r, "lookup after churn found %zu of %zu (or wrong values)",
             hits, half);
    if (ad->len(m) != half)
        fail(r, "len %zu != %zu live keys", ad->len(m), half);
    size_t wrong = 0;
    size_t back = steps < half ? steps : half;
    size_t stale = count_present(ad, m, keys + steps - back, back, &wrong);
    if (stale)
        fail(r, "%zu of the last %zu deleted keys still found", stale, back);
    ad->destroy(m);
    thread_fini(ad);
    free(probe);
    free(keys);
}

/* ---------------------------------------------------------------- */
/* T6: clear under one reader                                        */
/* ---------------------------------------------------------------- */
struct clear_shared {
    const bench_adapter *ad;
    void *m;
    const uint64_t *keys;
    size_t n;
    uint64_t seed;
    uint64_t *ts;            /* start of each recorded lookup */
    uint32_t *lat;           /* its latency, ns (saturated) */
    uint32_t *own;           /* latency less run-queue wait (SLOW_NS) */
    size_t cap, count;       /* recorded while armed */
    _Atomic int ready, armed, stop;
    /* out */
    uint64_t lookups, wrong, errors, reader_ns, reader_cpu_ns;
};

static void *clear_reader(void *p)
{
    struct clear_shared *sh = p;
    const bench_adapter *ad = sh->ad;
    void *m = sh->m;
    uint64_t s = sh->seed, lookups = 0, wrong = 0, errors = 0;
    size_t cnt = 0;
    int fd = open("/proc/thread-self/schedstat", O_RDONLY);
    uint64_t w0 = run_delay_ns(fd);
    thread_init(ad);
    atomic_store(&sh->ready, 1);
    uint64_t c0 = bu_thread_cpu_ns();
    uint64_t t0 = bu_now_ns();
    while (!atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
        uint64_t key = sh->keys[bu_below(bu_rand(&s), sh->n)];
        uint64_t v = 0;
        uint64_t a = bu_now_ns();
        int rc = ad->get(m, key, &v);
        uint64_t d = bu_now_ns() - a, own = d;
        if (BU_UNLIKELY(d > SLOW_NS)) {
            uint64_t wt = run_delay_ns(fd), waited = wt - w0;
            own = d > waited ? d - waited : 0;
            w0 = wt;
        } else if (BU_UNLIKELY((lookups & 4095) == 0)) {
            w0 = run_delay_ns(fd);
        }
        lookups++;
        if (rc == 1)
            wrong += v != value_of(key);
        else
            errors += rc < 0;
        if (atomic_load_explicit(&sh->armed, memory_order_relaxed) &&
            cnt < sh->cap) {
            sh->ts[cnt] = a;
            sh->lat[cnt] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
            sh->own[cnt] = own > UINT32_MAX ? UINT32_MAX : (uint32_t)own;
            cnt++;
        }
    }
    sh->reader_ns = bu_now_ns() - t0;
    sh->reader_cpu_ns = bu_thread_cpu_ns() - c0;
    if (fd >= 0)
        close(fd);
    thread_fini(ad);
    sh->count = cnt;
    sh->lookups = lookups;
    sh->wrong = wrong;
    sh->errors = errors;
    return NULL;
}

static void sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u),
                          (long)(ns % 1000000000u)};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

#define T6_CAP (4u << 20)    /* lookups recorded from 5 ms before clear */

static void t_clear(const bench_adapter *ad, const struct cfg *c,
                    struct result *r, const char *clear_how)
{
    size_t n = c->n;
    uint64_t *keys = xmalloc_touched(n * sizeof *keys);
    for (size_t i = 0; i < n; i++)
        keys[i] = bu_splitmix64(i);
    struct clear_shared sh;
    memset(&sh, 0, sizeof sh);
    sh.cap = T6_CAP;
    sh.ts = xmalloc_touched(sh.cap * sizeof *sh.ts);
    sh.lat = xmalloc_touched(sh.cap * sizeof *sh.lat);
    sh.own = xmalloc_touched(sh.cap * sizeof *sh.own);
    thread_init(ad);
    r->rss_base = bu_rss_bytes();
    sh.ad = ad;
    sh.m = create_or_die(ad);
    sh.keys = keys;
    sh.n = n;
    sh.seed = c->seed;
    fill(ad, sh.m, keys, n);

    pthread_t th;
    if (pthread_create(&th, NULL, clear_reader, &sh) != 0) {
        fprintf(stderr, "sm_bench: pthread_create failed\n");
        exit(2);
    }
    while (!atomic_load(&sh.ready))
        sched_yield();
    sleep_ns(195000000u);
    atomic_store(&sh.armed, 1);
    sleep_ns(5000000u);
    size_t rss_before = bu_rss_bytes();
    uint64_t ca = bu_now_ns();
    int crc = ad->clear(sh.m);
    uint64_t cb = bu_now_ns();
    size_t rss_after = bu_rss_bytes();
    sleep_ns(20000000u);
    atomic_store(&sh.stop, 1);
    pthread_join(th, NULL);
    uint64_t since = bu_now_ns() - cb;
    if (since < 1000000000u)
        sleep_ns(1000000000u - since);
    r->rss_1s = bu_rss_bytes();
    r->rss = rss_after;
    r->ops = sh.lookups;
    r->ns = sh.reader_ns;
    r->cpu_ns = sh.reader_cpu_ns;
    describe(ad, sh.m, r);

    /* Lookups overlapping [clear start, clear end + 10 ms]. */
    uint64_t wend = cb + 10000000u;
    size_t nw = 0;
    uint64_t *w = xmalloc_touched((sh.count ? sh.count : 1) * sizeof *w);
    FILE *tf = NULL;
    if (c->trace) {
        tf = fopen(c->trace, "w");
        if (!tf)
            fprintf(stderr, "sm_bench: cannot write %s\n", c->trace);
        else
            fprintf(tf, "t_ns,latency_ns,own_ns\n");
    }
    for (size_t i = 0; i < sh.count; i++) {
        uint64_t a = sh.ts[i], e = a + sh.lat[i];
        if (e >= ca && a <= wend) {
            w[nw++] = sh.lat[i];
            if (sh.lat[i] > SLOW_NS) {
                r->slow++;
                if (sh.own[i] < sh.lat[i])
                    r->slow_waited++;
                if (sh.own[i] > r->max_own)
                    r->max_own = sh.own[i];
            }
        }
        if (tf)
            fprintf(tf, "%lld,%u,%u\n", (long long)a - (long long)ca,
                    sh.lat[i], sh.own[i]);
    }
    if (tf)
        fclose(tf);
    uint64_t wmax = 0, wp999 = 0, wp50 = 0;
    if (nw) {
        bu_sort_u64(w, nw);
        wmax = w[nw - 1];
        wp999 = bu_pct(w, nw, 0.999);
        wp50 = bu_pct(w, nw, 0.5);
    }
    r->have_lat = 1;
    r->p50 = wp50;
    r->p999 = wp999;
    r->max = wmax;
    r->clock_ns = clock_overhead_ns();
    xadd(r, "\"clear_how\":\"%s\",\"clear_ns\":%llu,"
         "\"window_lookups\":%zu,\"window_p50_ns\":%llu,"
         "\"window_p999_ns\":%llu,\"window_max_ns\":%llu,"
         "\"window_max_own_ns\":%llu,"
         "\"recorded_lookups\":%zu,\"rss_before_clear_bytes\":%zu,"
         "\"rss_after_clear_bytes\":%zu,",
         clear_how, (unsigned long long)(cb - ca), nw,
         (unsigned long long)wp50, (unsigned long long)wp999,
         (unsigned long long)wmax,
         (unsigned long long)(r->slow ? r->max_own : wmax), sh.count,
         rss_before, rss_after);

    if (crc != 0)
        fail(r, "clear returned -%zu (n %zu)", (size_t)-crc, n);
    if (sh.wrong || sh.errors)
        fail(r, "reader: %zu wrong values, %zu errors", (size_t)sh.wrong,
             (size_t)sh.errors);
    if (sh.count >= sh.cap)
        fail(r, "reader recorded %zu lookups, the cap %zu: window cut",
             sh.count, sh.cap);
    if (nw == 0)
        fail(r, "no reader lookup in the window (%zu recorded, n %zu)",
             sh.count, n);
    if (ad->len(sh.m) != 0)
        fail(r, "len %zu after clear (n %zu)", ad->len(sh.m), n);
    size_t wrong = 0;
    size_t left = count_present(ad, sh.m, keys, n, &wrong);
    if (left)
        fail(r, "%zu of %zu keys still found after clear", left, n);
    ad->destroy(sh.m);
    thread_fini(ad);
    free(w);
    free(sh.own);
    free(sh.lat);
    free(sh.ts);
    free(keys);
}

/* ---------------------------------------------------------------- */
/* T8: memory after deleting 90%; T8fresh: a map of just that 10%    */
/* ---------------------------------------------------------------- */
static void t_memory(const bench_adapter *ad, const struct cfg *c,
                     struct result *r, int fresh)
{
    size_t n = c->n, keep = n / 10, gone = n - keep;
    uint64_t *keys = xmalloc_touched(n * sizeof *keys);
    for (size_t i = 0; i < n; i++)
        keys[i] = bu_splitmix64(i);
    thread_init(ad);
    r->rss_base = bu_rss_bytes();
    void *m = create_or_die(ad);
    size_t errors = 0;
    if (fresh) {
        /* the keys T8 keeps: i in [gone, n) */
        uint64_t c0 = bu_thread_cpu_ns();
        uint64_t t0 = bu_now_ns();
        errors = phase_put(ad, m, keys + gone, keep);
        r->ns = bu_now_ns() - t0;
        r->cpu_ns = bu_thread_cpu_ns() - c0;
        r->ops = keep;
        r->rss = bu_rss_bytes();
        r->rss_1s = rss_after_1s();
        xadd(r, "\"entries\":%zu,\"rss_fresh_bytes\":%zu,", keep, r->rss);
    } else {
        fill(ad, m, keys, n);
        size_t rss_full = bu_rss_bytes();
        uint64_t c0 = bu_thread_cpu_ns();
        uint64_t t0 = bu_now_ns();
        size_t removed = phase_del(ad, m, keys, gone, &errors);
        r->ns = bu_now_ns() - t0;
        r->cpu_ns = bu_thread_cpu_ns() - c0;
        r->ops = gone;
        size_t rss_del = bu_rss_bytes();
        sleep_ns(500000000u);
        size_t rss_wait = bu_rss_bytes();
        int src = 0;
        uint64_t s0 = bu_now_ns();
        if (ad->shrink)
            src = ad->shrink(m);
        uint64_t s1 = bu_now_ns();
        malloc_trim(0);
        uint64_t s2 = bu_now_ns();
        r->rss = bu_rss_bytes();
        r->rss_1s = rss_after_1s();
        xadd(r, "\"entries\":%zu,\"rss_full_bytes\":%zu,"
             "\"bytes_per_entry\":%.1f,\"rss_deleted_bytes\":%zu,"
             "\"rss_deleted_500ms_bytes\":%zu,\"shrink_how\":\"%s\","
             "\"shrink_ns\":%llu,\"malloc_trim_ns\":%llu,"
             "\"rss_shrunk_bytes\":%zu,",
             keep, rss_full,
             n ? (double)(rss_full - r->rss_base) / (double)n : 0.0,
             rss_del, rss_wait,
             ad->shrink ? ad->shrink_how : "none offered",
             (unsigned long long)(s1 - s0), (unsigned long long)(s2 - s1),
             r->rss);
        if (src != 0)
            fail(r, "shrink returned -%zu (n %zu)", (size_t)-src, n);
        if (removed != gone)
            fail(r, "deleted %zu of %zu", removed, gone);
        size_t wrong = 0;
        size_t left = count_present(ad, m, keys, gone, &wrong);
        if (left)
            fail(r, "%zu of %zu deleted keys still found", left, gone);
    }
    describe(ad, m, r);
    if (errors)
        fail(r, "%zu errors (of %zu)", errors, n);
    if (ad->len(m) != keep)
        fail(r, "len %zu != %zu kept keys", ad->len(m), keep);
    size_t wrong = 0;
    size_t found = count_present(ad, m, keys + gone, keep, &wrong);
    if (found != keep || wrong)
        fail(r, "found %zu of %zu kept keys (or wrong values)", found, keep);
    ad->destroy(m);
    thread_fini(ad);
    free(keys);
}

/* ---------------------------------------------------------------- */
/* memref: what the memory itself allows, for reading T2/T3 against  */
/* ---------------------------------------------------------------- */
/* An array of 64-byte lines as large as stillmap's table at N (taken
 * from sm_get_stats via the adapter's describe after filling N keys;
 * without stillmap, or with --mem-bytes, the size given, else 32 bytes
 * per key rounded up to a power of two).  (a) independent loads: one
 * word of a random line per step, the line numbers read sequentially
 * from a precomputed array, so the CPU overlaps as many misses as it
 * can, as N lookups of different keys may; (b) dependent loads: each
 * line holds the number of the next one, a single random cycle through
 * every line (Sattolo), so each miss waits for the one before it. */
static BU_NOINLINE uint64_t phase_mem_indep(const uint64_t *arr,
                                            const uint32_t *idx, size_t n)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += arr[(size_t)idx[i] * 8];
    return sum;
}

static BU_NOINLINE uint64_t phase_mem_chase(const uint64_t *arr,
                                            uint64_t at, size_t n)
{
    for (size_t i = 0; i < n; i++)
        at = arr[at * 8];
    return at;
}

static size_t memref_bytes(const struct cfg *c, const char **how)
{
    if (c->mem_bytes) {
        *how = "--mem-bytes";
        return c->mem_bytes;
    }
#ifdef SM_BENCH_HAVE_STILLMAP
    {
        const bench_adapter *ad = &bench_adapter_stillmap;
        void *m = create_or_die(ad);
        for (size_t i = 0; i < c->n; i++)
            if (ad->put(m, bu_splitmix64(i), value_of(bu_splitmix64(i))) != 0)
                break;
        char buf[512] = "";
        ad->describe(m, buf, sizeof buf);
        ad->destroy(m);
        const char *p = strstr(buf, "\"table_bytes\":");
        if (p) {
            size_t b = (size_t)strtoull(p + 14, NULL, 10);
            if (b) {
                *how = "stillmap table_bytes at N";
                return b;
            }
        }
    }
#endif
    size_t b = 64;
    while (b < c->n * 32)
        b *= 2;
    *how = "32 bytes per key, power of two";
    return b;
}

static void t_memref(const struct cfg *c, struct result *r)
{
    const char *how = "";
    size_t bytes = memref_bytes(c, &how);
    size_t lines = (bytes + 63) / 64;
    if (lines < 2)
        lines = 2;
    if (lines > UINT32_MAX) {
        fprintf(stderr, "sm_bench: memref: %zu lines is too many\n", lines);
        exit(2);
    }
    size_t loads = c->n * (size_t)c->repeat;
    uint64_t *arr = NULL;
    if (posix_memalign((void **)&arr, 64, lines * 64) != 0) {
        fprintf(stderr, "sm_bench: out of memory (%zu bytes)\n", lines * 64);
        exit(2);
    }
    memset(arr, 0, lines * 64);
    uint32_t *idx = xmalloc_touched(loads * sizeof *idx);
    uint64_t st = c->seed;
    for (size_t i = 0; i < loads; i++)
        idx[i] = (uint32_t)bu_below(bu_rand(&st), lines);
    /* Sattolo: one cycle through all lines */
    uint32_t *perm = xmalloc_touched(lines * sizeof *perm);
    for (size_t i = 0; i < lines; i++)
        perm[i] = (uint32_t)i;
    for (size_t i = lines - 1; i > 0; i--) {
        size_t j = (size_t)bu_below(bu_rand(&st), i);
        uint32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (size_t i = 0; i < lines; i++)
        arr[(size_t)perm[i] * 8] = perm[(i + 1) % lines];
    free(perm);
    r->rss_base = bu_rss_bytes();

    uint64_t c0 = bu_thread_cpu_ns();
    uint64_t t0 = bu_now_ns();
    uint64_t sum = phase_mem_indep(arr, idx, loads);
    uint64_t t1 = bu_now_ns();
    uint64_t c1 = bu_thread_cpu_ns();
    uint64_t end = phase_mem_chase(arr, 0, loads);
    uint64_t t2 = bu_now_ns();
    uint64_t c2 = bu_thread_cpu_ns();
    BU_SINK(sum);
    BU_SINK(end);
    r->rss = bu_rss_bytes();
    r->ops = loads;
    r->ns = t1 - t0;
    r->cpu_ns = c1 - c0;
    double ind = (double)(t1 - t0) / (double)loads;
    double dep = (double)(t2 - t1) / (double)loads;
    xadd(r, "\"mem_bytes\":%zu,\"mem_lines\":%zu,\"mem_size_from\":\"%s\","
         "\"indep_ns_per_load\":%.2f,\"dep_ns_per_load\":%.2f,"
         "\"dep_loads_per_s\":%.0f,\"dep_loads_per_cpu_s\":%.0f,",
         lines * 64, lines, how, ind, dep, dep > 0 ? 1e9 / dep : 0.0,
         c2 > c1 ? (double)loads * 1e9 / (double)(c2 - c1) : 0.0);
    /* verification: the chase visits every line once per cycle */
    if (end >= lines)
        fail(r, "chase left the array (line %zu of %zu)", (size_t)end, lines);
    fprintf(stderr, "memref n=%zu: %.2f ns per independent load, %.2f ns "
            "per dependent load (%.1f MB array, size from %s) %s%s\n",
            c->n, ind, dep, (double)(lines * 64) / 1e6, how,
            r->ok ? "OK" : "FAILED: ", r->ok ? "" : r->why);
    free(idx);
    free(arr);
}

/* ---------------------------------------------------------------- */
/* T9: T1-T3 with string keys "user:%010llu" (15 bytes)              */
/* ---------------------------------------------------------------- */
#define SKEY_LEN 15
#define SKEY_SLOT 16

static const bench_skey_adapter *find_skey_adapter(const char *name)
{
#ifdef SM_BENCH_HAVE_STILLMAP
    if (strcmp(name, "stillmap") == 0)
        return &bench_skey_stillmap;
#endif
#ifdef SM_BENCH_HAVE_ABSL
    if (strcmp(name, "absl") == 0)
        return &bench_skey_absl;
#endif
    (void)name;
    return NULL;
}

/* keys[i * SKEY_SLOT] = "user:%010llu" of first + i, NUL-terminated */
static char *make_skeys(uint64_t first, size_t n)
{
    char *k = xmalloc_touched(n * SKEY_SLOT);
    for (size_t i = 0; i < n; i++)
        snprintf(k + i * SKEY_SLOT, SKEY_SLOT, "user:%010llu",
                 (unsigned long long)(first + i));
    return k;
}

static BU_NOINLINE size_t phase_sput(const bench_skey_adapter *sa, void *m,
                                     const char *keys, size_t n)
{
    size_t errors = 0;
    for (size_t i = 0; i < n; i++)
        errors += sa->put(m, keys + i * SKEY_SLOT, SKEY_LEN,
                          value_of(i)) != 0;
    return errors;
}

/* get keys[order[i]]; returns found, adds found values into *sum */
static BU_NOINLINE size_t phase_sget(const bench_skey_adapter *sa, void *m,
                                     const char *keys, const uint64_t *order,
                                     size_t n, uint64_t *sum, size_t *errors)
{
    size_t found = 0;
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t v;
        int rc = sa->get(m, keys + order[i] * SKEY_SLOT, SKEY_LEN, &v);
        if (rc == 1) {
            found++;
            s += v;
        } else if (rc < 0) {
            (*errors)++;
        }
    }
    *sum = s;
    return found;
}

static void t_strkeys(const bench_skey_adapter *sa, const struct cfg *c,
                      struct result *r, char which)
{
    size_t n = c->n;
    char *keys = make_skeys(0, n);
    char *miss = which == '3' ? make_skeys(n, n) : NULL;
    uint64_t *order = xmalloc_touched(n * sizeof *order);
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    if (which == '2')
        bu_shuffle_u64(order, n, c->seed);
    r->rss_base = bu_rss_bytes();
    void *m = sa->create();
    if (!m) {
        fprintf(stderr, "sm_bench: %s: create failed\n", sa->name);
        exit(2);
    }
    size_t errors = 0, found = 0;
    uint64_t sum = 0;
    uint64_t c0 = 0, t0 = 0;
    if (which == '1') {
        c0 = bu_thread_cpu_ns();
        t0 = bu_now_ns();
        errors = phase_sput(sa, m, keys, n);
        r->ns = bu_now_ns() - t0;
        r->cpu_ns = bu_thread_cpu_ns() - c0;
        r->ops = n;
    } else {
        if (phase_sput(sa, m, keys, n) != 0) {
            fprintf(stderr, "sm_bench: %s: put failed while filling\n",
                    sa->name);
            exit(2);
        }
        c0 = bu_thread_cpu_ns();
        t0 = bu_now_ns();
        for (int k = 0; k < c->repeat; k++)
            found = phase_sget(sa, m, which == '3' ? miss : keys, order, n,
                               &sum, &errors);
        r->ns = bu_now_ns() - t0;
        r->cpu_ns = bu_thread_cpu_ns() - c0;
        r->ops = n * (uint64_t)c->repeat;
    }
    r->rss = bu_rss_bytes();
    xadd(r, "\"key_bytes\":%d,\"key_format\":\"user:%%010llu\",",
         SKEY_LEN);
    /* verification, untimed */
    if (errors)
        fail(r, "%zu errors (n %zu)", errors, n);
    if (sa->len(m) != n)
        fail(r, "len %zu != n %zu", sa->len(m), n);
    if (which == '1') {
        uint64_t s2 = 0;
        size_t e2 = 0;
        found = phase_sget(sa, m, keys, order, n, &sum, &e2);
        for (size_t i = 0; i < n; i++)
            s2 += value_of(i);
        if (found != n || sum != s2 || e2)
            fail(r, "after insert: %zu of %zu found (or wrong values)",
                 found, n);
    } else if (which == '2') {
        uint64_t s2 = 0;
        for (size_t i = 0; i < n; i++)
            s2 += value_of(i);
        if (found != n || sum != s2)
            fail(r, "lookup hit: %zu of %zu found (or wrong values)", found,
                 n);
    } else if (found != 0) {
        fail(r, "lookup miss: %zu of %zu found", found, n);
    }
    sa->destroy(m);
    free(order);
    free(miss);
    free(keys);
}

/* ---------------------------------------------------------------- */
/* main                                                              */
/* ---------------------------------------------------------------- */
static void usage(void)
{
    fprintf(stderr,
            "usage: sm_bench --lib LIB --test T1|T2|T3|T4|T5|T6|T7|T8|T8fresh|T10\n"
            "                [--n N] [--threads T] [--latency] [--lock]\n"
            "                [--seed S] [--ops OPS_PER_THREAD] [--repeat K]\n"
            "                [--trace FILE]\n"
            "       sm_bench --lib stillmap|absl --test T9-1|T9-2|T9-3 [--n N]\n"
            "       sm_bench --lib memref [--n N] [--mem-bytes B] [--repeat K]\n"
            "       sm_bench --list\n");
    list_adapters(stderr);
    exit(2);
}

static void print_json(const struct cfg *c, const char *lib,
                       const struct result *r)
{
    char date[32];
    bu_date(date, sizeof date);
    double secs = (double)r->ns / 1e9;
    printf("{\"date\":\"%s\",\"lib\":\"%s\",\"test\":\"%s\",\"n\":%zu,"
           "\"threads\":%d,\"latency\":%s,\"ops\":%llu,\"secs\":%.6f,"
           "\"ops_per_s\":%.0f,\"cpu_secs\":%.6f,\"ops_per_cpu_s\":%.0f,",
           date, lib, c->test, c->n, c->threads,
           c->latency ? "true" : "false", (unsigned long long)r->ops, secs,
           secs > 0 ? (double)r->ops / secs : 0.0, (double)r->cpu_ns / 1e9,
           r->cpu_ns ? (double)r->ops * 1e9 / (double)r->cpu_ns : 0.0);
    if (r->have_lat)
        printf("\"p50_ns\":%llu,\"p999_ns\":%llu,\"max_ns\":%llu,"
               "\"clock_ns\":%llu,\"slow_ops\":%llu,"
               "\"slow_waited\":%llu,\"max_own_ns\":%llu,",
               (unsigned long long)r->p50, (unsigned long long)r->p999,
               (unsigned long long)r->max, (unsigned long long)r->clock_ns,
               (unsigned long long)r->slow,
               (unsigned long long)r->slow_waited,
               (unsigned long long)(r->slow ? r->max_own : r->max));
    else
        printf("\"p50_ns\":null,\"p999_ns\":null,\"max_ns\":null,"
               "\"clock_ns\":null,");
    printf("\"rss_bytes\":%zu,\"rss_base_bytes\":%zu,",
           r->rss, r->rss_base);
    if (r->rss_1s)
        printf("\"rss_1s_bytes\":%zu,\"minflt\":%llu,", r->rss_1s,
               (unsigned long long)r->minflt);
    if (r->extra[0])
        printf("%s", r->extra);
    if (r->lib_stats[0])
        printf("\"lib_stats\":{%s},", r->lib_stats);
    printf("\"ok\":%s", r->ok ? "true" : "false");
    if (!r->ok)
        printf(",\"error\":\"%s\"", r->why);
    printf("}\n");
    fflush(stdout);
}

int main(int argc, char **argv)
{
    struct cfg c = {NULL, NULL, 0, 1, 0, 0, 12345, 2000000, 1, NULL, 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (strcmp(a, "--lib") == 0 && more)
            c.lib = argv[++i];
        else if (strcmp(a, "--test") == 0 && more)
            c.test = argv[++i];
        else if (strcmp(a, "--n") == 0 && more)
            c.n = (size_t)strtoull(argv[++i], NULL, 10);
        else if (strcmp(a, "--threads") == 0 && more)
            c.threads = atoi(argv[++i]);
        else if (strcmp(a, "--seed") == 0 && more)
            c.seed = strtoull(argv[++i], NULL, 10);
        else if (strcmp(a, "--ops") == 0 && more)
            c.ops_per_thread = strtoull(argv[++i], NULL, 10);
        else if (strcmp(a, "--repeat") == 0 && more)
            c.repeat = atoi(argv[++i]);
        else if (strcmp(a, "--trace") == 0 && more)
            c.trace = argv[++i];
        else if (strcmp(a, "--mem-bytes") == 0 && more)
            c.mem_bytes = (size_t)strtoull(argv[++i], NULL, 10);
        else if (strcmp(a, "--latency") == 0)
            c.latency = 1;
        else if (strcmp(a, "--lock") == 0)
            c.lock = 1;
        else if (strcmp(a, "--list") == 0) {
            list_adapters(stdout);
            return 0;
        } else
            usage();
    }
    if (!c.lib || !c.test || c.threads < 1 || c.threads > 64 || c.repeat < 1)
        usage();
    if (strncmp(c.test, "T9-", 3) == 0) {
        char which = c.test[3];
        if ((which != '1' && which != '2' && which != '3') || c.test[4]) {
            fprintf(stderr, "sm_bench: T9 tests are T9-1, T9-2, T9-3\n");
            return 2;
        }
        const bench_skey_adapter *sa = find_skey_adapter(c.lib);
        if (!sa) {
            fprintf(stderr, "sm_bench: no string-key adapter for '%s' "
                    "(T9: stillmap, absl)\n", c.lib);
            return 2;
        }
        if (c.n == 0)
            c.n = 1000000;
        struct result r;
        memset(&r, 0, sizeof r);
        r.ok = 1;
        t_strkeys(sa, &c, &r, which);
        print_json(&c, sa->name, &r);
        fprintf(stderr, "%s %s n=%zu: %.2f Mops/s rss=%.1fMB (map %.1fMB) "
                "%s%s\n", sa->name, c.test, c.n,
                r.ns ? (double)r.ops * 1e3 / (double)r.ns : 0.0,
                (double)r.rss / 1e6,
                ((double)r.rss - (double)r.rss_base) / 1e6,
                r.ok ? "OK" : "FAILED: ", r.ok ? "" : r.why);
        return r.ok ? 0 : 1;
    }
    if (strcmp(c.lib, "memref") == 0) {
        if (c.n == 0)
            c.n = 1000000;
        struct result r;
        memset(&r, 0, sizeof r);
        r.ok = 1;
        t_memref(&c, &r);
        print_json(&c, "memref", &r);
        return r.ok ? 0 : 1;
    }
    const bench_adapter *ad = find_adapter(c.lib);
    if (!ad) {
        fprintf(stderr, "sm_bench: library '%s' not compiled in\n", c.lib);
        list_adapters(stderr);
        return 2;
    }
    int is_t10 = strcmp(c.test, "T10") == 0;
    if (c.n == 0)
        c.n = is_t10 ? 10000000 : 1000000;
    if (is_t10)
        c.latency = 1;
    int multi = strcmp(c.test, "T7") == 0;
    int is_t6 = strcmp(c.test, "T6") == 0;
    if (!multi && c.threads != 1) {
        fprintf(stderr, "sm_bench: %s is single-threaded\n", c.test);
        return 2;
    }
    if ((multi && c.threads > 1) || c.lock)
        if (!(ad->flags & BA_THREAD_SAFE))
            ad = bench_rwlock_wrap(ad);
    /* T6 clears under a reader: a map without a concurrent clear goes
     * behind the rwlock, its clear under the write lock. */
    const char *clear_how = "own clear, concurrent with the reader";
    if (is_t6 && (!(ad->flags & BA_THREAD_SAFE) ||
                  (ad->flags & BA_CLEAR_EXCLUSIVE))) {
        if (!strstr(ad->name, "+rwlock"))
            ad = bench_rwlock_wrap(ad);
        clear_how = "clear under the rwlock write lock";
    }

    struct result r;
    memset(&r, 0, sizeof r);
    r.ok = 1;
    if (strcmp(c.test, "T1") == 0 || is_t10)
        t_insert(ad, &c, &r);
    else if (strcmp(c.test, "T2") == 0)
        t_lookup_delete(ad, &c, &r, '2');
    else if (strcmp(c.test, "T3") == 0)
        t_lookup_delete(ad, &c, &r, '3');
    else if (strcmp(c.test, "T4") == 0)
        t_lookup_delete(ad, &c, &r, '4');
    else if (multi)
        t_mixed(ad, &c, &r);
    else if (strcmp(c.test, "T5") == 0)
        t_churn(ad, &c, &r);
    else if (is_t6)
        t_clear(ad, &c, &r, clear_how);
    else if (strcmp(c.test, "T8") == 0)
        t_memory(ad, &c, &r, 0);
    else if (strcmp(c.test, "T8fresh") == 0)
        t_memory(ad, &c, &r, 1);
    else
        usage();

    print_json(&c, ad->name, &r);
    fprintf(stderr, "%s %s n=%zu threads=%d: %.2f Mops/s", ad->name, c.test,
            c.n, c.threads,
            r.ns ? (double)r.ops * 1e3 / (double)r.ns : 0.0);
    if (r.have_lat)
        fprintf(stderr, " p50=%lluns p99.9=%lluns max=%.1fus (own %.1fus)",
                (unsigned long long)r.p50, (unsigned long long)r.p999,
                (double)r.max / 1e3,
                (double)(r.slow ? r.max_own : r.max) / 1e3);
    fprintf(stderr, " rss=%.1fMB (map %.1fMB) %s%s\n", (double)r.rss / 1e6,
            ((double)r.rss - (double)r.rss_base) / 1e6,
            r.ok ? "OK" : "FAILED: ", r.ok ? "" : r.why);
    return r.ok ? 0 : 1;
}
