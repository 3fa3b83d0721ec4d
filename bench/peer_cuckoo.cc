// peer_cuckoo.cc — sm_bench adapter for libcuckoo's
// cuckoohash_map<uint64_t, uint64_t> (Debian libcuckoo-dev, header-only)
// with its default hash.  Thread-safe (fine-grained bucket locks).
// C++17, built only when CMake finds libcuckoo.
#include "adapter.h"

#include <cstdint>
#include <new>

#include <libcuckoo/cuckoohash_map.hh>

namespace {

using Map = libcuckoo::cuckoohash_map<uint64_t, uint64_t>;

void *ck_create(size_t hint)
{
    return hint ? new (std::nothrow) Map(hint) : new (std::nothrow) Map();
}

void ck_destroy(void *m)
{
    delete static_cast<Map *>(m);
}

int ck_put(void *m, uint64_t k, uint64_t v)
{
    static_cast<Map *>(m)->insert_or_assign(k, v);
    return 0;
}

int ck_get(void *m, uint64_t k, uint64_t *v)
{
    return static_cast<Map *>(m)->find(k, *v) ? 1 : 0;
}

int ck_del(void *m, uint64_t k)
{
    return static_cast<Map *>(m)->erase(k) ? 1 : 0;
}

int ck_clear(void *m)
{
    static_cast<Map *>(m)->clear();
    return 0;
}

size_t ck_len(void *m)
{
    return static_cast<Map *>(m)->size();
}

} // namespace

extern "C" const bench_adapter bench_adapter_cuckoo = {
    "cuckoo", BA_THREAD_SAFE,
    ck_create, ck_destroy, ck_put, ck_get, ck_del, ck_clear, ck_len,
    nullptr, nullptr, nullptr, nullptr, nullptr,
};
