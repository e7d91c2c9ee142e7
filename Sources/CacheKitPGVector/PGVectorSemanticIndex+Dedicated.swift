import CacheKit
import Logging

/// Partitions with a table of their own.
///
/// Why: a search filters on scope and partition and orders by distance, and in one shared table PostgreSQL picks its
/// plan from statistics. Either plan fails somewhere: the partition index with an exact sort is right but grows
/// linearly with the partition (13 ms at 10,000 rows), and the HNSW index filtered afterwards loses a partition's own
/// near-duplicate among other tenants' near-copies (recall@1 0.54–0.69 measured with 100 tenants sharing questions).
///
/// So the index never leaves the choice to the planner:
/// - a partition of at most `dedicatedTableThreshold` records lives in the shared table and is searched exactly: its
///   rows are fetched through the `(scope_id, partition)` index in a materialized CTE, which no plan can turn into an
///   HNSW scan, then sorted by distance;
/// - past the threshold the partition moves, in one transaction, to `<table>_p<16 hex of the partition digest>`, a
///   child of the shared table (`INHERITS`) with its own HNSW index holding that partition alone, so the index's
///   candidates are all the partition's own. The registry `<table>_dedicated` records the move; every instance
///   rereads it at most once a second.
///
/// Because children inherit from the shared table, every removal (key, tag, scope, content), the purge and the
/// per-scope cap, which address the shared table, reach them with no change. A record written to the shared table by
/// an instance that had not yet seen the move (for at most a second) is removed like any other, and moved to the
/// partition's table by the next sweep in `run()`; until then it is not found (a miss, never a wrong answer).
extension PGVectorSemanticIndex {
    /// The registry of partitions with their own table.
    var registryTable: String { "\(self.table)_dedicated" }

    /// The child table of a partition: CacheKit's own identifier (the table name and hex digits, at most 63 bytes).
    func dedicatedTableName(_ partition: Digest256) -> String {
        let hex = partition.hex
        let room = max(8, min(16, 63 - self.table.count - 2))
        return "\(self.table)_p\(hex.prefix(room))"
    }

    /// The partition's own table, if it has one (the registry as read at most a second ago).
    func dedicatedTable(for partition: Digest256) async throws -> String? {
        let known = self.dedicated.withLock { state -> [Digest256: String]? in
            guard let readAt = state.readAt, ContinuousClock.now - readAt < .seconds(1) else { return nil }
            return state.tables
        }
        if let known { return known[partition] }
        return try await self.readRegistry()[partition]
    }

    /// Reads the registry. A name is never taken from the database: the child's name is computed from the digest, and a
    /// row whose name differs is ignored.
    @discardableResult
    func readRegistry() async throws -> [Digest256: String] {
        // From the primary: the registry must be at least as new as the rows a search of the primary reads.
        let rows = try await self.execute("ck_registry_\(self.table)", "SELECT partition, table_name FROM \(self.registryTable)", [])
        var tables: [Digest256: String] = [:]
        for row in rows.rows {
            guard row.count == 2, let bytes = row[0], let partition = Digest256(bytes: bytes), let name = row[1],
                String(decoding: name, as: UTF8.self) == self.dedicatedTableName(partition)
            else { continue }
            tables[partition] = self.dedicatedTableName(partition)
        }
        self.dedicated.withLock { state in
            state.tables = tables
            state.readAt = .now
        }
        return tables
    }

    /// The search of a partition in the shared table alone: exact, over the rows the `(scope_id, partition)` index
    /// finds ($1 vector, $2 scope id, $3 partition, $4 now, $5 limit).
    var sharedSearchSQL: String {
        """
        WITH own AS MATERIALIZED (
          SELECT key, partition, payload, embedding FROM ONLY \(self.table)
          WHERE scope_id = $2 AND partition = $3 AND stale_until > $4::bigint)
        SELECT key, partition, payload, 1 - (embedding <=> $1::vector) AS similarity FROM own
        ORDER BY embedding <=> $1::vector LIMIT $5::int
        """
    }

