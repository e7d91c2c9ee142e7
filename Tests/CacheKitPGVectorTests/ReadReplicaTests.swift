import CacheKit
import CacheKitPGVector
import CacheKitTesting
import Foundation
import Testing

/// Semantic searches from a streaming replica (scripts/test starts one with pg_basebackup): used while fresh, left for
/// the primary while it lags, fails or is dead, and never used to undo this instance's own removals.
@Suite(
    "PostgreSQL read replica", .serialized,
    .enabled(if: ProcessInfo.processInfo.environment["CACHEKIT_POSTGRES_REPLICA_URL"] != nil, "needs the replica scripts/test starts")
)
struct ReadReplicaTests {
    static let replicaURL = ProcessInfo.processInfo.environment["CACHEKIT_POSTGRES_REPLICA_URL"] ?? ""

    static func replicaSQL(_ sql: String) throws {
        let bin = ProcessInfo.processInfo.environment["CACHEKIT_PG_BIN"] ?? "/usr/bin"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: bin + "/psql")
        process.arguments = [replicaURL, "-At", "-c", sql]
        try process.run()
        process.waitUntilExit()
    }

    static func pgctl(_ action: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [try #require(ProcessInfo.processInfo.environment["CACHEKIT_PG_CTL"]), action]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "pg-ctl.sh \(action) failed")
    }

    func index(maximumLag: Duration) throws -> (PGVectorSemanticIndex, PostgresClient) {
        var configuration = try PostgresTestServer.configuration(prefix: "ckrep\(UInt16.random(in: 0...UInt16.max))")
        configuration.readReplica = try .init(connectionString: Self.replicaURL, maximumLag: maximumLag)
        let client = PostgresClient(configuration: configuration)
        return (PGVectorSemanticIndex(client: client, dimension: 8), client)
    }

    func record(_ seed: UInt64) -> SemanticRecord {
        var generator = SeededGenerator(seed: seed)
        var v = (0..<8).map { _ in Float.random(in: -1...1, using: &generator) }
        let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        v = v.map { $0 / norm }
        let scope = CacheScope(tenant: "replica")
        let now = SystemCacheClock().now()
        return SemanticRecord(
            key: CacheKey(digest: Digest256(hashing: Array("r\(seed)".utf8)), scopeID: scope.id),
            partition: SemanticPartition(digest: Digest256(hashing: [1]), scopeID: scope.id), vector: v,
            entry: CacheEntry(value: [1], createdAt: now, expiresAt: now + .seconds(600)))
    }

    func finds(_ record: SemanticRecord, in index: PGVectorSemanticIndex) async throws -> Bool {
        try await index.search(SemanticQuery(vector: record.vector, partition: record.partition, minimumSimilarity: 0.99, limit: 1))
            .first?.key == record.key
    }

    @Test func searchesReadTheFreshReplicaButNeverUndoARemovalOrServeALaggingOne() async throws {
        let (index, client) = try self.index(maximumLag: .milliseconds(300))
        let first = self.record(1)
        try await index.insert(first)
        // Searches go to the replica once a check finds it fresh, and see the row once it has replayed it.
        var seen = false
        for _ in 0..<100 where !seen {
            await client.checkReplica()
            seen = try await self.finds(first, in: index) && (client.replicaFigures?.reads ?? 0) > 0
            if !seen { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(seen, "the replica never answered a search")

        // The replica stops replaying: it keeps the row the primary is about to delete.
        try Self.replicaSQL("SELECT pg_wal_replay_pause()")
        defer { try? Self.replicaSQL("SELECT pg_wal_replay_resume()") }
        #expect(try await index.remove(first.key))
        #expect(try await !self.finds(first, in: index), "a search after this instance's removal was answered by the stale replica")

        // Past the fence, the paused replica lags ever more: searches stay on the primary.
        let second = self.record(2)
        try await index.insert(second)
        try await Task.sleep(for: .milliseconds(1400))
        await client.checkReplica()
        let readsBefore = client.replicaFigures?.reads ?? 0
        #expect((client.replicaFigures?.lag ?? .zero) > .milliseconds(300), "the paused replica's lag was not measured")
        #expect(try await self.finds(second, in: index), "a lagging replica answered (it has not replayed the row)")
        #expect(client.replicaFigures?.reads == readsBefore)
    }

    /// The semantic index conformance suite with searches routed to the replica: read-your-writes holds per scope
    /// (this instance's writes and removals send that scope's searches to the primary until the replica has them).
    @Test(arguments: SemanticIndexConformance.Behaviour.allCases)
    func indexConformanceWithAReplica(_ behaviour: SemanticIndexConformance.Behaviour) async throws {
        try await SemanticIndexConformance.realTime {
            let (index, client) = try self.index(maximumLag: .milliseconds(500))
            await client.checkReplica()
            return index
        }.run(behaviour)
    }

    @Test func aDeadReplicaFailsNoSearch() async throws {
        let (index, client) = try self.index(maximumLag: .milliseconds(500))
        let record = self.record(3)
        try await index.insert(record)
        var ready = false
        for _ in 0..<100 where !ready {
            await client.checkReplica()
            ready = try await self.finds(record, in: index) && (client.replicaFigures?.reads ?? 0) > 0
            if !ready { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(ready)
        try Self.pgctl("kill-replica")
        var failures = 0
        for _ in 0..<20 {
            do {
                if try await !self.finds(record, in: index) { failures += 1 }
            } catch {
                failures += 1
            }
        }
        try Self.pgctl("start-replica")
        #expect(failures == 0, "searches failed while the replica was dead")
        #expect((client.replicaFigures?.fallbacks ?? 0) >= 1, "no search tried the dead replica: the test proved nothing")
    }
}
