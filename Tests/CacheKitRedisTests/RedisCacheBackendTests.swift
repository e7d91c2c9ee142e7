import CacheKit
import CacheKitMemory
@testable import CacheKitRedis
import CacheKitTesting
import Foundation
import Testing

@Suite("RedisCacheBackend against redis-server", .enabled(if: RedisTestServer.available, "needs CACHEKIT_REDIS_URL (scripts/test starts Redis)"))
struct RedisCacheBackendTests {
    @Test(arguments: CacheBackendConformance.Behaviour.allCases)
    func conformance(_ behaviour: CacheBackendConformance.Behaviour) async throws {
        try await CacheBackendConformance.realTime(largeValueBytes: 10 << 20) {
            RedisCacheBackend(configuration: try RedisTestServer.configuration())
        }.run(behaviour)
    }

    func request(_ text: String) -> ChatRequest {
        ChatRequest(model: "gpt-4o-mini", messages: [.system("s"), .user(text)], temperature: 0)
    }

    func instance(shared configuration: RedisClient.Configuration, bus: RedisInvalidationBus) throws -> (MultiLayerCache, MemoryCacheBackend) {
        let memory = MemoryCacheBackend()
        var cacheConfiguration = CacheConfiguration()
        cacheConfiguration.layers = [
            CacheLayer(backend: memory, options: .init(ttlCeiling: .seconds(300))),
            CacheLayer(backend: RedisCacheBackend(configuration: configuration), options: .init(timeout: .milliseconds(500), isShared: true)),
        ]
        cacheConfiguration.invalidationBus = bus
        return (try MultiLayerCache(configuration: cacheConfiguration), memory)
    }

    @Test func twoInstancesShareL2AndInvalidationReachesTheOtherL1() async throws {
        let configuration = try RedisTestServer.configuration()
        let (a, _) = try self.instance(shared: configuration, bus: RedisInvalidationBus(configuration: configuration))
        let (b, memoryB) = try self.instance(shared: configuration, bus: RedisInvalidationBus(configuration: configuration))
        let runB = Task { try await b.run() }
        defer { runB.cancel() }
        try await Task.sleep(for: .milliseconds(200))  // B subscribes
        let upstream = EchoCompletionProvider()
        _ = try await a.completion(for: self.request("price of 123"), control: CacheControl(tags: ["product:123"]), upstream: upstream)
        _ = try await a.completion(for: self.request("price of 456"), control: CacheControl(tags: ["product:456"]), upstream: upstream)
        let fromL2 = try await b.completion(for: self.request("price of 123"), upstream: upstream)
        #expect(fromL2.outcome.source == .hitL2, "B did not find A's entry in Redis")
        #expect(try await b.completion(for: self.request("price of 123"), upstream: upstream).outcome.source == .hitL1, "not backfilled into B's L1")
        #expect(memoryB.usage.entries == 1)

        let started = ContinuousClock.now
        try await a.invalidate(.tag("product:123"))
        while memoryB.usage.entries > 0, ContinuousClock.now - started < .seconds(5) {
            try await Task.sleep(for: .milliseconds(2))
        }
        let elapsed = ContinuousClock.now - started
        print("tag invalidation reached the other instance's L1 in \(elapsed)")
        #expect(memoryB.usage.entries == 0, "B's L1 kept the invalidated entry")
        #expect(try await b.completion(for: self.request("price of 123"), upstream: upstream).outcome.source == .miss)
        #expect(try await b.completion(for: self.request("price of 456"), upstream: upstream).outcome.source == .hitL2, "an untagged entry was removed")
        #expect(upstream.calls == 3)
    }

