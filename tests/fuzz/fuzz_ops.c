/*
 * fuzz_ops.c — decode bytes into stillmap calls and check every result
 * against a reference model.
 *
 * Built two ways (tests/fuzz/CMakeLists.txt):
 *   fuzz_ops             libFuzzer target (clang -fsanitize=fuzzer,...)
 *   fuzz_ops_standalone  -DSM_FUZZ_STANDALONE: a main() that runs the
 *                        files named on the command line (directories:
 *                        every file in them; no argument or "-": stdin),
 *                        for corpus replay, gcc builds and AFL++-style runs.
 *
 * Each input drives two maps, one with u64 keys and one with byte-string
 * keys, both with a removal hook, through at most FZ_MAX_OPS operations
 * (FZ_MAX_CALLS map calls in all, bulk operations included):
 * get, put, load_or_store, swap, cas, delete, load_and_delete, cad,
 * clear, reserve (small n), trim, for_each (plain, stopped early, deleting
 * or replacing what it visits from inside the callback), len, get_stats
 * (every struct size class), pin/unpin, bulk inserts and deletes (to grow
 * and shrink the table), one-shot allocation failures, wrong-kind and NULL
 * arguments, and full comparisons with the model.  Keys include the empty
 * key (also as a NULL pointer), keys with NUL bytes, keys of SM_KEY_MAX
 * bytes and keys one or two bytes over it, u64 keys 0 and near UINT64_MAX.
 *
 * Checks, besides every return code and output:
 *   - the removal hook is called exactly once for every value that left
 *     the map, with the right reason, and never for a store of an equal
 *     value; counted per value and reason, compared exactly after every
 *     sm_trim (which waits for the hooks) and after sm_destroy;
 *   - no value removed while the thread is pinned has its hook called
 *     before the pin ends (an unpin variant first sleeps 3 ms, giving
 *     the reclaimer the time to get it wrong);
 *   - an operation that returns SM_ENOMEM changed nothing;
 *   - sm_len and the statistics agree with the model; after sm_trim the
 *     table is no larger than the entries (or the reserve floor) need,
 *     and unless the background thread started a resize meanwhile, no
 *     reclamation is pending and no resize runs;
 *   - after sm_destroy the map's allocator has no block outstanding.
 * Any mismatch prints what differed and calls abort().  FUZZ_OPS_TRACE=1
 * in the environment prints every operation as it is decoded.
 *
 * Input format (bytes past the end read as 0):
 *   byte 0  flags: bit 0/1 the u64/byte map uses the failing allocator
 *           (else the default one), bits 2-4 initial_capacity class,
 *           bit 5 fixed hash seed (seed from the next byte), bit 6 the
 *           first sm_create of a map on the failing allocator fails
 *   then operations: an opcode byte (bits 0-4 operation, see OP_* below,
 *   values 21-31 repeat 0-10; bits 5-6 variant; bit 7 which map: 0 u64,
 *   1 bytes) followed by the operand bytes that operation reads: a key
 *   selector (u64: 0x00-0x7f key 0-15, 0x80-0xbf UINT64_MAX-0..15,
 *   0xc0-0xdf 8 raw bytes follow, 0xe0-0xff a power of two; bytes:
 *   0x00-0x7f one of 16 short keys, id 0 and 8 empty (8 as NULL), 0x80-0xbf
 *   a length byte and that many raw bytes, 0xc0-0xff keys of SM_KEY_MAX-3
 *   .. SM_KEY_MAX+2 bytes), a value selector (0x00-0x3f 0-7, 0x40-0x4f
 *   UINT64_MAX-0..3, 0x50-0x5f the key's current value, 0x60-0xff a fresh
 *   unique value), counts and sizes as single bytes.
 *
 * One map made on the first input lives for the whole process, so the
 * background thread is not stopped and restarted for every input.
 */
#if !defined(_POSIX_C_SOURCE) && !defined(_GNU_SOURCE)
#define _POSIX_C_SOURCE 200809L      /* nanosleep, stat, opendir */
#endif

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stillmap.h"

#define FZ_MAX_OPS 1024        /* operations decoded per input */
#define FZ_MAX_CALLS 12000     /* map calls per input, bulk included */
#define FZ_MAX_TRIMS 6         /* each one waits for a grace period */
#define FZ_MAX_PIN 4           /* pin nesting depth */
#define FZ_MAX_PINNED_REMOVALS 4096
#define FZ_MAX_PIN_WAITS 2     /* 3 ms sleeps while pinned */

/* After sm_trim the table may be at most this many times the size that
 * fits the entries: the header promises a fit that keeps room for racing
 * inserts, up to twice the smallest table for a small map. */
#ifndef FZ_TRIM_SLACK
#define FZ_TRIM_SLACK 2
#endif

/* ---------------------------------------------------------------------
 * Failure reporting
 * ------------------------------------------------------------------- */
static int fz_opno = -1;               /* index of the current operation */
static const char *fz_opname = "setup";
static const uint8_t *fz_input;        /* the input being run */
static size_t fz_input_size;

/* Name of the file being run (standalone driver), else NULL. */
static const char *fz_input_name;

/* Keep the failing input even if the process dies in another way before
 * libFuzzer saves it (e.g. a sanitizer report from the background thread
 * racing the abort).  The standalone driver names its file instead. */
static void save_input(void) {
    if (fz_input_name) {
        fprintf(stderr, "fuzz_ops: failing input: %s\n", fz_input_name);
        return;
    }
    char name[64];
    snprintf(name, sizeof name, "fuzz_ops-failed-%ld.bin", (long)time(NULL));
    FILE *f = fopen(name, "wb");
    if (!f)
        return;
    if (fz_input_size)
        fwrite(fz_input, 1, fz_input_size, f);
    fclose(f);
    fprintf(stderr, "fuzz_ops: the input was saved as %s\n", name);
}

#if defined(__GNUC__)
__attribute__((noreturn, format(printf, 2, 3)))
#endif
static void fz_fail(int line, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "fuzz_ops.c:%d: MISMATCH at operation %d (%s): ", line,
            fz_opno, fz_opname);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    save_input();
    fflush(stderr);
    abort();
}

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (!(cond))                                                         \
            fz_fail(__LINE__, __VA_ARGS__);                                  \
    } while (0)

#define CHECK_RC(got, want)                                                  \
    do {                                                                     \
        int fz_g_ = (got), fz_w_ = (want);                                   \
        if (fz_g_ != fz_w_)                                                  \
            fz_fail(__LINE__, "%s returned %s, the model says %s", #got,     \
                    sm_errname(fz_g_), sm_errname(fz_w_));                   \
    } while (0)

/* ---------------------------------------------------------------------
 * Input reader
 * ------------------------------------------------------------------- */
typedef struct rd {
    const uint8_t *p;
    size_t n, i;
} rd;

static uint8_t rd_u8(rd *r) { return r->i < r->n ? r->p[r->i++] : 0; }

static uint64_t rd_u64(rd *r) {
    uint64_t v = 0;
    for (int k = 0; k < 8; k++)
        v |= (uint64_t)rd_u8(r) << (8 * k);
    return v;
}

/* ---------------------------------------------------------------------
 * Values and their hook accounting.
 *
 * Values are small constants 0..7 (shared by many keys), UINT64_MAX-0..3,
 * or fresh ids (each stored at most once).  Each has an index into the
 * per-map hook tables.
 * ------------------------------------------------------------------- */
