#ifndef CACHEKIT_KERNELS_H
#define CACHEKIT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/// Matrix products for the encoder's short inputs (one query is about 17 rows), where a general BLAS spends much of
/// its time on packing and thread hand-off. The weights are packed once, at load time, into half-precision panels
/// of 16 output columns: half the memory traffic of single precision, and the panels of a small model fit in the
/// last-level cache. Products accumulate in single precision (FMA).

/// Whether this processor has what the kernels need (AVX2, FMA, F16C). Without it, callers use BLAS.
int cachekit_kernels_available(void);

/// Number of 16-bit values the packed form of an [n × k] weight matrix takes.
size_t cachekit_packed_count(int n, int k);

/// Packs w [n × k], row-major (PyTorch's [out × in]), into `packed` (cachekit_packed_count(n, k) values): panels of
/// 16 rows of w, each stored k-major, in half precision (round to nearest even); a partial last panel is zero-filled.
void cachekit_pack_f16(const float *w, int n, int k, uint16_t *packed);

/// y[m × n] (row stride ldy) = x[m × k] (row stride ldx) · wᵀ + bias, for the output columns of panels
/// [first_panel, end_panel) only, so that callers can split one product across threads by panel.
/// Requires cachekit_kernels_available().
void cachekit_gemm_f16(int m, int n, int k, const float *x, int ldx, const uint16_t *packed, const float *bias,
                       float *y, int ldy, int first_panel, int end_panel);



/// A helper thread that computes half of each product for one caller at a time. Between products it waits by
/// spinning for up to `spin_microseconds` (the gaps inside one encoder pass are far shorter), then sleeps on a
/// condition variable, so an idle team costs nothing.
typedef struct cachekit_team cachekit_team;

/// Starts the helper thread; NULL when the thread cannot be created (callers then compute alone).
cachekit_team *cachekit_team_create(int spin_microseconds);

/// Stops and joins the helper thread and frees the team. No call may be using it.
void cachekit_team_destroy(cachekit_team *team);

/// Takes the team for the calling thread if no other thread holds it: 1 if taken, 0 if busy.
int cachekit_team_try_acquire(cachekit_team *team);

/// Gives the team back.
void cachekit_team_release(cachekit_team *team);

/// cachekit_gemm_f16 over every panel, the helper thread taking the second half of the panels when `team` (held by
/// the caller) is not NULL.
void cachekit_gemm_f16_team(cachekit_team *team, int m, int n, int k, const float *x, int ldx, const uint16_t *packed,
                            const float *bias, float *y, int ldy);
#endif
