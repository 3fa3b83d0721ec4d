/*
 * incidents.c — replay, on one machine, the production incidents stillmap
 * was built for, side by side with the naive map its users had before.
 *
 * The scenario is a "session table" of --n u64 -> u64 entries with
 * --readers threads looking up random present keys the whole time.  Every
 * lookup is timed on its own with CLOCK_MONOTONIC and recorded in a
 * log-linear histogram (16 steps per power of two), one per phase.
 *
 *   (a) reset during traffic: the main thread clears the full table while
 *       the readers run.  Reported: the clear call, the readers' worst and
 *       p99.9 lookup from the start of the clear to 10 ms after its end.
 *   (b) delete 90%: RSS of the full table, after deleting 90% of the keys,
 *       after trimming (naive: malloc_trim(0); stillmap: sm_trim), and of a
 *       fresh map that holds only the remaining 10%.
 *   (c) growth from empty to --grow-n entries while the readers look up
 *       keys already inserted: worst and p99.9 insert, readers' worst and
 *       p99.9 lookup.
 *
 * The naive map is written below: a chained hash table (one malloc'd node
 * per entry, a power-of-two array of bucket heads that doubles by
 * rehashing every node when the load passes 1), all behind one
 * pthread_rwlock_t.  Its clear walks the table and frees every node on
 * the caller's thread while holding the write lock; its array never
 * shrinks.  That is the map most C programs carry (the shape of
 * GHashTable and std::unordered_map, with one lock around it).
 *
 * Each (implementation, scenario) runs in its own child process (fork),
 * so RSS figures never mix and each map starts from a fresh heap.  The
 * parent never touches stillmap: a stillmap map is used only in the
 * process that created it.  A child sends its results back through a
 * pipe as a plain struct.
 *
 * Exit status: 0 when every sanity check passed (all lookups of present
 * keys found their values, counts right, the map empty after a clear,
 * deleted keys gone), 1 when one failed, 2 for bad arguments.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* malloc_trim, sched_getaffinity, rwlock kinds */
#endif

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <stillmap.h>

/* ---------------------------------------------------------------------
 * Small helpers: clock, sleeping, RSS, random numbers, keys
 * ------------------------------------------------------------------- */

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_until_ns(uint64_t deadline) {
    struct timespec ts;
    ts.tv_sec = (time_t)(deadline / 1000000000u);
    ts.tv_nsec = (long)(deadline % 1000000000u);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

static void sleep_s(double s) {
    if (s > 0)
        sleep_until_ns(now_ns() + (uint64_t)(s * 1e9));
}

/* Resident set size of this process, in bytes (0 if unknown). */
static uint64_t rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, resident = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%llu %llu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    return (uint64_t)resident * (uint64_t)(page > 0 ? page : 4096);
}

/* xorshift64*: one generator per reader thread. */
static uint64_t rng_next(uint64_t *s) {
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* The session id of the idx-th session: a bijective scramble of idx, so
 * keys are distinct and spread like real ids.  Its value is derived from
 * it, so every hit can be checked. */
static uint64_t key_of(uint64_t idx) {
    uint64_t z = idx + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static uint64_t val_of(uint64_t idx) { return ~key_of(idx); }

/* ---------------------------------------------------------------------
 * Latency histogram: values below 16 ns exact, then 16 steps per power
 * of two (each step at most 1/16 = 6.25% wide).  Fixed size, no
 * allocation on the timed path.
 * ------------------------------------------------------------------- */
enum { HIST_SLOTS = 16 + 60 * 16 };

struct hist {
    uint64_t count;
    uint64_t max;
    /* Calls slower than SLOW_NS, by what the thread went through meanwhile
     * (see slow_note): it slept in the kernel (a lock, a page fault that
     * waited), it was only preempted (waited for a CPU), or neither. */
    uint64_t slow_slept, slow_preempted, slow_other;
    uint64_t slot[HIST_SLOTS];
};

#define SLOW_NS 1000000u

static unsigned log2_u64(uint64_t v) { /* v > 0 */
    unsigned e = 0;
    if (v >> 32) { v >>= 32; e += 32; }
    if (v >> 16) { v >>= 16; e += 16; }
    if (v >> 8) { v >>= 8; e += 8; }
    if (v >> 4) { v >>= 4; e += 4; }
    if (v >> 2) { v >>= 2; e += 2; }
    if (v >> 1) { e += 1; }
    return e;
}

static unsigned hist_index(uint64_t v) {
    if (v < 16)
        return (unsigned)v;
    unsigned e = log2_u64(v); /* 4..63 */
    return 16 + (e - 4) * 16 + (unsigned)((v >> (e - 4)) & 15);
}

/* Largest value that falls into slot i. */
static uint64_t hist_upper(unsigned i) {
    if (i < 16)
        return i;
    unsigned e = (i - 16) / 16 + 4, sub = (i - 16) % 16;
    uint64_t lo = (uint64_t)(16 + sub) << (e - 4);
    return lo + ((uint64_t)1 << (e - 4)) - 1;
}

static void hist_add(struct hist *h, uint64_t v) {
    h->count++;
    if (v > h->max)
        h->max = v;
    h->slot[hist_index(v)]++;
}

static void hist_merge(struct hist *into, const struct hist *h) {
    into->count += h->count;
    into->slow_slept += h->slow_slept;
    into->slow_preempted += h->slow_preempted;
    into->slow_other += h->slow_other;
    if (h->max > into->max)
        into->max = h->max;
    for (unsigned i = 0; i < HIST_SLOTS; i++)
        into->slot[i] += h->slot[i];
}

/*
 * Why was a call slow?  The thread's own context-switch counts tell: a
 * voluntary switch means it went to sleep in the kernel (blocked on a
 * lock, say); an involuntary one alone means the scheduler took its CPU
 * away.  They are read every 1024 calls and after every slow call, so a
 * slow call is judged by the switches of at most 1024 calls around it.
 */
struct slow_track {
    long vol, invol;
    unsigned since;
};

static void thread_switches(long *vol, long *invol) {
#if defined(RUSAGE_THREAD)
    struct rusage ru;
    if (getrusage(RUSAGE_THREAD, &ru) == 0) {
        *vol = ru.ru_nvcsw;
        *invol = ru.ru_nivcsw;
        return;
    }
#endif
    *vol = *invol = 0;
}

static void slow_init(struct slow_track *t) {
    thread_switches(&t->vol, &t->invol);
    t->since = 0;
}

/* After each timed call of dt ns, charged to histogram h. */
static void slow_note(struct slow_track *t, struct hist *h, uint64_t dt) {
    if (dt <= SLOW_NS && ++t->since < 1024)
        return;
    long vol, invol;
    thread_switches(&vol, &invol);
    if (dt > SLOW_NS) {
        if (vol > t->vol)
            h->slow_slept++;
        else if (invol > t->invol)
            h->slow_preempted++;
        else
            h->slow_other++;
    }
    t->vol = vol;
    t->invol = invol;
    t->since = 0;
}

/* The q-quantile (0 < q < 1), as the upper edge of its slot, never above
 * the exact maximum. */
static uint64_t hist_quantile(const struct hist *h, double q) {
    if (h->count == 0)
        return 0;
    uint64_t need = (uint64_t)((double)h->count * q);
    if (need < 1)
        need = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_SLOTS; i++) {
        seen += h->slot[i];
        if (seen >= need) {
            uint64_t up = hist_upper(i);
            return up < h->max ? up : h->max;
        }
    }
    return h->max;
}

/* ---------------------------------------------------------------------
 * The naive map: chained hashing, one pthread_rwlock_t.
 * ------------------------------------------------------------------- */
struct nv_node {
    uint64_t key;
    uint64_t val;
    struct nv_node *next;
};

struct naive {
    pthread_rwlock_t lock;
    struct nv_node **heads; /* 2^bits bucket heads */
    unsigned bits;
    size_t count;
};

static size_t nv_slot(const struct naive *t, uint64_t key) {
    /* Fibonacci hashing: multiply, keep the top bits. */
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> (64 - t->bits));
}

