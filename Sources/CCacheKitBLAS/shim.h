#ifndef CACHEKIT_BLAS_SHIM_H
#define CACHEKIT_BLAS_SHIM_H

// OpenBLAS's CBLAS interface (Debian: libopenblas-dev; pkg-config `openblas` adds its include directory).
#include <cblas.h>

/// C = alpha * A * B^T + beta * C, row-major: A is m×k (lda), B is n×k (ldb), C is m×n (ldc).
static inline void cachekit_sgemm_nt(int m, int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
                                     float beta, float *c, int ldc) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/// C = alpha * A * B + beta * C, row-major: A is m×k (lda), B is k×n (ldb), C is m×n (ldc).
static inline void cachekit_sgemm_nn(int m, int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
                                     float beta, float *c, int ldc) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

#endif
