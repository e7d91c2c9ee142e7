import CacheKit
import CacheKitMemory
import CacheKitTesting
import Testing

@Suite("MemorySemanticIndex")
struct MemorySemanticIndexTests {
    @Test(arguments: SemanticIndexConformance.Behaviour.allCases)
    func conformance(_ behaviour: SemanticIndexConformance.Behaviour) async throws {
        let clock = ManualClock()
        try await SemanticIndexConformance(manualClock: clock) { MemorySemanticIndex(dimension: 384, clock: clock) }.run(behaviour)
    }

    @Test(arguments: SemanticIndexConformance.Behaviour.allCases)
    func conformanceOnTheApproximatePath(_ behaviour: SemanticIndexConformance.Behaviour) async throws {
        let clock = ManualClock()
        try await SemanticIndexConformance(manualClock: clock) {
            MemorySemanticIndex(configuration: .init(dimension: 384, clock: clock, approximateAbove: 1, approximateCandidates: 4))
        }.run(behaviour)
    }

    @Test func approximateSearchAgreesWithExactSearchOnNearDuplicates() async throws {
        let dimension = 384
        let exact = MemorySemanticIndex(configuration: .init(dimension: dimension, approximateAbove: .max))
        let approximate = MemorySemanticIndex(configuration: .init(dimension: dimension, approximateAbove: 1_000))
        let scope = CacheScope(tenant: "t")
        let partition = SemanticPartition(digest: Digest256(hashing: Array("p".utf8)), scopeID: scope.id)
        var generator = SeededGenerator(seed: 99)
        func unit(_ v: [Float]) -> [Float] {
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return v.map { $0 / norm }
        }
        var vectors: [[Float]] = []
        let now = SystemCacheClock().now()
        for i in 0..<6_000 {
            let v = unit((0..<dimension).map { _ in Float.random(in: -1...1, using: &generator) })
            vectors.append(v)
            let record = SemanticRecord(
                key: CacheKey(digest: Digest256(hashing: Array("k\(i)".utf8)), scopeID: scope.id), partition: partition, vector: v,
                entry: CacheEntry(value: [1], createdAt: now, expiresAt: now + .seconds(600)))
            try await exact.insert(record)
            try await approximate.insert(record)
        }
        // Swap-removals move rows: the sign bits must move with them.
        for i in stride(from: 0, to: 6_000, by: 7) {
            let key = CacheKey(digest: Digest256(hashing: Array("k\(i)".utf8)), scopeID: scope.id)
            _ = try await exact.remove(key)
            _ = try await approximate.remove(key)
        }
        var agree = 0, queries = 0
        for probe in stride(from: 1, to: 6_000, by: 20) where probe % 7 != 0 {
            let noisy = unit(vectors[probe].map { $0 + Float.random(in: -0.04...0.04, using: &generator) })
            let query = SemanticQuery(vector: noisy, partition: partition, minimumSimilarity: -1, limit: 1)
            let a = try await exact.search(query).first?.key
            let b = try await approximate.search(query).first?.key
            queries += 1
            if a == b { agree += 1 }
        }
        #expect(Double(agree) / Double(queries) >= 0.99, "recall@1 \(agree)/\(queries)")
    }

    @Test func simdDotMatchesScalarDot() {
        var generator = SeededGenerator(seed: 5)
        for n in [1, 7, 8, 15, 16, 17, 384, 1000] {
            let a = (0..<n).map { _ in Float.random(in: -1...1, using: &generator) }
            let b = (0..<n).map { _ in Float.random(in: -1...1, using: &generator) }
            let scalar = zip(a, b).reduce(Float(0)) { $0 + $1.0 * $1.1 }
            #expect(abs(SIMDMath.dot(a, b) - scalar) < 1e-4)
        }
    }

    @Test func exactSearchFindsTheTrueNearestAmongManyRecords() async throws {
        let index = MemorySemanticIndex(dimension: 64)
        let scope = CacheScope(tenant: "t")
        let partition = SemanticPartition(digest: Digest256(hashing: Array("p".utf8)), scopeID: scope.id)
        var generator = SeededGenerator(seed: 11)
        var vectors: [[Float]] = []
        for i in 0..<2000 {
            var v = (0..<64).map { _ in Float.random(in: -1...1, using: &generator) }
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            v = v.map { $0 / norm }
            vectors.append(v)
            let key = CacheKey(digest: Digest256(hashing: Array("k\(i)".utf8)), scopeID: scope.id)
            let now = SystemCacheClock().now()
            try await index.insert(SemanticRecord(key: key, partition: partition, vector: v, entry: CacheEntry(value: [UInt8(i % 256)], createdAt: now, expiresAt: now + .seconds(60))))
        }
        for probe in [0, 500, 1999] {
            let query = vectors[probe].map { $0 + Float.random(in: -0.01...0.01, using: &generator) }
            let best = try await index.search(SemanticQuery(vector: query, partition: partition, minimumSimilarity: -1, limit: 3))
            let expected = CacheKey(digest: Digest256(hashing: Array("k\(probe)".utf8)), scopeID: scope.id)
            #expect(best.first?.key == expected)
            #expect(best.count == 3)
            #expect(best[0].similarity >= best[1].similarity && best[1].similarity >= best[2].similarity)
        }
    }

    @Test func recordCapDropsTheOldest() async throws {
        let index = MemorySemanticIndex(configuration: .init(dimension: 4, maximumRecords: 10))
        let scope = CacheScope.default
        let partition = SemanticPartition(digest: Digest256(hashing: [1]), scopeID: scope.id)
        let now = SystemCacheClock().now()
        for i in 0..<25 {
            let key = CacheKey(digest: Digest256(hashing: Array("k\(i)".utf8)), scopeID: scope.id)
            try await index.insert(SemanticRecord(key: key, partition: partition, vector: [1, Float(i), 0, 0], entry: CacheEntry(value: [], createdAt: now, expiresAt: now + .seconds(60))))
        }
        #expect(index.count == 10)
        let oldest = CacheKey(digest: Digest256(hashing: Array("k0".utf8)), scopeID: scope.id)
        #expect(try await index.remove(oldest) == false, "the oldest record survived the cap")
    }
}
