/*
 * testutil.h — helpers shared by the stillmap tests.
 *
 *   ASSERT_*            checks that print file:line, the expression and both
 *                       operands, then abort; they ignore NDEBUG.
 *   tu_scale()          the SM_TEST_SCALE factor (default 1.0).
 *   tu_rng              splitmix64 generator; tu_mix64 the stateless mixer.
 *   tu_now_ns()         monotonic clock; tu_sleep_us().
 *   tu_args             --threads / --n / --ops / --seconds / --seed parser.
 *   tu_alloc            counting, failing sm_allocator (thread-safe).
 *   tu_hooks            counting removal hook.
 *   tu_barrier          a small reusable thread barrier.
 *
 * Include this header first: it selects the POSIX feature level.
 */
#ifndef SM_TESTUTIL_H
#define SM_TESTUTIL_H

#if !defined(_POSIX_C_SOURCE) && !defined(_GNU_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stillmap.h"

/* ---------------------------------------------------------------------
 * Failure reporting
 * ------------------------------------------------------------------- */

/* Per-thread context line printed with any failure (seed, step, ...). */
static _Thread_local char tu_context_buf[256];

static inline void tu_context(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tu_context_buf, sizeof tu_context_buf, fmt, ap);
    va_end(ap);
}

static inline void tu_print_context(void) {
    if (tu_context_buf[0])
        fprintf(stderr, "  context: %s\n", tu_context_buf);
}

#if defined(__GNUC__)
#define TU_NORETURN __attribute__((noreturn))
#define TU_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define TU_NORETURN
#define TU_PRINTF(a, b)
#endif

static inline TU_NORETURN TU_PRINTF(3, 4)
void tu_die(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "%s:%d: FAILED: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    tu_print_context();
    fflush(stderr);
    fflush(stdout);
    abort();
}

static inline TU_NORETURN
void tu_cmp_fail(const char *file, int line, const char *sa, const char *op,
                 const char *sb, unsigned long long a, unsigned long long b) {
    tu_die(file, line,
           "%s %s %s\n  left : %lld (%llu, 0x%llx)\n  right: %lld (%llu, 0x%llx)",
           sa, op, sb, (long long)a, a, a, (long long)b, b, b);
}

static inline const char *tu_name(int st) { return sm_errname(st); }

static inline TU_NORETURN
void tu_status_fail(const char *file, int line, const char *expr, int got,
                    const char *want) {
    tu_die(file, line, "%s\n  returned %s (%d: %s), expected %s", expr,
           sm_errname(got), got, sm_strerror(got), want);
}

