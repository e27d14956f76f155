/* image/orient.c: EXIF orientation (TIFF tag 0x0112) applied to decoded pixels, so that pixel
 * (0,0) is the top-left of the picture as shown. Values, as the EXIF spec names them by where the
 * stored row 0 and column 0 end up: 1 top/left (as stored), 2 top/right (mirrored), 3
 * bottom/right (180°), 4 bottom/left (flipped), 5 left/top (transposed), 6 right/top (turn 90°
 * clockwise to view), 7 right/bottom (transverse), 8 left/bottom (turn 90° anticlockwise).
 * Portrait phone photos are 6, so this runs on most of them: it is written for speed. */
#include "image/internal.h"

#include <stddef.h>

/* Output tiles, in pixels: a turn reads a source column per output row, and a tile keeps those
 * reads within a few hundred cache lines. */
#define TILE 32

/* Where upright pixel (x, y) comes from in the stored sw x sh picture. */
static void source_of(int orientation, int x, int y, int sw, int sh, int *sx, int *sy)
{
    switch (orientation) {
    case 2: *sx = sw - 1 - x; *sy = y; break;
    case 3: *sx = sw - 1 - x; *sy = sh - 1 - y; break;
    case 4: *sx = x; *sy = sh - 1 - y; break;
    case 5: *sx = y; *sy = x; break;
    case 6: *sx = y; *sy = sh - 1 - x; break;
    case 7: *sx = sw - 1 - y; *sy = sh - 1 - x; break;
    case 8: *sx = sw - 1 - y; *sy = x; break;
    default: *sx = x; *sy = y; break;
    }
}

int image__apply_orientation(image_t *img, int orientation)
{
    image_t up;
    const uint8_t *src = img->rgb; /* a local: uint8_t stores could alias img->rgb otherwise */
    int sw = img->width, sh = img->height;
    int swap = orientation >= 5 && orientation <= 8;
    ptrdiff_t step;
    int ret;

    if (orientation < 2 || orientation > 8)
        return 0;
    ret = image_alloc(&up, swap ? sh : sw, swap ? sw : sh);
    if (ret < 0)
        return ret;
    /* Along an output row the source moves by a constant step (±1 pixel or ±1 row). */
    {
        int ax, ay, bx, by;
        source_of(orientation, 0, 0, sw, sh, &ax, &ay);
        source_of(orientation, 1, 0, sw, sh, &bx, &by);
        step = ((ptrdiff_t)(by - ay) * sw + (bx - ax)) * 3;
    }
    for (int ty = 0; ty < up.height; ty += TILE) {
        int ty_end = ty + TILE < up.height ? ty + TILE : up.height;
        for (int tx = 0; tx < up.width; tx += TILE) {
            int tx_end = tx + TILE < up.width ? tx + TILE : up.width;
            for (int y = ty; y < ty_end; y++) {
                uint8_t *dst = up.rgb + ((size_t)y * up.width + tx) * 3;
                int sx, sy;
                ptrdiff_t s;
                source_of(orientation, tx, y, sw, sh, &sx, &sy);
                s = ((ptrdiff_t)sy * sw + sx) * 3;
                for (int x = tx; x < tx_end; x++, dst += 3, s += step) {
                    dst[0] = src[s];
                    dst[1] = src[s + 1];
                    dst[2] = src[s + 2];
                }
            }
        }
    }
    image_free(img);
    *img = up;
    return 0;
}
