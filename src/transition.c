/*
 * transition.c — moving a map from one table to the next.
 *
 * One mechanism serves grow, shrink, reserve and clear.  A transition of
 * the current table `src` to `dst`:
 *
 *   1. dst is allocated (zeroed: mmap, or memset for small tables) and
 *      published with CAS src->xnext: NULL -> dst, only while src is the
 *      map's current table.
 *   2. Buckets of src are migrated one at a time: lock the bucket, copy
 *      its entries into dst, set SM_MOVED (S4), unlock.  A moved bucket is
 *      frozen: its slots and overflow count never change again.
 *   3. When every bucket is moved, the map's current table is switched
 *      from src to dst by CAS and src is retired.
 *   Clear is a transition that copies nothing: it publishes a new empty
 *   table with an exchange and retires the old one (and whatever it was
 *   migrating into); the reclaimer walks them for hooks later.
 *
 * Who writes where (T1..T4):
 *  T1  A write on key k first "settles" (sm__settle): while its table is
 *      migrating it moves the buckets of k's probe chain (home .. first
 *      bucket with overflow 0, read after the bucket is moved, so frozen)
 *      plus SM_HELP_GROW (growing) or SM_HELP_SHRINK (shrinking) buckets
 *      that it actually moves, taken from the shared cursor, then
 *      continues in dst.  So a write does a bounded amount of migration:
 *      at most the chain length plus 8 buckets of 3 entries each; and
 *      until the cursor is exhausted every write moves at least that many
 *      unmoved buckets (buckets that others moved meanwhile are skipped,
 *      not counted).
 *  T2  Writes on k go to dst only after k's whole chain in src is moved,
 *      hence a key is never live in both tables: in src until its bucket
 *      is moved, in dst after.  A writer that holds src buckets checks
 *      SM_MOVED under each bucket lock and starts over if it is set.
 *      Room in dst: at most one insert arrives per H buckets moved
 *      (H = SM_HELP_GROW or SM_HELP_SHRINK), so at most nbuckets(src)/H
 *      inserts land in dst during the migration.  A grown dst has twice
 *      the buckets (6x nbuckets(src) slots for at most 3.25x); a shrunk
 *      dst is sized for n + nbuckets(src)/SM_HELP_SHRINK entries at a load
 *      of at most 7/10 (sm__check_resize).  So dst never fills before the
 *      migration ends; sm__table_insert_fresh relies on it.
 *  T3  A reader walks k's chain in src; if it finds k in an unmoved bucket
 *      that is the answer (S4); if it saw a moved bucket on the chain and
 *      did not find k, it looks in dst (which src->xnext names; it was
 *      published before any bucket was moved).  It never reads the slots
 *      of a moved bucket: their keys live on in dst, where they may have
 *      been deleted and (byte keys) their blobs freed before this reader
 *      pinned, while src is still reachable as the current table.
 *      Readers never wait for migration and never write.
 *  T7  A grow of a table big enough to come from mmap (SM_PREP_MIN) does
 *      not hand writers an untouched destination: every first write to one
 *      of its pages is a page fault (10-15 us each on a VM), and writers
 *      that migrate into it would take them.  The grow is prepared
 *      instead: the new table is parked in t->xprep, the background thread
 *      faults its pages in (SM_PREP_STEP bytes at a time, each step pinned
 *      so that the table stays allocated, SM_PREP_PASS per pass), then
 *      publishes it as t->xnext if t is still the current table.
 *      Meanwhile writers keep inserting into t, whose load goes on rising
 *      above the grow threshold (the overshoot is what the inserts of those
 *      few milliseconds add).  A write that cannot wait (t full, or a probe
 *      past SM_MAX_PROBE), a shrink, sm_reserve and sm_trim take the
 *      prepared table over at once (or discard it if the size differs).
 *      A prepared table that was seen by the background thread is only
 *      ever freed after a grace period (retired), never directly; one
 *      still parked when t is reclaimed is freed with t.
 *  T6  Inserts into dst before it is current draw on an insert budget set
 *      when the transition starts (3/4 of dst's slots minus src's entries,
 *      minus a margin).  When it is spent, an insert waits (yields and
 *      retries, helping the migration) until dst is current.  Without it a
 *      migrator descheduled in the middle of the last bucket lets the
 *      other writers fill dst until the copy has nowhere to go (found by
 *      tests/stress_shrink_refill: 2788 inserts landed while one bucket's
 *      migrator was off the CPU).  With it dst holds at most the copied
 *      entries plus the budget, under 3/4 of its slots.
 *  T4  A transition starts only from the map's current table, so at most
 *      one runs at a time, and dst never migrates before it is current.
 *  T5  An operation that still holds a table replaced by clear finishes on
 *      it (and its successor); it started before the clear returned, so it
 *      linearizes before the clear.  The replaced tables are reclaimed
 *      after a grace period, when no such operation remains, and only then
 *      walked for hooks, so no write to them is lost from the hooks.
 */
