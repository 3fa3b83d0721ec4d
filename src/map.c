/*
 * map.c — the public operations.
 *
 * Every operation pins the calling thread (ebr.c, E1/E2), loads the
 * current table (acquire) and works in it:
 *
 *  - reads (get) are lock-free: sm__table_lookup in the current table and,
 *    when a transition has moved part of the key's chain, in the next one
 *    (transition.c, T3);
 *  - writes first settle (T1), then lock the key's home bucket, which
 *    serialises every writer of that key in that table, find the key on
 *    its chain, lock the bucket holding it (or the bucket receiving it)
 *    and change it under the protocol of table.c (S1-S3, O1, L1).
 *
 * A write that needs memory (a copied key for an insert into a byte map,
 * a hook record when a value leaves a map that has a removal hook)
 * allocates it before changing anything, with no lock held, and starts
 * over; so an allocation failure returns SM_ENOMEM with the map unchanged.
 */
#include "internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__) || defined(__APPLE__) || defined(__FreeBSD__) || defined(__OpenBSD__)
#include <unistd.h>
#endif
#include <time.h>

enum { OP_PUT, OP_LOS, OP_SWAP, OP_CAS, OP_DEL, OP_LAD, OP_CAD };

/* Internal outcomes of one attempt in one table. */
enum { W_RETRY = 100, W_NEED_BLOB, W_NEED_HOOK, W_NEED_GROW, W_WAIT };

typedef struct wctx {
    int op;
    uint64_t val;       /* value to store (put/los/swap) or desired (cas) */
    uint64_t expected;  /* cas, cad */
    uint64_t out;       /* previous / actual value */
    int have_out;
    sm__blob *blob;     /* pre-allocated copy of the key, byte maps */
    sm__hookrec *hr;    /* pre-allocated hook record */
} wctx;

static inline int op_inserts(int op) { return op == OP_PUT || op == OP_LOS || op == OP_SWAP; }

/* ---- small helpers ---------------------------------------------------- */

void sm__call_hook(sm_map *m, uint64_t value, sm_reason why) {
    m->on_remove(m->on_remove_ctx, value, why);
    atomic_fetch_add_explicit(&m->xhooks, 1, memory_order_relaxed);
}

static void pending_done(sm_map *m, int64_t bytes) {
    sm__thr *thr = sm__thr_get();
    if (thr)
        sm__pending_add(m, thr->stripe, -bytes, -1);
}

void sm__hookrec_reclaim(sm__retired *node) {
    sm__hookrec *hr = (sm__hookrec *)node;
    sm_map *m = hr->map;
    sm__call_hook(m, hr->value, hr->reason);
    pending_done(m, (int64_t)sizeof *hr); /* before the free: the stat never
                                             counts freed memory */
    sm__free(m, hr, sizeof *hr);
}

void sm__blob_reclaim(sm__retired *node) {
    sm__blob *bl = (sm__blob *)node;
    sm_map *m = bl->map;
    size_t sz = sm__blob_size(bl->len);
    pending_done(m, (int64_t)sz);
    sm__free(m, bl, sz);
}

static inline uint8_t bucket_flags(sm__bucket *b) {
    return (uint8_t)SM_META_FLAGS(atomic_load_explicit(&b->xmeta, memory_order_acquire));
}

/* Try a bucket lock a few times, never waiting (L1's try-only locks). */
static int trylock_few(sm__bucket *b) {
    for (int i = 0; i < 64; i++)
        if (sm__bucket_trylock(b))
            return 1;
    return 0;
}

/* Lock a bucket after the home bucket (L1): blocking when it lies after
 * the home in index order, try-only when the probe wrapped. */
static int lock_second(sm__bucket *b, int wrapped) {
    if (!wrapped) {
        sm__bucket_lock(b);
        return 1;
    }
    return trylock_few(b);
}

static int first_free(sm__bucket *b) {
    uint32_t e = sm__meta_empty(atomic_load_explicit(&b->xmeta, memory_order_relaxed));
    return e ? sm__first_slot(e) : -1;
}

static void ovf_add(sm__table *t, size_t from, size_t to, int delta) {
    for (size_t x = from; x != to; x = (x + 1) & t->mask)
        atomic_fetch_add_explicit(&t->b[x].xovf, (uint32_t)delta, memory_order_relaxed);
}

