import Benchmark
import CacheKit
import CacheKitMemory

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        warmupIterations: 100,
        scalingFactor: .kilo,
        maxDuration: .seconds(3),
        maxIterations: 1_000_000
    )

    // MARK: Keys

    let keyer = RequestKeyer()
    let request = Fixtures.request2KB
    let scope = CacheScope(tenant: "acme", namespace: "support")

    Benchmark("Key: canonical JSON + SHA-256, 2 KB request") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(keyer.key(for: request, in: scope)) }
    }

    Benchmark("Baseline: SHA-256 of 2 KB") { benchmark in
        let bytes = keyer.canonicalBytes(for: request, in: scope)
        for _ in benchmark.scaledIterations { blackHole(Digest256(hashing: bytes)) }
    }

    // MARK: Dictionary baselines (32-byte keys)

    let digests = (0..<10_000).map { Digest256(hashing: Array("k\($0)".utf8)) }
    let dictionary = Dictionary(uniqueKeysWithValues: digests.map { ($0, [UInt8](repeating: 1, count: 2048)) })

    Benchmark("Baseline: Dictionary lookup, 32-byte key, hot") { benchmark in
        let key = digests[42]
        for _ in benchmark.scaledIterations { blackHole(dictionary[key]) }
    }

    Benchmark("Baseline: Dictionary lookup, 32-byte key, random of 10k") { benchmark in
        var i = 0
        for _ in benchmark.scaledIterations {
            blackHole(dictionary[digests[i]])
            i = (i &+ 7919) % digests.count
        }
    }

    // MARK: L1 through MultiLayerCache

    func makeCache() -> MultiLayerCache {
        var configuration = CacheConfiguration()
        configuration.layers = [.memory(.init(maximumBytes: 256 << 20, maximumEntries: 100_000))]
        configuration.logger.logLevel = .error
        return MultiLayerCache(configuration: configuration)
    }
    let requests = (0..<10_000).map { Fixtures.request($0) }
    let upstream = ClosureCompletionProvider { request in
        ChatResponse(id: "x", model: request.model, created: 0, content: String(repeating: "a", count: 1500),
                     usage: TokenUsage(promptTokens: 500, completionTokens: 400))
    }

    Benchmark("L1 hit end to end (lookup), hot key, 2 KB request") { benchmark in
        let cache = makeCache()
        _ = try await cache.completion(for: request, upstream: upstream)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(try await cache.lookup(request)) }
    }

    Benchmark("L1 hit end to end (lookup), random of 10k keys") { benchmark in
        let cache = makeCache()
        for r in requests { _ = try await cache.completion(for: r, upstream: upstream) }
        var i = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(try await cache.lookup(requests[i]))
            i = (i &+ 7919) % requests.count
        }
    }

    Benchmark("L1 hit with precomputed key (backend get)", configuration: .init(scalingFactor: .kilo)) { benchmark in
        let backend = MemoryCacheBackend()
        let key = keyer.key(for: request, in: scope)
        let now = SystemCacheClock().now()
        try await backend.set(CacheEntry(value: [UInt8](repeating: 1, count: 2048), createdAt: now, expiresAt: now + .seconds(3600)), for: key)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(backend.entry(for: key)) }
    }

    Benchmark("L1 set with eviction (S3-FIFO, 10k-entry cap)") { benchmark in
        let backend = MemoryCacheBackend(configuration: .init(maximumEntries: 10_000))
        let now = SystemCacheClock().now()
        let entry = CacheEntry(value: [UInt8](repeating: 1, count: 2048), createdAt: now, expiresAt: now + .seconds(3600))
        let keys = (0..<100_000).map { CacheKey(digest: Digest256(hashing: Array("e\($0)".utf8)), scopeID: scope.id) }
        for key in keys.prefix(10_000) { try await backend.set(entry, for: key) }
        var i = 10_000
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            try await backend.set(entry, for: keys[i % keys.count])
            i &+= 1
        }
    }

    // MARK: Semantic

    Benchmark("Memory semantic lookup, 10k x 384, top-1", configuration: .init(scalingFactor: .one)) { benchmark in
        let index = MemorySemanticIndex(dimension: 384)
        let partition = SemanticPartition(digest: Digest256(hashing: [1]), scopeID: scope.id)
        let vectors = Fixtures.unitVectors(count: 10_000, dimension: 384, seed: 1)
        let now = SystemCacheClock().now()
        let entry = CacheEntry(value: [1], createdAt: now, expiresAt: now + .seconds(3600))
        for (i, vector) in vectors.enumerated() {
            let key = CacheKey(digest: Digest256(hashing: Array("v\(i)".utf8)), scopeID: scope.id)
            try await index.insert(SemanticRecord(key: key, partition: partition, vector: vector, entry: entry))
        }
        let queries = Fixtures.unitVectors(count: 64, dimension: 384, seed: 2)
        var i = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(try await index.search(SemanticQuery(vector: queries[i % 64], partition: partition, minimumSimilarity: -1, limit: 1)))
            i += 1
        }
    }
}
