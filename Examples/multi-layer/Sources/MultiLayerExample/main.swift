import CacheKit
import CacheKitEmbeddings
import CacheKitInvalidation
import CacheKitMemory
import CacheKitPGVector
import CacheKitRedis
import Configuration
import Foundation

// Two instances of a shop assistant (as two servers would be), each with its own memory layer, sharing Redis (L2)
// and a pgvector semantic index, connected by the Redis invalidation bus. Invalidation rules tag answers about a
// product when they are written; a `product_updated` event then removes them from every layer of every instance.
//
// Needs Redis and PostgreSQL with pgvector: REDIS_URL and POSTGRES_URL (scripts/test starts both and runs this).
// EMBEDDING_MODEL_DIRECTORY selects the local model; without it a lexical stand-in embeds (no paraphrase magic).

struct Instance: Sendable {
    let name: String
    let cache: MultiLayerCache
    let invalidator: CacheInvalidator
}

/// The upstream LLM stand-in: answers after 200 ms and counts its calls.
final class CountingUpstream: CompletionProvider, @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    var calls: Int { self.lock.withLock { self.count } }
    func complete(_ request: ChatRequest) async throws -> ChatResponse {
        self.lock.withLock { self.count += 1 }
        try await Task.sleep(for: .milliseconds(200))
        return ChatResponse(id: "r\(self.calls)", model: request.model, created: 0, content: "Answer to: \(request.lastUserText ?? "")")
    }
}

func runExample() async throws {
    let config = ConfigReader(provider: EnvironmentVariablesProvider())
    guard config.string(forKey: "redis.url", isSecret: true) != nil, config.string(forKey: "postgres.url", isSecret: true) != nil else {
        print("Set REDIS_URL (redis://127.0.0.1:6379) and POSTGRES_URL (postgresql://user@127.0.0.1:5432/db, pgvector installed).")
        exit(2)
    }
    let run = String(UInt32.random(in: 0...UInt32.max), radix: 36)  // fresh keys and tables for each run
    var redis = try RedisClient.Configuration(config: config.scoped(to: "redis"))
    redis.keyPrefix = "example-\(run)"
    var postgres = try PostgresClient.Configuration(config: config.scoped(to: "postgres"))
    postgres.tablePrefix = "example\(run)"

    let embedder: any EmbeddingProvider
    let threshold: Float
    if config.string(forKey: "embedding.modelDirectory") != nil {
        embedder = try LocalEmbeddingProvider(config: config.scoped(to: "embedding"))
        threshold = 0.85
    } else {
        embedder = HashingEmbeddingProvider(dimension: 384)
        threshold = 0.75
    }

    let rules = InvalidationRules(
        timeRules: [
            TimeRule(.query(QueryPattern("*product 123*")), tags: ["product:123"]),
            TimeRule(.query(QueryPattern("*product 456*")), tags: ["product:456"]),
            TimeRule(.query(QueryPattern("*shipping*")), ttl: .seconds(600), tags: ["faq"]),
        ],
        eventRules: [EventRule(event: "product_updated", tags: ["product:{id}"])]
    )


    /// One instance (one process in production): one client per server, shared by everything that talks to it; the
    /// rules given once, in the configuration.
    func makeInstance(_ name: String, redis: RedisClient.Configuration, postgres: PostgresClient.Configuration, embedder: any EmbeddingProvider, threshold: Float, rules: InvalidationRules) throws -> Instance {
        let redisClient = RedisClient(configuration: redis)
        let postgresClient = PostgresClient(configuration: postgres)
        var configuration = CacheConfiguration()
        configuration.layers = [.memory(), .redis(client: redisClient)]
        configuration.semantic = .pgvector(client: postgresClient, embedder: embedder, threshold: threshold)
        configuration.invalidationBus = RedisInvalidationBus(client: redisClient)
        configuration.writeRules = rules
        configuration.logger.logLevel = .warning
        let cache = try MultiLayerCache(configuration: configuration)
        return Instance(name: name, cache: cache, invalidator: try CacheInvalidator(cache: cache))
    }


    let a = try makeInstance("A", redis: redis, postgres: postgres, embedder: embedder, threshold: threshold, rules: rules)
    let b = try makeInstance("B", redis: redis, postgres: postgres, embedder: embedder, threshold: threshold, rules: rules)
    let upstream = CountingUpstream()
    var failures = 0

    func ask(_ instance: Instance, _ question: String, expect expected: String) async throws {
        let request = ChatRequest(model: "gpt-4o-mini", messages: [.system("Shop assistant."), .user(question)], temperature: 0)
        let answer = try await instance.cache.completion(for: request, upstream: upstream)
        let source = answer.outcome.source.description
        let similarity = answer.outcome.similarity.map { String(format: " (similarity %.2f)", $0) } ?? ""
        let ok = source == expected
        if !ok { failures += 1 }
        print("  \(instance.name) \(ok ? "✓" : "✗ expected \(expected),") \(source.padding(toLength: 12, withPad: " ", startingAt: 0))\(similarity)  \(question)")
    }

    try await withThrowingTaskGroup(of: Void.self) { group in
        // Each cache runs as a service: sweeps, health checks, and B listening to the invalidation bus.
        group.addTask { try await a.cache.run() }
        group.addTask { try await b.cache.run() }
        try await Task.sleep(for: .milliseconds(300))

        print("1. A answers three questions (upstream), writing memory, Redis and pgvector:")
        try await ask(a, "What is the price of product 123?", expect: "MISS")
        try await ask(a, "What is the price of product 456?", expect: "MISS")
        try await ask(a, "How long does shipping take?", expect: "MISS")
        print("2. B asks the same: Redis answers, B's memory is filled; then from B's memory:")
        try await ask(b, "What is the price of product 123?", expect: "HIT-L2")
        try await ask(b, "What is the price of product 123?", expect: "HIT-L1")
        try await ask(b, "What is the price of product 456?", expect: "HIT-L2")
        print("3. A paraphrase finds A's answer in the semantic index:")
        try await ask(b, "How long does the shipping take?", expect: "SEMANTIC-HIT")
        print("4. product_updated {id: 123} on A: every layer, and B's memory through the bus:")
        let records = try await a.invalidator.handle(CacheEvent("product_updated", ["id": "123"]))
        for record in records { print("  removed \(record.removed) records tagged \(record.target.tag ?? "-")") }
        try await Task.sleep(for: .milliseconds(300))
        try await ask(b, "What is the price of product 123?", expect: "MISS")
        try await ask(b, "What is the price of product 456?", expect: "HIT-L1")
        print("Upstream calls: \(upstream.calls) for 9 questions.")
        group.cancelAll()
    }
    if failures > 0 {
        print("\(failures) step(s) did not go as expected")
        exit(1)
    }
}

try await runExample()
