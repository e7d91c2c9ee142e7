public import CacheKit
public import Logging
public import Metrics
public import ServiceLifecycle

/// One Redis server's connections, shared by every layer and bus that talks to it: make one per server and pass it to
/// `CacheLayer.redis(client:)` and `RedisInvalidationBus(client:)`.
///
/// Making it opens nothing; each of its hiredis connections (at most `poolSize`), and the thread it blocks on, starts
/// with the first command that needs it. `run()` pings idle connections every second and closes them at graceful
/// shutdown; the cache's `run()` calls it through the layer, and a second caller just waits.
public final class RedisClient: Service, Sendable {
    /// The server, credentials, pool and key prefix.
    public let configuration: Configuration
    let service: PooledClientService<RedisConnection>
    let logger: Logger
    private let commands: Counter
    private let errors: Counter

    /// A client of the server `configuration` names. Nothing connects until the first command. Its metrics (commands,
    /// errors, pool figures) go to `metricsFactory` (default: the bootstrapped `MetricsSystem`).
    public init(
        configuration: Configuration, logger: Logger = Logger(label: "cachekit.redis"), metricsFactory: any MetricsFactory = MetricsSystem.factory
    ) {
        self.configuration = configuration
        self.logger = logger
        self.service = PooledClientService(
            pool: ConnectionPool(configuration: configuration.poolConfiguration, logger: logger, metricsFactory: metricsFactory) {
                try RedisConnection(configuration)
            })
        let dimensions = [("backend", configuration.name)]
        self.commands = Counter(label: "cachekit_redis_commands_total", dimensions: dimensions, factory: metricsFactory)
        self.errors = Counter(label: "cachekit_redis_errors_total", dimensions: dimensions, factory: metricsFactory)
    }

    /// Runs one call on a leased connection, counting commands and errors.
    func withConnection<T: Sendable>(_ body: @escaping @Sendable (RedisConnection) throws(CacheError) -> T) async throws -> T {
        self.commands.increment()
        do {
            return try await self.service.pool.withConnection(body)
        } catch {
            if !(error is CancellationError) { self.errors.increment() }
            throw error
        }
    }

    /// Pool figures: open and idle connections, waiters, connections created and destroyed.
    public var poolCounters: ConnectionPoolCounters { self.service.counters }

    /// The pool's threads started so far (one per connection opened at once, plus one).
    public var startedThreads: Int { self.service.startedThreads }

    /// Checks idle connections every second until graceful shutdown or cancellation, then closes the pool. A second
    /// `run()` while one is running waits for shutdown and does nothing else.
    public func run() async throws {
        await self.service.run(checkingEvery: .seconds(1)) { connection in
            try connection.execute([Array("PING".utf8)]) == .status("PONG")
        }
    }
}
