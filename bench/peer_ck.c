/*
 * peer_ck.c — sm_bench adapter for Concurrency Kit's ck_ht in
 * CK_HT_MODE_DIRECT (u64 keys and values stored in the entries, no
 * allocation per entry) with ck's default hash.  ck_ht is single-writer,
 * many-reader: here lookups run without a lock inside a ck_epoch section,
 * and put/del/clear take one writer mutex.  Tables ck_ht retires (grow,
 * reset) are freed through ck_epoch once no reader can still see them.
 * Reported as "ck" (BA_THREAD_SAFE; the writer mutex is part of the
 * adapter).  Built only when CMake finds ck through pkg-config.
 *
 * ck_ht reserves two keys in direct mode (0 = empty, ~0 = tombstone):
 * put and del return -1 for them, get reports them absent.  sm_bench's
 * splitmix64 keys do not hit them.
 */
#include "adapter.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include <ck_epoch.h>
#include <ck_ht.h>
#include <ck_malloc.h>

/* One epoch domain per process (thread_init has no map argument; sm_bench
 * uses one map at a time). */
static ck_epoch_t ck_epoch_domain;
static pthread_once_t ck_epoch_once = PTHREAD_ONCE_INIT;
static _Thread_local ck_epoch_record_t *ck_rec;

struct ck_retired {
    ck_epoch_entry_t entry;     /* first: the callback casts back */
    void *p;
};

struct ck_map {
    ck_ht_t ht;
    pthread_mutex_t wlock;
};

static void ck_epoch_setup(void)
{
    ck_epoch_init(&ck_epoch_domain);
}

static ck_epoch_record_t *ck_record(void)
{
    if (ck_rec == NULL) {
        pthread_once(&ck_epoch_once, ck_epoch_setup);
        ck_epoch_record_t *r = ck_epoch_recycle(&ck_epoch_domain, NULL);
        if (r == NULL) {
            r = malloc(sizeof *r);
            if (r == NULL)
                abort();
            ck_epoch_register(&ck_epoch_domain, r, NULL);
        }
        ck_rec = r;
    }
    return ck_rec;
}

static void ck_thread_init(void)
{
    (void)ck_record();
}

static void ck_thread_fini(void)
{
    if (ck_rec == NULL)
        return;
    ck_epoch_barrier(ck_rec);   /* run this thread's pending frees */
    ck_epoch_unregister(ck_rec);
    ck_rec = NULL;
}

static void *ck_malloc_cb(size_t n)
{
    return malloc(n);
}

static void *ck_realloc_cb(void *p, size_t old, size_t n, bool defer)
{
    (void)old;
    (void)defer;
    return realloc(p, n);
}

static void ck_free_now(ck_epoch_entry_t *e)
{
    struct ck_retired *r = (struct ck_retired *)e;
    free(r->p);
    free(r);
}

/* Called by ck_ht with the writer mutex held; defer means readers may
 * still hold p. */
static void ck_free_cb(void *p, size_t n, bool defer)
{
    (void)n;
    if (p == NULL)
        return;
    if (!defer) {
        free(p);
        return;
    }
    struct ck_retired *r = malloc(sizeof *r);
    if (r == NULL) {
        ck_epoch_synchronize(ck_record());
        free(p);
        return;
    }
    r->p = p;
    ck_epoch_call(ck_record(), &r->entry, ck_free_now);
}

static struct ck_malloc ck_alloc = {
    .malloc = ck_malloc_cb, .realloc = ck_realloc_cb, .free = ck_free_cb,
};

static void *ck_create(size_t hint)
{
    struct ck_map *m = malloc(sizeof *m);
    if (m == NULL)
        return NULL;
    (void)ck_record();
    if (!ck_ht_init(&m->ht, CK_HT_MODE_DIRECT | CK_HT_WORKLOAD_DELETE,
                    NULL, &ck_alloc, hint ? hint : 64, 0x5157)) {
        free(m);
        return NULL;
    }
    pthread_mutex_init(&m->wlock, NULL);
    return m;
}

