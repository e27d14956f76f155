/* detect.c: face_detect, the detection stage of the public API — runs the chosen detector (tiny
 * or SSD) on the ctx's engine, clips each box to the picture (a box with nothing inside it is
 * dropped) and returns the faces best score first. Runs on the caller's thread with the ctx's
 * pool; allocates nothing outside the ctx's arena. */
#include <errno.h>
#include <string.h>

#include "face/internal.h"

/* Clips b to a w x h picture; false when nothing is left. */
static bool clip_box(face_box_t *b, int w, int h)
{
    float x0 = b->x > 0 ? b->x : 0, y0 = b->y > 0 ? b->y : 0;
    float x1 = b->x + b->w < (float)w ? b->x + b->w : (float)w;
    float y1 = b->y + b->h < (float)h ? b->y + b->h : (float)h;
    if (!(x1 > x0 && y1 > y0))
        return false;
    *b = (face_box_t){x0, y0, x1 - x0, y1 - y0};
    return true;
}

int face_detect(face_ctx_t *ctx, const image_t *img, face_detector_t detector, float min_score,
                int tiny_input_size, face_t *faces, int max_faces, int *n_faces)
{
    *n_faces = 0;
    if (!ctx || !img || !img->rgb || img->width <= 0 || img->height <= 0 || max_faces < 0 ||
        (max_faces > 0 && !faces))
        return -EINVAL;
    if (max_faces == 0)
        return 0;
    const face_engine_t *e = ctx->engine;
    if (!e || (detector == FACE_DETECTOR_TINY ? !e->tiny : !e->ssd))
        return -EINVAL;
    size_t mark = face__arena_mark(&ctx->arena);
    face_box_t *boxes = (face_box_t *)face__arena_alloc(&ctx->arena, 4 * (size_t)max_faces);
    float *scores = face__arena_alloc(&ctx->arena, (size_t)max_faces);
    int n = 0, rc;
    if (!boxes || !scores) {
        rc = -ENOMEM;
        goto out;
    }
    if (detector == FACE_DETECTOR_TINY)
        rc = face__tiny_detect(ctx, e->tiny, img, tiny_input_size, min_score, max_faces, boxes,
                               scores, &n);
    else
        rc = face__ssd_detect(ctx, e->ssd, img, min_score, max_faces, boxes, scores, &n);
    if (rc)
        goto out;
    int k = 0;
    for (int i = 0; i < n; i++) {
        face_box_t b = boxes[i];
        if (!clip_box(&b, img->width, img->height))
            continue;
        memset(&faces[k], 0, sizeof faces[k]);
        faces[k].box = b;
        faces[k].score = scores[i];
        k++;
    }
    *n_faces = k;
out:
    face__arena_reset(&ctx->arena, mark);
    return rc;
}
