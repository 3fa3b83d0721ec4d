/*
 * bench_util.h — small helpers shared by the stillmap benchmarks:
 * the monotonic clock, the key generator, RSS, percentiles, the date.
 * Header-only (static functions) so each benchmark binary stays one
 * translation unit plus its adapters.
 */
#ifndef STILLMAP_BENCH_UTIL_H
#define STILLMAP_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__GNUC__)
#define BU_LIKELY(x) __builtin_expect(!!(x), 1)
#define BU_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define BU_NOINLINE __attribute__((noinline))
#define BU_UNUSED __attribute__((unused))
#else
#define BU_LIKELY(x) (x)
#define BU_UNLIKELY(x) (x)
#define BU_NOINLINE
#define BU_UNUSED
#endif

/* Keeps the compiler from deleting or merging a computation. */
#define BU_SINK(x) __asm__ __volatile__("" : : "r"(x) : "memory")
#define BU_COMPILER_BARRIER() __asm__ __volatile__("" ::: "memory")

static inline uint64_t bu_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CPU time consumed by the calling thread. */
static inline uint64_t bu_thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The benchmark key of index i: a bijection on u64, so keys of distinct
 * indices are distinct and uniformly spread. */
static inline uint64_t bu_splitmix64(uint64_t i)
{
    uint64_t z = i + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A small fast PRNG (one 64-bit state word per thread). */
static inline uint64_t bu_rand(uint64_t *state)
{
    *state += 0x9e3779b97f4a7c15ull;
    uint64_t z = *state;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n) without division (Lemire's multiply-shift). */
static inline uint64_t bu_below(uint64_t r, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)r * n) >> 64);
}

/* Resident set size of this process in bytes, from /proc/self/statm. */
static BU_UNUSED size_t bu_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

static int bu_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Sorts v in place; afterwards bu_pct(v, n, q) is the q-quantile. */
static BU_UNUSED void bu_sort_u64(uint64_t *v, size_t n)
{
    qsort(v, n, sizeof *v, bu_cmp_u64);
}

/* q in [0,1] of a sorted array (nearest rank). 0 for an empty array. */
static BU_UNUSED uint64_t bu_pct(const uint64_t *sorted, size_t n, double q)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(q * (double)n);
    if (i >= n)
        i = n - 1;
    return sorted[i];
}

/* UTC date and time, ISO 8601, into buf (at least 21 bytes). */
static BU_UNUSED void bu_date(char *buf, size_t len)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Deterministic Fisher-Yates shuffle of v[0..n). */
static BU_UNUSED void bu_shuffle_u64(uint64_t *v, size_t n, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)bu_below(bu_rand(&s), i);
        uint64_t t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

#endif /* STILLMAP_BENCH_UTIL_H */