#define FZ_NSMALL 8
#define FZ_NHIGH 4
#define FZ_FRESH_BASE 0x5eed000000000000ull
#define FZ_MAX_FRESH (FZ_MAX_CALLS + 16)
#define FZ_NIDX (FZ_NSMALL + FZ_NHIGH + FZ_MAX_FRESH)
#define FZ_NREASON 5 /* index: sm_reason (1..4) */

static uint64_t fz_fresh_used;

static long val_index(uint64_t v) {
    if (v < FZ_NSMALL)
        return (long)v;
    if (v >= UINT64_MAX - (FZ_NHIGH - 1))
        return (long)(FZ_NSMALL + (UINT64_MAX - v));
    if (v >= FZ_FRESH_BASE && v - FZ_FRESH_BASE < FZ_MAX_FRESH)
        return (long)(FZ_NSMALL + FZ_NHIGH + (v - FZ_FRESH_BASE));
    return -1;
}

static uint64_t fresh_value(void) {
    if (fz_fresh_used >= FZ_MAX_FRESH)
        return 5;
    return FZ_FRESH_BASE + fz_fresh_used++;
}

static size_t touched_idx(void) {
    return FZ_NSMALL + FZ_NHIGH + (size_t)fz_fresh_used;
}

/* ---------------------------------------------------------------------
 * Counting allocator with one-shot failures.  Blocks carry their size so
 * that free can check it; the background reclaimer frees too, hence the
 * atomics.
 * ------------------------------------------------------------------- */
typedef struct fz_alloc {
    sm_allocator base;
    atomic_llong outstanding;
    atomic_llong bad_frees;
    atomic_int armed;
    atomic_llong countdown;
    atomic_llong injected;
} fz_alloc;

#define FZ_HDR 16u
#define FZ_MAGIC 0x6675a110c8ull

static void *fz_malloc(void *ctx, size_t size) {
    fz_alloc *a = (fz_alloc *)ctx;
    if (atomic_load(&a->armed) && atomic_fetch_sub(&a->countdown, 1) == 1) {
        atomic_store(&a->armed, 0);
        atomic_fetch_add(&a->injected, 1);
        return NULL;
    }
    if (size > SIZE_MAX - FZ_HDR)
        return NULL;
    unsigned char *p = (unsigned char *)malloc(size + FZ_HDR);
    if (!p)
        return NULL;
    uint64_t hdr[2] = {(uint64_t)size, FZ_MAGIC};
    memcpy(p, hdr, sizeof hdr);
    atomic_fetch_add(&a->outstanding, 1);
    return p + FZ_HDR;
}

static void fz_free(void *ctx, void *ptr, size_t size) {
    fz_alloc *a = (fz_alloc *)ctx;
    if (!ptr)
        return;
    unsigned char *p = (unsigned char *)ptr - FZ_HDR;
    uint64_t hdr[2];
    memcpy(hdr, p, sizeof hdr);
    if (hdr[1] != FZ_MAGIC || hdr[0] != (uint64_t)size) {
        atomic_fetch_add(&a->bad_frees, 1);
        return;
    }
    hdr[1] = 0;
    memcpy(p, hdr, sizeof hdr);
    atomic_fetch_sub(&a->outstanding, 1);
    free(p);
}

static void fz_alloc_init(fz_alloc *a) {
    a->base.malloc = fz_malloc;
    a->base.free = fz_free;
    a->base.ctx = a;
    atomic_init(&a->outstanding, 0);
    atomic_init(&a->bad_frees, 0);
    atomic_init(&a->armed, 0);
    atomic_init(&a->countdown, 0);
    atomic_init(&a->injected, 0);
}

/* ---------------------------------------------------------------------
 * The reference model: a chained hash table of byte strings (u64 keys
 * are stored as their 8 little-endian bytes).
 * ------------------------------------------------------------------- */
#define MD_BUCKETS 4096

typedef struct md_ent {
    struct md_ent *next;
    uint64_t val;
    unsigned mark;          /* walk in which it was last visited */
    size_t len;
    unsigned char key[];
} md_ent;

typedef struct model {
    md_ent *b[MD_BUCKETS];
    size_t count;
    size_t key_bytes;       /* sum of key lengths */
} model;

static size_t md_hash(const void *k, size_t len) {
    const unsigned char *p = (const unsigned char *)k;
    uint64_t h = 0x9e3779b97f4a7c15ull ^ len;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    h ^= h >> 29;
    return (size_t)(h & (MD_BUCKETS - 1));
}

static md_ent *md_find(model *md, const void *k, size_t len) {
    for (md_ent *e = md->b[md_hash(k, len)]; e; e = e->next)
        if (e->len == len && (len == 0 || memcmp(e->key, k, len) == 0))
            return e;
    return NULL;
}

static md_ent *md_insert(model *md, const void *k, size_t len, uint64_t v) {
    md_ent *e = (md_ent *)malloc(sizeof *e + (len ? len : 1));
    if (!e)
        abort();
    e->len = len;
    e->val = v;
    e->mark = 0;
    if (len)
        memcpy(e->key, k, len);
    size_t h = md_hash(k, len);
    e->next = md->b[h];
    md->b[h] = e;
    md->count++;
    md->key_bytes += len;
    return e;
}

static void md_remove(model *md, md_ent *e) {
    md_ent **pp = &md->b[md_hash(e->key, e->len)];
    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    md->count--;
    md->key_bytes -= e->len;
    free(e);
}

/* ---------------------------------------------------------------------
 * One fuzzed map
 * ------------------------------------------------------------------- */
typedef struct fz_map {
    const char *name;
    sm_key_kind kind;
    sm_map *m;
    model md;
    fz_alloc al;
    int use_al;
    size_t init_cap;
    size_t max_reserve;         /* largest successful sm_reserve */
    unsigned long long clears;
    unsigned long long expect_total;
    unsigned *expect;           /* [FZ_NIDX][FZ_NREASON] */
    atomic_uint *hooked;        /* [FZ_NIDX][FZ_NREASON] */
    atomic_ullong hook_calls;
    atomic_ullong hook_bad;
    sm_stats last;              /* monotonic counters of the last stats */
} fz_map;

static fz_map fz_maps[2];
static int fz_pin_depth;
static fz_map *fz_armed;        /* map whose allocator may fail this op */
static unsigned long long fz_calls;
static unsigned fz_walk_stamp;

/* values removed while pinned: their hook count may not exceed bound
 * before the pin ends */
typedef struct pinned_removal {
    fz_map *fm;
    long idx;
    unsigned bound;
} pinned_removal;
static pinned_removal fz_pinned[FZ_MAX_PINNED_REMOVALS];
static int fz_npinned;

static void hook_fn(void *ctx, uint64_t value, sm_reason why) {
    fz_map *fm = (fz_map *)ctx;
    long idx = val_index(value);
    int r = (int)why;
    if (idx < 0 || r < SM_REMOVED_DELETE || r > SM_REMOVED_DESTROY) {
        atomic_fetch_add(&fm->hook_bad, 1);
        return;
    }
    atomic_fetch_add(&fm->hooked[idx * FZ_NREASON + r], 1);
    atomic_fetch_add(&fm->hook_calls, 1);
}

static unsigned expect_of(const fz_map *fm, long idx) {
    unsigned t = 0;
    for (int r = 1; r < FZ_NREASON; r++)
        t += fm->expect[idx * FZ_NREASON + r];
    return t;
}

