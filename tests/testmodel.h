/*
 * testmodel.h — the reference map the single-threaded tests compare
 * stillmap with: key indices 0..nkeys-1 (see testkeys.h), each present or
 * not with a value, and the removal hooks the real map must call.
 */
#ifndef SM_TESTMODEL_H
#define SM_TESTMODEL_H

#include "testutil.h"

typedef struct model {
    uint64_t nkeys;
    unsigned char *present;
    uint64_t *val;
    uint64_t len;
    tu_hook_expect hooks;
} model;

/* Store v at index i; a different value replaced is expected to be hooked. */
static inline void model_set(model *md, uint64_t i, uint64_t v) {
    if (!md->present[i]) {
        md->present[i] = 1;
        md->len++;
    } else if (md->val[i] != v) {
        tu_expect_hook(&md->hooks, md->val[i], SM_REMOVED_REPLACE);
    }
    md->val[i] = v;
}

static inline void model_del(model *md, uint64_t i) {
    ASSERT_TRUE(md->present[i]);
    tu_expect_hook(&md->hooks, md->val[i], SM_REMOVED_DELETE);
    md->present[i] = 0;
    md->len--;
}

static inline void model_clear(model *md, sm_reason why) {
    for (uint64_t i = 0; i < md->nkeys; i++)
        if (md->present[i]) {
            tu_expect_hook(&md->hooks, md->val[i], why);
            md->present[i] = 0;
        }
    md->len = 0;
}

#endif