static int nv_init(struct naive *t) {
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
#if defined(__GLIBC__)
    /* glibc's default lets a stream of readers starve a writer; a writer-
     * preferring lock is the one a careful programmer picks here. */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
    int rc = pthread_rwlock_init(&t->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (rc != 0)
        return -1;
    t->bits = 4;
    t->count = 0;
    t->heads = calloc((size_t)1 << t->bits, sizeof *t->heads);
    if (!t->heads) {
        pthread_rwlock_destroy(&t->lock);
        return -1;
    }
    return 0;
}

/* 1 and *val set if found, 0 if not. */
static int nv_get(struct naive *t, uint64_t key, uint64_t *val) {
    int found = 0;
    pthread_rwlock_rdlock(&t->lock);
    for (struct nv_node *n = t->heads[nv_slot(t, key)]; n; n = n->next) {
        if (n->key == key) {
            *val = n->val;
            found = 1;
            break;
        }
    }
    pthread_rwlock_unlock(&t->lock);
    return found;
}

/* Double the bucket array and move every node.  Write lock held. */
static void nv_grow_locked(struct naive *t) {
    unsigned nbits = t->bits + 1;
    struct nv_node **nh = calloc((size_t)1 << nbits, sizeof *nh);
    if (!nh)
        return; /* keep the old array; chains just get longer */
    size_t old_n = (size_t)1 << t->bits;
    struct nv_node **oh = t->heads;
    t->heads = nh;
    t->bits = nbits;
    for (size_t i = 0; i < old_n; i++) {
        struct nv_node *n = oh[i];
        while (n) {
            struct nv_node *next = n->next;
            size_t s = nv_slot(t, n->key);
            n->next = nh[s];
            nh[s] = n;
            n = next;
        }
    }
    free(oh);
}

/* Insert or assign.  0, or -1 when out of memory. */
static int nv_put(struct naive *t, uint64_t key, uint64_t val) {
    struct nv_node *fresh = malloc(sizeof *fresh); /* outside the lock */
    if (!fresh)
        return -1;
    fresh->key = key;
    fresh->val = val;
    pthread_rwlock_wrlock(&t->lock);
    struct nv_node **head = &t->heads[nv_slot(t, key)];
    for (struct nv_node *n = *head; n; n = n->next) {
        if (n->key == key) {
            n->val = val;
            pthread_rwlock_unlock(&t->lock);
            free(fresh);
            return 0;
        }
    }
    if (t->count + 1 > ((size_t)1 << t->bits)) {
        nv_grow_locked(t);
        head = &t->heads[nv_slot(t, key)];
    }
    fresh->next = *head;
    *head = fresh;
    t->count++;
    pthread_rwlock_unlock(&t->lock);
    return 0;
}

/* 1 if the key was removed, 0 if absent.  The array never shrinks. */
static int nv_delete(struct naive *t, uint64_t key) {
    struct nv_node *gone = NULL;
    pthread_rwlock_wrlock(&t->lock);
    for (struct nv_node **p = &t->heads[nv_slot(t, key)]; *p; p = &(*p)->next) {
        if ((*p)->key == key) {
            gone = *p;
            *p = gone->next;
            t->count--;
            break;
        }
    }
    pthread_rwlock_unlock(&t->lock);
    free(gone);
    return gone != NULL;
}

/* Walk every bucket and free every node, holding the write lock. */
static void nv_clear(struct naive *t) {
    pthread_rwlock_wrlock(&t->lock);
    size_t nb = (size_t)1 << t->bits;
    for (size_t i = 0; i < nb; i++) {
        struct nv_node *n = t->heads[i];
        while (n) {
            struct nv_node *next = n->next;
            free(n);
            n = next;
        }
        t->heads[i] = NULL;
    }
    t->count = 0;
    pthread_rwlock_unlock(&t->lock);
}

static size_t nv_len(struct naive *t) {
    pthread_rwlock_rdlock(&t->lock);
    size_t n = t->count;
    pthread_rwlock_unlock(&t->lock);
    return n;
}

static void nv_destroy(struct naive *t) {
    nv_clear(t);
    free(t->heads);
    pthread_rwlock_destroy(&t->lock);
}

/* ---------------------------------------------------------------------
 * Parameters and the result a child sends back
 * ------------------------------------------------------------------- */
struct params {
    uint64_t n;
    uint64_t grow_n;
    int readers;
    double seconds;
    int run[3]; /* a, b, c */
};

enum impl { IMPL_NAIVE, IMPL_SM, IMPL_COUNT };
enum scenario { SC_CLEAR, SC_DELETE, SC_DELETE_REF, SC_GROW, SC_NOISE };

static const char *const impl_name[IMPL_COUNT] = {"naive", "stillmap"};

struct lat {
    uint64_t count, max, p999;
    uint64_t slept, preempted, other; /* calls over SLOW_NS, see slow_note */
};

struct result {
    int ok;          /* every sanity check passed */
    char why[240];   /* the first failed check */
    int checks;      /* number of checks made */
    /* (a) */
    uint64_t clear_ns;
    struct lat rd_steady, rd_window;
    uint64_t rss_full, rss_after10ms, rss_after_s;
    /* (b) */
    uint64_t rss_empty, rss_deleted, rss_trimmed, rss_fresh;
    uint64_t delete_ns, trim_ns, released;
    int shrinking; /* stillmap: a shrink was migrating after the deletes */
    uint64_t table_bytes; /* stillmap: bytes of live tables after the deletes */
    struct lat rd_shrink; /* deletes + trim */
    /* (c) */
    uint64_t grow_ns;
    struct lat ins, rd_grow;
    /* machine noise: an empty timed call on the same number of threads */
    struct lat noise;
};

static void check(struct result *r, int ok, const char *fmt, ...) {
    r->checks++;
    if (ok)
        return;
    char buf[sizeof r->why];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "sanity check failed: %s\n", buf);
    if (r->ok) {
        r->ok = 0;
        memcpy(r->why, buf, sizeof r->why);
    }
}

