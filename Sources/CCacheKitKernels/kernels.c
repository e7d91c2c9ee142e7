#include "cachekit_kernels.h"

#include <immintrin.h>
#include <string.h>

#define PANEL 16

int cachekit_kernels_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}

size_t cachekit_packed_count(int n, int k) { return (size_t)((n + PANEL - 1) / PANEL) * PANEL * (size_t)k; }

/// IEEE binary32 → binary16, round to nearest even, in portable C (packing runs once per model load).
static uint16_t to_half(float value) {
    uint32_t bits;
    memcpy(&bits, &value, 4);
    uint32_t sign = (bits >> 16) & 0x8000u;
    uint32_t magnitude = bits & 0x7FFFFFFFu;
    if (magnitude > 0x7F800000u) return (uint16_t)(sign | 0x7E00u | ((magnitude >> 13) & 0x3FFu));  // quiet NaN, payload kept
    if (magnitude == 0x7F800000u) return (uint16_t)(sign | 0x7C00u);
    if (magnitude >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u);  // rounds to beyond the largest half
    if (magnitude < 0x38800000u) {                                  // below the smallest normal half: subnormal
        if (magnitude < 0x33000000u) return (uint16_t)sign;          // below half the smallest subnormal
        uint32_t exponent = magnitude >> 23;
        uint32_t mantissa = (magnitude & 0x7FFFFFu) | 0x800000u;
        uint32_t shift = 126 - exponent;                             // 14 + (112 - exponent) + 1 - 1
        uint32_t half = mantissa >> shift;
        uint32_t rest = mantissa & ((1u << shift) - 1);
        uint32_t midpoint = 1u << (shift - 1);
        if (rest > midpoint || (rest == midpoint && (half & 1))) half += 1;
        return (uint16_t)(sign | half);
    }
    uint32_t half = ((magnitude >> 13) - (112u << 10));
    uint32_t rest = magnitude & 0x1FFFu;
    if (rest > 0x1000u || (rest == 0x1000u && (half & 1))) half += 1;  // a carry into the exponent is still right
    return (uint16_t)(sign | half);
}

void cachekit_pack_f16(const float *w, int n, int k, uint16_t *packed) {
    int panels = (n + PANEL - 1) / PANEL;
    for (int p = 0; p < panels; p++) {
        uint16_t *panel = packed + (size_t)p * PANEL * k;
        for (int kk = 0; kk < k; kk++) {
            for (int j = 0; j < PANEL; j++) {
                int row = p * PANEL + j;
                panel[(size_t)kk * PANEL + j] = row < n ? to_half(w[(size_t)row * k + kk]) : 0;
            }
        }
    }
}

/// One tile: `rows` (1...6, a constant after inlining) rows of x against one panel, 16 columns of y.
__attribute__((target("avx2,fma,f16c"), always_inline)) static inline void
tile(const int rows, int k, const float *x, int ldx, const uint16_t *panel, const float *bias, float *y, int ldy,
     int columns) {
    __m256 acc[6][2];
    for (int r = 0; r < rows; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (int kk = 0; kk < k; kk++) {
        const __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(panel + (size_t)kk * PANEL)));
        const __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(panel + (size_t)kk * PANEL + 8)));
        for (int r = 0; r < rows; r++) {
            const __m256 xv = _mm256_broadcast_ss(x + (size_t)r * ldx + kk);
            acc[r][0] = _mm256_fmadd_ps(xv, w0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(xv, w1, acc[r][1]);
        }
    }
    if (columns == PANEL) {
        const __m256 b0 = _mm256_loadu_ps(bias), b1 = _mm256_loadu_ps(bias + 8);
        for (int r = 0; r < rows; r++) {
            _mm256_storeu_ps(y + (size_t)r * ldy, _mm256_add_ps(acc[r][0], b0));
            _mm256_storeu_ps(y + (size_t)r * ldy + 8, _mm256_add_ps(acc[r][1], b1));
        }
    } else {
        float row[PANEL];
        for (int r = 0; r < rows; r++) {
            _mm256_storeu_ps(row, acc[r][0]);
            _mm256_storeu_ps(row + 8, acc[r][1]);
            for (int c = 0; c < columns; c++) y[(size_t)r * ldy + c] = row[c] + bias[c];
        }
    }
}

__attribute__((target("avx2,fma,f16c"))) void cachekit_gemm_f16(int m, int n, int k, const float *x, int ldx,
                                                                const uint16_t *packed, const float *bias, float *y,
                                                                int ldy, int first_panel, int end_panel) {
    // Denormal inputs and results take a slow path in the FMA units; values below 1e-38 are zero for this purpose.
    unsigned int saved = _mm_getcsr();
    _mm_setcsr(saved | 0x8040);  // flush to zero, denormals are zero
    for (int p = first_panel; p < end_panel; p++) {
        const uint16_t *panel = packed + (size_t)p * PANEL * k;
        int column = p * PANEL;
        int columns = n - column < PANEL ? n - column : PANEL;
        // The panel (16 × k halves) stays in L1/L2 while every row tile passes over it.
        int row = 0;
        for (; row + 6 <= m; row += 6)
            tile(6, k, x + (size_t)row * ldx, ldx, panel, bias + column, y + (size_t)row * ldy + column, ldy, columns);
        const float *xr = x + (size_t)row * ldx;
        float *yr = y + (size_t)row * ldy + column;
        switch (m - row) {
        case 5: tile(5, k, xr, ldx, panel, bias + column, yr, ldy, columns); break;
        case 4: tile(4, k, xr, ldx, panel, bias + column, yr, ldy, columns); break;
        case 3: tile(3, k, xr, ldx, panel, bias + column, yr, ldy, columns); break;
        case 2: tile(2, k, xr, ldx, panel, bias + column, yr, ldy, columns); break;
        case 1: tile(1, k, xr, ldx, panel, bias + column, yr, ldy, columns); break;
        default: break;
        }
    }
    _mm_setcsr(saved);
}
