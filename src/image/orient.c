/* image/orient.c: EXIF orientation (TIFF tag 0x0112) applied to decoded pixels, so that pixel
 * (0,0) is the top-left of the picture as shown. Values, as the EXIF spec names them by where the
 * stored row 0 and column 0 end up: 1 top/left (as stored), 2 top/right (mirrored), 3
 * bottom/right (180°), 4 bottom/left (flipped), 5 left/top (transposed), 6 right/top (turn 90°
 * clockwise to view), 7 right/bottom (transverse), 8 left/bottom (turn 90° anticlockwise). */
#include "image/internal.h"

#include <string.h>

/* Where stored pixel (sx, sy) lands in the upright picture of size dw x dh. */
static void map_pixel(int orientation, int sx, int sy, int dw, int dh, int *dx, int *dy)
{
    switch (orientation) {
    case 2: *dx = dw - 1 - sx; *dy = sy; break;
    case 3: *dx = dw - 1 - sx; *dy = dh - 1 - sy; break;
    case 4: *dx = sx; *dy = dh - 1 - sy; break;
    case 5: *dx = sy; *dy = sx; break;
    case 6: *dx = dw - 1 - sy; *dy = sx; break;
    case 7: *dx = dw - 1 - sy; *dy = dh - 1 - sx; break;
    case 8: *dx = sy; *dy = dh - 1 - sx; break;
    default: *dx = sx; *dy = sy; break;
    }
}

int image__apply_orientation(image_t *img, int orientation)
{
    image_t up;
    int sw = img->width, sh = img->height;
    int swap = orientation >= 5 && orientation <= 8;
    int ret;

    if (orientation < 2 || orientation > 8)
        return 0;
    ret = image_alloc(&up, swap ? sh : sw, swap ? sw : sh);
    if (ret < 0)
        return ret;
    for (int sy = 0; sy < sh; sy++) {
        const uint8_t *src = img->rgb + (size_t)sy * sw * 3;
        for (int sx = 0; sx < sw; sx++) {
            int dx, dy;
            map_pixel(orientation, sx, sy, up.width, up.height, &dx, &dy);
            memcpy(up.rgb + ((size_t)dy * up.width + dx) * 3, src + (size_t)sx * 3, 3);
        }
    }
    image_free(img);
    *img = up;
    return 0;
}
