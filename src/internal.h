/*
 * stillmap internals shared between the mechanism files.
 *
 * Naming: public symbols are sm_*, internal cross-file symbols sm__*
 * (hidden by -fvisibility=hidden).  Struct fields that are shared between
 * threads and accessed atomically carry an x prefix (xseq, xcur, ...), so
 * that a plain access to a shared word stands out in review.
 *
 * The files, one per mechanism:
 *   ebr.c        epoch-based reclamation, per-thread records, the
 *                background reclaimer thread
 *   table.c      table memory and the bucket protocol (seqlock reads,
 *                bucket locks, overflow counts, slot insert/remove)
 *   transition.c moving a map from one table to the next: grow, shrink,
 *                clear, reserve; the incremental migration
 *   map.c        the public operations
 *   iter.c       for_each
 *   stats.c      statistics
 *   status.c     status strings, version, options
 *   alloc.c      allocator hooks, large tables from mmap
 */
#ifndef SM_INTERNAL_H
#define SM_INTERNAL_H

#include "stillmap.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#define SM_LIKELY(x) __builtin_expect(!!(x), 1)
#define SM_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define SM_CACHELINE 64
#define SM_ALIGNED(n) _Alignas(n)

/* Fences.  ThreadSanitizer does not model atomic_thread_fence (gcc warns
 * and the tool would miss the edges), so the TSan build (SM_TSAN) uses
 * instead a seq_cst read-modify-write on a private word for a full fence
 * (a full barrier on the hardware too) and only a compiler barrier for
 * acquire/release fences: every shared word those fences order is itself
 * accessed atomically with acquire/release where TSan must see the edge. */
#ifdef SM_TSAN
extern _Atomic unsigned sm__fence_word;
#define SM_FENCE_FULL() ((void)atomic_fetch_add_explicit(&sm__fence_word, 0, memory_order_seq_cst))
#define SM_FENCE_ACQ() atomic_signal_fence(memory_order_acquire)
#define SM_FENCE_REL() atomic_signal_fence(memory_order_release)
#else
#define SM_FENCE_FULL() atomic_thread_fence(memory_order_seq_cst)
#define SM_FENCE_ACQ() atomic_thread_fence(memory_order_acquire)
#define SM_FENCE_REL() atomic_thread_fence(memory_order_release)
#endif

/* Thread-local storage model: initial-exec avoids a __tls_get_addr call on
 * every operation.  It is valid for the executable and for libraries
 * loaded at start-up; a build for dlopen() can define SM_TLS_GLOBAL. */
#if defined(__GNUC__) && !defined(SM_TLS_GLOBAL)
#define SM_TLS _Thread_local __attribute__((tls_model("initial-exec")))
#else
#define SM_TLS _Thread_local
#endif

/* ===================================================================
 * Reclamation (ebr.c)
 * ================================================================= */

/* Anything freed after a grace period starts with this header. */
typedef struct sm__retired sm__retired;
typedef void (*sm__reclaim_fn)(sm__retired *node);
struct sm__retired {
    sm__retired *next;
    uint64_t epoch;       /* global epoch read after the node was unlinked */
    sm__reclaim_fn fn;    /* frees the node; runs on the reclaimer */
};

#define SM_STRIPES 16     /* counter stripes per table / map */

/* Per-thread record.  Created on a thread's first call, put back on the
 * free list (not freed) when the thread exits, reused by a later thread:
 * the number of records is the peak number of threads ever alive. */
typedef struct sm__thr {
    /* Epoch the thread is pinned in; 0 when not pinned.
     * Written only by the owner (release), read by the reclaimer. */
    _Atomic uint64_t xepoch;
    unsigned nest;              /* owner only: pin nesting depth */
    unsigned stripe;            /* owner only: counter stripe index */
    unsigned ops;               /* owner only: writes, for periodic checks */
    /* Retired nodes: the owner pushes (CAS), the reclaimer takes the whole
     * list (exchange); a pop-all stack has no ABA problem. */
    _Atomic(sm__retired *) xretired;
    _Atomic int xused;          /* 1 while a live thread owns the record */
    /* 1 while the owner may move a key back along its chain (B3, map.c).
     * Written only by the owner: set relaxed, then the light fence (which
     * pairs with the walker's heavy fence), cleared with release so that a
     * walker that reads 0 (acquire, sm__wait_movers) sees the moves done.
     * Reset by fork_child and on record reuse. */
    _Atomic int xmoving;
    struct sm__thr *next;       /* registry list; immutable once pushed */
    char pad[SM_CACHELINE - 48];
} sm__thr;

