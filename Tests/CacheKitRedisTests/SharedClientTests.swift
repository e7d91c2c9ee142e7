import CacheKit
import CacheKitMemory
import CacheKitRedis
import CacheKitTesting
import Testing

/// One `RedisClient` serves the layer and the bus: composing starts no thread and opens no connection, and the bus
/// publishes on the layer's pool instead of a pool of its own (before: one pool per user, threads started when each
/// was created, 24 threads for memory + Redis + pgvector + bus before any request).
@Suite("One Redis client shared by the layer and the bus", .enabled(if: RedisTestServer.available, "needs CACHEKIT_REDIS_URL (scripts/test starts Redis)"))
struct SharedRedisClientTests {
    @Test func composingCostsNothingAndUseSharesOnePool() async throws {
        var settings = try RedisTestServer.configuration()
        settings.poolSize = 4
        let redis = RedisClient(configuration: settings)
        let bus = RedisInvalidationBus(client: redis)
        var configuration = CacheConfiguration(layers: [.memory(), .redis(client: redis)], invalidationBus: bus)
        configuration.logger.logLevel = .critical
        let cache = try MultiLayerCache(configuration: configuration)
        #expect(redis.startedThreads == 0 && redis.poolCounters.created == 0, "composing opened connections or started threads")
        #expect(bus.client === redis)

        let upstream = EchoCompletionProvider()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for caller in 0..<8 {
                group.addTask {
                    let request = ChatRequest(model: "gpt-4o-mini", messages: [.user("question \(caller)")], temperature: 0)
                    _ = try await cache.completion(for: request, control: CacheControl(tags: ["shared-client"]), upstream: upstream)
                }
            }
            try await group.waitForAll()
        }
        let report = try await cache.invalidate(.tag("shared-client"))  // removes from Redis and publishes on the bus
        #expect(report.isComplete)
        let counters = redis.poolCounters
        #expect(counters.open <= 4 && counters.created <= 4, "the layer and the bus opened more than the one pool's \(counters)")
        #expect(redis.startedThreads <= 5, "more threads than the pool's connections plus one: \(redis.startedThreads)")
    }
}