/* ---- back-filling the slot a delete freed (B1-B3) ------------------------
 *
 * A delete leaves a free slot in bucket J.  If keys stored further on
 * passed J on their chains (xovf(J) > 0), one of them moves back into the
 * free slot, then one into the slot it left, and so on until a bucket
 * that no key passes (at most SM_BACKFILL_STEPS moves).  Hence no bucket
 * with a free slot is passed by a key, which is the state a fresh build
 * of the same keys is in (with buckets probed linearly, the set of
 * occupied slots and every overflow count depend only on the set of
 * keys): a table probes like a fresh one after any number of insert and
 * delete cycles.  A move skipped (busy lock, walk in progress, step
 * limit) leaves a hole that the next insert passing it fills.
 *
 *  B1  A move of key x from bucket I back to bucket J (J on x's chain
 *      before I) holds the locks of home(x), J and I, all three unmoved
 *      (T2).  Every writer of x holds home(x), so x is not written
 *      meanwhile, and neither J nor I can be migrated.  The caller holds
 *      the deleted key's home and J; the other locks are only try-locked
 *      (L1 stays acyclic) and the move is given up when one is busy.
 *  B2  The move brackets its changes with home(x)'s sequence count: odd,
 *      copy x into J (S2: key, value, tag last), remove x from I (S1 on
 *      I), even; then the overflow counts of J..I-1 drop by one (O1: after
 *      the removal).  A reader of x starts at home(x) and sees x at J or at
 *      I, unless it read J before the copy and I (or a lowered overflow
 *      count) after the removal; then, by the fences of S1, its later load
 *      of home(x)'s count returns a newer value.  So every lookup that
 *      misses past its home bucket re-reads that count (after its acquire
 *      fence) and starts over if it changed.
 *  B3  sm_for_each reads buckets in index order, so a key moving back past
 *      its cursor would be missed (or, across the wrap, seen twice).  No
 *      key moves in a table being walked: a mover sets its record's
 *      xmoving, fences (light), then reads t->xwalkers and gives up if it
 *      is not 0; a walker increments xwalkers, fences (heavy), then waits
 *      until no record has xmoving set.  The fence pair acts as a seq_cst
 *      fence on both sides, so at least one of the two sees the other's
 *      store.
 */
#define SM_BACKFILL_STEPS 16  /* moves per delete, at most */
#define SM_BACKFILL_SCAN 16   /* buckets searched past a hole */

static inline size_t home_of(sm_map *m, const sm__table *t, uint64_t keyword) {
    return sm__stored_hash(m, keyword) & t->mask;
}

/* Does the chain of a key with home `home`, stored at bucket `at`, pass b? */
static inline int chain_passes(const sm__table *t, size_t home, size_t b, size_t at) {
    return ((b - home) & t->mask) < ((at - home) & t->mask);
}

typedef struct mover {
    size_t at;      /* bucket holding it */
    int slot;
    size_t home;
    uint64_t key;   /* key word */
} mover;

/* Find, without locks, a key stored after `hole` whose chain passes it.
 * The tag is loaded with acquire before the key (S2); for byte maps the
 * blob stays allocated while the caller is pinned (E3).  The caller
 * checks the find again under the locks. */
static int find_mover(sm_map *m, sm__table *t, size_t hole, mover *out) {
    size_t i = hole, lim = t->mask < SM_BACKFILL_SCAN ? t->mask : SM_BACKFILL_SCAN;
    for (size_t d = 1; d <= lim; d++) {
        i = (i + 1) & t->mask;
        sm__bucket *b = &t->b[i];
        uint32_t meta = atomic_load_explicit(&b->xmeta, memory_order_acquire);
        if (SM_META_FLAGS(meta) & SM_MOVED)
            return 0;
        for (int s = 0; s < SM_SLOTS; s++) {
            if (!SM_META_TAG(meta, s))
                continue;
            uint64_t key = atomic_load_explicit(&b->slot[s].xkey, memory_order_acquire);
            size_t hx = home_of(m, t, key);
            if (chain_passes(t, hx, hole, i)) {
                *out = (mover){i, s, hx, key};
                return 1;
            }
        }
        /* O1: a key passing the hole would pass i too */
        if (atomic_load_explicit(&b->xovf, memory_order_relaxed) == 0)
            return 0;
    }
    return 0;
}

/* Bucket j just lost a key; the caller holds h (that key's home) and j,
 * both unmoved, and still holds them on return. */