#include "internal.h"

#include <sched.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SM_NO_MALLOC_TRIM 1 /* clang's AddressSanitizer */
#endif
#endif

/* Tables of this size or more are populated before use (T7). */
#define SM_PREP_MIN ((size_t)2 << 20)
/* Bytes the background thread populates while pinned (a few ms), and
 * per pass (it polls again after 1 ms).  A pass holds the map registry
 * lock (sm_create/sm_destroy of any map wait for it), so it stays short. */
#define SM_PREP_STEP ((size_t)8 << 20)
#define SM_PREP_PASS ((size_t)32 << 20)

/* Migrate bucket i of src into dst.  Returns 1 if this call moved it. */
static int migrate_bucket(sm_map *m, sm__table *src, sm__table *dst, size_t i, sm__thr *thr) {
    sm__bucket *b = &src->b[i];
    if (SM_META_FLAGS(atomic_load_explicit(&b->xmeta, memory_order_acquire)) & SM_MOVED)
        return 0;
    sm__bucket_lock(b);
    uint32_t meta = atomic_load_explicit(&b->xmeta, memory_order_relaxed);
    if (SM_META_FLAGS(meta) & SM_MOVED) {
        sm__bucket_unlock(b);
        return 0;
    }
    for (int s = 0; s < SM_SLOTS; s++) {
        uint8_t tag = (uint8_t)SM_META_TAG(meta, s);
        if (!tag)
            continue;
        uint64_t key = atomic_load_explicit(&b->slot[s].xkey, memory_order_acquire);
        uint64_t val = atomic_load_explicit(&b->slot[s].xval, memory_order_relaxed);
        uint64_t h = sm__stored_hash(m, key);
        sm__table_insert_fresh(dst, h, tag, key, val);
    }
    /* S4: the copies are in dst before the flag says so. */
    sm__meta_set_flags(b, SM_MOVED, memory_order_release);
    sm__bucket_unlock(b);
    size_t moved = atomic_fetch_add_explicit(&src->xmoved, 1, memory_order_acq_rel) + 1;
    atomic_fetch_add_explicit(&m->xmigrated, 1, memory_order_relaxed);
    if (moved == src->nbuckets) {
        /* Last bucket: make dst current.  If a clear replaced src
         * meanwhile the CAS fails and the clear owns src (T5). */
        sm__table *expect = src;
        /* C2: src's counts are final (C1: every count change of src was
         * made under a bucket lock, before that bucket moved).  dst
         * inherits them before it becomes visible as the current table. */
        dst->inh_count = sm__table_count(src);
        dst->inh_bytes = sm__table_key_bytes(src);
        if (atomic_compare_exchange_strong_explicit(&m->xcur, &expect, dst,
                                                    memory_order_acq_rel,
                                                    memory_order_acquire)) {
            src->pend_charge = (int64_t)src->mem_bytes;
            sm__pending_add(m, thr->stripe, src->pend_charge, 1);
            sm__retire(thr, &src->r, sm__table_reclaim);
        }
    }
    return 1;
}

/* Move up to `budget` buckets from the shared cursor; only buckets this
 * call moved count (T1).  Returns the number of cursor positions taken. */
