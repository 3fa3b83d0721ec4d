/*
 * stillmap — a concurrent hash map for C11 that never makes its users wait.
 *
 * This header is the reference.  Every function documents its parameters,
 * its return codes, what happens on failure, and ends with its concurrency
 * contract in fixed words:
 *
 *   "Thread-safe."            any number of threads may call it at once,
 *                             on the same map, with any other operation
 *                             marked thread-safe.
 *   "Lock-free read."         takes no lock and writes no shared memory;
 *                             it may retry if a writer changes the same
 *                             bucket while it reads.
 *   "Locks one bucket."       serialises only with writers of the same
 *                             bucket(s) for a few instructions; never with
 *                             readers, never with a resize or clear.
 *   "Not thread-safe."        the caller guarantees no other call on the
 *                             same map runs at the same time.
 *   "Linearizable."           the call appears to take effect at one
 *                             instant between its invocation and return.
 *
 * No per-thread registration is asked of the user: the per-thread state
 * is created on a thread's first call and released when the thread exits.
 *
 * Debug builds (-DSM_DEBUG=1, CMake option SM_DEBUG) catch misuse and
 * return SM_EMISUSE with a message on stderr instead of corrupting memory:
 * a map used after sm_destroy, sm_unpin without a pin, sm_destroy or
 * sm_trim while pinned or from a removal hook, a thread that exits while
 * pinned.  (sm_unpin without a pin and destroy/trim from a pinned thread or
 * a hook are refused in every build; the map check costs a load per call
 * and is compiled only in debug builds.)
 *
 * Outcomes and errors are kept apart: SM_OK (0) and the positive outcomes
 * SM_NOTFOUND, SM_EXISTS and SM_MISMATCH are normal results; negative
 * values are errors.  After any error the map is unchanged.
 */
#ifndef STILLMAP_H
#define STILLMAP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define SM_API
#elif defined(__GNUC__)
#define SM_API __attribute__((visibility("default")))
#else
#define SM_API
#endif

#define STILLMAP_VERSION_MAJOR 0
#define STILLMAP_VERSION_MINOR 1
#define STILLMAP_VERSION_PATCH 0
#define STILLMAP_VERSION_STRING "0.1.0"

/* Runtime version, (major << 16) | (minor << 8) | patch. */
SM_API unsigned sm_version(void);

/* ---------------------------------------------------------------------
 * Status codes.  One table yields the enum, sm_strerror and sm_errname.
 * ------------------------------------------------------------------- */
#define SM_STATUS_MAP(X)                                                     \
    X(OK, 0, "success")                                                      \
    X(NOTFOUND, 1, "key not found")                                          \
    X(EXISTS, 2, "key already present")                                      \
    X(MISMATCH, 3, "current value differs from the expected value")          \
    X(ENOMEM, -1, "out of memory; the map is unchanged")                     \
    X(EINVAL, -2, "invalid argument")                                        \
    X(EKEYLEN, -3, "key longer than SM_KEY_MAX")                             \
    X(EKIND, -4, "operation does not match the map's key kind")             \
    X(EMISUSE, -5, "library misuse (see the function's contract)")          \
    X(EBUSY, -6, "resource busy")

typedef enum sm_status {
#define SM__STATUS_ENUM(name, val, msg) SM_##name = (val),
    SM_STATUS_MAP(SM__STATUS_ENUM)
#undef SM__STATUS_ENUM
} sm_status;

/* A static message for a status; "unknown status" for unknown values. */
SM_API const char *sm_strerror(int status);
/* The status's name, e.g. "SM_ENOMEM"; "SM_UNKNOWN" for unknown values. */
SM_API const char *sm_errname(int status);

/* ---------------------------------------------------------------------
 * Options
 * ------------------------------------------------------------------- */

/* Longest byte-string key, in bytes.  Longer keys are rejected with
 * SM_EKEYLEN.  The empty key (length 0) is a valid key. */
#define SM_KEY_MAX 65535u

typedef enum sm_key_kind {
    SM_KEY_U64 = 0,   /* 64-bit integer keys, stored inline (fast path) */
    SM_KEY_BYTES = 1  /* byte strings of 0..SM_KEY_MAX bytes, copied in */
} sm_key_kind;

/* Why a value left the map; passed to the removal hook. */
typedef enum sm_reason {
    SM_REMOVED_DELETE = 1,   /* delete, load-and-delete, compare-and-delete */
    SM_REMOVED_REPLACE = 2,  /* put, swap or compare-and-swap stored a
                                different value over it */
    SM_REMOVED_CLEAR = 3,    /* sm_clear */
    SM_REMOVED_DESTROY = 4   /* sm_destroy */
} sm_reason;

