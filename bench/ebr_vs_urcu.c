/*
 * ebr_vs_urcu — choose stillmap's memory-reclamation scheme by measurement.
 *
 * stillmap needs a reader-side "pin" around every lookup and a grace
 * period before a retired table or entry may be freed.  Two candidates:
 *
 *   liburcu (Debian liburcu-dev), flavours urcu-memb, urcu-mb, urcu-qsbr
 *   and urcu-bp, with its read-side fast paths inlined (_LGPL_SOURCE) and,
 *   for memb and bp, also called through the shared library;
 *
 *   a minimal epoch scheme written here, modelling what stillmap would
 *   do itself: a thread-local record found through a TLS pointer
 *   (created on first use, so no registration is asked of the user), the
 *   global epoch stored into the record on entry, and then either
 *     ebr-fence   a seq_cst fence (store->load order on the reader), or
 *     ebr-xchg    a seq_cst exchange instead of store + fence, or
 *     ebr-membar  only a compiler barrier, the reclaimer paying instead
 *                 with membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED).
 *
 * Part A: read-side cost, ns per enter+exit pair (one relaxed load of a
 *         shared word inside the section), with 1 and 2 reader threads,
 *         and with 1 reader while another thread runs grace periods back
 *         to back (the reader then pays for IPIs or cache-line transfers).
 * Part B: grace-period latency while 1 or 2 readers constantly enter and
 *         leave sections: synchronize_rcu() or the epoch scan (median,
 *         p99, max); the raw membarrier() call; and the deferred-free
 *         delay, from call_rcu() to its callback running, against a
 *         background reclaimer thread that is woken, runs an epoch grace
 *         period and "frees".
 *
 * Usage: ebr_vs_urcu [--quick] [--json] [--iters N] [--budget-ms MS]
 * Prints tables (or one JSON object per measurement with --json).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#define _LGPL_SOURCE
#include <urcu/urcu-memb.h>
#include <urcu/urcu-mb.h>
#include <urcu/urcu-qsbr.h>
#include <urcu/urcu-bp.h>

#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <sys/syscall.h>

#include "bench_util.h"

/* Including every flavour in one file leaves only the first flavour's
 * call_rcu prototypes declared (call-rcu.h is guarded); these are the
 * exported symbols of the other flavours, as declared by that header. */
void urcu_mb_call_rcu(struct rcu_head *head, void (*func)(struct rcu_head *));
void urcu_qsbr_call_rcu(struct rcu_head *head, void (*func)(struct rcu_head *));
void urcu_bp_call_rcu(struct rcu_head *head, void (*func)(struct rcu_head *));

/* The library-call (not inlined) read-side entry points of memb and bp;
 * _LGPL_SOURCE maps the public names to the inline versions. */
#undef urcu_memb_read_lock
#undef urcu_memb_read_unlock
#undef urcu_bp_read_lock
#undef urcu_bp_read_unlock
void urcu_memb_read_lock(void);
void urcu_memb_read_unlock(void);
void urcu_bp_read_lock(void);
void urcu_bp_read_unlock(void);

/* ------------------------------------------------------------------ */
/* Options and output                                                  */
/* ------------------------------------------------------------------ */
static uint64_t opt_iters = 5000000;   /* part A pairs per measurement */
static int opt_reps = 3;               /* part A: median of reps */
static uint64_t opt_budget_ns = 1500000000ull; /* part B per measurement */
static int opt_max_gp = 3000;          /* part B: most grace periods */
static int opt_max_defer = 400;        /* part B: most deferred frees */
static int opt_json;

static int membarrier_ok;

static long sys_membarrier(int cmd, unsigned flags)
{
    return syscall(__NR_membarrier, cmd, flags, 0);
}

/* ------------------------------------------------------------------ */
/* The shared word read inside every read-side section                 */
/* ------------------------------------------------------------------ */
static _Alignas(64) _Atomic uint64_t xshared_word = 42;

/* ------------------------------------------------------------------ */
/* Epoch model                                                          */
/* ------------------------------------------------------------------ */
#define EBR_MAX_RECS 256

struct ebr_rec {
    _Alignas(64) _Atomic uint64_t xepoch; /* 0: not pinned; else the
                                              global epoch seen at pin */
    unsigned nest;                         /* owner thread only */
};

