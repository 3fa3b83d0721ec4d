/*
 * adapter_floor.c — not a map: the floor of the latency benchmarks.
 *
 * `sm_bench --lib floor --test T10 --latency` runs T10's timed loop over
 * a store into a direct-mapped array that was faulted in before the
 * loop (key & mask, one 8-byte store, no probing, no growth).  Whatever
 * the worst "insert" costs here is what the machine itself adds to any
 * single operation timed in that loop (timer ticks, interrupts, time
 * the hypervisor takes), so a map's worst insert can be read against it.
 * get/del answer from the array; len counts the stores.
 */
#include "adapter.h"

#include <stdlib.h>
#include <string.h>

typedef struct floor_map {
    size_t mask, n;
    uint64_t *slot;
} floor_map;

static void *fl_create(size_t hint)
{
    (void)hint;
    floor_map *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    size_t cap = (size_t)1 << 24; /* 128 MiB */
    f->slot = malloc(cap * sizeof *f->slot);
    if (!f->slot) {
        free(f);
        return NULL;
    }
    memset(f->slot, 0, cap * sizeof *f->slot); /* faulted in now */
    f->mask = cap - 1;
    return f;
}

static void fl_destroy(void *m)
{
    floor_map *f = m;
    free(f->slot);
    free(f);
}

static int fl_put(void *m, uint64_t k, uint64_t v)
{
    floor_map *f = m;
    f->slot[k & f->mask] = v;
    f->n++;
    return 0;
}

static int fl_get(void *m, uint64_t k, uint64_t *v)
{
    floor_map *f = m;
    *v = f->slot[k & f->mask];
    return *v != 0;
}

static int fl_del(void *m, uint64_t k)
{
    floor_map *f = m;
    int had = f->slot[k & f->mask] != 0;
    f->slot[k & f->mask] = 0;
    return had;
}

static int fl_clear(void *m)
{
    floor_map *f = m;
    memset(f->slot, 0, (f->mask + 1) * sizeof *f->slot);
    f->n = 0;
    return 0;
}

static size_t fl_len(void *m)
{
    return ((floor_map *)m)->n;
}

const bench_adapter bench_adapter_floor = {
    .name = "floor",
    .flags = 0,
    .create = fl_create,
    .destroy = fl_destroy,
    .put = fl_put,
    .get = fl_get,
    .del = fl_del,
    .clear = fl_clear,
    .len = fl_len,
};