    /// The search of a partition with its own table: its HNSW index alone. (Rows of the partition that an instance
    /// wrote to the shared table before it saw the move are not searched until the sweep moves them: a search of the
    /// shared table right after a move would walk the moved rows' dead index entries until vacuum, 5–100 ms measured.)
    func dedicatedSearchSQL(_ child: String) -> String {
        """
        SELECT key, partition, payload, 1 - (embedding <=> $1::vector) AS similarity FROM ONLY \(child)
        WHERE stale_until > $4::bigint AND partition = $3 AND scope_id = $2
        ORDER BY embedding <=> $1::vector LIMIT $5::int
        """
    }

    /// Counts, every tenth of the threshold's inserts into a partition of the shared table, the partition's rows
    /// there, and moves it to its own table once they reach the threshold.
    func promoteIfDue(_ partition: Digest256, scope: Digest256) async throws {
        let threshold = self.configuration.dedicatedTableThreshold
        let due = self.dedicated.withLock { state -> Bool in
            state.insertsSinceCount[partition, default: 0] += 1
            guard state.insertsSinceCount[partition, default: 0] >= max(1, threshold / 10) else { return false }
            state.insertsSinceCount[partition] = nil
            return true
        }
        guard due else { return }
        let rows = try await self.execute(
            "ck_count_\(self.table)", "SELECT count(*)::text FROM ONLY \(self.table) WHERE scope_id = $1 AND partition = $2",
            [PostgresClient.digest(scope), PostgresClient.digest(partition)])
        guard let count = rows.rows.first?.first.flatMap({ $0 }).flatMap({ Int(String(decoding: $0, as: UTF8.self)) }), count >= threshold else { return }
        try await self.promote(partition, scope: scope)
    }

    /// Moves a partition to its own table (one transaction, under an advisory lock on the partition); a partition
    /// already moved, or whose table name another partition holds, stays as it is.
    func promote(_ partition: Digest256, scope: Digest256) async throws {
        let child = self.dedicatedTableName(partition)
        let table = self.table
        let registry = self.registryTable
        let configuration = self.configuration
        let moved = try await self.client.pool.withConnection { connection -> Int in
            try connection.withReplyTimeout(.seconds(610)) {
                try Self.move(partition, scope: scope, to: child, table: table, registry: registry, configuration: configuration, on: connection)
            }
        }
        guard moved >= 0 else { return }
        self.dedicated.withLock { $0.tables[partition] = child }
        self.client.replicaRoute?.fence(scope: scope)
        self.client.logger.info("a semantic partition moved to its own table", metadata: ["table": "\(child)", "records": "\(moved)"])
    }

