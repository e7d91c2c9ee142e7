package import Logging
package import Metrics

/// A connection that a `ConnectionPool` leases: a C client handle (hiredis, libpq) used by one task at a time.
package protocol PooledConnection: AnyObject, Sendable {
    /// Frees the handle. Called once, on a pool thread or after the connection's last call returned.
    func close()
    /// Asks the server to abandon the call in progress (libpq's `PQcancel`), from another thread. The default does
    /// nothing (hiredis has no cancel): the connection is destroyed after the call returns either way.
    func cancelInFlight()
}

extension PooledConnection {
    package func cancelInFlight() {}
}

/// Settings of a `ConnectionPool`.
package struct ConnectionPoolConfiguration: Sendable {
    /// Connections at most. Default 8.
    package var size: Int
    /// Tasks that may wait for a connection; past it a lease fails with `.limitExceeded`. Default 10,000.
    package var maximumWaiters: Int
    /// First and largest delay between connection attempts after a failure (exponential, with jitter).
    package var reconnectBackoff: ReconnectBackoff
    /// The backend name in errors and logs.
    package var name: String
    /// The longest a task waits for a connection before failing with `.timeout`. Default 10 s.
    package var leaseTimeout: Duration

    package init(
        size: Int = 8, maximumWaiters: Int = 10_000, reconnectBackoff: ReconnectBackoff = ReconnectBackoff(),
        name: String, leaseTimeout: Duration = .seconds(10)
    ) {
        self.size = size
        self.maximumWaiters = maximumWaiters
        self.reconnectBackoff = reconnectBackoff
        self.name = name
        self.leaseTimeout = leaseTimeout
    }
}

