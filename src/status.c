/* status.c — status strings, version, option defaults. */
#include "internal.h"

#include <string.h>

unsigned sm_version(void) {
    return (STILLMAP_VERSION_MAJOR << 16) | (STILLMAP_VERSION_MINOR << 8) | STILLMAP_VERSION_PATCH;
}

const char *sm_strerror(int status) {
    switch (status) {
#define SM__STATUS_MSG(name, val, msg) case SM_##name: return msg;
        SM_STATUS_MAP(SM__STATUS_MSG)
#undef SM__STATUS_MSG
    }
    return "unknown status";
}

const char *sm_errname(int status) {
    switch (status) {
#define SM__STATUS_NAME(name, val, msg) case SM_##name: return "SM_" #name;
        SM_STATUS_MAP(SM__STATUS_NAME)
#undef SM__STATUS_NAME
    }
    return "SM_UNKNOWN";
}

#if defined(SM_DEBUG) && SM_DEBUG
#include <stdio.h>

int sm__misuse(const char *fn, const char *what) {
    fprintf(stderr, "stillmap: misuse in %s: %s\n", fn, what);
    return SM_EMISUSE;
}

int sm__check_map(const sm_map *m, const char *fn) {
    if (!m || m->magic == SM_MAGIC)
        return 0;
    return sm__misuse(fn, m->magic == SM_MAGIC_DEAD ? "map used after sm_destroy"
                                                    : "not a stillmap map (bad magic)");
}
#endif

void sm_options_init(sm_options *opt) {
    if (!opt)
        return;
    memset(opt, 0, sizeof *opt);
    opt->struct_size = sizeof *opt;
    opt->key_kind = SM_KEY_U64;
}