static size_t help_chunk(sm_map *m, sm__table *src, sm__table *dst, size_t budget, sm__thr *thr) {
    size_t moved = 0, taken = 0;
    while (moved < budget) {
        size_t i = atomic_fetch_add_explicit(&src->xcursor, 1, memory_order_relaxed);
        if (i >= src->nbuckets)
            break;
        taken++;
        moved += (size_t)migrate_bucket(m, src, dst, i, thr);
    }
    return taken;
}

sm__table *sm__settle(sm_map *m, sm__table *t, const sm__key *k, sm__thr *thr) {
    for (;;) {
        sm__table *nx = atomic_load_explicit(&t->xnext, memory_order_acquire);
        if (SM_LIKELY(nx == NULL))
            return t;
        /* T1: move k's chain; the overflow count is read after the bucket
         * is moved, when it is frozen. */
        size_t i = k->hash & t->mask;
        for (size_t d = 0; d <= t->mask; d++, i = (i + 1) & t->mask) {
            migrate_bucket(m, t, nx, i, thr);
            if (atomic_load_explicit(&t->b[i].xovf, memory_order_acquire) == 0)
                break;
        }
        help_chunk(m, t, nx, nx->nbuckets < t->nbuckets ? SM_HELP_SHRINK : SM_HELP_GROW, thr);
        t = nx;
    }
}

void sm__help_finish(sm_map *m, sm__thr *thr) {
    sm__table *t = atomic_load_explicit(&m->xcur, memory_order_acquire);
    sm__table *nx = atomic_load_explicit(&t->xnext, memory_order_acquire);
    if (nx)
        help_chunk(m, t, nx, 256, thr);
}

static void prep_step(sm_map *m, sm__table *t, sm__table *p, sm__thr *thr);

size_t sm__help_migrate(sm_map *m, size_t budget, sm__thr *thr) {
    sm__pin(thr);
    sm__table *t = atomic_load_explicit(&m->xcur, memory_order_acquire);
    sm__table *nx = atomic_load_explicit(&t->xnext, memory_order_acquire);
    size_t done = 0;
    sm__table *p;
    if (nx) {
        done = help_chunk(m, t, nx, budget, thr);
    } else if ((p = atomic_load_explicit(&t->xprep, memory_order_acquire)) != NULL) {
        /* T7: populate, a step at a time, each step pinned on a table
         * read again (the pin keeps p allocated, T7) */
        for (size_t b = 0; p && b < SM_PREP_PASS; b += SM_PREP_STEP) {
            prep_step(m, t, p, thr);
            sm__unpin(thr);
            sm__pin(thr);
            t = atomic_load_explicit(&m->xcur, memory_order_acquire);
            p = atomic_load_explicit(&t->xnext, memory_order_acquire) ? NULL
                : atomic_load_explicit(&t->xprep, memory_order_acquire);
        }
        done = 1;
    } else {
        sm__check_resize(m, t); /* a map that went idle still shrinks */
    }
    sm__unpin(thr);
    return done;
}

sm__table *sm__finish_transition(sm_map *m, sm__thr *thr) {
    for (;;) {
        sm__table *t = atomic_load_explicit(&m->xcur, memory_order_acquire);
        sm__table *nx = atomic_load_explicit(&t->xnext, memory_order_acquire);
        if (!nx)
            return t;
        for (size_t i = 0; i < t->nbuckets; i++)
            migrate_bucket(m, t, nx, i, thr);
        /* Every bucket is moved; the thread that moved the last one
         * switches the map over in a moment. */
        while (atomic_load_explicit(&m->xcur, memory_order_acquire) == t)
            sched_yield();
    }
}


static void prep_reclaim(sm__retired *node) {
    sm__table *p = (sm__table *)node;
    sm__thr *thr = sm__thr_get();
    if (thr)
        sm__pending_add(p->map, thr->stripe, -p->pend_charge, -1);
    sm__table_free(p);
}

/* A table that never became a destination.  `seen`: other threads may
 * have loaded it (a prepared table, T7), so it waits for a grace period. */
