public import CacheKit
public import Logging
import Metrics
import ServiceLifecycle

/// The shared semantic layer in PostgreSQL with pgvector.
///
/// Table `<prefix>_vectors_<dimension>(key bytea PRIMARY KEY, scope_id bytea, partition bytea,
/// embedding vector(<dimension>), payload bytea, stale_until bigint, tags text[])` with an HNSW index
/// (`vector_cosine_ops`, `m`/`ef_construction` from the configuration) and indexes on (scope, partition), tags and
/// expiry. The entry travels with its vector (`payload`, `CacheEntryCodec` bytes), keyed by the exact key of the
/// request that produced it, so a match needs no second lookup.
///
/// A search never leaves its plan to PostgreSQL's statistics: a partition (scope, namespace, version, model) of at most
/// `dedicatedTableThreshold` records is searched exactly in the shared table, and a larger one moves to a table of its
/// own with its own HNSW index (see "Partitions with a table of their own" in the source, and the "Scaling" article).
/// `hnsw.ef_search` is set per connection. Vectors travel as binary parameters (pgvector's wire format: dimension, then
/// big-endian floats).
///
/// Searches read a streaming replica when the client has one (`PostgresClient.Configuration.readReplica`), and the
/// primary while the replica lags or fails.
///
/// Each scope keeps at most `maximumRecordsPerScope` records (default 100,000): past it the oldest-inserted go first,
/// counted in `evictedRecords` (a table column `inserted_at`, indexed with the scope).
public final class PGVectorSemanticIndex: SemanticIndex, PostgresTableStore {
    public var capabilities: CacheCapabilities { [.contentRemoval, .backgroundWork] }
    /// The client the index talks through (shared with an exact layer, or its own).
    public let client: PostgresClient
    public var configuration: PostgresClient.Configuration { self.client.configuration }
    public let dimension: Int
    public var name: String { "\(self.configuration.name)-pgvector" }
    /// Rows this instance inserted since the planner statistics were last refreshed, and the table's row estimate
    /// then (see `refreshStatisticsIfGrown()`).
    private let growth = LockedState((inserted: 0, rowsAtRefresh: 0))
    /// Inserts per scope since its cap was last checked, and records evicted by the cap since start.
    private let capping = LockedState((sinceCheck: [Digest256: Int](), evicted: 0))
    /// Partitions with their own table as last read from the registry, and inserts per partition since its rows were
    /// last counted.
    let dedicated = LockedState(DedicatedTables())
    public let clock: any CacheClock
    public let table: String

    /// An index on a shared client, in the table `<tablePrefix>_vectors_<dimension>`, created on first use.
    ///
    /// - Parameters:
    ///   - client: the server, pool and HNSW settings.
    ///   - dimension: the embedding dimension (384 for all-MiniLM-L6-v2); 1...16,000.
    ///   - clock: the clock expiry is measured by.
    public init(client: PostgresClient, dimension: Int, clock: any CacheClock = SystemCacheClock()) {
        precondition((1...16_000).contains(dimension), "pgvector stores 1 to 16,000 dimensions")
        self.client = client
        self.dimension = dimension
        self.clock = clock
        self.table = "\(client.configuration.tablePrefix)_vectors_\(dimension)"
    }

    /// A convenience: an index with a client of its own. Prefer one shared `PostgresClient` when an exact layer
    /// lives on the same server.
    public convenience init(
        configuration: PostgresClient.Configuration,
        dimension: Int,
        clock: any CacheClock = SystemCacheClock(),
        logger: Logger = Logger(label: "cachekit.pgvector")
    ) {
        self.init(client: PostgresClient(configuration: configuration, logger: logger), dimension: dimension, clock: clock)
    }

