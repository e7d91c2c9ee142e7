import CacheKit
import CacheKitMemory
import CacheKitRedis
import CacheKitTesting
import Foundation
import Testing

/// Kills and freezes a redis-server of the test's own under a steady load through `MultiLayerCache`.
@Suite("Redis faults", .serialized, .enabled(if: RedisTestServer.available, "needs redis-server (scripts/test installs it)"))
struct RedisFaultTests {
    struct LoadResult {
        var requests = 0
        var failures = 0
    }

    func makeCache(port: Int) throws -> (MultiLayerCache, RedisCacheBackend) {
        var configuration = try RedisTestServer.configuration()
        configuration.endpoint = .tcp(host: "127.0.0.1", port: port)
        configuration.commandTimeout = .milliseconds(300)
        configuration.connectTimeout = .milliseconds(300)
        let backend = RedisCacheBackend(configuration: configuration)
        var cacheConfiguration = CacheConfiguration()
        cacheConfiguration.layers = [CacheLayer(backend: backend, options: .init(timeout: .milliseconds(250), isShared: true))]
        cacheConfiguration.logger.logLevel = .critical
        return (try MultiLayerCache(configuration: cacheConfiguration), backend)
    }

    /// Sends requests over 40 questions until `stop` is set; counts user-visible failures.
    func load(_ cache: MultiLayerCache, upstream: EchoCompletionProvider, until stop: LockedState<Bool>) async -> LoadResult {
        var result = LoadResult()
        var i = 0
        while !stop.withLock({ $0 }) {
            let request = ChatRequest(model: "m", messages: [.user("question \(i % 40)")], temperature: 0)
            do {
                let answer = try await cache.completion(for: request, upstream: upstream)
                if answer.response.text != "answer to: question \(i % 40)" { result.failures += 1 }
            } catch {
                result.failures += 1
            }
            result.requests += 1
            i += 1
            try? await Task.sleep(for: .milliseconds(2))
        }
        return result
    }

    @Test func killAndRestartMidLoad() async throws {
        let server = try OwnedRedisServer(port: 6391)
        let (cache, backend) = try self.makeCache(port: 6391)
        let upstream = EchoCompletionProvider()
        let stop = LockedState(false)
        let loader = Task { await self.load(cache, upstream: upstream, until: stop) }
        try await Task.sleep(for: .milliseconds(300))
        server.kill()
        try await Task.sleep(for: .milliseconds(500))
        try server.start()
        let recovery = await timeUntilWorking(backend)
        try await Task.sleep(for: .milliseconds(200))
        stop.withLock { $0 = true }
        let result = await loader.value
        let errors = cache.statistics().layers[0].errors
        print("SIGKILL + restart: \(result.requests) requests, \(result.failures) failed, \(errors) layer errors counted, recovered \(recovery) after restart")
        #expect(result.failures == 0, "user requests failed while Redis was down")
        #expect(errors > 0, "the outage was not counted")
        #expect(recovery < .seconds(1), "the pool took \(recovery) to recover")
        // Nothing corrupted: every entry now in Redis decodes and answers its own question.
        for i in 0..<40 {
            let answer = try await cache.completion(for: ChatRequest(model: "m", messages: [.user("question \(i)")], temperature: 0), upstream: upstream)
            #expect(answer.response.text == "answer to: question \(i)")
        }
        #expect(cache.statistics().layers[0].corruptEntries == 0)
    }

    /// Redis stopped during an invalidation: the admin call reported success and, once Redis was back, its stale
    /// entries were served again. Now the report names Redis as pending, no read after the invalidation returned
    /// gets a stale answer (before or after Redis returns), and the outbox applies it once Redis is back.
    @Test func anInvalidationWhileRedisIsStoppedNeverLetsAStaleAnswerBackIn() async throws {
        let server = try OwnedRedisServer(port: 6397)
        var configuration = try RedisTestServer.configuration()
        configuration.endpoint = .tcp(host: "127.0.0.1", port: 6397)
        configuration.commandTimeout = .milliseconds(300)
        configuration.connectTimeout = .milliseconds(300)
        let redis = RedisCacheBackend(configuration: configuration)
        var cacheConfiguration = CacheConfiguration()
        cacheConfiguration.layers = [.memory(), CacheLayer(backend: redis, options: .init(timeout: .milliseconds(250), isShared: true))]
        cacheConfiguration.logger.logLevel = .critical
        let cache = try MultiLayerCache(configuration: cacheConfiguration)
        let version = LockedState(1)
        let upstream = ClosureCompletionProvider { request in
            ChatResponse(id: "r", model: "m", created: 0, content: "v\(version.withLock { $0 }): \(request.lastUserText ?? "")")
        }
        func ask(_ i: Int, tags: [String] = []) async throws -> CachedCompletion {
            try await cache.completion(for: ChatRequest(model: "m", messages: [.user("item \(i)")], temperature: 0), control: CacheControl(tags: tags), upstream: upstream)
        }
        for i in 0..<10 { _ = try await ask(i, tags: ["catalog"]) }
        version.withLock { $0 = 2 }

        server.freeze()
        let report = try await cache.invalidate(.tag("catalog"))
        #expect(!report.isComplete && report.pendingNames == [redis.name], "\(report)")
        var stale = 0
        for i in 0..<5 where try await ask(i).response.text != "v2: item \(i)" { stale += 1 }  // Redis still stopped
        server.thaw()
        let back = await timeUntilWorking(redis)
        for i in 0..<10 where try await ask(i).response.text != "v2: item \(i)" { stale += 1 }  // Redis back, not yet retried
        #expect(stale == 0, "\(stale) stale answers after the invalidation returned")
        let started = ContinuousClock.now
        while cache.pendingInvalidations > 0, ContinuousClock.now - started < .seconds(5) {
            try await Task.sleep(for: .milliseconds(50))
            await cache.retryPendingInvalidations()
        }
        print("invalidation with Redis stopped: reported pending in \(report.pendingNames), Redis back after \(back), applied \(ContinuousClock.now - started) later; \(stale) stale answers")
        #expect(cache.pendingInvalidations == 0, "the outbox never applied the invalidation")
        #expect(try await redis.removeAll(taggedWith: "catalog") == 0, "the stale entries are gone from Redis")
    }