static unsigned hooked_of(fz_map *fm, long idx) {
    unsigned t = 0;
    for (int r = 1; r < FZ_NREASON; r++)
        t += atomic_load(&fm->hooked[idx * FZ_NREASON + r]);
    return t;
}

/* The model says value v left the map for reason why. */
static void removed(fz_map *fm, uint64_t v, sm_reason why) {
    long idx = val_index(v);
    CHECK(idx >= 0, "%s: value 0x%llx is not one the fuzzer stores", fm->name,
          (unsigned long long)v);
    if (fz_pin_depth > 0 && fz_npinned < FZ_MAX_PINNED_REMOVALS) {
        pinned_removal pr = {fm, idx, expect_of(fm, idx)};
        fz_pinned[fz_npinned++] = pr;
    }
    fm->expect[idx * FZ_NREASON + why]++;
    fm->expect_total++;
}

/* Every hook that is due has run: compare per value and reason. */
/* On a hook mismatch: every value whose counts differ, then the same
 * after a pause (to tell a hook that came late from one that never
 * comes), then abort. */
#if defined(__GNUC__)
__attribute__((noreturn))
#endif
static void hook_mismatch(fz_map *fm, const char *when) {
    size_t n = touched_idx();
    save_input();
    for (int round = 0; round < 2; round++) {
        if (round == 1) {
            struct timespec ts = {0, 200000000};
            nanosleep(&ts, NULL);
            fprintf(stderr, "  ... 200 ms later:\n");
        }
        int shown = 0;
        for (size_t i = 0; i < n && shown < 20; i++) {
            int differs = 0;
            for (int r = 1; r < FZ_NREASON; r++)
                differs |= fm->expect[i * FZ_NREASON + r] !=
                           atomic_load(&fm->hooked[i * FZ_NREASON + r]);
            if (!differs)
                continue;
            shown++;
            fprintf(stderr, "  %s: value index %zu: hook calls by reason "
                    "(delete, replace, clear, destroy) %u %u %u %u, model "
                    "%u %u %u %u\n", fm->name, i,
                    atomic_load(&fm->hooked[i * FZ_NREASON + 1]),
                    atomic_load(&fm->hooked[i * FZ_NREASON + 2]),
                    atomic_load(&fm->hooked[i * FZ_NREASON + 3]),
                    atomic_load(&fm->hooked[i * FZ_NREASON + 4]),
                    fm->expect[i * FZ_NREASON + 1], fm->expect[i * FZ_NREASON + 2],
                    fm->expect[i * FZ_NREASON + 3], fm->expect[i * FZ_NREASON + 4]);
        }
        fprintf(stderr, "  %s: %llu hook calls in all, model %llu\n", fm->name,
                (unsigned long long)atomic_load(&fm->hook_calls),
                fm->expect_total);
    }
    fz_fail(__LINE__, "%s: removal hooks differ from the model (%s)",
            fm->name, when);
}

static void check_hooks_exact(fz_map *fm, const char *when) {
    CHECK(atomic_load(&fm->hook_bad) == 0,
          "%s: the hook got %llu values or reasons never used (%s)", fm->name,
          (unsigned long long)atomic_load(&fm->hook_bad), when);
    size_t n = touched_idx();
    for (size_t i = 0; i < n * FZ_NREASON; i++)
        if (fm->expect[i] != atomic_load(&fm->hooked[i]))
            hook_mismatch(fm, when);
    if (atomic_load(&fm->hook_calls) != fm->expect_total)
        hook_mismatch(fm, when);
}

/* Before the outermost unpin: nothing removed while pinned was hooked. */
static void check_pinned_removals(void) {
    for (int i = 0; i < fz_npinned; i++) {
        pinned_removal *pr = &fz_pinned[i];
        unsigned got = hooked_of(pr->fm, pr->idx);
        CHECK(got <= pr->bound,
              "%s: value index %ld was removed while pinned and its hook ran "
              "before the pin ended (%u calls, at most %u allowed)",
              pr->fm->name, pr->idx, got, pr->bound);
    }
    fz_npinned = 0;
}

/* ENOMEM is a legal outcome only while this map's allocator is armed. */
static int nomem(fz_map *fm, int rc) {
    if (rc != SM_ENOMEM)
        return 0;
    CHECK(fz_armed == fm, "%s: SM_ENOMEM without an injected failure",
          fm->name);
    return 1;
}

/* ---------------------------------------------------------------------
 * Keys
 * ------------------------------------------------------------------- */
typedef struct fz_key {
    uint64_t u;                 /* u64 maps */
    const void *p;              /* byte maps: what is passed */
    size_t len;
    const void *mp;             /* model key bytes */
    size_t mlen;
    int too_long;
} fz_key;

static unsigned char fz_big[SM_KEY_MAX + 8];
static unsigned char fz_raw[64];
static unsigned char fz_u64buf[8];
static unsigned char fz_bulkbuf[16];

static void key_u64_set(fz_key *k, uint64_t u) {
    k->u = u;
    for (int i = 0; i < 8; i++)
        fz_u64buf[i] = (unsigned char)(u >> (8 * i));
    k->mp = fz_u64buf;
    k->mlen = 8;
    k->p = NULL;
    k->len = 0;
    k->too_long = 0;
}

static void read_key(fz_map *fm, rd *r, fz_key *k) {
    uint8_t sel = rd_u8(r);
    if (fm->kind == SM_KEY_U64) {
        uint64_t u;
        switch (sel >> 6) {
        case 0: case 1: u = sel & 15; break;
        case 2: u = UINT64_MAX - (sel & 15); break;
        default: u = (sel & 32) ? (uint64_t)1 << (sel & 31) << (sel & 31) : rd_u64(r);
        }
        key_u64_set(k, u);
        return;
    }
    k->u = 0;
    k->too_long = 0;
    static const char small[] = "abcdefg";
    static const unsigned char zeros[8] = {0};
    switch (sel >> 6) {
    case 0: case 1: {
        unsigned id = sel & 15;
        k->len = id & 7;
        if (id == 8)
            k->p = NULL;                        /* the empty key, as NULL */
        else
            k->p = id < 8 ? (const void *)small : (const void *)zeros;
        break;
    }
    case 2: {
        size_t len = rd_u8(r) & 63;
        for (size_t i = 0; i < len; i++)
            fz_raw[i] = rd_u8(r);
        k->p = fz_raw;
        k->len = len;
        break;
    }
    default: {
        unsigned v = sel & 63;
        size_t len = (v & 32) ? SM_KEY_MAX + 1 + (v & 1) : SM_KEY_MAX - (v & 3);
        memset(fz_big, (int)(0x11 * ((v >> 2) & 7)), len);
        fz_big[0] = (unsigned char)v;
        k->p = fz_big;
        k->len = len;
        k->too_long = len > SM_KEY_MAX;
    }
    }
    k->mp = k->p ? k->p : (const void *)"";
    k->mlen = k->len;
}

