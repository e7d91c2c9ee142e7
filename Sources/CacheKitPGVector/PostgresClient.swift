public import CacheKit
public import Logging
public import Metrics
public import ServiceLifecycle

/// A PostgreSQL server as CacheKit uses it: one per server, passed to the exact layer and the semantic index on it
/// (`CacheLayer.postgres(client:)`, `SemanticLayer.pgvector(client:embedder:)`), the way fluent's `.postgres(client:)`
/// takes one postgres-nio client. It costs nothing until used: libpq connections (at most `poolSize`) and their
/// threads start with the first statements. It also migrates the tables on it: versioned, idempotent, once per table,
/// under an advisory lock so instances starting together do not collide.
///
/// Its `run()`, which the cache's `run()` reaches through each table (or your service group calls), checks idle
/// connections every `purgeInterval` and closes them at graceful shutdown, once however many tables call it.
public final class PostgresClient: Service, Sendable {
    /// The server, pool, table and HNSW settings.
    public let configuration: Configuration
    let service: PooledClientService<PostgresConnection>
    var pool: ConnectionPool<PostgresConnection> { self.service.pool }
    let logger: Logger
    /// Where the client's and its tables' metrics go.
    let metricsFactory: any MetricsFactory
    private let migrated = LockedState<Set<String>>([])
    /// Where searches go when the configuration names a read replica.
    let replicaRoute: PostgresReplicaRoute?

    /// A named schema change: applied once, recorded in `<prefix>_migrations`.
    struct Migration: Sendable {
        var name: String
        var statements: [String]
    }

    /// A client of the server `configuration` names. Nothing connects until the first statement. Its pool metrics go
    /// to `metricsFactory` (default: the bootstrapped `MetricsSystem`).
    public init(
        configuration: Configuration, logger: Logger = Logger(label: "cachekit.postgres"), metricsFactory: any MetricsFactory = MetricsSystem.factory
    ) {
        self.metricsFactory = metricsFactory
        self.configuration = configuration
        self.logger = logger
        self.service = PooledClientService(
            pool: ConnectionPool(configuration: configuration.poolConfiguration, logger: logger, metricsFactory: metricsFactory) {
                try PostgresConnection(configuration)
            })
        self.replicaRoute = configuration.readReplica.map {
            PostgresReplicaRoute($0, primary: configuration, logger: logger, metricsFactory: metricsFactory)
        }
    }

    var prefix: String { self.configuration.tablePrefix }