static void discard(sm_map *m, sm__table *nx, int seen, sm__thr *thr) {
    if (!seen || !thr) {
        sm__table_free(nx);
        return;
    }
    nx->pend_charge = (int64_t)nx->mem_bytes;
    sm__pending_add(m, thr->stripe, nx->pend_charge, 1);
    sm__retire(thr, &nx->r, prep_reclaim);
}

/* Make nx the destination of t's transition. */
static int publish(sm_map *m, sm__table *t, sm__table *nx, int seen, sm__thr *thr) {
    size_t nbuckets = nx->nbuckets;
    /* T6: room left for inserts while migrating, keeping a quarter of the
     * slots free for the entries still to be copied (and for the few
     * writes that race with the start and still land in t).  The count is
     * read again here, after the allocation: a shrink decided on an older
     * count is dropped if t has filled up meanwhile. */
    int64_t room = (int64_t)(nbuckets * SM_SLOTS * 3 / 4) - sm__table_count(t) - SM_SLACK;
    if (room < 0 && nbuckets < t->nbuckets) {
        discard(m, nx, seen, thr);
        return 0;
    }
    atomic_store_explicit(&nx->xins_budget, room > 0 ? room : 0, memory_order_relaxed);
    sm__table *expect = NULL;
    /* release: the budget and the table's header before the pointer */
    if (!atomic_compare_exchange_strong_explicit(&t->xnext, &expect, nx,
                                                 memory_order_acq_rel,
                                                 memory_order_acquire)) {
        discard(m, nx, seen, thr);
        return 0;
    }
    if (nbuckets > t->nbuckets)
        atomic_fetch_add_explicit(&m->xgrows, 1, memory_order_relaxed);
    else
        atomic_fetch_add_explicit(&m->xshrinks, 1, memory_order_relaxed);
    /* No wake-up of the background helper here: a futex wake costs the
     * writer 10-20 us on a VM; the helper polls (1 ms while work is
     * pending, 20 ms when idle) and the writers migrate meanwhile. */
    return 0;
}

int sm__start_transition(sm_map *m, sm__table *t, size_t nbuckets, int defer) {
    /* T4 */
    if (atomic_load_explicit(&m->xcur, memory_order_acquire) != t ||
        atomic_load_explicit(&t->xnext, memory_order_acquire) != NULL)
        return 0;
    sm__thr *thr = sm__thr_get();
    if (atomic_load_explicit(&t->xprep, memory_order_acquire) != NULL) {
        if (defer)
            return 0; /* T7: the background thread publishes it */
        sm__table *p = atomic_exchange_explicit(&t->xprep, NULL, memory_order_acq_rel);
        if (p) {
            if (p->nbuckets == nbuckets)
                return publish(m, t, p, 1, thr);
            discard(m, p, 1, thr);
        }
    }
    sm__table *nx = sm__table_new(m, nbuckets);
    if (!nx)
        return SM_ENOMEM;
    if (defer && nx->mapped && nx->mem_bytes >= SM_PREP_MIN && nbuckets > t->nbuckets) {
        sm__table *expect = NULL;
        if (!atomic_compare_exchange_strong_explicit(&t->xprep, &expect, nx,
                                                     memory_order_acq_rel,
                                                     memory_order_relaxed)) {
            sm__table_free(nx); /* never seen by anyone */
            return 0;
        }
        /* Another transition may have started (or a clear replaced t)
         * since the check above: then take the parked table back, or it
         * would sit unused until t is freed.  The background thread may
         * have seen it already, so it goes through a grace period. */
        if (atomic_load_explicit(&t->xnext, memory_order_acquire) != NULL ||
            atomic_load_explicit(&m->xcur, memory_order_acquire) != t) {
            sm__table *p = atomic_exchange_explicit(&t->xprep, NULL, memory_order_acq_rel);
            if (p)
                discard(m, p, 1, thr);
            return 0;
        }
        sm__ebr_kick(); /* once per grow: the table is needed soon */
        return 0;
    }
    return publish(m, t, nx, 0, thr);
}