static struct lat lat_of(const struct hist *h) {
    struct lat l = {h->count, h->max, hist_quantile(h, 0.999),
                    h->slow_slept, h->slow_preempted, h->slow_other};
    return l;
}

/* ---------------------------------------------------------------------
 * One scenario in one process: the map under test and the readers
 * ------------------------------------------------------------------- */
enum phase { PH_WARM, PH_WINDOW, PH_AFTER, PH_DELETE, PH_TRIM, PH_GROW, PH_COUNT, PH_STOP = PH_COUNT };

struct run {
    enum impl impl;
    enum scenario sc;
    const struct params *p;
    struct naive nv;
    sm_map *sm;
    _Alignas(64) _Atomic int phase;
    _Alignas(64) _Atomic uint64_t published; /* (c): keys 0..published-1 are in */
};

struct reader {
    pthread_t tid;
    struct run *run;
    uint64_t rng;
    uint64_t wrong;   /* a hit with a value that was never stored */
    uint64_t missed;  /* a present key not found */
    uint64_t errors;  /* an error status from the map */
    struct hist h[PH_COUNT];
};

/* 1 found, 0 not found, -1 error. */
static int map_get(struct run *r, uint64_t key, uint64_t *val) {
    if (r->impl == IMPL_NAIVE)
        return nv_get(&r->nv, key, val);
    int rc = sm_get_u64(r->sm, key, val);
    return rc == SM_OK ? 1 : rc == SM_NOTFOUND ? 0 : -1;
}

static int map_put(struct run *r, uint64_t key, uint64_t val) {
    if (r->impl == IMPL_NAIVE)
        return nv_put(&r->nv, key, val);
    return sm_put_u64(r->sm, key, val) == SM_OK ? 0 : -1;
}

/* 1 removed, 0 absent, -1 error. */
static int map_delete(struct run *r, uint64_t key) {
    if (r->impl == IMPL_NAIVE)
        return nv_delete(&r->nv, key);
    int rc = sm_delete_u64(r->sm, key);
    return rc == SM_OK ? 1 : rc == SM_NOTFOUND ? 0 : -1;
}

static uint64_t map_len(struct run *r) {
    return r->impl == IMPL_NAIVE ? nv_len(&r->nv) : sm_len(r->sm);
}

static void *reader_main(void *arg) {
    struct reader *rd = arg;
    struct run *r = rd->run;
    const uint64_t n = r->p->n, kept = (n + 9) / 10;
    struct slow_track st;
    slow_init(&st);
    for (;;) {
        uint64_t idx;
        if (r->sc == SC_GROW) {
            uint64_t pub = atomic_load_explicit(&r->published, memory_order_acquire);
            if (pub == 0) {
                if (atomic_load_explicit(&r->phase, memory_order_acquire) == PH_STOP)
                    break;
                continue;
            }
            idx = rng_next(&rd->rng) % pub;
        } else if (r->sc == SC_CLEAR) {
            idx = rng_next(&rd->rng) % n;
        } else {
            idx = 10 * (rng_next(&rd->rng) % kept); /* the keys that stay */
        }
        uint64_t key = key_of(idx), v = 0;
        uint64_t t0 = now_ns();
        int found = map_get(r, key, &v);
        uint64_t dt = now_ns() - t0;
        /* A lookup is charged to the phase in force when it ended: the
         * main thread switches phase before it starts a clear, so a
         * lookup that ends in PH_WARM finished before the clear began. */
        int ph = atomic_load_explicit(&r->phase, memory_order_acquire);
        if (ph == PH_STOP)
            break;
        hist_add(&rd->h[ph], dt);
        slow_note(&st, &rd->h[ph], dt);
        if (found < 0)
            rd->errors++;
        else if (found) {
            if (v != val_of(idx))
                rd->wrong++;
        } else if (r->sc != SC_CLEAR || ph == PH_WARM) {
            rd->missed++;
        }
    }
    return NULL;
}

/* Machine noise: time an empty call (two clock reads) in a loop. */
static void *noise_main(void *arg) {
    struct reader *rd = arg;
    struct run *r = rd->run;
    while (atomic_load_explicit(&r->phase, memory_order_acquire) != PH_STOP) {
        uint64_t t0 = now_ns();
        uint64_t dt = now_ns() - t0;
        hist_add(&rd->h[PH_WARM], dt);
    }
    return NULL;
}

static struct reader *start_readers(struct run *r, struct result *res) {
    int nr = r->p->readers;
    struct reader *rd = calloc(nr > 0 ? (size_t)nr : 1, sizeof *rd);
    if (!rd) {
        check(res, 0, "out of memory for reader records");
        return NULL;
    }
    for (int i = 0; i < nr; i++) {
        rd[i].run = r;
        rd[i].rng = 0x853C49E6748FEA9Bull * (uint64_t)(i + 1) + 1;
        if (pthread_create(&rd[i].tid, NULL, r->sc == SC_NOISE ? noise_main : reader_main,
                           &rd[i]) != 0) {
            check(res, 0, "pthread_create failed for reader %d", i);
            atomic_store(&r->phase, PH_STOP);
            for (int j = 0; j < i; j++)
                pthread_join(rd[j].tid, NULL);
            free(rd);
            return NULL;
        }
    }
    return rd;
}

/* Stop and join the readers; check what they saw; merge their histograms
 * of phases a and b into *ha and *hb (NULL = not wanted). */
static void stop_readers(struct run *r, struct reader *rd, struct result *res,
                         int pa, struct hist *ha, int pb, struct hist *hb) {
    atomic_store_explicit(&r->phase, PH_STOP, memory_order_release);
    uint64_t wrong = 0, missed = 0, errors = 0;
    for (int i = 0; i < r->p->readers; i++) {
        pthread_join(rd[i].tid, NULL);
        wrong += rd[i].wrong;
        missed += rd[i].missed;
        errors += rd[i].errors;
        if (ha)
            hist_merge(ha, &rd[i].h[pa]);
        if (hb)
            hist_merge(hb, &rd[i].h[pb]);
    }
    free(rd);
    check(res, wrong == 0, "%s: readers saw %" PRIu64 " wrong values", impl_name[r->impl], wrong);
    check(res, missed == 0, "%s: readers missed %" PRIu64 " present keys", impl_name[r->impl], missed);
    check(res, errors == 0, "%s: %" PRIu64 " lookups returned an error", impl_name[r->impl], errors);
}

static void set_phase(struct run *r, int ph) {
    atomic_store_explicit(&r->phase, ph, memory_order_release);
}

/* Insert the keys idx = first, first+step, ... below end. */
static int fill(struct run *r, struct result *res, uint64_t first, uint64_t end, uint64_t step) {
    for (uint64_t i = first; i < end; i += step) {
        if (map_put(r, key_of(i), val_of(i)) != 0) {
            check(res, 0, "%s: insert %" PRIu64 " failed", impl_name[r->impl], i);
            return -1;
        }
    }
    return 0;
}