/*
 * Allocator hooks.  All memory of a map (tables, copied keys, internal
 * records) comes from here.  free receives the size that was asked of
 * malloc.  stillmap never grows a block in place (a table grows by a
 * transition into a new block), so no realloc hook is needed.
 * The hooks may be called from any thread, including the background
 * reclaimer, and must be thread-safe.  They must not call into stillmap.
 */
typedef struct sm_allocator {
    void *(*malloc)(void *ctx, size_t size);
    void (*free)(void *ctx, void *ptr, size_t size);
    void *ctx;
} sm_allocator;

/*
 * Value-removal hook: called exactly once for every value that leaves the
 * map, after no pinned reader can still see it (see sm_pin).  It is not
 * called when a store writes a value equal to the one it replaces (the
 * value did not leave).  It runs on stillmap's background reclaimer
 * thread, except for SM_REMOVED_DESTROY, which runs on the thread that
 * calls sm_destroy.  It may call any thread-safe operation of any map,
 * including this one; it must not call sm_destroy on this map (that
 * returns SM_EMISUSE) and should be short: the reclaimer serves every map.
 */
typedef void (*sm_remove_fn)(void *ctx, uint64_t value, sm_reason reason);

typedef struct sm_options {
    size_t struct_size;        /* sizeof(sm_options); set by sm_options_init */
    sm_key_kind key_kind;      /* default SM_KEY_U64 */
    size_t initial_capacity;   /* entries to hold without growing; 0 = small */
    int fixed_seed;            /* 0 (default): random per-map hash seed;
                                  1: use `seed` (reproducible layouts) */
    uint64_t seed;
    const sm_allocator *allocator; /* NULL = the C library; copied in */
    sm_remove_fn on_remove;    /* NULL = no hook */
    void *on_remove_ctx;
} sm_options;

/* Fill *opt with the defaults.  Always call it before setting fields so
 * that fields added later get their defaults. */
SM_API void sm_options_init(sm_options *opt);

/* ---------------------------------------------------------------------
 * Lifecycle
 * ------------------------------------------------------------------- */
typedef struct sm_map sm_map;

/*
 * Create a map.  opt may be NULL for the defaults (u64 keys).
 * Returns SM_OK and sets *out; SM_EINVAL for NULL out, a struct_size that
 * is not a known version, an unknown key kind, or an allocator with a
 * missing function; SM_ENOMEM if memory (or the reclaimer thread) cannot
 * be had.  On error *out is set to NULL.
 * Thread-safe.
 */
SM_API int sm_create(const sm_options *opt, sm_map **out);

/*
 * Destroy a map: call the removal hook (SM_REMOVED_DESTROY) for every
 * value still present, wait until every value removed earlier has had its
 * hook called, and free all memory.  NULL is a harmless no-op (SM_OK).
 * Returns SM_EMISUSE, changing nothing, if called while the calling
 * thread holds a pin, or from a removal hook (the reclaimer thread).
 * It may wait for other threads' pins to end (a grace period).
 * Not thread-safe: no other call on this map may run or start.
 */
SM_API int sm_destroy(sm_map *m);

/* ---------------------------------------------------------------------
 * Operations.  Each exists for u64 keys (suffix _u64, maps created with
 * SM_KEY_U64) and for byte-string keys (maps created with SM_KEY_BYTES).
 * Calling the wrong kind returns SM_EKIND.  For byte keys, key may be
 * NULL only when len is 0; a longer key than SM_KEY_MAX gives SM_EKEYLEN.
 * Every u64 key and value is valid, 0 and UINT64_MAX included.
 * NULL map: SM_EINVAL.  Output pointers may be NULL when not wanted.
 * All are thread-safe and linearizable.
 * ------------------------------------------------------------------- */

/* Look up key.  SM_OK and *val set, or SM_NOTFOUND.
 * Thread-safe.  Lock-free read.  Linearizable. */
SM_API int sm_get(sm_map *m, const void *key, size_t len, uint64_t *val);
SM_API int sm_get_u64(sm_map *m, uint64_t key, uint64_t *val);

/* Insert or assign.  SM_OK.  SM_ENOMEM if a copied key, a hook record or
 * a table the insert needs (the current one is full) cannot be allocated:
 * the map is unchanged.  Every write may do a bounded amount of resize
 * work (a few buckets) on the caller's thread, and every 64th write of a
 * thread checks the load and may start a grow or shrink; if that table
 * cannot be allocated the write still succeeds and the check is simply
 * repeated later (it is not the write's error).  A grow to a table of
 * 2 MiB or more starts at a load of 7/10 and is prepared first: the
 * background thread faults the new table's pages in, so that no write
 * takes those page faults, while writes go on in the current table.
 * Thread-safe.  Locks one bucket.  Linearizable. */