extern _Atomic uint64_t sm__global_epoch;
extern int sm__use_membarrier;
extern SM_TLS sm__thr *sm__tls_thr;

sm__thr *sm__thr_register(void);   /* slow path; NULL on out of memory */

/* Asymmetric fence pair: a light fence on the frequent side, a heavy one
 * on the rare side, together as strong as a seq_cst fence on both (with
 * membarrier the heavy side makes every running thread execute a full
 * barrier; without it both sides are full fences).  E1 (pin / reclaimer)
 * and B3 (mover / walker) use it. */
void sm__heavy_fence(void);
static inline void sm__light_fence(void) {
#ifdef SM_TSAN
    SM_FENCE_FULL();
#else
    if (SM_LIKELY(sm__use_membarrier))
        atomic_signal_fence(memory_order_seq_cst);
    else
        atomic_thread_fence(memory_order_seq_cst);
#endif
}

static inline sm__thr *sm__thr_get(void) {
    sm__thr *t = sm__tls_thr;
    return SM_LIKELY(t != NULL) ? t : sm__thr_register();
}

/*
 * Enter a read-side critical section.
 * E1: the store of the epoch must be visible to the reclaimer before any
 *     load of a shared pointer done while pinned.  With membarrier the
 *     reclaimer forces that ordering on every running thread before it
 *     scans the records (sys_membarrier PRIVATE_EXPEDITED), so the reader
 *     needs only a compiler barrier; without it a seq_cst fence here does
 *     the same job.  The store is a release so that, under the C11 model
 *     used by ThreadSanitizer, whatever the thread did before (including
 *     its previous unpin) happens-before a reclaimer that reads it.
 */
static inline void sm__pin(sm__thr *t) {
    if (t->nest++ == 0) {
        uint64_t e = atomic_load_explicit(&sm__global_epoch, memory_order_relaxed);
        atomic_store_explicit(&t->xepoch, e, memory_order_release);
        sm__light_fence();
    }
}

/* Leave it.  E2: release, so every load done while pinned completes before
 * the reclaimer can observe 0 and free what was loaded. */
static inline void sm__unpin(sm__thr *t) {
    if (--t->nest == 0)
        atomic_store_explicit(&t->xepoch, 0, memory_order_release);
}

/* Hand a node that is no longer reachable from any table to the reclaimer.
 * The caller must have unlinked it (E3: unlink, then retire). */
void sm__retire(sm__thr *t, sm__retired *node, sm__reclaim_fn fn);
/* Wake the reclaimer now (big frees, barrier). */
void sm__ebr_kick(void);
/* Take / drop a reference on the reclaimer thread (one per live map). */
int sm__ebr_acquire(void);
void sm__ebr_release(void);
/* Wait until every node retired before the call has been reclaimed. */
void sm__ebr_barrier(void);
/* Wait until no thread is inside a back-fill move (B3; for_each). */
void sm__wait_movers(void);

/* True on the reclaimer thread (removal hooks run there). */
bool sm__on_reclaimer(void);

/* ===================================================================
 * Allocation (alloc.c)
 * ================================================================= */
void *sm__alloc(sm_map *m, size_t size);
void sm__free(sm_map *m, void *p, size_t size);
/* Zeroed memory for a table; large tables come from mmap so that freeing
 * them returns the pages to the OS.  *mapped tells how it was obtained. */
void *sm__table_mem(sm_map *m, size_t size, int *mapped);
void sm__table_mem_free(sm_map *m, void *p, size_t size, int mapped);
/* Fault in bytes [off, off + len) of a mapped table (T7). */
void sm__table_mem_populate(void *p, size_t off, size_t len);

/* ===================================================================
 * Tables (table.c)
 * ================================================================= */

#define SM_SLOTS 3           /* slots per bucket; a bucket is one line */
#define SM_MOVED 1u          /* bucket flag: migrated to the next table */