/* (a) reset during traffic. */
static void run_clear(struct run *r, struct result *res) {
    const struct params *p = r->p;
    if (fill(r, res, 0, p->n, 1) != 0)
        return;
    check(res, map_len(r) == p->n, "%s: %" PRIu64 " entries after filling %" PRIu64,
          impl_name[r->impl], map_len(r), p->n);
    struct reader *rd = start_readers(r, res);
    if (!rd)
        return;
    sleep_s(p->seconds);
    res->rss_full = rss_bytes();

    set_phase(r, PH_WINDOW);
    uint64_t t0 = now_ns();
    int crc = SM_OK;
    if (r->impl == IMPL_NAIVE)
        nv_clear(&r->nv);
    else
        crc = sm_clear(r->sm);
    uint64_t t1 = now_ns();
    res->clear_ns = t1 - t0;
    sleep_until_ns(t1 + 10000000u);
    set_phase(r, PH_AFTER);
    res->rss_after10ms = rss_bytes();
    check(res, crc == SM_OK, "sm_clear returned %s", sm_errname(crc));
    check(res, map_len(r) == 0, "%s: %" PRIu64 " entries right after clear",
          impl_name[r->impl], map_len(r));
    sleep_s(p->seconds);
    res->rss_after_s = rss_bytes();

    struct hist *hw = calloc(2, sizeof *hw);
    if (!hw) {
        check(res, 0, "out of memory");
        stop_readers(r, rd, res, 0, NULL, 0, NULL);
        return;
    }
    stop_readers(r, rd, res, PH_WARM, &hw[0], PH_WINDOW, &hw[1]);
    res->rd_steady = lat_of(&hw[0]);
    res->rd_window = lat_of(&hw[1]);
    free(hw);
    uint64_t still = 0;
    for (uint64_t i = 0; i < p->n; i++) {
        uint64_t v;
        if (map_get(r, key_of(i), &v) != 0)
            still++;
    }
    check(res, still == 0, "%s: %" PRIu64 " keys still found after clear", impl_name[r->impl], still);
    check(res, map_len(r) == 0, "%s: %" PRIu64 " entries at the end", impl_name[r->impl], map_len(r));
}

/* (b) delete 90%, trim; or (reference) a fresh map of the remaining 10%. */
static void run_delete(struct run *r, struct result *res, int reference) {
    const struct params *p = r->p;
    const uint64_t kept = (p->n + 9) / 10;
    if (reference) {
        if (fill(r, res, 0, p->n, 10) != 0)
            return;
        struct reader *rd = start_readers(r, res);
        if (!rd)
            return;
        sleep_s(0.05);
        res->rss_fresh = rss_bytes();
        stop_readers(r, rd, res, 0, NULL, 0, NULL);
        check(res, map_len(r) == kept, "%s: %" PRIu64 " entries in the fresh map, want %" PRIu64,
              impl_name[r->impl], map_len(r), kept);
        return;
    }
    if (fill(r, res, 0, p->n, 1) != 0)
        return;
    struct reader *rd = start_readers(r, res);
    if (!rd)
        return;
    sleep_s(p->seconds);
    res->rss_full = rss_bytes();

    set_phase(r, PH_DELETE);
    uint64_t t0 = now_ns(), bad = 0;
    for (uint64_t i = 0; i < p->n; i++) {
        if (i % 10 != 0 && map_delete(r, key_of(i)) != 1)
            bad++;
    }
    res->delete_ns = now_ns() - t0;
    res->rss_deleted = rss_bytes();
    if (r->impl == IMPL_SM) {
        sm_stats st;
        if (sm_get_stats(r->sm, &st, sizeof st) == SM_OK) {
            res->shrinking = st.transition_in_progress;
            res->table_bytes = st.table_bytes;
        }
    }
    check(res, bad == 0, "%s: %" PRIu64 " deletes of present keys did not remove them",
          impl_name[r->impl], bad);

    set_phase(r, PH_TRIM);
    t0 = now_ns();
    if (r->impl == IMPL_NAIVE) {
#if defined(__GLIBC__)
        malloc_trim(0);
#endif
    } else {
        size_t released = 0;
        int rc = sm_trim(r->sm, &released);
        res->released = released;
        check(res, rc == SM_OK, "sm_trim returned %s", sm_errname(rc));
    }
    res->trim_ns = now_ns() - t0;
    res->rss_trimmed = rss_bytes();

    struct hist *hw = calloc(1, sizeof *hw);
    if (!hw) {
        check(res, 0, "out of memory");
        stop_readers(r, rd, res, 0, NULL, 0, NULL);
        return;
    }
    stop_readers(r, rd, res, PH_DELETE, hw, PH_TRIM, hw);
    res->rd_shrink = lat_of(hw);
    free(hw);

    check(res, map_len(r) == kept, "%s: %" PRIu64 " entries after the deletes, want %" PRIu64,
          impl_name[r->impl], map_len(r), kept);
    uint64_t lost = 0, ghosts = 0;
    for (uint64_t i = 0; i < p->n; i++) {
        uint64_t v = 0;
        int f = map_get(r, key_of(i), &v);
        if (i % 10 == 0 && (f != 1 || v != val_of(i)))
            lost++;
        if (i % 10 != 0 && f != 0)
            ghosts++;
    }
    check(res, lost == 0, "%s: %" PRIu64 " kept keys lost or changed", impl_name[r->impl], lost);
    check(res, ghosts == 0, "%s: %" PRIu64 " deleted keys still found", impl_name[r->impl], ghosts);
}

/* (c) growth from empty while readers look up keys already inserted. */
static void run_grow(struct run *r, struct result *res) {
    const struct params *p = r->p;
    struct hist *hw = calloc(2, sizeof *hw); /* [0] inserts, [1] readers */
    if (!hw) {
        check(res, 0, "out of memory");
        return;
    }
    set_phase(r, PH_GROW);
    struct reader *rd = start_readers(r, res);
    if (!rd) {
        free(hw);
        return;
    }
    struct slow_track st;
    slow_init(&st);
    uint64_t start = now_ns(), failed = 0;
    for (uint64_t i = 0; i < p->grow_n; i++) {
        uint64_t key = key_of(i), val = val_of(i);
        uint64_t t0 = now_ns();
        int rc = map_put(r, key, val);
        uint64_t dt = now_ns() - t0;
        hist_add(&hw[0], dt);
        slow_note(&st, &hw[0], dt);
        if (rc != 0) {
            failed++;
            break;
        }
        /* Publish in batches: the shared counter is not what we measure. */
        if ((i & 255) == 255 || i + 1 == p->grow_n)
            atomic_store_explicit(&r->published, i + 1, memory_order_release);
    }
    res->grow_ns = now_ns() - start;
    stop_readers(r, rd, res, PH_GROW, &hw[1], 0, NULL);
    res->ins = lat_of(&hw[0]);
    res->rd_grow = lat_of(&hw[1]);
    free(hw);
    check(res, failed == 0, "%s: an insert failed while growing", impl_name[r->impl]);
    check(res, map_len(r) == p->grow_n, "%s: %" PRIu64 " entries after growing to %" PRIu64,
          impl_name[r->impl], map_len(r), p->grow_n);
    uint64_t lost = 0;
    for (uint64_t i = 0; i < p->grow_n; i++) {
        uint64_t v = 0;
        if (map_get(r, key_of(i), &v) != 1 || v != val_of(i))
            lost++;
    }
    check(res, lost == 0, "%s: %" PRIu64 " keys lost or changed after growing", impl_name[r->impl], lost);
}

