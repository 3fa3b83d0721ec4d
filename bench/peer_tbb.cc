// peer_tbb.cc — sm_bench adapter for tbb::concurrent_hash_map<uint64_t,
// uint64_t> (oneTBB, Debian libtbb-dev) with its default hash_compare.
// Thread-safe: put takes the element's write accessor, get a read
// accessor.  C++17, built only when CMake finds TBB.
#include "adapter.h"

#include <cstdint>
#include <new>

#include <oneapi/tbb/concurrent_hash_map.h>

namespace {

using Map = tbb::concurrent_hash_map<uint64_t, uint64_t>;

void *tbb_create(size_t hint)
{
    return hint ? new (std::nothrow) Map(hint) : new (std::nothrow) Map();
}

void tbb_destroy(void *m)
{
    delete static_cast<Map *>(m);
}

int tbb_put(void *m, uint64_t k, uint64_t v)
{
    Map::accessor a;
    static_cast<Map *>(m)->insert(a, k);
    a->second = v;
    return 0;
}

int tbb_get(void *m, uint64_t k, uint64_t *v)
{
    Map::const_accessor a;
    if (!static_cast<Map *>(m)->find(a, k))
        return 0;
    *v = a->second;
    return 1;
}

int tbb_del(void *m, uint64_t k)
{
    return static_cast<Map *>(m)->erase(k) ? 1 : 0;
}

int tbb_clear(void *m)
{
    static_cast<Map *>(m)->clear();
    return 0;
}

size_t tbb_len(void *m)
{
    return static_cast<Map *>(m)->size();
}

} // namespace

extern "C" const bench_adapter bench_adapter_tbb = {
    "tbb", BA_THREAD_SAFE | BA_CLEAR_EXCLUSIVE,
    tbb_create, tbb_destroy, tbb_put, tbb_get, tbb_del, tbb_clear, tbb_len,
    nullptr, nullptr, nullptr, nullptr, nullptr,
};
