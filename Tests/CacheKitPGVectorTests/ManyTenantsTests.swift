import CacheKit
import CacheKitTesting
import Foundation
import Testing

@testable import CacheKitPGVector

/// Many tenants in one vector table: every search finds its own tenant's near-duplicate, whatever the planner's
/// statistics and whether the statement is planned once (generic) or per execution (custom).
///
/// The hard case comes from the issue that asked for this: a big tenant beside many small ones that hold copies of
/// the big tenant's questions. In one table with one HNSW index, the index's 64 candidates filled with the other
/// tenants' copies and the big tenant's own near-duplicate was cut (recall@1 0.54–0.69). Now a partition past
/// `dedicatedTableThreshold` has its own table and index, and smaller ones are sorted exactly.
///
/// `CACHEKIT_TENANT_SCALE=full` runs the sizes of the Scaling article (100,000 rows per big tenant; minutes); the
/// default runs the same shapes smaller.
@Suite("pgvector: many tenants in one table", .serialized, .enabled(if: PostgresTestServer.available, "needs CACHEKIT_POSTGRES_URL"))
struct ManyTenantsTests {
    static let full = ProcessInfo.processInfo.environment["CACHEKIT_TENANT_SCALE"] == "full"
    static let dimension = 384

    /// A shape: tenants, rows each, and how many of the first tenant's questions every other tenant also holds.
    struct Shape: CustomStringConvertible, Sendable {
        var name: String
        var bigRows: Int
        var smallTenants: Int
        var smallRows: Int
        /// Questions of the big tenant that every small tenant holds a copy of (its first `shared` questions).
        var shared: Int
        var description: String { self.name }
    }

    static var shapes: [Shape] {
        full
            ? [
                Shape(name: "1 tenant, 100,000 rows", bigRows: 100_000, smallTenants: 0, smallRows: 0, shared: 0),
                Shape(name: "100 tenants × 1,000 rows", bigRows: 1_000, smallTenants: 99, smallRows: 1_000, shared: 0),
                Shape(name: "1,000 tenants × 100 rows", bigRows: 100, smallTenants: 999, smallRows: 100, shared: 0),
                Shape(name: "a 100,000-row tenant beside 100 tenants holding copies of 100 of its questions", bigRows: 100_000, smallTenants: 100, smallRows: 100, shared: 100),
            ]
            : [
                Shape(name: "a 2,000-row tenant beside 100 tenants holding copies of 100 of its questions", bigRows: 2_000, smallTenants: 100, smallRows: 100, shared: 100),
                Shape(name: "200 tenants × 30 rows", bigRows: 30, smallTenants: 199, smallRows: 30, shared: 0),
            ]
    }

    /// Deterministic unit vectors: question `q` of the pool.
    static func question(_ q: Int) -> [Float] {
        var generator = SeededGenerator(seed: UInt64(q) &* 2_654_435_761 &+ 17)
        return normalized((0..<dimension).map { _ in Float.random(in: -1...1, using: &generator) })
    }

    /// A paraphrase of a question: the question plus noise, at a cosine of about 0.93 to it.
    static func nearDuplicate(of vector: [Float], seed: UInt64) -> [Float] {
        var generator = SeededGenerator(seed: seed)
        let noise = normalized((0..<dimension).map { _ in Float.random(in: -1...1, using: &generator) })
        return normalized(zip(vector, noise).map { $0 + 0.4 * $1 })
    }

    static func normalized(_ v: [Float]) -> [Float] {
        let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return v.map { $0 / norm }
    }

    struct Tenant: Sendable {
        var scope: CacheScope
        var partition: SemanticPartition
        /// Question ids this tenant holds, in order.
        var questions: [Int]
    }

