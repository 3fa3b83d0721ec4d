/*
 * ebr.c — epoch-based reclamation and the background reclaimer.
 *
 * One domain serves every map of the process.  A thread that touches a
 * map is "pinned" for the duration of the operation (sm__pin/sm__unpin in
 * internal.h): it publishes the global epoch it saw in its record.  A
 * node unlinked from every table is retired with the global epoch read
 * after the unlink; the reclaimer frees it once the global epoch has
 * advanced twice past that value, and the epoch advances only when every
 * pinned thread has published the current epoch.
 *
 * Guarantees (cited by number elsewhere):
 *  E1  pin: the record's epoch is visible to the reclaimer's scan before
 *      the pinned thread's loads of shared pointers (membarrier on the
 *      reclaimer side, or a seq_cst fence in sm__pin when membarrier is
 *      unavailable or under ThreadSanitizer).
 *  E2  unpin: release store of 0; the thread's loads complete first.
 *  E3  retire: the node is unlinked, then a seq_cst fence, then the
 *      global epoch r is read.  Any thread that can still reach the node
 *      was pinned at an epoch <= r (it loaded the pointer before the
 *      unlink became visible), so once the epoch is >= r + 2 no thread
 *      can reach it.
 *  E4  only the reclaimer advances the epoch; it scans every record and
 *      advances from e to e + 1 only if no record holds an epoch other
 *      than 0 or e.
 *  E5  a barrier node is signalled only after every node retired before
 *      it (in happens-before order) has been reclaimed: the reclaimer
 *      collects all lists again after it finds the barrier reclaimable.
 *
 * Progress: pin and unpin are wait-free (two thread-local stores); retire
 * is lock-free (one CAS on the thread's own list head, contended only by
 * the reclaimer's exchange); reclamation never runs on a caller's thread
 * (except sm_destroy, which waits for it).
 *
 * Thread records are created on first use, returned to a free state by
 * a pthread key destructor when the thread exits, and reused, so a
 * server that starts and ends threads all day keeps a bounded number.
 */
#include "internal.h"

#include <errno.h>
#include <sched.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__linux__)
#include <linux/membarrier.h>
#include <sys/syscall.h>
#endif

_Atomic uint64_t sm__global_epoch = 1;
#ifdef SM_TSAN
_Atomic unsigned sm__fence_word = 0;
#endif
int sm__use_membarrier = 0;
SM_TLS sm__thr *sm__tls_thr = NULL;

static _Atomic(sm__thr *) g_threads = NULL; /* push-only list of records */
static _Atomic unsigned g_nthreads = 0;
static pthread_key_t g_key;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static SM_TLS int tls_is_reclaimer = 0;

/* The reclaimer thread and its wake-up channel. */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;    /* wakes reclaimer */
static pthread_cond_t g_done = PTHREAD_COND_INITIALIZER;  /* barrier done */
static pthread_t g_thread;
static int g_running = 0;     /* under g_mu */
static int g_stop = 0;        /* under g_mu */
static int g_joining = 0;     /* under g_mu: a stopped thread is being joined */
static pthread_cond_t g_joined = PTHREAD_COND_INITIALIZER;
static int g_kicked = 0;      /* under g_mu */
static unsigned g_refs = 0;   /* live maps, under g_mu */
static uint64_t g_barrier_gen = 0;  /* barriers completed, under g_mu */
/* Held by the reclaimer for the duration of a pass, so that fork() (whose
 * prepare handler takes it) never copies a half-updated pending list. */
static pthread_mutex_t g_pass_mu = PTHREAD_MUTEX_INITIALIZER;

/* Registry of live maps, for background migration help. */
static pthread_mutex_t g_reg_mu = PTHREAD_MUTEX_INITIALIZER;
static sm_map **g_reg = NULL;
static size_t g_reg_len = 0, g_reg_cap = 0;

/* ---- membarrier ----------------------------------------------------- */

static int membarrier_call(int cmd) {
#if defined(__linux__) && defined(SYS_membarrier)
    return (int)syscall(SYS_membarrier, cmd, 0, 0);
#else
    (void)cmd;
    errno = ENOSYS;
    return -1;
#endif
}

static void thr_exit(void *arg);
static void fork_prepare(void);
static void fork_parent(void);
static void fork_child(void);

