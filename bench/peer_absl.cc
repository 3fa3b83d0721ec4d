// peer_absl.cc — sm_bench adapter for absl::flat_hash_map<uint64_t,
// uint64_t> with its default hash.  Not thread-safe: sm_bench wraps it in
// a reader-writer lock ("absl+rwlock") for tests with several threads and
// calls it bare in single-thread tests.  C++17, built only when CMake
// finds absl.
#include "adapter.h"

#include <cstdint>
#include <new>
#include <string>
#include <absl/strings/string_view.h>

#include <absl/container/flat_hash_map.h>

namespace {

using Map = absl::flat_hash_map<uint64_t, uint64_t>;

void *absl_create(size_t hint)
{
    Map *m = new (std::nothrow) Map();
    if (m != nullptr && hint != 0)
        m->reserve(hint);
    return m;
}

void absl_destroy(void *m)
{
    delete static_cast<Map *>(m);
}

int absl_put(void *m, uint64_t k, uint64_t v)
{
    static_cast<Map *>(m)->insert_or_assign(k, v);
    return 0;
}

int absl_get(void *m, uint64_t k, uint64_t *v)
{
    const Map &map = *static_cast<Map *>(m);
    auto it = map.find(k);
    if (it == map.end())
        return 0;
    *v = it->second;
    return 1;
}

int absl_del(void *m, uint64_t k)
{
    return static_cast<int>(static_cast<Map *>(m)->erase(k));
}

int absl_clear(void *m)
{
    static_cast<Map *>(m)->clear();
    return 0;
}

int absl_shrink(void *m)
{
    static_cast<Map *>(m)->rehash(0);
    return 0;
}

size_t absl_len(void *m)
{
    return static_cast<Map *>(m)->size();
}

// String keys: flat_hash_map<std::string, uint64_t>; lookups by
// string_view (absl's string hash is transparent: no std::string built).
using SMap = absl::flat_hash_map<std::string, uint64_t>;

void *absl_s_create()
{
    return new (std::nothrow) SMap();
}

void absl_s_destroy(void *m)
{
    delete static_cast<SMap *>(m);
}

int absl_s_put(void *m, const char *k, size_t len, uint64_t v)
{
    try {
        static_cast<SMap *>(m)->insert_or_assign(std::string(k, len), v);
    } catch (...) {
        return -1;
    }
    return 0;
}

int absl_s_get(void *m, const char *k, size_t len, uint64_t *v)
{
    const SMap &map = *static_cast<SMap *>(m);
    auto it = map.find(absl::string_view(k, len));
    if (it == map.end())
        return 0;
    *v = it->second;
    return 1;
}

size_t absl_s_len(void *m)
{
    return static_cast<SMap *>(m)->size();
}

} // namespace

extern "C" const bench_skey_adapter bench_skey_absl = {
    "absl", absl_s_create, absl_s_destroy, absl_s_put, absl_s_get,
    absl_s_len,
};

extern "C" const bench_adapter bench_adapter_absl = {
    "absl", 0,
    absl_create, absl_destroy, absl_put, absl_get, absl_del, absl_clear,
    absl_len, nullptr, nullptr, nullptr, absl_shrink, "rehash(0)",
};
