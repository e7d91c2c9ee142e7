import CacheKit
import CacheKitInvalidation
import CacheKitMemory
import CacheKitPGVector
import CacheKitRedis
import CacheKitTesting
import Foundation
import Testing

enum Servers {
    static let redisURL = ProcessInfo.processInfo.environment["CACHEKIT_REDIS_URL"]
    static let postgresURL = ProcessInfo.processInfo.environment["CACHEKIT_POSTGRES_URL"]
    static var available: Bool { redisURL != nil && postgresURL != nil }
}

/// Two instances sharing Redis (L2), PostgreSQL (L3) and a pgvector semantic index, each with its own memory L1,
/// connected by the Redis invalidation bus.
struct Deployment {
    let redis: RedisClient.Configuration
    let postgres: PostgresClient.Configuration
    let rules: InvalidationRules

    init(rules: InvalidationRules) throws {
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        var redis = try RedisClient.Configuration(url: Servers.redisURL!)
        redis.keyPrefix = "ck-inv-\(suffix)"
        self.redis = redis
        self.postgres = try PostgresClient.Configuration(connectionString: Servers.postgresURL!, tablePrefix: "ckinv\(suffix)")
        self.rules = rules
    }

    struct Instance {
        let cache: MultiLayerCache
        let memory: MemoryCacheBackend
        let redis: RedisCacheBackend
        let postgres: PostgresCacheBackend
        let index: PGVectorSemanticIndex
        let invalidator: CacheInvalidator
    }

    /// One instance, composed as the documentation says: one client per server, shared by the layer, index and bus
    /// on it; the rules given once, in the configuration.
    func instance() throws -> Instance {
        let redisClient = RedisClient(configuration: self.redis)
        let postgresClient = PostgresClient(configuration: self.postgres)
        let memory = MemoryCacheBackend()
        let redis = RedisCacheBackend(client: redisClient)
        let postgres = PostgresCacheBackend(client: postgresClient)
        let index = PGVectorSemanticIndex(client: postgresClient, dimension: 256)
        var configuration = CacheConfiguration()
        configuration.layers = [
            CacheLayer(backend: memory, options: .init(ttlCeiling: .seconds(300)), name: "L1"),
            CacheLayer(backend: redis, options: .init(isShared: true), name: "L2"),
            CacheLayer(backend: postgres, options: .init(isShared: true), name: "L3"),
        ]
        configuration.semantic = SemanticLayer(index: index, embedder: HashingEmbeddingProvider(dimension: 256), threshold: 0.95)
        configuration.semantic?.isShared = true
        configuration.invalidationBus = RedisInvalidationBus(client: redisClient)
        configuration.writeRules = self.rules
        let cache = try MultiLayerCache(configuration: configuration)
        return Instance(
            cache: cache, memory: memory, redis: redis, postgres: postgres, index: index,
            invalidator: try CacheInvalidator(cache: cache)
        )
    }
}

@Suite("Invalidation across memory, Redis and PostgreSQL", .serialized, .enabled(if: Servers.available, "needs CACHEKIT_REDIS_URL and CACHEKIT_POSTGRES_URL (scripts/test starts both)"))
struct InvalidationAcrossLayersTests {
    static let rules = InvalidationRules(
        timeRules: [
            TimeRule(.query(QueryPattern("*product 123*")), tags: ["product:123"]),
            TimeRule(.query(QueryPattern("*product 456*")), tags: ["product:456"]),
            TimeRule(.query(QueryPattern("*shipping*")), ttl: .seconds(120), tags: ["faq"]),
        ],
        eventRules: [
            EventRule(event: "product_updated", tags: ["product:{id}"]),
            EventRule(event: "shipping_policy_changed", patterns: ["*shipping*"]),
        ]
    )

    func request(_ text: String) -> ChatRequest {
        ChatRequest(model: "gpt-4o-mini", messages: [.system("Shop assistant."), .user(text)], temperature: 0)
    }

    /// The keys of a request in every layer of one instance: (L1, L2, L3, semantic record).
    func presence(_ text: String, in instance: Deployment.Instance) async throws -> [Bool] {
        let key = RequestKeyer().key(for: self.request(text), in: instance.cache.configuration.defaultScope)
        let embedder = HashingEmbeddingProvider(dimension: 256)
        let semantic = try await instance.index.search(
            SemanticQuery(
                vector: try await embedder.embed(text),
                // The cache keeps each embedding model's vectors in a partition of their own.
                partition: RequestKeyer().semanticQuery(for: self.request(text), in: instance.cache.configuration.defaultScope)!.partition
                    .embedded(by: embedder.model),
                minimumSimilarity: 0.99, limit: 1
            )
        )
        return [
            instance.memory.entry(for: key) != nil,
            try await instance.redis.get(key) != nil,
            try await instance.postgres.get(key) != nil,
            semantic.first?.key == key,
        ]
    }