    var migrations: [PostgresClient.Migration] {
        let t = self.table
        return [
            .init(name: "\(t)_v1", statements: [
                "CREATE EXTENSION IF NOT EXISTS vector",
                """
                CREATE TABLE IF NOT EXISTS \(t) (key bytea PRIMARY KEY, scope_id bytea NOT NULL, partition bytea NOT NULL,
                  embedding vector(\(self.dimension)) NOT NULL, payload bytea NOT NULL, stale_until bigint NOT NULL,
                  tags text[] NOT NULL DEFAULT '{}')
                """,
                """
                CREATE INDEX IF NOT EXISTS \(t)_hnsw ON \(t) USING hnsw (embedding vector_cosine_ops)
                  WITH (m = \(self.configuration.hnswM), ef_construction = \(self.configuration.hnswEfConstruction))
                """,
                "CREATE INDEX IF NOT EXISTS \(t)_partition ON \(t) (scope_id, partition)",
                "CREATE INDEX IF NOT EXISTS \(t)_tags ON \(t) USING gin (tags)",
                "CREATE INDEX IF NOT EXISTS \(t)_stale ON \(t) (stale_until)",
            ]),
            // The per-scope cap drops the oldest-inserted records first.
            .init(name: "\(t)_v2_inserted_at", statements: [
                "ALTER TABLE \(t) ADD COLUMN IF NOT EXISTS inserted_at bigint NOT NULL DEFAULT 0",
                "CREATE INDEX IF NOT EXISTS \(t)_scope_age ON \(t) (scope_id, inserted_at)",
            ]),
            // Partitions past `dedicatedTableThreshold` records get a table of their own (a child of this one).
            .init(name: "\(t)_v3_dedicated", statements: [
                """
                CREATE TABLE IF NOT EXISTS \(t)_dedicated (partition bytea PRIMARY KEY, scope_id bytea NOT NULL,
                  table_name text NOT NULL UNIQUE, created_at bigint NOT NULL)
                """,
                // The shared table is only ever searched exactly now; its HNSW index would cost every insert for nothing.
                "DROP INDEX IF EXISTS \(t)_hnsw",
            ]),
        ]
    }

    /// Applies the schema migrations now (otherwise the first operation does).
    public func migrate() async throws { try await self.client.migrate(self.migrations) }


    /// pgvector's binary input format: int16 dimension, int16 unused, then float4 values, all big-endian.
    static func vectorParameter(_ vector: [Float]) -> PostgresParameter {
        var bytes = [UInt8]()
        bytes.reserveCapacity(4 + vector.count * 4)
        bytes.append(UInt8(truncatingIfNeeded: vector.count >> 8))
        bytes.append(UInt8(truncatingIfNeeded: vector.count))
        bytes.append(0)
        bytes.append(0)
        for value in vector {
            let bits = value.bitPattern
            bytes.append(UInt8(truncatingIfNeeded: bits >> 24))
            bytes.append(UInt8(truncatingIfNeeded: bits >> 16))
            bytes.append(UInt8(truncatingIfNeeded: bits >> 8))
            bytes.append(UInt8(truncatingIfNeeded: bits))
        }
        return .binary(bytes)
    }

    /// The statement a search of `partition` runs, and its name ($1 vector, $2 scope id, $3 partition, $4 now,
    /// $5 limit).
    func searchStatement(_ partition: Digest256) async throws -> (name: String, sql: String) {
        if let child = try await self.dedicatedTable(for: partition) {
            return ("ck_search_\(child)", self.dedicatedSearchSQL(child))
        }
        return ("ck_search_\(self.table)", self.sharedSearchSQL)
    }

    public func search(_ query: SemanticQuery) async throws -> [SemanticMatch] {
        let vector = try VectorValidation.normalized(query.vector, dimension: self.dimension, backend: self.name)
        guard query.limit > 0 else { return [] }
        try await self.migrate()
        let statement = try await self.searchStatement(query.partition.digest)
        // A read: the replica when one is configured and fresh enough (`PostgresClient.Configuration.ReadReplica`).
        let rows = try await self.client.read(
            statement.name, statement.sql,
            [
                Self.vectorParameter(vector), PostgresClient.digest(query.partition.scopeID), PostgresClient.digest(query.partition.digest),
                .text(String(self.clock.now().millisecondsSinceEpoch)), .text(String(query.limit)),
            ],
            scope: query.partition.scopeID
        )
        var matches: [SemanticMatch] = []
        var seen: Set<Digest256> = []
        for index in rows.rows.indices {
            guard rows.rows[index].count == 4, let keyBytes = rows.rows[index][0], let digest = Digest256(bytes: keyBytes),
                let partition = rows.rows[index][1], let payload = rows.rows[index][2], let similarity = rows.float64(index, 3)
            else { continue }
            // Every statement filters on the partition or reads a table holding it alone; checked again here anyway.
            guard partition == query.partition.digest.bytes, seen.insert(digest).inserted else { continue }
            guard Float(similarity) >= query.minimumSimilarity else { continue }
            let entry: CacheEntry
            do {
                entry = try CacheEntryCodec.decode(payload)
            } catch {
                throw CacheError(error.code, error.message, backend: self.name)
            }
            matches.append(SemanticMatch(key: CacheKey(digest: digest, scopeID: query.partition.scopeID), similarity: Float(min(1, similarity)), entry: entry))
        }
        return matches
    }

