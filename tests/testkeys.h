/*
 * testkeys.h — one key space for both key kinds.
 *
 * Tests name keys by an index i (a uint64_t) and run the same code on u64
 * maps and byte-key maps:
 *
 *   u64 maps:   key = tk_u64_key(i), a bijection that visits both ends of
 *               the range first: 0, UINT64_MAX, 1, UINT64_MAX-1, 2, ...
 *   byte maps:  key = tk_bytes_key(i): i == 0 is the empty key; otherwise
 *               the LEB128 encoding of i (prefix-free, so keys are
 *               distinct) followed by 0..47 filler bytes derived from i
 *               (NUL bytes included).  Every 61st index gets a long key of
 *               a few hundred bytes.
 *
 * tk_index_of_entry() maps an entry seen by sm_for_each back to its index
 * and checks that the entry is shaped as the header promises.
 */
#ifndef SM_TESTKEYS_H
#define SM_TESTKEYS_H

#include "testutil.h"

#define TK_LONG_EVERY 61u
#define TK_MAXLEN 512u        /* longest generated key */

static inline uint64_t tk_u64_key(uint64_t i) {
    return (i & 1) ? UINT64_MAX - (i >> 1) : (i >> 1);
}

static inline uint64_t tk_u64_index(uint64_t key) {
    return key <= (UINT64_MAX >> 1) ? key << 1 : ((UINT64_MAX - key) << 1) | 1;
}

/* Writes key i into buf (TK_MAXLEN bytes) and returns its length. */
static inline size_t tk_bytes_key(uint64_t i, unsigned char *buf) {
    if (i == 0)
        return 0;
    size_t n = 0;
    uint64_t v = i;
    do {
        unsigned char b = (unsigned char)(v & 0x7f);
        v >>= 7;
        buf[n++] = v ? (unsigned char)(b | 0x80) : b;
    } while (v);
    uint64_t h = tu_mix64(i ^ 0x6b65797370616365ull);
    size_t fill = (size_t)(h % 48);
    if (i % TK_LONG_EVERY == 7)
        fill = 200 + (size_t)(h % 300);
    for (size_t j = 0; j < fill; j++) {
        if ((j & 7) == 0)
            h = tu_mix64(h + j);
        buf[n++] = (unsigned char)(h >> ((j & 7) * 8));
    }
    return n;
}

/* Decodes a byte key made by tk_bytes_key; 1 and *i on success. */
static inline int tk_bytes_index(const void *key, size_t len, uint64_t *i) {
    const unsigned char *p = (const unsigned char *)key;
    if (len == 0) {
        *i = 0;
        return 1;
    }
    if (p == NULL)
        return 0;
    uint64_t v = 0;
    size_t n = 0;
    for (;;) {
        if (n >= len || n >= 10)
            return 0;
        v |= (uint64_t)(p[n] & 0x7f) << (7 * n);
        if (!(p[n++] & 0x80))
            break;
    }
    if (v == 0)
        return 0;
    unsigned char buf[TK_MAXLEN];
    size_t l = tk_bytes_key(v, buf);
    if (l != len || memcmp(buf, p, len) != 0)
        return 0;
    *i = v;
    return 1;
}

/* A map with its kind, so that tests call one set of functions. */
typedef struct tk_map {
    sm_map *m;
    sm_key_kind kind;
} tk_map;

#define TK_KEY_(t, i)                                                        \
    unsigned char tk_buf_[TK_MAXLEN];                                        \
    size_t tk_len_ = (t)->kind == SM_KEY_BYTES ? tk_bytes_key((i), tk_buf_) : 0

static inline int tk_get(const tk_map *t, uint64_t i, uint64_t *v) {
    if (t->kind == SM_KEY_U64)
        return sm_get_u64(t->m, tk_u64_key(i), v);
    TK_KEY_(t, i);
    return sm_get(t->m, tk_buf_, tk_len_, v);
}

