/* ops_extra.c: the elementwise steps the face networks' blocks need besides ops.c's — the sum
 * of a shortcut and a branch through a relu, into a new buffer or in place, and a relu copy —
 * branch-free and four floats at a time on GCC's vector extensions (SSE on x86-64); a relu
 * written as a compare-and-branch mispredicts on half the activations and cost more than the
 * convolutions around it. Pure functions on the calling thread. */
#include <stddef.h>

#include "face/internal.h"

/* 4-byte aligned: the buffers are whole tensors, but nothing here needs more. */
typedef float v4f __attribute__((vector_size(16), aligned(4)));
typedef int v4i __attribute__((vector_size(16), aligned(4)));

static inline v4f relu4(v4f v)
{
    const v4f zero = { 0 };
    return (v4f)((v4i)v & (v4i)(v > zero)); /* the mask is all ones where v > 0 */
}

void face__add_relu(float *y, const float *a, const float *b, size_t n)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        *(v4f *)(y + i) = relu4(*(const v4f *)(a + i) + *(const v4f *)(b + i));
    for (; i < n; i++) {
        float v = a[i] + b[i];
        y[i] = v > 0 ? v : 0;
    }
}

void face__relu_copy(float *y, const float *x, size_t n)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        *(v4f *)(y + i) = relu4(*(const v4f *)(x + i));
    for (; i < n; i++)
        y[i] = x[i] > 0 ? x[i] : 0;
}