static void bulk_key(fz_map *fm, unsigned base, unsigned i, fz_key *k) {
    if (fm->kind == SM_KEY_U64) {
        key_u64_set(k, ((uint64_t)1 << 60) | ((uint64_t)base << 32) | i);
        return;
    }
    fz_bulkbuf[0] = 'B';
    fz_bulkbuf[1] = (unsigned char)base;
    fz_bulkbuf[2] = (unsigned char)i;
    fz_bulkbuf[3] = (unsigned char)(i >> 8);
    memset(fz_bulkbuf + 4, 0, 4);
    k->p = fz_bulkbuf;
    k->len = 4 + i % 3;
    k->mp = k->p;
    k->mlen = k->len;
    k->u = 0;
    k->too_long = 0;
}

/* value selector; cur is the key's value in the model, if any */
static uint64_t read_value(rd *r, const md_ent *cur) {
    uint8_t sel = rd_u8(r);
    if (sel < 0x40)
        return sel & 7;
    if (sel < 0x50)
        return UINT64_MAX - (sel & 3);
    if (sel < 0x60)
        return cur ? cur->val : (uint64_t)(sel & 7);
    return fresh_value();
}

/* ---------------------------------------------------------------------
 * Calls, by key kind
 * ------------------------------------------------------------------- */
enum {
    K_GET, K_PUT, K_LOS, K_SWAP, K_CAS, K_DEL, K_LAD, K_CAD
};

static int call_key_op(fz_map *fm, int op, const fz_key *k, uint64_t a,
                       uint64_t b, uint64_t *out) {
    sm_map *m = fm->m;
    fz_calls++;
    if (fm->kind == SM_KEY_U64) {
        switch (op) {
        case K_GET: return sm_get_u64(m, k->u, out);
        case K_PUT: return sm_put_u64(m, k->u, a);
        case K_LOS: return sm_load_or_store_u64(m, k->u, a, out);
        case K_SWAP: return sm_swap_u64(m, k->u, a, out);
        case K_CAS: return sm_cas_u64(m, k->u, a, b);
        case K_DEL: return sm_delete_u64(m, k->u);
        case K_LAD: return sm_load_and_delete_u64(m, k->u, out);
        default: return sm_cad_u64(m, k->u, a);
        }
    }
    switch (op) {
    case K_GET: return sm_get(m, k->p, k->len, out);
    case K_PUT: return sm_put(m, k->p, k->len, a);
    case K_LOS: return sm_load_or_store(m, k->p, k->len, a, out);
    case K_SWAP: return sm_swap(m, k->p, k->len, a, out);
    case K_CAS: return sm_cas(m, k->p, k->len, a, b);
    case K_DEL: return sm_delete(m, k->p, k->len);
    case K_LAD: return sm_load_and_delete(m, k->p, k->len, out);
    default: return sm_cad(m, k->p, k->len, a);
    }
}

static const char *const key_op_names[] = {
    "get", "put", "load_or_store", "swap", "cas", "delete",
    "load_and_delete", "cad"};

/* Run one keyed operation and check it against the model.
 * a: value / expected; b: desired (cas).  with_out 0 passes NULL. */
/* The model after a store of a under k (put, swap): the old value, if
 * different, leaves the map with reason "replaced". */
static void model_store(fz_map *fm, md_ent *e, const fz_key *k, uint64_t a) {
    if (!e) {
        md_insert(&fm->md, k->mp, k->mlen, a);
        return;
    }
    if (e->val != a)
        removed(fm, e->val, SM_REMOVED_REPLACE);
    e->val = a;
}

static void key_op(fz_map *fm, int op, const fz_key *k, uint64_t a,
                   uint64_t b, int with_out) {
    const uint64_t sentinel = 0xdeadbeefcafef00dull;
    uint64_t out = sentinel;
    int rc = call_key_op(fm, op, k, a, b, with_out ? &out : NULL);
    const char *nm = key_op_names[op];
    if (k->too_long) {
        CHECK(rc == SM_EKEYLEN, "%s: %s of a %zu-byte key returned %s, "
              "expected SM_EKEYLEN", fm->name, nm, k->len, sm_errname(rc));
        return;
    }
    if (nomem(fm, rc))
        return;
    md_ent *e = md_find(&fm->md, k->mp, k->mlen);
    switch (op) {
    case K_GET:
        CHECK_RC(rc, e ? SM_OK : SM_NOTFOUND);
        if (e && with_out)
            CHECK(out == e->val, "%s: get returned 0x%llx, model 0x%llx",
                  fm->name, (unsigned long long)out,
                  (unsigned long long)e->val);
        break;
    case K_PUT:
        CHECK_RC(rc, SM_OK);
        model_store(fm, e, k, a);
        break;
    case K_LOS:
        CHECK_RC(rc, e ? SM_EXISTS : SM_OK);
        if (with_out)
            CHECK(out == (e ? e->val : a),
                  "%s: load_or_store *actual 0x%llx, model 0x%llx", fm->name,
                  (unsigned long long)out,
                  (unsigned long long)(e ? e->val : a));
        if (!e)
            md_insert(&fm->md, k->mp, k->mlen, a);
        break;
    case K_SWAP:
        CHECK_RC(rc, e ? SM_OK : SM_NOTFOUND);
        if (e) {
            if (with_out)
                CHECK(out == e->val, "%s: swap *prev 0x%llx, model 0x%llx",
                      fm->name, (unsigned long long)out,
                      (unsigned long long)e->val);
        }
        model_store(fm, e, k, a);
        break;
    case K_CAS:
        if (!e) {
            CHECK_RC(rc, SM_NOTFOUND);
        } else if (e->val != a) {
            CHECK_RC(rc, SM_MISMATCH);
        } else {
            CHECK_RC(rc, SM_OK);
            if (b != e->val)
                removed(fm, e->val, SM_REMOVED_REPLACE);
            e->val = b;
        }
        break;
    case K_DEL:
    case K_LAD:
        CHECK_RC(rc, e ? SM_OK : SM_NOTFOUND);
        if (e) {
            if (op == K_LAD && with_out)
                CHECK(out == e->val,
                      "%s: load_and_delete *val 0x%llx, model 0x%llx",
                      fm->name, (unsigned long long)out,
                      (unsigned long long)e->val);
            removed(fm, e->val, SM_REMOVED_DELETE);
            md_remove(&fm->md, e);
        }
        break;
    default: /* cad */
        if (!e) {
            CHECK_RC(rc, SM_NOTFOUND);
        } else if (e->val != a) {
            CHECK_RC(rc, SM_MISMATCH);
        } else {
            CHECK_RC(rc, SM_OK);
            removed(fm, e->val, SM_REMOVED_DELETE);
            md_remove(&fm->md, e);
        }
    }
}

/* ---------------------------------------------------------------------
 * Whole-map checks
 * ------------------------------------------------------------------- */
/* Buckets for n entries at a load of at most 7/10 (3 slots per bucket),
 * at least 8: what the header promises a trimmed table is sized for. */
static uint64_t fit_slots(size_t n) {
    uint64_t b = 8;
    while (b * 3 * 7 <= (uint64_t)n * 10)
        b <<= 1;
    return b * 3;
}

static sm_stats get_stats_full(fz_map *fm) {
    sm_stats st;
    memset(&st, 0, sizeof st);
    int rc = sm_get_stats(fm->m, &st, sizeof st);
    CHECK_RC(rc, SM_OK);
    return st;
}

