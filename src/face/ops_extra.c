/* ops_extra.c: the elementwise steps the face networks' blocks need besides ops.c's — the sum
 * of a shortcut and a branch through a relu, into a new buffer or in place, and a relu copy —
 * branch-free and four floats at a time (SSE2, which every x86-64 has); a relu written as a
 * compare-and-branch mispredicts on half the activations and cost more than the convolutions
 * around it. Pure functions on the calling thread. */
#include <stddef.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "face/internal.h"

void face__add_relu(float *y, const float *a, const float *b, size_t n)
{
    size_t i = 0;
#if defined(__SSE2__)
    const __m128 zero = _mm_setzero_ps();
    for (; i + 4 <= n; i += 4)
        _mm_storeu_ps(y + i, _mm_max_ps(_mm_add_ps(_mm_loadu_ps(a + i), _mm_loadu_ps(b + i)), zero));
#endif
    for (; i < n; i++) {
        float v = a[i] + b[i];
        y[i] = v > 0 ? v : 0;
    }
}

void face__relu_copy(float *y, const float *x, size_t n)
{
    size_t i = 0;
#if defined(__SSE2__)
    const __m128 zero = _mm_setzero_ps();
    for (; i + 4 <= n; i += 4)
        _mm_storeu_ps(y + i, _mm_max_ps(_mm_loadu_ps(x + i), zero));
#endif
    for (; i < n; i++)
        y[i] = x[i] > 0 ? x[i] : 0;
}
