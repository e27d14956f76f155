/* nn AVX-512 row-group kernels, included twice by kern_avx512.c: once plain (maddubs + madd)
 * and once with AVX-512 VNNI (vpdpbusd does both in one instruction). The integer sums are the
 * same either way, so both give the same bits; VNNI is only faster.
 * The includer defines ROWS_FN (function attributes), ROWS_NAME(x) and ROWS_VNNI (0 or 1).
 *
 * y[r*ys] = w . x_r for R = 1..4 input rows prepared by xprep at xp + r*ps: the weight blocks are
 * loaded once for all R rows (nn_matmul), and each row's arithmetic is exactly that of R = 1
 * (nn_matvec), so a batch gives the same bits as one row at a time. Instantiated with constant
 * R. */

/* Q8_0 weights: one register per block pair. */
ROWS_FN void ROWS_NAME(q8_rows)(const nn_block_q8_0 *w, const uint8_t *xp, size_t ps, size_t nb,
                              int R, float *y, size_t ys)
{
    size_t nbp = (nb + 15) / 16 * 16;
    const __m512i offs = lane_offsets(LANE_Q8, sizeof *w), ones = _mm512_set1_epi16(1);
    (void)ones;
    __m512 acc[4];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
        acc[r] = _mm512_setzero_ps();
    for (size_t g = 0; g < nb; g += 16) {
        size_t m = nb - g < 16 ? nb - g : 16;
        const nn_block_q8_0 *wb = w + g;
        /* streaming W from memory, the hardware prefetchers alone leave ~15-20% of the bandwidth
         * unused; asking for the lines 4 KiB ahead into L2 closes most of that gap */
        for (size_t l = 0; l < 16 * sizeof *wb; l += 64)
            _mm_prefetch((const char *)wb + NN_PREFETCH_AHEAD + l, _MM_HINT_T1);
        __m512i u[2][4];
#pragma GCC unroll 2
        for (int half = 0; half < 2; half++) {
            __m512i t[2][4];
#pragma GCC unroll 2
            for (int i = 0; i < 2; i++) {
                __m512i pv[2][4];
#pragma GCC unroll 2
                for (int h = 0; h < 2; h++) {
                    size_t b0 = 2 * (size_t)(4 * half + 2 * i + h);
                    if (b0 >= m) {
#pragma GCC unroll 4
                        for (int r = 0; r < R; r++)
                            pv[h][r] = _mm512_setzero_si512();
                        continue;
                    }
                    __m512i wz = _mm512_inserti64x4(_mm512_castsi256_si512(ld_q8(wb + b0, true)),
                                                    ld_q8(wb + b0 + 1, b0 + 1 < m), 1);
                    /* abs(w) times x with w's sign: there is no vpsignb */
                    __m512i aw = _mm512_abs_epi8(wz);
                    __mmask64 neg = _mm512_movepi8_mask(wz);
#pragma GCC unroll 4
                    for (int r = 0; r < R; r++) {
                        __m512i x = _mm512_load_si512(xp + (size_t)r * ps + (g + b0) * 32);
                        __m512i sx = _mm512_mask_sub_epi8(x, neg, _mm512_setzero_si512(), x);
#if ROWS_VNNI
                        pv[h][r] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), aw, sx);
#else
                        pv[h][r] = _mm512_madd_epi16(_mm512_maddubs_epi16(aw, sx), ones);
#endif
                    }
                }
#pragma GCC unroll 4
                for (int r = 0; r < R; r++)
                    t[i][r] = _mm512_add_epi32(_mm512_unpacklo_epi32(pv[0][r], pv[1][r]),
                                               _mm512_unpackhi_epi32(pv[0][r], pv[1][r]));
            }
#pragma GCC unroll 4
            for (int r = 0; r < R; r++)
                u[half][r] = _mm512_add_epi32(_mm512_unpacklo_epi64(t[0][r], t[1][r]),
                                              _mm512_unpackhi_epi64(t[0][r], t[1][r]));
        }
        __m512 dw = gather_d(&wb->d, offs, m == 16 ? 0xffff : lane_mask(LANE_Q8, m));
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            /* 16 block sums in LANE_Q8 order */
            __m512i sum =
                _mm512_add_epi32(_mm512_shuffle_i32x4(u[0][r], u[1][r], _MM_SHUFFLE(2, 0, 2, 0)),
                                 _mm512_shuffle_i32x4(u[0][r], u[1][r], _MM_SHUFFLE(3, 1, 3, 1)));
            const float *xd = (const float *)(xp + (size_t)r * ps + nbp * 32);
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum),
                                     _mm512_mul_ps(dw, _mm512_load_ps(xd + g)), acc[r]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
        y[(size_t)r * ys] = _mm512_reduce_add_ps(acc[r]);
}