/* T7, on the background thread (pinned): populate the next step of t's
 * prepared table p; publish it when it is all in. */
static void prep_step(sm_map *m, sm__table *t, sm__table *p, sm__thr *thr) {
    size_t off = atomic_load_explicit(&p->xpopulated, memory_order_relaxed);
    size_t len = p->mem_bytes - off < SM_PREP_STEP ? p->mem_bytes - off : SM_PREP_STEP;
    if (len)
        sm__table_mem_populate(p->raw, off, len);
    atomic_store_explicit(&p->xpopulated, off + len, memory_order_relaxed);
    /* A table cleared away keeps p parked; p is freed with it.  (A clear
     * that lands between this check and the publication makes p t's
     * successor instead, which the cleared chain frees as well: the race
     * every transition start has with clear, T5.) */
    if (off + len < p->mem_bytes || atomic_load_explicit(&m->xcur, memory_order_acquire) != t)
        return;
    sm__table *expect = p;
    if (atomic_compare_exchange_strong_explicit(&t->xprep, &expect, NULL,
                                                memory_order_acq_rel,
                                                memory_order_relaxed))
        publish(m, t, p, 1, thr);
}

static size_t floor_buckets(sm_map *m) {
    size_t r = atomic_load_explicit(&m->xreserve_buckets, memory_order_relaxed);
    return r > m->min_buckets ? r : m->min_buckets;
}

/* Size of a shrunk table for n entries: room for n plus the inserts that
 * can arrive during the migration (T2) at a load of at most 7/10.  With
 * the shrink threshold at a load of 3/10 this at least halves the table,
 * and a map that lost 90% of its entries ends at the size a fresh map of
 * the survivors grows to.  Never below the reserve floor. */
static size_t shrink_target(sm_map *m, sm__table *t, size_t n, int sync) {
    /* sync: the caller migrates the whole table itself (sm_trim), and
     * inserts meanwhile wait once the budget is spent (T6), so no room is
     * needed for them beyond the slack. */
    size_t during = sync ? 0 : t->nbuckets / SM_HELP_SHRINK;
    size_t nb = sm__buckets_for(n + during + (size_t)SM_SLACK);
    size_t fl = floor_buckets(m);
    return nb < fl ? fl : nb;
}

void sm__check_resize(sm_map *m, sm__table *t) {
    if (atomic_load_explicit(&t->xnext, memory_order_relaxed) != NULL ||
        atomic_load_explicit(&t->xprep, memory_order_relaxed) != NULL)
        return;
    int64_t n = sm__table_count(t);
    if (n < 0)
        n = 0;
    size_t slots = t->nbuckets * SM_SLOTS;
    /* T7: a grow whose table is prepared first starts at 7/10, so that the
     * table is ready before the load reaches 4/5 (and before long probes
     * force a grow).  Not earlier: sm__buckets_for sizes shrunk and
     * reserved tables below 7/10. */
    int prepared = m->default_alloc && t->nbuckets * 2 * sizeof(sm__bucket) >= SM_PREP_MIN;
    if ((size_t)n * 5 > slots * 4 || (prepared && (size_t)n * 10 > slots * 7)) {
        sm__start_transition(m, t, t->nbuckets * 2, 1);
    } else if ((size_t)n * 10 < slots * 3 && t->nbuckets > floor_buckets(m)) {
        size_t nb = shrink_target(m, t, (size_t)n, 0);
        if (nb < t->nbuckets)
            sm__start_transition(m, t, nb, 0);
    }
}

/* ---- reclaiming tables ------------------------------------------------ */

/* A prepared table still parked on t when t is freed (T7): after t's
 * grace period nobody can reach it. */
static void free_parked(sm__table *t) {
    sm__table *p = atomic_exchange_explicit(&t->xprep, NULL, memory_order_acquire);
    if (p)
        sm__table_free(p);
}

/* Give every entry of the table chain starting at t (unmoved buckets only:
 * a moved bucket's entries live on in the next table) its removal hook and
 * free its copied key; then free the tables. */