/// Metrics (swift-metrics, dimension `backend`): `cachekit_pool_waits_total` (leases that had to wait),
/// `cachekit_pool_connects_total` (connections opened, reconnects included), `cachekit_pool_connect_failures_total`,
/// `cachekit_pool_connections_destroyed_total` (after an error, a timeout or a cancellation mid-call).
///
/// A pool of blocking client connections: one task per connection at a time, blocking calls on a dedicated
/// `BlockingThreadPool` (never the cooperative pool).
///
/// - Leasing: an idle connection, else a new one while fewer than `poolSize` exist, else the task waits in a
///   bounded queue (`maximumWaiters`) for at most `leaseTimeout`; a waiting task that is cancelled leaves the queue
///   at once. The decisions are `ConnectionPoolStateMachine`'s, taken under one lock per event.
/// - Discarding: a connection whose command errored, timed out (`commandTimeout`), or whose task was cancelled
///   between sending and reading is closed, never reused, so a late reply can never reach another caller.
/// - Reconnecting: after a failed connect, new connects wait an exponential backoff with jitter (25 ms … 500 ms by
///   default) and callers fail fast with `.unavailable` meanwhile; the first success resets it.
/// - Cancellation: a cancelled caller returns at once with `CancellationError`. If its call was in flight, the
///   connection's `cancelInFlight()` runs (libpq cancels; hiredis cannot), the call finishes on its thread within
///   the client's own timeout, and the connection is then destroyed.
package final class ConnectionPool<Connection: PooledConnection>: Sendable {
    private struct State {
        var machine: ConnectionPoolStateMachine<Connection>
        var continuations: [UInt64: CheckedContinuation<Connection?, any Error>] = [:]
        var nextID: UInt64 = 0
    }

    let configuration: ConnectionPoolConfiguration
    /// The threads blocking calls run on.
    package let threads: BlockingThreadPool
    let logger: Logger
    let connectBody: @Sendable () throws -> Connection
    private let state: LockedState<State>
    private let metrics: (waits: Counter, connects: Counter, connectFailures: Counter, destroyed: Counter)

    /// Creates a pool that opens connections with `connect` (called on a pool thread; it may block). Its metrics go
    /// to `metricsFactory` (default: the bootstrapped `MetricsSystem`).
    package init(
        configuration: ConnectionPoolConfiguration, logger: Logger, metricsFactory: any MetricsFactory = MetricsSystem.factory,
        connect: @escaping @Sendable () throws -> Connection
    ) {
        self.configuration = configuration
        self.logger = logger
        self.connectBody = connect
        self.state = LockedState(
            State(
                machine: ConnectionPoolStateMachine(
                    size: configuration.size, maximumWaiters: configuration.maximumWaiters,
                    initialBackoff: configuration.reconnectBackoff.initial, maximumBackoff: configuration.reconnectBackoff.maximum)))
        let dimensions = [("backend", configuration.name)]
        self.metrics = (
            Counter(label: "cachekit_pool_waits_total", dimensions: dimensions, factory: metricsFactory),
            Counter(label: "cachekit_pool_connects_total", dimensions: dimensions, factory: metricsFactory),
            Counter(label: "cachekit_pool_connect_failures_total", dimensions: dimensions, factory: metricsFactory),
            Counter(label: "cachekit_pool_connections_destroyed_total", dimensions: dimensions, factory: metricsFactory)
        )
        // One thread per connection, plus one so a connect never waits behind a stuck command.
        self.threads = BlockingThreadPool(threadCount: max(1, configuration.size) + 1, name: "ck-\(configuration.name)")
    }

    deinit {
        self.threads.shutdown()
    }

    /// Open and idle connections, waiting tasks, connections created and destroyed so far.
    package var counters: ConnectionPoolCounters {
        self.state.withLock {
            ConnectionPoolCounters(
                open: $0.machine.open, idle: $0.machine.idle.count, waiters: $0.machine.waiters.count, created: $0.machine.created,
                destroyed: $0.machine.destroyed)
        }
    }

    /// Runs `body` with a leased connection on a pool thread. If the caller is cancelled while `body` runs, the
    /// caller returns at once with `CancellationError`, `cancelInFlight()` is called, and the connection is
    /// destroyed when `body` returns.
    package func withConnection<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        let connection = try await self.lease()
        let call = LeasedCall<T>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                guard call.start(continuation) else {
                    // Cancelled before anything was sent: the connection is clean.
                    self.release(connection, healthy: true)
                    return
                }
                self.threads.submit {
                    guard call.beginSending() else {
                        self.release(connection, healthy: true)
                        return
                    }
                    let result: Result<T, any Error>
                    do {
                        result = .success(try body(connection))
                    } catch {
                        result = .failure(error)
                    }
                    let delivered = call.finish(result)
                    let healthy: Bool
                    if case .success = result { healthy = delivered } else { healthy = false }
                    self.release(connection, healthy: healthy)
                }
            }
        } onCancel: {
            if call.cancel() { connection.cancelInFlight() }
        }
    }

    private func error(_ failure: ConnectionPoolStateMachine<Connection>.Failure) -> any Error {
        let name = self.configuration.name
        switch failure {
        case .shutDown: return CacheError(.unavailable, "the pool is shut down", backend: name)
        case .backoff: return CacheError(.unavailable, "\(name) is unreachable; reconnecting with backoff", backend: name)
        case .tooManyWaiters: return CacheError(.limitExceeded, "too many tasks waiting for a connection", backend: name)
        case .unreachable: return CacheError(.unavailable, "\(name) is unreachable", backend: name)
        case .timedOut: return CacheError(.timeout, "waited \(self.configuration.leaseTimeout) for a connection", backend: name)
        case .cancelled: return CancellationError()
        }
    }

    /// A connection for one call: an idle one, a new one, or one handed over after waiting (in the state machine's
    /// order). Deciding to wait and queueing happen under the same lock.
    private func lease() async throws -> Connection {
        let id = self.state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        let now = ContinuousClock.now
        let deadline = now + self.configuration.leaseTimeout
        let handed: Connection? = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Connection?, any Error>) in
                let action = self.state.withLock { state -> ConnectionPoolStateMachine<Connection>.LeaseAction in
                    if Task.isCancelled { return .fail(.cancelled) }
                    let action = state.machine.lease(id: id, now: now, deadline: deadline)
                    if case .wait = action { state.continuations[id] = continuation }
                    return action
                }
                switch action {
                case .use(let connection): continuation.resume(returning: connection)
                case .connect: continuation.resume(returning: nil)
                case .fail(let failure): continuation.resume(throwing: self.error(failure))
                case .wait:
                    self.metrics.waits.increment()
                    // The deadline: fails the waiter if nothing was handed to it by then.
                    Task { [weak self] in
                        try? await Task.sleep(until: deadline)
                        self?.expireWaiters()
                    }
                }
            }
        } onCancel: {
            self.abandon(id, because: .cancelled)
        }
        // nil: a slot is reserved for this task to open a new connection.
        if let handed { return handed }
        return try await self.connect()
    }

    /// Fails waiter `id` if it is still queued.
    private func abandon(_ id: UInt64, because failure: ConnectionPoolStateMachine<Connection>.Failure) {
        let continuation = self.state.withLock { state -> CheckedContinuation<Connection?, any Error>? in
            guard state.machine.abandon(id) else { return nil }
            return state.continuations.removeValue(forKey: id)
        }
        continuation?.resume(throwing: self.error(failure))
    }

    /// Fails the waiters past their deadline.
    private func expireWaiters() {
        let expired = self.state.withLock { state in
            state.machine.expire(now: .now).compactMap { state.continuations.removeValue(forKey: $0) }
        }
        for continuation in expired { continuation.resume(throwing: self.error(.timedOut)) }
    }

    /// Opens a connection for a slot already reserved.
    private func connect() async throws -> Connection {
        let configuration = self.configuration
        let connectBody = self.connectBody
        do {
            let connection = try await self.threads.run { try connectBody() }
            self.metrics.connects.increment()
            self.state.withLock { $0.machine.connectSucceeded() }
            return connection
        } catch {
            self.metrics.connectFailures.increment()
            let failed = self.state.withLock { state in
                state.machine.connectFailed(now: .now, jitter: Double.random(in: 0.5...1.0)).compactMap { state.continuations.removeValue(forKey: $0) }
            }
            // Every waiter would otherwise wait for a slot that nobody fills during the backoff: they fail fast too.
            for continuation in failed { continuation.resume(throwing: self.error(.unreachable)) }
            if (error as? CacheError)?.code == .authenticationFailed { throw error }
            self.logger.warning("connect failed", metadata: ["backend": "\(configuration.name)", "error": "\(error)"])
            throw error
        }
    }

    /// Returns a connection after a call: to the oldest waiter, to the idle list, or (if unhealthy) closes it and
    /// gives its slot to the oldest waiter.
    private func release(_ connection: Connection, healthy: Bool) {
        if !healthy {
            connection.close()
            self.metrics.destroyed.increment()
        }
        let (action, continuation) = self.state.withLock { state -> (ConnectionPoolStateMachine<Connection>.ReleaseAction, CheckedContinuation<Connection?, any Error>?) in
            let action = state.machine.release(connection, healthy: healthy)
            switch action {
            case .handOver(_, let id), .connectFor(let id): return (action, state.continuations.removeValue(forKey: id))
            default: return (action, nil)
            }
        }
        switch action {
        case .handOver(let handed, _): continuation?.resume(returning: handed)
        case .connectFor: continuation?.resume(returning: nil)
        case .close(let closing): closing.close()
        case .keep, .none: break
        }
    }

    /// Checks every idle connection with `isAlive` on a pool thread, dropping dead ones; when no connection is open,
    /// opens one (so the pool notices a server's return without waiting for traffic). For a backend's `run()`.
    package func healthCheck(_ isAlive: @escaping @Sendable (Connection) throws -> Bool) async {
        let idle = self.state.withLock { $0.machine.takeIdle() }
        for connection in idle {
            let alive = (try? await self.threads.run { try isAlive(connection) }) ?? false
            self.release(connection, healthy: alive)
        }
        if self.state.withLock({ $0.machine.open == 0 }) {
            _ = try? await self.withConnection { try isAlive($0) }
        }
    }

    /// Closes idle connections and refuses new leases; waiters fail with `.unavailable`.
    package func shutdown() {
        let (idle, waiters) = self.state.withLock { state in
            let (idle, ids) = state.machine.shutdown()
            return (idle, ids.compactMap { state.continuations.removeValue(forKey: $0) })
        }
        for connection in idle { connection.close() }
        for waiter in waiters { waiter.resume(throwing: self.error(.shutDown)) }
    }
}

