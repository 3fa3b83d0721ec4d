/*
 * table.c — table memory and the bucket protocol.
 *
 * A table is an array of 64-byte buckets (see sm__bucket in internal.h),
 * probed linearly bucket by bucket from the key's home bucket
 * (hash & mask).  Deletion leaves no tombstone: every bucket counts the
 * keys that probed past it (xovf), a lookup stops at the first bucket
 * whose count is 0, and a delete decrements the counts it incremented on
 * insert.  A delete also moves keys back into the slot it freed (B1-B3 in
 * map.c), so a table after any number of insert/delete cycles has the
 * overflow counts of a fresh table with the same keys.
 *
 * Ordering guarantees of the bucket protocol, cited by number:
 *
 *  S1  A writer that removes a key from a slot (or, through a removal,
 *      makes a slot reusable) holds the bucket lock and brackets the
 *      change with xseq odd ... xseq even: store odd (relaxed), release
 *      fence, the changes, store even (release).  A reader that read an
 *      even xseq (acquire), then the slots (relaxed/acquire loads), then an
 *      acquire fence, then the same xseq, saw no removal in between.
 *  S2  A slot is filled by storing key and value first and the tag last
 *      with release; a reader loads the tag with acquire before the key
 *      and value, so a non-zero tag always comes with its key and value
 *      (and, for byte keys, with the fully written key blob).  Filling an
 *      empty slot needs no xseq bump: a reader sees it empty or complete.
 *  S3  A value-only update (key stays) is one release store of the value
 *      word; a reader sees the old or the new value, both linearizable.
 *  S4  SM_MOVED is set under the bucket lock after the bucket's entries
 *      have been copied to the next table (release); from then on the
 *      bucket is never written again, so a reader that finds a key in an
 *      unmoved bucket read a value that was current at that instant.
 *  O1  (overflow counts) see internal.h: xovf never under-counts.
 *  L1  Bucket locks are acquired with acquire semantics and released with
 *      release; a writer may hold its home bucket and then lock one later
 *      bucket; a later bucket that lies before the home (the probe wrapped)
 *      is only try-locked, so lock order is acyclic.
 */
#include "internal.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t sm__buckets_for(size_t entries) {
    /* Room for `entries` at a load factor of at most 7/10: under the 4/5
     * that starts growth (so `entries` inserts never grow the table); the
     * smallest such power of two has a load above 7/20, over the 3/10 that
     * starts a shrink, so a resized table sits inside both thresholds (no
     * back-and-forth), and a shrunk or reserved table is the size a fresh
     * map grows to for the same entries. */
    size_t need = entries / 21 * 10 + (entries % 21) * 10 / 21 + 1;
    size_t n = 8;
    while (n < need && n < ((size_t)1 << 58))
        n <<= 1;
    return n;
}

sm__table *sm__table_new(sm_map *m, size_t nbuckets) {
    size_t bytes = sizeof(sm__table) + nbuckets * sizeof(sm__bucket) + SM_CACHELINE;
    int mapped = 0;
    void *raw = sm__table_mem(m, bytes, &mapped);
    if (!raw)
        return NULL;
    uintptr_t a = ((uintptr_t)raw + SM_CACHELINE - 1) & ~(uintptr_t)(SM_CACHELINE - 1);
    sm__table *t = (sm__table *)a;
    /* The memory is zeroed: every bucket starts empty, unlocked, unmoved. */
    t->map = m;
    t->nbuckets = nbuckets;
    t->mask = nbuckets - 1;
    t->mem_bytes = bytes;
    t->raw = raw;
    t->mapped = mapped;
    t->cleared = 0;
    t->inh_count = t->inh_bytes = 0;
    t->pend_charge = 0;
    atomic_init(&t->xins_budget, 0);
    atomic_init(&t->xnext, NULL);
    atomic_init(&t->xprep, NULL);
    atomic_init(&t->xpopulated, 0);
    atomic_init(&t->xcursor, 0);
    atomic_init(&t->xmoved, 0);
    atomic_init(&t->xwalkers, 0);
    return t;
}

void sm__table_free(sm__table *t) {
    sm__table_mem_free(t->map, t->raw, t->mem_bytes, t->mapped);
}

int64_t sm__table_count_raw(sm__table *t) {
    int64_t n = 0;
    for (int i = 0; i < SM_STRIPES; i++)
        n += atomic_load_explicit(&t->stripe[i].xcount, memory_order_relaxed);
    return n;
}

int64_t sm__table_key_bytes_raw(sm__table *t) {
    int64_t n = 0;
    for (int i = 0; i < SM_STRIPES; i++)
        n += atomic_load_explicit(&t->stripe[i].xkey_bytes, memory_order_relaxed);
    return n;
}

int64_t sm__table_count(sm__table *t) { return sm__table_count_raw(t) + t->inh_count; }
int64_t sm__table_key_bytes(sm__table *t) { return sm__table_key_bytes_raw(t) + t->inh_bytes; }

/* ---- locks (L1) ---------------------------------------------------- */

void sm__wait_even(sm__bucket *b, unsigned spins) {
    if (spins < 128)
        SM_PAUSE();
    else
        sched_yield();
    (void)b;
}

#if defined(SM_DEBUG) && SM_DEBUG
void (*sm__debug_step_hook)(void);
#endif

void sm__bucket_lock_slow(sm__bucket *b) {
    /* Spin, then yield.  The spin (about 1024 pauses, tens of
     * microseconds) outlasts a holder that takes a page fault in a fresh
     * table; past it the holder is probably descheduled (more threads than
     * cores) and spinning would only delay it. */
    for (unsigned spins = 0;; spins++) {
        if (sm__bucket_trylock(b))
            return;
        if (spins < 1024)
            SM_PAUSE();
        else
            sched_yield();
    }
}

/* ---- insertion of a key known to be absent (migration) -------------- */

static int bucket_free_slot(sm__bucket *b) {
    uint32_t e = sm__meta_empty(atomic_load_explicit(&b->xmeta, memory_order_relaxed));
    return e ? sm__first_slot(e) : -1;
}

void sm__table_insert_fresh(sm__table *t, uint64_t hash, uint8_t tag,
                            uint64_t key, uint64_t val) {
    size_t h = hash & t->mask, i = h;
    /* No other writer can insert this key into t (the caller holds the
     * source bucket's lock), so only the target bucket is locked.  O1:
     * every bucket passed has its overflow count raised before the slot
     * is published. */
    for (;;) {
        sm__bucket *b = &t->b[i];
        /* Lock first, no peek: in a fresh table the first touch of a page
         * should be a write, or the kernel maps the zero page for the read
         * and takes a second fault for the write. */
        {
            sm__bucket_lock(b);
            int s = bucket_free_slot(b);
            if (s >= 0) {
                /* release: a byte key's blob travels with its pointer */
                atomic_store_explicit(&b->slot[s].xkey, key, memory_order_release);
                atomic_store_explicit(&b->slot[s].xval, val, memory_order_relaxed);
                sm__meta_set_tag(b, s, tag, memory_order_release); /* S2 */
                sm__bucket_unlock(b);
                /* C2: moved entries stay counted in the source */
                return;
            }
            sm__bucket_unlock(b);
        }
        atomic_fetch_add_explicit(&b->xovf, 1, memory_order_relaxed);
        i = (i + 1) & t->mask;
        /* t always has free slots (T2).  Were that ever broken, stop loudly
         * rather than spin for ever. */
        if (SM_UNLIKELY(i == h)) {
            fprintf(stderr, "stillmap: internal error: migration target full\n");
            abort();
        }
    }
}