static void check_stats(fz_map *fm, const sm_stats *st) {
    CHECK(st->struct_size == sizeof *st, "%s: struct_size %zu", fm->name,
          st->struct_size);
    CHECK(st->entries == fm->md.count, "%s: stats entries %llu, model %zu",
          fm->name, (unsigned long long)st->entries, fm->md.count);
    CHECK(st->capacity > 0, "%s: capacity 0", fm->name);
    if (!st->transition_in_progress)
        CHECK(st->entries <= st->capacity,
              "%s: %llu entries in a table of %llu slots", fm->name,
              (unsigned long long)st->entries,
              (unsigned long long)st->capacity);
    CHECK(st->load_factor == (double)st->entries / (double)st->capacity,
          "%s: load_factor %g for %llu / %llu", fm->name, st->load_factor,
          (unsigned long long)st->entries, (unsigned long long)st->capacity);
    if (fm->kind == SM_KEY_U64)
        CHECK(st->entry_bytes == 0, "%s: entry_bytes %llu", fm->name,
              (unsigned long long)st->entry_bytes);
    else
        CHECK(st->entry_bytes >= fm->md.key_bytes,
              "%s: entry_bytes %llu below the key bytes %zu", fm->name,
              (unsigned long long)st->entry_bytes, fm->md.key_bytes);
    if (fm->kind == SM_KEY_BYTES && fm->md.count == 0)
        CHECK(st->entry_bytes == 0, "%s: entry_bytes %llu with no entry",
              fm->name, (unsigned long long)st->entry_bytes);
    CHECK(st->clears_total == fm->clears, "%s: clears_total %llu, model %llu",
          fm->name, (unsigned long long)st->clears_total, fm->clears);
    unsigned long long calls = atomic_load(&fm->hook_calls);
    CHECK(st->hooks_called_total <= calls && calls <= fm->expect_total,
          "%s: hooks_called_total %llu, hook calls seen %llu, removals %llu",
          fm->name, (unsigned long long)st->hooks_called_total, calls,
          fm->expect_total);
    CHECK(st->grows_total >= fm->last.grows_total &&
          st->shrinks_total >= fm->last.shrinks_total &&
          st->buckets_migrated_total >= fm->last.buckets_migrated_total &&
          st->hooks_called_total >= fm->last.hooks_called_total,
          "%s: a monotonic counter went down", fm->name);
    fm->last = *st;
}

static void check_len(fz_map *fm) {
    size_t n = sm_len(fm->m);
    CHECK(n == fm->md.count, "%s: sm_len %zu, model %zu", fm->name, n,
          fm->md.count);
}

/* Every model entry is found with its value. */
static void verify_all(fz_map *fm) {
    for (size_t b = 0; b < MD_BUCKETS; b++)
        for (md_ent *e = fm->md.b[b]; e; e = e->next) {
            uint64_t v = 0;
            int rc;
            fz_calls++;
            if (fm->kind == SM_KEY_U64) {
                uint64_t u = 0;
                for (int i = 0; i < 8; i++)
                    u |= (uint64_t)e->key[i] << (8 * i);
                rc = sm_get_u64(fm->m, u, &v);
            } else {
                rc = sm_get(fm->m, e->len ? e->key : NULL, e->len, &v);
            }
            CHECK(rc == SM_OK && v == e->val,
                  "%s: verify: a %zu-byte key gave %s, value 0x%llx, model "
                  "0x%llx", fm->name, e->len, sm_errname(rc),
                  (unsigned long long)v, (unsigned long long)e->val);
        }
    check_len(fm);
}

/* ---------------------------------------------------------------------
 * for_each
 * ------------------------------------------------------------------- */
typedef struct walk {
    fz_map *fm;
    int mode;           /* 0 check, 1 stop early, 2 delete, 3 replace */
    size_t visits;
    size_t stop_after;
    int stop_rc;
} walk;

static int walk_fn(void *ctx, const sm_entry *en) {
    walk *w = (walk *)ctx;
    fz_map *fm = w->fm;
    const void *kp;
    size_t kl;
    unsigned char kb[8];
    if (fm->kind == SM_KEY_U64) {
        CHECK(en->key == NULL && en->len == 8,
              "%s: walk entry of a u64 map with key %p, len %zu", fm->name,
              en->key, en->len);
        for (int i = 0; i < 8; i++)
            kb[i] = (unsigned char)(en->key_u64 >> (8 * i));
        kp = kb;
        kl = 8;
    } else {
        CHECK(en->key_u64 == 0 && (en->key != NULL || en->len == 0),
              "%s: walk entry of a byte map with key_u64 %llu", fm->name,
              (unsigned long long)en->key_u64);
        CHECK(en->len <= SM_KEY_MAX, "%s: walk entry of %zu bytes", fm->name,
              en->len);
        kp = en->len ? en->key : "";
        kl = en->len;
    }
    md_ent *e = md_find(&fm->md, kp, kl);
    CHECK(e != NULL, "%s: walk visited a %zu-byte key the model does not "
          "hold", fm->name, kl);
    CHECK(e->mark != fz_walk_stamp, "%s: walk visited a %zu-byte key twice",
          fm->name, kl);
    e->mark = fz_walk_stamp;
    CHECK(en->value == e->val, "%s: walk saw value 0x%llx, model 0x%llx",
          fm->name, (unsigned long long)en->value,
          (unsigned long long)e->val);
    w->visits++;
    if (w->mode == 2 || w->mode == 3) {
        /* change the visited key from inside the callback */
        fz_key k;
        if (fm->kind == SM_KEY_U64) {
            key_u64_set(&k, en->key_u64);
        } else {
            k.u = 0;
            k.p = en->key;
            k.len = en->len;
            k.mp = kp;
            k.mlen = kl;
            k.too_long = 0;
        }
        if (w->mode == 2)
            key_op(fm, K_LAD, &k, 0, 0, 1);
        else
            key_op(fm, K_SWAP, &k, fresh_value(), 0, 1);
    }
    if (w->mode == 1 && w->visits == w->stop_after)
        return w->stop_rc;
    return 0;
}

static void do_walk(fz_map *fm, int mode, rd *r) {
    walk w = {fm, mode, 0, 0, 0};
    if (mode == 1) {
        w.stop_after = 1 + (rd_u8(r) & 7);
        int8_t s = (int8_t)rd_u8(r);
        w.stop_rc = s ? s : 1;
    }
    size_t before = fm->md.count;
    fz_walk_stamp++;
    int rc = sm_for_each(fm->m, walk_fn, &w);
    fz_calls += before + 1;
    if (mode == 1 && before >= w.stop_after) {
        CHECK(rc == w.stop_rc && w.visits == w.stop_after,
              "%s: walk to stop after %zu returned %d after %zu visits",
              fm->name, w.stop_after, rc, w.visits);
    } else {
        CHECK(rc == SM_OK && w.visits == before,
              "%s: walk returned %d after %zu visits, model holds %zu",
              fm->name, rc, w.visits, before);
    }
    check_len(fm);
}

/* ---------------------------------------------------------------------
 * Operations
 * ------------------------------------------------------------------- */
enum {
    OP_GET, OP_PUT, OP_LOS, OP_SWAP, OP_CAS, OP_DEL, OP_LAD, OP_CAD,
    OP_CLEAR, OP_RESERVE, OP_TRIM, OP_WALK, OP_LEN, OP_STATS, OP_PIN,
    OP_UNPIN, OP_BULK_PUT, OP_BULK_DEL, OP_ARM, OP_BADARGS, OP_VERIFY,
    OP_NOPS
};