static void backfill(sm_map *m, sm__table *t, sm__thr *thr, size_t h, size_t j) {
    if (atomic_load_explicit(&t->b[j].xovf, memory_order_relaxed) == 0)
        return; /* nothing passes j: the usual case */
    atomic_store_explicit(&thr->xmoving, 1, memory_order_relaxed);
    sm__light_fence(); /* B3, paired with the walker's sm__heavy_fence */
    size_t hole = j;
    if (atomic_load_explicit(&t->xwalkers, memory_order_relaxed) == 0) {
        for (int step = 0; step < SM_BACKFILL_STEPS; step++) {
            mover x;
            if (atomic_load_explicit(&t->b[hole].xovf, memory_order_relaxed) == 0 ||
                !find_mover(m, t, hole, &x) || x.at == h || x.at == j)
                break;
            sm__bucket *bj = &t->b[hole], *bi = &t->b[x.at], *bx = &t->b[x.home];
            int held = x.home == h || x.home == j || x.home == hole;
            if (!trylock_few(bi))
                break;
            if (!held && !trylock_few(bx)) {
                sm__bucket_unlock(bi);
                break;
            }
            /* B1: checked again under the locks */
            uint32_t mi = atomic_load_explicit(&bi->xmeta, memory_order_relaxed);
            uint8_t tag = (uint8_t)SM_META_TAG(mi, x.slot);
            int fs = first_free(bj);
            int ok = fs >= 0 && tag && !(SM_META_FLAGS(mi) & SM_MOVED) &&
                     !(bucket_flags(bx) & SM_MOVED) &&
                     atomic_load_explicit(&bi->slot[x.slot].xkey, memory_order_relaxed) == x.key;
            if (ok) {
                uint64_t val = atomic_load_explicit(&bi->slot[x.slot].xval, memory_order_relaxed);
                sm__seq_begin(bx); /* B2 */
                atomic_store_explicit(&bj->slot[fs].xkey, x.key, memory_order_release);
                atomic_store_explicit(&bj->slot[fs].xval, val, memory_order_relaxed);
                sm__meta_set_tag(bj, fs, tag, memory_order_release); /* S2 */
                sm__seq_begin(bi); /* S1 */
                sm__meta_set_tag(bi, x.slot, 0, memory_order_relaxed);
                sm__seq_end(bi);
                sm__seq_end(bx);
                ovf_add(t, hole, x.at, -1); /* O1 */
            }
            if (!held)
                sm__bucket_unlock(bx);
            if (!ok) {
                sm__bucket_unlock(bi);
                break;
            }
            if (hole != j)
                sm__bucket_unlock(bj);
            hole = x.at; /* locked: the next hole */
        }
    }
    if (hole != j)
        sm__bucket_unlock(&t->b[hole]);
    atomic_store_explicit(&thr->xmoving, 0, memory_order_release);
}

/* ---- the key is present at bucket j, slot s --------------------------- */

SM_INLINE int write_found(sm_map *m, sm__table *t, size_t h, size_t j, int s,
                       wctx *w, sm__thr *thr) {
    sm__bucket *bh = &t->b[h], *b = &t->b[j];
    if (j != h) {
        if (!lock_second(b, j < h)) {
            sm__bucket_unlock(bh);
            return W_RETRY;
        }
        if (bucket_flags(b) & SM_MOVED) { /* T2: moved under us */
            sm__bucket_unlock(b);
            sm__bucket_unlock(bh);
            return W_RETRY;
        }
    }
    uint64_t cur = atomic_load_explicit(&b->slot[s].xval, memory_order_relaxed);
    int rc = SM_OK, store = 0, remove = 0;
    switch (w->op) {
    case OP_PUT: store = 1; break;
    case OP_LOS: rc = SM_EXISTS; break;
    case OP_SWAP: store = 1; break;
    case OP_CAS:
        if (cur != w->expected) rc = SM_MISMATCH;
        else store = 1;
        break;
    case OP_DEL: case OP_LAD: remove = 1; break;
    case OP_CAD:
        if (cur != w->expected) rc = SM_MISMATCH;
        else remove = 1;
        break;
    }
    w->out = cur;
    w->have_out = 1;
    int leaves = remove || (store && w->val != cur);
    if (leaves && m->on_remove && !w->hr) {
        if (j != h)
            sm__bucket_unlock(b);
        sm__bucket_unlock(bh);
        return W_NEED_HOOK;
    }
    uint64_t keyword = 0;
    if (store && w->val != cur) {
        atomic_store_explicit(&b->slot[s].xval, w->val, memory_order_release); /* S3 */
    } else if (remove) {
        keyword = atomic_load_explicit(&b->slot[s].xkey, memory_order_relaxed);
        sm__seq_begin(b); /* S1 */
        sm__meta_set_tag(b, s, 0, memory_order_relaxed);
        sm__seq_end(b);
        /* C1: counted while the bucket is locked, so before any migration
         * of it (and so before the table can be promoted). */
        int64_t kb = m->kind == SM_KEY_BYTES ? (int64_t)sm__blob_size(sm__blob_of(keyword)->len) : 0;
        sm__count_add(t, thr->stripe, -1, -kb);
        backfill(m, t, thr, h, j);
    }
    if (j != h)
        sm__bucket_unlock(b);
    if (remove) {
        ovf_add(t, h, j, -1); /* O1: after the slot is cleared */
        if (m->kind == SM_KEY_BYTES) {
            sm__blob *bl = sm__blob_of(keyword);
            sm__pending_add(m, thr->stripe, (int64_t)sm__blob_size(bl->len), 1);
            sm__retire(thr, &bl->r, sm__blob_reclaim);
        }
    }
    sm__bucket_unlock(bh);
    if (leaves && m->on_remove) {
        sm__hookrec *hr = w->hr;
        w->hr = NULL;
        hr->map = m;
        hr->value = cur;
        hr->reason = remove ? SM_REMOVED_DELETE : SM_REMOVED_REPLACE;
        sm__pending_add(m, thr->stripe, (int64_t)sizeof *hr, 1);
        sm__retire(thr, &hr->r, sm__hookrec_reclaim);
    }
    return rc;
}

