import CacheKit
import CacheKitTesting
import MetricsTestKit
import Testing

/// Each cache's metrics go to the factory it was given, so two caches in one process (or two tests running at once)
/// never share counters, and nothing needs `MetricsSystem.bootstrap`.
@Suite("Metrics go to the injected factory")
struct MetricsFactoryTests {
    static func cache(_ metrics: TestMetrics) throws -> MultiLayerCache {
        var configuration = CacheConfiguration(layers: [CacheLayer(backend: InMemoryCacheBackend(), name: "L1")])
        configuration.metricsFactory = metrics
        return try MultiLayerCache(configuration: configuration)
    }

    @Test func twoCachesKeepTheirOwnCounters() async throws {
        let first = TestMetrics()
        let second = TestMetrics()
        let a = try Self.cache(first)
        let b = try Self.cache(second)
        let upstream = EchoCompletionProvider()
        let request = ChatRequest(model: "gpt-4o-mini", messages: [.user("hello")], temperature: 0)
        for _ in 0..<3 { _ = try await a.completion(for: request, upstream: upstream) }
        _ = try await b.completion(for: request, upstream: upstream)
        #expect(try first.expectCounter("cachekit_requests_total").totalValue == 3)
        #expect(try first.expectCounter("cachekit_hits_total").totalValue == 2)
        #expect(try first.expectCounter("cachekit_upstream_calls_total").totalValue == 1)
        #expect(try first.expectCounter("cachekit_layer_hits_total", [("layer", "L1")]).totalValue == 2)
        #expect(try second.expectCounter("cachekit_requests_total").totalValue == 1)
        #expect(try second.expectCounter("cachekit_hits_total").totalValue == 0)
    }
}
