import CacheKit
import Logging

/// A pool of hiredis connections: one task per connection at a time, blocking calls on a dedicated thread pool.
///
/// - Leasing: an idle connection, else a new one while fewer than `poolSize` exist, else the task waits in a
///   bounded queue (`maximumWaiters`); a waiting task that is cancelled leaves the queue at once.
/// - Discarding: a connection whose command errored, timed out (`commandTimeout`), or whose task was cancelled
///   between sending and reading is closed, never reused, so a late reply can never reach another caller.
/// - Reconnecting: after a failed connect, new connects wait an exponential backoff with jitter (25 ms … 500 ms by
///   default) and callers fail fast with `.unavailable` meanwhile; the first success resets it.
/// - Cancellation: hiredis cannot abort a call. A cancelled caller returns at once with `CancellationError`; the
///   call finishes on its thread within `commandTimeout` and its connection is then destroyed.
final class RedisConnectionPool: Sendable {
    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<RedisConnection?, any Error>
    }

    private struct State {
        var idle: [RedisConnection] = []
        var open = 0
        var waiters: [Waiter] = []
        var nextWaiterID: UInt64 = 0
        var closed = false
        var backoffUntil: ContinuousClock.Instant?
        var backoff: Duration = .zero
        var connectFailures = 0
        var destroyed = 0
        var created = 0
    }

    let configuration: RedisConfiguration
    let threads: BlockingThreadPool
    let logger: Logger
    private let state = LockedState(State())

    init(configuration: RedisConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        // One thread per connection, plus one so a connect never waits behind a stuck command.
        self.threads = BlockingThreadPool(threadCount: max(1, configuration.poolSize) + 1, name: "ck-redis")
    }

    deinit {
        self.threads.shutdown()
    }

    /// Figures for tests and metrics.
    var counters: (open: Int, idle: Int, waiters: Int, created: Int, destroyed: Int) {
        self.state.withLock { ($0.open, $0.idle.count, $0.waiters.count, $0.created, $0.destroyed) }
    }

    /// Runs `body` with a leased connection on a pool thread.
    func withConnection<T: Sendable>(_ body: @escaping @Sendable (RedisConnection) throws(CacheError) -> T) async throws -> T {
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
            call.cancel()
        }
    }

    private func lease() async throws -> RedisConnection {
        enum Next {
            case connection(RedisConnection)
            case create
            case wait
            case fail(CacheError)
        }
        let next: Next = self.state.withLock { state in
            if state.closed { return .fail(CacheError(.unavailable, "the pool is shut down", backend: self.configuration.name)) }
            if let connection = state.idle.popLast() { return .connection(connection) }
            if state.open < max(1, self.configuration.poolSize) {
                if let until = state.backoffUntil, ContinuousClock.now < until {
                    return .fail(CacheError(.unavailable, "Redis is unreachable; reconnecting with backoff", backend: self.configuration.name))
                }
                state.open += 1
                return .create
            }
            if state.waiters.count >= self.configuration.maximumWaiters {
                return .fail(CacheError(.limitExceeded, "too many tasks waiting for a Redis connection", backend: self.configuration.name))
            }
            return .wait
        }
        switch next {
        case .connection(let connection): return connection
        case .fail(let error): throw error
        case .create: return try await self.connect()
        case .wait:
            let id = self.state.withLock { state -> UInt64 in
                state.nextWaiterID += 1
                return state.nextWaiterID
            }
            let handed: RedisConnection? = try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { continuation in
                    let enqueued = self.state.withLock { state -> Bool in
                        if Task.isCancelled || state.closed { return false }
                        state.waiters.append(Waiter(id: id, continuation: continuation))
                        return true
                    }
                    if !enqueued { continuation.resume(throwing: CancellationError()) }
                }
            } onCancel: {
                let waiter = self.state.withLock { state -> Waiter? in
                    guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                    return state.waiters.remove(at: index)
                }
                waiter?.continuation.resume(throwing: CancellationError())
            }
            // nil: a slot was freed for this waiter to open a new connection.
            if let handed { return handed }
            return try await self.connect()
        }
    }

    /// Opens a connection for a slot already counted in `open`.
    private func connect() async throws -> RedisConnection {
        let configuration = self.configuration
        do {
            let connection = try await self.threads.run { () throws(CacheError) -> RedisConnection in try RedisConnection(configuration) }
            self.state.withLock { state in
                state.created += 1
                state.connectFailures = 0
                state.backoff = .zero
                state.backoffUntil = nil
            }
            return connection
        } catch {
            let waiter = self.state.withLock { state -> Waiter? in
                state.open -= 1
                state.connectFailures += 1
                let initial = configuration.reconnectBackoff.initial
                state.backoff = min(configuration.reconnectBackoff.maximum, state.backoff == .zero ? initial : state.backoff * 2)
                let jitter = Double.random(in: 0.5...1.0)
                state.backoffUntil = ContinuousClock.now + state.backoff * jitter
                return state.waiters.isEmpty ? nil : state.waiters.removeFirst()
            }
            // A waiter would otherwise wait for a slot that nobody will free: let it fail fast too.
            waiter?.continuation.resume(throwing: CacheError(.unavailable, "Redis is unreachable", backend: configuration.name))
            if (error as? CacheError)?.code == .authenticationFailed { throw error }
            self.logger.warning("redis connect failed", metadata: ["error": "\(error)"])
            throw error
        }
    }

    /// Returns a connection after a call: to a waiter, to the idle list, or (if unhealthy) closes it and frees the slot.
    private func release(_ connection: RedisConnection, healthy: Bool) {
        if !healthy {
            connection.close()
            let waiter = self.state.withLock { state -> Waiter? in
                state.open -= 1
                state.destroyed += 1
                guard !state.waiters.isEmpty else { return nil }
                state.open += 1  // the waiter opens a fresh connection in this slot
                return state.waiters.removeFirst()
            }
            waiter?.continuation.resume(returning: nil)
            return
        }
        let waiter = self.state.withLock { state -> Waiter? in
            if state.closed { return nil }
            guard !state.waiters.isEmpty else {
                state.idle.append(connection)
                return nil
            }
            return state.waiters.removeFirst()
        }
        if let waiter {
            waiter.continuation.resume(returning: connection)
        } else if self.state.withLock({ $0.closed }) {
            connection.close()
        }
    }

    /// Pings every idle connection, dropping dead ones; reconnects one slot if none is open. For `run()`.
    func healthCheck() async {
        let idle = self.state.withLock { state -> [RedisConnection] in
            defer { state.idle.removeAll() }
            return state.idle
        }
        for connection in idle {
            let alive = (try? await self.threads.run { () throws(CacheError) -> Bool in
                try connection.execute([Array("PING".utf8)]) == .status("PONG")
            }) ?? false
            self.release(connection, healthy: alive)
        }
        if self.state.withLock({ $0.open == 0 }) {
            _ = try? await self.withConnection { connection throws(CacheError) in try connection.execute([Array("PING".utf8)]) }
        }
    }

    /// Closes idle connections and refuses new leases; waiters fail with `.unavailable`.
    func shutdown() {
        let (idle, waiters) = self.state.withLock { state in
            state.closed = true
            defer {
                state.idle.removeAll()
                state.waiters.removeAll()
            }
            return (state.idle, state.waiters)
        }
        for connection in idle { connection.close() }
        for waiter in waiters {
            waiter.continuation.resume(throwing: CacheError(.unavailable, "the pool is shut down", backend: self.configuration.name))
        }
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

    func cancel() {
        let continuation = self.phase.withLock { phase -> CheckedContinuation<T, any Error>? in
            switch phase {
            case .idle:
                phase = .cancelledBeforeSending
                return nil
            case .waiting(let continuation):
                phase = .cancelledBeforeSending
                return continuation
            case .sending(let continuation):
                phase = .cancelledWhileSending
                return continuation
            default:
                return nil
            }
        }
        continuation?.resume(throwing: CancellationError())
    }
}