static struct ebr_rec ebr_recs[EBR_MAX_RECS];
static _Atomic unsigned xebr_nrecs;
static _Alignas(64) _Atomic uint64_t xebr_global = 1;
static _Thread_local struct ebr_rec *ebr_tl;

static BU_NOINLINE struct ebr_rec *ebr_register(void)
{
    unsigned i = atomic_fetch_add(&xebr_nrecs, 1);
    if (i >= EBR_MAX_RECS) {
        fprintf(stderr, "ebr_vs_urcu: too many epoch records\n");
        exit(2);
    }
    ebr_tl = &ebr_recs[i];
    return ebr_tl;
}

static inline struct ebr_rec *ebr_rec(void)
{
    struct ebr_rec *r = ebr_tl;
    if (BU_UNLIKELY(!r))
        r = ebr_register();
    return r;
}

/* Pin, fence flavour: the record store must be visible to the reclaimer
 * before this thread loads any pointer of the structure (store->load
 * order, which x86 only gives with a full fence). */
static inline void ebr_pin_fence(void)
{
    struct ebr_rec *r = ebr_rec();
    if (r->nest++ == 0) {
        uint64_t e = atomic_load_explicit(&xebr_global, memory_order_relaxed);
        atomic_store_explicit(&r->xepoch, e, memory_order_relaxed);
        atomic_thread_fence(memory_order_seq_cst);
    }
}

/* Pin, exchange flavour: the same order from one locked instruction. */
static inline void ebr_pin_xchg(void)
{
    struct ebr_rec *r = ebr_rec();
    if (r->nest++ == 0) {
        uint64_t e = atomic_load_explicit(&xebr_global, memory_order_relaxed);
        (void)atomic_exchange_explicit(&r->xepoch, e, memory_order_seq_cst);
    }
}

/* Pin, membarrier flavour: only the compiler is kept from reordering;
 * the reclaimer's membarrier() supplies the fence on this CPU. */
static inline void ebr_pin_membar(void)
{
    struct ebr_rec *r = ebr_rec();
    if (r->nest++ == 0) {
        uint64_t e = atomic_load_explicit(&xebr_global, memory_order_relaxed);
        atomic_store_explicit(&r->xepoch, e, memory_order_relaxed);
        atomic_signal_fence(memory_order_seq_cst);
    }
}

/* Unpin: the release store orders the section's loads before it. */
static inline void ebr_unpin(void)
{
    struct ebr_rec *r = ebr_tl;
    if (--r->nest == 0)
        atomic_store_explicit(&r->xepoch, 0, memory_order_release);
}

static inline void cpu_relax(void)
{
    __asm__ __volatile__("pause" ::: "memory");
}

/* Wait until no record is pinned at an epoch older than target. */
static void ebr_wait_readers(uint64_t target)
{
    unsigned n = atomic_load(&xebr_nrecs);
    for (unsigned i = 0; i < n; i++) {
        unsigned spins = 0;
        for (;;) {
            uint64_t v = atomic_load_explicit(&ebr_recs[i].xepoch,
                                              memory_order_acquire);
            if (v == 0 || v >= target)
                break;
            if (++spins < 1000)
                cpu_relax();
            else
                sched_yield();
        }
    }
}

/* Grace period for the fence flavours: the seq_cst increment is a full
 * fence between the caller's unlink and the scan. */
static void ebr_gp_fence(void)
{
    uint64_t t = atomic_fetch_add(&xebr_global, 1) + 1;
    ebr_wait_readers(t);
}

/* Grace period for the membarrier flavour: membarrier() runs a full
 * fence on every CPU running a thread of this process, pairing with the
 * readers' compiler-only barrier. */
static void ebr_gp_membar(void)
{
    uint64_t t = atomic_fetch_add(&xebr_global, 1) + 1;
    if (sys_membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0) != 0) {
        perror("membarrier");
        exit(2);
    }
    ebr_wait_readers(t);
}

static void ebr_reset(void)
{
    memset(ebr_recs, 0, sizeof ebr_recs);
    atomic_store(&xebr_nrecs, 0);
}

