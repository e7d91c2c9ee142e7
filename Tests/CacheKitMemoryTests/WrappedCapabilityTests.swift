import CacheKit
import CacheKitMemory
import CacheKitTesting
import Testing

/// Capabilities are `CacheStore` requirements, so a wrapper forwards each one and a wrapped backend loses none.
/// Before, the cache found them by downcasting (`as? ContentRemovable`, `as? Service`) and the testing wrappers
/// forwarded only local clearing: a wrapped memory layer silently skipped pattern invalidation and its sweep never ran.
@Suite("A wrapped backend keeps every capability")
struct WrappedCapabilityTests {
    static func request(_ text: String) -> ChatRequest { ChatRequest(model: "gpt-4o-mini", messages: [.user(text)], temperature: 0) }

    static func wrapped(_ memory: MemoryCacheBackend) -> any CacheBackend {
        RecordingCacheBackend(FaultInjectingCacheBackend(memory))
    }

    /// The conformance suite, capability behaviours included, against a memory backend inside both wrappers.
    @Test(arguments: CacheBackendConformance.Behaviour.allCases)
    func conformanceThroughWrappers(_ behaviour: CacheBackendConformance.Behaviour) async throws {
        let clock = ManualClock()
        try await CacheBackendConformance(manualClock: clock) {
            Self.wrapped(MemoryCacheBackend(configuration: .init(clock: clock)))
        }.run(behaviour)
    }

    @Test func wrappersDeclareWhatTheBackendDeclares() {
        let memory = MemoryCacheBackend()
        #expect(Self.wrapped(memory).capabilities == memory.capabilities)
        #expect(memory.capabilities == [.contentRemoval, .localClearing, .backgroundWork])
    }

    /// Pattern invalidation through the cache reaches the wrapped memory layer, and removes only what matches.
    @Test func patternInvalidationReachesAWrappedLayer() async throws {
        let memory = MemoryCacheBackend()
        let cache = try MultiLayerCache(configuration: CacheConfiguration(layers: [CacheLayer(backend: Self.wrapped(memory))]))
        let upstream = EchoCompletionProvider()
        _ = try await cache.completion(for: Self.request("refund policy for plan A"), upstream: upstream)
        _ = try await cache.completion(for: Self.request("shipping times"), upstream: upstream)
        let report = try await cache.invalidate(.pattern(QueryPattern("refund*"), in: .default))
        #expect(report.removed == 1 && report.isComplete)
        #expect(memory.usage.entries == 1, "the wrapped layer kept the matching entry or lost the other one")
        #expect(try await cache.completion(for: Self.request("shipping times"), upstream: upstream).outcome.source == .hitL1)
    }

    /// The cache's `run()` runs a wrapped layer's sweep.
    @Test func theCacheRunsAWrappedLayersSweep() async throws {
        let clock = ManualClock()
        let memory = MemoryCacheBackend(configuration: .init(sweepInterval: .milliseconds(20), clock: clock))
        var configuration = CacheConfiguration(layers: [CacheLayer(backend: Self.wrapped(memory))], clock: clock)
        configuration.policy.defaultTTL = .seconds(1)
        let cache = try MultiLayerCache(configuration: configuration)
        _ = try await cache.completion(for: Self.request("hello"), upstream: EchoCompletionProvider())
        #expect(memory.usage.entries == 1)
        let run = Task { try await cache.run() }
        clock.advance(by: .seconds(5))
        var waited = 0
        while memory.usage.entries > 0, waited < 300 {
            try await Task.sleep(for: .milliseconds(10))
            waited += 1
        }
        run.cancel()
        #expect(memory.usage.entries == 0, "the wrapped layer's sweep never ran")
    }
}

/// Another instance's invalidation reaches a semantic index that is not shared. Before, remote invalidations skipped
/// the semantic layer entirely, so a memory index kept serving an answer another instance had invalidated to every
/// paraphrase of its question.
@Suite("Remote invalidation reaches a local semantic index")
struct RemoteSemanticInvalidationTests {
    @Test func aParaphraseMissesAfterAnotherInstanceInvalidates() async throws {
        let bus = InProcessInvalidationBus()
        func instance() throws -> MultiLayerCache {
            var configuration = CacheConfiguration(layers: [.memory()], invalidationBus: bus)
            var semantic = SemanticLayer.memory(embedder: HashingEmbeddingProvider(dimension: 256), threshold: 0.5)
            semantic.rerank = nil
            semantic.nearMissMargin = 0
            configuration.semantic = semantic
            configuration.logger.logLevel = .critical
            return try MultiLayerCache(configuration: configuration)
        }
        let a = try instance()
        let b = try instance()
        let runB = Task { try await b.run() }
        defer { runB.cancel() }
        while bus.subscriberCount == 0 { try await Task.sleep(for: .milliseconds(1)) }
        let upstream = EchoCompletionProvider()
        let question = ChatRequest(model: "gpt-4o-mini", messages: [.user("what is the price of the basic plan")], temperature: 0)
        let paraphrase = ChatRequest(model: "gpt-4o-mini", messages: [.user("what is the price of the basic plan today")], temperature: 0)
        _ = try await b.completion(for: question, control: CacheControl(tags: ["pricing"]), upstream: upstream)
        #expect(try await b.completion(for: paraphrase, upstream: upstream).outcome.source == .semanticHit, "the setup needs a semantic hit")
        try await a.invalidate(.tag("pricing"))
        // B's L1 holds the paraphrase's backfill until the event arrives; then both copies must be gone.
        var waited = 0
        var source = CacheOutcome.Source.semanticHit
        while waited < 200 {
            try await Task.sleep(for: .milliseconds(5))
            waited += 1
            source = try await b.lookup(paraphrase).outcome.source
            if source == .miss { break }
        }
        #expect(source == .miss, "instance B still serves the invalidated answer to a paraphrase")
    }
}