/* ---- the key is absent: insert it (or report) --------------------------- */

static int write_absent(sm_map *m, sm__table *t, size_t h, const sm__key *k,
                        wctx *w, sm__thr *thr) {
    sm__bucket *bh = &t->b[h];
    if (!op_inserts(w->op)) {
        sm__bucket_unlock(bh);
        return SM_NOTFOUND;
    }
    if (m->kind == SM_KEY_BYTES && !w->blob) {
        sm__bucket_unlock(bh);
        return W_NEED_BLOB;
    }
    if (SM_UNLIKELY(atomic_load_explicit(&m->xcur, memory_order_relaxed) != t) &&
        atomic_fetch_sub_explicit(&t->xins_budget, 1, memory_order_relaxed) <= 0) {
        /* T6: t is a migration's destination and its insert budget is
         * spent: wait for the migration to finish. */
        sm__bucket_unlock(bh);
        return W_WAIT;
    }
    size_t i = h;
    for (size_t dist = 0;; dist++) {
        sm__bucket *b = &t->b[i];
        int s = first_free(b); /* under the lock for the home bucket */
        if (s >= 0 && i != h) {
            /* peeked free: lock it and look again */
            if (!lock_second(b, i < h)) {
                ovf_add(t, h, i, -1);
                sm__bucket_unlock(bh);
                return W_RETRY;
            }
            if (bucket_flags(b) & SM_MOVED) { /* T2 */
                sm__bucket_unlock(b);
                ovf_add(t, h, i, -1);
                sm__bucket_unlock(bh);
                return W_RETRY;
            }
            s = first_free(b);
            if (s < 0)
                sm__bucket_unlock(b);
        }
        if (s >= 0) {
            uint64_t keyword = k->u64;
            int64_t kb = 0;
            if (m->kind == SM_KEY_BYTES) {
                keyword = (uint64_t)(uintptr_t)w->blob;
                kb = (int64_t)sm__blob_size(w->blob->len);
                w->blob = NULL; /* now owned by the table */
            }
            /* S2: key and value first, the tag last */
            atomic_store_explicit(&b->slot[s].xkey, keyword, memory_order_release);
            atomic_store_explicit(&b->slot[s].xval, w->val, memory_order_relaxed);
            sm__meta_set_tag(b, s, k->tag, memory_order_release);
            sm__count_add(t, thr->stripe, 1, kb); /* C1 */
            if (i != h)
                sm__bucket_unlock(b);
            sm__bucket_unlock(bh);
            return w->op == OP_SWAP ? SM_NOTFOUND : SM_OK;
        }
        /* Past SM_MAX_PROBE the table asks to grow; while its next table
         * is being prepared (T7) the insert probes further first, rather
         * than taking that table before its pages are in. */
        if (dist >= t->mask ||
            (dist >= SM_MAX_PROBE &&
             atomic_load_explicit(&m->xcur, memory_order_relaxed) == t &&
             (dist >= 4 * SM_MAX_PROBE ||
              atomic_load_explicit(&t->xprep, memory_order_relaxed) == NULL))) {
            /* Table full, or the probe got long: ask for a bigger table. */
            ovf_add(t, h, i, -1);
            sm__bucket_unlock(bh);
            return W_NEED_GROW;
        }
        /* O1: raise the count before going past the bucket. */
        atomic_fetch_add_explicit(&b->xovf, 1, memory_order_relaxed);
        i = (i + 1) & t->mask;
    }
}

