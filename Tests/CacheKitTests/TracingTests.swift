import CacheKit
import CacheKitTesting
import InMemoryTracing
import Testing
import Tracing

@Suite("Tracing")
struct TracingTests {
    @Test func lookupsLayersUpstreamCallsAndInvalidationsAreSpans() async throws {
        let tracer = InMemoryTracer()
        let clock = ManualClock()
        var configuration = CacheConfiguration(clock: clock)
        configuration.layers = [
            CacheLayer(backend: InMemoryCacheBackend(clock: clock), options: .init(), name: "L1"),
            CacheLayer(backend: InMemoryCacheBackend(clock: clock), options: .init(isShared: true), name: "L2"),
        ]
        configuration.tracer = tracer
        let cache = try MultiLayerCache(configuration: configuration)
        let request = ChatRequest(model: "gpt-4o-mini", messages: [.user("hello")], temperature: 0)
        let upstream = EchoCompletionProvider()
        _ = try await cache.completion(for: request, control: CacheControl(tags: ["t"]), upstream: upstream)
        _ = try await cache.completion(for: request, upstream: upstream)
        _ = try await cache.invalidate(.tag("t"))

        let spans = tracer.finishedSpans
        let lookups = spans.filter { $0.operationName == "cachekit.lookup" }
        #expect(lookups.map { $0.attributes["cachekit.outcome"]?.toSpanAttribute() } == [.string("MISS"), .string("HIT-L1")])
        #expect(lookups[1].attributes["cachekit.layer"]?.toSpanAttribute() == .string("L1"))
        #expect(lookups.allSatisfy { $0.attributes["cachekit.scope"] != nil }, "the scope id, never the tenant")
        // The miss read both layers, as children of its lookup span.
        let gets = spans.filter { $0.operationName == "cachekit.get" && $0.traceID == lookups[0].traceID }
        #expect(gets.count == 2)
        #expect(gets.allSatisfy { $0.parentSpanID == lookups[0].spanID })
        #expect(gets.map { $0.attributes["cachekit.layer"]?.toSpanAttribute() } == [.string("L1"), .string("L2")])
        let calls = spans.filter { $0.operationName == "cachekit.upstream" }
        #expect(calls.count == 1, "one upstream call for a miss and a hit")
        #expect(calls.first?.kind == .client)
        #expect(calls.first?.attributes["cachekit.model"]?.toSpanAttribute() == .string("gpt-4o-mini"))
        let invalidation = try #require(spans.first { $0.operationName == "cachekit.invalidate" })
        #expect(invalidation.attributes["cachekit.target"]?.toSpanAttribute() == .string("tag"))
        #expect(invalidation.attributes["cachekit.removed"]?.toSpanAttribute() == .int64(2))
    }
}
