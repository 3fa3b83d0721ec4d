/*
 * iter.c — for_each.
 *
 * The walk first finishes any running transition (its cost is that of the
 * walk itself), then reads the current table bucket by bucket, each bucket
 * as one seqlock-validated snapshot (S1).  It stays pinned throughout, so
 * the table it walks stays allocated even if a clear or a new transition
 * replaces it: a bucket moved during the walk is frozen (S4) and still
 * read in place, so no key present for the whole walk is missed and none
 * is read from two tables.  Keys do not move back along their chains in
 * the walked table meanwhile (B3 in map.c).
 */
#include "internal.h"

#include <sched.h>

typedef struct snap {
    int n;
    uint64_t key[SM_SLOTS];
    uint64_t val[SM_SLOTS];
} snap;

static void read_bucket(sm__bucket *b, snap *out) {
    for (;;) {
        uint32_t s1 = atomic_load_explicit(&b->xseq, memory_order_acquire);
        if (s1 & 1) {
            sched_yield();
            continue;
        }
        out->n = 0;
        uint32_t meta = atomic_load_explicit(&b->xmeta, memory_order_acquire);
        for (int s = 0; s < SM_SLOTS; s++) {
            if (!SM_META_TAG(meta, s))
                continue;
            out->key[out->n] = atomic_load_explicit(&b->slot[s].xkey, memory_order_acquire);
            out->val[out->n] = atomic_load_explicit(&b->slot[s].xval, memory_order_acquire);
            out->n++;
        }
        SM_FENCE_ACQ();
        if (atomic_load_explicit(&b->xseq, memory_order_relaxed) == s1)
            return;
    }
}

int sm_for_each(sm_map *m, sm_visit_fn fn, void *ctx) {
    if (!m || !fn)
        return SM_EINVAL;
    SM_DEBUG_CHECK(m);
    sm__thr *thr = sm__thr_get();
    if (!thr)
        return SM_ENOMEM;
    sm__pin(thr);
    sm__table *t = sm__finish_transition(m, thr);
    /* B3 (map.c): no key moves back along its chain in t while we walk */
    atomic_fetch_add_explicit(&t->xwalkers, 1, memory_order_seq_cst);
    sm__heavy_fence();
    sm__wait_movers();
    int rc = SM_OK;
    for (size_t i = 0; i < t->nbuckets && rc == SM_OK; i++) {
        snap sn;
        read_bucket(&t->b[i], &sn);
        for (int j = 0; j < sn.n && rc == SM_OK; j++) {
            sm_entry e;
            if (m->kind == SM_KEY_U64) {
                e.key = NULL;
                e.len = sizeof(uint64_t);
                e.key_u64 = sn.key[j];
            } else {
                const sm__blob *bl = sm__blob_of(sn.key[j]);
                e.key = bl->bytes;
                e.len = bl->len;
                e.key_u64 = 0;
            }
            e.value = sn.val[j];
            rc = fn(ctx, &e);
        }
    }
    atomic_fetch_sub_explicit(&t->xwalkers, 1, memory_order_release);
    sm__unpin(thr);
    return rc;
}
