/* stats.c — statistics, read without stopping anyone. */
#include "internal.h"

#include <string.h>

static uint64_t clamp(int64_t v) { return v > 0 ? (uint64_t)v : 0; }

int sm_get_stats(sm_map *m, sm_stats *out, size_t size) {
    if (!m || !out || size < offsetof(sm_stats, capacity))
        return SM_EINVAL;
    SM_DEBUG_CHECK(m);
    sm__thr *thr = sm__thr_get();
    if (!thr)
        return SM_ENOMEM;
    sm_stats st;
    memset(&st, 0, sizeof st);
    sm__pin(thr);
    sm__table *t = atomic_load_explicit(&m->xcur, memory_order_acquire);
    sm__table *nx = atomic_load_explicit(&t->xnext, memory_order_acquire);
    int64_t n = sm__table_count(t), kb = sm__table_key_bytes(t);
    sm__table *pp = atomic_load_explicit(&t->xprep, memory_order_acquire);
    st.table_bytes = t->mem_bytes + (pp ? pp->mem_bytes : 0);
    if (nx) {
        n += sm__table_count_raw(nx); /* C2 */
        kb += sm__table_key_bytes_raw(nx);
        st.table_bytes += nx->mem_bytes;
    }
    st.capacity = t->nbuckets * SM_SLOTS;
    sm__unpin(thr);
    st.entries = clamp(n);
    st.load_factor = st.capacity ? (double)st.entries / (double)st.capacity : 0.0;
    st.entry_bytes = clamp(kb);
    int64_t pb = 0, po = 0;
    for (int i = 0; i < SM_STRIPES; i++) {
        pb += atomic_load_explicit(&m->mstripe[i].xpend_bytes, memory_order_relaxed);
        po += atomic_load_explicit(&m->mstripe[i].xpend_objs, memory_order_relaxed);
    }
    st.pending_reclaim_bytes = clamp(pb);
    st.pending_reclaim_objects = clamp(po);
    st.transition_in_progress = nx != NULL;
    st.grows_total = atomic_load_explicit(&m->xgrows, memory_order_relaxed);
    st.shrinks_total = atomic_load_explicit(&m->xshrinks, memory_order_relaxed);
    st.clears_total = atomic_load_explicit(&m->xclears, memory_order_relaxed);
    st.buckets_migrated_total = atomic_load_explicit(&m->xmigrated, memory_order_relaxed);
    st.hooks_called_total = atomic_load_explicit(&m->xhooks, memory_order_relaxed);
    if (size > sizeof st)
        size = sizeof st;
    st.struct_size = size;
    memcpy(out, &st, size);
    return SM_OK;
}

int sm__take_census(sm_map *m, sm__census *c) {
    sm__thr *thr = sm__thr_get();
    if (!m || !c || !thr)
        return SM_EINVAL;
    memset(c, 0, sizeof *c);
    sm__pin(thr);
    sm__table *t = atomic_load_explicit(&m->xcur, memory_order_acquire);
    int rc = SM_OK;
    if (atomic_load_explicit(&t->xnext, memory_order_acquire)) {
        rc = -1;
    } else {
        c->buckets = t->nbuckets;
        for (size_t i = 0; i < t->nbuckets; i++) {
            sm__bucket *b = &t->b[i];
            uint32_t meta = atomic_load_explicit(&b->xmeta, memory_order_acquire);
            uint32_t ovf = atomic_load_explicit(&b->xovf, memory_order_relaxed);
            c->ovf_total += ovf;
            if (ovf && sm__meta_empty(meta))
                c->holes_passed++;
            for (int s = 0; s < SM_SLOTS; s++) {
                if (!SM_META_TAG(meta, s))
                    continue;
                uint64_t kw = atomic_load_explicit(&b->slot[s].xkey, memory_order_acquire);
                uint64_t h = sm__stored_hash(m, kw);
                c->entries++;
                c->displaced += (h & t->mask) != i;
            }
        }
    }
    sm__unpin(thr);
    return rc;
}