    public func insert(_ record: SemanticRecord) async throws {
        let vector = try VectorValidation.normalized(record.vector, dimension: self.dimension, backend: self.name)
        try await self.migrate()
        let child = try await self.dedicatedTable(for: record.partition.digest)
        let target = child ?? self.table
        // One row per key across the shared table and its children: the key's row elsewhere (another partition's,
        // or a straggler) goes in the same statement.
        _ = try await self.execute(
            "ck_insert_\(target)",
            """
            WITH elsewhere AS (DELETE FROM \(self.table) WHERE key = $1 AND tableoid <> '\(target)'::regclass)
            INSERT INTO \(target) (key, scope_id, partition, embedding, payload, stale_until, tags, inserted_at)
            VALUES ($1, $2, $3, $4::vector, $5, $6::bigint, ARRAY(SELECT jsonb_array_elements_text($7::jsonb)), $8::bigint)
            ON CONFLICT (key) DO UPDATE SET scope_id = EXCLUDED.scope_id, partition = EXCLUDED.partition,
              embedding = EXCLUDED.embedding, payload = EXCLUDED.payload, stale_until = EXCLUDED.stale_until, tags = EXCLUDED.tags,
              inserted_at = EXCLUDED.inserted_at
            """,
            [
                PostgresClient.digest(record.key.digest), PostgresClient.digest(record.partition.scopeID),
                PostgresClient.digest(record.partition.digest), Self.vectorParameter(vector),
                .binary(CacheEntryCodec.encode(record.entry)), .text(String(record.entry.staleUntil.millisecondsSinceEpoch)),
                PostgresClient.tagsParameter(record.entry.tags), .text(String(self.clock.now().millisecondsSinceEpoch)),
            ]
        )
        self.growth.withLock { $0.inserted += 1 }
        // Read-your-writes: this scope's searches read the primary until the replica has the record.
        self.client.replicaRoute?.fence(scope: record.partition.scopeID)
        try await self.capIfDue(record.partition.scopeID)
        if child == nil { try await self.promoteIfDue(record.partition.digest, scope: record.partition.scopeID) }
    }

    /// Records deleted by the per-scope cap since this index was made.
    public var evictedRecords: Int { self.capping.withLock { $0.evicted } }

    /// Every hundredth of the cap's inserts into a scope, deletes the scope's records past the newest
    /// `maximumRecordsPerScope` (one statement over the `(scope_id, inserted_at)` index).
    private func capIfDue(_ scope: Digest256) async throws {
        guard let cap = self.configuration.maximumRecordsPerScope, cap > 0 else { return }
        let due = self.capping.withLock { state -> Bool in
            state.sinceCheck[scope, default: 0] += 1
            guard state.sinceCheck[scope, default: 0] >= max(1, cap / 100) else { return false }
            state.sinceCheck[scope] = nil
            return true
        }
        guard due else { return }
        let removed = try await self.execute(
            "ck_cap_\(self.table)",
            """
            DELETE FROM \(self.table) WHERE key IN (
              SELECT key FROM \(self.table) WHERE scope_id = $1 ORDER BY inserted_at DESC, key OFFSET $2::bigint)
            """,
            [PostgresClient.digest(scope), .text(String(cap))]
        ).affected
        guard removed > 0 else { return }
        self.capping.withLock { $0.evicted += removed }
        self.client.replicaRoute?.fence(scope: scope)
        Counter(label: "cachekit_pgvector_evicted_total", dimensions: [("backend", self.configuration.name)], factory: self.client.metricsFactory)
            .increment(by: removed)
        self.client.logger.debug("per-scope cap applied", metadata: ["table": "\(self.table)", "evicted": "\(removed)"])
    }





    public func removeAll(near vector: [Float], minimumSimilarity: Float, in scope: CacheScope) async throws -> Int {
        let vector = try VectorValidation.normalized(vector, dimension: self.dimension, backend: self.name)
        self.client.replicaRoute?.fence(scope: scope.id)
        return try await self.execute(
            "ck_delnear_\(self.table)",
            "DELETE FROM \(self.table) WHERE scope_id = $2 AND 1 - (embedding <=> $1::vector) >= $3::float8",
            [Self.vectorParameter(vector), PostgresClient.digest(scope.id), .text(String(Double(minimumSimilarity)))]
        ).affected
    }

