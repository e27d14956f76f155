/* nms.c: greedy non-maximum suppression as both face-api detectors do it: candidates scoring
 * above the threshold, best first (equal scores: lower index first), each kept unless its IoU with
 * an already kept box exceeds iou_max. Works in place of a sort by selecting the next candidate in
 * that order with a scan, so it needs no scratch memory: O(candidates x boxes), which for the
 * detectors' few hundred to five thousand boxes and a handful of faces is microseconds. */
#include "face/internal.h"

/* Whether candidate a (score sa) comes before b in the order: score descending, then index. */
static inline bool before(float sa, int a, float sb, int b)
{
    return sa > sb || (sa == sb && a < b);
}

/* The IoU the references compute; boxes with no area overlap nothing. */
static float iou(face_box_t a, face_box_t b)
{
    if (!(a.w > 0 && a.h > 0 && b.w > 0 && b.h > 0))
        return 0;
    float x0 = a.x > b.x ? a.x : b.x, y0 = a.y > b.y ? a.y : b.y;
    float x1 = a.x + a.w < b.x + b.w ? a.x + a.w : b.x + b.w;
    float y1 = a.y + a.h < b.y + b.h ? a.y + a.h : b.y + b.h;
    float iw = x1 - x0 > 0 ? x1 - x0 : 0, ih = y1 - y0 > 0 ? y1 - y0 : 0;
    float inter = iw * ih;
    return inter / (a.w * a.h + b.w * b.h - inter);
}

int face__nms(const face_box_t *boxes, const float *scores, int n, int max_out, float iou_max,
              float min_score, int *keep)
{
    int kept = 0, prev = -1;
    float prev_s = 0;
    while (kept < max_out) {
        int next = -1;
        for (int i = 0; i < n; i++) {
            if (!(scores[i] > min_score))
                continue;
            if (prev >= 0 && !before(prev_s, prev, scores[i], i))
                continue;
            if (next < 0 || before(scores[i], i, scores[next], next))
                next = i;
        }
        if (next < 0)
            break;
        prev = next;
        prev_s = scores[next];
        bool suppressed = false;
        for (int k = 0; k < kept && !suppressed; k++)
            suppressed = iou(boxes[next], boxes[keep[k]]) > iou_max;
        if (!suppressed)
            keep[kept++] = next;
    }
    return kept;
}
