/// The decisions of a `ConnectionPool`, as a value: every event (a lease asked, a connection returned, a connect
/// that succeeded or failed, a waiter cancelled or timed out, shutdown) is one call that updates the state and says
/// what to do next. No locks, threads or clocks inside (the time is passed in), so every interleaving can be tested
/// without a server; `ConnectionPool` runs each event under one lock and performs the returned action outside it.
///
/// Invariants: `open` counts idle connections, leased ones and slots being connected; `open ≤ size`; a waiter is
/// queued only while no idle connection exists and no slot is free (decided and queued in the same event, so a
/// release between the two cannot be missed); a freed slot or a returned connection always goes to the oldest
/// waiter; when a connect fails, every waiter fails with it (the server is unreachable and new connects wait out the
/// backoff, so nobody would wake them).
struct ConnectionPoolStateMachine<Connection> {
    struct Waiter {
        let id: UInt64
        let deadline: ContinuousClock.Instant
    }

    enum LeaseAction {
        /// Use this idle connection.
        case use(Connection)
        /// A slot is reserved: open a connection, then report `connectSucceeded` or `connectFailed`.
        case connect
        /// Queued as waiter `id`; a later event hands it a connection or a slot, or fails it.
        case wait
        /// Refused: the pool is shut down, reconnecting after a failure, or the queue is full.
        case fail(Failure)
    }

    enum Failure: Equatable {
        case shutDown
        case backoff
        case tooManyWaiters
        case unreachable
        case timedOut
        case cancelled
    }

    /// What a returned connection or a freed slot becomes.
    enum ReleaseAction {
        /// Hand the connection to waiter `id`.
        case handOver(Connection, to: UInt64)
        /// Kept idle.
        case keep
        /// Close it (the pool is shut down); nobody waits.
        case close(Connection)
        /// The connection is gone (closed by the caller); waiter `id` opens a new one in its slot.
        case connectFor(UInt64)
        /// The connection is gone; nobody waits.
        case none
    }

    let size: Int
    let maximumWaiters: Int
    let initialBackoff: Duration
    let maximumBackoff: Duration

    private(set) var idle: [Connection] = []
    private(set) var open = 0
    private(set) var waiters: [Waiter] = []
    private(set) var closed = false
    private(set) var backoff: Duration = .zero
    private(set) var backoffUntil: ContinuousClock.Instant?
    private(set) var created = 0
    private(set) var destroyed = 0
    private(set) var connectFailures = 0

    init(size: Int, maximumWaiters: Int, initialBackoff: Duration, maximumBackoff: Duration) {
        self.size = max(1, size)
        self.maximumWaiters = max(0, maximumWaiters)
        self.initialBackoff = initialBackoff
        self.maximumBackoff = maximumBackoff
    }

    /// A task asks for a connection. When it must wait, it is queued as `id` with `deadline` in this same event.
    mutating func lease(id: UInt64, now: ContinuousClock.Instant, deadline: ContinuousClock.Instant) -> LeaseAction {
        if self.closed { return .fail(.shutDown) }
        if let connection = self.idle.popLast() { return .use(connection) }
        if self.open < self.size {
            if let until = self.backoffUntil, now < until { return .fail(.backoff) }
            self.open += 1
            return .connect
        }
        if self.waiters.count >= self.maximumWaiters { return .fail(.tooManyWaiters) }
        self.waiters.append(Waiter(id: id, deadline: deadline))
        return .wait
    }

    /// A connect for a reserved slot succeeded; the caller that reserved it uses the connection.
    mutating func connectSucceeded() {
        self.created += 1
        self.connectFailures = 0
        self.backoff = .zero
        self.backoffUntil = nil
    }

    /// A connect failed: the slot is freed, the backoff grows (`jitter` in 0.5…1 scales it), and every waiter fails
    /// (their ids are returned): nobody would otherwise open a connection for them until the backoff ends.
    mutating func connectFailed(now: ContinuousClock.Instant, jitter: Double) -> [UInt64] {
        self.open -= 1
        self.connectFailures += 1
        self.backoff = min(self.maximumBackoff, self.backoff == .zero ? self.initialBackoff : self.backoff * 2)
        self.backoffUntil = now + self.backoff * jitter
        defer { self.waiters.removeAll() }
        return self.waiters.map(\.id)
    }

    /// A leased connection comes back. Healthy: to the oldest waiter, else idle (closed if shut down). Unhealthy:
    /// the caller closes it; its slot goes to the oldest waiter, who connects anew.
    mutating func release(_ connection: Connection, healthy: Bool) -> ReleaseAction {
        if !healthy {
            self.open -= 1
            self.destroyed += 1
            guard !self.closed, !self.waiters.isEmpty else { return .none }
            self.open += 1
            return .connectFor(self.waiters.removeFirst().id)
        }
        if self.closed {
            self.open -= 1
            return .close(connection)
        }
        guard !self.waiters.isEmpty else {
            self.idle.append(connection)
            return .keep
        }
        return .handOver(connection, to: self.waiters.removeFirst().id)
    }

    /// Waiter `id` gives up (cancelled or past its deadline). `true` if it was still queued (it must be failed);
    /// `false` if an event already handed it a connection or a slot (which it then uses or returns).
    mutating func abandon(_ id: UInt64) -> Bool {
        guard let index = self.waiters.firstIndex(where: { $0.id == id }) else { return false }
        self.waiters.remove(at: index)
        return true
    }

    /// The queued waiters whose deadline is past `now` (removed; they must be failed with `.timedOut`).
    mutating func expire(now: ContinuousClock.Instant) -> [UInt64] {
        let expired = self.waiters.filter { $0.deadline <= now }.map(\.id)
        if !expired.isEmpty { self.waiters.removeAll { $0.deadline <= now } }
        return expired
    }

    /// Idle connections taken out for a health check (each comes back through `release`).
    mutating func takeIdle() -> [Connection] {
        defer { self.idle.removeAll() }
        return self.idle
    }

    /// Shuts the pool: the idle connections (to close) and the waiters (to fail) are returned.
    mutating func shutdown() -> (idle: [Connection], waiters: [UInt64]) {
        self.closed = true
        self.open -= self.idle.count
        defer {
            self.idle.removeAll()
            self.waiters.removeAll()
        }
        return (self.idle, self.waiters.map(\.id))
    }
}
