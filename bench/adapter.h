/*
 * adapter.h — the interface through which sm_bench drives stillmap and
 * the peers it is compared with.  One adapter per library, u64 keys and
 * u64 values; every call goes through these function pointers, for
 * stillmap and peers alike, so the indirection costs everyone the same.
 *
 * A peer that is not thread-safe (flags without BA_THREAD_SAFE) is
 * wrapped in a reader-writer lock by bench_rwlock_wrap() for tests with
 * more than one thread, and reported as "<name>+rwlock".
 */
#ifndef STILLMAP_BENCH_ADAPTER_H
#define STILLMAP_BENCH_ADAPTER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum bench_adapter_flags {
    BA_THREAD_SAFE = 1u << 0,   /* all operations may run concurrently */
    BA_NEEDS_THREAD_INIT = 1u << 1, /* thread_init/thread_fini must be
                                       called by every thread using it */
    BA_CLEAR_EXCLUSIVE = 1u << 2   /* clear must not run concurrently with
                                      other operations: T6 puts the map
                                      behind the rwlock wrapper */
};

typedef struct bench_adapter {
    const char *name;
    unsigned flags;
    /* A new empty map; capacity_hint 0 means no hint.  NULL on failure. */
    void *(*create)(size_t capacity_hint);
    void (*destroy)(void *m);
    /* Insert or assign.  0 on success, negative on error. */
    int (*put)(void *m, uint64_t key, uint64_t val);
    /* 1 and *val set if found, 0 if absent, negative on error. */
    int (*get)(void *m, uint64_t key, uint64_t *val);
    /* 1 if removed, 0 if absent, negative on error. */
    int (*del)(void *m, uint64_t key);
    /* Remove everything.  0 on success, negative on error. */
    int (*clear)(void *m);
    size_t (*len)(void *m);
    /* Called on each benchmark thread before its first operation and
     * after its last one; NULL when the library needs nothing. */
    void (*thread_init)(void);
    void (*thread_fini)(void);
    /* Optional (NULL): write the library's own view of the map as the
     * members of a JSON object (no braces) into buf; reported as
     * "lib_stats" after the timed loop. */
    void (*describe)(void *m, char *buf, size_t len);
    /* Optional (NULL: the library offers none): give memory back after
     * many deletes, the library's own way.  0 on success, negative on
     * error.  shrink_how names what it calls (reported by T8). */
    int (*shrink)(void *m);
    const char *shrink_how;
} bench_adapter;

/* Adapters compiled in; each is defined only when its library is found
 * (see bench/CMakeLists.txt), announced by a SM_BENCH_HAVE_* macro. */
extern const bench_adapter bench_adapter_stillmap;
extern const bench_adapter bench_adapter_absl;
extern const bench_adapter bench_adapter_urcu;
extern const bench_adapter bench_adapter_tbb;
extern const bench_adapter bench_adapter_cuckoo;
extern const bench_adapter bench_adapter_stdmap;
extern const bench_adapter bench_adapter_glib;
extern const bench_adapter bench_adapter_ck;
/* Not a map: a pre-faulted array, the floor of the latency tests. */
extern const bench_adapter bench_adapter_floor;

/* String keys (T9): byte-string keys, u64 values, single thread.  Kept
 * apart from bench_adapter so the u64 adapters stay as they are; only
 * stillmap (SM_KEY_BYTES) and absl (flat_hash_map<std::string,
 * uint64_t>) provide one. */
typedef struct bench_skey_adapter {
    const char *name;
    void *(*create)(void);          /* NULL on failure */
    void (*destroy)(void *m);
    /* Insert or assign.  0 on success, negative on error. */
    int (*put)(void *m, const char *key, size_t len, uint64_t val);
    /* 1 and *val set if found, 0 if absent, negative on error. */
    int (*get)(void *m, const char *key, size_t len, uint64_t *val);
    size_t (*len)(void *m);
} bench_skey_adapter;

extern const bench_skey_adapter bench_skey_stillmap;
extern const bench_skey_adapter bench_skey_absl;

/* Wrap a non-thread-safe adapter in a pthread rwlock: get takes the read
 * lock, everything else the write lock.  The returned adapter is named
 * "<inner name>+rwlock" and has BA_THREAD_SAFE.  Returns a static
 * object (one wrapper per process). */
const bench_adapter *bench_rwlock_wrap(const bench_adapter *inner);

#ifdef __cplusplus
}
#endif
#endif /* STILLMAP_BENCH_ADAPTER_H */
