/* Uses stillmap from an installed package; exits 0 if all is as expected. */
#include <stdio.h>

#include <stillmap.h>

int main(void) {
    unsigned want = (STILLMAP_VERSION_MAJOR << 16) | (STILLMAP_VERSION_MINOR << 8) |
                    STILLMAP_VERSION_PATCH;
    if (sm_version() != want) {
        fprintf(stderr, "header says %s but the library is %06x\n",
                STILLMAP_VERSION_STRING, sm_version());
        return 1;
    }

    sm_map *m;
    if (sm_create(NULL, &m) != SM_OK) return 1;
    int bad = 0;
    for (uint64_t k = 0; k < 1000; k++) bad += sm_put_u64(m, k, k * k) != SM_OK;
    uint64_t v = 0;
    bad += sm_get_u64(m, 999, &v) != SM_OK || v != 999 * 999;
    bad += sm_cas_u64(m, 999, 1, 2) != SM_MISMATCH;
    bad += sm_len(m) != 1000;
    bad += sm_clear(m) != SM_OK || sm_len(m) != 0;
    bad += sm_destroy(m) != SM_OK;

    printf("consumer: stillmap %s, %s\n", STILLMAP_VERSION_STRING, bad ? "FAILED" : "ok");
    return bad != 0;
}