static void raw_membarrier(void)
{
    if (sys_membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0) != 0) {
        perror("membarrier");
        exit(2);
    }
}

/* ------------------------------------------------------------------ */
/* Schemes                                                              */
/* ------------------------------------------------------------------ */

/* One reader loop per scheme, its enter/exit inlined.  Runs iters pairs,
 * or until *stop when iters is 0; returns the pairs done. */
#define READER_LOOP(NAME, ENTER, EXIT)                                     \
    static BU_NOINLINE uint64_t loop_##NAME(uint64_t iters,                \
                                            _Atomic int *stop)             \
    {                                                                      \
        uint64_t done = 0, acc = 0;                                        \
        for (;;) {                                                         \
            for (int k = 0; k < 256; k++) {                                \
                ENTER;                                                     \
                acc += atomic_load_explicit(&xshared_word,                 \
                                            memory_order_relaxed);         \
                EXIT;                                                      \
            }                                                              \
            done += 256;                                                   \
            if (iters ? done >= iters                                      \
                      : atomic_load_explicit(stop, memory_order_relaxed))  \
                break;                                                     \
        }                                                                  \
        BU_SINK(acc);                                                      \
        return done;                                                       \
    }

READER_LOOP(none, BU_COMPILER_BARRIER(), BU_COMPILER_BARRIER())
READER_LOOP(ebr_fence, ebr_pin_fence(), ebr_unpin())
READER_LOOP(ebr_xchg, ebr_pin_xchg(), ebr_unpin())
READER_LOOP(ebr_membar, ebr_pin_membar(), ebr_unpin())
READER_LOOP(memb, _urcu_memb_read_lock(), _urcu_memb_read_unlock())
READER_LOOP(memb_call, urcu_memb_read_lock(), urcu_memb_read_unlock())
READER_LOOP(mb, _urcu_mb_read_lock(), _urcu_mb_read_unlock())
READER_LOOP(qsbr, _urcu_qsbr_read_lock(),
            (_urcu_qsbr_read_unlock(), _urcu_qsbr_quiescent_state()))
READER_LOOP(qsbr_offline,
            (_urcu_qsbr_thread_online(), _urcu_qsbr_read_lock()),
            (_urcu_qsbr_read_unlock(), _urcu_qsbr_thread_offline()))
READER_LOOP(bp, _urcu_bp_read_lock(), _urcu_bp_read_unlock())
READER_LOOP(bp_call, urcu_bp_read_lock(), urcu_bp_read_unlock())

enum flavour { F_NONE, F_EBR, F_MEMB, F_MB, F_QSBR, F_QSBR_OFF, F_BP };

struct scheme {
    const char *name;
    const char *what;
    enum flavour fl;
    uint64_t (*loop)(uint64_t, _Atomic int *);
    void (*gp)(void);                 /* grace period; NULL: none */
    void (*call_rcu)(struct rcu_head *, void (*)(struct rcu_head *));
    int needs_membarrier;
};

static void nop_gp(void) {}

static const struct scheme schemes[] = {
    {"baseline", "loop + shared load, no protection", F_NONE, loop_none,
     NULL, NULL, 0},
    {"ebr-fence", "TLS record, store + seq_cst fence", F_EBR, loop_ebr_fence,
     ebr_gp_fence, NULL, 0},
    {"ebr-xchg", "TLS record, seq_cst xchg", F_EBR, loop_ebr_xchg,
     ebr_gp_fence, NULL, 0},
    {"ebr-membar", "TLS record, compiler barrier; GP membarrier", F_EBR,
     loop_ebr_membar, ebr_gp_membar, NULL, 1},
    {"urcu-memb", "inline (_LGPL_SOURCE)", F_MEMB, loop_memb,
     urcu_memb_synchronize_rcu, urcu_memb_call_rcu, 0},
    {"urcu-memb/call", "through liburcu-memb.so", F_MEMB, loop_memb_call,
     urcu_memb_synchronize_rcu, urcu_memb_call_rcu, 0},
    {"urcu-mb", "inline", F_MB, loop_mb, urcu_mb_synchronize_rcu,
     urcu_mb_call_rcu, 0},
    {"urcu-qsbr", "inline, quiescent_state after each section", F_QSBR,
     loop_qsbr, urcu_qsbr_synchronize_rcu, urcu_qsbr_call_rcu, 0},
    {"urcu-qsbr/offline", "inline, online..offline around each section",
     F_QSBR_OFF, loop_qsbr_offline, urcu_qsbr_synchronize_rcu,
     urcu_qsbr_call_rcu, 0},
    {"urcu-bp", "inline, no registration", F_BP, loop_bp,
     urcu_bp_synchronize_rcu, urcu_bp_call_rcu, 0},
    {"urcu-bp/call", "through liburcu-bp.so", F_BP, loop_bp_call,
     urcu_bp_synchronize_rcu, urcu_bp_call_rcu, 0},
};
#define NSCHEMES (sizeof schemes / sizeof schemes[0])