    /// The query plan of a search, for checking that the HNSW index is used (`EXPLAIN`).
    public func explainSearch(_ query: SemanticQuery) async throws -> String {
        try await self.migrate()
        let vector = try VectorValidation.normalized(query.vector, dimension: self.dimension, backend: self.name)
        let statement = try await self.searchStatement(query.partition.digest)
        let rows = try await self.client.pool.withConnection { connection in
            // A plan only: parameters are bound exactly as in `search`.
            try connection.execute(
                "ck_explain_\(statement.name)", "EXPLAIN " + statement.sql,
                [
                    Self.vectorParameter(vector), PostgresClient.digest(query.partition.scopeID), PostgresClient.digest(query.partition.digest),
                    .text(String(self.clock.now().millisecondsSinceEpoch)), .text(String(query.limit)),
                ]
            )
        }
        return rows.rows.compactMap { $0.first.flatMap { $0 }.map { String(decoding: $0, as: UTF8.self) } }.joined(separator: "\n")
    }


    /// Refreshes the planner's statistics of the table (`ANALYZE`) once this instance has inserted at least 1,000
    /// rows and a tenth of the table since the last refresh; returns whether it ran.
    ///
    /// Searches no longer depend on these statistics (a partition is sorted exactly or searched in its own table,
    /// whatever the estimates); removals by tag and scope and the purge still plan from them. `run()` calls this every
    /// `purgeInterval`; call it yourself after a bulk warm-up.
    @discardableResult
    public func refreshStatisticsIfGrown(force: Bool = false) async throws -> Bool {
        let (inserted, rows) = self.growth.withLock { ($0.inserted, $0.rowsAtRefresh) }
        guard force || (inserted >= 1000 && inserted >= rows / 10) else { return false }
        try await self.migrate()
        let estimate = try await self.client.pool.withConnection { connection in
            // The table name is CacheKit's own identifier (validated prefix + dimension), never user data.
            _ = try connection.simple("ANALYZE \(self.table)")
            return try connection.simple("SELECT reltuples::bigint::text FROM pg_class WHERE oid = '\(self.table)'::regclass").rows
        }
        let rowsNow = estimate.first?.first.flatMap { $0 }.flatMap { Int(String(decoding: $0, as: UTF8.self)) } ?? (rows + inserted)
        self.growth.withLock { $0 = (inserted: $0.inserted - inserted, rowsAtRefresh: max(0, rowsNow)) }
        return true
    }

    /// Purges expired rows and refreshes planner statistics after growth every `purgeInterval`, moves partitions that
    /// grew past `dedicatedTableThreshold` to their own tables (at the first purge, then every ten minutes), and checks
    /// the pool's connections, until graceful shutdown.
    public func run() async throws {
        try await self.client.maintain {
            try await self.purgeExpired()
            do {
                if self.sweepIsDue { try await self.moveLargePartitions() }
            } catch {
                self.client.logger.warning("moving large semantic partitions to their own tables failed", metadata: ["error": "\(error)"])
            }
            do {
                try await self.refreshStatisticsIfGrown()
            } catch {
                self.client.logger.debug("refreshing planner statistics failed", metadata: ["error": "\(error)"])
            }
        }
    }

}

/// What an index knows of the partitions with their own table.
struct DedicatedTables {
    var tables: [Digest256: String] = [:]
    var readAt: ContinuousClock.Instant?
    var insertsSinceCount: [Digest256: Int] = [:]
    var sweptAt: ContinuousClock.Instant?
}

extension SemanticLayer {
    /// A semantic layer over pgvector on a shared client, sized to the embedder's dimension. The index is shared by
    /// every instance (`isShared`).
    public static func pgvector(
        client: PostgresClient,
        embedder: any EmbeddingProvider,
        threshold: Float = 0.9,
        timeout: Duration? = nil
    ) -> SemanticLayer {
        var layer = SemanticLayer(
            index: PGVectorSemanticIndex(client: client, dimension: embedder.dimension),
            embedder: embedder, threshold: threshold, timeout: timeout
        )
        layer.isShared = true
        return layer
    }

    /// A convenience: a semantic layer over pgvector with a client of its own.
    public static func pgvector(
        _ configuration: PostgresClient.Configuration,
        embedder: any EmbeddingProvider,
        threshold: Float = 0.9,
        timeout: Duration? = nil
    ) -> SemanticLayer {
        .pgvector(client: PostgresClient(configuration: configuration), embedder: embedder, threshold: threshold, timeout: timeout)
    }
}