static void walk_chain_and_free(sm_map *m, sm__table *t, sm_reason why) {
    while (t) {
        sm__table *nx = atomic_load_explicit(&t->xnext, memory_order_acquire);
        free_parked(t);
        if (m->kind == SM_KEY_BYTES || m->on_remove) {
            for (size_t i = 0; i < t->nbuckets; i++) {
                sm__bucket *b = &t->b[i];
                uint32_t meta = atomic_load_explicit(&b->xmeta, memory_order_relaxed);
                if (SM_META_FLAGS(meta) & SM_MOVED)
                    continue;
                for (int s = 0; s < SM_SLOTS; s++) {
                    if (!SM_META_TAG(meta, s))
                        continue;
                    uint64_t v = atomic_load_explicit(&b->slot[s].xval, memory_order_relaxed);
                    if (m->on_remove)
                        sm__call_hook(m, v, why);
                    if (m->kind == SM_KEY_BYTES) {
                        sm__blob *bl = sm__blob_of(atomic_load_explicit(&b->slot[s].xkey,
                                                                        memory_order_relaxed));
                        sm__free(m, bl, sm__blob_size(bl->len));
                    }
                }
            }
        }
        sm__table_free(t);
        t = nx;
    }
}

void sm__table_reclaim(sm__retired *node) {
    sm__table *t = (sm__table *)node;
    sm_map *m = t->map;
    int64_t charge = t->pend_charge;
    if (t->cleared) {
        walk_chain_and_free(m, t, SM_REMOVED_CLEAR);
    } else {
        /* Promoted away: every bucket moved, nothing to walk.  The charge
         * goes before the memory, so the stat never counts freed bytes. */
        sm__thr *thr = sm__thr_get();
        if (thr)
            sm__pending_add(m, thr->stripe, -charge, -1);
        free_parked(t);
        sm__table_free(t);
        return;
    }
    sm__thr *thr = sm__thr_get();
    if (thr)
        sm__pending_add(m, thr->stripe, -charge, -1);
}

void sm__destroy_tables(sm_map *m) {
    sm__table *t = atomic_load_explicit(&m->xcur, memory_order_acquire);
    walk_chain_and_free(m, t, SM_REMOVED_DESTROY);
    atomic_store_explicit(&m->xcur, NULL, memory_order_relaxed);
}

/* ---- clear and reserve ---------------------------------------------- */

int sm_clear(sm_map *m) {
    SM_ENTER(m, thr);
    sm__table *nt = sm__table_new(m, floor_buckets(m));
    if (!nt)
        return SM_ENOMEM;
    sm__pin(thr);
    /* The linearization point: every operation that loads xcur after this
     * sees the empty table (T5 for those that loaded it before). */
    sm__table *old = atomic_exchange_explicit(&m->xcur, nt, memory_order_acq_rel);
    old->cleared = 1;
    int64_t pend = (int64_t)old->mem_bytes + sm__table_key_bytes(old);
    /* Its successor, if it was migrating, goes with it (an estimate: a
     * stale writer may still change it; the same charge is taken back
     * when the chain is freed). */
    sm__table *nx = atomic_load_explicit(&old->xnext, memory_order_acquire);
    if (nx)
        pend += (int64_t)nx->mem_bytes + sm__table_key_bytes_raw(nx);
    old->pend_charge = pend;
    sm__pending_add(m, thr->stripe, pend, 1);
    sm__retire(thr, &old->r, sm__table_reclaim);
    sm__unpin(thr);
    atomic_fetch_add_explicit(&m->xclears, 1, memory_order_relaxed);
    /* The reclaimer finds the old table on its next poll (<= 20 ms); it is
     * not woken here, which would cost this call a futex wake. */
    return SM_OK;
}

/* Bytes the map holds: pending reclamation first, then the live tables, so
 * that a table promoted away in between is missed rather than counted
 * twice (sm_trim then under-reports, never over-reports). */