/* The machine's noise floor: the readers and the main thread time an empty
 * call for --seconds (at least 0.5 s), as busy as during the scenarios.
 * What they see is the scheduler and the hypervisor, not a map. */
static void run_noise(struct run *r, struct result *res) {
    struct hist *h = calloc(1, sizeof *h);
    if (!h) {
        check(res, 0, "out of memory");
        return;
    }
    struct reader *rd = start_readers(r, res);
    if (!rd) {
        free(h);
        return;
    }
    uint64_t end = now_ns() + (uint64_t)((r->p->seconds > 0.5 ? r->p->seconds : 0.5) * 1e9);
    while (now_ns() < end) {
        uint64_t t0 = now_ns();
        uint64_t dt = now_ns() - t0;
        hist_add(h, dt);
    }
    stop_readers(r, rd, res, PH_WARM, h, 0, NULL);
    res->noise = lat_of(h);
    free(h);
}

/* The body of a child process. */
static void child_run(const struct params *p, enum impl impl, enum scenario sc,
                      struct result *res) {
    struct run *r = aligned_alloc(64, (sizeof(struct run) + 63) / 64 * 64);
    if (!r) {
        check(res, 0, "out of memory");
        return;
    }
    memset(r, 0, sizeof *r);
    r->impl = impl;
    r->sc = sc;
    r->p = p;
    atomic_init(&r->phase, PH_WARM);
    atomic_init(&r->published, 0);
    res->rss_empty = rss_bytes();
    if (sc == SC_NOISE) {
        run_noise(r, res);
        free(r);
        return;
    }
    if (impl == IMPL_NAIVE) {
        if (nv_init(&r->nv) != 0) {
            check(res, 0, "naive map: init failed");
            free(r);
            return;
        }
    } else {
        int rc = sm_create(NULL, &r->sm);
        if (rc != SM_OK) {
            check(res, 0, "sm_create returned %s", sm_errname(rc));
            free(r);
            return;
        }
    }
    switch (sc) {
    case SC_CLEAR: run_clear(r, res); break;
    case SC_DELETE: run_delete(r, res, 0); break;
    case SC_DELETE_REF: run_delete(r, res, 1); break;
    case SC_GROW: run_grow(r, res); break;
    case SC_NOISE: break; /* handled above */
    }
    if (impl == IMPL_NAIVE) {
        nv_destroy(&r->nv);
    } else {
        int rc = sm_destroy(r->sm);
        check(res, rc == SM_OK, "sm_destroy returned %s", sm_errname(rc));
    }
    free(r);
}

/* Run one (implementation, scenario) in a child process and collect its
 * result; a child that dies or stays silent is reported as a failure. */
