/*
 * adapter_stillmap.c — sm_bench adapter for stillmap, u64 keys.
 */
#include "adapter.h"

#include <stdio.h>

#include <stillmap.h>

static void *sm_a_create(size_t hint)
{
    sm_options opt;
    sm_map *m = NULL;
    sm_options_init(&opt);
    opt.key_kind = SM_KEY_U64;
    opt.initial_capacity = hint;
    if (sm_create(&opt, &m) != SM_OK)
        return NULL;
    return m;
}

static void sm_a_destroy(void *m)
{
    (void)sm_destroy(m);
}

static int sm_a_put(void *m, uint64_t k, uint64_t v)
{
    int rc = sm_put_u64(m, k, v);
    return rc == SM_OK ? 0 : (rc < 0 ? rc : -100);
}

static int sm_a_get(void *m, uint64_t k, uint64_t *v)
{
    int rc = sm_get_u64(m, k, v);
    if (rc == SM_OK)
        return 1;
    return rc == SM_NOTFOUND ? 0 : (rc < 0 ? rc : -100);
}

static int sm_a_del(void *m, uint64_t k)
{
    int rc = sm_delete_u64(m, k);
    if (rc == SM_OK)
        return 1;
    return rc == SM_NOTFOUND ? 0 : (rc < 0 ? rc : -100);
}

static int sm_a_clear(void *m)
{
    return sm_clear(m) == SM_OK ? 0 : -1;
}

static int sm_a_shrink(void *m)
{
    return sm_trim(m, NULL) == SM_OK ? 0 : -1;
}

static size_t sm_a_len(void *m)
{
    return sm_len(m);
}

static void sm_a_describe(void *m, char *buf, size_t len)
{
    sm_stats st;
    if (sm_get_stats(m, &st, sizeof st) != SM_OK) {
        snprintf(buf, len, "\"error\":\"sm_get_stats\"");
        return;
    }
    snprintf(buf, len,
             "\"entries\":%llu,\"capacity\":%llu,\"load_factor\":%.3f,"
             "\"table_bytes\":%llu,\"pending_reclaim_bytes\":%llu,"
             "\"transition_in_progress\":%d,\"grows_total\":%llu,"
             "\"shrinks_total\":%llu",
             (unsigned long long)st.entries, (unsigned long long)st.capacity,
             st.load_factor, (unsigned long long)st.table_bytes,
             (unsigned long long)st.pending_reclaim_bytes,
             st.transition_in_progress, (unsigned long long)st.grows_total,
             (unsigned long long)st.shrinks_total);
}

/* String keys: a map created with SM_KEY_BYTES. */
static void *sm_s_create(void)
{
    sm_options opt;
    sm_map *m = NULL;
    sm_options_init(&opt);
    opt.key_kind = SM_KEY_BYTES;
    if (sm_create(&opt, &m) != SM_OK)
        return NULL;
    return m;
}

static int sm_s_put(void *m, const char *k, size_t len, uint64_t v)
{
    int rc = sm_put(m, k, len, v);
    return rc == SM_OK ? 0 : (rc < 0 ? rc : -100);
}

static int sm_s_get(void *m, const char *k, size_t len, uint64_t *v)
{
    int rc = sm_get(m, k, len, v);
    if (rc == SM_OK)
        return 1;
    return rc == SM_NOTFOUND ? 0 : (rc < 0 ? rc : -100);
}

const bench_skey_adapter bench_skey_stillmap = {
    "stillmap", sm_s_create, sm_a_destroy, sm_s_put, sm_s_get, sm_a_len,
};

const bench_adapter bench_adapter_stillmap = {
    "stillmap", BA_THREAD_SAFE,
    sm_a_create, sm_a_destroy, sm_a_put, sm_a_get, sm_a_del, sm_a_clear,
    sm_a_len, NULL, NULL, sm_a_describe, sm_a_shrink, "sm_trim",
};