    /// The tenants of a shape: tenant 0 is the big one with questions 0..<bigRows; small tenant i holds the big
    /// tenant's first `shared` questions and then questions of its own.
    static func tenants(_ shape: Shape, prefix: String) -> [Tenant] {
        var tenants: [Tenant] = []
        var next = 10_000_000
        for t in 0...shape.smallTenants {
            let scope = CacheScope(tenant: "\(prefix)-t\(t)")
            let rows = t == 0 ? shape.bigRows : shape.smallRows
            var questions: [Int] = []
            if t == 0 {
                questions = Array(0..<rows)
            } else {
                questions = Array(0..<min(shape.shared, rows))
                while questions.count < rows {
                    questions.append(next)
                    next += 1
                }
            }
            tenants.append(Tenant(scope: scope, partition: SemanticPartition(digest: Digest256(hashing: Array("p\(t)".utf8)), scopeID: scope.id), questions: questions))
        }
        return tenants
    }

    static func key(_ tenant: Tenant, _ question: Int) -> CacheKey {
        CacheKey(digest: Digest256(hashing: Array("\(tenant.scope.id.hex)/\(question)".utf8)), scopeID: tenant.scope.id)
    }

    /// Inserts every tenant's records through the index (8 at a time), so partitions move to their own tables as
    /// they would in production.
    func load(_ index: PGVectorSemanticIndex, _ tenants: [Tenant]) async throws {
        let now = SystemCacheClock().now()
        let jobs = tenants.flatMap { tenant in tenant.questions.map { (tenant, $0) } }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    for job in stride(from: worker, to: jobs.count, by: 8) {
                        let (tenant, question) = jobs[job]
                        try await index.insert(
                            SemanticRecord(
                                key: Self.key(tenant, question), partition: tenant.partition, vector: Self.question(question),
                                entry: CacheEntry(value: Array("\(question)".utf8), createdAt: now, expiresAt: now + .seconds(3600))))
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    struct Figures {
        var searches = 0
        var correct = 0
        var latencies: [Duration] = []
        var recall: Double { Double(self.correct) / Double(max(1, self.searches)) }
        var p50: Duration { self.latencies.sorted()[self.latencies.count / 2] }
    }

    /// Near-duplicate searches: the big tenant's shared questions (the hard ones) and others, and each small tenant's
    /// questions; a search is right when its first match is the tenant's own record of that question.
    func measure(_ index: PGVectorSemanticIndex, _ tenants: [Tenant], _ shape: Shape) async throws -> Figures {
        var figures = Figures()
        var probes: [(Tenant, Int)] = []
        let big = tenants[0]
        probes += big.questions.prefix(max(shape.shared, 1)).prefix(100).map { (big, $0) }
        probes += stride(from: 0, to: big.questions.count, by: max(1, big.questions.count / 100)).map { (big, big.questions[$0]) }
        for tenant in tenants.dropFirst().prefix(60) { probes.append((tenant, tenant.questions[tenant.questions.count - 1])) }
        for (n, (tenant, question)) in probes.enumerated() {
            let query = SemanticQuery(
                vector: Self.nearDuplicate(of: Self.question(question), seed: UInt64(n + 1)), partition: tenant.partition, minimumSimilarity: 0, limit: 1)
            let started = ContinuousClock.now
            let matches = try await index.search(query)
            figures.latencies.append(ContinuousClock.now - started)
            figures.searches += 1
            if matches.first?.key == Self.key(tenant, question) { figures.correct += 1 }
        }
        return figures
    }

    @Test(.serialized, arguments: ManyTenantsTests.shapes)
    func everySearchFindsItsOwnNearDuplicateInEveryPlannerState(_ shape: Shape) async throws {
        let prefix = "cktn\(UInt16.random(in: 0...UInt16.max))"
        var configuration = try PostgresTestServer.configuration(prefix: prefix)
        configuration.poolSize = 1  // one connection, so the session settings below apply to every search
        if !Self.full { configuration.dedicatedTableThreshold = 500 }
        if let ef = ProcessInfo.processInfo.environment["CACHEKIT_TENANT_EF"].flatMap(Int.init) { configuration.efSearch = ef }
        let client = PostgresClient(configuration: configuration)
        let index = PGVectorSemanticIndex(client: client, dimension: Self.dimension)
        try await index.migrate()
        let table = index.table
        // The "no statistics" state must not be analyzed behind the test's back.
        _ = try await client.execute("ck_test_noautovacuum", "ALTER TABLE \(table) SET (autovacuum_enabled = false)", [])
        let tenants = Self.tenants(shape, prefix: prefix)
        let loadStarted = ContinuousClock.now
        if Self.full {
            // At full size: written to the shared table through 8 connections with no partition moving (fast: no HNSW
            // index there), then moved by the sweep as `run()` would (one bulk index build per large partition).
            var loading = configuration
            loading.poolSize = 8
            loading.dedicatedTableThreshold = 10_000_000
            try await self.load(PGVectorSemanticIndex(configuration: loading, dimension: Self.dimension), tenants)
            try await index.moveLargePartitions()
        } else {
            try await self.load(index, tenants)
        }
        let dedicated = try await index.readRegistry().count
        print("\(shape): \(tenants.reduce(0) { $0 + $1.questions.count }) rows loaded in \(ContinuousClock.now - loadStarted); \(dedicated) partitions with their own table")
        if shape.bigRows >= configuration.dedicatedTableThreshold { #expect(dedicated >= 1, "the big tenant did not get its own table") }

        for statistics in ["none", "ANALYZE", "extended statistics"] {
            switch statistics {
            case "ANALYZE": _ = try await client.execute("ck_test_analyze", "ANALYZE \(table)", [])
            case "extended statistics":
                _ = try await client.pool.withConnection { connection in
                    _ = try connection.simple("CREATE STATISTICS \(table)_stx (dependencies, ndistinct, mcv) ON scope_id, partition FROM \(table)")
                    return try connection.simple("ANALYZE \(table)")
                }
            default: break
            }
            for plans in ["force_custom_plan", "force_generic_plan"] {
                _ = try await client.pool.withConnection { connection in try connection.simple("SET plan_cache_mode = \(plans)") }
                let figures = try await self.measure(index, tenants, shape)
                print(
                    "  \(statistics), \(plans == "force_custom_plan" ? "custom plans" : "generic (prepared) plans"): recall@1 "
                        + "\(String(format: "%.3f", figures.recall)) over \(figures.searches) searches, p50 \(figures.p50)")
                // At full size the figures are reported, not asserted: a 100,000-row partition's recall is its HNSW
                // index's own, below 0.99 there (see the Scaling article; the open part of issue #21).
                if !Self.full { #expect(figures.recall >= 0.99, "\(shape), \(statistics), \(plans): recall@1 \(figures.recall)") }
            }
        }
        // Leave nothing behind.
        _ = try await client.pool.withConnection { connection in
            for child in Set((try? connection.simple("SELECT table_name FROM \(table)_dedicated").rows.compactMap { $0.first.flatMap { $0 } }) ?? []) {
                _ = try? connection.simple("DROP TABLE IF EXISTS \(String(decoding: child, as: UTF8.self))")
            }
            _ = try connection.simple("DROP TABLE IF EXISTS \(table)_dedicated")
            return try connection.simple("DROP TABLE IF EXISTS \(table)")
        }
    }

    /// A partition with its own table stays one tenant's: removals by key, tag, scope and content reach its rows, the
    /// per-scope cap counts them, another tenant's search never sees them, and a row written to the shared table by an
    /// instance that had not seen the move is moved by the sweep (and found again).
    @Test func aPartitionWithItsOwnTableIsStillOneTenantsAndEveryRemovalReachesIt() async throws {
        let prefix = "cktd\(UInt16.random(in: 0...UInt16.max))"
        var configuration = try PostgresTestServer.configuration(prefix: prefix)
        configuration.dedicatedTableThreshold = 40
        configuration.maximumRecordsPerScope = 100
        let index = PGVectorSemanticIndex(configuration: configuration, dimension: 8)
        let now = SystemCacheClock().now()
        let tenant = CacheScope(tenant: "big"), other = CacheScope(tenant: "other")
        let partition = SemanticPartition(digest: Digest256(hashing: [1]), scopeID: tenant.id)
        let otherPartition = SemanticPartition(digest: Digest256(hashing: [2]), scopeID: other.id)
        func vector(_ i: Int) -> [Float] {
            var generator = SeededGenerator(seed: UInt64(i + 1))
            return Self.normalized((0..<8).map { _ in Float.random(in: -1...1, using: &generator) })
        }
        func record(_ i: Int, _ scope: CacheScope, _ partition: SemanticPartition, tags: [String] = []) -> SemanticRecord {
            SemanticRecord(
                key: CacheKey(digest: Digest256(hashing: Array("\(scope.id.hex)/\(i)".utf8)), scopeID: scope.id), partition: partition,
                vector: vector(i), entry: CacheEntry(value: [UInt8(i % 256)], createdAt: now, expiresAt: now + .seconds(600), tags: tags))
        }
        for i in 0..<60 { try await index.insert(record(i, tenant, partition, tags: i % 2 == 0 ? ["even"] : [])) }
        for i in 0..<10 { try await index.insert(record(i, other, otherPartition)) }
        let child = try #require(try await index.dedicatedTable(for: partition.digest), "the partition did not move past 40 records")
        #expect(try await index.dedicatedTable(for: otherPartition.digest) == nil)
        let inChild = try await index.client.execute("ck_t_count", "SELECT count(*)::text FROM ONLY \(child)", [])
        #expect(inChild.rows.first?.first.flatMap { $0 }.map { String(decoding: $0, as: UTF8.self) } == "60")

        // Searches: the tenant finds its own; the other tenant, with the very same vectors, only its own.
        let mine = try await index.search(SemanticQuery(vector: vector(3), partition: partition, minimumSimilarity: 0.99, limit: 5))
        #expect(mine.first?.key == record(3, tenant, partition).key)
        let theirs = try await index.search(SemanticQuery(vector: vector(3), partition: otherPartition, minimumSimilarity: -1, limit: 100))
        #expect(theirs.count == 10 && theirs.allSatisfy { $0.key.scopeID == other.id })

        // A straggler: written to the shared table as an instance that has not seen the move would.
        _ = try await index.client.execute(
            "ck_t_straggler",
            "INSERT INTO \(index.table) SELECT * FROM \(child) WHERE key = $1",
            [PostgresClient.digest(record(0, tenant, partition).key.digest)])
        _ = try await index.client.execute("ck_t_straggler_del", "DELETE FROM ONLY \(child) WHERE key = $1", [PostgresClient.digest(record(0, tenant, partition).key.digest)])
        try await index.moveLargePartitions()
        let straggling = try await index.client.execute("ck_t_shared", "SELECT count(*)::text FROM ONLY \(index.table) WHERE partition = $1", [PostgresClient.digest(partition.digest)])
        #expect(straggling.rows.first?.first.flatMap { $0 }.map { String(decoding: $0, as: UTF8.self) } == "0", "the sweep left the straggler")
        #expect(try await index.search(SemanticQuery(vector: vector(0), partition: partition, minimumSimilarity: 0.99, limit: 1)).first?.key == record(0, tenant, partition).key)

        // Removals reach the child's rows.
        #expect(try await index.remove(record(1, tenant, partition).key))
        #expect(try await index.removeAll(taggedWith: "even") == 30)
        #expect(try await index.removeAll(near: vector(5), minimumSimilarity: 0.999, in: tenant) == 1)
        #expect(try await index.removeAll(in: tenant) == 28)
        #expect(try await index.search(SemanticQuery(vector: vector(7), partition: partition, minimumSimilarity: -1, limit: 100)).isEmpty)
        #expect(try await index.search(SemanticQuery(vector: vector(7), partition: otherPartition, minimumSimilarity: -1, limit: 100)).count == 10)

        // The per-scope cap counts the child's rows: 130 records of the tenant keep the newest 100 (± one check).
        for i in 100..<230 { try await index.insert(record(i, tenant, partition)) }
        let rows = try await index.client.execute("ck_t_scope", "SELECT count(*)::text FROM \(index.table) WHERE scope_id = $1", [PostgresClient.digest(tenant.id)])
        let kept = rows.rows.first?.first.flatMap { $0 }.flatMap { Int(String(decoding: $0, as: UTF8.self)) } ?? -1
        #expect(kept >= 99 && kept <= 101 && index.evictedRecords >= 29, "kept \(kept), evicted \(index.evictedRecords)")
    }
}