    /// Applies `migrations` that are not yet recorded, each in its own transaction, holding a session advisory lock.
    func migrate(_ migrations: [Migration]) async throws {
        let pending = migrations.filter { migration in self.migrated.withLock { !$0.contains(migration.name) } }
        guard !pending.isEmpty else { return }
        let prefix = self.prefix
        let backend = self.configuration.name
        try await self.pool.withConnection { connection in
            // 0x63616368656b6974 = "cachekit": one lock for every CacheKit schema in the database.
            try connection.simple("SELECT pg_advisory_lock(7161123705024522612)")
            defer { _ = try? connection.simple("SELECT pg_advisory_unlock(7161123705024522612)") }
            try connection.simple("CREATE TABLE IF NOT EXISTS \(prefix)_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
            for migration in pending {
                let applied = try connection.execute("ck_migration_check", "SELECT 1 FROM \(prefix)_migrations WHERE name = $1", [.text(migration.name)])
                guard applied.rows.isEmpty else { continue }
                try connection.simple("BEGIN")
                do {
                    for statement in migration.statements { try connection.simple(statement) }
                    _ = try connection.execute("ck_migration_record", "INSERT INTO \(prefix)_migrations (name) VALUES ($1)", [.text(migration.name)])
                    try connection.simple("COMMIT")
                } catch let error as CacheError {
                    _ = try? connection.simple("ROLLBACK")
                    if error.message.contains("extension \"vector\"") || error.message.contains("vector.control") {
                        throw CacheError(
                            .unsupported,
                            "the server has no pgvector extension (CREATE EXTENSION vector failed): install pgvector 0.5 or newer",
                            backend: backend, underlying: error
                        )
                    }
                    throw CacheError(error.code, "migration \(migration.name) failed: \(error.message)", backend: backend, underlying: error)
                }
            }
        }
        self.migrated.withLock { $0.formUnion(pending.map(\.name)) }
    }

    /// Runs a read-only statement (a semantic search): on the read replica when one is configured and usable, else,
    /// and after a replica failure, on the primary.
    func read(_ name: String, _ sql: String, _ parameters: [PostgresParameter], scope: Digest256) async throws -> PostgresRows {
        if let route = self.replicaRoute, route.usable(scope: scope) {
            do {
                let rows = try await route.service.pool.withConnection { connection in try connection.execute(name, sql, parameters) }
                route.served()
                return rows
            } catch let error as CancellationError {
                throw error
            } catch {
                route.failed(error)
            }
        }
        return try await self.execute(name, sql, parameters)
    }

    /// What the read replica has done, when there is one.
    public struct ReplicaFigures: Sendable, Hashable {
        /// Searches the replica answered.
        public var reads: Int
        /// Searches it failed, answered by the primary instead.
        public var fallbacks: Int
        /// Its replay lag measured last; `nil` before the first check, or when it is unreachable or not a replica.
        public var lag: Duration?
    }

    /// The read replica's figures; `nil` without one.
    public var replicaFigures: ReplicaFigures? { self.replicaRoute?.figures }

    /// Measures the read replica's lag now (`run()` does it every second).
    public func checkReplica() async { await self.replicaRoute?.check() }

    /// Runs one prepared statement on a leased connection.
    func execute(_ name: String, _ sql: String, _ parameters: [PostgresParameter]) async throws -> PostgresRows {
        try await self.pool.withConnection { connection in try connection.execute(name, sql, parameters) }
    }

    /// Deletes expired rows of `table` in batches; returns how many.
    func purge(table: String, now: CacheTime) async throws -> Int {
        var total = 0
        while true {
            let rows = try await self.execute(
                "ck_purge_\(table)",
                "DELETE FROM \(table) WHERE ctid IN (SELECT ctid FROM \(table) WHERE stale_until <= $1::bigint LIMIT $2::int)",
                [.text(String(now.millisecondsSinceEpoch)), .text(String(self.configuration.purgeBatch))]
            )
            total += rows.affected
            if rows.affected < self.configuration.purgeBatch { return total }
        }
    }

    /// Removal shared by both tables: by exact key, by tag (GIN `@>`), by scope. Return how many rows went.
    func remove(key: CacheKey, from table: String) async throws -> Int {
        self.replicaRoute?.fence(scope: key.scopeID)
        defer { self.replicaRoute?.fence(scope: key.scopeID) }
        return try await self.execute("ck_del_\(table)", "DELETE FROM \(table) WHERE key = $1", [Self.digest(key.digest)]).affected
    }

    func remove(taggedWith tag: String, from table: String) async throws -> Int {
        self.replicaRoute?.fence(scope: nil)
        defer { self.replicaRoute?.fence(scope: nil) }
        return try await self.execute("ck_deltag_\(table)", "DELETE FROM \(table) WHERE tags @> ARRAY[$1::text]", [.text(tag)]).affected
    }

    /// Reads the scope's rows and deletes those whose entry `predicate` selects, one parameterised DELETE each:
    /// O(n) in the scope (see `CacheStore.removeAll(in:where:)`). A row whose payload does not decode is left alone.
    func remove(scope: CacheScope, from table: String, where predicate: @Sendable (CacheEntry) -> Bool) async throws -> Int {
        self.replicaRoute?.fence(scope: scope.id)
        defer { self.replicaRoute?.fence(scope: scope.id) }
        let rows = try await self.execute("ck_scan_\(table)", "SELECT key, payload FROM \(table) WHERE scope_id = $1", [Self.digest(scope.id)])
        var removed = 0
        for row in rows.rows {
            guard row.count == 2, let key = row[0], let payload = row[1], let entry = try? CacheEntryCodec.decode(payload), predicate(entry)
            else { continue }
            removed += try await self.execute("ck_delraw_\(table)", "DELETE FROM \(table) WHERE key = $1", [.binary(key)]).affected
        }
        return removed
    }

    func remove(scope: CacheScope, from table: String) async throws -> Int {
        self.replicaRoute?.fence(scope: scope.id)
        defer { self.replicaRoute?.fence(scope: scope.id) }
        return try await self.execute("ck_delscope_\(table)", "DELETE FROM \(table) WHERE scope_id = $1", [Self.digest(scope.id)]).affected
    }

    /// Pool figures: open and idle connections, waiters, connections created and destroyed.
    public var poolCounters: ConnectionPoolCounters { self.service.counters }

    /// The pool's threads started so far (one per connection opened at once, plus one).
    public var startedThreads: Int { self.service.startedThreads }

    /// Checks idle connections every `purgeInterval` until graceful shutdown or cancellation, then closes the pool.
    /// A second `run()` while one is running waits for shutdown and does nothing else.
    public func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask {
                await self.service.run(checkingEvery: self.configuration.purgeInterval) { connection in
                    try connection.simple("SELECT 1").rows.count == 1
                }
            }
            if let route = self.replicaRoute { group.addTask { await route.run() } }
        }
    }

    /// The background work of a table's owner: the client's `run()`, and `purge` every `purgeInterval`, until
    /// graceful shutdown or cancellation.
    func maintain(purge: @escaping @Sendable () async throws -> Void) async throws {
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await self.run() }
            group.addTask {
                await runPeriodically(every: self.configuration.purgeInterval) {
                    do { try await purge() } catch { self.logger.warning("purge failed", metadata: ["error": "\(error)"]) }
                }
            }
        }
    }

    /// `tags` as the JSON text that `ARRAY(SELECT jsonb_array_elements_text($n::jsonb))` turns into a `text[]`.
    static func tagsParameter(_ tags: [String]) -> PostgresParameter {
        .text(String(decoding: JSONValue.array(tags.map(JSONValue.string)).canonicalBytes(), as: UTF8.self))
    }

    static func digest(_ digest: Digest256) -> PostgresParameter { .binary(digest.bytes) }
}