static void run_in_child(const struct params *p, enum impl impl, enum scenario sc,
                         struct result *out) {
    memset(out, 0, sizeof *out);
    int fd[2];
    if (pipe(fd) != 0) {
        snprintf(out->why, sizeof out->why, "pipe: %s", strerror(errno));
        return;
    }
    fflush(NULL); /* nothing buffered may be written twice */
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(out->why, sizeof out->why, "fork: %s", strerror(errno));
        close(fd[0]);
        close(fd[1]);
        return;
    }
    if (pid == 0) {
        close(fd[0]);
        alarm(600); /* a hung child must not hang the demo */
        struct result res;
        memset(&res, 0, sizeof res);
        res.ok = 1;
        child_run(p, impl, sc, &res);
        const char *b = (const char *)&res;
        size_t left = sizeof res;
        while (left > 0) {
            ssize_t w = write(fd[1], b, left);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                exit(3);
            b += w;
            left -= (size_t)w;
        }
        close(fd[1]);
        exit(res.ok ? 0 : 1);
    }
    close(fd[1]);
    char *b = (char *)out;
    size_t got = 0;
    while (got < sizeof *out) {
        ssize_t n = read(fd[0], b + got, sizeof *out - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (got != sizeof *out) {
        memset(out, 0, sizeof *out);
        if (WIFSIGNALED(st))
            snprintf(out->why, sizeof out->why, "%s child killed by signal %d (%s)",
                     impl_name[impl], WTERMSIG(st), strsignal(WTERMSIG(st)));
        else
            snprintf(out->why, sizeof out->why, "%s child exited with %d without a result",
                     impl_name[impl], WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    } else if (out->ok && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
        out->ok = 0;
        snprintf(out->why, sizeof out->why, "%s child ended abnormally (status %d)",
                 impl_name[impl], st);
    }
}

/* ---------------------------------------------------------------------
 * Output
 * ------------------------------------------------------------------- */
static const char *fmt_time(char *buf, size_t size, uint64_t ns) {
    if (ns < 10000)
        snprintf(buf, size, "%.2f µs", ns / 1e3);
    else if (ns < 1000000)
        snprintf(buf, size, "%.1f µs", ns / 1e3);
    else if (ns < 1000000000)
        snprintf(buf, size, "%.1f ms", ns / 1e6);
    else
        snprintf(buf, size, "%.2f s", ns / 1e9);
    return buf;
}

static const char *fmt_mib(char *buf, size_t size, uint64_t bytes) {
    snprintf(buf, size, "%.1f MiB", bytes / 1048576.0);
    return buf;
}

static const char *fmt_count(char *buf, size_t size, uint64_t v) {
    char tmp[32];
    int len = snprintf(tmp, sizeof tmp, "%" PRIu64, v), o = 0;
    for (int i = 0; i < len && o + 2 < (int)size; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = '\0';
    return buf;
}

static const char *fmt_ratio(char *buf, size_t size, double x) {
    if (x >= 9.95)
        snprintf(buf, size, "%.0fx", x);
    else
        snprintf(buf, size, "%.1fx", x);
    return buf;
}

/* Verdict for a "smaller is better" pair: naive value a, stillmap value b. */
static const char *verdict(char *buf, size_t size, double a, double b, const char *better) {
    char r[32];
    if (a <= 0 && b <= 0)
        snprintf(buf, size, "-");
    else if (b <= 0)
        snprintf(buf, size, "stillmap %s", better);
    else if (a >= b * 1.1)
        snprintf(buf, size, "stillmap %s %s", fmt_ratio(r, sizeof r, a / b), better);
    else if (b >= a * 1.1)
        snprintf(buf, size, "naive %s %s (stillmap worse)", fmt_ratio(r, sizeof r, a > 0 ? b / a : 0), better);
    else
        snprintf(buf, size, "about the same");
    return buf;
}

static void row(const char *what, const char *naive, const char *sm, const char *note) {
    /* µ is two bytes and one column; pad by columns, not bytes. */
    int wn = 16 + (strstr(naive, "µ") ? 1 : 0), ws = 16 + (strstr(sm, "µ") ? 1 : 0);
    printf("  %-44s %*s %*s   %s\n", what, wn, naive, ws, sm, note);
}

static void row_time(const char *what, uint64_t a, uint64_t b, const char *better) {
    char x[32], y[32], v[80];
    row(what, fmt_time(x, sizeof x, a), fmt_time(y, sizeof y, b),
        verdict(v, sizeof v, (double)a, (double)b, better));
}

/* Worst time seen by a thread timing an empty call (see run_noise). */
static uint64_t g_noise_floor;

/* A worst-case row: when both values are within twice the machine's noise
 * floor, neither says anything about the map, and the verdict says so. */
static void row_worst(const char *what, uint64_t a, uint64_t b) {
    char x[32], y[32], v[80], f[32];
    if (g_noise_floor > 0 && a <= 2 * g_noise_floor && b <= 2 * g_noise_floor) {
        snprintf(v, sizeof v, "both within machine noise (floor %s)",
                 fmt_time(f, sizeof f, g_noise_floor));
        row(what, fmt_time(x, sizeof x, a), fmt_time(y, sizeof y, b), v);
    } else {
        row_time(what, a, b, "lower");
    }
}

/* Rows of reader or insert latencies; a phase in which no call ended (a
 * tiny run, or threads that got no CPU in a 10 ms window) has no number. */
static int row_lat_missing(const char *what, const struct lat *a, const struct lat *b) {
    if (a->count > 0 && b->count > 0)
        return 0;
    row(what, a->count ? "" : "-", b->count ? "" : "-", "no call ended in this phase");
    return 1;
}

static void row_lat_max(const char *what, const struct lat *a, const struct lat *b) {
    if (!row_lat_missing(what, a, b))
        row_worst(what, a->max, b->max);
}

static void row_lat_p999(const char *what, const struct lat *a, const struct lat *b) {
    if (!row_lat_missing(what, a, b))
        row_time(what, a->p999, b->p999, "lower");
}

/* "slept / preempted / other" counts of the calls over SLOW_NS. */
static void row_lat_slow(const char *what, const struct lat *a, const struct lat *b) {
    char x[64], y[64];
    snprintf(x, sizeof x, "%" PRIu64 "/%" PRIu64 "/%" PRIu64, a->slept, a->preempted, a->other);
    snprintf(y, sizeof y, "%" PRIu64 "/%" PRIu64 "/%" PRIu64, b->slept, b->preempted, b->other);
    row(what, x, y,
        b->slept == 0 && a->slept > 0 ? "stillmap never put a caller to sleep"
        : b->slept > 0                ? "stillmap callers slept (a wait in the kernel)"
                                      : "");
}

static void row_mib(const char *what, uint64_t a, uint64_t b, const char *note) {
    char x[32], y[32], v[80];
    if (!note)
        note = verdict(v, sizeof v, (double)a, (double)b, "smaller");
    row(what, fmt_mib(x, sizeof x, a), fmt_mib(y, sizeof y, b), note);
}

static void header_row(void) {
    row("", "naive", "stillmap", "verdict");
    row("--------------------------------------------", "----------------", "----------------",
        "-------");
}

static void print_machine(const struct params *p) {
    char model[128] = "unknown CPU";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "model name", 10) == 0) {
                char *c = strchr(line, ':');
                if (c) {
                    c++;
                    while (*c == ' ' || *c == '\t')
                        c++;
                    c[strcspn(c, "\n")] = '\0';
                    snprintf(model, sizeof model, "%s", c);
                }
                break;
            }
        }
        fclose(f);
    }
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    long usable = online;
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        usable = CPU_COUNT(&set);
#endif
    struct utsname u;
    char kernel[256] = "unknown";
    if (uname(&u) == 0)
        snprintf(kernel, sizeof kernel, "%s %s %s", u.sysname, u.release, u.machine);
    char load[64] = "?";
    f = fopen("/proc/loadavg", "r");
    if (f) {
        double l1, l5, l15;
        if (fscanf(f, "%lf %lf %lf", &l1, &l5, &l15) == 3)
            snprintf(load, sizeof load, "%.2f %.2f %.2f", l1, l5, l15);
        fclose(f);
    }
    char a[32], b[32];
    printf("stillmap %s incidents demo: the production incidents, replayed side by side\n\n",
           STILLMAP_VERSION_STRING);
    printf("machine   %ld CPUs usable (nproc), %ld online; %s\n", usable, online, model);
    char psi[96] = "";
    f = fopen("/proc/pressure/cpu", "r");
    if (f) {
        double avg10 = 0;
        if (fscanf(f, "some avg10=%lf", &avg10) == 1)
            snprintf(psi, sizeof psi, "; CPU pressure (some, 10 s) %.0f%%", avg10);
        fclose(f);
    }
    printf("          %s; load average %s%s\n", kernel, load, psi);
    printf("params    --n %s  --grow-n %s  --readers %d  --seconds %.2f\n",
           fmt_count(a, sizeof a, p->n), fmt_count(b, sizeof b, p->grow_n), p->readers,
           p->seconds);
    printf("naive     chained hash table: one malloc'd node (key, value, next) per entry,\n"
           "          power-of-two array of bucket heads, doubled by rehashing every node\n"
           "          under the lock when entries > buckets; one pthread_rwlock_t%s;\n"
           "          clear frees every node on the caller's thread holding the write lock;\n"
           "          deletes free their node; the array never shrinks.\n",
#if defined(__GLIBC__)
           " (writer-preferring)"
#else
           ""
#endif
    );
    printf("stillmap  sm_create(NULL) defaults, u64 keys, static library.\n");
    printf("method    every (implementation, scenario) runs in its own forked process;\n"
           "          each lookup and insert is timed alone with CLOCK_MONOTONIC (the\n"
           "          time includes reading the clock); p99.9 comes from a histogram\n"
           "          with 16 steps per power of two (upper edge of the step, <= 6.25%%).\n"
           "          Calls over 1 ms are sorted by the thread's context switches meanwhile:\n"
           "          slept (it blocked in the kernel, e.g. on the lock), preempted (only\n"
           "          waited for a CPU), other (neither: the host took the vCPU, or work).\n");
    fflush(stdout);
}

static void print_noise(const struct params *p, const struct result *r) {
    char a[32], b[32];
    printf("noise     %d thread%s timing an empty call, as busy as the scenarios: worst %s,\n"
           "          p99.9 %s.  That worst case is the scheduler and the hypervisor\n"
           "          (a thread waiting for a CPU), not a map; worst-case rows where both\n"
           "          columns are within 2x of it say so.\n\n",
           p->readers + 1, p->readers > 0 ? "s" : "", fmt_time(a, sizeof a, r->noise.max),
           fmt_time(b, sizeof b, r->noise.p999));
}

