/// Figures of a connection pool at one instant (`RedisClient.poolCounters`, `PostgresClient.poolCounters`).
public struct ConnectionPoolCounters: Sendable, Hashable, CustomStringConvertible {
    /// Connections open now, leased or idle.
    public var open: Int
    /// Connections open and not leased.
    public var idle: Int
    /// Tasks waiting for a connection.
    public var waiters: Int
    /// Connections opened since the pool was made (reconnects included).
    public var created: Int
    /// Connections closed after an error, a timeout or a cancellation mid-call.
    public var destroyed: Int

    public init(open: Int, idle: Int, waiters: Int, created: Int, destroyed: Int) {
        self.open = open
        self.idle = idle
        self.waiters = waiters
        self.created = created
        self.destroyed = destroyed
    }

    public var description: String {
        "open \(self.open), idle \(self.idle), waiters \(self.waiters), created \(self.created), destroyed \(self.destroyed)"
    }
}

/// The delays between connection attempts after a failure: exponential from `initial`, never above `maximum`, with
/// jitter. The first success resets it.
public struct ReconnectBackoff: Sendable, Hashable {
    /// The first delay. Default 25 ms.
    public var initial: Duration
    /// The largest delay. Default 500 ms.
    public var maximum: Duration

    public init(initial: Duration = .milliseconds(25), maximum: Duration = .milliseconds(500)) {
        self.initial = initial
        self.maximum = maximum
    }
}
