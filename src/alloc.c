/*
 * alloc.c — where a map's memory comes from.
 *
 * Everything goes through the map's allocator hooks.  With the default
 * allocator, tables of SM_MMAP_MIN bytes or more come straight from mmap:
 * freeing them unmaps the pages, so RSS really drops after a shrink or a
 * clear, and a fresh table costs no memset (the kernel hands out zero
 * pages on first touch, spread over the incremental migration).
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#include <unistd.h>
#define SM_HAVE_MMAP 1
#endif

#define SM_MMAP_MIN ((size_t)256 * 1024)

void *sm__alloc(sm_map *m, size_t size) {
    return m->alloc.malloc(m->alloc.ctx, size);
}

void sm__free(sm_map *m, void *p, size_t size) {
    if (p)
        m->alloc.free(m->alloc.ctx, p, size);
}

void *sm__table_mem(sm_map *m, size_t size, int *mapped) {
    *mapped = 0;
#ifdef SM_HAVE_MMAP
    if (m->default_alloc && size >= SM_MMAP_MIN) {
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return NULL;
        *mapped = 1;
        return p;
    }
#endif
    void *p = sm__alloc(m, size);
    if (p)
        memset(p, 0, size);
    return p;
}

void sm__table_mem_free(sm_map *m, void *p, size_t size, int mapped) {
#ifdef SM_HAVE_MMAP
    if (mapped) {
        /* Release a big table in 1 MiB steps before unmapping it.  munmap
         * holds the process's address-space lock for writing while it
         * frees the pages (tens of milliseconds for a table of hundreds
         * of MiB), and every page fault of every other thread (a growing
         * table faults in fresh pages) would wait behind it; madvise
         * takes that lock only for reading, so faults proceed, and the
         * final munmap finds no pages left to free. */
        const size_t step = (size_t)1 << 20;
        for (size_t off = 0; off + step < size; off += step)
            madvise((char *)p + off, step, MADV_DONTNEED);
        munmap(p, size);
        return;
    }
#endif
    (void)mapped;
    sm__free(m, p, size);
}

void sm__table_mem_populate(void *p, size_t off, size_t len) {
#ifdef SM_HAVE_MMAP
    long ps = sysconf(_SC_PAGESIZE);
    size_t page = ps > 0 ? (size_t)ps : 4096;
    /* off is a multiple of the page size (the caller steps in MiB) */
#ifdef MADV_POPULATE_WRITE
    /* Linux 5.14+: one call faults the range in, without a trap per page */
    if (madvise((char *)p + off, len, MADV_POPULATE_WRITE) == 0)
        return;
#endif
    /* Elsewhere (or an older kernel): write each page.  The range may
     * already be in use by writers (a table published early), so the
     * write is an atomic OR of zero, which changes nothing. */
    for (size_t o = off; o < off + len; o += page)
        __atomic_fetch_or((unsigned char *)p + o, 0, __ATOMIC_RELAXED);
#else
    (void)p;
    (void)off;
    (void)len;
#endif
}
