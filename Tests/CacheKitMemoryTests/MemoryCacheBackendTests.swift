import CacheKit
import Foundation
import CacheKitMemory
import CacheKitTesting
import Testing

@Suite("MemoryCacheBackend")
struct MemoryCacheBackendTests {
    @Test(arguments: CacheBackendConformance.Behaviour.allCases)
    func conformanceS3FIFO(_ behaviour: CacheBackendConformance.Behaviour) async throws {
        let clock = ManualClock()
        try await CacheBackendConformance(manualClock: clock) {
            MemoryCacheBackend(configuration: .init(maximumBytes: 64 << 20, clock: clock))
        }.run(behaviour)
    }

    @Test(arguments: CacheBackendConformance.Behaviour.allCases)
    func conformanceLRU(_ behaviour: CacheBackendConformance.Behaviour) async throws {
        let clock = ManualClock()
        try await CacheBackendConformance(manualClock: clock) {
            MemoryCacheBackend(configuration: .init(maximumBytes: 64 << 20, eviction: .lru, clock: clock))
        }.run(behaviour)
    }

    static func key(_ i: Int) -> CacheKey {
        CacheKey(digest: Digest256(hashing: Array("key \(i)".utf8)), scopeID: CacheScope.default.id)
    }

    static func entry(size: Int, now: CacheTime, tags: [String] = []) -> CacheEntry {
        CacheEntry(value: [UInt8](repeating: 7, count: size), createdAt: now, expiresAt: now + .seconds(3600), tags: tags)
    }

    @Test(arguments: [MemoryCacheBackend.EvictionPolicy.s3fifo, .lru])
    func byteBudgetHoldsUnderChurn(policy: MemoryCacheBackend.EvictionPolicy) async throws {
        let clock = ManualClock()
        let budget = 1 << 20
        let backend = MemoryCacheBackend(configuration: .init(maximumBytes: budget, maximumEntries: 1_000_000, eviction: policy, clock: clock))
        var generator = SeededGenerator(seed: 1)
        var peak = 0
        for i in 0..<20_000 {
            let size = Int.random(in: 100...20_000, using: &generator)
            try await backend.set(Self.entry(size: size, now: clock.now()), for: Self.key(i))
            if i % 3 == 0 { _ = try await backend.get(Self.key(Int.random(in: 0...i, using: &generator))) }
            if i % 7 == 0 { _ = try await backend.remove(Self.key(Int.random(in: 0...i, using: &generator))) }
            peak = max(peak, backend.usage.bytes)
        }
        #expect(peak <= budget, "the byte budget was exceeded: \(peak) > \(budget)")
        #expect(Double(backend.usage.bytes) >= 0.95 * Double(budget) - 20_096, "the cache kept only \(backend.usage.bytes) of \(budget) bytes")
        #expect(backend.evictions > 0)
    }

    @Test(arguments: [MemoryCacheBackend.EvictionPolicy.s3fifo, .lru])
    func entryCapHoldsUnderChurn(policy: MemoryCacheBackend.EvictionPolicy) async throws {
        let clock = ManualClock()
        let backend = MemoryCacheBackend(configuration: .init(maximumBytes: 1 << 30, maximumEntries: 500, eviction: policy, clock: clock))
        for i in 0..<5_000 {
            try await backend.set(Self.entry(size: 10, now: clock.now()), for: Self.key(i))
            #expect(backend.usage.entries <= 500)
        }
        #expect(backend.usage.entries == 500)
        #expect(try await backend.get(Self.key(4_999)) != nil, "the newest entry was evicted")
    }

    /// The reason S3-FIFO is the default: on a Zipf-distributed workload it keeps more of the hot keys than LRU at
    /// the same budget.
    @Test func s3fifoBeatsLRUOnAZipfWorkload() async throws {
        func hitRate(_ policy: MemoryCacheBackend.EvictionPolicy) async throws -> Double {
            let clock = ManualClock()
            let backend = MemoryCacheBackend(configuration: .init(maximumBytes: 1 << 30, maximumEntries: 1_000, eviction: policy, clock: clock))
            var generator = SeededGenerator(seed: 99)
            let zipf = Zipf(count: 100_000, exponent: 1.0)
            var hits = 0
            let requests = 200_000
            for _ in 0..<requests {
                let key = Self.key(zipf.sample(using: &generator))
                if try await backend.get(key) != nil {
                    hits += 1
                } else {
                    try await backend.set(Self.entry(size: 16, now: clock.now()), for: key)
                }
            }
            return Double(hits) / Double(requests)
        }
        let s3fifo = try await hitRate(.s3fifo)
        let lru = try await hitRate(.lru)
        print("Zipf(1.0), 100k keys, 1k entries: S3-FIFO hit rate \(s3fifo), LRU \(lru)")
        #expect(s3fifo > lru + 0.01, "S3-FIFO \(s3fifo) did not beat LRU \(lru)")
    }

    @Test func sweepRemovesExpiredEntriesAndTheirTags() async throws {
        let clock = ManualClock()
        let backend = MemoryCacheBackend(configuration: .init(clock: clock))
        let now = clock.now()
        for i in 0..<100 {
            let ttl: Duration = i % 2 == 0 ? .seconds(10) : .seconds(1000)
            try await backend.set(CacheEntry(value: [1], createdAt: now, expiresAt: now + ttl, tags: ["t"]), for: Self.key(i))
        }
        clock.advance(by: .seconds(11))
        #expect(backend.sweep() == 50)
        #expect(backend.usage.entries == 50)
        #expect(try await backend.removeAll(taggedWith: "t") == 50)
        #expect(backend.usage.entries == 0)
        #expect(backend.usage.bytes == 0, "bytes were not released")
    }

    @Test func anEntryLargerThanTheBudgetIsRefusedClearly() async throws {
        let backend = MemoryCacheBackend(configuration: .init(maximumBytes: 1000))
        await #expect(throws: CacheError.self) {
            try await backend.set(Self.entry(size: 5000, now: SystemCacheClock().now()), for: Self.key(1))
        }
        #expect(backend.usage.bytes == 0)
    }

    @Test func runSweepsAndStopsOnCancellation() async throws {
        let clock = ManualClock()
        let backend = MemoryCacheBackend(configuration: .init(sweepInterval: .milliseconds(20), clock: clock))
        try await backend.set(CacheEntry(value: [1], createdAt: clock.now(), expiresAt: clock.now() + .seconds(1)), for: Self.key(1))
        let task = Task { try await backend.run() }
        clock.advance(by: .seconds(2))
        var waited = 0
        while backend.usage.entries > 0, waited < 200 {
            try await Task.sleep(for: .milliseconds(10))
            waited += 1
        }
        #expect(backend.usage.entries == 0, "run() did not sweep")
        task.cancel()
        try await task.value
    }
}

/// Zipf sampling by inverse CDF over ranks 0..<count.
struct Zipf {
    let cdf: [Double]

    init(count: Int, exponent: Double) {
        var cdf = [Double]()
        cdf.reserveCapacity(count)
        var total = 0.0
        for rank in 1...count {
            total += 1 / pow(Double(rank), exponent)
            cdf.append(total)
        }
        self.cdf = cdf.map { $0 / total }
    }

    func sample(using generator: inout SeededGenerator) -> Int {
        let u = Double.random(in: 0..<1, using: &generator)
        var low = 0
        var high = self.cdf.count - 1
        while low < high {
            let mid = (low + high) / 2
            if self.cdf[mid] < u { low = mid + 1 } else { high = mid }
        }
        return low
    }
}