static void thread_register(enum flavour fl)
{
    switch (fl) {
    case F_MEMB: urcu_memb_register_thread(); break;
    case F_MB: urcu_mb_register_thread(); break;
    case F_QSBR: urcu_qsbr_register_thread(); break;
    case F_QSBR_OFF:
        urcu_qsbr_register_thread();
        urcu_qsbr_thread_offline();
        break;
    default: break;
    }
}

static void thread_unregister(enum flavour fl)
{
    switch (fl) {
    case F_MEMB: urcu_memb_unregister_thread(); break;
    case F_MB: urcu_mb_unregister_thread(); break;
    case F_QSBR: urcu_qsbr_unregister_thread(); break;
    case F_QSBR_OFF:
        urcu_qsbr_thread_online();
        urcu_qsbr_unregister_thread();
        break;
    default: break;
    }
}

/* ------------------------------------------------------------------ */
/* Threads                                                              */
/* ------------------------------------------------------------------ */
struct reader_arg {
    const struct scheme *s;
    uint64_t iters;          /* 0: run until stop */
    _Atomic int *stop;
    _Atomic int *ready;
    _Atomic int *go;
    uint64_t ns;             /* out: elapsed */
    uint64_t pairs;          /* out */
};

static void *reader_main(void *p)
{
    struct reader_arg *a = p;
    thread_register(a->s->fl);
    a->s->loop(1024, a->stop); /* warm the record and the caches */
    atomic_fetch_add(a->ready, 1);
    while (!atomic_load(a->go))
        cpu_relax();
    uint64_t t0 = bu_now_ns();
    a->pairs = a->s->loop(a->iters, a->stop);
    a->ns = bu_now_ns() - t0;
    thread_unregister(a->s->fl);
    return NULL;
}

struct gp_loop_arg {
    const struct scheme *s;
    _Atomic int *stop;
    uint64_t gps;
};

static void *gp_loop_main(void *p)
{
    struct gp_loop_arg *a = p;
    void (*gp)(void) = a->s->gp ? a->s->gp : nop_gp;
    while (!atomic_load_explicit(a->stop, memory_order_relaxed)) {
        gp();
        a->gps++;
    }
    return NULL;
}

static void xpthread_create(pthread_t *t, void *(*fn)(void *), void *arg)
{
    int e = pthread_create(t, NULL, fn, arg);
    if (e) {
        fprintf(stderr, "pthread_create: %s\n", strerror(e));
        exit(2);
    }
}

/* ------------------------------------------------------------------ */
/* Part A                                                               */
/* ------------------------------------------------------------------ */