static inline int tk_put(const tk_map *t, uint64_t i, uint64_t v) {
    if (t->kind == SM_KEY_U64)
        return sm_put_u64(t->m, tk_u64_key(i), v);
    TK_KEY_(t, i);
    return sm_put(t->m, tk_buf_, tk_len_, v);
}

static inline int tk_los(const tk_map *t, uint64_t i, uint64_t v,
                         uint64_t *actual) {
    if (t->kind == SM_KEY_U64)
        return sm_load_or_store_u64(t->m, tk_u64_key(i), v, actual);
    TK_KEY_(t, i);
    return sm_load_or_store(t->m, tk_buf_, tk_len_, v, actual);
}

static inline int tk_swap(const tk_map *t, uint64_t i, uint64_t v,
                          uint64_t *prev) {
    if (t->kind == SM_KEY_U64)
        return sm_swap_u64(t->m, tk_u64_key(i), v, prev);
    TK_KEY_(t, i);
    return sm_swap(t->m, tk_buf_, tk_len_, v, prev);
}

static inline int tk_cas(const tk_map *t, uint64_t i, uint64_t expected,
                         uint64_t desired) {
    if (t->kind == SM_KEY_U64)
        return sm_cas_u64(t->m, tk_u64_key(i), expected, desired);
    TK_KEY_(t, i);
    return sm_cas(t->m, tk_buf_, tk_len_, expected, desired);
}

static inline int tk_del(const tk_map *t, uint64_t i) {
    if (t->kind == SM_KEY_U64)
        return sm_delete_u64(t->m, tk_u64_key(i));
    TK_KEY_(t, i);
    return sm_delete(t->m, tk_buf_, tk_len_);
}

static inline int tk_lad(const tk_map *t, uint64_t i, uint64_t *v) {
    if (t->kind == SM_KEY_U64)
        return sm_load_and_delete_u64(t->m, tk_u64_key(i), v);
    TK_KEY_(t, i);
    return sm_load_and_delete(t->m, tk_buf_, tk_len_, v);
}

static inline int tk_cad(const tk_map *t, uint64_t i, uint64_t expected) {
    if (t->kind == SM_KEY_U64)
        return sm_cad_u64(t->m, tk_u64_key(i), expected);
    TK_KEY_(t, i);
    return sm_cad(t->m, tk_buf_, tk_len_, expected);
}

/* Index of a visited entry; fails the test if the entry is malformed. */
static inline uint64_t tk_index_of_entry(const tk_map *t, const sm_entry *e) {
    uint64_t i = 0;
    if (e == NULL)
        FAIL("sm_for_each passed a NULL entry");
    if (t->kind == SM_KEY_U64) {
        if (e->key != NULL || e->len != 8)
            FAIL("u64 entry has key=%p len=%zu (want NULL, 8)", e->key, e->len);
        return tk_u64_index(e->key_u64);
    }
    if (e->key_u64 != 0)
        FAIL("byte-key entry has key_u64=%llu (want 0)",
             (unsigned long long)e->key_u64);
    if (e->len > 0 && e->key == NULL)
        FAIL("byte-key entry has NULL key with len %zu", e->len);
    if (!tk_bytes_index(e->key, e->len, &i))
        FAIL("sm_for_each produced a key (len %zu) that was never stored",
             e->len);
    return i;
}

/* Create a map of the given kind with options already set in *opt
 * (key_kind is overwritten). */
static inline tk_map tk_create(sm_key_kind kind, sm_options *opt) {
    tk_map t;
    sm_options o;
    if (opt == NULL) {
        sm_options_init(&o);
        opt = &o;
    }
    opt->key_kind = kind;
    t.kind = kind;
    t.m = NULL;
    ASSERT_OK(sm_create(opt, &t.m));
    ASSERT_TRUE(t.m != NULL);
    return t;
}

#endif /* SM_TESTKEYS_H */