    @Test func aBatchLargerThanOnePipelinePieceIsWrittenWhole() async throws {
        // 600 entries of 3 KB with tags (MULTI, SET, SADD, PEXPIRE ×2 each): about 2 MB, sent in many 32 KB pieces.
        let backend = RedisCacheBackend(configuration: try RedisTestServer.configuration())
        let now = SystemCacheClock().now()
        var generator = SeededGenerator(seed: 600)
        let batch = (0..<600).map { i in
            KeyedEntry(
                key: CacheKey(digest: Digest256(hashing: Array("batch \(i)".utf8)), scopeID: CacheScope.default.id),
                entry: CacheEntry(
                    value: (0..<3_000).map { _ in UInt8.random(in: 0...255, using: &generator) }, createdAt: now,
                    expiresAt: now + .seconds(60), tags: i % 2 == 0 ? ["even", "all"] : ["all"]))
        }
        try await backend.set(batch)
        let read = try await backend.get(batch.map(\.key))
        #expect(read.count == 600)
        for (index, entry) in read.enumerated() {
            #expect(entry?.value == batch[index].entry.value, "entry \(index) differs after the round trip")
        }
        #expect(try await backend.removeAll(taggedWith: "even") == 300)
        #expect(try await backend.removeAll(taggedWith: "all") == 300)
        // Entries already dead are deleted, not written with a non-positive PX (which Redis refuses).
        let dead = CacheEntry(value: [1], createdAt: now + .seconds(-20), expiresAt: now + .seconds(-10))
        try await backend.set([batch[0], KeyedEntry(key: batch[1].key, entry: dead)])
        #expect(try await backend.get(batch[1].key) == nil)
        #expect(try await backend.get(batch[0].key)?.value == batch[0].entry.value)
    }

    /// A tag removal whose entry deletions failed used to have already deleted the tag's set: the call threw, and a
    /// retry reported "0 removed" while every entry stayed. Now the members wait in the tag's claim, and the retry
    /// removes them all.
    @Test func aTagRemovalThatFailsHalfwayLeavesNothingUnreachable() async throws {
        let admin = try RedisTestServer.configuration()
        let user = "ck-claim-\(UInt32.random(in: 0...UInt32.max))"
        // This user may touch tag sets and claims, but not entries: deleting the members fails (NOPERM).
        try RedisTestServer.cli(["acl", "setuser", user, "on", ">claim-secret", "~\(admin.keyPrefix):t:*", "~\(admin.keyPrefix):c:*", "+@all"])
        defer { _ = try? RedisTestServer.cli(["acl", "deluser", user]) }
        var limited = admin
        limited.username = user
        limited.password = "claim-secret"
        let backend = RedisCacheBackend(configuration: admin)
        let now = SystemCacheClock().now()
        let keys = (0..<20).map { CacheKey(digest: Digest256(hashing: [UInt8($0)]), scopeID: CacheScope.default.id) }
        try await backend.set(keys.map { KeyedEntry(key: $0, entry: CacheEntry(value: [1], createdAt: now, expiresAt: now + .seconds(60), tags: ["doomed"])) })

        await #expect(throws: CacheError.self) { try await RedisCacheBackend(configuration: limited).removeAll(taggedWith: "doomed") }
        #expect(try await backend.get(keys).allSatisfy { $0 != nil }, "the failed removal deleted entries after all")
        #expect(try await backend.removeAll(taggedWith: "doomed") == 20, "the retry did not find the entries of the failed removal")
        #expect(try await backend.get(keys).allSatisfy { $0 == nil })
        #expect(try await backend.removeAll(taggedWith: "doomed") == 0)
        // The claim is empty, so Redis dropped it.
        #expect(try RedisTestServer.cli(["exists", String(decoding: backend.tagKeys("doomed").claim, as: UTF8.self)]).hasPrefix("0"))
    }

    @Test func aclUserAuthenticatesAndAWrongPasswordIsAClearError() async throws {
        var good = try RedisTestServer.configuration()
        good.username = "cachekit-acl"
        good.password = "acl-secret"
        let backend = RedisCacheBackend(configuration: good)
        let key = CacheKey(digest: Digest256(hashing: [1, 2, 3]), scopeID: CacheScope.default.id)
        let now = SystemCacheClock().now()
        try await backend.set(CacheEntry(value: [42], createdAt: now, expiresAt: now + .seconds(30)), for: key)
        #expect(try await backend.get(key)?.value == [42])

        var bad = good
        bad.password = "wrong-password-xyz"
        do {
            _ = try await RedisCacheBackend(configuration: bad).get(key)
            Issue.record("a wrong password was accepted")
        } catch let error as CacheError {
            #expect(error.code == .authenticationFailed, "\(error)")
            #expect(!error.description.contains("wrong-password-xyz"), "the password leaked into the error")
        }
    }

