import Benchmark
import CacheKit
import CacheKitEmbeddings
import CacheKitMemory
import CacheKitPGVector
import CacheKitRedis
import Foundation

/// Benchmarks that need data built once (large indexes) or a server: the rest of issue #10's list. The server ones
/// register only when their variable is set (`ordo-with-services.sh` starts everything and sets them):
/// `CACHEKIT_REDIS_URL`, `CACHEKIT_POSTGRES_URL`, `CACHEKIT_MODEL_DIR`, `CACHEKIT_BENCH_PROXY` (host:port of a
/// `cachekit serve`).
func serviceBenchmarks() {
    let environment = ProcessInfo.processInfo.environment
    let scope = CacheScope(tenant: "bench")
    let partition = SemanticPartition(digest: Digest256(hashing: [1]), scopeID: scope.id)
    let oneShot = Benchmark.Configuration(scalingFactor: .one, maxDuration: .seconds(4), maxIterations: 2_000)

    // MARK: Memory semantic index at 100k and 1M (approximate pass above 20k records), near-duplicate queries.
    for count in [100_000, 1_000_000] {
        let box = Box<(MemorySemanticIndex, [[Float]])>()
        Benchmark("MemorySemanticLookup.\(count / 1000)kx384.top1.nearDuplicate", configuration: oneShot) { benchmark in
            try await searchEach(box.value!, in: partition, benchmark)
        } setup: {
            let index = MemorySemanticIndex(configuration: .init(dimension: 384, maximumRecords: count + 1))
            let vectors = Fixtures.unitVectors(count: count, dimension: 384, seed: 7)
            let now = SystemCacheClock().now()
            let entry = CacheEntry(value: [1], createdAt: now, expiresAt: now + .seconds(86_400))
            for (i, vector) in vectors.enumerated() {
                let key = CacheKey(digest: Digest256(hashing: Array("v\(i)".utf8)), scopeID: scope.id)
                try await index.insert(SemanticRecord(key: key, partition: partition, vector: vector, entry: entry))
            }
            box.value = (index, Fixtures.nearDuplicates(of: vectors, count: 200, noise: 0.04, seed: 9))
        } teardown: {
            box.value = nil
        }
    }

    // MARK: L2 hit: Redis only, through MultiLayerCache (key included).
    if let url = environment["CACHEKIT_REDIS_URL"] {
        let box = Box<MultiLayerCache>()
        Benchmark("L2Hit.redis.lookup.2KBRequest", configuration: oneShot) { benchmark in
            let cache = box.value!
            for _ in benchmark.scaledIterations { blackHole(try await cache.lookup(Fixtures.request2KB)) }
        } setup: {
            var redis = try RedisClient.Configuration(url: url)
            redis.keyPrefix = "ck-ordo"
            var configuration = CacheConfiguration()
            configuration.layers = [.redis(redis)]
            configuration.logger.logLevel = .error
            let cache = try MultiLayerCache(configuration: configuration)
            _ = try await cache.completion(for: Fixtures.request2KB, upstream: Fixtures.upstream)
            box.value = cache
        }
    }

    // MARK: pgvector: top-1 among 10,000 vectors in one partition.
    if let url = environment["CACHEKIT_POSTGRES_URL"] {
        let box = Box<(PGVectorSemanticIndex, [[Float]])>()
        Benchmark("PGVectorLookup.10kx384.top1", configuration: oneShot) { benchmark in
            try await searchEach(box.value!, in: partition, benchmark)
        } setup: {
            let index = PGVectorSemanticIndex(configuration: try PostgresClient.Configuration(connectionString: url, tablePrefix: "ckordo"), dimension: 384)
            let vectors = Fixtures.unitVectors(count: 10_000, dimension: 384, seed: 11)
            if try await index.search(SemanticQuery(vector: vectors[0], partition: partition, minimumSimilarity: 0.99, limit: 1)).isEmpty {
                let now = SystemCacheClock().now()
                let entry = CacheEntry(value: [1], createdAt: now, expiresAt: now + .seconds(30 * 86_400))
                for (i, vector) in vectors.enumerated() {
                    let key = CacheKey(digest: Digest256(hashing: Array("pv\(i)".utf8)), scopeID: scope.id)
                    try await index.insert(SemanticRecord(key: key, partition: partition, vector: vector, entry: entry))
                }
            }
            try await index.refreshStatisticsIfGrown(force: true)  // as run() does after growth; else the planner sorts exactly
            box.value = (index, Fixtures.nearDuplicates(of: vectors, count: 200, noise: 0.04, seed: 12))
        }
    }

    // MARK: Local embedding of one short question.
    if let directory = environment["CACHEKIT_MODEL_DIR"] {
        let box = Box<LocalEmbeddingProvider>()
        Benchmark("LocalEmbedding.allMiniLML6v2.17Tokens", configuration: oneShot) { benchmark in
            let provider = box.value!
            for _ in benchmark.scaledIterations { blackHole(try await provider.embed(["How do I reset the password of my account?"])) }
        } setup: {
            box.value = try LocalEmbeddingProvider(directory: directory)
        }
    }

    // MARK: Proxy hit: a cached chat completion through `cachekit serve` over loopback HTTP/1.1 (keep-alive).
    if let proxy = environment["CACHEKIT_BENCH_PROXY"] {
        let box = Box<LoopbackHTTPClient>()
        Benchmark("ProxyHit.chatCompletion.loopbackHTTP", configuration: oneShot) { benchmark in
            let client = box.value!
            for _ in benchmark.scaledIterations { blackHole(try client.post(Fixtures.proxyRequestBody)) }
        } setup: {
            let client = try LoopbackHTTPClient(hostPort: proxy, path: "/v1/chat/completions")
            _ = try client.post(Fixtures.proxyRequestBody)  // the miss that stores it
            let (status, headers) = try client.post(Fixtures.proxyRequestBody)
            guard status == 200, headers.contains("x-cachekit-status: hit") else {
                throw CacheError(.invalidResponse, "the proxy did not answer the second request from cache (status \(status))")
            }
            box.value = client
        }
    }
}

/// One top-1 search per iteration, cycling through the queries.
func searchEach(_ fixture: (some SemanticIndex, [[Float]]), in partition: SemanticPartition, _ benchmark: Benchmark) async throws {
    let (index, queries) = fixture
    var i = 0
    for _ in benchmark.scaledIterations {
        blackHole(try await index.search(SemanticQuery(vector: queries[i % queries.count], partition: partition, minimumSimilarity: 0.5, limit: 1)))
        i += 1
    }
}

/// State a benchmark's setup builds once and its iterations read.
final class Box<Value>: @unchecked Sendable {
    var value: Value?
}
