public import Logging
public import Metrics
public import Tracing

/// Everything a `MultiLayerCache` is made of, given once, with documented defaults. Build it up, then create the
/// cache, which checks that the parts fit (`validate()`):
///
/// ```swift
/// let redis = RedisClient(configuration: try .init(url: "redis://127.0.0.1:6379"))
/// var configuration = CacheConfiguration()
/// configuration.layers = [.memory(), .redis(client: redis)]
/// configuration.semantic = .memory(embedder: model)
/// configuration.invalidationBus = RedisInvalidationBus(client: redis)
/// let cache = try MultiLayerCache(configuration: configuration)
/// ```
public struct CacheConfiguration: Sendable {
    /// Exact layers in read order (fastest first). Default: none (add `.memory()` from CacheKitMemory).
    public var layers: [CacheLayer]
    /// The semantic layer, consulted on exact misses. Default: none.
    public var semantic: SemanticLayer?
    /// What may be read and written. Default: deterministic requests only, 1 hour TTL.
    public var policy: CachePolicy
    /// The tracer for spans of lookups (`cachekit.lookup`, one `cachekit.get` per layer read), embeddings
    /// (`cachekit.embed`), upstream calls (`cachekit.upstream`) and invalidations (`cachekit.invalidate`).
    /// Default `nil`: no spans at all (nothing is spent on the hit path). Set `InstrumentationSystem.tracer` to
    /// use the process's bootstrapped tracer (swift-otel, for example).
    public var tracer: (any Tracer)?
    /// Rules that set the TTL and add tags when an answer is stored, from its query text and scope (for example
    /// `CacheKitInvalidation`'s time rules). Default: none.
    public var writeRules: (any CacheWriteRules)?
    /// What a failing layer does. Default `.treatAsMiss`.
    public var failurePolicy: FailurePolicy
    /// The scope used when a call gives none. Default `CacheScope.default`.
    public var defaultScope: CacheScope
    /// How keys are computed. Default: `stream` and `stream_options` are transport-only.
    public var keyer: RequestKeyer
    /// The wall clock. Default `SystemCacheClock()`; inject `ManualClock` in tests.
    public var clock: any CacheClock
    /// Where invalidations are announced to other instances. Default: none.
    public var invalidationBus: (any InvalidationBus)?
    /// This instance's id on the bus. Default: a random id.
    public var instanceID: String
    /// Prices for money-saved figures. Default `PriceTable.default`.
    public var prices: PriceTable
    /// Where the cache logs. Default label `cachekit`.
    public var logger: Logger
    /// Prefix of swift-metrics labels. Default `cachekit`.
    public var metricsPrefix: String
    /// Where the cache's metrics go (swift-metrics' `factory:`), so tests and processes with several caches need
    /// not share the global counters. Default `nil`: the factory bootstrapped in `MetricsSystem`.
    public var metricsFactory: (any MetricsFactory)? = nil
    /// The most distinct upstream calls in flight that the single-flight table tracks; past it, misses call upstream
    /// uncoalesced (never an error). Default 10,000.
    public var maximumInFlightCalls: Int
    /// The most background refreshes (stale-while-revalidate) running at once; past it, no refresh is started and
    /// the stale answer keeps being served until its window ends. Default 64.
    public var maximumBackgroundRefreshes: Int
    /// A file that keeps the invalidations not yet applied everywhere (the outbox), so a restart does not forget
    /// them: loaded when the cache is made, rewritten (atomically) whenever it changes. Default `nil`: kept in memory,
    /// so a pending invalidation is lost if the process ends before a layer that missed it comes back.
    public var invalidationOutboxPath: String? = nil
    /// The namespaces the application uses (`CacheControl.namespace`). When set, per-namespace thresholds and write
    /// rules that name another namespace are refused when the cache is built (a misspelt namespace would otherwise
    /// silently never apply). Default `nil`: not checked.
    public var namespaces: Set<String>? = nil

    public init(
        layers: [CacheLayer] = [],
        semantic: SemanticLayer? = nil,
        policy: CachePolicy = CachePolicy(),
        failurePolicy: FailurePolicy = .treatAsMiss,
        defaultScope: CacheScope = .default,
        keyer: RequestKeyer = RequestKeyer(),
        clock: any CacheClock = SystemCacheClock(),
        invalidationBus: (any InvalidationBus)? = nil,
        instanceID: String? = nil,
        prices: PriceTable = .default,
        logger: Logger = Logger(label: "cachekit"),
        metricsPrefix: String = "cachekit",
        maximumInFlightCalls: Int = 10_000,
        maximumBackgroundRefreshes: Int = 64
    ) {
        self.layers = layers
        self.semantic = semantic
        self.policy = policy
        self.failurePolicy = failurePolicy
        self.defaultScope = defaultScope
        self.keyer = keyer
        self.clock = clock
        self.invalidationBus = invalidationBus
        self.instanceID = instanceID ?? Self.randomID()
        self.prices = prices
        self.logger = logger
        self.metricsPrefix = metricsPrefix
        self.maximumInFlightCalls = maximumInFlightCalls
        self.maximumBackgroundRefreshes = maximumBackgroundRefreshes
    }

    private static func randomID() -> String {
        var generator = SystemRandomNumberGenerator()
        return Hex.encode((0..<8).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }
}