/* One attempt of a write in table t. */
SM_INLINE int write_in(sm_key_kind kind, sm_map *m, sm__table *t, const sm__key *k, wctx *w,
                       sm__thr *thr) {
    size_t h = k->hash & t->mask;
    sm__bucket *bh = &t->b[h];
    sm__bucket_lock(bh);
    if (bucket_flags(bh) & SM_MOVED) { /* a transition began: settle again */
        sm__bucket_unlock(bh);
        return W_RETRY;
    }
    size_t i = h;
    for (size_t dist = 0; dist <= t->mask; dist++, i = (i + 1) & t->mask) {
        /* The key's home lock is held, so k itself cannot appear or vanish
         * on the chain meanwhile; other slots may change under us, which
         * the key comparison tolerates (S2). */
        sm__bucket *b = &t->b[i];
        int s = sm__bucket_find(kind, b, atomic_load_explicit(&b->xmeta, memory_order_acquire), k);
        if (s >= 0)
            return write_found(m, t, h, i, s, w, thr);
        if (atomic_load_explicit(&b->xovf, memory_order_acquire) == 0)
            break;
    }
    return write_absent(m, t, h, k, w, thr);
}

static void periodic(sm_map *m, sm__thr *thr) {
    if ((++thr->ops & 63) != 0)
        return;
    sm__pin(thr);
    sm__check_resize(m, atomic_load_explicit(&m->xcur, memory_order_acquire));
    sm__unpin(thr);
}

SM_INLINE int do_write(sm_key_kind kind, sm_map *m, const sm__key *k, wctx *w) {
    sm__thr *thr = sm__thr_get();
    if (SM_UNLIKELY(!thr))
        return SM_ENOMEM;
    int rc;
    unsigned spins = 0;
    for (;;) {
        sm__pin(thr);
        sm__table *t = atomic_load_explicit(&m->xcur, memory_order_acquire);
        if (SM_UNLIKELY(atomic_load_explicit(&t->xnext, memory_order_acquire) != NULL))
            t = sm__settle(m, t, k, thr); /* T1 */
        rc = write_in(kind, m, t, k, w, thr);
        if (rc == W_NEED_GROW) {
            /* The table needs to grow; if the bigger table cannot be
             * had, report it (nothing was changed). */
            if (atomic_load_explicit(&m->xcur, memory_order_acquire) == t) {
                int g = sm__start_transition(m, t, t->nbuckets * 2, 0);
                if (g != SM_OK)
                    rc = g;
            } else {
                /* t is the destination of a running migration and filled
                 * up (T2 makes this rare): finish the migration faster. */
                sm__help_finish(m, thr);
            }
        }
        sm__unpin(thr);
        if (rc < W_RETRY)
            break;
        if (rc == W_NEED_BLOB) {
            size_t sz = sm__blob_size(k->len);
            sm__blob *bl = sm__alloc(m, sz);
            if (!bl) {
                rc = SM_ENOMEM;
                break;
            }
            bl->map = m;
            bl->hash = k->hash;
            bl->len = (uint32_t)k->len;
            if (k->len)
                memcpy(bl->bytes, k->p, k->len);
            w->blob = bl;
        } else if (rc == W_NEED_HOOK) {
            w->hr = sm__alloc(m, sizeof(sm__hookrec));
            if (!w->hr) {
                rc = SM_ENOMEM;
                break;
            }
        } else if (rc == W_WAIT || (rc == W_RETRY && ++spins > 8)) {
            sched_yield();
        }
    }
    if (w->blob)
        sm__free(m, w->blob, sm__blob_size(w->blob->len));
    if (w->hr)
        sm__free(m, w->hr, sizeof(sm__hookrec));
    if (rc >= 0)
        periodic(m, thr);
    return rc;
}

SM_INLINE int do_read(sm_key_kind kind, sm_map *m, const sm__key *k, uint64_t *val) {
    sm__thr *thr = sm__thr_get();
    if (SM_UNLIKELY(!thr))
        return SM_ENOMEM;
    sm__pin(thr);
    sm__table *t = atomic_load_explicit(&m->xcur, memory_order_acquire);
    int rc;
    for (;;) {
        sm__found f;
        sm__table_lookup(kind, t, k, &f);
        if (SM_LIKELY(f.found)) {
            if (val)
                *val = f.val;
            rc = SM_OK;
            break;
        }
        if (!f.moved) {
            rc = SM_NOTFOUND;
            break;
        }
        /* T3: part of the chain was moved; the next table has the rest. */
        t = atomic_load_explicit(&t->xnext, memory_order_acquire);
    }
    sm__unpin(thr);
    return rc;
}

