// peer_stdmap.cc — sm_bench adapter for std::unordered_map<uint64_t,
// uint64_t> with std::hash (the identity on this standard library).  Not
// thread-safe: sm_bench wraps it in a reader-writer lock ("stdmap+rwlock")
// for tests with several threads and for T6's clear, and calls it bare in
// single-thread tests.  Needs only a C++17 compiler.
#include "adapter.h"

#include <cstdint>
#include <new>
#include <unordered_map>

namespace {

using Map = std::unordered_map<uint64_t, uint64_t>;

void *stdmap_create(size_t hint)
{
    Map *m = new (std::nothrow) Map();
    if (m != nullptr && hint != 0) {
        try {
            m->reserve(hint);
        } catch (...) {
            delete m;
            return nullptr;
        }
    }
    return m;
}

void stdmap_destroy(void *m)
{
    delete static_cast<Map *>(m);
}

int stdmap_put(void *m, uint64_t k, uint64_t v)
{
    try {
        static_cast<Map *>(m)->insert_or_assign(k, v);
    } catch (...) {
        return -1;
    }
    return 0;
}

int stdmap_get(void *m, uint64_t k, uint64_t *v)
{
    const Map &map = *static_cast<Map *>(m);
    auto it = map.find(k);
    if (it == map.end())
        return 0;
    *v = it->second;
    return 1;
}

int stdmap_del(void *m, uint64_t k)
{
    return static_cast<int>(static_cast<Map *>(m)->erase(k));
}

int stdmap_clear(void *m)
{
    static_cast<Map *>(m)->clear();
    return 0;
}

// clear() frees the nodes but keeps the bucket array; rehash(0) asks for
// the smallest bucket count that holds the current elements.
int stdmap_shrink(void *m)
{
    try {
        static_cast<Map *>(m)->rehash(0);
    } catch (...) {
        return -1;
    }
    return 0;
}

size_t stdmap_len(void *m)
{
    return static_cast<Map *>(m)->size();
}

} // namespace

extern "C" const bench_adapter bench_adapter_stdmap = {
    "stdmap", 0,
    stdmap_create, stdmap_destroy, stdmap_put, stdmap_get, stdmap_del,
    stdmap_clear, stdmap_len, nullptr, nullptr, nullptr, stdmap_shrink,
    "rehash(0)",
};
