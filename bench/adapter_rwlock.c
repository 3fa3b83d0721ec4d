/*
 * adapter_rwlock.c — makes a single-threaded peer usable from several
 * threads the way a user would: one pthread rwlock around the whole map,
 * lookups under the read lock, writes under the write lock.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "adapter.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

struct locked {
    pthread_rwlock_t lock;
    void *inner;
};

static const bench_adapter *rw_inner;
static bench_adapter rw_adapter;
static char rw_name[64];

static void *rw_create(size_t hint)
{
    struct locked *l = malloc(sizeof *l);
    if (!l)
        return NULL;
    l->inner = rw_inner->create(hint);
    if (!l->inner || pthread_rwlock_init(&l->lock, NULL) != 0) {
        if (l->inner)
            rw_inner->destroy(l->inner);
        free(l);
        return NULL;
    }
    return l;
}

static void rw_destroy(void *m)
{
    struct locked *l = m;
    rw_inner->destroy(l->inner);
    pthread_rwlock_destroy(&l->lock);
    free(l);
}

static int rw_put(void *m, uint64_t k, uint64_t v)
{
    struct locked *l = m;
    pthread_rwlock_wrlock(&l->lock);
    int rc = rw_inner->put(l->inner, k, v);
    pthread_rwlock_unlock(&l->lock);
    return rc;
}

static int rw_get(void *m, uint64_t k, uint64_t *v)
{
    struct locked *l = m;
    pthread_rwlock_rdlock(&l->lock);
    int rc = rw_inner->get(l->inner, k, v);
    pthread_rwlock_unlock(&l->lock);
    return rc;
}

static int rw_del(void *m, uint64_t k)
{
    struct locked *l = m;
    pthread_rwlock_wrlock(&l->lock);
    int rc = rw_inner->del(l->inner, k);
    pthread_rwlock_unlock(&l->lock);
    return rc;
}

static int rw_clear(void *m)
{
    struct locked *l = m;
    pthread_rwlock_wrlock(&l->lock);
    int rc = rw_inner->clear(l->inner);
    pthread_rwlock_unlock(&l->lock);
    return rc;
}

static int rw_shrink(void *m)
{
    struct locked *l = m;
    pthread_rwlock_wrlock(&l->lock);
    int rc = rw_inner->shrink(l->inner);
    pthread_rwlock_unlock(&l->lock);
    return rc;
}

static size_t rw_len(void *m)
{
    struct locked *l = m;
    pthread_rwlock_rdlock(&l->lock);
    size_t n = rw_inner->len(l->inner);
    pthread_rwlock_unlock(&l->lock);
    return n;
}

const bench_adapter *bench_rwlock_wrap(const bench_adapter *inner)
{
    rw_inner = inner;
    snprintf(rw_name, sizeof rw_name, "%s+rwlock", inner->name);
    rw_adapter = (bench_adapter){
        rw_name, inner->flags | BA_THREAD_SAFE,
        rw_create, rw_destroy, rw_put, rw_get, rw_del, rw_clear, rw_len,
        inner->thread_init, inner->thread_fini, NULL,
        inner->shrink ? rw_shrink : NULL, inner->shrink_how,
    };
    return &rw_adapter;
}
