import Benchmark
import CacheKit
import CacheKitMemory

let benchmarks: @Sendable () -> Void = {
    // Names have no spaces or slashes: benchmark 1.38.1 writes threshold files with those replaced by "_" but reads
    // them back under the raw name. Tolerances for `swift package benchmark thresholds check` against the static thresholds checked in under
    // Thresholds/ (`thresholds update` rewrites them): time is noisy on a shared 2-core VM, so only a p90 more than
    // 50 % slower fails; allocation counts are deterministic, so any rise beyond one malloc fails.
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal],
        warmupIterations: 100,
        scalingFactor: .kilo,
        maxDuration: .seconds(3),
        maxIterations: 1_000_000,
        thresholds: [
            .wallClock: BenchmarkThresholds(relative: [.p90: 50.0]),
            .mallocCountTotal: BenchmarkThresholds(absolute: [.p90: 1]),
        ]
    )

    serviceBenchmarks()

    // MARK: Keys

    let keyer = RequestKeyer()
    let request = Fixtures.request2KB
    let scope = CacheScope(tenant: "acme", namespace: "support")

    Benchmark("Key.canonicalJSON+SHA256.2KBRequest") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(keyer.key(for: request, in: scope)) }
    }

    Benchmark("Baseline.SHA256.2KB") { benchmark in
        let bytes = keyer.canonicalBytes(for: request, in: scope)
        for _ in benchmark.scaledIterations { blackHole(Digest256(hashing: bytes)) }
    }

    // MARK: Dictionary baselines (32-byte keys)

    let digests = (0..<10_000).map { Digest256(hashing: Array("k\($0)".utf8)) }
    let dictionary = Dictionary(uniqueKeysWithValues: digests.map { ($0, [UInt8](repeating: 1, count: 2048)) })

    Benchmark("Baseline.DictionaryLookup.32ByteKey.hot") { benchmark in
        let key = digests[42]
        for _ in benchmark.scaledIterations { blackHole(dictionary[key]) }
    }

    Benchmark("Baseline.DictionaryLookup.32ByteKey.randomOf10k") { benchmark in
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
        return try MultiLayerCache(configuration: configuration)
    }
    let requests = (0..<10_000).map { Fixtures.request($0) }
    let upstream = ClosureCompletionProvider { request in
        ChatResponse(id: "x", model: request.model, created: 0, content: String(repeating: "a", count: 1500),
                     usage: TokenUsage(promptTokens: 500, completionTokens: 400))
    }

    Benchmark("L1Hit.lookup.hotKey.2KBRequest") { benchmark in
        let cache = makeCache()
        _ = try await cache.completion(for: request, upstream: upstream)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(try await cache.lookup(request)) }
    }

    // The same hits from two tasks at once: per-hit time against the one-task benchmark above shows how the L1
    // scales on two cores (ideal: half).
    Benchmark("L1Hit.lookup.hotKey.2KBRequest.2TasksInParallel") { benchmark in
        let cache = makeCache()
        _ = try await cache.completion(for: request, upstream: upstream)
        let half = benchmark.scaledIterations.count / 2
        benchmark.startMeasurement()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<2 { group.addTask { for _ in 0..<half { blackHole(try await cache.lookup(request)) } } }
            try await group.waitForAll()
        }
    }

    Benchmark("L1Hit.lookup.randomOf10kKeys") { benchmark in
        let cache = makeCache()
        for r in requests { _ = try await cache.completion(for: r, upstream: upstream) }
        var i = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(try await cache.lookup(requests[i]))
            i = (i &+ 7919) % requests.count
        }
    }

    Benchmark("L1Hit.precomputedKey.backendGet", configuration: .init(scalingFactor: .kilo)) { benchmark in
        let backend = MemoryCacheBackend()
        let key = keyer.key(for: request, in: scope)
        let now = SystemCacheClock().now()
        try await backend.set(CacheEntry(value: [UInt8](repeating: 1, count: 2048), createdAt: now, expiresAt: now + .seconds(3600)), for: key)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(backend.entry(for: key)) }
    }

    Benchmark("L1Set.withEviction.S3FIFO.10kEntryCap") { benchmark in
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

    Benchmark("MemorySemanticLookup.10kx384.top1", configuration: .init(scalingFactor: .one)) { benchmark in
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
