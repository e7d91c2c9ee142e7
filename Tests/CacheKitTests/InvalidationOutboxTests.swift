@testable import CacheKit
import CacheKitTesting
import Testing

/// An invalidation never reports success while stale answers remain: what a layer or the bus missed is reported,
/// retried until it applies, and fenced meanwhile. Before this, a failing layer was a counted miss and the
/// invalidation returned as if complete; when the layer came back, its stale entry was served again.
@Suite("Invalidation outbox")
struct InvalidationOutboxTests {
    /// A bus whose publish fails while `down` is set.
    final class FlakyBus: InvalidationBus, Sendable {
        let down = LockedState(true)
        let published = LockedState<[InvalidationEvent]>([])

        func publish(_ event: InvalidationEvent) async throws {
            if self.down.withLock({ $0 }) { throw CacheError(.unavailable, "bus down") }
            self.published.withLock { $0.append(event) }
        }

        func subscribe() async throws -> AsyncStream<InvalidationEvent> { AsyncStream { _ in } }
    }

    /// A versioned upstream: the answer changes when the data behind it changes.
    final class VersionedUpstream: CompletionProvider, Sendable {
        let version = LockedState(1)
        let calls = LockedState(0)

        func complete(_ request: ChatRequest) async throws -> ChatResponse {
            self.calls.withLock { $0 += 1 }
            let version = self.version.withLock { $0 }
            return ChatResponse(id: "r", model: request.model, created: 0, content: "v\(version): \(request.lastUserText ?? "")")
        }
    }

    func request(_ text: String) -> ChatRequest { ChatRequest(model: "m", messages: [.user(text)], temperature: 0) }

    @Test func aLayerThatMissedAnInvalidationIsFencedUntilTheRetryApplies() async throws {
        let l1 = InMemoryCacheBackend(name: "local")
        let l2 = FaultInjectingCacheBackend(InMemoryCacheBackend(name: "shared"))
        let bus = FlakyBus()
        var configuration = CacheConfiguration()
        configuration.layers = [CacheLayer(backend: l1), CacheLayer(backend: l2, options: .init(isShared: true))]
        configuration.invalidationBus = bus
        configuration.logger.logLevel = .critical
        let cache = try MultiLayerCache(configuration: configuration)
        let upstream = VersionedUpstream()
        for i in 0..<4 {
            _ = try await cache.completion(for: self.request("q\(i)"), control: CacheControl(tags: ["catalog"]), upstream: upstream)
        }
        upstream.version.withLock { $0 = 2 }

        l2.inject(.fail)
        let report = try await cache.invalidate(.tag("catalog"))
        #expect(!report.isComplete && report.pendingNames == ["bus", "shared"], "\(report)")
        #expect(report.removed == 4, "L1's copies are gone")
        #expect(cache.pendingInvalidations == 1)

        // The shared layer is back, still holding the stale answers: none is served, none is backfilled.
        l2.inject(.none)
        for i in 0..<4 {
            let answer = try await cache.completion(for: self.request("q\(i)"), upstream: upstream)
            #expect(answer.response.text == "v2: q\(i)", "a stale answer was served after the invalidation returned")
            #expect(answer.outcome.source == .miss)
        }
        // An entry written after the invalidation is not fenced.
        #expect(try await cache.completion(for: self.request("q0"), upstream: upstream).outcome.source == .hitL1)

        // The retry reaches the layer; the bus is still down, so the invalidation stays pending for it alone.
        try await Task.sleep(for: .milliseconds(150))
        #expect(await cache.retryPendingInvalidations() == 1)
        #expect(l2.injectedCount == 1, "one failed removal, then the retry went through")
        bus.down.withLock { $0 = false }
        try await Task.sleep(for: .milliseconds(1200))
        #expect(await cache.retryPendingInvalidations() == 0)
        #expect(bus.published.withLock { $0.map(\.target) } == [.tag("catalog")], "the bus got it once it was back")
    }

