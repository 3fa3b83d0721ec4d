/*
 * peer_urcu.c — sm_bench adapter for liburcu's lock-free hash table
 * (cds_lfht) with the urcu-memb flavour, read side inlined
 * (_LGPL_SOURCE), auto-resize on.  Thread-safe; every benchmark thread
 * registers with RCU (thread_init/thread_fini).
 *
 * put is insert-or-assign the way a user of cds_lfht writes it cheaply:
 * look the key up and store the new value into the node with an atomic
 * store; if absent, add a node with cds_lfht_add_unique (a concurrent
 * insert of the same key wins and gets the value instead).  Deleted
 * nodes are freed with call_rcu.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#define _LGPL_SOURCE
#include <urcu/urcu-memb.h>
#include <urcu/rculfhash.h>

#include "adapter.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

struct unode {
    struct cds_lfht_node node;
    uint64_t key;
    _Atomic uint64_t xval;
    struct rcu_head rcu;
};

static unsigned long uhash(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    k ^= k >> 33;
    return (unsigned long)k;
}

static int umatch(struct cds_lfht_node *n, const void *key)
{
    return caa_container_of(n, struct unode, node)->key ==
           *(const uint64_t *)key;
}

static void ufree_cb(struct rcu_head *h)
{
    free(caa_container_of(h, struct unode, rcu));
}

static void *u_create(size_t hint)
{
    unsigned long init = 1;
    while (init < hint)
        init <<= 1;
    return cds_lfht_new_flavor(init, 1, 0,
                               CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING,
                               &urcu_memb_flavor, NULL);
}

static void u_destroy(void *m)
{
    struct cds_lfht *ht = m;
    struct cds_lfht_iter it;
    struct cds_lfht_node *n;
    urcu_memb_read_lock();
    cds_lfht_for_each(ht, &it, n) {
        if (cds_lfht_del(ht, n) == 0)
            urcu_memb_call_rcu(&caa_container_of(n, struct unode, node)->rcu,
                               ufree_cb);
    }
    urcu_memb_read_unlock();
    urcu_memb_barrier();   /* run every pending free */
    if (cds_lfht_destroy(ht, NULL) != 0)
        fprintf(stderr, "peer_urcu: cds_lfht_destroy failed\n");
}

static int u_get(void *m, uint64_t k, uint64_t *v)
{
    struct cds_lfht_iter it;
    int found = 0;
    urcu_memb_read_lock();
    cds_lfht_lookup(m, uhash(k), umatch, &k, &it);
    struct cds_lfht_node *n = cds_lfht_iter_get_node(&it);
    if (n) {
        *v = atomic_load_explicit(&caa_container_of(n, struct unode, node)->xval,
                                  memory_order_relaxed);
        found = 1;
    }
    urcu_memb_read_unlock();
    return found;
}

static int u_put(void *m, uint64_t k, uint64_t v)
{
    struct cds_lfht *ht = m;
    struct cds_lfht_iter it;
    unsigned long h = uhash(k);
    urcu_memb_read_lock();
    cds_lfht_lookup(ht, h, umatch, &k, &it);
    struct cds_lfht_node *n = cds_lfht_iter_get_node(&it);
    if (!n) {
        struct unode *nn = malloc(sizeof *nn);
        if (!nn) {
            urcu_memb_read_unlock();
            return -1;
        }
        cds_lfht_node_init(&nn->node);
        nn->key = k;
        atomic_init(&nn->xval, v);
        n = cds_lfht_add_unique(ht, h, umatch, &k, &nn->node);
        if (n == &nn->node) {
            urcu_memb_read_unlock();
            return 0;
        }
        free(nn); /* never published */
    }
    atomic_store_explicit(&caa_container_of(n, struct unode, node)->xval, v,
                          memory_order_relaxed);
    urcu_memb_read_unlock();
    return 0;
}

static int u_del(void *m, uint64_t k)
{
    struct cds_lfht *ht = m;
    struct cds_lfht_iter it;
    int removed = 0;
    urcu_memb_read_lock();
    cds_lfht_lookup(ht, uhash(k), umatch, &k, &it);
    struct cds_lfht_node *n = cds_lfht_iter_get_node(&it);
    if (n && cds_lfht_del(ht, n) == 0) {
        urcu_memb_call_rcu(&caa_container_of(n, struct unode, node)->rcu,
                           ufree_cb);
        removed = 1;
    }
    urcu_memb_read_unlock();
    return removed;
}

static int u_clear(void *m)
{
    struct cds_lfht *ht = m;
    struct cds_lfht_iter it;
    struct cds_lfht_node *n;
    urcu_memb_read_lock();
    cds_lfht_for_each(ht, &it, n) {
        if (cds_lfht_del(ht, n) == 0)
            urcu_memb_call_rcu(&caa_container_of(n, struct unode, node)->rcu,
                               ufree_cb);
    }
    urcu_memb_read_unlock();
    return 0;
}

/* O(n): cds_lfht has no O(1) exact count; used only to verify. */
static size_t u_len(void *m)
{
    long before, after;
    unsigned long count = 0;
    urcu_memb_read_lock();
    cds_lfht_count_nodes(m, &before, &count, &after);
    urcu_memb_read_unlock();
    return (size_t)count;
}

static void u_thread_init(void)
{
    urcu_memb_register_thread();
}

static void u_thread_fini(void)
{
    urcu_memb_unregister_thread();
}

const bench_adapter bench_adapter_urcu = {
    "urcu", BA_THREAD_SAFE | BA_NEEDS_THREAD_INIT,
    u_create, u_destroy, u_put, u_get, u_del, u_clear, u_len,
    u_thread_init, u_thread_fini, NULL, NULL, NULL,
};