/// The hand-off between a caller and the pool thread running its call: the caller's continuation is resumed
/// exactly once, by the thread's result or by cancellation, whichever comes first.
final class LeasedCall<T: Sendable>: Sendable {
    private enum Phase {
        case idle
        case waiting(CheckedContinuation<T, any Error>)
        case sending(CheckedContinuation<T, any Error>)
        case cancelledBeforeSending
        case cancelledWhileSending
        case done
    }
    private let phase = LockedState(Phase.idle)

    /// Registers the continuation; `false` (and the continuation resumed) if the call was already cancelled.
    func start(_ continuation: CheckedContinuation<T, any Error>) -> Bool {
        let cancelled = self.phase.withLock { phase -> Bool in
            if case .cancelledBeforeSending = phase {
                phase = .done
                return true
            }
            phase = .waiting(continuation)
            return false
        }
        if cancelled { continuation.resume(throwing: CancellationError()) }
        return !cancelled
    }

    /// Marks that the command is about to be sent; `false` if the call was cancelled first (send nothing).
    func beginSending() -> Bool {
        self.phase.withLock { phase in
            if case .waiting(let continuation) = phase {
                phase = .sending(continuation)
                return true
            }
            return false
        }
    }

    /// Delivers the result. Returns `false` if the caller had gone (cancelled while sending): the connection may
    /// hold an unread reply and must be destroyed.
    func finish(_ result: Result<T, any Error>) -> Bool {
        let continuation = self.phase.withLock { phase -> CheckedContinuation<T, any Error>? in
            if case .sending(let continuation) = phase {
                phase = .done
                return continuation
            }
            phase = .done
            return nil
        }
        continuation?.resume(with: result)
        return continuation != nil
    }

    /// Cancels the call; returns whether it was in flight (sent, reply not yet read).
    @discardableResult
    func cancel() -> Bool {
        let (continuation, inFlight) = self.phase.withLock { phase -> (CheckedContinuation<T, any Error>?, Bool) in
            switch phase {
            case .idle:
                phase = .cancelledBeforeSending
                return (nil, false)
            case .waiting(let continuation):
                phase = .cancelledBeforeSending
                return (continuation, false)
            case .sending(let continuation):
                phase = .cancelledWhileSending
                return (continuation, true)
            default:
                return (nil, false)
            }
        }
        continuation?.resume(throwing: CancellationError())
        return inFlight
    }
}
