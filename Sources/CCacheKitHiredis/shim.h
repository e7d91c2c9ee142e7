#ifndef CACHEKIT_HIREDIS_SHIM_H
#define CACHEKIT_HIREDIS_SHIM_H

// Debian 12 ships hiredis 0.14.1 (RESP2, no TLS, no redisConnectWithOptions). Everything CacheKit uses exists
// there; anything newer must be guarded with HIREDIS_MAJOR/HIREDIS_MINOR.
#include <hiredis/hiredis.h>
#include <hiredis/sds.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

static inline redisContext *cachekit_redis_connect_tcp(const char *host, int port, long timeout_ms) {
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    return redisConnectWithTimeout(host, port, tv);
}

static inline redisContext *cachekit_redis_connect_unix(const char *path, long timeout_ms) {
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    return redisConnectUnixWithTimeout(path, tv);
}

/// Sets the read/write timeout of an established connection; 0 means none. Returns REDIS_OK or REDIS_ERR.
static inline int cachekit_redis_set_timeout(redisContext *c, long timeout_ms) {
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    return redisSetTimeout(c, tv);
}

/// Unblocks a thread that is reading from `c` (used to stop a subscriber); the context is unusable afterwards.
static inline void cachekit_redis_shutdown_socket(redisContext *c) {
    if (c != NULL && c->fd >= 0) { shutdown(c->fd, SHUT_RDWR); }
}

/// Writes the pending output buffer to the socket once it holds `limit` bytes or more, so a long pipeline is sent
/// in pieces instead of growing one buffer to its full size (which, past malloc's mmap threshold, costs fresh
/// zeroed pages for every batch). Returns REDIS_OK or REDIS_ERR.
static inline int cachekit_redis_flush_over(redisContext *c, size_t limit) {
    if (c->obuf == NULL || sdslen(c->obuf) < limit) { return REDIS_OK; }
    int done = 0;
    do {
        if (redisBufferWrite(c, &done) == REDIS_ERR) { return REDIS_ERR; }
    } while (!done);
    return REDIS_OK;
}

static inline int cachekit_redis_version_major(void) { return HIREDIS_MAJOR; }
static inline int cachekit_redis_version_minor(void) { return HIREDIS_MINOR; }

/// Waits up to `timeout_ms` for a reply to be readable: 1 when hiredis already holds unread bytes or the socket is
/// readable (or closed), 0 on timeout, -1 on error. Lets a subscriber notice a silent (half-open) connection.
static inline int cachekit_redis_wait_readable(redisContext *c, int timeout_ms) {
    if (c == NULL || c->fd < 0) { return -1; }
    if (c->reader != NULL && c->reader->pos < c->reader->len) { return 1; }
    struct pollfd descriptor = { c->fd, POLLIN, 0 };
    int ready = poll(&descriptor, 1, timeout_ms);
    if (ready < 0) { return -1; }
    return ready > 0 ? 1 : 0;
}

/// Sends PING without waiting for its reply (in subscribed mode the reply arrives among the messages).
/// Returns REDIS_OK or REDIS_ERR.
static inline int cachekit_redis_send_ping(redisContext *c) {
    if (redisAppendCommand(c, "PING") != REDIS_OK) { return REDIS_ERR; }
    int done = 0;
    do {
        if (redisBufferWrite(c, &done) == REDIS_ERR) { return REDIS_ERR; }
    } while (!done);
    return REDIS_OK;
}

#endif
