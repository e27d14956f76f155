/* alloc.c: the image_t lifecycle and format sniffing — what every decoder and writer shares. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "image/image.h"

image_format_t image_sniff(const void *data, size_t len)
{
    const unsigned char *p = data;
    if (len >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF)
        return IMAGE_FORMAT_JPEG;
    if (len >= 8 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0)
        return IMAGE_FORMAT_PNG;
    /* "P6" then whitespace: the header's first separator is part of the magic. */
    if (len >= 3 && p[0] == 'P' && p[1] == '6' && strchr(" \t\r\n", p[2]) && p[2])
        return IMAGE_FORMAT_PPM;
    return IMAGE_FORMAT_UNKNOWN;
}

int image_alloc(image_t *out, int width, int height)
{
    memset(out, 0, sizeof *out);
    if (width <= 0 || height <= 0 || width > IMAGE_MAX_SIDE || height > IMAGE_MAX_SIDE)
        return -EINVAL;
    out->rgb = malloc((size_t)width * (size_t)height * 3);
    if (!out->rgb)
        return -ENOMEM;
    out->width = width;
    out->height = height;
    return 0;
}

void image_free(image_t *img)
{
    if (!img)
        return;
    free(img->rgb);
    memset(img, 0, sizeof *img);
}
