public import CacheKit
public import Logging
public import Metrics
public import ServiceLifecycle

/// One Redis server's connections, shared by every layer and bus that talks to it: make one per server and pass it to
/// `CacheLayer.redis(client:)` and `RedisInvalidationBus(client:)`.
///
/// With `configuration.cluster` set, the client speaks to a Redis Cluster instead: it reads the slot map from the
/// seeds (`CLUSTER SLOTS`), keeps a pool per node (each of at most `poolSize` connections), routes every key to its
/// slot's primary (or, with `readFromReplicas`, reads to a replica), and follows `MOVED` and `ASK`; see the
/// "Scaling" article. Nothing else changes for the layers and the bus.
///
/// Making it opens nothing; each of its hiredis connections (at most `poolSize`), and the thread it blocks on, starts
/// with the first command that needs it. `run()` pings idle connections every second and closes them at graceful
/// shutdown; the cache's `run()` calls it through the layer, and a second caller just waits.
public final class RedisClient: Service, Sendable {
    /// The server, credentials, pool and key prefix.
    public let configuration: Configuration
    let service: PooledClientService<RedisConnection>
    /// The cluster router when `configuration.cluster` is set.
    let cluster: RedisCluster?
    /// A configuration error found at creation (an unusable cluster setting), thrown by every command.
    private let configurationError: CacheError?
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
        self.cluster = configuration.cluster.map {
            RedisCluster(configuration: configuration, options: $0, logger: logger, metricsFactory: metricsFactory)
        }
        do {
            try configuration.validateCluster()
            self.configurationError = nil
        } catch {
            self.configurationError = error
        }
        let dimensions = [("backend", configuration.name)]
        self.commands = Counter(label: "cachekit_redis_commands_total", dimensions: dimensions, factory: metricsFactory)
        self.errors = Counter(label: "cachekit_redis_errors_total", dimensions: dimensions, factory: metricsFactory)
    }

    /// Runs one call on a leased connection of the single server, counting commands and errors.
    func withConnection<T: Sendable>(_ body: @escaping @Sendable (RedisConnection) throws(CacheError) -> T) async throws -> T {
        try await self.counting { try await self.service.pool.withConnection(body) }
    }

    /// Runs commands routed by slot on the cluster (see `RedisCluster.execute`), counting them and their errors.
    func execute(cluster: RedisCluster, _ commands: [RedisCluster.Command], waitForReplicas: Bool = false) async throws -> [RedisValue] {
        try await self.counting { try await cluster.execute(commands, waitForReplicas: waitForReplicas) }
    }

    /// Runs one command on one cluster node (a `SCAN`), counting it.
    func execute(cluster: RedisCluster, _ arguments: [[UInt8]], on endpoint: Configuration.Endpoint) async throws -> RedisValue {
        try await self.counting { try await cluster.execute(arguments, on: endpoint) }
    }

    private func counting<T>(_ body: () async throws -> T) async throws -> T {
        if let configurationError { throw configurationError }
        self.commands.increment()
        do {
            return try await body()
        } catch {
            if !(error is CancellationError) { self.errors.increment() }
            throw error
        }
    }

    /// Pool figures: open and idle connections, waiters, connections created and destroyed (summed over the
    /// cluster's nodes).
    public var poolCounters: ConnectionPoolCounters { self.cluster?.counters ?? self.service.counters }

    /// The pools' threads started so far (one per connection opened at once, plus one per pool).
    public var startedThreads: Int { self.cluster?.startedThreads ?? self.service.startedThreads }

    /// Checks idle connections every second until graceful shutdown or cancellation, then closes the pool. A second
    /// `run()` while one is running waits for shutdown and does nothing else.
    public func run() async throws {
        if let cluster = self.cluster {
            await cluster.run()
            return
        }
        await self.service.run(checkingEvery: .seconds(1)) { connection in
            try connection.execute([Array("PING".utf8)]) == .status("PONG")
        }
    }
}