static void once_init(void) {
    pthread_key_create(&g_key, thr_exit);
    pthread_atfork(fork_prepare, fork_parent, fork_child);
#if defined(__linux__) && !defined(SM_TSAN)
    int cmds = membarrier_call(MEMBARRIER_CMD_QUERY);
    if (cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
        membarrier_call(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0)
        sm__use_membarrier = 1;
#endif
}

/* The reclaimer's side of E1 (make every running thread's record store
 * visible before the scan), and the walker's side of B3. */
void sm__heavy_fence(void) {
#if defined(__linux__)
    if (sm__use_membarrier && membarrier_call(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0)
        return;
#endif
    SM_FENCE_FULL();
}

/* B3 (map.c): the caller has announced a walk (xwalkers, full fence);
 * wait for the moves that started before it saw the announcement.  A
 * move is a few stores under bucket locks, so this is short unless the
 * mover was preempted. */
void sm__wait_movers(void) {
    for (sm__thr *t = atomic_load_explicit(&g_threads, memory_order_acquire); t; t = t->next)
        for (unsigned spins = 0; atomic_load_explicit(&t->xmoving, memory_order_acquire); spins++) {
            if (spins < 128)
                SM_PAUSE();
            else
                sched_yield();
        }
}

/* ---- thread records -------------------------------------------------- */

sm__thr *sm__thr_register(void) {
    pthread_once(&g_once, once_init);
    sm__thr *t;
    /* Reuse a record released by an exited thread. */
    for (t = atomic_load_explicit(&g_threads, memory_order_acquire); t; t = t->next) {
        int zero = 0;
        if (atomic_load_explicit(&t->xused, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_strong(&t->xused, &zero, 1))
            break;
    }
    if (!t) {
        if (posix_memalign((void **)&t, SM_CACHELINE, sizeof *t) != 0)
            return NULL;
        memset(t, 0, sizeof *t);
        atomic_init(&t->xused, 1);
        t->stripe = atomic_fetch_add(&g_nthreads, 1) % SM_STRIPES;
        sm__thr *head = atomic_load_explicit(&g_threads, memory_order_relaxed);
        do {
            t->next = head;
        } while (!atomic_compare_exchange_weak_explicit(&g_threads, &head, t,
                                                        memory_order_release,
                                                        memory_order_relaxed));
    }
    t->nest = 0;
    t->ops = 0;
    atomic_store_explicit(&t->xmoving, 0, memory_order_relaxed);
    if (pthread_setspecific(g_key, t) != 0) {
        atomic_store(&t->xused, 0);
        return NULL;
    }
    sm__tls_thr = t;
    return t;
}

static void thr_exit(void *arg) {
    sm__thr *t = arg;
    /* A thread that exits while pinned misused the API; unpin it so that
     * reclamation is not blocked for ever.  Its retired list stays with
     * the record and is drained by the reclaimer. */
#if defined(SM_DEBUG) && SM_DEBUG
    if (t->nest)
        sm__misuse("thread exit", "the thread ended while holding a pin");
#endif
    t->nest = 0;
    atomic_store_explicit(&t->xepoch, 0, memory_order_release);
    sm__tls_thr = NULL;
    atomic_store_explicit(&t->xused, 0, memory_order_release);
}

bool sm__on_reclaimer(void) { return tls_is_reclaimer != 0; }

unsigned sm__thread_records(void) {
    return atomic_load_explicit(&g_nthreads, memory_order_relaxed);
}

/* ---- retire ------------------------------------------------------------ */

void sm__retire(sm__thr *t, sm__retired *node, sm__reclaim_fn fn) {
    node->fn = fn;
    SM_FENCE_FULL(); /* E3 */
    node->epoch = atomic_load_explicit(&sm__global_epoch, memory_order_relaxed);
    sm__retired *head = atomic_load_explicit(&t->xretired, memory_order_relaxed);
    do {
        node->next = head;
    } while (!atomic_compare_exchange_weak_explicit(&t->xretired, &head, node,
                                                    memory_order_release,
                                                    memory_order_relaxed));
}

static int ensure_running(void);

void sm__ebr_kick(void) {
    pthread_mutex_lock(&g_mu);
    if (g_refs)
        ensure_running();
    g_kicked = 1;
    pthread_cond_signal(&g_cv);
    pthread_mutex_unlock(&g_mu);
}

/* ---- the reclaimer ------------------------------------------------------ */

/* Nodes collected but not yet safe, owned by the reclaimer thread (or by a
 * thread running a synchronous drain while the reclaimer is stopped). */
static sm__retired *g_pending = NULL;

static size_t collect(void) {
    size_t n = 0;
    for (sm__thr *t = atomic_load_explicit(&g_threads, memory_order_acquire); t; t = t->next) {
        sm__retired *l = atomic_exchange_explicit(&t->xretired, NULL, memory_order_acquire);
        while (l) {
            sm__retired *nx = l->next;
            l->next = g_pending;
            g_pending = l;
            l = nx;
            n++;
        }
    }
    return n;
}

static int try_advance(void) {
    uint64_t e = atomic_load_explicit(&sm__global_epoch, memory_order_relaxed);
    sm__heavy_fence(); /* E1 */
    for (sm__thr *t = atomic_load_explicit(&g_threads, memory_order_acquire); t; t = t->next) {
        uint64_t v = atomic_load_explicit(&t->xepoch, memory_order_acquire);
        if (v != 0 && v != e)
            return 0;
    }
    SM_FENCE_FULL();
    atomic_store_explicit(&sm__global_epoch, e + 1, memory_order_seq_cst); /* E4 */
    return 1;
}

/* Reclaim every safe node; returns the number reclaimed. */
static size_t reclaim_safe(void) {
    uint64_t e = atomic_load_explicit(&sm__global_epoch, memory_order_acquire);
    size_t n = 0;
    sm__retired **pp = &g_pending;
    while (*pp) {
        sm__retired *node = *pp;
        if (node->epoch + 2 <= e) {
            *pp = node->next;
            node->fn(node);
            n++;
        } else {
            pp = &node->next;
        }
    }
    return n;
}

/* Barrier nodes: reclaiming one records that it is done. */
typedef struct barrier_node {
    sm__retired r;
    _Atomic int xdone;
} barrier_node;

static int g_barriers_seen = 0;       /* barrier nodes reached in this round */
static sm__retired *g_barriers_ripe;  /* reached, not yet signalled */

static void barrier_reclaim(sm__retired *node) {
    /* Not signalled yet: nodes retired before it on other threads' lists
     * may not have been collected (E5). */
    node->next = g_barriers_ripe;
    g_barriers_ripe = node;
    g_barriers_seen++;
}

/* One pass: collect, advance, reclaim; while a barrier was reached,
 * collect and reclaim again (everything retired before the barrier is
 * safe by then, E5), and only then signal the barriers. */
static void pass(void) {
    g_barriers_seen = 0;
    collect();
    if (g_pending) {
        if (try_advance())
            try_advance();
    }
    reclaim_safe();
    while (g_barriers_seen) {
        g_barriers_seen = 0;
        collect();
        reclaim_safe();
    }
    while (g_barriers_ripe) {
        barrier_node *b = (barrier_node *)g_barriers_ripe;
        g_barriers_ripe = g_barriers_ripe->next;
        atomic_store_explicit(&b->xdone, 1, memory_order_release);
    }
}

/* Background help for resizes that writers are not finishing: up to
 * 16384 buckets per map and pass (about a millisecond of work).  Returns
 * nonzero while some map still has a transition running. */
static int help_migrations(void) {
    sm__thr *thr = sm__thr_get();
    if (!thr)
        return 0;
    int busy = 0;
    pthread_mutex_lock(&g_reg_mu);
    for (size_t i = 0; i < g_reg_len; i++)
        busy |= sm__help_migrate(g_reg[i], 16384, thr) != 0;
    pthread_mutex_unlock(&g_reg_mu);
    return busy;
}

static void *reclaimer_main(void *arg) {
    (void)arg;
    tls_is_reclaimer = 1;
    pthread_mutex_lock(&g_mu);
    while (!g_stop) {
        g_kicked = 0;
        pthread_mutex_unlock(&g_mu);
        pthread_mutex_lock(&g_pass_mu);
        pass();
        int busy = help_migrations();
        pthread_mutex_unlock(&g_pass_mu);
        pthread_mutex_lock(&g_mu);
        g_barrier_gen++;
        pthread_cond_broadcast(&g_done);
        if (g_stop || g_kicked)
            continue;
        /* Poll quickly while work is pending, slowly when idle. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long ns = (g_pending || busy) ? 1000000L : 20000000L;
        ts.tv_nsec += ns;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&g_cv, &g_mu, &ts);
    }
    pthread_mutex_unlock(&g_mu);
    return NULL;
}

/* Start the reclaimer if it is not running.  Under g_mu. */
static int ensure_running(void) {
    /* A thread told to stop must be gone before another starts: it reads
     * g_stop, and both would work on the pending list. */
    while (g_joining)
        pthread_cond_wait(&g_joined, &g_mu);
    if (g_running)
        return 0;
    g_stop = 0;
    if (pthread_create(&g_thread, NULL, reclaimer_main, NULL) != 0)
        return SM_ENOMEM;
    g_running = 1;
    return 0;
}

int sm__ebr_acquire(void) {
    pthread_once(&g_once, once_init);
    pthread_mutex_lock(&g_mu);
    int rc = ensure_running();
    if (rc == 0)
        g_refs++;
    pthread_mutex_unlock(&g_mu);
    return rc;
}

/* ---- fork ----------------------------------------------------------------
 * The child of fork() has only the forking thread.  The handlers take the
 * reclaimer's locks around the fork so that its state is consistent, and
 * in the child forget every other thread (they cannot be pinned any more)
 * and restart the reclaimer on demand.  A removal hook must not fork. */

/* Lock order: g_pass_mu, then g_reg_mu, then g_mu (the reclaimer holds
 * the first two while helping migrations, which may kick, taking g_mu). */
static void fork_prepare(void) {
    pthread_mutex_lock(&g_pass_mu);
    pthread_mutex_lock(&g_reg_mu);
    pthread_mutex_lock(&g_mu);
}

static void fork_parent(void) {
    pthread_mutex_unlock(&g_mu);
    pthread_mutex_unlock(&g_reg_mu);
    pthread_mutex_unlock(&g_pass_mu);
}

static void fork_child(void) {
    for (sm__thr *t = atomic_load_explicit(&g_threads, memory_order_acquire); t; t = t->next) {
        if (t == sm__tls_thr)
            continue;
        t->nest = 0;
        atomic_store_explicit(&t->xepoch, 0, memory_order_relaxed);
        /* a thread caught inside a back-fill move (B3) would otherwise
         * make every sm_for_each in the child wait for ever */
        atomic_store_explicit(&t->xmoving, 0, memory_order_relaxed);
        atomic_store_explicit(&t->xused, 0, memory_order_relaxed);
    }
    g_running = 0; /* the thread did not survive; ensure_running restarts it */
    g_joining = 0;
    pthread_cond_init(&g_cv, NULL);
    pthread_cond_init(&g_done, NULL);
    pthread_cond_init(&g_joined, NULL);
    pthread_mutex_unlock(&g_mu);
    pthread_mutex_unlock(&g_reg_mu);
    pthread_mutex_unlock(&g_pass_mu);
}

void sm__ebr_release(void) {
    pthread_mutex_lock(&g_mu);
    int join = (--g_refs == 0 && g_running);
    pthread_t th = g_thread;
    if (join) {
        g_stop = 1;
        g_running = 0;
        g_joining = 1; /* no restart until this thread is joined */
        pthread_cond_signal(&g_cv);
    }
    pthread_mutex_unlock(&g_mu);
    if (join) {
        pthread_join(th, NULL);
        pthread_mutex_lock(&g_mu);
        g_joining = 0;
        pthread_cond_broadcast(&g_joined);
        pthread_mutex_unlock(&g_mu);
    }
}

/* Wait until every node retired before this call has been reclaimed.
 * Called with at least one map alive (so the reclaimer runs). */
void sm__ebr_barrier(void) {
    sm__thr *t = sm__thr_get();
    barrier_node b;
    atomic_init(&b.xdone, 0);
    if (!t) {
        /* No record: fall back to waiting for a few full passes. */
        pthread_mutex_lock(&g_mu);
        uint64_t target = g_barrier_gen + 4;
        while (g_barrier_gen < target && g_running) {
            g_kicked = 1;
            pthread_cond_signal(&g_cv);
            pthread_cond_wait(&g_done, &g_mu);
        }
        pthread_mutex_unlock(&g_mu);
        return;
    }
    sm__retire(t, &b.r, barrier_reclaim);
    pthread_mutex_lock(&g_mu);
    ensure_running();
    while (!atomic_load_explicit(&b.xdone, memory_order_acquire)) {
        g_kicked = 1;
        pthread_cond_signal(&g_cv);
        pthread_cond_wait(&g_done, &g_mu);
    }
    pthread_mutex_unlock(&g_mu);
}

/* ---- registry ----------------------------------------------------------- */

void sm__registry_add(sm_map *m) {
    pthread_mutex_lock(&g_reg_mu);
    if (g_reg_len == g_reg_cap) {
        size_t nc = g_reg_cap ? g_reg_cap * 2 : 16;
        sm_map **n = realloc(g_reg, nc * sizeof *n);
        if (!n) { /* without an entry the map just gets no background help */
            pthread_mutex_unlock(&g_reg_mu);
            return;
        }
        g_reg = n;
        g_reg_cap = nc;
    }
    g_reg[g_reg_len++] = m;
    pthread_mutex_unlock(&g_reg_mu);
}

void sm__registry_remove(sm_map *m) {
    pthread_mutex_lock(&g_reg_mu);
    for (size_t i = 0; i < g_reg_len; i++) {
        if (g_reg[i] == m) {
            g_reg[i] = g_reg[--g_reg_len];
            break;
        }
    }
    if (g_reg_len == 0) {
        free(g_reg);
        g_reg = NULL;
        g_reg_cap = 0;
    }
    pthread_mutex_unlock(&g_reg_mu);
}