/*
 * One bucket = one 64-byte cache line: a 16-byte header and three
 * (key, value) slots.  A lookup reads one line on the fast path.
 *
 *   xseq    even/odd sequence count, bumped by a writer around any change
 *           that could make a reader pair a key with another key's value
 *           (removing a key; a slot reused).  Readers validate with it.
 *   xlock   writers' lock for this bucket's slots and flags.
 *   xmeta   bytes 0..2: the slots' tags, 0 = empty, else 8 bits of the
 *           key's hash (never 0), published last with release when a
 *           slot is filled; byte 3: flags, SM_MOVED once the bucket has
 *           been copied to the next table (after that the slots are
 *           frozen).  One word, so a reader matches all tags with one
 *           load; written only under the bucket lock.
 *   xovf    overflow count: how many keys whose probe sequence passes this
 *           bucket are stored further on.  A lookup that misses here may
 *           stop when it is 0.  Invariant O1: at every instant xovf(b) >=
 *           number of present keys whose home is at or before b and which
 *           are stored after b (insert increments before publishing the
 *           slot; delete decrements after clearing it).
 *   key     u64 maps: the key; byte maps: pointer to an sm__blob.
 *   val     the value.
 */
typedef struct sm__bucket {
    _Atomic uint32_t xseq;
    _Atomic uint32_t xlock;
    _Atomic uint32_t xmeta;
    _Atomic uint32_t xovf;
    struct {
        _Atomic uint64_t xkey;
        _Atomic uint64_t xval;
    } slot[SM_SLOTS];
} sm__bucket;

_Static_assert(sizeof(sm__bucket) == SM_CACHELINE, "bucket must be one cache line");

#define SM_META_TAG(meta, s) (((meta) >> (8 * (s))) & 0xffu)
#define SM_META_FLAGS(meta) ((meta) >> 24)
#define SM_META_TAGS 0x00ffffffu

/* Exact zero-byte test on the three tag bytes: bit 8*s+7 is set iff byte s
 * is 0.  ((b & 0x7f) + 0x7f) never carries out of its byte, so no byte
 * disturbs another (the cheaper borrow-based test can flag a byte above a
 * true zero, which would let a stale key in an empty slot match). */
static inline uint32_t sm__zero_bytes(uint32_t x) {
    return ~(((x & 0x7f7f7fu) + 0x7f7f7fu) | x | 0x7f7f7fu) & 0x808080u;
}
/* Slots of a meta word whose tag equals `tag`. */
static inline uint32_t sm__meta_match(uint32_t meta, uint8_t tag) {
    return sm__zero_bytes((meta & SM_META_TAGS) ^ ((uint32_t)tag * 0x010101u));
}
/* Empty slots of a meta word. */
static inline uint32_t sm__meta_empty(uint32_t meta) {
    return sm__zero_bytes(meta & SM_META_TAGS);
}
static inline int sm__first_slot(uint32_t bits) { return __builtin_ctz(bits) >> 3; }

/* Writers (holding the bucket lock, so the only writer of the word). */
static inline void sm__meta_set_tag(sm__bucket *b, int s, uint8_t tag, memory_order mo) {
    uint32_t m = atomic_load_explicit(&b->xmeta, memory_order_relaxed);
    m = (m & ~(0xffu << (8 * s))) | ((uint32_t)tag << (8 * s));
    atomic_store_explicit(&b->xmeta, m, mo);
}
static inline void sm__meta_set_flags(sm__bucket *b, uint32_t flags, memory_order mo) {
    uint32_t m = atomic_load_explicit(&b->xmeta, memory_order_relaxed);
    atomic_store_explicit(&b->xmeta, (m & SM_META_TAGS) | (flags << 24), mo);
}

typedef struct sm__stripe {
    _Atomic int64_t xcount;      /* entries added - removed via this stripe */
    _Atomic int64_t xkey_bytes;  /* bytes of copied keys, same */
    char pad[SM_CACHELINE - 16];
} sm__stripe;

