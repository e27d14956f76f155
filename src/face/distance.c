/* distance.c: comparing faces — descriptor distances (Euclidean, the reference's measure, and
 * cosine), box overlap — and the small tables of names the API shows. Pure functions. */
#include <errno.h>
#include <math.h>
#include <string.h>
#include <strings.h>

#include "face/face.h"

const char *const face_expression_names[FACE_EXPRESSION_COUNT] = {
    "neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised",
};

const char *face_detector_name(face_detector_t d)
{
    return d == FACE_DETECTOR_SSD ? "ssd" : "tiny";
}

int face_detector_parse(const char *name, face_detector_t *out)
{
    if (name && strcasecmp(name, "tiny") == 0)
        *out = FACE_DETECTOR_TINY;
    else if (name && strcasecmp(name, "ssd") == 0)
        *out = FACE_DETECTOR_SSD;
    else
        return -EINVAL;
    return 0;
}

face_options_t face_options_default(void)
{
    face_options_t o;
    memset(&o, 0, sizeof o);
    o.detector = FACE_DETECTOR_TINY;
    o.want = FACE_WANT_ALL;
    return o;
}

float face_distance(const float a[FACE_DESCRIPTOR_DIM], const float b[FACE_DESCRIPTOR_DIM])
{
    double s = 0;
    for (int i = 0; i < FACE_DESCRIPTOR_DIM; i++) {
        double d = (double)a[i] - b[i];
        s += d * d;
    }
    return (float)sqrt(s);
}

float face_cosine_distance(const float a[FACE_DESCRIPTOR_DIM], const float b[FACE_DESCRIPTOR_DIM])
{
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < FACE_DESCRIPTOR_DIM; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    if (aa == 0 || bb == 0)
        return 1.0f;
    return (float)(1.0 - ab / (sqrt(aa) * sqrt(bb)));
}

float face_box_iou(face_box_t a, face_box_t b)
{
    if (!(a.w > 0 && a.h > 0 && b.w > 0 && b.h > 0))
        return 0;
    float x0 = fmaxf(a.x, b.x), y0 = fmaxf(a.y, b.y);
    float x1 = fminf(a.x + a.w, b.x + b.w), y1 = fminf(a.y + a.h, b.y + b.h);
    float inter = fmaxf(0, x1 - x0) * fmaxf(0, y1 - y0);
    return inter / (a.w * a.h + b.w * b.h - inter);
}