SM_API int sm_put(sm_map *m, const void *key, size_t len, uint64_t val);
SM_API int sm_put_u64(sm_map *m, uint64_t key, uint64_t val);

/* Load-or-store: if key is present, SM_EXISTS and *actual = its value;
 * otherwise store val, SM_OK and *actual = val.
 * Thread-safe.  Locks one bucket.  Linearizable. */
SM_API int sm_load_or_store(sm_map *m, const void *key, size_t len,
                            uint64_t val, uint64_t *actual);
SM_API int sm_load_or_store_u64(sm_map *m, uint64_t key, uint64_t val,
                                uint64_t *actual);

/* Swap: store val; if key was present, SM_OK and *prev = its old value;
 * if it was absent, SM_NOTFOUND (and the key is now present).
 * Thread-safe.  Locks one bucket.  Linearizable. */
SM_API int sm_swap(sm_map *m, const void *key, size_t len, uint64_t val,
                   uint64_t *prev);
SM_API int sm_swap_u64(sm_map *m, uint64_t key, uint64_t val, uint64_t *prev);

/* Compare-and-swap: if key's value equals expected, store desired and
 * return SM_OK; SM_MISMATCH if it holds another value; SM_NOTFOUND if
 * absent.  Thread-safe.  Locks one bucket.  Linearizable. */
SM_API int sm_cas(sm_map *m, const void *key, size_t len, uint64_t expected,
                  uint64_t desired);
SM_API int sm_cas_u64(sm_map *m, uint64_t key, uint64_t expected,
                      uint64_t desired);

/* Delete: SM_OK if the key was removed, SM_NOTFOUND if absent.  The
 * freed slot is refilled at once by moving back a key that was stored
 * past it (at most 16 moves, each under try-locks, never waiting), so a
 * map probes as fast after any amount of churn as a fresh one; a delete
 * made while sm_for_each walks the same table skips the moves (the next
 * insert passing the slot fills it).  This applies to every removal
 * below (load-and-delete, compare-and-delete).
 * Thread-safe.  Locks one bucket (plus, briefly, the ones a move uses).
 * Linearizable. */
SM_API int sm_delete(sm_map *m, const void *key, size_t len);
SM_API int sm_delete_u64(sm_map *m, uint64_t key);

/* Load-and-delete: SM_OK with *val = the removed value, or SM_NOTFOUND.
 * Thread-safe.  Locks one bucket.  Linearizable. */
SM_API int sm_load_and_delete(sm_map *m, const void *key, size_t len,
                              uint64_t *val);
SM_API int sm_load_and_delete_u64(sm_map *m, uint64_t key, uint64_t *val);

/* Compare-and-delete: remove key only if its value equals expected.
 * SM_OK, SM_MISMATCH or SM_NOTFOUND.
 * Thread-safe.  Locks one bucket.  Linearizable. */
SM_API int sm_cad(sm_map *m, const void *key, size_t len, uint64_t expected);
SM_API int sm_cad_u64(sm_map *m, uint64_t key, uint64_t expected);

/*
 * Clear: publish an empty table and return.  O(1): the old entries are
 * never walked on the caller's thread; the background reclaimer frees
 * them and calls the removal hook (SM_REMOVED_CLEAR) once no thread can
 * still see them.  An operation that starts after sm_clear returns sees
 * an empty map; an operation running concurrently takes effect entirely
 * before or entirely after the clear.  SM_OK, or SM_ENOMEM (map unchanged)
 * if the small empty table cannot be allocated.
 * Thread-safe.  Never waits for readers or writers.  Linearizable.
 */
SM_API int sm_clear(sm_map *m);

/*
 * Number of entries.  O(1) (a fixed number of counter stripes is
 * summed).  Exact when no write is in progress; during concurrent writes
 * it lies between the counts before and after them.  0 for NULL.
 * Thread-safe.  Lock-free read.
 */
SM_API size_t sm_len(sm_map *m);

/*
 * Reserve room for at least n entries: if the table is smaller, a resize
 * to a table that holds n entries is started (and carried out
 * incrementally by later operations and the background thread), so that
 * the next inserts up to n do not allocate a table.  The map never shrinks
 * below the largest reservation (nor below initial_capacity).  A resize
 * already running is completed first, on the calling thread (work
 * proportional to that table).  SM_OK, SM_ENOMEM (map unchanged; the
 * floor is not raised), SM_EINVAL if n is absurdly large (over 2^40).
 * Thread-safe.
 */
SM_API int sm_reserve(sm_map *m, size_t n);