    /// The move itself, on one connection: the rows, the new table's indexes and the registry row in one transaction;
    /// -1 when there was nothing to do.
    private static func move(
        _ partition: Digest256, scope: Digest256, to child: String, table: String, registry: String,
        configuration: PostgresClient.Configuration, on connection: PostgresConnection
    ) throws -> Int {
        let lockKey = partition.bytes.prefix(8).reduce(Int64(0)) { ($0 << 8) | Int64($1) }
        _ = try connection.simple("BEGIN")
        do {
            _ = try connection.execute("ck_lock", "SELECT pg_advisory_xact_lock($1::bigint)", [.text(String(lockKey))])
            let existing = try connection.execute(
                "ck_registry_get_\(table)", "SELECT 1 FROM \(registry) WHERE partition = $1 OR table_name = $2",
                [PostgresClient.digest(partition), .text(child)])
            guard existing.rows.isEmpty else {
                _ = try connection.simple("COMMIT")
                return -1
            }
            // Moving a large partition and building its index takes longer than a search may: this transaction alone
            // gets ten minutes (and the client waits as long).
            _ = try connection.simple("SET LOCAL statement_timeout = '10min'")
            // Identifiers are CacheKit's own (the table name and hex digits); values are bound parameters.
            _ = try connection.simple("CREATE TABLE \(child) (PRIMARY KEY (key)) INHERITS (\(table))")
            let moved = try connection.execute(
                "ck_move_\(child)",
                """
                WITH moved AS (DELETE FROM ONLY \(table) WHERE scope_id = $1 AND partition = $2 RETURNING *)
                INSERT INTO \(child) SELECT * FROM moved ON CONFLICT (key) DO NOTHING
                """,
                [PostgresClient.digest(scope), PostgresClient.digest(partition)]
            ).affected
            // Built after the rows are in: one bulk build instead of an insert per row.
            _ = try connection.simple(
                """
                CREATE INDEX \(child)_hnsw ON \(child) USING hnsw (embedding vector_cosine_ops)
                  WITH (m = \(configuration.hnswM), ef_construction = \(configuration.hnswEfConstruction))
                """)
            _ = try connection.simple("CREATE INDEX \(child)_tags ON \(child) USING gin (tags)")
            _ = try connection.simple("CREATE INDEX \(child)_stale ON \(child) (stale_until)")
            _ = try connection.simple("CREATE INDEX \(child)_scope_age ON \(child) (scope_id, inserted_at)")
            _ = try connection.execute(
                "ck_registry_add_\(table)",
                "INSERT INTO \(registry) (partition, scope_id, table_name, created_at) VALUES ($1, $2, $3, $4::bigint)",
                [
                    PostgresClient.digest(partition), PostgresClient.digest(scope), .text(child),
                    .text(String(SystemCacheClock().now().millisecondsSinceEpoch)),
                ])
            _ = try connection.simple("COMMIT")
            _ = try connection.simple("ANALYZE \(child)")
            return moved
        } catch {
            _ = try? connection.simple("ROLLBACK")
            throw error
        }
    }

    /// Moves partitions that reached `dedicatedTableThreshold` records in the shared table (written before this
    /// version, bulk-loaded, or written by instances that had not seen a move) to tables of their own, and rows of
    /// moved partitions left in the shared table to their partition's table. `run()` calls it at start and every ten
    /// minutes; call it yourself after a bulk import. The scan of the shared table and each move may take longer
    /// than a search, so each gets up to ten minutes.
    public func moveLargePartitions() async throws {
        try await self.migrate()
        let table = self.table
        let threshold = self.configuration.dedicatedTableThreshold
        let large = try await self.client.pool.withConnection { connection in
            try connection.withReplyTimeout(.seconds(610)) { () throws -> PostgresRows in
                _ = try connection.simple("BEGIN")
                do {
                    _ = try connection.simple("SET LOCAL statement_timeout = '10min'")
                    let rows = try connection.execute(
                        "ck_large_\(table)",
                        "SELECT scope_id, partition FROM ONLY \(table) GROUP BY scope_id, partition HAVING count(*) >= $1::bigint",
                        [.text(String(threshold))])
                    _ = try connection.simple("COMMIT")
                    return rows
                } catch {
                    _ = try? connection.simple("ROLLBACK")
                    throw error
                }
            }
        }
        for row in large.rows {
            guard row.count == 2, let scopeBytes = row[0], let partitionBytes = row[1], let scope = Digest256(bytes: scopeBytes),
                let partition = Digest256(bytes: partitionBytes)
            else { continue }
            try await self.promote(partition, scope: scope)
        }
        for (partition, child) in try await self.readRegistry() {
            _ = try await self.execute(
                "ck_straggle_\(child)",
                """
                WITH moved AS (DELETE FROM ONLY \(table) WHERE partition = $1 RETURNING *)
                INSERT INTO \(child) SELECT * FROM moved ON CONFLICT (key) DO NOTHING
                """,
                [PostgresClient.digest(partition)])
        }
        self.dedicated.withLock { $0.sweptAt = .now }
    }

    /// Whether the sweep is due: never run by this index, or ten minutes ago.
    var sweepIsDue: Bool {
        self.dedicated.withLock { state in state.sweptAt.map { ContinuousClock.now - $0 >= .seconds(600) } ?? true }
    }
}