typedef struct sm__table {
    sm__retired r;               /* when retired */
    sm_map *map;
    size_t nbuckets;             /* power of two */
    size_t mask;
    size_t mem_bytes;            /* whole allocation */
    void *raw;                   /* allocation start (t is 64-aligned in it) */
    int mapped;                  /* from mmap */
    /* cleared, pend_charge: plain words written by the one thread that
     * retires the table (clear, or the promoting migrator) before
     * sm__retire, read only by the reclaimer after it took the node from
     * the retire list (release push / acquire exchange, E3). */
    int cleared;                 /* retired by clear: entries get hooks */
    int64_t inh_count;           /* C2: totals inherited at promotion */
    int64_t inh_bytes;
    int64_t pend_charge;         /* pending bytes charged when retired */
    /* T6: inserts this table may still take while it is the destination
     * of a running migration (not yet current).  Set before publication. */
    _Atomic int64_t xins_budget;
    /* The table this one is migrating into; NULL when none.  Set once,
     * by CAS from NULL, only while this table is the map's current one. */
    _Atomic(struct sm__table *) xnext;
    /* T7: the next table of a grow while the background thread faults its
     * pages in, before it becomes xnext.  Stored by CAS from NULL (acq_rel:
     * the table's header before the pointer) while this table is current;
     * taken by exchange or CAS to NULL (acq_rel) by the one thread that
     * then publishes or discards it; freed with this table if still here.
     * Readers (the background thread, stats, trim) load it with acquire
     * while pinned, which keeps what they loaded allocated.
     * xpopulated: bytes of this table faulted in so far; written and read
     * only by the background thread (relaxed). */
    _Atomic(struct sm__table *) xprep;
    _Atomic size_t xpopulated;
    /* Any migrating thread takes cursor positions with a relaxed
     * fetch_add (a position only names work; the bucket lock orders the
     * work itself).  xmoved is incremented (acq_rel) by the thread that set
     * a bucket's SM_MOVED, after unlocking it; the one that brings it to
     * nbuckets saw every other increment and promotes dst (T1, C2). */
    _Atomic size_t xcursor;      /* next bucket index to claim for migration */
    _Atomic size_t xmoved;       /* buckets marked SM_MOVED so far */
    /* Walks of this table in progress (sm_for_each); while it is not 0 no
     * key is moved back along its chain in this table (B3, map.c).  Every
     * walker adds 1 (seq_cst, then the heavy fence) before its walk and
     * takes it back (release) after; a mover reads it relaxed after its
     * light fence and gives up on any value but 0. */
    _Atomic int xwalkers;
    SM_ALIGNED(SM_CACHELINE) sm__stripe stripe[SM_STRIPES];
    sm__bucket b[];              /* nbuckets, 64-byte aligned */
} sm__table;

_Static_assert(offsetof(sm__table, stripe) % SM_CACHELINE == 0, "stripes must be line-aligned");
_Static_assert(offsetof(sm__table, b) % SM_CACHELINE == 0, "buckets must be line-aligned");

/* Byte-string key, immutable once published; freed after a grace period
 * when its entry is removed. */
typedef struct sm__blob {
    sm__retired r;
    sm_map *map;
    uint64_t hash;
    uint32_t len;
    unsigned char bytes[];
} sm__blob;

static inline sm__blob *sm__blob_of(uint64_t key) { return (sm__blob *)(uintptr_t)key; }

/* A key as an operation carries it. */
typedef struct sm__key {
    uint64_t hash;
    uint64_t u64;               /* u64 maps */
    const void *p;              /* byte maps */
    size_t len;
    uint8_t tag;
} sm__key;

sm__table *sm__table_new(sm_map *m, size_t nbuckets);
void sm__table_free(sm__table *t);   /* just the memory */
size_t sm__buckets_for(size_t entries);    /* power of two, load <= 3/4 */

static inline uint8_t sm__tag_of(uint64_t h) {
    uint8_t t = (uint8_t)(h >> 56);
    return t ? t : 1;
}

/* Bucket locks.  Acquire orders the critical section after the previous
 * holder's release (L1). */
void sm__bucket_lock_slow(sm__bucket *b);
static inline int sm__bucket_trylock(sm__bucket *b) {
    return atomic_load_explicit(&b->xlock, memory_order_relaxed) == 0 &&
           atomic_exchange_explicit(&b->xlock, 1, memory_order_acquire) == 0;
}
static inline void sm__bucket_lock(sm__bucket *b) {
    if (SM_UNLIKELY(!sm__bucket_trylock(b)))
        sm__bucket_lock_slow(b);
}
static inline void sm__bucket_unlock(sm__bucket *b) {
    atomic_store_explicit(&b->xlock, 0, memory_order_release);
}