/* ns per pair, mean over the readers, one measurement. */
static double part_a_once(const struct scheme *s, int nreaders, int busy_gp)
{
    pthread_t th[8], gpt;
    struct reader_arg ra[8];
    struct gp_loop_arg ga = {s, NULL, 0};
    _Atomic int stop = 0, gstop = 0, ready = 0, go = 0;

    ebr_reset();
    for (int i = 0; i < nreaders; i++) {
        ra[i] = (struct reader_arg){s, opt_iters, &stop, &ready, &go, 0, 0};
        xpthread_create(&th[i], reader_main, &ra[i]);
    }
    while (atomic_load(&ready) < nreaders)
        sched_yield();
    if (busy_gp) {
        ga.stop = &gstop;
        xpthread_create(&gpt, gp_loop_main, &ga);
    }
    atomic_store(&go, 1);
    double sum = 0;
    for (int i = 0; i < nreaders; i++) {
        pthread_join(th[i], NULL);
        sum += (double)ra[i].ns / (double)ra[i].pairs;
    }
    if (busy_gp) {
        atomic_store(&gstop, 1);
        pthread_join(gpt, NULL);
    }
    return sum / nreaders;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double part_a(const struct scheme *s, int nreaders, int busy_gp)
{
    double v[16];
    int reps = opt_reps > 16 ? 16 : opt_reps;
    for (int r = 0; r < reps; r++)
        v[r] = part_a_once(s, nreaders, busy_gp);
    qsort(v, (size_t)reps, sizeof v[0], cmp_double);
    return v[reps / 2];
}

/* ------------------------------------------------------------------ */
/* Part B                                                               */
/* ------------------------------------------------------------------ */
struct dist {
    uint64_t med, p99, max;
    size_t n;
};

static struct dist dist_of(uint64_t *v, size_t n)
{
    struct dist d = {0, 0, 0, n};
    if (n == 0)
        return d;
    bu_sort_u64(v, n);
    d.med = bu_pct(v, n, 0.5);
    d.p99 = bu_pct(v, n, 0.99);
    d.max = v[n - 1];
    return d;
}

struct readers {
    pthread_t th[8];
    struct reader_arg ra[8];
    int n;
    _Atomic int stop, ready, go;
};

static void readers_start(struct readers *rd, const struct scheme *s, int n)
{
    rd->n = n;
    atomic_store(&rd->stop, 0);
    atomic_store(&rd->ready, 0);
    atomic_store(&rd->go, 1);
    for (int i = 0; i < n; i++) {
        rd->ra[i] = (struct reader_arg){s, 0, &rd->stop, &rd->ready, &rd->go,
                                        0, 0};
        xpthread_create(&rd->th[i], reader_main, &rd->ra[i]);
    }
    while (atomic_load(&rd->ready) < n)
        sched_yield();
    struct timespec ts = {0, 20 * 1000 * 1000}; /* let them run */
    nanosleep(&ts, NULL);
}

static void readers_stop(struct readers *rd)
{
    atomic_store(&rd->stop, 1);
    for (int i = 0; i < rd->n; i++)
        pthread_join(rd->th[i], NULL);
}

/* Grace-period durations of fn while the readers run. */
static struct dist measure_gp(void (*fn)(void), uint64_t *buf)
{
    size_t n = 0;
    uint64_t start = bu_now_ns();
    while (n < (size_t)opt_max_gp && bu_now_ns() - start < opt_budget_ns) {
        uint64_t t0 = bu_now_ns();
        fn();
        buf[n++] = bu_now_ns() - t0;
    }
    return dist_of(buf, n);
}

/* Deferred free through call_rcu: time from call_rcu to the callback. */
struct defer_item {
    struct rcu_head head;
    uint64_t t0, t1;
    sem_t *done;
};

static void defer_cb(struct rcu_head *h)
{
    struct defer_item *it = (struct defer_item *)h;
    it->t1 = bu_now_ns();
    sem_post(it->done);
}

static struct dist measure_call_rcu(const struct scheme *s, uint64_t *buf)
{
    sem_t done;
    struct defer_item it;
    size_t n = 0;
    sem_init(&done, 0, 0);
    thread_register(s->fl == F_QSBR_OFF ? F_QSBR : s->fl);
    uint64_t start = bu_now_ns();
    while (n < (size_t)opt_max_defer && bu_now_ns() - start < opt_budget_ns) {
        it.done = &done;
        if (s->fl == F_QSBR)
            urcu_qsbr_thread_online();
        it.t0 = bu_now_ns();
        s->call_rcu(&it.head, defer_cb);
        if (s->fl == F_QSBR) /* a blocked online thread stalls the GP */
            urcu_qsbr_thread_offline();
        while (sem_wait(&done) != 0 && errno == EINTR) {
        }
        buf[n++] = it.t1 - it.t0;
    }
    if (s->fl == F_QSBR)
        urcu_qsbr_thread_online();
    thread_unregister(s->fl == F_QSBR_OFF ? F_QSBR : s->fl);
    sem_destroy(&done);
    return dist_of(buf, n);
}

/* The epoch model's equivalent: a background reclaimer thread that
 * sleeps until woken, runs a grace period, then "frees". */
struct reclaimer {
    const struct scheme *s;
    sem_t wake, done;
    _Atomic int stop;
    uint64_t t1;
    pthread_t th;
};

static void *reclaimer_main(void *p)
{
    struct reclaimer *r = p;
    for (;;) {
        while (sem_wait(&r->wake) != 0 && errno == EINTR) {
        }
        if (atomic_load(&r->stop))
            return NULL;
        r->s->gp();
        r->t1 = bu_now_ns();
        sem_post(&r->done);
    }
}

static struct dist measure_ebr_defer(const struct scheme *s, uint64_t *buf)
{
    struct reclaimer r;
    size_t n = 0;
    r.s = s;
    sem_init(&r.wake, 0, 0);
    sem_init(&r.done, 0, 0);
    atomic_store(&r.stop, 0);
    xpthread_create(&r.th, reclaimer_main, &r);
    uint64_t start = bu_now_ns();
    while (n < (size_t)opt_max_defer && bu_now_ns() - start < opt_budget_ns) {
        uint64_t t0 = bu_now_ns();
        sem_post(&r.wake);
        while (sem_wait(&r.done) != 0 && errno == EINTR) {
        }
        buf[n++] = r.t1 - t0;
    }
    atomic_store(&r.stop, 1);
    sem_post(&r.wake);
    pthread_join(r.th, NULL);
    sem_destroy(&r.wake);
    sem_destroy(&r.done);
    return dist_of(buf, n);
}

/* ------------------------------------------------------------------ */
/* Reporting                                                            */
/* ------------------------------------------------------------------ */
static void us(char *b, size_t len, uint64_t ns)
{
    snprintf(b, len, "%.1f", (double)ns / 1000.0);
}

static void print_dist_row(const char *scheme, const char *what, int readers,
                           struct dist d)
{
    if (opt_json) {
        printf("{\"part\":\"B\",\"scheme\":\"%s\",\"what\":\"%s\","
               "\"readers\":%d,\"median_ns\":%llu,\"p99_ns\":%llu,"
               "\"max_ns\":%llu,\"count\":%zu}\n",
               scheme, what, readers, (unsigned long long)d.med,
               (unsigned long long)d.p99, (unsigned long long)d.max, d.n);
    } else {
        char a[32], b[32], c[32];
        us(a, sizeof a, d.med);
        us(b, sizeof b, d.p99);
        us(c, sizeof c, d.max);
        printf("| %-18s | %-28s | %7d | %10s | %10s | %10s | %6zu |\n",
               scheme, what, readers, a, b, c, d.n);
    }
    fflush(stdout);
}

static void run_part_a(void)
{
    if (!opt_json) {
        printf("\n## A. read-side cost, ns per enter+exit pair "
               "(median of %d x %llu pairs)\n\n",
               opt_reps, (unsigned long long)opt_iters);
        printf("| %-18s | %-44s | %9s | %9s | %13s |\n", "scheme", "how",
               "1 reader", "2 readers", "1 rdr + GPs");
        printf("|--------------------|----------------------------------------------"
               "|----------:|----------:|--------------:|\n");
    }
    for (size_t i = 0; i < NSCHEMES; i++) {
        const struct scheme *s = &schemes[i];
        if (s->needs_membarrier && !membarrier_ok)
            continue;
        double r1 = part_a(s, 1, 0);
        double r2 = part_a(s, 2, 0);
        double rg = s->gp ? part_a(s, 1, 1) : -1;
        if (opt_json) {
            printf("{\"part\":\"A\",\"scheme\":\"%s\",\"readers\":1,"
                   "\"busy_gp\":0,\"ns_per_pair\":%.3f}\n", s->name, r1);
            printf("{\"part\":\"A\",\"scheme\":\"%s\",\"readers\":2,"
                   "\"busy_gp\":0,\"ns_per_pair\":%.3f}\n", s->name, r2);
            if (rg >= 0)
                printf("{\"part\":\"A\",\"scheme\":\"%s\",\"readers\":1,"
                       "\"busy_gp\":1,\"ns_per_pair\":%.3f}\n", s->name, rg);
        } else {
            char g[32] = "-";
            if (rg >= 0)
                snprintf(g, sizeof g, "%.2f", rg);
            printf("| %-18s | %-44s | %9.2f | %9.2f | %13s |\n", s->name,
                   s->what, r1, r2, g);
        }
        fflush(stdout);
    }
}

static void run_part_b(void)
{
    size_t cap = (size_t)(opt_max_gp > opt_max_defer ? opt_max_gp
                                                     : opt_max_defer);
    uint64_t *buf = malloc(cap * sizeof *buf);
    if (!buf) {
        perror("malloc");
        exit(2);
    }
    if (!opt_json) {
        printf("\n## B. grace period and deferred-free delay, microseconds, "
               "readers constantly entering/leaving\n\n");
        printf("| %-18s | %-28s | %7s | %10s | %10s | %10s | %6s |\n",
               "scheme", "what", "readers", "median", "p99", "max", "count");
        printf("|--------------------|------------------------------|"
               "--------:|-----------:|-----------:|-----------:|-------:|\n");
    }
    static const char *order[] = {"ebr-fence", "ebr-membar", "urcu-memb",
                                  "urcu-mb", "urcu-qsbr", "urcu-bp"};
    for (int nr = 1; nr <= 2; nr++) {
        for (size_t o = 0; o < sizeof order / sizeof order[0]; o++) {
            const struct scheme *s = NULL;
            for (size_t i = 0; i < NSCHEMES; i++)
                if (strcmp(schemes[i].name, order[o]) == 0)
                    s = &schemes[i];
            if (!s || (s->needs_membarrier && !membarrier_ok))
                continue;
            struct readers rd;
            ebr_reset();
            readers_start(&rd, s, nr);
            print_dist_row(s->name,
                           s->fl == F_EBR ? "epoch grace period"
                                          : "synchronize_rcu()",
                           nr, measure_gp(s->gp, buf));
            if (s->fl == F_EBR)
                print_dist_row(s->name, "reclaimer wake+GP", nr,
                               measure_ebr_defer(s, buf));
            else
                print_dist_row(s->name, "call_rcu -> callback", nr,
                               measure_call_rcu(s, buf));
            if (s->needs_membarrier)
                print_dist_row("membarrier()", "PRIVATE_EXPEDITED alone", nr,
                               measure_gp(raw_membarrier, buf));
            readers_stop(&rd);
        }
    }
    free(buf);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: ebr_vs_urcu [--quick] [--json] [--iters N] [--reps R]\n"
            "                   [--budget-ms MS] [--part A|B]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *part = "AB";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            opt_iters = 500000;
            opt_reps = 1;
            opt_budget_ns = 200000000ull;
            opt_max_gp = 300;
            opt_max_defer = 50;
        } else if (strcmp(argv[i], "--json") == 0) {
            opt_json = 1;
        } else if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc) {
            opt_iters = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            opt_reps = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--budget-ms") == 0 && i + 1 < argc) {
            opt_budget_ns = strtoull(argv[++i], NULL, 10) * 1000000ull;
        } else if (strcmp(argv[i], "--part") == 0 && i + 1 < argc) {
            part = argv[++i];
        } else {
            usage();
        }
    }
    if (opt_iters < 256 || opt_reps < 1)
        usage();

    long q = sys_membarrier(MEMBARRIER_CMD_QUERY, 0);
    membarrier_ok = q > 0 && (q & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
                    sys_membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
                                   0) == 0;
    char date[32];
    bu_date(date, sizeof date);
    if (!opt_json) {
        printf("# ebr_vs_urcu  %s  nproc=%ld\n", date,
               sysconf(_SC_NPROCESSORS_ONLN));
        printf("membarrier PRIVATE_EXPEDITED: %s; liburcu-memb uses "
               "sys_membarrier: %d; urcu-bp: %d\n",
               membarrier_ok ? "yes" : "NO (ebr-membar skipped)",
               urcu_memb_has_sys_membarrier, urcu_bp_has_sys_membarrier);
    }
    if (strchr(part, 'A'))
        run_part_a();
    if (strchr(part, 'B'))
        run_part_b();
    return 0;
}
