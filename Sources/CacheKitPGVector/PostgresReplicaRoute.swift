import CacheKit
import Logging
import Metrics

/// Where a `PostgresClient` sends semantic searches when it has a read replica: the replica while it is healthy and
/// its replay lag is within bounds, otherwise the primary. See `PostgresClient.Configuration.ReadReplica`.
final class PostgresReplicaRoute: Sendable {
    struct State {
        /// The replay lag measured last, and when; `nil` before the first check or after a failed one.
        var lag: Duration?
        var checkedAt: ContinuousClock.Instant?
        /// Until when this instance reads the primary for every scope (it removed records by tag), and for one scope
        /// (it wrote or removed records of that scope): read-your-writes.
        var primaryOnlyUntil: ContinuousClock.Instant?
        var scopesOnPrimaryUntil: [Digest256: ContinuousClock.Instant] = [:]
        var checking = false
        var reads = 0
        var fallbacks = 0
    }

    let replica: PostgresClient.Configuration.ReadReplica
    let service: PooledClientService<PostgresConnection>
    private let state = LockedState(State())
    private let logger: Logger
    private let lagGauge: Gauge
    /// How often the lag is measured.
    static let checkInterval: Duration = .seconds(1)

    init(_ replica: PostgresClient.Configuration.ReadReplica, primary: PostgresClient.Configuration, logger: Logger, metricsFactory: any MetricsFactory) {
        var settings = primary
        settings.connectionString = replica.connectionString
        settings.name = primary.name + "-replica"
        let configuration = settings
        self.replica = replica
        self.logger = logger
        self.service = PooledClientService(
            pool: ConnectionPool(configuration: configuration.poolConfiguration, logger: logger, metricsFactory: metricsFactory) {
                try PostgresConnection(configuration)
            })
        self.lagGauge = Gauge(label: "cachekit_postgres_replica_lag_seconds", dimensions: [("backend", primary.name)], factory: metricsFactory)
    }

    /// Whether a search may read the replica now. A measurement older than three check intervals (no `run()`, or a
    /// stalled check) starts a new one in the background and reads the primary meanwhile.
    func usable(scope: Digest256) -> Bool {
        let now = ContinuousClock.now
        let (usable, stale) = self.state.withLock { state -> (Bool, Bool) in
            if let until = state.primaryOnlyUntil, now < until { return (false, false) }
            if let until = state.scopesOnPrimaryUntil[scope], now < until { return (false, false) }
            guard let checkedAt = state.checkedAt, now - checkedAt <= Self.checkInterval * 3 else {
                defer { state.checking = true }
                return (false, !state.checking)
            }
            guard let lag = state.lag else { return (false, false) }
            return (lag <= self.replica.maximumLag, false)
        }
        if stale { Task { await self.check() } }
        return usable
    }

    /// After this instance wrote or removed records of `scope` (every scope when `nil`) on the primary: read the
    /// primary for it until the replica must have replayed the change. At most 10,000 scopes are fenced one by one;
    /// past that, every scope is.
    func fence(scope: Digest256?) {
        let now = ContinuousClock.now
        let until = now + self.replica.maximumLag + Self.checkInterval
        self.state.withLock { state in
            guard let scope, state.scopesOnPrimaryUntil.count < 10_000 || state.scopesOnPrimaryUntil[scope] != nil else {
                state.primaryOnlyUntil = max(state.primaryOnlyUntil ?? until, until)
                return
            }
            if state.scopesOnPrimaryUntil.count > 1000 { state.scopesOnPrimaryUntil = state.scopesOnPrimaryUntil.filter { $0.value > now } }
            state.scopesOnPrimaryUntil[scope] = until
        }
    }

    func served() { self.state.withLock { $0.reads += 1 } }

    /// A replica read failed: the primary answers, and the replica is not used until a check finds it healthy.
    func failed(_ error: any Error) {
        self.state.withLock {
            $0.fallbacks += 1
            $0.lag = nil
        }
        self.logger.warning("the read replica failed; searches read the primary", metadata: ["error": "\(error)"])
    }

    var figures: PostgresClient.ReplicaFigures {
        self.state.withLock { PostgresClient.ReplicaFigures(reads: $0.reads, fallbacks: $0.fallbacks, lag: $0.lag) }
    }

    /// Measures the replica's replay lag: zero when it has replayed all it received, else the age of the last
    /// replayed transaction. A server that is not in recovery (promoted) is not a replica: not used.
    func check() async {
        var lag: Duration?
        do {
            let rows = try await self.service.pool.withConnection { connection in
                try connection.simple(
                    """
                    SELECT (CASE WHEN NOT pg_is_in_recovery() THEN -1
                      WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
                      ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END)::text
                    """
                ).rows
            }
            // Text, whatever the connection's result format (the cast above).
            if let text = rows.first?.first.flatMap({ $0 }).map({ String(decoding: $0, as: UTF8.self) }), let seconds = Double(text) {
                if seconds < 0 {
                    self.logger.warning("the read replica is not in recovery (promoted?); searches read the primary")
                } else if seconds.isFinite {
                    lag = .milliseconds(Int64(min(seconds, 1e9) * 1000))
                }
            }
        } catch {
            self.logger.debug("replica lag check failed", metadata: ["error": "\(error)"])
        }
        if let lag { self.lagGauge.record(Double(lag.components.seconds) + Double(lag.components.attoseconds) / 1e18) }
        self.state.withLock {
            $0.lag = lag
            $0.checkedAt = ContinuousClock.now
            $0.checking = false
        }
    }

    /// Checks the lag and the idle connections every second until shutdown, then closes the replica's pool.
    func run() async {
        await self.service.run(checkingEvery: Self.checkInterval, isAlive: { connection in
            try connection.simple("SELECT 1").rows.count == 1
        }, tick: { await self.check() })
    }
}
