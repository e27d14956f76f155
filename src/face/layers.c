/* layers.c: fetching the layer types the face networks are made of (convolution, separable
 * convolution, fully connected) out of a decoded tfjs weight map by their face-api names, each
 * tensor's shape checked against the layer the network expects. Loading only; the weights stay
 * owned by the weight map, which the network keeps for its lifetime. */
#include <errno.h>
#include <stdio.h>

#include "core/core.h"
#include "face/internal.h"

/* A tensor by prefix/suffix, shape-checked; NULL with the reason in err. */
static float *get(face_weights_t *w, const char *prefix, const char *suffix, int n_dims,
                  const int *shape, char *err, size_t errcap)
{
    char name[256];
    if (snprintf(name, sizeof name, "%s/%s", prefix, suffix) >= (int)sizeof name) {
        snprintf(err, errcap, "weight name too long: %s", prefix);
        return NULL;
    }
    return face__weights_get(w, name, n_dims, shape, err, errcap);
}

int face__load_conv(face_weights_t *w, const char *prefix, int k, int cin, int cout, int stride,
                    face_pad_t pad, face_conv_t *out, char *err, size_t errcap)
{
    const int fshape[4] = { k, k, cin, cout }, bshape[1] = { cout };
    out->k = k;
    out->stride = stride;
    out->cin = cin;
    out->cout = cout;
    out->pad = pad;
    out->w = get(w, prefix, "filters", 4, fshape, err, errcap);
    out->bias = out->w ? get(w, prefix, "bias", 1, bshape, err, errcap) : NULL;
    return out->bias ? 0 : CORE_EBADMEDIA;
}

int face__load_sepconv(face_weights_t *w, const char *prefix, int cin, int cout, int stride,
                       face_sepconv_t *out, char *err, size_t errcap)
{
    const int dshape[4] = { 3, 3, cin, 1 }, pshape[4] = { 1, 1, cin, cout }, bshape[1] = { cout };
    out->dw.k = 3;
    out->dw.stride = stride;
    out->dw.c = cin;
    out->dw.pad = FACE_PAD_SAME;
    out->dw.bias = NULL;
    out->pw.k = 1;
    out->pw.stride = 1;
    out->pw.cin = cin;
    out->pw.cout = cout;
    out->pw.pad = FACE_PAD_SAME;
    out->dw.w = get(w, prefix, "depthwise_filter", 4, dshape, err, errcap);
    out->pw.w = out->dw.w ? get(w, prefix, "pointwise_filter", 4, pshape, err, errcap) : NULL;
    out->pw.bias = out->pw.w ? get(w, prefix, "bias", 1, bshape, err, errcap) : NULL;
    return out->pw.bias ? 0 : CORE_EBADMEDIA;
}

int face__load_fc(face_weights_t *w, const char *prefix, int in, int out, face_fc_t *l,
                  char *err, size_t errcap)
{
    const int wshape[2] = { in, out }, bshape[1] = { out };
    l->in = in;
    l->out = out;
    l->w = get(w, prefix, "weights", 2, wshape, err, errcap);
    l->bias = l->w ? get(w, prefix, "bias", 1, bshape, err, errcap) : NULL;
    return l->bias ? 0 : CORE_EBADMEDIA;
}