static int report_failure(const char *what, const struct result *r) {
    if (r->ok)
        return 0;
    printf("  SANITY CHECK FAILED (%s): %s\n", what, r->why[0] ? r->why : "no result");
    return 1;
}

/* ---------------------------------------------------------------------
 * Command line
 * ------------------------------------------------------------------- */
static void usage(FILE *out) {
    fprintf(out,
"usage: sm_incidents [options]\n"
"\n"
"Replays the incidents stillmap was built for (slow reset, memory that stays\n"
"after deletes, latency spikes while a table grows) against a naive chained\n"
"hash table behind one pthread_rwlock_t, each in its own process, and prints\n"
"a table of the results with a verdict per row.\n"
"\n"
"  --n N          entries in the session table for (a) and (b)  [1000000]\n"
"  --grow-n N     entries to grow to from empty in (c)           [2000000]\n"
"  --readers R    reader threads looking up random present keys\n"
"                 during every scenario (0 = none)               [2]\n"
"  --seconds S    per-phase reader warm-up: how long the readers run against\n"
"                 the full table before the clear (a) and before the deletes\n"
"                 (b); in (a) also how long after the clear the RSS is read\n"
"                 again; and how long the machine's noise floor is measured\n"
"                 first (at least 0.5 s).  (c) starts from empty and has no\n"
"                 warm-up.                                       [1]\n"
"  --only LIST    run only these scenarios, any of a, b, c (e.g. --only a,\n"
"                 --only bc)                                     [abc]\n"
"                   a  reset during traffic: clear the full table while the\n"
"                      readers run; clear call time, readers' worst and p99.9\n"
"                      lookup from the clear's start to 10 ms after its end\n"
"                   b  delete 90%% of the keys; RSS before, after the deletes,\n"
"                      after trim (naive: malloc_trim(0), stillmap: sm_trim),\n"
"                      and of a fresh map holding only the remaining 10%%\n"
"                   c  grow from empty to --grow-n; worst and p99.9 insert,\n"
"                      readers' worst and p99.9 lookup of keys already in\n"
"  --help         this text\n"
"\n"
"Exit status: 0 if every sanity check passed (present keys found with their\n"
"values, counts right, maps empty after clear, deleted keys gone), 1 if one\n"
"failed or a child process died, 2 for bad arguments.\n");
}

