#include "cachekit_kernels.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

struct product {
    int m, n, k, ldx, ldy, first_panel, end_panel;
    const float *x, *bias;
    const uint16_t *packed;
    float *y;
};

struct cachekit_team {
    pthread_t thread;
    pthread_mutex_t owner;       // held by the caller using the team
    pthread_mutex_t lock;        // guards sleeping/wake-up
    pthread_cond_t wake;
    _Atomic unsigned posted;     // generation of the last product handed to the helper
    _Atomic unsigned finished;   // generation of the last product the helper completed
    _Atomic int sleeping;
    _Atomic int stopping;
    long spin_nanoseconds;
    struct product job;          // written before `posted` is released, read after it is acquired
};

static long monotonic_nanoseconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec * 1000000000L + now.tv_nsec;
}

static inline void relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void *helper(void *argument) {
    cachekit_team *team = argument;
    unsigned seen = 0;
    for (;;) {
        long deadline = monotonic_nanoseconds() + team->spin_nanoseconds;
        unsigned spins = 0;
        while (atomic_load(&team->posted) == seen && !atomic_load(&team->stopping)) {
            relax();
            if (++spins % 256 == 0 && monotonic_nanoseconds() > deadline) {
                pthread_mutex_lock(&team->lock);
                atomic_store(&team->sleeping, 1);
                // Checked again after announcing sleep: a poster either sees `sleeping` or we see its generation.
                while (atomic_load(&team->posted) == seen && !atomic_load(&team->stopping))
                    pthread_cond_wait(&team->wake, &team->lock);
                atomic_store(&team->sleeping, 0);
                pthread_mutex_unlock(&team->lock);
            }
        }
        if (atomic_load(&team->stopping)) return NULL;
        seen = atomic_load(&team->posted);
        struct product *p = &team->job;
        cachekit_gemm_f16(p->m, p->n, p->k, p->x, p->ldx, p->packed, p->bias, p->y, p->ldy, p->first_panel, p->end_panel);
        atomic_store(&team->finished, seen);
    }
}

cachekit_team *cachekit_team_create(int spin_microseconds) {
    cachekit_team *team = calloc(1, sizeof *team);
    if (!team) return NULL;
    team->spin_nanoseconds = (long)spin_microseconds * 1000;
    pthread_mutex_init(&team->owner, NULL);
    pthread_mutex_init(&team->lock, NULL);
    pthread_cond_init(&team->wake, NULL);
    if (pthread_create(&team->thread, NULL, helper, team) != 0) {
        pthread_cond_destroy(&team->wake);
        pthread_mutex_destroy(&team->lock);
        pthread_mutex_destroy(&team->owner);
        free(team);
        return NULL;
    }
    return team;
}

static void wake_helper(cachekit_team *team) {
    if (atomic_load(&team->sleeping)) {
        pthread_mutex_lock(&team->lock);
        pthread_cond_signal(&team->wake);
        pthread_mutex_unlock(&team->lock);
    }
}

void cachekit_team_destroy(cachekit_team *team) {
    if (!team) return;
    atomic_store(&team->stopping, 1);
    pthread_mutex_lock(&team->lock);
    pthread_cond_signal(&team->wake);
    pthread_mutex_unlock(&team->lock);
    pthread_join(team->thread, NULL);
    pthread_cond_destroy(&team->wake);
    pthread_mutex_destroy(&team->lock);
    pthread_mutex_destroy(&team->owner);
    free(team);
}

int cachekit_team_try_acquire(cachekit_team *team) { return team && pthread_mutex_trylock(&team->owner) == 0; }

void cachekit_team_release(cachekit_team *team) { pthread_mutex_unlock(&team->owner); }

void cachekit_gemm_f16_team(cachekit_team *team, int m, int n, int k, const float *x, int ldx, const uint16_t *packed,
                            const float *bias, float *y, int ldy) {
    int panels = (n + 15) / 16;
    if (!team || panels < 2) {
        cachekit_gemm_f16(m, n, k, x, ldx, packed, bias, y, ldy, 0, panels);
        return;
    }
    int middle = panels / 2;
    team->job = (struct product){m, n, k, ldx, ldy, middle, panels, x, bias, packed, y};
    unsigned generation = atomic_load(&team->posted) + 1;
    atomic_store(&team->posted, generation);
    wake_helper(team);
    cachekit_gemm_f16(m, n, k, x, ldx, packed, bias, y, ldy, 0, middle);
    while (atomic_load(&team->finished) != generation) relax();
}