/*
 * Give memory back now: complete a running resize; shrink the table to
 * fit the entries (a table holding them at a load of at most 7/10 and
 * keeping room for one racing insert per thread that ever used stillmap
 * plus 8 -- so for a small map up to twice the smallest such table --
 * never below the reserve floor),
 * finishing that shrink on the calling thread; wait for a grace period so
 * that every table, key and hook record the map has retired is freed (and
 * their hooks called); and, with glibc, return free heap pages to the OS
 * (malloc_trim).  *released, if not NULL, receives the bytes of tables
 * and keys the map held before the call and no longer holds.
 * SM_OK; SM_EINVAL for NULL m; SM_EMISUSE if the calling thread is pinned
 * or is the reclaimer (a removal hook); SM_ENOMEM if the smaller table
 * cannot be allocated (the map keeps its table; the rest is still done).
 * Work proportional to the table on the caller's thread; may wait for
 * other threads' pins to end.  Thread-safe.
 */
SM_API int sm_trim(sm_map *m, size_t *released);

/* ---------------------------------------------------------------------
 * Iteration
 * ------------------------------------------------------------------- */
typedef struct sm_entry {
    const void *key;    /* byte keys: the key's bytes (valid during the
                           callback only); u64 keys: NULL */
    size_t len;         /* byte keys: length; u64 keys: 8 */
    uint64_t key_u64;   /* u64 keys: the key; byte keys: 0 */
    uint64_t value;
} sm_entry;

/* Return 0 to continue, anything else to stop (that value is returned). */
typedef int (*sm_visit_fn)(void *ctx, const sm_entry *e);

/*
 * Call fn for the entries of the map, weakly consistent: every key present
 * for the whole call is visited exactly once; a key inserted or deleted
 * during the call may or may not be visited; a key is visited at most once
 * unless it is deleted and inserted again during the call.  The values
 * seen are values the key held at some instant during the call.  If a
 * resize is in progress, the call first completes it (work proportional
 * to the table, like the walk itself).
 * Runs pinned (see sm_pin): fn may call any thread-safe operation on the
 * map, and a long walk delays reclamation.
 * Returns SM_OK, fn's non-zero value if it stopped, SM_EINVAL for NULL.
 * Thread-safe.
 */
SM_API int sm_for_each(sm_map *m, sm_visit_fn fn, void *ctx);

/* ---------------------------------------------------------------------
 * Pins: safe access to values that are pointers.
 *
 *   sm_pin(m);
 *   if (sm_get_u64(m, k, &v) == SM_OK) use((struct session *)(uintptr_t)v);
 *   sm_unpin(m);
 *
 * While a thread is pinned, no value it has read from the map has its
 * removal hook called, so a hook that frees the value cannot free it
 * under the reader.  Pins nest.  A pin is cheap (two thread-local stores)
 * but holds back reclamation for every map, so keep it short and never
 * block while pinned.  sm_destroy from a pinned thread is SM_EMISUSE.
 * ------------------------------------------------------------------- */

/* SM_OK; SM_EINVAL for NULL; SM_ENOMEM if the thread's record cannot be
 * allocated on first use.  Thread-safe, never blocks. */
SM_API int sm_pin(sm_map *m);
/* SM_OK; SM_EMISUSE if the thread holds no pin.  Thread-safe. */
SM_API int sm_unpin(sm_map *m);

/* ---------------------------------------------------------------------
 * Statistics
 * ------------------------------------------------------------------- */
typedef struct sm_stats {
    size_t struct_size;          /* filled in: sizeof the struct written */
    /* gauges */
    uint64_t entries;            /* as sm_len */
    uint64_t capacity;           /* slots of the current table */
    double load_factor;          /* entries / capacity */
    uint64_t table_bytes;        /* bytes of live tables (both during a
                                    resize, and the next one while the
                                    background thread prepares it) */
    uint64_t entry_bytes;        /* bytes of copied keys */
    uint64_t pending_reclaim_bytes;   /* retired, not yet freed */
    uint64_t pending_reclaim_objects;
    int transition_in_progress;  /* 1 while a resize is migrating */
    /* counters (monotonic) */
    uint64_t grows_total;
    uint64_t shrinks_total;
    uint64_t clears_total;
    uint64_t buckets_migrated_total;
    uint64_t hooks_called_total;
} sm_stats;

/* Fill *out (size bytes, normally sizeof(sm_stats); a smaller older
 * struct gets its prefix).  SM_OK; SM_EINVAL for NULL arguments or a size
 * smaller than the first two fields.  Values are read without stopping
 * writers, so they are each current but not one snapshot.
 * Thread-safe. */
SM_API int sm_get_stats(sm_map *m, sm_stats *out, size_t size);

#ifdef __cplusplus
}
#endif
#endif /* STILLMAP_H */