static int64_t held_bytes(sm_map *m, sm__thr *thr) {
    int64_t b = 0;
    for (int i = 0; i < SM_STRIPES; i++)
        b += atomic_load_explicit(&m->mstripe[i].xpend_bytes, memory_order_relaxed);
    sm__pin(thr);
    sm__table *t = atomic_load_explicit(&m->xcur, memory_order_acquire);
    sm__table *nx = atomic_load_explicit(&t->xnext, memory_order_acquire);
    sm__table *p = atomic_load_explicit(&t->xprep, memory_order_acquire);
    b += (int64_t)t->mem_bytes + sm__table_key_bytes(t);
    if (nx)
        b += (int64_t)nx->mem_bytes + sm__table_key_bytes_raw(nx);
    if (p)
        b += (int64_t)p->mem_bytes;
    sm__unpin(thr);
    return b;
}

int sm_trim(sm_map *m, size_t *released) {
    if (released)
        *released = 0;
    SM_ENTER(m, thr);
    if (thr->nest > 0)
        return SM_MISUSE("sm_trim", "called while the thread holds a pin");
    if (sm__on_reclaimer())
        return SM_MISUSE("sm_trim", "called from a removal hook (it would wait for itself)");
    int64_t before = held_bytes(m, thr);
    int rc = SM_OK;
    sm__pin(thr);
    /* Shrink step by step (each step keeps room for concurrent inserts,
     * T2) until the table is the size a fresh map would have. */
    for (int step = 0; step < 64 && rc == SM_OK; step++) {
        sm__table *t = sm__finish_transition(m, thr);
        int64_t n = sm__table_count(t);
        size_t nb = shrink_target(m, t, n > 0 ? (size_t)n : 0, 1);
        if (nb >= t->nbuckets)
            break;
        rc = sm__start_transition(m, t, nb, 0);
    }
    sm__finish_transition(m, thr);
    sm__unpin(thr);
    sm__ebr_barrier(); /* everything retired so far is freed */
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__) && \
    !defined(SM_TSAN) && !defined(SM_NO_MALLOC_TRIM)
    /* Only for the C library's allocator (a user allocator has its own
     * policy).  Not in AddressSanitizer or ThreadSanitizer builds, whose
     * malloc is not glibc's (glibc's malloc_trim then works on arenas that
     * were never set up, and crashes when two threads call it at once:
     * seen under TSan in stress_ranges, as under ASan before). */
    if (m->default_alloc)
        malloc_trim(0);
#endif
    int64_t after = held_bytes(m, thr);
    if (released && before > after)
        *released = (size_t)(before - after);
    return rc;
}

int sm_reserve(sm_map *m, size_t n) {
    SM_ENTER(m, thr);
    if (n > ((size_t)1 << 40))
        return SM_EINVAL;
    /* Room for n at a load factor below the growth threshold (4/5). */
    size_t need = sm__buckets_for(n);
    size_t cur = atomic_load_explicit(&m->xreserve_buckets, memory_order_relaxed);
    while (cur < need &&
           !atomic_compare_exchange_weak(&m->xreserve_buckets, &cur, need))
        ;
    int rc = SM_OK;
    sm__pin(thr);
    for (;;) {
        sm__table *t = atomic_load_explicit(&m->xcur, memory_order_acquire);
        sm__table *nx = atomic_load_explicit(&t->xnext, memory_order_acquire);
        if (nx) {
            /* Finish the running transition first: it may be a shrink
             * decided before the floor was raised, whose target is below
             * it (work bounded by that transition's table). */
            sm__finish_transition(m, thr);
            continue;
        }
        if (t->nbuckets >= need)
            break;
        rc = sm__start_transition(m, t, need, 0);
        if (rc != SM_OK)
            break;
        /* Another transition may have won the start (a grow published by
         * the background thread, T7): then finish that one and go on. */
        nx = atomic_load_explicit(&t->xnext, memory_order_acquire);
        if (nx && nx->nbuckets >= need)
            break;
    }
    sm__unpin(thr);
    if (rc != SM_OK) {
        /* Leave the floor as it was: the map is unchanged. */
        atomic_store_explicit(&m->xreserve_buckets, cur, memory_order_relaxed);
    }
    return rc;
}