/* ---- keys and argument checks ------------------------------------------- */

static inline int key_u64(sm_map *m, uint64_t key, sm__key *k) {
    if (SM_UNLIKELY(!m))
        return SM_EINVAL;
    if (SM_UNLIKELY(m->kind != SM_KEY_U64))
        return SM_EKIND;
    k->u64 = key;
    k->hash = sm__hash_u64(m, key);
    k->tag = sm__tag_of(k->hash);
    k->p = NULL;
    k->len = sizeof key;
    return SM_OK;
}

static inline int key_bytes(sm_map *m, const void *key, size_t len, sm__key *k) {
    if (SM_UNLIKELY(!m))
        return SM_EINVAL;
    if (SM_UNLIKELY(m->kind != SM_KEY_BYTES))
        return SM_EKIND;
    if (SM_UNLIKELY(!key && len))
        return SM_EINVAL;
    if (SM_UNLIKELY(len > SM_KEY_MAX))
        return SM_EKEYLEN;
    k->u64 = 0;
    k->p = key;
    k->len = len;
    k->hash = sm__hash_bytes(m, key, len);
    k->tag = sm__tag_of(k->hash);
    return SM_OK;
}

SM_INLINE int run(sm_key_kind kind, sm_map *m, int krc, const sm__key *k, int op, uint64_t val,
               uint64_t expected, uint64_t *out) {
    if (krc != SM_OK)
        return krc;
    wctx w = {.op = op, .val = val, .expected = expected};
    int rc = do_write(kind, m, k, &w);
    if (out && rc >= 0) {
        if (op == OP_LOS)
            *out = rc == SM_OK ? val : w.out;
        else if (w.have_out && rc == SM_OK)
            *out = w.out;
    }
    return rc;
}

/* ---- public operations ---------------------------------------------------- */

__attribute__((noinline)) static int get_u64_slow(sm_map *m, uint64_t key, uint64_t *val) {
    sm__key k;
    int rc = key_u64(m, key, &k);
    return rc != SM_OK ? rc : do_read(SM_KEY_U64, m, &k, val);
}

/*
 * The u64 lookup's fast path: an unpinned thread and a chain with no
 * writer removing a key from it and no transition touching it.  This is
 * the protocol of sm__table_lookup (S1, S2, O1) written out for u64 keys
 * so that the common case stays short and more lookups stay in flight in
 * the CPU; anything unusual takes the general path.
 */
int sm_get_u64(sm_map *m, uint64_t key, uint64_t *val) {
    SM_DEBUG_CHECK(m);
    sm__thr *thr = sm__tls_thr;
    if (SM_UNLIKELY(!m || m->kind != SM_KEY_U64 || !thr || thr->nest))
        return get_u64_slow(m, key, val);
    uint64_t h = sm__hash_u64(m, key);
    uint8_t tag = sm__tag_of(h);
    sm__pin(thr);
    sm__table *t = atomic_load_explicit(&m->xcur, memory_order_acquire);
    size_t home = h & t->mask, i = home;
    int rc = -1;
    uint64_t v = 0;
    uint32_t home_seq = 0;
    for (size_t dist = 0; dist <= t->mask; dist++, i = (i + 1) & t->mask) {
        sm__bucket *b = &t->b[i];
        uint32_t s1 = atomic_load_explicit(&b->xseq, memory_order_acquire);
        uint32_t meta = atomic_load_explicit(&b->xmeta, memory_order_acquire);
        uint32_t ovf = atomic_load_explicit(&b->xovf, memory_order_relaxed);
        int found = 0;
        for (uint32_t c = sm__meta_match(meta, tag); c; c &= c - 1) {
            int s = sm__first_slot(c);
            if (atomic_load_explicit(&b->slot[s].xkey, memory_order_relaxed) == key) {
                v = atomic_load_explicit(&b->slot[s].xval, memory_order_acquire);
                found = 1;
                break;
            }
        }
        SM_FENCE_ACQ();
        if (SM_UNLIKELY((s1 & 1) || (SM_META_FLAGS(meta) & SM_MOVED) ||
                        atomic_load_explicit(&b->xseq, memory_order_relaxed) != s1))
            break; /* rc stays -1: general path */
        if (found) {
            rc = SM_OK;
            break;
        }
        if (dist == 0)
            home_seq = s1;
        if (ovf == 0) {
            /* B2: past the home bucket, a miss stands only if the home's
             * count did not move (else the general path retries). */
            if (dist == 0 ||
                atomic_load_explicit(&t->b[home].xseq, memory_order_relaxed) == home_seq)
                rc = SM_NOTFOUND;
            break;
        }
        SM_DEBUG_STEP();
    }
    sm__unpin(thr);
    if (SM_UNLIKELY(rc < 0))
        return get_u64_slow(m, key, val);
    if (rc == SM_OK && val)
        *val = v;
    return rc;
}