    @Test func frozenForTwoSeconds() async throws {
        let server = try OwnedRedisServer(port: 6392)
        let (cache, backend) = try self.makeCache(port: 6392)
        let upstream = EchoCompletionProvider()
        let stop = LockedState(false)
        let loader = Task { await self.load(cache, upstream: upstream, until: stop) }
        try await Task.sleep(for: .milliseconds(300))
        server.freeze()
        try await Task.sleep(for: .seconds(2))
        server.thaw()
        let recovery = await timeUntilWorking(backend)
        try await Task.sleep(for: .milliseconds(200))
        stop.withLock { $0 = true }
        let result = await loader.value
        let errors = cache.statistics().layers[0].errors
        print("SIGSTOP 2 s: \(result.requests) requests, \(result.failures) failed, \(errors) layer errors counted, recovered \(recovery) after SIGCONT")
        #expect(result.failures == 0, "user requests failed while Redis was frozen")
        #expect(errors > 0, "the freeze was not counted")
        #expect(recovery < .seconds(1), "the pool took \(recovery) to recover")
        #expect(backend.poolCounters.open <= backend.configuration.poolSize)
    }

    /// Network faults between CacheKit and Redis through a loopback TCP proxy, under load: latency beyond the
    /// command timeout, a stall, and resets in the middle of replies; then the network heals.
    /// A connection reset while a 16 MB `SET` is being written: each call is an error (hiredis gets ECONNRESET), the
    /// connection is destroyed, nothing is stored, the process lives (no SIGPIPE: hiredis never writes again after a
    /// failed call, and the I/O threads block SIGPIPE besides), and the backend works once the network does.
    @Test func aResetDuringALargeWriteIsAnErrorNotSIGPIPE() async throws {
        let server = try OwnedRedisServer(port: 6391)
        defer { withExtendedLifetime(server) {} }
        let proxy = try TCPFaultProxy(targetPort: 6391)
        defer { proxy.stop() }
        var configuration = try RedisTestServer.configuration()
        configuration.endpoint = .tcp(host: "127.0.0.1", port: proxy.port)
        configuration.commandTimeout = .seconds(2)
        let backend = RedisCacheBackend(configuration: configuration)
        let now = SystemCacheClock().now()
        let key = CacheKey(digest: Digest256(hashing: Array("sigpipe".utf8)), scopeID: CacheScope(tenant: "sigpipe").id)
        let large = CacheEntry(value: [UInt8](repeating: 0x61, count: 16 << 20), createdAt: now, expiresAt: now + .seconds(60))
        try await backend.set(CacheEntry(value: Array("small".utf8), createdAt: now, expiresAt: now + .seconds(60)), for: key)
        proxy.fault = .resetAfterClientBytes(64 * 1024)
        var failed = 0
        for _ in 0..<5 {
            do { try await backend.set(large, for: key) } catch { failed += 1 }
        }
        #expect(failed == 5, "a write cut after 64 KB cannot have stored 16 MB")
        #expect(proxy.resetCount >= 5)
        proxy.fault = .none
        try await backend.set(large, for: key)
        #expect(try await backend.get(key)?.value.count == 16 << 20, "the backend works again after the resets")
    }

    @Test func networkFaultsThroughAProxy() async throws {
        let server = try OwnedRedisServer(port: 6396)
        defer { withExtendedLifetime(server) {} }
        let proxy = try TCPFaultProxy(targetPort: 6396)
        defer { proxy.stop() }
        let (cache, backend) = try self.makeCache(port: proxy.port)
        let upstream = EchoCompletionProvider()
        let stop = LockedState(false)
        let loader = Task { await self.load(cache, upstream: upstream, until: stop) }
        let report = try await proxy.runPhases(
            [TCPFaultProxy.Fault.latency(.milliseconds(400)), .stall, .resetAfter(bytes: 300)], on: cache, probing: backend,
            recoveryLimit: .seconds(1)
        )
        try await Task.sleep(for: .milliseconds(200))
        stop.withLock { $0 = true }
        let result = await loader.value
        print("TCP proxy faults: \(result.requests) requests, \(result.failures) failed, \(proxy.resetCount) connections reset; " + report.joined(separator: "; "))
        #expect(result.failures == 0, "user requests failed during network faults")
        #expect(proxy.resetCount > 0, "no connection was reset mid-reply")
        #expect(backend.poolCounters.open <= backend.configuration.poolSize)
        // Every entry in Redis still answers its own question: no reply went to the wrong caller or was cut short.
        for i in 0..<40 {
            let answer = try await cache.completion(for: ChatRequest(model: "m", messages: [.user("question \(i)")], temperature: 0), upstream: upstream)
            #expect(answer.response.text == "answer to: question \(i)")
        }
        #expect(cache.statistics().layers[0].corruptEntries == 0)
    }
}
