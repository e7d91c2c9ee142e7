#ifndef CACHEKIT_LIBPQ_SHIM_H
#define CACHEKIT_LIBPQ_SHIM_H

#include <libpq-fe.h>

/// Asks the server to cancel the query running on `cancel`'s connection. Safe to call from another thread.
/// Returns 1 when the request was sent.
static inline int cachekit_pq_cancel(PGcancel *cancel) {
    char buffer[256];
    return PQcancel(cancel, buffer, (int)sizeof(buffer));
}

#endif
