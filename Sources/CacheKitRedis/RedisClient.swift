public import CacheKit
public import Logging
public import Metrics
public import ServiceLifecycle

/// One Redis server's connections, shared by every layer and bus that talks to it.
///
/// Create one client per server and pass it to each user (`CacheLayer.redis(client:)`, `RedisInvalidationBus(client:)`),
/// as fluent's `.postgres(client:)` shares one `PostgresClient`. Creating a client is cheap: it opens no connection
/// and starts no thread. Connections (at most `poolSize`) open on first use, each with one blocking thread that
/// starts when it is first needed.
///
/// `run()` checks idle connections every second and closes the pool at graceful shutdown. Run it in your service
/// group, or let the cache do it: every backend or bus built on the client runs it from its own `run()`, and only the
/// first of those calls does the work (the others wait for shutdown).
public final class RedisClient: Service, Sendable {
    /// The server, credentials, pool and key prefix.
    public let configuration: Configuration
    let pool: ConnectionPool<RedisConnection>
    let logger: Logger
    private let running = LockedState(false)
    private let commands: Counter
    private let errors: Counter

    /// A client of the server `configuration` names. Nothing connects until the first command. Its metrics (commands,
    /// errors, pool figures) go to `metricsFactory` (default: the bootstrapped `MetricsSystem`).
    public init(
        configuration: Configuration, logger: Logger = Logger(label: "cachekit.redis"), metricsFactory: any MetricsFactory = MetricsSystem.factory
    ) {
        self.configuration = configuration
        self.logger = logger
        self.pool = ConnectionPool(configuration: configuration.poolConfiguration, logger: logger, metricsFactory: metricsFactory) {
            try RedisConnection(configuration)
        }
        let dimensions = [("backend", configuration.name)]
        self.commands = Counter(label: "cachekit_redis_commands_total", dimensions: dimensions, factory: metricsFactory)
        self.errors = Counter(label: "cachekit_redis_errors_total", dimensions: dimensions, factory: metricsFactory)
    }

    /// Runs one call on a leased connection, counting commands and errors.
    func withConnection<T: Sendable>(_ body: @escaping @Sendable (RedisConnection) throws(CacheError) -> T) async throws -> T {
        self.commands.increment()
        do {
            return try await self.pool.withConnection(body)
        } catch {
            if !(error is CancellationError) { self.errors.increment() }
            throw error
        }
    }

    /// Pool figures: open and idle connections, waiters, connections created and destroyed.
    public var poolCounters: ConnectionPoolCounters { self.pool.counters }

    /// The pool's threads started so far (one per connection opened at once, plus one).
    public var startedThreads: Int { self.pool.threads.startedThreads }

    /// Checks idle connections every second until graceful shutdown or cancellation, then closes the pool. A second
    /// `run()` while one is running waits for shutdown and does nothing else.
    public func run() async throws {
        guard self.running.withLock({ running in
            defer { running = true }
            return !running
        }) else {
            try? await gracefulShutdown()
            return
        }
        await runPeriodically(every: .seconds(1)) {
            await self.pool.healthCheck { connection in try connection.execute([Array("PING".utf8)]) == .status("PONG") }
        }
        self.pool.shutdown()
    }
}