    @Test func anUnreachableServerIsAClearErrorAndTheCacheStillAnswers() async throws {
        var configuration = try RedisTestServer.configuration()
        configuration.endpoint = .tcp(host: "127.0.0.1", port: 1)
        let backend = RedisCacheBackend(configuration: configuration)
        let key = CacheKey(digest: Digest256(hashing: [9]), scopeID: CacheScope.default.id)
        await #expect(throws: CacheError.self) { _ = try await backend.get(key) }
        var cacheConfiguration = CacheConfiguration()
        cacheConfiguration.layers = [.memory(), CacheLayer(backend: backend, options: .init(timeout: .milliseconds(500), isShared: true))]
        let cache = try MultiLayerCache(configuration: cacheConfiguration)
        let upstream = EchoCompletionProvider()
        for _ in 0..<3 { _ = try await cache.completion(for: self.request("q"), upstream: upstream) }
        #expect(upstream.calls == 1, "the memory layer must still serve")
        #expect(cache.statistics().layers[1].errors >= 2)
    }

    /// The redis-py CVE-2023-28858/28859 lesson: a call cancelled after its command was sent must not leave its
    /// reply on a pooled connection. CLIENT PAUSE holds every reply while tasks are cancelled mid-flight.
    @Test func cancelledCallsNeverDeliverRepliesToOtherCallers() async throws {
        // A server of the test's own: CLIENT PAUSE ALL would stall every other suite on the shared one.
        let server = try OwnedRedisServer(port: 6394)
        var configuration = try RedisTestServer.configuration()
        configuration.endpoint = .tcp(host: "127.0.0.1", port: server.port)
        configuration.poolSize = 4
        configuration.commandTimeout = .seconds(3)
        let backend = RedisCacheBackend(configuration: configuration)
        let scope = CacheScope(tenant: "cancel-\(UInt32.random(in: 0...UInt32.max))")
        let keys = (0..<64).map { CacheKey(digest: Digest256(hashing: Array("k\($0)".utf8)), scopeID: scope.id) }
        let now = SystemCacheClock().now()
        for (i, key) in keys.enumerated() {
            try await backend.set(CacheEntry(value: Array("value-\(i)".utf8), createdAt: now, expiresAt: now + .seconds(60)), for: key)
        }
        var wrong = 0
        var cancelled = 0
        for round in 0..<5 {
            try RedisTestServer.cli(["client", "pause", "300", "all"], port: server.port)
            let outcomes = await withTaskGroup(of: (Int, [UInt8]?, Bool).self) { group in
                var tasks: [Task<[UInt8]?, any Error>] = []
                for (i, key) in keys.enumerated() {
                    let task = Task { try await backend.get(key)?.value }
                    tasks.append(task)
                    group.addTask {
                        do { return (i, try await task.value, false) } catch { return (i, nil, error is CancellationError) }
                    }
                }
                try? await Task.sleep(for: .milliseconds(50))
                for (i, task) in tasks.enumerated() where (i + round) % 3 == 0 { task.cancel() }
                var all: [(Int, [UInt8]?, Bool)] = []
                for await outcome in group { all.append(outcome) }
                return all
            }
            for (i, value, wasCancelled) in outcomes {
                if wasCancelled { cancelled += 1 }
                if let value, value != Array("value-\(i)".utf8) { wrong += 1 }
            }
            // Everyone, cancelled or not, now reads through the same pool.
            for (i, key) in keys.enumerated() {
                let value = try await backend.get(key)?.value
                if value != Array("value-\(i)".utf8) { wrong += 1 }
            }
        }
        let counters = backend.poolCounters
        print("cancellation: \(cancelled) calls cancelled mid-flight, \(counters.destroyed) connections destroyed, \(wrong) wrong replies")
        #expect(wrong == 0, "a caller received another caller's reply")
        #expect(cancelled > 0, "no call was cancelled mid-flight: the test did not test anything")
        #expect(counters.destroyed > 0, "connections with an unread reply were not destroyed")
        #expect(counters.open <= configuration.poolSize)
    }