static const char *const op_names[OP_NOPS] = {
    "get", "put", "load_or_store", "swap", "cas", "delete",
    "load_and_delete", "cad", "clear", "reserve", "trim", "for_each",
    "len", "get_stats", "pin", "unpin", "bulk put", "bulk delete",
    "arm allocation failure", "bad arguments", "verify"};

static int fz_trims;
static int fz_pin_waits;

/* resizes_before: grows_total + shrinks_total read before the sm_trim. */
static void after_trim_checks(fz_map *fm, int rc, uint64_t resizes_before) {
    check_hooks_exact(fm, "after sm_trim");
    sm_stats st = get_stats_full(fm);
    check_stats(fm, &st);
    /* The background thread may start a resize of its own at any time
     * (a table over the growth load, an idle map under the shrink load),
     * which leaves a transition running or a retired table pending.  If
     * no resize started since before the call, there is neither. */
    if (st.grows_total + st.shrinks_total == resizes_before) {
        CHECK(st.pending_reclaim_objects == 0 && st.pending_reclaim_bytes == 0,
              "%s: after sm_trim %llu objects, %llu bytes still pending",
              fm->name, (unsigned long long)st.pending_reclaim_objects,
              (unsigned long long)st.pending_reclaim_bytes);
        CHECK(!st.transition_in_progress, "%s: a resize runs after sm_trim",
              fm->name);
    }
    CHECK(st.capacity >= fm->max_reserve && st.capacity >= fm->init_cap,
          "%s: capacity %llu below the reserve %zu / initial capacity %zu",
          fm->name, (unsigned long long)st.capacity, fm->max_reserve,
          fm->init_cap);
    if (rc == SM_OK) {
        uint64_t fit = fit_slots(fm->md.count);
        uint64_t fl1 = fit_slots(fm->max_reserve), fl2 = fit_slots(fm->init_cap);
        if (fl1 > fit)
            fit = fl1;
        if (fl2 > fit)
            fit = fl2;
        CHECK(st.capacity <= fit * FZ_TRIM_SLACK,
              "%s: after sm_trim the table has %llu slots; %zu entries "
              "(reserve %zu, initial %zu) fit in %llu", fm->name,
              (unsigned long long)st.capacity, fm->md.count, fm->max_reserve,
              fm->init_cap, (unsigned long long)fit);
    }
}

static void do_badargs(fz_map *fm, int variant) {
    sm_map *m = fm->m;
    uint64_t v = 0;
    size_t rel = 77;
    switch (variant) {
    case 0:
        if (fm->kind == SM_KEY_U64) {
            CHECK_RC(sm_put(m, "k", 1, 1), SM_EKIND);
            CHECK_RC(sm_get(m, "k", 1, &v), SM_EKIND);
            CHECK_RC(sm_cad(m, "", 0, 1), SM_EKIND);
        } else {
            CHECK_RC(sm_put_u64(m, 1, 1), SM_EKIND);
            CHECK_RC(sm_get_u64(m, 1, &v), SM_EKIND);
            CHECK_RC(sm_swap_u64(m, 1, 1, &v), SM_EKIND);
        }
        break;
    case 1:
        CHECK_RC(sm_put_u64(NULL, 1, 1), SM_EINVAL);
        CHECK_RC(sm_get(NULL, "k", 1, &v), SM_EINVAL);
        CHECK_RC(sm_clear(NULL), SM_EINVAL);
        CHECK_RC(sm_reserve(NULL, 1), SM_EINVAL);
        CHECK(sm_len(NULL) == 0, "sm_len(NULL) is not 0");
        CHECK_RC(sm_pin(NULL), SM_EINVAL);
        CHECK_RC(sm_unpin(NULL), SM_EINVAL);
        CHECK_RC(sm_trim(NULL, &rel), SM_EINVAL);
        CHECK(rel == 0, "sm_trim(NULL) left *released at %zu", rel);
        CHECK_RC(sm_destroy(NULL), SM_OK);
        if (fm->kind == SM_KEY_BYTES) {
            CHECK_RC(sm_put(m, NULL, 3, 1), SM_EINVAL);
            CHECK_RC(sm_get(m, NULL, 1, &v), SM_EINVAL);
            CHECK_RC(sm_load_and_delete(m, NULL, 9, &v), SM_EINVAL);
        }
        break;
    case 2:
        CHECK_RC(sm_for_each(m, NULL, NULL), SM_EINVAL);
        CHECK_RC(sm_get_stats(m, NULL, sizeof(sm_stats)), SM_EINVAL);
        CHECK_RC(sm_reserve(m, SIZE_MAX), SM_EINVAL);
        CHECK_RC(sm_reserve(m, ((size_t)1 << 40) + 1), SM_EINVAL);
        break;
    default:
        for (int s = -7; s <= 4; s++) {
            CHECK(sm_strerror(s) != NULL && sm_errname(s) != NULL,
                  "no string for status %d", s);
        }
        CHECK(strcmp(sm_errname(SM_EKEYLEN), "SM_EKEYLEN") == 0,
              "sm_errname(SM_EKEYLEN) is %s", sm_errname(SM_EKEYLEN));
        CHECK(sm_version() == ((STILLMAP_VERSION_MAJOR << 16) |
                               (STILLMAP_VERSION_MINOR << 8) |
                               STILLMAP_VERSION_PATCH),
              "sm_version %u", sm_version());
        if (fz_pin_depth == 0) {
            /* an unpin with no pin is refused and changes nothing */
            CHECK_RC(sm_unpin(m), SM_EMISUSE);
        }
    }
    fz_calls += 8;
    check_len(fm);
}

static void do_stats(fz_map *fm, int variant) {
    union {
        sm_stats st;
        unsigned char bytes[sizeof(sm_stats) + 32];
    } u;
    size_t size;
    switch (variant) {
    case 0: size = sizeof(sm_stats); break;
    case 1: size = offsetof(sm_stats, capacity); break;     /* smallest */
    case 2: size = offsetof(sm_stats, capacity) - 1; break; /* too small */
    default: size = sizeof(sm_stats) + 32; break;           /* newer caller */
    }
    memset(u.bytes, 0xa5, sizeof u.bytes);
    int rc = sm_get_stats(fm->m, &u.st, size);
    fz_calls++;
    if (variant == 2) {
        CHECK_RC(rc, SM_EINVAL);
        for (size_t i = 0; i < sizeof u.bytes; i++)
            CHECK(u.bytes[i] == 0xa5, "%s: failed get_stats wrote byte %zu",
                  fm->name, i);
        return;
    }
    CHECK_RC(rc, SM_OK);
    size_t written = size < sizeof(sm_stats) ? size : sizeof(sm_stats);
    for (size_t i = written; i < sizeof u.bytes; i++)
        CHECK(u.bytes[i] == 0xa5, "%s: get_stats of %zu bytes wrote byte %zu",
              fm->name, size, i);
    CHECK(u.st.struct_size == written, "%s: struct_size %zu for size %zu",
          fm->name, u.st.struct_size, size);
    CHECK(u.st.entries == fm->md.count, "%s: stats entries %llu, model %zu",
          fm->name, (unsigned long long)u.st.entries, fm->md.count);
    if (written == sizeof(sm_stats))
        check_stats(fm, &u.st);
}