#define ASSERT_TRUE(e)                                                       \
    do {                                                                     \
        if (!(e))                                                            \
            tu_die(__FILE__, __LINE__, "ASSERT_TRUE(%s)", #e);               \
    } while (0)

#define ASSERT_FALSE(e)                                                      \
    do {                                                                     \
        if (e)                                                               \
            tu_die(__FILE__, __LINE__, "ASSERT_FALSE(%s)", #e);              \
    } while (0)

#define FAIL(...) tu_die(__FILE__, __LINE__, __VA_ARGS__)

/* Integer comparisons.  Both operands are evaluated once and compared as
 * unsigned long long (EQ/NE are bitwise equality, so signed values work
 * too; the ordering forms are for counts and sizes). */
#define TU_CMP_(a, op, b)                                                    \
    do {                                                                     \
        unsigned long long tu_a_ = (unsigned long long)(a);                  \
        unsigned long long tu_b_ = (unsigned long long)(b);                  \
        if (!(tu_a_ op tu_b_))                                               \
            tu_cmp_fail(__FILE__, __LINE__, #a, #op, #b, tu_a_, tu_b_);      \
    } while (0)

#define ASSERT_EQ(a, b) TU_CMP_(a, ==, b)
#define ASSERT_NE(a, b) TU_CMP_(a, !=, b)
#define ASSERT_LT(a, b) TU_CMP_(a, <, b)
#define ASSERT_LE(a, b) TU_CMP_(a, <=, b)
#define ASSERT_GT(a, b) TU_CMP_(a, >, b)
#define ASSERT_GE(a, b) TU_CMP_(a, >=, b)

/* Status checks print sm_errname of what came back and what was wanted. */
#define ASSERT_STATUS(expr, want)                                            \
    do {                                                                     \
        int tu_got_ = (expr);                                                \
        int tu_want_ = (want);                                               \
        if (tu_got_ != tu_want_)                                             \
            tu_status_fail(__FILE__, __LINE__, #expr, tu_got_,               \
                           sm_errname(tu_want_));                            \
    } while (0)

#define ASSERT_OK(expr) ASSERT_STATUS(expr, SM_OK)

/* Either of two statuses. */
#define ASSERT_STATUS2(expr, w1, w2)                                         \
    do {                                                                     \
        int tu_got_ = (expr);                                                \
        if (tu_got_ != (w1) && tu_got_ != (w2))                              \
            tu_status_fail(__FILE__, __LINE__, #expr, tu_got_,               \
                           #w1 " or " #w2);                                  \
    } while (0)

#define ASSERT_STREQ(a, b)                                                   \
    do {                                                                     \
        const char *tu_sa_ = (a), *tu_sb_ = (b);                             \
        if (tu_sa_ == NULL || tu_sb_ == NULL || strcmp(tu_sa_, tu_sb_) != 0) \
            tu_die(__FILE__, __LINE__, "%s == %s\n  left : \"%s\"\n"         \
                   "  right: \"%s\"", #a, #b, tu_sa_ ? tu_sa_ : "(null)",    \
                   tu_sb_ ? tu_sb_ : "(null)");                              \
    } while (0)

/* ---------------------------------------------------------------------
 * Scale, random numbers, clock
 * ------------------------------------------------------------------- */

/* SM_TEST_SCALE as a double; 1.0 when unset or unparsable. */
static inline double tu_scale(void) {
    const char *s = getenv("SM_TEST_SCALE");
    if (s == NULL || *s == '\0')
        return 1.0;
    char *end = NULL;
    double v = strtod(s, &end);
    if (end == s || !(v > 0.0) || v > 1000.0)
        return 1.0;
    return v;
}

/* n scaled by SM_TEST_SCALE, never below min. */
static inline long long tu_scaled(long long n, long long min) {
    double v = (double)n * tu_scale();
    long long r = (long long)(v + 0.5);
    return r < min ? min : r;
}

/* splitmix64: the stateless finaliser and a sequential generator. */
static inline uint64_t tu_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

typedef struct tu_rng {
    uint64_t s;
} tu_rng;

static inline tu_rng tu_rng_make(uint64_t seed) {
    tu_rng r = {seed};
    return r;
}

static inline uint64_t tu_rng_next(tu_rng *r) {
    r->s += 0x9e3779b97f4a7c15ull;
    return tu_mix64(r->s);
}

/* Uniform-enough integer in [0, n); n > 0. */
static inline uint64_t tu_rng_below(tu_rng *r, uint64_t n) {
    return tu_rng_next(r) % n;
}

/* 1 with probability num/den. */
static inline int tu_rng_chance(tu_rng *r, unsigned num, unsigned den) {
    return tu_rng_below(r, den) < num;
}

static inline uint64_t tu_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline double tu_now_s(void) { return (double)tu_now_ns() * 1e-9; }

static inline void tu_sleep_us(unsigned long us) {
    struct timespec ts;
    ts.tv_sec = (time_t)(us / 1000000ul);
    ts.tv_nsec = (long)(us % 1000000ul) * 1000l;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* How long a test waits for the background reclaimer before it calls
 * a missing removal hook a failure.  Generous: this bounds a wait, it
 * does not measure anything. */
#define TU_HOOK_WAIT_S 20.0

/* Poll until cond holds (ok = 1) or secs pass (ok = 0), sleeping 1 ms. */
#define TU_WAIT_UNTIL(ok, cond, secs)                                        \
    do {                                                                     \
        double tu_deadline_ = tu_now_s() + (secs);                           \
        for (;;) {                                                           \
            if (cond) {                                                      \
                (ok) = 1;                                                    \
                break;                                                       \
            }                                                                \
            if (tu_now_s() > tu_deadline_) {                                 \
                (ok) = 0;                                                    \
                break;                                                       \
            }                                                                \
            tu_sleep_us(1000);                                               \
        }                                                                    \
    } while (0)

/* ---------------------------------------------------------------------
 * Command line: --threads N --n N --ops N --seconds S --seed N
 * (also --name=value).  Fields keep the caller's defaults unless given.
 * ------------------------------------------------------------------- */
typedef struct tu_args {
    int threads;
    long long n;
    long long ops;
    double seconds;        /* 0 = no time cap */
    unsigned long long seed;
    int seed_given;
} tu_args;

static inline TU_NORETURN void tu_usage(const char *prog, const char *bad) {
    fprintf(stderr,
            "%s: bad argument '%s'\n"
            "usage: %s [--threads N] [--n N] [--ops N] [--seconds S] "
            "[--seed N]\n"
            "sizes and counts are multiplied by SM_TEST_SCALE\n",
            prog, bad ? bad : "", prog);
    exit(2);
}

static inline void tu_parse_args(int argc, char **argv, tu_args *a) {
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *val = NULL;
        char name[32];
        const char *eq = strchr(arg, '=');
        if (strncmp(arg, "--", 2) != 0)
            tu_usage(argv[0], arg);
        if (eq) {
            size_t n = (size_t)(eq - arg);
            if (n >= sizeof name)
                tu_usage(argv[0], arg);
            memcpy(name, arg, n);
            name[n] = '\0';
            val = eq + 1;
        } else {
            if (strlen(arg) >= sizeof name || i + 1 >= argc)
                tu_usage(argv[0], arg);
            strcpy(name, arg);
            val = argv[++i];
        }
        char *end = NULL;
        errno = 0;
        if (strcmp(name, "--threads") == 0) {
            long v = strtol(val, &end, 0);
            if (*end || v < 1 || v > 1024)
                tu_usage(argv[0], arg);
            a->threads = (int)v;
        } else if (strcmp(name, "--n") == 0) {
            long long v = strtoll(val, &end, 0);
            if (*end || v < 1)
                tu_usage(argv[0], arg);
            a->n = v;
        } else if (strcmp(name, "--ops") == 0) {
            long long v = strtoll(val, &end, 0);
            if (*end || v < 1)
                tu_usage(argv[0], arg);
            a->ops = v;
        } else if (strcmp(name, "--seconds") == 0) {
            double v = strtod(val, &end);
            if (*end || v < 0)
                tu_usage(argv[0], arg);
            a->seconds = v;
        } else if (strcmp(name, "--seed") == 0) {
            unsigned long long v = strtoull(val, &end, 0);
            if (*end || errno)
                tu_usage(argv[0], arg);
            a->seed = v;
            a->seed_given = 1;
        } else {
            tu_usage(argv[0], arg);
        }
    }
}

/* ---------------------------------------------------------------------
 * Counting, failing allocator.
 *
 * Every block carries a 16-byte header with its size and a magic word, so
 * free can check that it gets back the size given to malloc and that the
 * block is live.  Arm it with tu_alloc_arm(a, k): the k-th malloc call
 * from then on fails (k = 1: the next one); with sticky set, every call
 * from the k-th on fails.  All counters are atomics: the hooks may run on
 * any thread, the library's background thread included.
 * ------------------------------------------------------------------- */
#define TU_ALLOC_HDR 16u
#define TU_ALLOC_MAGIC 0x5441434bull      /* live block */
#define TU_ALLOC_DEAD 0x44454144ull       /* freed block */

typedef struct tu_alloc {
    sm_allocator base;             /* pass &a->base in sm_options */
    atomic_llong calls;            /* malloc calls */
    atomic_llong frees;            /* free calls */
    atomic_int armed;
    atomic_llong countdown;
    int sticky;
    atomic_llong injected;         /* failures injected */
    atomic_llong injected_foreign; /* ... on a thread other than the owner */
    atomic_llong last_fail_size;
    atomic_llong outstanding;      /* live blocks */
    atomic_llong outstanding_bytes;
    atomic_llong peak_bytes;
    atomic_llong bad_frees;        /* wrong size, unknown or freed block */
    atomic_llong foreign_calls;    /* malloc calls from non-owner threads */
    atomic_llong max_size;         /* largest block asked for */
    pthread_t owner;               /* see tu_alloc_set_owner */
    int owner_set;
} tu_alloc;

static inline void *tu_alloc_malloc_(void *ctx, size_t size) {
    tu_alloc *a = (tu_alloc *)ctx;
    int foreign = a->owner_set && !pthread_equal(pthread_self(), a->owner);
    atomic_fetch_add(&a->calls, 1);
    if (foreign)
        atomic_fetch_add(&a->foreign_calls, 1);
    long long ms = atomic_load(&a->max_size);
    while ((long long)size > ms &&
           !atomic_compare_exchange_weak(&a->max_size, &ms, (long long)size)) {
    }
    if (atomic_load(&a->armed)) {
        long long prev = atomic_fetch_sub(&a->countdown, 1);
        if (prev == 1 || (prev < 1 && a->sticky)) {
            if (!a->sticky)
                atomic_store(&a->armed, 0);
            atomic_fetch_add(&a->injected, 1);
            if (foreign)
                atomic_fetch_add(&a->injected_foreign, 1);
            atomic_store(&a->last_fail_size, (long long)size);
            return NULL;
        }
    }
    if (size > SIZE_MAX - TU_ALLOC_HDR)
        return NULL;
    unsigned char *p = (unsigned char *)malloc(size + TU_ALLOC_HDR);
    if (p == NULL)
        return NULL;
    uint64_t hdr[2] = {(uint64_t)size, TU_ALLOC_MAGIC};
    memcpy(p, hdr, sizeof hdr);
    atomic_fetch_add(&a->outstanding, 1);
    long long now = atomic_fetch_add(&a->outstanding_bytes, (long long)size) +
                    (long long)size;
    long long peak = atomic_load(&a->peak_bytes);
    while (now > peak &&
           !atomic_compare_exchange_weak(&a->peak_bytes, &peak, now)) {
    }
    return p + TU_ALLOC_HDR;
}

static inline void tu_alloc_free_(void *ctx, void *ptr, size_t size) {
    tu_alloc *a = (tu_alloc *)ctx;
    atomic_fetch_add(&a->frees, 1);
    if (ptr == NULL)
        return;
    unsigned char *p = (unsigned char *)ptr - TU_ALLOC_HDR;
    uint64_t hdr[2];
    memcpy(hdr, p, sizeof hdr);
    if (hdr[1] != TU_ALLOC_MAGIC) {
        atomic_fetch_add(&a->bad_frees, 1);
        fprintf(stderr, "tu_alloc: free of %s block %p (size %zu)\n",
                hdr[1] == TU_ALLOC_DEAD ? "an already freed" : "an unknown",
                ptr, size);
        return; /* leak it rather than corrupt the heap */
    }
    if (hdr[0] != (uint64_t)size) {
        atomic_fetch_add(&a->bad_frees, 1);
        fprintf(stderr, "tu_alloc: free(%p, %zu) of a block of %llu bytes\n",
                ptr, size, (unsigned long long)hdr[0]);
    }
    hdr[1] = TU_ALLOC_DEAD;
    memcpy(p, hdr, sizeof hdr);
    atomic_fetch_sub(&a->outstanding, 1);
    atomic_fetch_sub(&a->outstanding_bytes, (long long)hdr[0]);
    free(p);
}

static inline void tu_alloc_init(tu_alloc *a) {
    memset(a, 0, sizeof *a);
    a->base.malloc = tu_alloc_malloc_;
    a->base.free = tu_alloc_free_;
    a->base.ctx = a;
    atomic_init(&a->calls, 0);
    atomic_init(&a->frees, 0);
    atomic_init(&a->armed, 0);
    atomic_init(&a->countdown, 0);
    atomic_init(&a->injected, 0);
    atomic_init(&a->injected_foreign, 0);
    atomic_init(&a->last_fail_size, 0);
    atomic_init(&a->outstanding, 0);
    atomic_init(&a->outstanding_bytes, 0);
    atomic_init(&a->peak_bytes, 0);
    atomic_init(&a->bad_frees, 0);
    atomic_init(&a->foreign_calls, 0);
    atomic_init(&a->max_size, 0);
}

/* Count calls from threads other than the caller as "foreign". */
static inline void tu_alloc_set_owner(tu_alloc *a) {
    a->owner = pthread_self();
    a->owner_set = 1;
}

/* Fail the k-th malloc call from now on (k >= 1). */
static inline void tu_alloc_arm(tu_alloc *a, long long k, int sticky) {
    a->sticky = sticky;
    atomic_store(&a->countdown, k);
    atomic_store(&a->armed, 1);
}

static inline void tu_alloc_disarm(tu_alloc *a) {
    atomic_store(&a->armed, 0);
}

static inline long long tu_alloc_outstanding(tu_alloc *a) {
    return atomic_load(&a->outstanding);
}

/* ---------------------------------------------------------------------
 * Removal hook that counts calls, per reason, with a checksum per reason
 * (sum and xor of the values).  ctx is a tu_hooks.
 * ------------------------------------------------------------------- */
typedef struct tu_hooks {
    atomic_ullong calls;
    atomic_ullong by_reason[5];     /* index: sm_reason */
    atomic_ullong sum[5];           /* wrapping sum of values */
    atomic_ullong xr[5];            /* xor of values */
    atomic_ullong bad_reason;
} tu_hooks;

static inline void tu_hooks_init(tu_hooks *h) {
    atomic_init(&h->calls, 0);
    atomic_init(&h->bad_reason, 0);
    for (int i = 0; i < 5; i++) {
        atomic_init(&h->by_reason[i], 0);
        atomic_init(&h->sum[i], 0);
        atomic_init(&h->xr[i], 0);
    }
}

static inline void tu_hooks_fn(void *ctx, uint64_t value, sm_reason reason) {
    tu_hooks *h = (tu_hooks *)ctx;
    int r = (int)reason;
    if (r < SM_REMOVED_DELETE || r > SM_REMOVED_DESTROY) {
        atomic_fetch_add(&h->bad_reason, 1);
        r = 0;
    }
    atomic_fetch_add(&h->by_reason[r], 1);
    atomic_fetch_add(&h->sum[r], value);
    atomic_fetch_xor(&h->xr[r], value);
    atomic_fetch_add(&h->calls, 1);
}

/* The expected side of a tu_hooks, kept by a single-threaded model. */
typedef struct tu_hook_expect {
    unsigned long long count[5];
    unsigned long long sum[5];
    unsigned long long xr[5];
} tu_hook_expect;

static inline void tu_expect_hook(tu_hook_expect *e, uint64_t value,
                                  sm_reason reason) {
    e->count[reason]++;
    e->sum[reason] += value;
    e->xr[reason] ^= value;
}

static inline unsigned long long tu_expect_total(const tu_hook_expect *e) {
    unsigned long long t = 0;
    for (int i = 0; i < 5; i++)
        t += e->count[i];
    return t;
}

/* Exact comparison; only valid once no hook can still be pending (after
 * sm_destroy, or after waiting for the count). */
#define ASSERT_HOOKS_MATCH(h, e)                                             \
    do {                                                                     \
        ASSERT_EQ(atomic_load(&(h)->bad_reason), 0);                         \
        for (int tu_r_ = 1; tu_r_ <= 4; tu_r_++) {                           \
            tu_context("hook reason %d", tu_r_);                             \
            ASSERT_EQ(atomic_load(&(h)->by_reason[tu_r_]), (e)->count[tu_r_]); \
            ASSERT_EQ(atomic_load(&(h)->sum[tu_r_]), (e)->sum[tu_r_]);       \
            ASSERT_EQ(atomic_load(&(h)->xr[tu_r_]), (e)->xr[tu_r_]);         \
        }                                                                    \
        tu_context("%s", "");                                                \
    } while (0)

/* ---------------------------------------------------------------------
 * Threads
 * ------------------------------------------------------------------- */
static inline void tu_thread_start(pthread_t *t, void *(*fn)(void *),
                                   void *arg) {
    int rc = pthread_create(t, NULL, fn, arg);
    if (rc != 0)
        FAIL("pthread_create: %s", strerror(rc));
}

static inline void tu_thread_join(pthread_t t) {
    int rc = pthread_join(t, NULL);
    if (rc != 0)
        FAIL("pthread_join: %s", strerror(rc));
}

typedef struct tu_barrier {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned n, waiting;
    unsigned long gen;
} tu_barrier;

static inline void tu_barrier_init(tu_barrier *b, unsigned n) {
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    b->n = n;
    b->waiting = 0;
    b->gen = 0;
}

static inline void tu_barrier_destroy(tu_barrier *b) {
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
}

/* Returns 1 in exactly one of the threads of each round. */
static inline int tu_barrier_wait(tu_barrier *b) {
    int last = 0;
    pthread_mutex_lock(&b->mu);
    unsigned long gen = b->gen;
    if (++b->waiting == b->n) {
        b->waiting = 0;
        b->gen++;
        last = 1;
        pthread_cond_broadcast(&b->cv);
    } else {
        while (gen == b->gen)
            pthread_cond_wait(&b->cv, &b->mu);
    }
    pthread_mutex_unlock(&b->mu);
    return last;
}

/* ---------------------------------------------------------------------
 * Map helpers
 * ------------------------------------------------------------------- */
static inline sm_stats tu_stats(sm_map *m) {
    sm_stats st;
    memset(&st, 0, sizeof st);
    ASSERT_OK(sm_get_stats(m, &st, sizeof st));
    return st;
}

static inline const char *tu_kind_name(sm_key_kind k) {
    return k == SM_KEY_U64 ? "u64" : "bytes";
}

#endif /* SM_TESTUTIL_H */
