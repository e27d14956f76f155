/* arena.c: the face ctx's working memory — a bump allocator of 64-byte aligned floats. Every
 * activation of a forward pass comes from here; a pass takes a mark at its start and resets to it
 * at the end. Chunks are added when a pass needs more than there is; a reset to 0 after a pass that
 * needed several chunks merges them into one of the high-water size, so from the second frame of a
 * given size on nothing is allocated. One thread at a time (the ctx's owner). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "face/internal.h"

enum { ARENA_ALIGN_FLOATS = 16, ARENA_MIN_CHUNK = 1 << 20 /* floats */ };

struct face_arena_chunk {
    struct face_arena_chunk *next; /* older chunk */
    size_t base;                   /* arena offset of d[0] */
    size_t cap, used;              /* floats */
    float *d;
};

void face__arena_init(face_arena_t *a)
{
    memset(a, 0, sizeof *a);
}

static void free_chunks(struct face_arena_chunk *c)
{
    while (c) {
        struct face_arena_chunk *n = c->next;
        free(c->d);
        free(c);
        c = n;
    }
}

void face__arena_destroy(face_arena_t *a)
{
    free_chunks(a->chunks);
    memset(a, 0, sizeof *a);
}

static struct face_arena_chunk *chunk_new(size_t cap, size_t base)
{
    struct face_arena_chunk *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (posix_memalign((void **)&c->d, 64, cap * sizeof(float)) != 0) {
        free(c);
        return NULL;
    }
    c->cap = cap;
    c->base = base;
    return c;
}

float *face__arena_alloc(face_arena_t *a, size_t n_floats)
{
    size_t n = (n_floats + ARENA_ALIGN_FLOATS - 1) / ARENA_ALIGN_FLOATS * ARENA_ALIGN_FLOATS;
    if (n == 0)
        n = ARENA_ALIGN_FLOATS;
    struct face_arena_chunk *c = a->chunks;
    if (!c || c->cap - c->used < n) {
        /* the unused tail of the old chunk is counted as used so offsets stay monotonic */
        size_t base = c ? c->base + c->cap : 0;
        size_t cap = n > ARENA_MIN_CHUNK ? n : ARENA_MIN_CHUNK;
        if (c && cap < c->cap)
            cap = c->cap;
        struct face_arena_chunk *nc = chunk_new(cap, base);
        if (!nc)
            return NULL;
        nc->next = c;
        a->chunks = c = nc;
        a->used_total = base;
    }
    float *p = c->d + c->used;
    c->used += n;
    a->used_total = c->base + c->used;
    if (a->used_total > a->high_water)
        a->high_water = a->used_total;
    return p;
}

size_t face__arena_mark(const face_arena_t *a)
{
    return a->used_total;
}

void face__arena_reset(face_arena_t *a, size_t mark)
{
    /* drop chunks that start at or after the mark */
    while (a->chunks && a->chunks->base >= mark && a->chunks->next) {
        struct face_arena_chunk *c = a->chunks;
        a->chunks = c->next;
        free(c->d);
        free(c);
    }
    struct face_arena_chunk *c = a->chunks;
    if (!c) {
        a->used_total = 0;
        return;
    }
    if (mark == 0 && (c->next || c->cap < a->high_water)) {
        /* several chunks were needed: replace them by one that holds the whole high water */
        struct face_arena_chunk *nc = chunk_new(a->high_water, 0);
        if (nc) {
            free_chunks(a->chunks);
            a->chunks = nc;
            a->used_total = 0;
            return;
        }
    }
    c->used = mark > c->base ? mark - c->base : 0;
    a->used_total = c->base + c->used;
}

int face__tensor(face_arena_t *a, int h, int w, int c, face_tensor_t *out)
{
    if (h <= 0 || w <= 0 || c <= 0)
        return -EINVAL;
    float *d = face__arena_alloc(a, (size_t)h * w * c);
    if (!d)
        return -ENOMEM;
    out->h = h;
    out->w = w;
    out->c = c;
    out->d = d;
    return 0;
}