static void do_bulk(fz_map *fm, int del, int variant, rd *r) {
    unsigned n = 1 + rd_u8(r);
    unsigned base = rd_u8(r);
    if (n > 64 && (variant & 1))
        n *= 4;                             /* up to 1024 */
    for (unsigned i = 0; i < n && fz_calls < FZ_MAX_CALLS; i++) {
        fz_key k;
        bulk_key(fm, base, i, &k);
        if (!del) {
            int op = variant == 2 ? K_LOS : variant == 3 ? K_SWAP : K_PUT;
            key_op(fm, op, &k, fresh_value(), 0, 1);
        } else {
            md_ent *e = md_find(&fm->md, k.mp, k.mlen);
            if (variant == 2)
                key_op(fm, K_CAD, &k, e ? e->val : 3, 0, 1);
            else
                key_op(fm, variant == 3 ? K_LAD : K_DEL, &k, 0, 0, 1);
        }
    }
}

static int fz_trace;     /* FUZZ_OPS_TRACE=1: print every operation */

static void run_op(rd *r) {
    uint8_t b = rd_u8(r);
    fz_map *fm = &fz_maps[b >> 7];
    int variant = (b >> 5) & 3;
    int op = b & 31;
    if (op >= OP_NOPS)
        op -= OP_NOPS;                      /* the keyed ops, more often */
    fz_opname = op_names[op];
    if (fz_trace)
        fprintf(stderr, "op %d: %s on the %s, variant %d (input offset %zu; "
                "%zu entries, pin depth %d%s)\n", fz_opno, fz_opname,
                fm->name, variant, r->i - 1, fm->md.count, fz_pin_depth,
                fz_armed ? ", allocator armed" : "");
    fz_key k;
    switch (op) {
    case OP_GET: case OP_DEL: case OP_LAD:
        read_key(fm, r, &k);
        key_op(fm, op == OP_GET ? K_GET : op == OP_DEL ? K_DEL : K_LAD, &k,
               0, 0, variant != 3);
        break;
    case OP_PUT: case OP_LOS: case OP_SWAP: {
        read_key(fm, r, &k);
        md_ent *e = k.too_long ? NULL : md_find(&fm->md, k.mp, k.mlen);
        uint64_t v = read_value(r, e);
        key_op(fm, op == OP_PUT ? K_PUT : op == OP_LOS ? K_LOS : K_SWAP, &k,
               v, 0, variant != 3);
        break;
    }
    case OP_CAS: case OP_CAD: {
        read_key(fm, r, &k);
        md_ent *e = k.too_long ? NULL : md_find(&fm->md, k.mp, k.mlen);
        uint64_t expected = (variant < 2 && e) ? e->val : read_value(r, e);
        uint64_t desired = op == OP_CAS ? read_value(r, e) : 0;
        key_op(fm, op == OP_CAS ? K_CAS : K_CAD, &k, expected, desired, 1);
        break;
    }
    case OP_CLEAR: {
        int rc = sm_clear(fm->m);
        fz_calls++;
        if (nomem(fm, rc))
            break;
        CHECK_RC(rc, SM_OK);
        fm->clears++;
        for (size_t i = 0; i < MD_BUCKETS; i++)
            while (fm->md.b[i]) {
                removed(fm, fm->md.b[i]->val, SM_REMOVED_CLEAR);
                md_remove(&fm->md, fm->md.b[i]);
            }
        check_len(fm);
        sm_stats st = get_stats_full(fm);
        check_stats(fm, &st);
        CHECK(st.capacity >= fm->max_reserve && st.capacity >= fm->init_cap,
              "%s: after clear %llu slots, reserve %zu, initial %zu",
              fm->name, (unsigned long long)st.capacity, fm->max_reserve,
              fm->init_cap);
        break;
    }
    case OP_RESERVE: {
        size_t n = (size_t)rd_u8(r) * 4 * (size_t)(variant + 1);
        int rc = sm_reserve(fm->m, n);
        fz_calls++;
        if (nomem(fm, rc))
            break;
        CHECK_RC(rc, SM_OK);
        if (n > fm->max_reserve)
            fm->max_reserve = n;
        check_len(fm);
        break;
    }
    case OP_TRIM: {
        size_t rel = 0;
        if (fz_pin_depth > 0) {
            CHECK_RC(sm_trim(fm->m, &rel), SM_EMISUSE);
            break;
        }
        if (fz_trims >= FZ_MAX_TRIMS)
            break;
        fz_trims++;
        sm_stats before = get_stats_full(fm);
        int rc = sm_trim(fm->m, variant & 1 ? &rel : NULL);
        fz_calls += 64;
        if (!nomem(fm, rc))
            CHECK_RC(rc, SM_OK);
        after_trim_checks(fm, rc, before.grows_total + before.shrinks_total);
        break;
    }
    case OP_WALK:
        do_walk(fm, variant, r);
        break;
    case OP_LEN:
        check_len(fm);
        fz_calls++;
        break;
    case OP_STATS:
        do_stats(fm, variant);
        break;
    case OP_PIN:
        if (fz_pin_depth >= FZ_MAX_PIN)
            break;
        CHECK_RC(sm_pin(fm->m), SM_OK);
        fz_pin_depth++;
        break;
    case OP_UNPIN:
        if (fz_pin_depth == 0)
            break;
        if (fz_pin_depth == 1 && variant == 3 && fz_npinned > 0 &&
            fz_pin_waits < FZ_MAX_PIN_WAITS) {
            /* give the reclaimer time to (wrongly) run the hooks of what
             * was removed under the pin */
            fz_pin_waits++;
            struct timespec ts = {0, 3000000};
            nanosleep(&ts, NULL);
        }
        if (fz_pin_depth == 1)
            check_pinned_removals();
        CHECK_RC(sm_unpin(fm->m), SM_OK);
        fz_pin_depth--;
        break;
    case OP_BULK_PUT:
    case OP_BULK_DEL:
        do_bulk(fm, op == OP_BULK_DEL, variant, r);
        break;
    case OP_ARM: {
        /* the k-th allocation of the next operation on this map fails */
        unsigned kth = 1 + (rd_u8(r) & 7);
        if (fz_armed)                       /* one armed map at a time */
            atomic_store(&fz_armed->al.armed, 0);
        fz_armed = NULL;
        if (!fm->use_al)
            break;
        atomic_store(&fm->al.countdown, (long long)kth);
        atomic_store(&fm->al.armed, 1);
        fz_armed = fm;
        return;                             /* stays armed for one op */
    }
    case OP_BADARGS:
        do_badargs(fm, variant);
        break;
    default: /* OP_VERIFY */
        verify_all(fm);
        break;
    }
    if (fz_armed) {
        atomic_store(&fz_armed->al.armed, 0);
        fz_armed = NULL;
    }
}

/* ---------------------------------------------------------------------
 * One input
 * ------------------------------------------------------------------- */
static char fz_dummy;

