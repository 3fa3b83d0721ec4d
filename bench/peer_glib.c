/*
 * peer_glib.c — sm_bench adapter for GLib's GHashTable.  Not thread-safe:
 * sm_bench wraps it in a reader-writer lock ("glib+rwlock") for tests
 * with several threads and for T6's clear, and calls it bare in
 * single-thread tests.  Built only when CMake finds glib-2.0 through
 * pkg-config, and only where pointers are 64 bits wide.
 *
 * Storage: keys and values are packed into the table's own pointer slots,
 * (gpointer)(guintptr)k, so an entry costs no allocation of its own (the
 * g_int64_hash way would malloc an 8-byte key per entry).  Key 0 packs to
 * NULL, which GHashTable accepts as a key; lookups go through
 * g_hash_table_lookup_extended so a NULL (0) value is told apart from a
 * miss.  Hash: the 64-bit key folded to 32 bits (g_direct_hash would see
 * only the low 32); equality is g_direct_equal (all 64 bits).
 */
#include "adapter.h"

#include <glib.h>

_Static_assert(sizeof(gpointer) == sizeof(uint64_t),
               "the glib adapter packs u64 keys and values into pointers");

#define U2P(x) ((gpointer)(guintptr)(x))
#define P2U(p) ((uint64_t)(guintptr)(p))

static guint glib_u64_hash(gconstpointer p)
{
    uint64_t k = P2U(p);
    return (guint)(k ^ (k >> 32));
}

static void *glib_create(size_t hint)
{
    (void)hint; /* GHashTable has no reserve */
    return g_hash_table_new(glib_u64_hash, g_direct_equal);
}

static void glib_destroy(void *m)
{
    g_hash_table_destroy(m);
}

static int glib_put(void *m, uint64_t k, uint64_t v)
{
    g_hash_table_insert(m, U2P(k), U2P(v));
    return 0;
}

static int glib_get(void *m, uint64_t k, uint64_t *v)
{
    gpointer ok, ov;
    if (!g_hash_table_lookup_extended(m, U2P(k), &ok, &ov))
        return 0;
    *v = P2U(ov);
    return 1;
}

static int glib_del(void *m, uint64_t k)
{
    return g_hash_table_remove(m, U2P(k)) ? 1 : 0;
}

static int glib_clear(void *m)
{
    g_hash_table_remove_all(m);
    return 0;
}

static size_t glib_len(void *m)
{
    return g_hash_table_size(m);
}

/* GHashTable shrinks by itself as entries are removed; it has no call of
 * its own for it, so shrink is left NULL. */
const bench_adapter bench_adapter_glib = {
    "glib", 0,
    glib_create, glib_destroy, glib_put, glib_get, glib_del, glib_clear,
    glib_len, NULL, NULL, NULL, NULL, NULL,
};