int sm_get(sm_map *m, const void *key, size_t len, uint64_t *val) {
    SM_DEBUG_CHECK(m);
    sm__key k;
    int rc = key_bytes(m, key, len, &k);
    return rc != SM_OK ? rc : do_read(SM_KEY_BYTES, m, &k, val);
}

#define SM__DEFINE_WRITE(name, op, ...)                                           \
    int sm_##name##_u64(sm_map *m, uint64_t key SM__ARGS_##op) {                  \
        SM_DEBUG_CHECK(m);                                                        \
        sm__key k;                                                                \
        return run(SM_KEY_U64, m, key_u64(m, key, &k), &k, op, SM__CALL_##op);    \
    }                                                                             \
    int sm_##name(sm_map *m, const void *key, size_t len SM__ARGS_##op) {         \
        SM_DEBUG_CHECK(m);                                                        \
        sm__key k;                                                                \
        return run(SM_KEY_BYTES, m, key_bytes(m, key, len, &k), &k, op,           \
                   SM__CALL_##op);                                                \
    }

#define SM__ARGS_OP_PUT , uint64_t val
#define SM__CALL_OP_PUT val, 0, NULL
#define SM__ARGS_OP_LOS , uint64_t val, uint64_t *actual
#define SM__CALL_OP_LOS val, 0, actual
#define SM__ARGS_OP_SWAP , uint64_t val, uint64_t *prev
#define SM__CALL_OP_SWAP val, 0, prev
#define SM__ARGS_OP_CAS , uint64_t expected, uint64_t desired
#define SM__CALL_OP_CAS desired, expected, NULL
#define SM__ARGS_OP_DEL
#define SM__CALL_OP_DEL 0, 0, NULL
#define SM__ARGS_OP_LAD , uint64_t *val
#define SM__CALL_OP_LAD 0, 0, val
#define SM__ARGS_OP_CAD , uint64_t expected
#define SM__CALL_OP_CAD 0, expected, NULL

SM__DEFINE_WRITE(put, OP_PUT)
SM__DEFINE_WRITE(load_or_store, OP_LOS)
SM__DEFINE_WRITE(swap, OP_SWAP)
SM__DEFINE_WRITE(cas, OP_CAS)
SM__DEFINE_WRITE(delete, OP_DEL)
SM__DEFINE_WRITE(load_and_delete, OP_LAD)
SM__DEFINE_WRITE(cad, OP_CAD)

/* ---- lifecycle -------------------------------------------------------------- */

static void *libc_malloc(void *ctx, size_t size) {
    (void)ctx;
    return malloc(size);
}
static void libc_free(void *ctx, void *p, size_t size) {
    (void)ctx;
    (void)size;
    free(p);
}

static uint64_t random_seed(void) {
    uint64_t s = 0;
#if defined(__linux__) || defined(__APPLE__) || defined(__FreeBSD__) || defined(__OpenBSD__)
    if (getentropy(&s, sizeof s) == 0)
        return s;
#endif
    /* Fallback: clock, address-space layout and a counter, mixed. */
    static _Atomic uint64_t ctr;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    s = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)(uintptr_t)&s ^
        atomic_fetch_add(&ctr, 0x9e3779b97f4a7c15ull);
    return XXH3_64bits(&s, sizeof s);
}