/* As q8_rows, for Q4_0 weights (one register per quad of blocks). */
ROWS_FN void ROWS_NAME(q4_rows)(const nn_block_q4_0 *w, const uint8_t *xp, size_t ps, size_t nb,
                              int R, float *y, size_t ys)
{
    size_t nbp = (nb + 15) / 16 * 16;
    const __m512i offs = lane_offsets(LANE_Q4, sizeof *w), ones = _mm512_set1_epi16(1);
    (void)ones;
    const __m512i m0f = _mm512_set1_epi8(0x0f);
    __m512 acc[4];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
        acc[r] = _mm512_setzero_ps();
    for (size_t g = 0; g < nb; g += 16) {
        size_t m = nb - g < 16 ? nb - g : 16;
        const nn_block_q4_0 *wb = w + g;
        /* streaming W from memory, the hardware prefetchers alone leave ~15-20% of the bandwidth
         * unused; asking for the lines 4 KiB ahead into L2 closes most of that gap */
        for (size_t l = 0; l < 16 * sizeof *wb; l += 64)
            _mm_prefetch((const char *)wb + NN_PREFETCH_AHEAD + l, _MM_HINT_T1);
        __m512i t[2][4];
#pragma GCC unroll 2
        for (int i = 0; i < 2; i++) {
            __m512i pv[2][4];
#pragma GCC unroll 2
            for (int h = 0; h < 2; h++) {
                size_t b0 = 4 * (size_t)(2 * i + h), left = m > b0 ? m - b0 : 0;
                if (!left) {
#pragma GCC unroll 4
                    for (int r = 0; r < R; r++)
                        pv[h][r] = _mm512_setzero_si512();
                    continue;
                }
                __m512i z = ld_q4_quad(wb + b0, left);
                __m512i lo = _mm512_and_si512(z, m0f);
                __m512i hi = _mm512_and_si512(_mm512_srli_epi16(z, 4), m0f);
#pragma GCC unroll 4
                for (int r = 0; r < R; r++) {
                    const uint8_t *xb = xp + (size_t)r * ps + g * 32 + 128 * (size_t)(2 * i + h);
#if ROWS_VNNI
                    pv[h][r] = _mm512_dpbusd_epi32(
                        _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, _mm512_load_si512(xb)), hi,
                        _mm512_load_si512(xb + 64));
#else
                    /* each maddubs sum is at most 2*15*127 = 3810: two add up safely in int16 */
                    __m512i s16 = _mm512_add_epi16(
                        _mm512_maddubs_epi16(lo, _mm512_load_si512(xb)),
                        _mm512_maddubs_epi16(hi, _mm512_load_si512(xb + 64)));
                    pv[h][r] = _mm512_madd_epi16(s16, ones);
#endif
                }
            }
#pragma GCC unroll 4
            for (int r = 0; r < R; r++)
                t[i][r] = _mm512_add_epi32(_mm512_unpacklo_epi32(pv[0][r], pv[1][r]),
                                           _mm512_unpackhi_epi32(pv[0][r], pv[1][r]));
        }
        __m512 dw = gather_d(&wb->d, offs, m == 16 ? 0xffff : lane_mask(LANE_Q4, m));
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const float *xd = (const float *)(xp + (size_t)r * ps + nbp * 32);
            const int32_t *xs8 = (const int32_t *)(xd + nbp);
            /* 16 block sums in LANE_Q4 order; sum((q-8)*x) = sum(q*x) - 8*sum(x), exact */
            __m512i sum = _mm512_add_epi32(_mm512_unpacklo_epi64(t[0][r], t[1][r]),
                                           _mm512_unpackhi_epi64(t[0][r], t[1][r]));
            sum = _mm512_sub_epi32(sum, _mm512_load_si512(xs8 + g));
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum),
                                     _mm512_mul_ps(dw, _mm512_load_ps(xd + g)), acc[r]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
        y[(size_t)r * ys] = _mm512_reduce_add_ps(acc[r]);
}