    @Test func theOutboxNamesWhatATargetCoversAndBacksOff() {
        let scope = CacheScope(tenant: "t")
        let key = CacheKey(digest: Digest256(hashing: Array("k".utf8)), scopeID: scope.id)
        let old = CacheEntry(value: [], createdAt: CacheTime(millisecondsSinceEpoch: 1_000), expiresAt: .distantFuture, tags: ["a"])
        let new = CacheEntry(value: [], createdAt: CacheTime(millisecondsSinceEpoch: 3_000), expiresAt: .distantFuture, tags: ["a"])
        func blocks(_ target: InvalidationTarget, _ entry: CacheEntry, in destination: InvalidationDestination, missing: Set<InvalidationDestination>) -> Bool {
            let outbox = InvalidationOutbox()
            outbox.add(target, at: CacheTime(millisecondsSinceEpoch: 2_000), missingIn: missing)
            return outbox.blocks(entry, key: key, in: destination)
        }
        #expect(blocks(.tag("a"), old, in: .layer(1), missing: [.layer(1)]))
        #expect(!blocks(.tag("a"), new, in: .layer(1), missing: [.layer(1)]), "written after the invalidation")
        #expect(!blocks(.tag("a"), old, in: .layer(0), missing: [.layer(1)]), "another layer applied it")
        #expect(!blocks(.tag("b"), old, in: .layer(1), missing: [.layer(1)]))
        #expect(blocks(.scope(scope), old, in: .semantic, missing: [.semantic]))
        #expect(!blocks(.scope(CacheScope(tenant: "u")), old, in: .semantic, missing: [.semantic]))
        #expect(blocks(.key(key), old, in: .layer(1), missing: [.layer(1)]))

        let outbox = InvalidationOutbox(initialBackoff: .milliseconds(100), maximumBackoff: .milliseconds(400))
        let start = ContinuousClock.now
        outbox.add(.tag("a"), at: .distantPast, missingIn: [.layer(1), .bus], now: start)
        #expect(outbox.due(now: start).isEmpty && outbox.due(now: start + .milliseconds(100)).count == 1)
        let id = outbox.due(now: start + .seconds(1))[0].id
        outbox.retried(id, succeeded: [.bus], now: start)
        #expect(outbox.due(now: start + .milliseconds(199)).isEmpty && outbox.due(now: start + .milliseconds(200)).first?.destinations == [.layer(1)])
        for _ in 0..<10 { outbox.retried(id, succeeded: [], now: start) }
        #expect(outbox.due(now: start + .milliseconds(400)).count == 1, "the backoff stops growing at its maximum")
        outbox.retried(id, succeeded: [.layer(1)], now: start)
        #expect(outbox.count == 0)
    }
}

/// What a caller can make the semantic layer embed is bounded: a message over `maximumQueryBytes` is exact-only.
@Suite("Semantic query bound")
struct SemanticQueryBoundTests {
    final class CountingEmbedder: EmbeddingProvider, Sendable {
        let base = HashingEmbeddingProvider(dimension: 64)
        let texts = LockedState(0)
        var model: String { self.base.model }
        var dimension: Int { self.base.dimension }
        func embed(_ texts: [String]) async throws -> [[Float]] {
            self.texts.withLock { $0 += texts.count }
            return try await self.base.embed(texts)
        }
    }

    @Test func aMessageOverTheBoundIsNeverEmbedded() async throws {
        let embedder = CountingEmbedder()
        var configuration = CacheConfiguration()
        configuration.layers = [CacheLayer(backend: InMemoryCacheBackend())]
        var semantic = SemanticLayer(index: InMemorySemanticIndex(dimension: 64), embedder: embedder, threshold: 0.5)
        semantic.maximumQueryBytes = 100
        configuration.semantic = semantic
        configuration.logger.logLevel = .critical
        let cache = try MultiLayerCache(configuration: configuration)
        let upstream = EchoCompletionProvider()
        let long = String(repeating: "a long preamble shared by many prompts ", count: 10)
        _ = try await cache.completion(for: ChatRequest(model: "m", messages: [.user(long + "first")], temperature: 0), upstream: upstream)
        let other = try await cache.completion(for: ChatRequest(model: "m", messages: [.user(long + "second")], temperature: 0), upstream: upstream)
        #expect(other.outcome.source == .miss, "two long prompts that share a preamble must not match")
        #expect(embedder.texts.withLock { $0 } == 0)
        #expect(try await cache.completion(for: ChatRequest(model: "m", messages: [.user(long + "first")], temperature: 0), upstream: upstream).outcome.source == .hitL1)
        _ = try await cache.completion(for: ChatRequest(model: "m", messages: [.user("short question")], temperature: 0), upstream: upstream)
        #expect(embedder.texts.withLock { $0 } >= 1, "a short question is embedded as before")
    }
}

/// The outbox survives a restart when it has a file: a new cache over the same layers still withholds the stale
/// entry and applies the invalidation when the layer is back.
@Suite("Durable invalidation outbox")
struct DurableOutboxTests {
    @Test func pendingInvalidationsSurviveARestart() async throws {
        let path = "/tmp/ck-outbox-\(UInt32.random(in: 0...UInt32.max)).json"
        let shared = FaultInjectingCacheBackend(InMemoryCacheBackend(name: "shared"))
        func cache() throws -> MultiLayerCache {
            var configuration = CacheConfiguration()
            configuration.layers = [CacheLayer(backend: InMemoryCacheBackend(name: "local")), CacheLayer(backend: shared, options: .init(isShared: true))]
            configuration.invalidationOutboxPath = path
            configuration.logger.logLevel = .critical
            return try MultiLayerCache(configuration: configuration)
        }
        let upstream = InvalidationOutboxTests.VersionedUpstream()
        let request = ChatRequest(model: "m", messages: [.user("price")], temperature: 0)
        let first = try cache()
        _ = try await first.completion(for: request, control: CacheControl(tags: ["prices"]), upstream: upstream)
        upstream.version.withLock { $0 = 2 }
        shared.inject(.fail)
        #expect(try await first.invalidate(.tag("prices")).pendingNames == ["shared"])

        // The process ends; the layer comes back still holding the old answer; a new process starts.
        shared.inject(.none)
        let second = try cache()
        #expect(second.pendingInvalidations == 1, "the pending invalidation was forgotten by the restart")
        #expect(try await second.completion(for: request, upstream: upstream).response.text == "v2: price")
        #expect(await second.retryPendingInvalidations() == 0)
        #expect(try cache().pendingInvalidations == 0, "the file was not updated once applied")
    }
}