int sm_create(const sm_options *opt, sm_map **out) {
    if (!out)
        return SM_EINVAL;
    *out = NULL;
    sm_options defaults;
    if (!opt) {
        sm_options_init(&defaults);
        opt = &defaults;
    }
    if (opt->struct_size != sizeof(sm_options))
        return SM_EINVAL;
    if (opt->key_kind != SM_KEY_U64 && opt->key_kind != SM_KEY_BYTES)
        return SM_EINVAL;
    if (opt->fixed_seed != 0 && opt->fixed_seed != 1)
        return SM_EINVAL;
    if (opt->initial_capacity > ((size_t)1 << 40))
        return SM_EINVAL;
    sm_allocator al = {libc_malloc, libc_free, NULL};
    int default_alloc = 1;
    if (opt->allocator) {
        if (!opt->allocator->malloc || !opt->allocator->free)
            return SM_EINVAL;
        al = *opt->allocator;
        default_alloc = 0;
    }
    size_t raw_size = sizeof(sm_map) + SM_CACHELINE;
#if defined(SM_DEBUG) && SM_DEBUG
    /* Debug builds keep a destroyed map's header to catch later use; it
     * comes from the C library so the user's allocator sees no leak. */
    sm_allocator hdr_al = {libc_malloc, libc_free, NULL};
#else
    sm_allocator hdr_al = al;
#endif
    void *raw = hdr_al.malloc(hdr_al.ctx, raw_size);
    if (!raw)
        return SM_ENOMEM;
    sm_map *m = (sm_map *)(((uintptr_t)raw + SM_CACHELINE - 1) & ~(uintptr_t)(SM_CACHELINE - 1));
    memset(m, 0, sizeof *m);
    m->raw = raw;
    m->raw_size = raw_size;
    m->magic = SM_MAGIC;
    m->kind = opt->key_kind;
    m->seed = opt->fixed_seed ? opt->seed : random_seed();
    m->u64_flip = XXH3_64bits_withSeed("stillmap-u64-key", 16, m->seed);
    m->alloc = al;
    m->default_alloc = default_alloc;
    m->on_remove = opt->on_remove;
    m->on_remove_ctx = opt->on_remove_ctx;
    m->min_buckets = opt->initial_capacity ? sm__buckets_for(opt->initial_capacity) : 8;
    sm__table *t = sm__table_new(m, m->min_buckets);
    if (!t) {
        hdr_al.free(hdr_al.ctx, raw, raw_size);
        return SM_ENOMEM;
    }
    atomic_init(&m->xcur, t);
    if (sm__ebr_acquire() != 0) {
        sm__table_free(t);
        hdr_al.free(hdr_al.ctx, raw, raw_size);
        return SM_ENOMEM;
    }
    sm__registry_add(m);
    *out = m;
    return SM_OK;
}

int sm_destroy(sm_map *m) {
    if (!m)
        return SM_OK;
    SM_DEBUG_CHECK(m);
    sm__thr *thr = sm__tls_thr;
    if (thr && thr->nest > 0)
        return SM_MISUSE("sm_destroy", "called while the thread holds a pin");
    if (sm__on_reclaimer())
        return SM_MISUSE("sm_destroy", "called from a removal hook (it would wait for itself)");
    sm__registry_remove(m);
    /* Every value removed earlier gets its hook before we return. */
    sm__ebr_barrier();
    sm__destroy_tables(m);
    m->magic = SM_MAGIC_DEAD;
    sm__ebr_release();
#if defined(SM_DEBUG) && SM_DEBUG
    /* Keep the struct so that a use after destroy is reported, not a read
     * of freed memory; the list keeps it reachable (no leak report). */
    static sm_map *dead_maps;
    static pthread_mutex_t dead_mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&dead_mu);
    m->dead_next = dead_maps;
    dead_maps = m;
    pthread_mutex_unlock(&dead_mu);
#else
    sm_allocator al = m->alloc;
    al.free(al.ctx, m->raw, m->raw_size);
#endif
    return SM_OK;
}

/* ---- len and pins ---------------------------------------------------------- */

size_t sm_len(sm_map *m) {
    if (!m)
        return 0;
    SM_DEBUG_CHECK_RET(m, 0);
    sm__thr *thr = sm__thr_get();
    if (!thr)
        return 0;
    sm__pin(thr);
    sm__table *t = atomic_load_explicit(&m->xcur, memory_order_acquire);
    int64_t n = sm__table_count(t);
    sm__table *nx = atomic_load_explicit(&t->xnext, memory_order_acquire);
    if (nx)
        n += sm__table_count_raw(nx); /* C2 */
    sm__unpin(thr);
    return n > 0 ? (size_t)n : 0;
}

int sm_pin(sm_map *m) {
    SM_ENTER(m, thr);
    sm__pin(thr);
    return SM_OK;
}

int sm_unpin(sm_map *m) {
    if (!m)
        return SM_EINVAL;
    SM_DEBUG_CHECK(m);
    sm__thr *thr = sm__tls_thr;
    if (!thr || thr->nest == 0)
        return SM_MISUSE("sm_unpin", "the thread holds no pin");
    sm__unpin(thr);
    return SM_OK;
}