    /// Bytes changed inside entries stored in Redis (one flipped byte, a truncation, garbage), behind CacheKit's
    /// back: each is detected, counted, answered from upstream as a miss, and replaced by a good entry.
    @Test func entriesCorruptedInsideRedisAreDetectedCountedAndReplaced() async throws {
        let configuration = try RedisTestServer.configuration()
        let backend = RedisCacheBackend(configuration: configuration)
        var cacheConfiguration = CacheConfiguration()
        cacheConfiguration.layers = [CacheLayer(backend: backend, options: .init(isShared: true))]
        cacheConfiguration.logger.logLevel = .critical
        let cache = try MultiLayerCache(configuration: cacheConfiguration)
        let upstream = EchoCompletionProvider()
        let questions = ["first question", "second question", "third question"]
        for question in questions {
            _ = try await cache.completion(for: ChatRequest(model: "m", messages: [.user(question)], temperature: 0), upstream: upstream)
        }
        let keys = try RedisTestServer.cli(["--scan", "--pattern", "\(configuration.keyPrefix):e:*"]).split(separator: "\n").map(String.init).sorted()
        #expect(keys.count == 3)
        // Admin tooling of the test only (EVAL): CacheKit itself never sends scripts.
        let flip = "local v = redis.call('GET', KEYS[1]) local i = tonumber(ARGV[1]) redis.call('SET', KEYS[1], string.sub(v, 1, i - 1) .. string.char((string.byte(v, i) + 1) % 256) .. string.sub(v, i + 1)) return 1"
        try RedisTestServer.cli(["EVAL", flip, "1", keys[0], "30"])
        try RedisTestServer.cli(["EVAL", "redis.call('SET', KEYS[1], string.sub(redis.call('GET', KEYS[1]), 1, 12)) return 1", "1", keys[1]])
        try RedisTestServer.cli(["SET", keys[2], "not a cache entry"])
        for question in questions {
            let answer = try await cache.completion(for: ChatRequest(model: "m", messages: [.user(question)], temperature: 0), upstream: upstream)
            #expect(answer.outcome.source == .miss, "a corrupted entry was served")
            #expect(answer.response.text == "answer to: \(question)")
        }
        #expect(cache.statistics().layers[0].corruptEntries == 3)
        for question in questions {
            let again = try await cache.completion(for: ChatRequest(model: "m", messages: [.user(question)], temperature: 0), upstream: upstream)
            #expect(again.outcome.source == .hitL1 && again.response.text == "answer to: \(question)", "the corrupt entry was not replaced")
        }
        #expect(upstream.calls == 6)
    }

    /// 2,000 concurrent reads through a 4-connection pool behind 3 ms of proxy latency, every other one cancelled at
    /// a random point (queued, in flight or done), while the rest use the same connections: no caller gets another
    /// caller's value, and the pool is back to normal afterwards.
    @Test func aStormOfRandomCancellationsNeverCrossesReplies() async throws {
        var configuration = try RedisTestServer.configuration()
        let target = try #require(Int(configuration.endpoint.description.split(separator: ":").last ?? ""))
        let proxy = try TCPFaultProxy(targetPort: target)
        defer { proxy.stop() }
        configuration.endpoint = .tcp(host: "127.0.0.1", port: proxy.port)
        configuration.poolSize = 4
        let backend = RedisCacheBackend(configuration: configuration)
        let storm = try await CancellationStorm.run(
            on: backend, scope: CacheScope(tenant: "storm-\(UInt32.random(in: 0...UInt32.max))"), calls: 2000, maximumDelay: .milliseconds(1500),
            through: proxy)
        let counters = backend.poolCounters
        print("Redis cancellation storm: 2000 calls, \(storm); pool open \(counters.open), destroyed \(counters.destroyed)")
        #expect(storm.wrong == 0, "a caller received another caller's value")
        #expect(storm.cancelled > 0 && storm.answered >= 1000)
        #expect(counters.destroyed >= 4, "the four calls cancelled mid-flight did not destroy their connections")
        #expect(counters.open <= configuration.poolSize, "the pool is back to normal")
    }
}