    @Test func anEventRemovesItsTagFromEveryLayerAndTheOtherInstanceAndNothingElse() async throws {
        let deployment = try Deployment(rules: Self.rules)
        let a = try deployment.instance()
        let b = try deployment.instance()
        let runB = Task { try await b.cache.run() }
        defer { runB.cancel() }
        try await Task.sleep(for: .milliseconds(300))  // B subscribes to the bus
        let upstream = EchoCompletionProvider()
        let texts = ["what is the price of product 123", "what is the price of product 456", "how long does shipping take"]
        for text in texts { _ = try await a.cache.completion(for: self.request(text), upstream: upstream) }
        for text in texts {
            #expect(try await b.cache.completion(for: self.request(text), upstream: upstream).outcome.source == .exactHit(layer: 1))
        }
        for text in texts {
            #expect(try await self.presence(text, in: a) == [true, true, true, true], "\(text) not written to every layer of A")
            #expect(b.memory.entry(for: RequestKeyer().key(for: self.request(text), in: .default)) != nil, "\(text) not backfilled into B's L1")
        }
        // The time rule set the shipping answer's TTL at write.
        let shipping = try #require(try await a.redis.get(RequestKeyer().key(for: self.request(texts[2]), in: .default)))
        #expect(shipping.expiresAt - shipping.createdAt == .seconds(120))
        #expect(shipping.tags == ["faq"])

        let records = try await a.invalidator.handle(CacheEvent("product_updated", ["id": "123"]))
        #expect(records.count == 1 && records[0].target.tag == "product:123")
        #expect(records[0].removed == 4, "L1, L2, L3 and the semantic record of A: \(records)")
        #expect(try await self.presence(texts[0], in: a) == [false, false, false, false])
        // B's L1 copy goes when B receives the bus event.
        let key123 = RequestKeyer().key(for: self.request(texts[0]), in: .default)
        let started = ContinuousClock.now
        while b.memory.entry(for: key123) != nil, ContinuousClock.now - started < .seconds(5) { try await Task.sleep(for: .milliseconds(5)) }
        #expect(b.memory.entry(for: key123) == nil, "B's L1 kept the invalidated entry")
        // Nothing else went anywhere.
        for text in texts.dropFirst() {
            #expect(try await self.presence(text, in: a) == [true, true, true, true], "\(text) was removed by another product's event")
            #expect(b.memory.entry(for: RequestKeyer().key(for: self.request(text), in: .default)) != nil)
        }
        #expect(try await a.cache.completion(for: self.request(texts[0]), upstream: upstream).outcome.source == .miss)
        #expect(a.invalidator.statistics.invalidations["event product_updated"] == 1)
        #expect(a.invalidator.statistics.removedEntries["event product_updated"] == 4)

        // A pattern rule scans every layer (O(n)) and reaches B's L1 too.
        let shippingRecords = try await a.invalidator.handle(CacheEvent("shipping_policy_changed"))
        #expect(shippingRecords.first?.removed == 4, "\(shippingRecords)")
        #expect(try await self.presence(texts[2], in: a) == [false, false, false, false])
        let keyShipping = RequestKeyer().key(for: self.request(texts[2]), in: .default)
        let again = ContinuousClock.now
        while b.memory.entry(for: keyShipping) != nil, ContinuousClock.now - again < .seconds(5) { try await Task.sleep(for: .milliseconds(5)) }
        #expect(b.memory.entry(for: keyShipping) == nil, "B's L1 kept the entry removed by pattern")
        #expect(try await self.presence(texts[1], in: a) == [true, true, true, true])

        // An event without the attribute its rule needs is refused before anything is removed.
        await #expect(throws: CacheError.self) { try await a.invalidator.handle(CacheEvent("product_updated")) }
        #expect(try await self.presence(texts[1], in: a) == [true, true, true, true])
    }