/* Seqlock write side (S1..S2 in table.c). */
static inline void sm__seq_begin(sm__bucket *b) {
    uint32_t s = atomic_load_explicit(&b->xseq, memory_order_relaxed);
    atomic_store_explicit(&b->xseq, s + 1, memory_order_relaxed);
    SM_FENCE_REL();
}
static inline void sm__seq_end(sm__bucket *b) {
    uint32_t s = atomic_load_explicit(&b->xseq, memory_order_relaxed);
    atomic_store_explicit(&b->xseq, s + 1, memory_order_release);
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SM_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define SM_PAUSE() __asm__ __volatile__("yield")
#else
#define SM_PAUSE() ((void)0)
#endif
#define SM_INLINE static inline __attribute__((always_inline))

/* Debug builds (-DSM_DEBUG=1): a lookup that walks on past a bucket calls
 * sm__debug_step_hook if a test set it, so that the test can land a write
 * exactly in the middle of a lookup (a window of nanoseconds otherwise).
 * A plain pointer: a test sets and clears it while no other thread runs
 * a lookup.  Release builds have no hook and no call. */
#if defined(SM_DEBUG) && SM_DEBUG
extern void (*sm__debug_step_hook)(void);
#define SM_DEBUG_STEP()                 \
    do {                                \
        if (sm__debug_step_hook)        \
            sm__debug_step_hook();      \
    } while (0)
#else
#define SM_DEBUG_STEP() ((void)0)
#endif

/* A reader found xseq odd: a removal is in progress in this bucket (a few
 * instructions under the writer's lock).  Pause, or yield if it lasts. */
__attribute__((cold)) void sm__wait_even(sm__bucket *b, unsigned spins);

/* Does slot i of b, whose tag matched, hold key k?  The kind is a
 * compile-time constant at the hot call sites so the compiler specialises
 * the probe loops.  S2: the caller loaded xmeta with acquire before the
 * key.  For byte maps the key word is a blob pointer, loaded with acquire
 * so that the blob's bytes are visible; the blob cannot be freed while the
 * caller is pinned (it was reachable when the tag was read, E3). */
SM_INLINE int sm__key_eq(sm_key_kind kind, sm__bucket *b, int i, const sm__key *k) {
    if (kind == SM_KEY_U64)
        return atomic_load_explicit(&b->slot[i].xkey, memory_order_relaxed) == k->u64;
    const sm__blob *bl = sm__blob_of(atomic_load_explicit(&b->slot[i].xkey, memory_order_acquire));
    return bl->hash == k->hash && bl->len == k->len &&
           (k->len == 0 || memcmp(bl->bytes, k->p, k->len) == 0);
}

/* Slot of b holding k, or -1 (caller pinned; meta loaded with acquire). */
SM_INLINE int sm__bucket_find(sm_key_kind kind, sm__bucket *b, uint32_t meta, const sm__key *k) {
    for (uint32_t c = sm__meta_match(meta, k->tag); c; c &= c - 1) {
        int s = sm__first_slot(c);
        if (sm__key_eq(kind, b, s, k))
            return s;
    }
    return -1;
}

/* Result of a lock-free lookup in one table. */
typedef struct sm__found {
    int found;       /* 1 = key present in this table */
    int moved;       /* some bucket of the chain was moved: also look in
                        the next table (unless found in an unmoved one) */
    uint64_t val;
} sm__found;

/* Look the key up in t, lock-free: each bucket is read as one snapshot
 * validated by its sequence count (S1), along the chain until a bucket
 * whose overflow count is 0 (O1). */
SM_INLINE void sm__table_lookup(sm_key_kind kind, sm__table *t, const sm__key *k, sm__found *out) {
    size_t home = k->hash & t->mask, i, dist;
    uint32_t home_seq = 0;
again:
    out->found = out->moved = 0;
    i = home;
    for (dist = 0; dist <= t->mask; dist++, i = (i + 1) & t->mask) {
        sm__bucket *b = &t->b[i];
        uint32_t s1, meta, ovf;
        int hit;
        uint64_t val = 0;
        for (unsigned spins = 0;; spins++) {
            s1 = atomic_load_explicit(&b->xseq, memory_order_acquire);
            if (SM_UNLIKELY(s1 & 1)) {
                sm__wait_even(b, spins);
                continue;
            }
            /* acquire: tags before keys (S2); a reader that sees SM_MOVED
             * sees the copies in the next table and its pointer (S4, T3) */
            meta = atomic_load_explicit(&b->xmeta, memory_order_acquire);
            ovf = atomic_load_explicit(&b->xovf, memory_order_relaxed);
            /* T3: a moved bucket's slots are not read.  Its keys live on
             * in the next table, where they may already have been deleted
             * and their blobs freed (a reader that pinned after that can
             * still reach this table while the migration runs). */
            hit = (SM_META_FLAGS(meta) & SM_MOVED) ? -1 : sm__bucket_find(kind, b, meta, k);
            if (hit >= 0)
                val = atomic_load_explicit(&b->slot[hit].xval, memory_order_acquire);
            SM_FENCE_ACQ();
            if (SM_LIKELY(atomic_load_explicit(&b->xseq, memory_order_relaxed) == s1))
                break;
        }
        int moved = (SM_META_FLAGS(meta) & SM_MOVED) != 0;
        out->moved |= moved;
        if (hit >= 0) {
            out->found = 1;
            out->val = val;
            return;
        }
        if (dist == 0)
            home_seq = s1;
        if (ovf == 0)
            break;
        SM_DEBUG_STEP();
    }
    /* B2: a miss that went past the home bucket is an answer only if no
     * key of this home moved back along the chain meanwhile (a move bumps
     * the home bucket's count around it).  The acquire fence above orders
     * this load after the loads of the chain. */
    if (SM_UNLIKELY(dist != 0 &&
                    atomic_load_explicit(&t->b[home].xseq, memory_order_relaxed) != home_seq))
        goto again;
}

/* Insert a key known to be absent into t, with no presence check: used by
 * migration, whose source bucket lock guarantees that no other copy of
 * the key exists in t.  Never fails (t is sized with room to spare). */
void sm__table_insert_fresh(sm__table *t, uint64_t hash, uint8_t tag,
                            uint64_t key, uint64_t val);

/* ===================================================================
 * The map
 * ================================================================= */
#define SM_MAGIC 0x53544d50u  /* "STMP" */
#define SM_MAGIC_DEAD 0xdeadbeefu

/* Pending-reclamation gauge, striped like the entry counts: the retiring
 * thread adds on its own stripe, the reclaimer subtracts on its stripe
 * just before it frees (so the sum never counts freed memory); relaxed,
 * read as a sum by sm_get_stats and sm_trim. */
typedef struct sm__mstripe {
    _Atomic int64_t xpend_bytes;   /* retired, not yet reclaimed */
    _Atomic int64_t xpend_objs;
    char pad[SM_CACHELINE - 16];
} sm__mstripe;

struct sm_map {
    void *raw;                   /* allocation holding this struct */
    size_t raw_size;
    uint32_t magic;
    sm_map *dead_next;           /* debug builds: list of destroyed maps */
    sm_key_kind kind;
    uint64_t seed;
    uint64_t u64_flip;           /* seed-derived word for sm__hash_u64 */
    sm_allocator alloc;
    int default_alloc;
    sm_remove_fn on_remove;
    void *on_remove_ctx;
    size_t min_buckets;          /* floor: initial capacity / reserve */
    char pad0[SM_CACHELINE];
    /* The current table.  Replaced by a transition's promotion (CAS) or
     * by clear (exchange).  Loaded with acquire by every operation. */
    SM_ALIGNED(SM_CACHELINE) _Atomic(sm__table *) xcur;
    /* Reserve floor: raised by sm_reserve with a CAS loop (lowered back
     * only by the same call when it fails); read relaxed by resize
     * decisions, which only need some recent value (a shrink decided on an
     * older floor is finished by sm_reserve before it returns). */
    _Atomic size_t xreserve_buckets;
    char pad1[SM_CACHELINE - 16];
    /* Monotonic event counters: relaxed fetch_add by whoever causes the
     * event, relaxed loads by sm_get_stats (each value current, no
     * snapshot across them, as the header says). */
    SM_ALIGNED(SM_CACHELINE) _Atomic uint64_t xgrows;
    _Atomic uint64_t xshrinks;
    _Atomic uint64_t xclears;
    _Atomic uint64_t xmigrated;
    _Atomic uint64_t xhooks;
    sm__mstripe mstripe[SM_STRIPES];
};

/* Misuse detection (debug builds, -DSM_DEBUG=1): every public entry
 * point checks the map's magic word; sm_destroy keeps the dead map's
 * struct (marked) so that a later call is caught instead of reading freed
 * memory.  Release builds compile the checks away. */
#if defined(SM_DEBUG) && SM_DEBUG
int sm__misuse(const char *fn, const char *what);
int sm__check_map(const sm_map *m, const char *fn);
#define SM_DEBUG_CHECK(m)                                   \
    do {                                                    \
        int sm__c_ = sm__check_map((m), __func__);          \
        if (sm__c_)                                         \
            return sm__c_;                                  \
    } while (0)
#define SM_DEBUG_CHECK_RET(m, rv)                           \
    do {                                                    \
        if (sm__check_map((m), __func__))                   \
            return (rv);                                    \
    } while (0)
#define SM_MISUSE(fn, what) sm__misuse((fn), (what))
#else
#define SM_DEBUG_CHECK(m) ((void)0)
#define SM_DEBUG_CHECK_RET(m, rv) ((void)0)
#define SM_MISUSE(fn, what) SM_EMISUSE
#endif

/* The common start of a public call on a map: a NULL map is SM_EINVAL,
 * the debug check, then the calling thread's record (SM_ENOMEM if it
 * cannot be created).  Declares `thr`. */
#define SM_ENTER(m, thr)                  \
    if (!(m))                             \
        return SM_EINVAL;                 \
    SM_DEBUG_CHECK(m);                    \
    sm__thr *thr = sm__thr_get();         \
    if (!thr)                             \
        return SM_ENOMEM

/* Hashing: XXH3 (Debian libxxhash-dev, header-only mode, so it is a
 * build-time dependency only), seeded per map. */
static inline uint64_t sm__hash_bytes(const sm_map *m, const void *p, size_t len) {
    return XXH3_64bits_withSeed(len ? p : "", len, m->seed);
}
/* u64 keys: the construction XXH3 applies to 4..8-byte inputs (the key
 * xored with a seed-derived word, then the rrmxmx mixer), specialised to a
 * constant length: ~10 instructions instead of a call through XXH3's
 * length dispatch.  m->u64_flip is derived from the seed at creation. */
static inline uint64_t sm__hash_u64(const sm_map *m, uint64_t k) {
    uint64_t x = k ^ m->u64_flip;
    x ^= ((x << 49) | (x >> 15)) ^ ((x << 24) | (x >> 40));
    x *= 0x9FB21C651E98DF25ull;
    x ^= (x >> 35) + 8;
    x *= 0x9FB21C651E98DF25ull;
    return x ^ (x >> 28);
}

static inline size_t sm__blob_size(size_t len) { return sizeof(sm__blob) + len; }
/* Hash of a key word as stored in a slot (u64 key, or blob pointer whose
 * blob the caller keeps alive: pinned, or holding the slot's bucket). */
static inline uint64_t sm__stored_hash(const sm_map *m, uint64_t keyword) {
    return m->kind == SM_KEY_U64 ? sm__hash_u64(m, keyword) : sm__blob_of(keyword)->hash;
}
void sm__blob_reclaim(sm__retired *node);

/* Pending-reclamation accounting, on the caller's stripe. */
static inline void sm__pending_add(sm_map *m, unsigned stripe, int64_t bytes, int64_t objs) {
    atomic_fetch_add_explicit(&m->mstripe[stripe].xpend_bytes, bytes, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->mstripe[stripe].xpend_objs, objs, memory_order_relaxed);
}
static inline void sm__count_add(sm__table *t, unsigned stripe, int64_t n, int64_t bytes) {
    atomic_fetch_add_explicit(&t->stripe[stripe].xcount, n, memory_order_relaxed);
    if (bytes)
        atomic_fetch_add_explicit(&t->stripe[stripe].xkey_bytes, bytes, memory_order_relaxed);
}
/* Counts (C1, C2).
 *  C1  a write changes its table's count stripes while it still holds the
 *      bucket it changed, so before that bucket can be migrated.
 *  C2  migration does not move counts: an entry stays counted in the table
 *      it was inserted in.  When dst is promoted it inherits src's final
 *      totals (inh_count, inh_bytes, written before the CAS that publishes
 *      it, read after an acquire load of xcur).  So the number of entries
 *      is count(current) + count_raw(current->xnext), exact whenever no
 *      user write is in progress, background migration or not. */
int64_t sm__table_count(sm__table *t);        /* raw + inherited */
int64_t sm__table_count_raw(sm__table *t);
int64_t sm__table_key_bytes(sm__table *t);
int64_t sm__table_key_bytes_raw(sm__table *t);

/* Value-removal hook record (only when the map has a hook). */
typedef struct sm__hookrec {
    sm__retired r;
    sm_map *map;
    uint64_t value;
    sm_reason reason;
} sm__hookrec;
void sm__hookrec_reclaim(sm__retired *node);
void sm__call_hook(sm_map *m, uint64_t value, sm_reason why);

/* ===================================================================
 * Transitions (transition.c)
 * ================================================================= */

/* Buckets a write moves besides its own chain (bounded work, T1):
 * fewer while growing (the destination has room to spare: lower write
 * latency), more while shrinking (the destination is small: T2). */
#define SM_HELP_GROW 4
#define SM_HELP_SHRINK 8
/* Entries kept free in a migration's destination for writes that race
 * with the start of the transition (T6): each thread can have at most
 * one such write, so the bound is the number of thread records (never
 * fewer than the threads alive) plus a constant. */
unsigned sm__thread_records(void);
#define SM_SLACK ((int64_t)sm__thread_records() + 8)
/* Probe length (buckets) past which an insert asks for growth. */
#ifndef SM_MAX_PROBE
#define SM_MAX_PROBE 64
#endif

/* Before a write on k: while t is migrating, move k's chain in t (and a
 * bounded chunk more) to t->xnext and continue there.  Returns the table
 * the write must use (one with no migration in progress at the time of
 * the check). */
sm__table *sm__settle(sm_map *m, sm__table *t, const sm__key *k, sm__thr *thr);
/* Start a transition of t (the current table) to a table of nbuckets.
 * Returns 0, or SM_ENOMEM.  No-op if one is already running.  defer: a
 * grow that may wait for its table to be populated in the background
 * (T7); otherwise it starts now (and takes over a table being prepared). */
int sm__start_transition(sm_map *m, sm__table *t, size_t nbuckets, int defer);
/* Periodic check after writes: start a grow or shrink if the load says so. */
void sm__check_resize(sm_map *m, sm__table *t);
/* A write found the migration's destination full: help the migration
 * along by a larger chunk so that dst becomes current and can grow.
 * Caller pinned. */
void sm__help_finish(sm_map *m, sm__thr *thr);
/* Background help: migrate up to `budget` buckets of m's transition;
 * returns the number of buckets looked at (0: no transition running). */
size_t sm__help_migrate(sm_map *m, size_t budget, sm__thr *thr);
/* Complete the running transition (if any) on the caller's thread and
 * return the current table.  Caller pinned.  O(table) work. */
sm__table *sm__finish_transition(sm_map *m, sm__thr *thr);
/* Walk a retired table (and, when cleared, its successors) for hooks and
 * key frees, then free its memory. */
void sm__table_reclaim(sm__retired *node);
/* Free every table of the map now (destroy). */
void sm__destroy_tables(sm_map *m);

/* White-box view of the current table (stats.c), for tests and tools;
 * exact only while no write runs.  holes_passed counts buckets that have
 * a free slot yet are passed by some key's chain (xovf > 0): 0 in a table
 * whose deletes all back-filled completely (B1-B3, map.c), as in a fresh
 * build.  Returns SM_OK, or -1 while a transition runs. */
typedef struct sm__census {
    size_t buckets, entries, displaced, ovf_total, holes_passed;
} sm__census;
int sm__take_census(sm_map *m, sm__census *c);

/* map registry for the background helper (ebr.c) */
void sm__registry_add(sm_map *m);
void sm__registry_remove(sm_map *m);

#endif /* SM_INTERNAL_H */
