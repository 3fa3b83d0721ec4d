/*
 * strings.c — byte-string keys, pointer values and pins.
 *
 * A session table: the key is a session name (bytes, copied into the map),
 * the value is a pointer to a heap-allocated struct session.  The map owns
 * the structs: its removal hook frees a struct once no pinned reader can
 * still see it, so a reader that pins, reads a pointer and uses it is safe
 * even while another thread replaces or deletes the entry.
 *
 * Exits 0 only if every lookup gives what is expected and every struct was
 * freed exactly once by the hook.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stillmap.h>

struct session {
    char user[32];
    unsigned visits;
};

static atomic_uint live_sessions;   /* allocated and not yet freed */
static atomic_uint freed_by_hook[5]; /* indexed by sm_reason */

static uint64_t new_session(const char *user, unsigned visits) {
    struct session *s = malloc(sizeof *s);
    if (!s) {
        perror("malloc");
        exit(1);
    }
    snprintf(s->user, sizeof s->user, "%s", user);
    s->visits = visits;
    atomic_fetch_add(&live_sessions, 1);
    return (uint64_t)(uintptr_t)s;
}

/* Runs on stillmap's reclaimer thread (or in sm_destroy), after no pinned
 * reader can still hold this pointer. */
static void free_session(void *ctx, uint64_t value, sm_reason reason) {
    (void)ctx;
    free((struct session *)(uintptr_t)value);
    atomic_fetch_sub(&live_sessions, 1);
    if (reason >= 1 && reason <= 4) atomic_fetch_add(&freed_by_hook[reason], 1);
}

static int print_entry(void *ctx, const sm_entry *e) {
    const struct session *s = (const struct session *)(uintptr_t)e->value;
    if (e->len == 0)
        printf("  %-8s -> user %-9s visits %u\n", "(empty)", s->user, s->visits);
    else
        printf("  %-8.*s -> user %-9s visits %u\n", (int)e->len, (const char *)e->key,
               s->user, s->visits);
    ++*(int *)ctx;
    return 0;
}

static int failures;
#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "strings.c:%d: check failed: %s\n", __LINE__, \
                    #cond);                                                \
            failures++;                                                    \
        }                                                                  \
    } while (0)

int main(void) {
    sm_options opt;
    sm_options_init(&opt);
    opt.key_kind = SM_KEY_BYTES;
    opt.on_remove = free_session;

    sm_map *m;
    int rc = sm_create(&opt, &m);
    if (rc != SM_OK) {
        fprintf(stderr, "sm_create: %s\n", sm_strerror(rc));
        return 1;
    }

    static const char *const names[] = {"s-alice", "s-bob", "s-carol"};
    static const char *const users[] = {"alice", "bob", "carol"};
    for (int i = 0; i < 3; i++)
        CHECK(sm_put(m, names[i], strlen(names[i]), new_session(users[i], 1)) == SM_OK);

    /* Keys are bytes, not C strings: "s-bob" and "s-bo" are different keys,
     * and the empty key is a key like any other. */
    uint64_t v;
    CHECK(sm_get(m, "s-bo", 4, &v) == SM_NOTFOUND);
    CHECK(sm_put(m, "", 0, new_session("anonymous", 0)) == SM_OK);

    /* Read a pointer under a pin: the struct cannot be freed until unpin,
     * even if another thread replaces or deletes "s-bob" meanwhile. */
    CHECK(sm_pin(m) == SM_OK);
    if (sm_get(m, "s-bob", 5, &v) == SM_OK) {
        const struct session *s = (const struct session *)(uintptr_t)v;
        printf("pinned read: s-bob -> user %s, visits %u\n", s->user, s->visits);
        CHECK(strcmp(s->user, "bob") == 0);
    } else {
        CHECK(!"s-bob missing");
    }
    CHECK(sm_unpin(m) == SM_OK);
    CHECK(sm_unpin(m) == SM_EMISUSE); /* no pin held any more */

    /* Replace: the old struct goes to the hook (SM_REMOVED_REPLACE). */
    CHECK(sm_put(m, "s-bob", 5, new_session("bob", 2)) == SM_OK);

    /* Insert only if absent: alice is there, so the new struct is not
     * stored and stays ours to free. */
    uint64_t fresh = new_session("alice", 99), actual = 0;
    CHECK(sm_load_or_store(m, "s-alice", 7, fresh, &actual) == SM_EXISTS);
    CHECK(actual != fresh);
    free((struct session *)(uintptr_t)fresh);
    atomic_fetch_sub(&live_sessions, 1);

    /* Delete: the struct goes to the hook (SM_REMOVED_DELETE). */
    CHECK(sm_delete(m, "s-carol", 7) == SM_OK);
    CHECK(sm_delete(m, "s-carol", 7) == SM_NOTFOUND);
    CHECK(sm_len(m) == 3);

    int seen = 0;
    printf("entries (sm_for_each, runs pinned):\n");
    CHECK(sm_for_each(m, print_entry, &seen) == SM_OK);
    CHECK(seen == 3);

    /* Wrong key kind is an error, not a crash. */
    CHECK(sm_get_u64(m, 1, &v) == SM_EKIND);

    /* destroy: the 3 remaining structs go to the hook (SM_REMOVED_DESTROY),
     * and it waits for the hooks of the replaced and deleted ones. */
    CHECK(sm_destroy(m) == SM_OK);

    unsigned del = atomic_load(&freed_by_hook[SM_REMOVED_DELETE]);
    unsigned rep = atomic_load(&freed_by_hook[SM_REMOVED_REPLACE]);
    unsigned des = atomic_load(&freed_by_hook[SM_REMOVED_DESTROY]);
    printf("hook calls: delete %u, replace %u, destroy %u; structs still live: %u\n",
           del, rep, des, atomic_load(&live_sessions));
    CHECK(del == 1 && rep == 1 && des == 3);
    CHECK(atomic_load(&live_sessions) == 0);

    if (failures) {
        fprintf(stderr, "strings: %d check(s) failed\n", failures);
        return 1;
    }
    printf("strings: all checks passed\n");
    return 0;
}