    @Test func aTemplateVersionBumpMakesTheNextIdenticalRequestAMiss() async throws {
        let deployment = try Deployment(rules: Self.rules)
        let a = try deployment.instance()
        let upstream = EchoCompletionProvider()
        let v1 = CacheScope.versioned(tenant: "shop", namespace: "support", templateVersion: "v1", model: "gpt-4o-mini")
        let v2 = CacheScope.versioned(tenant: "shop", namespace: "support", templateVersion: "v2", model: "gpt-4o-mini")
        let otherModel = CacheScope.versioned(tenant: "shop", namespace: "support", templateVersion: "v1", model: "gpt-4o")
        #expect(v1.version != v2.version && v1.version != otherModel.version)
        #expect(v1 == CacheScope.versioned(tenant: "shop", namespace: "support", templateVersion: "v1", model: "gpt-4o-mini"))
        let question = self.request("do you ship to Norway")
        #expect(try await a.cache.completion(for: question, in: v1, upstream: upstream).outcome.source == .miss)
        #expect(try await a.cache.completion(for: question, in: v1, upstream: upstream).outcome.source == .hitL1)
        let bumped = try await a.cache.completion(for: question, in: v2, upstream: upstream)
        #expect(bumped.outcome.source == .miss, "the new template version must not see the old answer in any layer")
        #expect(try await a.cache.completion(for: question, in: otherModel, upstream: upstream).outcome.source == .miss)
        #expect(upstream.calls == 3)
        // The old version's entries are still there (no scan, no delete); they age out by TTL.
        #expect(try await a.redis.get(RequestKeyer().key(for: question, in: v1)) != nil)
    }
}

@Suite("Invalidation rules")
struct InvalidationRulesTests {
    @Test func timeRulesSetTheShortestTTLAndAddTags() {
        let rules = InvalidationRules(timeRules: [
            TimeRule(.query(QueryPattern("*price*")), ttl: .seconds(300), tags: ["prices"]),
            TimeRule(.namespace("billing"), ttl: .seconds(60), tags: ["billing"]),
            TimeRule(.queryInNamespace(QueryPattern("refund*"), "billing"), tags: ["refunds"]),
        ])
        var control = CacheControl(tags: ["mine"])
        rules.apply(to: &control, queryText: "What is the PRICE of Pro?", scope: CacheScope(tenant: "t", namespace: "sales"))
        #expect(control.ttl == .seconds(300) && control.tags == ["mine", "prices"])
        control = CacheControl(ttl: .seconds(30))
        rules.apply(to: &control, queryText: "refund price for Pro", scope: CacheScope(tenant: "t", namespace: "billing"))
        #expect(control.ttl == .seconds(30), "a shorter TTL the request set is kept")
        #expect(control.tags == ["prices", "billing", "refunds"])
        control = CacheControl()
        rules.apply(to: &control, queryText: nil, scope: CacheScope(tenant: "t"))
        #expect(control == CacheControl())
    }

    @Test func eventTemplatesAreFilledOrRefused() throws {
        let rules = InvalidationRules(eventRules: [
            EventRule(event: "product_updated", tags: ["product:{id}", "catalog"], patterns: ["*{name}*"]),
            EventRule(event: "broken", tags: ["x:{id"]),
        ])
        let scope = CacheScope(tenant: "t")
        let targets = try rules.targets(for: CacheEvent("product_updated", ["id": "123", "name": "Widget"]), in: scope)
        #expect(targets == [.tag("product:123"), .tag("catalog"), .pattern(QueryPattern("*Widget*"), in: scope)])
        #expect(try rules.targets(for: CacheEvent("unrelated"), in: scope).isEmpty)
        #expect(throws: CacheError.self) { try rules.targets(for: CacheEvent("product_updated", ["id": "1"]), in: scope) }
        #expect(throws: CacheError.self) { try rules.targets(for: CacheEvent("broken", ["id": "1"]), in: scope) }
    }

    @Test func globPatterns() {
        #expect(QueryPattern("*shipping*").matches("How long does SHIPPING take?"))
        #expect(QueryPattern("price of ?").matches("price of a"))
        #expect(!QueryPattern("price of ?").matches("price of ab"))
        #expect(QueryPattern("a*b*c").matches("axxbyyc") && !QueryPattern("a*b*c").matches("axxbyy"))
        #expect(QueryPattern("*").matches("") && !QueryPattern("?").matches(""))
        #expect(!QueryPattern("x").matches(CacheEntry(value: [], createdAt: .distantPast, expiresAt: .distantFuture)), "no stored text, no match")
        // Linear, not exponential, on a pathological pattern.
        #expect(!QueryPattern(String(repeating: "*a", count: 30) + "b").matches(String(repeating: "a", count: 2_000)))
    }

    @Test func namespaceVersionsAreStableAndDistinct() {
        #expect(NamespaceVersion.make(templateVersion: "v1", model: "m") == NamespaceVersion.make(templateVersion: "v1", model: "m"))
        #expect(NamespaceVersion.make(templateVersion: "v1", model: "m") != NamespaceVersion.make(templateVersion: "v2", model: "m"))
        // The parts are framed (canonical JSON array), so shifting text between them changes the version.
        #expect(NamespaceVersion.make(templateVersion: "v1m", model: "") != NamespaceVersion.make(templateVersion: "v1", model: "m"))
    }
}
