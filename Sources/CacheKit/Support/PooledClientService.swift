package import ServiceLifecycle

/// What every pooled client (`RedisClient`, `PostgresClient`) does besides speaking its protocol: it owns the pool,
/// reports its figures, and runs its maintenance once however many layers, indexes and buses call `run()`.
package final class PooledClientService<Connection: PooledConnection>: Sendable {
    package let pool: ConnectionPool<Connection>
    private let running = LockedState(false)

    package init(pool: ConnectionPool<Connection>) {
        self.pool = pool
    }

    package var counters: ConnectionPoolCounters { self.pool.counters }

    /// The pool's threads started so far.
    package var startedThreads: Int { self.pool.threads.startedThreads }

    /// Checks idle connections with `isAlive` every `interval` until graceful shutdown or cancellation, then closes
    /// the pool. Only the first caller does this; a call while it runs waits for shutdown and does nothing else.
    /// `tick`, when given, runs after each check (a replica's lag measurement).
    package func run(
        checkingEvery interval: Duration, isAlive: @escaping @Sendable (Connection) throws -> Bool, tick: (@Sendable () async -> Void)? = nil
    ) async {
        let first = self.running.withLock { running in
            defer { running = true }
            return !running
        }
        guard first else {
            try? await gracefulShutdown()
            return
        }
        await runPeriodically(every: interval) {
            await self.pool.healthCheck(isAlive)
            await tick?()
        }
        self.pool.shutdown()
    }
}