static void map_setup(fz_map *fm, int idx, uint8_t flags, uint64_t seed) {
    memset(&fm->md, 0, sizeof fm->md);
    fm->name = idx == 0 ? "u64 map" : "byte map";
    fm->kind = idx == 0 ? SM_KEY_U64 : SM_KEY_BYTES;
    fm->use_al = (flags >> idx) & 1;
    static const size_t caps[8] = {0, 0, 1, 5, 24, 100, 700, 3000};
    fm->init_cap = caps[(flags >> 2) & 7];
    fm->max_reserve = 0;
    fm->clears = 0;
    fm->expect_total = 0;
    memset(&fm->last, 0, sizeof fm->last);
    atomic_store(&fm->hook_calls, 0);
    atomic_store(&fm->hook_bad, 0);
    fz_alloc_init(&fm->al);
    if (!fm->expect) {
        fm->expect = (unsigned *)calloc((size_t)FZ_NIDX * FZ_NREASON,
                                        sizeof *fm->expect);
        fm->hooked = (atomic_uint *)calloc((size_t)FZ_NIDX * FZ_NREASON,
                                           sizeof *fm->hooked);
        if (!fm->expect || !fm->hooked)
            abort();
    }
    sm_options o;
    sm_options_init(&o);
    o.key_kind = fm->kind;
    o.initial_capacity = fm->init_cap;
    if (flags & 0x20) {
        o.fixed_seed = 1;
        o.seed = seed;
    }
    if (fm->use_al)
        o.allocator = &fm->al.base;
    o.on_remove = hook_fn;
    o.on_remove_ctx = fm;
    fm->m = NULL;
    if (fm->use_al && (flags & 0x40)) {
        atomic_store(&fm->al.countdown, 1);
        atomic_store(&fm->al.armed, 1);
        sm_map *bad = (sm_map *)(void *)&fz_dummy; /* must become NULL */
        CHECK_RC(sm_create(&o, &bad), SM_ENOMEM);
        CHECK(bad == NULL, "%s: failed sm_create left *out set", fm->name);
        atomic_store(&fm->al.armed, 0);
        CHECK(atomic_load(&fm->al.outstanding) == 0,
              "%s: failed sm_create leaked %lld blocks", fm->name,
              (long long)atomic_load(&fm->al.outstanding));
    }
    int rc = sm_create(&o, &fm->m);
    CHECK_RC(rc, SM_OK);
}

static void map_teardown(fz_map *fm, int check_misuse) {
    if (check_misuse) {
        /* pinned: destroy is refused and the map stays usable */
        CHECK_RC(sm_destroy(fm->m), SM_EMISUSE);
        check_len(fm);
        return;
    }
    for (size_t i = 0; i < MD_BUCKETS; i++)
        while (fm->md.b[i]) {
            removed(fm, fm->md.b[i]->val, SM_REMOVED_DESTROY);
            md_remove(&fm->md, fm->md.b[i]);
        }
    CHECK_RC(sm_destroy(fm->m), SM_OK);
    fm->m = NULL;
    check_hooks_exact(fm, "after sm_destroy");
    if (fm->use_al) {
        CHECK(atomic_load(&fm->al.outstanding) == 0,
              "%s: %lld allocator blocks outstanding after sm_destroy",
              fm->name, (long long)atomic_load(&fm->al.outstanding));
        CHECK(atomic_load(&fm->al.bad_frees) == 0,
              "%s: %lld frees of unknown blocks or with a wrong size",
              fm->name, (long long)atomic_load(&fm->al.bad_frees));
    }
    size_t n = touched_idx();
    memset(fm->expect, 0, n * FZ_NREASON * sizeof *fm->expect);
    for (size_t i = 0; i < n * FZ_NREASON; i++)
        atomic_store(&fm->hooked[i], 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A map that lives for the whole process: with it the background
 * reclaimer is not stopped and restarted for every input (which costs far
 * more than a short input's work). */
static sm_map *fz_keeper;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rd r = {data, size, 0};
    if (!fz_keeper) {
        CHECK_RC(sm_create(NULL, &fz_keeper), SM_OK);
        const char *t = getenv("FUZZ_OPS_TRACE");
        fz_trace = t && *t && *t != '0';
    }
    uint8_t flags = rd_u8(&r);
    uint64_t seed = (flags & 0x20) ? rd_u8(&r) * 0x9e3779b97f4a7c15ull : 0;
    fz_opno = -1;
    fz_opname = "setup";
    fz_input = data;
    fz_input_size = size;
    fz_fresh_used = 0;
    fz_calls = 0;
    fz_trims = 0;
    fz_pin_waits = 0;
    fz_pin_depth = 0;
    fz_npinned = 0;
    fz_armed = NULL;
    map_setup(&fz_maps[0], 0, flags, seed);
    map_setup(&fz_maps[1], 1, flags, seed);
    for (fz_opno = 0; fz_opno < FZ_MAX_OPS && r.i < r.n &&
                      fz_calls < FZ_MAX_CALLS;
         fz_opno++)
        run_op(&r);
    fz_opname = "teardown";
    if (fz_armed) {
        atomic_store(&fz_armed->al.armed, 0);
        fz_armed = NULL;
    }
    if (fz_pin_depth > 0) {
        map_teardown(&fz_maps[0], 1);
        check_pinned_removals();
        while (fz_pin_depth > 0) {
            CHECK_RC(sm_unpin(fz_maps[0].m), SM_OK);
            fz_pin_depth--;
        }
    }
    verify_all(&fz_maps[0]);
    verify_all(&fz_maps[1]);
    map_teardown(&fz_maps[0], 0);
    map_teardown(&fz_maps[1], 0);
    return 0;
}

/* ---------------------------------------------------------------------
 * Standalone driver
 * ------------------------------------------------------------------- */
#ifdef SM_FUZZ_STANDALONE
#include <dirent.h>
#include <sys/stat.h>

static long fz_inputs;

static void run_file(const char *path) {
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fuzz_ops: %s: %s\n", path, strerror(errno));
        exit(2);
    }
    size_t cap = 4096, n = 0;
    uint8_t *buf = (uint8_t *)malloc(cap);
    if (!buf)
        abort();
    for (;;) {
        if (n == cap) {
            cap *= 2;
            buf = (uint8_t *)realloc(buf, cap);
            if (!buf)
                abort();
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        if (got == 0)
            break;
        n += got;
    }
    if (f != stdin)
        fclose(f);
    fz_input_name = path;
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    fz_inputs++;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void run_path(const char *path) {
    struct stat sb;
    if (strcmp(path, "-") != 0 && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        if (!d) {
            fprintf(stderr, "fuzz_ops: %s: %s\n", path, strerror(errno));
            exit(2);
        }
        size_t n = 0, cap = 64;
        char **names = (char **)malloc(cap * sizeof *names);
        struct dirent *de;
        while (names && (de = readdir(d)) != NULL) {
            if (de->d_name[0] == '.')
                continue;
            if (n == cap) {
                cap *= 2;
                names = (char **)realloc(names, cap * sizeof *names);
                if (!names)
                    break;
            }
            size_t len = strlen(path) + strlen(de->d_name) + 2;
            names[n] = (char *)malloc(len);
            if (!names[n])
                abort();
            snprintf(names[n], len, "%s/%s", path, de->d_name);
            n++;
        }
        closedir(d);
        if (!names)
            abort();
        qsort(names, n, sizeof *names, cmp_str);
        for (size_t i = 0; i < n; i++) {
            if (stat(names[i], &sb) == 0 && S_ISREG(sb.st_mode))
                run_file(names[i]);
            free(names[i]);
        }
        free(names);
        return;
    }
    run_file(path);
}

int main(int argc, char **argv) {
    if (argc < 2)
        run_file("-");
    for (int i = 1; i < argc; i++)
        run_path(argv[i]);
    printf("fuzz_ops: %ld inputs ran, all results matched the model\n",
           fz_inputs);
    return 0;
}
#endif /* SM_FUZZ_STANDALONE */
