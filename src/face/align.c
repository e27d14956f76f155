/* align.c: where each face network's input is cut from — the reference's crops, reproduced to
 * the pixel because a one-pixel shift of a crop moves every later result:
 *   landmarks        the detection box;
 *   age/gender and   the bounding box of the 68 landmarks enlarged by 20% (FaceLandmarks.align()
 *   expressions      with its defaults: alignMinBbox(0.2)), after the round trip through
 *                    relative coordinates that face-api's FaceDetection makes twice;
 *   recognition      the dlib-style square around the eyes and the mouth (align() with
 *                    useDlibAlignment), its sides capped by the landmark crop's;
 * every one clipped to the image and then floored (Box.clipAtImageBorders), and fed to the
 * network padded to a centred square (prep.c). Geometry in double, as JavaScript computes it.
 * Pure functions except face__face_input, which writes into the ctx's arena. */
#include <errno.h>
#include <math.h>

#include "face/internal.h"

/* face-api's alignment constants (classes/FaceLandmarks.ts) */
#define ALIGN_REL_X 0.5
#define ALIGN_REL_Y 0.43
#define ALIGN_REL_SCALE 0.45
#define ALIGN_MIN_BOX_PADDING 0.2

static const float face_net_mean[3] = { 122.782f, 117.001f, 104.298f };

int face__crop_rect(double x, double y, double w, double h, int img_w, int img_h,
                    face_rect_t *out)
{
    if (!(isfinite(x) && isfinite(y) && isfinite(w) && isfinite(h)))
        return -EINVAL;
    double cx = x > 0 ? x : 0, cy = y > 0 ? y : 0;
    double cw = x + w - cx, ch = y + h - cy;
    if (cw > img_w - cx)
        cw = img_w - cx;
    if (ch > img_h - cy)
        ch = img_h - cy;
    double fx = floor(cx), fy = floor(cy), fw = floor(cw), fh = floor(ch);
    /* extractFaceTensors drops a box with nothing left; a box starting past the image is
     * refused too (tf.slice would throw). */
    if (fw <= 0 || fh <= 0 || fx >= img_w || fy >= img_h)
        return -EINVAL;
    out->x = (int)fx;
    out->y = (int)fy;
    out->w = (int)fw;
    out->h = (int)fh;
    return 0;
}

/* FaceDetection keeps its box relative to the image and scales it back on every read. */
static double rel_round_trip(double v, int side)
{
    return v * (1.0 / side) * side;
}

int face__align_rect(const face_point_t lm[FACE_LANDMARK_COUNT], int img_w, int img_h,
                     face_rect_t *out)
{
    /* minBbox starts its maxima at 0, as face-api does (coordinates are never negative in
     * practice) */
    double min_x = INFINITY, min_y = INFINITY, max_x = 0, max_y = 0;
    for (int i = 0; i < FACE_LANDMARK_COUNT; i++) {
        double px = lm[i].x, py = lm[i].y;
        if (px < min_x)
            min_x = px;
        if (py < min_y)
            min_y = py;
        if (max_x < px)
            max_x = px;
        if (max_y < py)
            max_y = py;
    }
    double w = max_x - min_x, h = max_y - min_y;
    double pad_x = w * ALIGN_MIN_BOX_PADDING, pad_y = h * ALIGN_MIN_BOX_PADDING;
    double x = min_x - pad_x / 2, y = min_y - pad_y / 2;
    w += pad_x;
    h += pad_y;
    for (int k = 0; k < 2; k++) {
        x = rel_round_trip(x, img_w);
        y = rel_round_trip(y, img_h);
        w = rel_round_trip(w, img_w);
        h = rel_round_trip(h, img_h);
    }
    return face__crop_rect(x, y, w, h, img_w, img_h, out);
}

static void centre(const face_point_t *p, int n, double *cx, double *cy)
{
    double sx = 0, sy = 0;
    for (int i = 0; i < n; i++) {
        sx += p[i].x;
        sy += p[i].y;
    }
    *cx = sx / n;
    *cy = sy / n;
}

int face__align_rect_dlib(const face_point_t lm[FACE_LANDMARK_COUNT], const face_rect_t *lm_crop,
                          int img_w, int img_h, face_rect_t *out)
{
    double lx, ly, rx, ry, mx, my;
    centre(lm + 36, 6, &lx, &ly);  /* left eye */
    centre(lm + 42, 6, &rx, &ry);  /* right eye */
    centre(lm + 48, 20, &mx, &my); /* mouth */
    double eye_to_mouth = (hypot(mx - lx, my - ly) + hypot(mx - rx, my - ry)) / 2;
    double size = floor(eye_to_mouth / ALIGN_REL_SCALE);
    double ref_x = (lx + rx + mx) / 3, ref_y = (ly + ry + my) / 3;
    double x = floor(fmax(0, ref_x - ALIGN_REL_X * size));
    double y = floor(fmax(0, ref_y - ALIGN_REL_Y * size));
    /* alignDlib: Math.min(size, imageWidth + x), where imageWidth is that of the landmarks' own
     * picture — the landmark crop. It binds only where the box starts at the picture's left or
     * top edge and the crop there is narrower than the box: a face cut by the edge. */
    double w = size, h = size;
    if (lm_crop) {
        w = fmin(size, lm_crop->w + x);
        h = fmin(size, lm_crop->h + y);
    }
    return face__crop_rect(x, y, w, h, img_w, img_h, out);
}

int face__face_input(face_ctx_t *ctx, const image_t *img, face_rect_t rect, int side,
                     face_tensor_t *y)
{
    int square;
    return face__prep(ctx, img, rect.x, rect.y, rect.w, rect.h, true, side, face_net_mean,
                      1.0f / 255.0f, y, &square);
}