static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out) {
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, struct params *p) {
    p->n = 1000000;
    p->grow_n = 2000000;
    p->readers = 2;
    p->seconds = 1.0;
    p->run[0] = p->run[1] = p->run[2] = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        char name[32];
        const char *eq = strchr(a, '=');
        if (eq && (size_t)(eq - a) < sizeof name) {
            memcpy(name, a, (size_t)(eq - a));
            name[eq - a] = '\0';
            v = eq + 1;
        } else {
            snprintf(name, sizeof name, "%s", a);
        }
        if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (strcmp(name, "--n") != 0 && strcmp(name, "--grow-n") != 0 &&
            strcmp(name, "--readers") != 0 && strcmp(name, "--seconds") != 0 &&
            strcmp(name, "--only") != 0) {
            fprintf(stderr, "sm_incidents: unknown option '%s' (see --help)\n", a);
            return -1;
        }
        if (!v) {
            if (i + 1 >= argc) {
                fprintf(stderr, "sm_incidents: %s needs a value (see --help)\n", name);
                return -1;
            }
            v = argv[++i];
        }
        uint64_t x;
        if (strcmp(name, "--n") == 0) {
            if (parse_u64(v, 10, 1000000000, &p->n) != 0) {
                fprintf(stderr, "sm_incidents: --n takes 10..1000000000, got '%s'\n", v);
                return -1;
            }
        } else if (strcmp(name, "--grow-n") == 0) {
            if (parse_u64(v, 1, 1000000000, &p->grow_n) != 0) {
                fprintf(stderr, "sm_incidents: --grow-n takes 1..1000000000, got '%s'\n", v);
                return -1;
            }
        } else if (strcmp(name, "--readers") == 0) {
            if (parse_u64(v, 0, 256, &x) != 0) {
                fprintf(stderr, "sm_incidents: --readers takes 0..256, got '%s'\n", v);
                return -1;
            }
            p->readers = (int)x;
        } else if (strcmp(name, "--seconds") == 0) {
            char *end;
            errno = 0;
            double s = strtod(v, &end);
            if (errno || *end || end == v || !(s >= 0 && s <= 3600)) {
                fprintf(stderr, "sm_incidents: --seconds takes 0..3600, got '%s'\n", v);
                return -1;
            }
            p->seconds = s;
        } else { /* --only */
            p->run[0] = p->run[1] = p->run[2] = 0;
            if (!*v)
                goto bad_only;
            for (const char *c = v; *c; c++) {
                if (*c >= 'a' && *c <= 'c')
                    p->run[*c - 'a'] = 1;
                else if (*c != ',' && *c != '|')
                    goto bad_only;
            }
        }
        continue;
    bad_only:
        fprintf(stderr, "sm_incidents: --only takes letters from a, b, c, got '%s'\n", v);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------
 * main: run the scenarios, print the table
 * ------------------------------------------------------------------- */
int main(int argc, char **argv) {
    struct params p;
    if (parse_args(argc, argv, &p) != 0)
        return 2;
    uint64_t t_start = now_ns();
    print_machine(&p);
    int failed = 0, checks = 0;
    struct result res[IMPL_COUNT], ref[IMPL_COUNT];
    char a[64], b[64], c[160];

    run_in_child(&p, IMPL_NAIVE, SC_NOISE, &res[0]);
    checks += res[0].checks;
    g_noise_floor = res[0].noise.max;
    print_noise(&p, &res[0]);
    failed |= report_failure("noise floor", &res[0]);

    if (p.run[0]) {
        uint64_t t_sc = now_ns();
        for (int i = 0; i < IMPL_COUNT; i++) {
            run_in_child(&p, (enum impl)i, SC_CLEAR, &res[i]);
            checks += res[i].checks;
        }
        printf("(a) reset during traffic: clear a full table of %s sessions while %d readers\n"
               "    look up present keys (window: clear start to clear end + 10 ms)   [%.1f s]\n",
               fmt_count(a, sizeof a, p.n), p.readers, (now_ns() - t_sc) / 1e9);
        header_row();
        row_time("clear call", res[0].clear_ns, res[1].clear_ns, "shorter");
        if (p.readers > 0) {
            row_lat_max("readers' worst lookup in the window", &res[0].rd_window,
                        &res[1].rd_window);
            row_lat_p999("readers' p99.9 lookup in the window", &res[0].rd_window,
                         &res[1].rd_window);
            row_lat_slow("  lookups > 1 ms: slept/preempted/other", &res[0].rd_window,
                         &res[1].rd_window);
            double win_ms[IMPL_COUNT], rate[IMPL_COUNT];
            for (int i = 0; i < IMPL_COUNT; i++) {
                win_ms[i] = (double)res[i].clear_ns / 1e6 + 10.0;
                rate[i] = (double)res[i].rd_window.count / win_ms[i];
            }
            snprintf(a, sizeof a, "%.0f", rate[0]);
            snprintf(b, sizeof b, "%.0f", rate[1]);
            row("reader lookups per ms in the window", a, b,
                verdict(c, sizeof c, rate[1], rate[0], "more"));
            snprintf(c, sizeof c, "readers' worst lookup, %.1f s before clear", p.seconds);
            row_lat_max(c, &res[0].rd_steady, &res[1].rd_steady);
            row_lat_p999("readers' p99.9 lookup before clear", &res[0].rd_steady,
                         &res[1].rd_steady);
        }
        row_mib("RSS, full table", res[0].rss_full, res[1].rss_full, NULL);
        row_mib("RSS, 10 ms after clear", res[0].rss_after10ms, res[1].rss_after10ms, NULL);
        snprintf(c, sizeof c, "RSS, %.1f s after clear", p.seconds);
        row_mib(c, res[0].rss_after_s, res[1].rss_after_s, NULL);
        for (int i = 0; i < IMPL_COUNT; i++)
            failed |= report_failure(impl_name[i], &res[i]);
        printf("\n");
        fflush(stdout);
    }

    if (p.run[1]) {
        uint64_t t_sc = now_ns();
        for (int i = 0; i < IMPL_COUNT; i++) {
            run_in_child(&p, (enum impl)i, SC_DELETE, &res[i]);
            run_in_child(&p, (enum impl)i, SC_DELETE_REF, &ref[i]);
            checks += res[i].checks + ref[i].checks;
        }
        uint64_t kept = (p.n + 9) / 10;
        printf("(b) delete 90%%: fill %s sessions, delete all but every 10th inserted\n"
               "    (%s remain), then trim; %d readers look up remaining keys throughout   [%.1f s]\n",
               fmt_count(a, sizeof a, p.n), fmt_count(b, sizeof b, kept), p.readers,
               (now_ns() - t_sc) / 1e9);
        header_row();
        row_mib("RSS, process before the map", res[0].rss_empty, res[1].rss_empty, "");
        row_mib("RSS, full table", res[0].rss_full, res[1].rss_full, NULL);
        if (res[1].shrinking) {
            snprintf(c, sizeof c, "stillmap shrinking on its own (%s of tables live)",
                     fmt_mib(a, sizeof a, res[1].table_bytes));
            row_mib("RSS, after deleting 90%", res[0].rss_deleted, res[1].rss_deleted, c);
        } else {
            row_mib("RSS, after deleting 90%", res[0].rss_deleted, res[1].rss_deleted, NULL);
        }
        row_mib("RSS, after trim", res[0].rss_trimmed, res[1].rss_trimmed, NULL);
        snprintf(c, sizeof c, "RSS, fresh map of just the %s kept", fmt_count(a, sizeof a, kept));
        row_mib(c, ref[0].rss_fresh, ref[1].rss_fresh, "reference: what it should cost");
        {
            double rn = ref[0].rss_fresh ? (double)res[0].rss_trimmed / (double)ref[0].rss_fresh : 0;
            double rs = ref[1].rss_fresh ? (double)res[1].rss_trimmed / (double)ref[1].rss_fresh : 0;
            char x[32], y[32];
            snprintf(x, sizeof x, "%.2fx", rn);
            snprintf(y, sizeof y, "%.2fx", rs);
            snprintf(c, sizeof c, "stillmap %s the 1.2x bar%s", rs <= 1.2 ? "within" : "ABOVE",
                     rn > 1.2 ? "; naive keeps its peak" : "");
            row("after trim / fresh reference", x, y, c);
        }
        row_time("deleting 90% (total)", res[0].delete_ns, res[1].delete_ns, "shorter");
        row_time("trim call (malloc_trim / sm_trim)", res[0].trim_ns, res[1].trim_ns, "shorter");
        if (p.readers > 0) {
            row_lat_max("readers' worst lookup, deletes + trim", &res[0].rd_shrink,
                        &res[1].rd_shrink);
            row_lat_p999("readers' p99.9 lookup, deletes + trim", &res[0].rd_shrink,
                         &res[1].rd_shrink);
            row_lat_slow("  lookups > 1 ms: slept/preempted/other", &res[0].rd_shrink,
                         &res[1].rd_shrink);
        }
        printf("  sm_trim reported %s released\n", fmt_mib(a, sizeof a, res[1].released));
        for (int i = 0; i < IMPL_COUNT; i++) {
            failed |= report_failure(impl_name[i], &res[i]);
            snprintf(c, sizeof c, "%s, fresh reference", impl_name[i]);
            failed |= report_failure(c, &ref[i]);
        }
        printf("\n");
        fflush(stdout);
    }

    if (p.run[2]) {
        uint64_t t_sc = now_ns();
        for (int i = 0; i < IMPL_COUNT; i++) {
            run_in_child(&p, (enum impl)i, SC_GROW, &res[i]);
            checks += res[i].checks;
        }
        printf("(c) growth: insert %s sessions into an empty table while %d readers look up\n"
               "    keys already inserted   [%.1f s]\n",
               fmt_count(a, sizeof a, p.grow_n), p.readers, (now_ns() - t_sc) / 1e9);
        header_row();
        row_time("all inserts (total)", res[0].grow_ns, res[1].grow_ns, "shorter");
        row_lat_max("worst single insert", &res[0].ins, &res[1].ins);
        row_lat_p999("insert p99.9", &res[0].ins, &res[1].ins);
        row_lat_slow("  inserts > 1 ms: slept/preempted/other", &res[0].ins, &res[1].ins);
        if (p.readers > 0) {
            row_lat_max("readers' worst lookup", &res[0].rd_grow, &res[1].rd_grow);
            row_lat_p999("readers' p99.9 lookup", &res[0].rd_grow, &res[1].rd_grow);
            row_lat_slow("  lookups > 1 ms: slept/preempted/other", &res[0].rd_grow,
                         &res[1].rd_grow);
            double rate[IMPL_COUNT];
            for (int i = 0; i < IMPL_COUNT; i++)
                rate[i] = res[i].grow_ns ? (double)res[i].rd_grow.count / ((double)res[i].grow_ns / 1e6) : 0;
            snprintf(a, sizeof a, "%.0f", rate[0]);
            snprintf(b, sizeof b, "%.0f", rate[1]);
            row("reader lookups per ms while growing", a, b,
                verdict(c, sizeof c, rate[1], rate[0], "more"));
        }
        for (int i = 0; i < IMPL_COUNT; i++)
            failed |= report_failure(impl_name[i], &res[i]);
        printf("\n");
    }

    printf("sanity    %s (%d checks)\n", failed ? "FAILED, see above" : "all checks passed", checks);
    printf("runtime   %.1f s\n", (now_ns() - t_start) / 1e9);
    return failed ? 1 : 0;
}
