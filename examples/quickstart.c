#include <stdio.h>
#include <stillmap.h>

int main(void) {
    sm_map *m; uint64_t v = 0, actual = 0;
    if (sm_create(NULL, &m) != SM_OK) return 1;          /* u64 keys by default */
    int put = sm_put_u64(m, 42, 1000);                    /* SM_OK */
    int get = sm_get_u64(m, 42, &v);                      /* SM_OK, v == 1000 */
    int los = sm_load_or_store_u64(m, 42, 7, &actual);    /* SM_EXISTS, actual == 1000 */
    int del = sm_delete_u64(m, 42);                       /* SM_OK */
    size_t n = sm_len(m);                                 /* 0 */
    printf("put %s, get %s (%llu), load_or_store %s (%llu), delete %s, len %zu\n", sm_errname(put),
           sm_errname(get), (unsigned long long)v, sm_errname(los), (unsigned long long)actual, sm_errname(del), n);
    sm_destroy(m);
    return !(put == SM_OK && get == SM_OK && v == 1000 && los == SM_EXISTS && actual == 1000 && del == SM_OK && n == 0);
}