static void ck_destroy(void *mp)
{
    struct ck_map *m = mp;
    ck_epoch_barrier(ck_record());
    ck_ht_destroy(&m->ht);
    pthread_mutex_destroy(&m->wlock);
    free(m);
}

static int ck_reserved(uint64_t k)
{
    return k == 0 || k == UINT64_MAX;
}

static int ck_put(void *mp, uint64_t k, uint64_t v)
{
    struct ck_map *m = mp;
    ck_ht_entry_t e;
    ck_ht_hash_t h;
    if (ck_reserved(k))
        return -1;
    (void)ck_record();
    ck_ht_hash_direct(&h, &m->ht, (uintptr_t)k);
    ck_ht_entry_set_direct(&e, h, (uintptr_t)k, (uintptr_t)v);
    pthread_mutex_lock(&m->wlock);
    bool ok = ck_ht_set_spmc(&m->ht, h, &e);
    pthread_mutex_unlock(&m->wlock);
    if (ck_rec->n_pending != 0)
        ck_epoch_poll(ck_rec);   /* only after a retire */
    return ok ? 0 : -1;
}

static int ck_get(void *mp, uint64_t k, uint64_t *v)
{
    struct ck_map *m = mp;
    ck_ht_entry_t e;
    ck_ht_hash_t h;
    if (ck_reserved(k))
        return 0;
    ck_epoch_record_t *r = ck_record();
    ck_ht_hash_direct(&h, &m->ht, (uintptr_t)k);
    ck_ht_entry_key_set_direct(&e, (uintptr_t)k);
    ck_epoch_begin(r, NULL);
    bool found = ck_ht_get_spmc(&m->ht, h, &e);
    ck_epoch_end(r, NULL);
    if (!found)
        return 0;
    *v = ck_ht_entry_value_direct(&e);
    return 1;
}

static int ck_del(void *mp, uint64_t k)
{
    struct ck_map *m = mp;
    ck_ht_entry_t e;
    ck_ht_hash_t h;
    if (ck_reserved(k))
        return -1;
    (void)ck_record();
    ck_ht_hash_direct(&h, &m->ht, (uintptr_t)k);
    ck_ht_entry_key_set_direct(&e, (uintptr_t)k);
    pthread_mutex_lock(&m->wlock);
    bool found = ck_ht_remove_spmc(&m->ht, h, &e);
    pthread_mutex_unlock(&m->wlock);
    return found ? 1 : 0;
}

/* ck_ht_reset_spmc swaps in a fresh table at the initial size; readers
 * keep the old one until their epoch section ends. */
static int ck_clear(void *mp)
{
    struct ck_map *m = mp;
    (void)ck_record();
    pthread_mutex_lock(&m->wlock);
    bool ok = ck_ht_reset_spmc(&m->ht);
    pthread_mutex_unlock(&m->wlock);
    if (ck_rec->n_pending != 0)
        ck_epoch_poll(ck_rec);   /* only after a retire */
    return ok ? 0 : -1;
}

static size_t ck_len(void *mp)
{
    struct ck_map *m = mp;
    return (size_t)ck_ht_count(&m->ht);
}

/* ck_ht_gc with a cycle count of 0 rebuilds the probe sequences after
 * deletes; ck_ht never shrinks its table. */
static int ck_shrink(void *mp)
{
    struct ck_map *m = mp;
    (void)ck_record();
    pthread_mutex_lock(&m->wlock);
    bool ok = ck_ht_gc(&m->ht, 0, 0);
    pthread_mutex_unlock(&m->wlock);
    ck_epoch_barrier(ck_rec);
    return ok ? 0 : -1;
}

const bench_adapter bench_adapter_ck = {
    "ck", BA_THREAD_SAFE | BA_NEEDS_THREAD_INIT,
    ck_create, ck_destroy, ck_put, ck_get, ck_del, ck_clear, ck_len,
    ck_thread_init, ck_thread_fini, NULL, ck_shrink, "ck_ht_gc(0, 0)",
};
