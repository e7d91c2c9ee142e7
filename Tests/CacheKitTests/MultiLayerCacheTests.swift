import CacheKit
import CacheKitTesting
import Testing

@Suite("MultiLayerCache read/write path")
struct MultiLayerCacheTests {
    let clock = ManualClock()

    func request(_ text: String, system: String = "You are helpful.", temperature: Double? = 0, model: String = "gpt-4o-mini") -> ChatRequest {
        ChatRequest(model: model, messages: [.system(system), .user(text)], temperature: temperature)
    }

    func makeCache(
        layers: [any CacheBackend],
        ceilings: [Duration?]? = nil,
        timeouts: [Duration?]? = nil,
        semantic: SemanticLayer? = nil,
        policy: CachePolicy = CachePolicy(),
        failurePolicy: FailurePolicy = .treatAsMiss,
        bus: (any InvalidationBus)? = nil
    ) throws -> MultiLayerCache {
        var configuration = CacheConfiguration(clock: self.clock)
        configuration.layers = layers.enumerated().map { index, backend in
            CacheLayer(
                backend: backend,
                options: .init(ttlCeiling: ceilings?[index], timeout: timeouts?[index], isShared: index > 0),
                name: "L\(index + 1)"
            )
        }
        configuration.semantic = semantic
        configuration.policy = policy
        configuration.failurePolicy = failurePolicy
        configuration.invalidationBus = bus
        return try MultiLayerCache(configuration: configuration)
    }

    @Test func repeatedRequestIsServedFromL1WithTheSameBody() async throws {
        let upstream = EchoCompletionProvider()
        let cache = try self.makeCache(layers: [InMemoryCacheBackend(clock: self.clock)])
        let first = try await cache.completion(for: self.request("capital of France?"), upstream: upstream)
        let second = try await cache.completion(for: self.request("capital of France?"), upstream: upstream)
        #expect(first.outcome.source == .miss)
        #expect(second.outcome.source == .hitL1)
        #expect(second.response == first.response)
        #expect(upstream.calls == 1)
        let stats = cache.statistics()
        #expect(stats.hits == 1 && stats.upstreamCalls == 1 && stats.requests == 2)
        #expect(stats.tokensSaved == first.response.usage?.totalTokens)
        #expect(stats.costSavedUSD > 0, "gpt-4o-mini is in the price table; a hit saves money")
        #expect(stats.layers[0].hits == 1 && stats.layers[0].misses == 1)
    }

    @Test func hitInL2IsBackfilledIntoL1WithoutExtendingItsLife() async throws {
        let l1 = RecordingCacheBackend(InMemoryCacheBackend(clock: self.clock))
        let l2 = InMemoryCacheBackend(clock: self.clock)
        let writer = try self.makeCache(layers: [InMemoryCacheBackend(clock: self.clock), l2], ceilings: [nil, nil])
        let upstream = EchoCompletionProvider()
        let control = CacheControl(ttl: .seconds(30))
        _ = try await writer.completion(for: self.request("q"), control: control, upstream: upstream)

        let reader = try self.makeCache(layers: [l1, l2], ceilings: [.seconds(300), nil])
        let fromL2 = try await reader.completion(for: self.request("q"), upstream: upstream)
        #expect(fromL2.outcome.source == .hitL2)
        #expect(l1.count("set") == 1, "an L2 hit was not backfilled into L1")
        let key = reader.key(for: self.request("q"))
        let inL1 = try #require(try await l1.get(key))
        let inL2 = try #require(try await l2.get(key))
        #expect(inL1.expiresAt == inL2.expiresAt, "the backfill changed the entry's expiry")
        let fromL1 = try await reader.completion(for: self.request("q"), upstream: upstream)
        #expect(fromL1.outcome.source == .hitL1)
        #expect(upstream.calls == 1)
        self.clock.advance(by: .seconds(31))
        let expired = try await reader.completion(for: self.request("q"), upstream: upstream)
        #expect(expired.outcome.source == .miss, "a backfilled copy outlived the original's TTL")
    }

    @Test func layerTTLCeilingCapsEntries() async throws {
        let l1 = InMemoryCacheBackend(clock: self.clock)
        let l2 = InMemoryCacheBackend(clock: self.clock)
        let cache = try self.makeCache(layers: [l1, l2], ceilings: [.seconds(10), nil])
        let upstream = EchoCompletionProvider()
        _ = try await cache.completion(for: self.request("q"), upstream: upstream)
        self.clock.advance(by: .seconds(11))
        let second = try await cache.completion(for: self.request("q"), upstream: upstream)
        #expect(second.outcome.source == .hitL2, "the L1 copy outlived its layer ceiling")
        #expect(upstream.calls == 1)
    }

    @Test func aThousandConcurrentIdenticalMissesMakeOneUpstreamCall() async throws {
        let upstream = EchoCompletionProvider(latency: .milliseconds(200))
        let cache = try self.makeCache(layers: [InMemoryCacheBackend(clock: self.clock)])
        let request = self.request("stampede")
        let responses = try await withThrowingTaskGroup(of: ChatResponse.self) { group in
            for _ in 0..<1000 { group.addTask { try await cache.completion(for: request, upstream: upstream).response } }
            var all: [ChatResponse] = []
            for try await response in group { all.append(response) }
            return all
        }
        #expect(upstream.calls == 1)
        #expect(responses.count == 1000)
        #expect(Set(responses.map(\.id)).count == 1, "waiters got different answers")
        let stats = cache.statistics()
        #expect(stats.upstreamCalls == 1)
        #expect(stats.coalescedWaiters + stats.hits == 999)
    }

    @Test func staleEntryIsServedWhileExactlyOneRefreshRuns() async throws {
        let upstream = EchoCompletionProvider()
        let cache = try self.makeCache(layers: [InMemoryCacheBackend(clock: self.clock)])
        let control = CacheControl(ttl: .seconds(10), staleWhileRevalidate: .seconds(60))
        let first = try await cache.completion(for: self.request("q"), control: control, upstream: upstream)
        self.clock.advance(by: .seconds(20))
        upstream.setLatency(.milliseconds(100))
        let stale = try await withThrowingTaskGroup(of: CachedCompletion.self) { group in
            for _ in 0..<20 { group.addTask { try await cache.completion(for: self.request("q"), control: control, upstream: upstream) } }
            var all: [CachedCompletion] = []
            for try await result in group { all.append(result) }
            return all
        }
        #expect(stale.allSatisfy { $0.outcome.isStale && $0.outcome.source == .hitL1 })
        #expect(stale.allSatisfy { $0.response.id == first.response.id })
        while cache.inFlightCalls > 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(upstream.calls == 2, "expected exactly one background refresh, got \(upstream.calls - 1)")
        let fresh = try await cache.completion(for: self.request("q"), control: control, upstream: upstream)
        #expect(!fresh.outcome.isStale)
        #expect(fresh.response.id != first.response.id, "the refresh did not replace the stale answer")
        #expect(cache.statistics().refreshes == 1)
        self.clock.advance(by: .seconds(200))
        #expect(try await cache.completion(for: self.request("q"), control: control, upstream: upstream).outcome.source == .miss)
    }

    @Test func aFailingLayerIsAMissAndCounted() async throws {
        let broken = FaultInjectingCacheBackend(InMemoryCacheBackend(clock: self.clock))
        let l2 = InMemoryCacheBackend(clock: self.clock)
        let cache = try self.makeCache(layers: [broken, l2])
        let upstream = EchoCompletionProvider()
        broken.inject(.fail)
        let first = try await cache.completion(for: self.request("q"), upstream: upstream)
        let second = try await cache.completion(for: self.request("q"), upstream: upstream)
        #expect(first.outcome.source == .miss)
        #expect(second.outcome.source == .hitL2, "a failing L1 must not hide L2")
        #expect(upstream.calls == 1)
        let stats = cache.statistics()
        #expect(stats.layers[0].errors >= 3, "get, set and get failures must be counted")
    }

    @Test func aHangingLayerTimesOutAndTheRequestIsAnswered() async throws {
        let hung = FaultInjectingCacheBackend(InMemoryCacheBackend(clock: self.clock))
        let cache = try self.makeCache(layers: [hung], timeouts: [.milliseconds(50)])
        let upstream = EchoCompletionProvider()
        hung.inject(.hang)
        defer { hung.inject(.none) }
        // The hung operation never returns; reaching the expectations at all shows the request did not wait on it.
        let result = try await cache.completion(for: self.request("q"), upstream: upstream)
        #expect(result.outcome.source == .miss)
        #expect(result.response.text == "answer to: q")
        #expect(cache.statistics().layers[0].errors >= 2, "the timed-out get and set must be counted")
        #expect(hung.injectedCount >= 2)
    }

    /// A backend whose `set` waits at a gate the test opens, so a backfill can be held between its read of the
    /// slower layer and its write into this one.
    final class GatedBackend: CacheBackend, @unchecked Sendable {
        let base: InMemoryCacheBackend
        let gate = LockedState<(closed: Bool, waiting: CheckedContinuation<Void, Never>?)>((true, nil))
        init(_ base: InMemoryCacheBackend) { self.base = base }
        var name: String { "gated" }
        var someoneIsWaiting: Bool { self.gate.withLock { $0.waiting != nil } }
        func open() { self.gate.withLock { state in state.closed = false; let waiting = state.waiting; state.waiting = nil; return waiting }?.resume() }
        func get(_ key: CacheKey) async throws -> CacheEntry? { try await self.base.get(key) }
        func set(_ entry: CacheEntry, for key: CacheKey) async throws {
            await withCheckedContinuation { continuation in
                let wait = self.gate.withLock { state -> Bool in
                    guard state.closed else { return false }
                    state.waiting = continuation
                    return true
                }
                if !wait { continuation.resume() }
            }
            try await self.base.set(entry, for: key)
        }
        func remove(_ key: CacheKey) async throws -> Bool { try await self.base.remove(key) }
        func removeAll(taggedWith tag: String) async throws -> Int { try await self.base.removeAll(taggedWith: tag) }
        func removeAll(in scope: CacheScope) async throws -> Int { try await self.base.removeAll(in: scope) }
    }

    @Test func aBackfillRacingAnInvalidationCannotResurrectTheEntry() async throws {
        let l1 = GatedBackend(InMemoryCacheBackend(clock: self.clock))
        let l2 = InMemoryCacheBackend(clock: self.clock)
        let cache = try self.makeCache(layers: [l1, l2])
        let request = self.request("price of the widget")
        let key = cache.key(for: request)
        let now = self.clock.now()
        try await l2.set(CacheEntry(value: ChatResponse(id: "old", model: "m", created: 0, content: "old price").jsonBytes(),
                                    createdAt: now, expiresAt: now + .seconds(600), tags: ["widget"]), for: key)
        // A read finds the entry in L2 and is held just before writing it back into L1.
        let reader = Task { try await cache.lookup(request) }
        while !l1.someoneIsWaiting { try await Task.sleep(for: .milliseconds(1)) }
        let invalidated = LockedState(false)
        let invalidation = Task {
            _ = try await cache.invalidate(.tag("widget"))
            invalidated.withLock { $0 = true }
        }
        try await Task.sleep(for: .milliseconds(100))
        #expect(!invalidated.withLock { $0 }, "the invalidation must wait for the read that began before it")
        l1.open()
        #expect(try await reader.value.outcome.source == .hitL2, "the read itself began before the invalidation")
        try await invalidation.value
        // After invalidate returned: no layer may serve the old answer.
        #expect(try await l1.get(key) == nil, "the backfill resurrected the entry in L1")
        #expect(try await cache.lookup(request).entry == nil)
    }

    /// 1,000 concurrent readers hit 20 entries (in L2 only, so every first read also backfills L1) while the tag
    /// they share is invalidated: no read that starts after `invalidate` returned is served.
    @Test func aThousandConcurrentHitsDuringAnInvalidationSeeNothingStaleAfterItReturns() async throws {
        let l1 = InMemoryCacheBackend(clock: self.clock)
        let l2 = FaultInjectingCacheBackend(InMemoryCacheBackend(clock: self.clock))
        let cache = try self.makeCache(layers: [l1, l2])
        let now = self.clock.now()
        let requests = (0..<20).map { self.request("catalog question \($0)") }
        for request in requests {
            try await l2.set(CacheEntry(value: ChatResponse(id: "old", model: "m", created: 0, content: "old").jsonBytes(),
                                        createdAt: now, expiresAt: now + .seconds(600), tags: ["catalog"]), for: cache.key(for: request))
        }
        l2.inject(.delay(.microseconds(200)))  // L2 reads take a while, so reads and backfills overlap the invalidation
        let returned = LockedState<ContinuousClock.Instant?>(nil)
        let hitsBefore = LockedState(0), staleAfter = LockedState(0), readsAfter = LockedState(0)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for reader in 0..<1000 {
                group.addTask {
                    // Each reader keeps reading until it has made two reads that began after the invalidation returned.
                    var round = 0, after = 0
                    while after < 2 {
                        let started = ContinuousClock.now
                        let lookup = try await cache.lookup(requests[(reader + round) % requests.count])
                        round += 1
                        guard let end = returned.withLock({ $0 }), started > end else {
                            if lookup.entry != nil { hitsBefore.withLock { $0 += 1 } }
                            await Task.yield()
                            continue
                        }
                        after += 1
                        readsAfter.withLock { $0 += 1 }
                        if lookup.entry != nil { staleAfter.withLock { $0 += 1 } }
                    }
                }
            }
            group.addTask {
                try await Task.sleep(for: .milliseconds(20))
                _ = try await cache.invalidate(.tag("catalog"))
                returned.withLock { $0 = ContinuousClock.now }
            }
            try await group.waitForAll()
        }
        print("invalidation under load: \(hitsBefore.withLock { $0 }) hits before it returned, \(readsAfter.withLock { $0 }) reads after, \(staleAfter.withLock { $0 }) stale")
        #expect(hitsBefore.withLock { $0 } > 0, "the readers never hit: the test shows nothing")
        #expect(readsAfter.withLock { $0 } > 0, "no read started after the invalidation returned: the test shows nothing")
        #expect(staleAfter.withLock { $0 } == 0, "a read that began after invalidate returned was served the invalidated answer")
        for request in requests { #expect(try await cache.lookup(request).entry == nil) }
    }

    /// The single-flight table is bounded: with room for 4 flights, 12 distinct misses held upstream keep at most 4
    /// in the table; the rest call upstream uncoalesced (never an error), and identical requests still join.
    @Test func theSingleFlightTableHasALimitAndPastItMissesRunUncoalesced() async throws {
        var configuration = CacheConfiguration(clock: self.clock)
        configuration.layers = [CacheLayer(backend: InMemoryCacheBackend(clock: self.clock))]
        configuration.maximumInFlightCalls = 4
        configuration.logger.logLevel = .critical
        let cache = try MultiLayerCache(configuration: configuration)
        let released = LockedState(false), calls = LockedState(0)
        let upstream = ClosureCompletionProvider { request in
            calls.withLock { $0 += 1 }
            while !released.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(2)) }
            return ChatResponse(id: "x", model: request.model, created: 0, content: "answer to: \(request.lastUserText ?? "")")
        }
        let results = Task {
            try await withThrowingTaskGroup(of: (Int, String?).self) { group in
                for i in 0..<12 {
                    group.addTask { (i, try await cache.completion(for: self.request("q\(i)"), upstream: upstream).response.text) }
                    // Two identical requests for q0: the second joins the first flight.
                    if i == 0 { group.addTask { (0, try await cache.completion(for: self.request("q0"), upstream: upstream).response.text) } }
                }
                return try await group.reduce(into: [(Int, String?)]()) { $0.append($1) }
            }
        }
        while calls.withLock({ $0 }) < 12 { try await Task.sleep(for: .milliseconds(2)) }
        #expect(cache.inFlightCalls == 4, "the table holds \(cache.inFlightCalls) flights, its limit is 4")
        released.withLock { $0 = true }
        let answers = try await results.value
        #expect(answers.count == 13 && answers.allSatisfy { $0.1 == "answer to: q\($0.0)" })
        #expect(calls.withLock { $0 } == 12, "the identical q0 request did not join its flight")
        #expect(cache.inFlightCalls == 0)
    }

    @Test func propagatePolicyThrowsTheLayerError() async throws {
        let broken = FaultInjectingCacheBackend(InMemoryCacheBackend(clock: self.clock))
        broken.inject(.fail)
        let cache = try self.makeCache(layers: [broken], failurePolicy: .propagate)
        await #expect(throws: CacheError.self) {
            _ = try await cache.completion(for: self.request("q"), upstream: EchoCompletionProvider())
        }
    }

    @Test func propagatePolicyThrowsAFailedStoreAfterTheOtherLayersAreWritten() async throws {
        let broken = FaultInjectingCacheBackend(InMemoryCacheBackend(clock: self.clock))
        let l2 = InMemoryCacheBackend(clock: self.clock)
        let cache = try self.makeCache(layers: [broken, l2], failurePolicy: .propagate)
        let lookup = try await cache.lookup(self.request("q"))
        broken.inject(.fail)
        let response = ChatResponse(id: "r", model: "m", created: 0, content: "a")
        await #expect(throws: CacheError.self) { _ = try await cache.store(response, for: lookup) }
        #expect(try await l2.get(lookup.key) != nil, "the healthy layer must still be written")
        #expect(cache.statistics().layers[0].errors == 1)
    }

    @Test(arguments: [nil, 0.7, 1.0] as [Double?])
    func nondeterministicRequestsAreNeverWritten(temperature: Double?) async throws {
        let l1 = RecordingCacheBackend(InMemoryCacheBackend(clock: self.clock))
        let cache = try self.makeCache(layers: [l1])
        let upstream = EchoCompletionProvider()
        for _ in 0..<3 {
            let result = try await cache.completion(for: self.request("q", temperature: temperature), upstream: upstream)
            #expect(result.outcome.source == .bypass)
            #expect(result.outcome.skipReason == .nondeterministic)
        }
        #expect(upstream.calls == 3)
        #expect(l1.operations.isEmpty, "a non-deterministic request touched the cache")
        #expect(cache.statistics().skipped["nondeterministic"] == 3)
    }

    @Test func severalChoicesAreNondeterministic() async throws {
        let cache = try self.makeCache(layers: [InMemoryCacheBackend(clock: self.clock)])
        var request = self.request("q")
        request.n = 3
        let upstream = EchoCompletionProvider()
        _ = try await cache.completion(for: request, upstream: upstream)
        _ = try await cache.completion(for: request, upstream: upstream)
        #expect(upstream.calls == 2)
    }

    @Test func requestControls() async throws {
        let cache = try self.makeCache(layers: [InMemoryCacheBackend(clock: self.clock)])
        let upstream = EchoCompletionProvider()
        let noStore = try await cache.completion(for: self.request("a"), control: CacheControl(noStore: true), upstream: upstream)
        #expect(noStore.outcome.source == .miss)
        #expect(try await cache.completion(for: self.request("a"), upstream: upstream).outcome.source == .miss, "no-store stored")
        #expect(try await cache.completion(for: self.request("a"), upstream: upstream).outcome.source == .hitL1)
        let refresh = try await cache.completion(for: self.request("a"), control: CacheControl(noCache: true), upstream: upstream)
        #expect(refresh.outcome.source == .refresh)
        #expect(upstream.calls == 3)
        self.clock.advance(by: .seconds(30))
        let young = try await cache.completion(for: self.request("a"), control: CacheControl(maxAge: .seconds(10)), upstream: upstream)
        #expect(young.outcome.source == .miss, "max-age accepted an older entry")
        let namespaced = try await cache.completion(for: self.request("a"), control: CacheControl(namespace: "other"), upstream: upstream)
        #expect(namespaced.outcome.source == .miss, "a namespace override read the default namespace")
        #expect(upstream.calls == 5)
    }

    @Test func upstreamErrorsAndRefusalsAreNeverCached() async throws {
        let l1 = RecordingCacheBackend(InMemoryCacheBackend(clock: self.clock))
        let cache = try self.makeCache(layers: [l1])
        let upstream = EchoCompletionProvider()
        upstream.failNext(1)
        await #expect(throws: CacheError.self) { _ = try await cache.completion(for: self.request("q"), upstream: upstream) }
        #expect(l1.count("set") == 0)
        upstream.respond(with: try ChatResponse(json: Array(#"{"choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":"no"},"finish_reason":"stop"}]}"#.utf8)))
        _ = try await cache.completion(for: self.request("q"), upstream: upstream)
        #expect(l1.count("set") == 0, "a refusal was cached")
        upstream.respond(with: nil)
        _ = try await cache.completion(for: self.request("q"), upstream: upstream)
        #expect(try await cache.completion(for: self.request("q"), upstream: upstream).outcome.source == .hitL1)
        #expect(upstream.calls == 3)
        #expect(cache.statistics().upstreamErrors == 1)
        #expect(cache.statistics().notStored == 1)
    }

    @Test func oversizeAnswersAreReturnedButNotStored() async throws {
        let cache = try self.makeCache(layers: [InMemoryCacheBackend(clock: self.clock)], policy: CachePolicy(maximumValueBytes: 64))
        let upstream = EchoCompletionProvider()
        _ = try await cache.completion(for: self.request("q"), upstream: upstream)
        #expect(try await cache.completion(for: self.request("q"), upstream: upstream).outcome.source == .miss)
        #expect(cache.statistics().notStored == 2)
    }

    @Test func corruptEntryIsAMissAndIsDeleted() async throws {
        let inner = InMemoryCacheBackend(clock: self.clock)
        let faulty = FaultInjectingCacheBackend(inner)
        let cache = try self.makeCache(layers: [faulty])
        let upstream = EchoCompletionProvider()
        _ = try await cache.completion(for: self.request("q"), upstream: upstream)
        #expect(inner.count == 1)
        faulty.inject(.corruptReads)
        let result = try await cache.lookup(self.request("q"))
        #expect(result.entry == nil)
        #expect(result.outcome.source == .miss)
        #expect(inner.count == 0, "the corrupt entry was not deleted")
        #expect(cache.statistics().layers[0].corruptEntries == 1)
        faulty.inject(.none)
        #expect(try await cache.completion(for: self.request("q"), upstream: upstream).response.text == "answer to: q")
    }

    @Test func storedBytesThatAreNotAResponseAreDroppedAndAnsweredUpstream() async throws {
        let l1 = InMemoryCacheBackend(clock: self.clock)
        let cache = try self.makeCache(layers: [l1])
        let key = cache.key(for: self.request("q"))
        try await l1.set(CacheEntry(value: Array("not json".utf8), createdAt: self.clock.now(), expiresAt: self.clock.now() + .seconds(60)), for: key)
        let upstream = EchoCompletionProvider()
        let result = try await cache.completion(for: self.request("q"), upstream: upstream)
        #expect(result.response.text == "answer to: q")
        #expect(upstream.calls == 1)
        #expect(try await cache.completion(for: self.request("q"), upstream: upstream).outcome.source == .hitL1)
        #expect(cache.statistics().layers[0].corruptEntries == 1)
        #expect(cache.statistics().layers[0].errors == 0, "a corrupt value was also counted as a layer failure")
    }

    @Test func tenantsNeverShareExactEntries() async throws {
        let cache = try self.makeCache(layers: [InMemoryCacheBackend(clock: self.clock)])
        let upstream = EchoCompletionProvider()
        _ = try await cache.completion(for: self.request("q"), in: CacheScope(tenant: "a"), upstream: upstream)
        let b = try await cache.completion(for: self.request("q"), in: CacheScope(tenant: "b"), upstream: upstream)
        #expect(b.outcome.source == .miss)
        #expect(try await cache.completion(for: self.request("q"), in: CacheScope(tenant: "a"), upstream: upstream).outcome.source == .hitL1)
        #expect(upstream.calls == 2)
    }

    func semanticLayer(threshold: Float = 0.8) -> SemanticLayer {
        SemanticLayer(index: InMemorySemanticIndex(dimension: 256, clock: self.clock), embedder: HashingEmbeddingProvider(dimension: 256), threshold: threshold)
    }

    @Test func paraphraseIsASemanticHitAndIsBackfilled() async throws {
        let l1 = InMemoryCacheBackend(clock: self.clock)
        let cache = try self.makeCache(layers: [l1], semantic: self.semanticLayer())
        let upstream = EchoCompletionProvider()
        let original = try await cache.completion(for: self.request("how do I reset my account password"), upstream: upstream)
        let paraphrase = try await cache.completion(for: self.request("how do I reset my account password please"), upstream: upstream)
        #expect(paraphrase.outcome.source == .semanticHit)
        #expect((paraphrase.outcome.similarity ?? 0) >= 0.8)
        #expect(paraphrase.response == original.response)
        let again = try await cache.completion(for: self.request("how do I reset my account password please"), upstream: upstream)
        #expect(again.outcome.source == .hitL1, "a semantic hit was not backfilled under the new key")
        let unrelated = try await cache.completion(for: self.request("what time is the train to Lyon"), upstream: upstream)
        #expect(unrelated.outcome.source == .miss)
        #expect(unrelated.outcome.nearestSimilarity.map { $0 < 0.8 } ?? true)
        #expect(upstream.calls == 2)
        #expect(cache.statistics().semantic?.hits == 1)
    }

    /// A refresh (no-cache) replaces the semantic record too: a paraphrase afterwards gets the new answer.
    @Test func aRefreshAlsoRenewsTheSemanticRecord() async throws {
        let cache = try self.makeCache(layers: [InMemoryCacheBackend(clock: self.clock)], semantic: self.semanticLayer())
        let upstream = EchoCompletionProvider()
        let first = try await cache.completion(for: self.request("how do I reset my account password"), upstream: upstream)
        let refresh = try await cache.completion(
            for: self.request("how do I reset my account password"), control: CacheControl(noCache: true), upstream: upstream)
        #expect(refresh.outcome.source == .refresh)
        #expect(refresh.response.id != first.response.id)
        let paraphrase = try await cache.completion(for: self.request("how do I reset my account password please"), upstream: upstream)
        #expect(paraphrase.outcome.source == .semanticHit)
        #expect(paraphrase.response == refresh.response, "the paraphrase was served the answer the refresh replaced")
        #expect(upstream.calls == 2)
    }

    /// Vectors chosen per text, so the cosine order is known exactly.
    struct TableEmbedder: EmbeddingProvider {
        let table: [String: [Float]]
        var model: String { "table" }
        var dimension: Int { 3 }
        func embed(_ texts: [String]) async throws -> [[Float]] { texts.map { self.table[$0]! } }
    }

    @Test(arguments: [true, false])
    func rerankingByWordOverlapServesTheRightNeighbour(rerank: Bool) async throws {
        // The query is nearer the API-key entry by cosine (0.93 vs 0.91) but shares its words with the password one.
        let embedder = TableEmbedder(table: [
            "how do I reset my password": [0.91, (1 - 0.91 * 0.91).squareRoot(), 0],
            "how do I rotate my API key": [0.93, 0, (1 - 0.93 * 0.93).squareRoot()],
            "password reset steps": [1, 0, 0],
        ])
        let layer = SemanticLayer(
            index: InMemorySemanticIndex(dimension: 3, clock: self.clock), embedder: embedder, threshold: 0.9,
            rerank: rerank ? SemanticRerank() : nil
        )
        let cache = try self.makeCache(layers: [InMemoryCacheBackend(clock: self.clock)], semantic: layer)
        let upstream = EchoCompletionProvider()
        let password = try await cache.completion(for: self.request("how do I reset my password"), upstream: upstream)
        let apiKey = try await cache.completion(for: self.request("how do I rotate my API key"), upstream: upstream)
        let result = try await cache.completion(for: self.request("password reset steps"), upstream: upstream)
        #expect(result.outcome.source == .semanticHit)
        if rerank {
            #expect(result.response == password.response, "re-ranking must prefer the entry that shares the words")
            // 0.91 + 0.2 × |{reset, password}| / |{i, reset, my, password, steps}| = 0.91 + 0.2 × 0.4
            #expect(abs((result.outcome.semanticScore ?? 0) - 0.99) < 1e-4)
            #expect(abs((result.outcome.similarity ?? 0) - 0.91) < 1e-4, "similarity stays the cosine")
        } else {
            #expect(result.response == apiKey.response, "without re-ranking the nearest neighbour by cosine is served")
        }
    }

    /// A query about as near two cached questions is a miss, not a guess between their answers; clearly nearer one
    /// of them it is a hit; with the margin at 0 the nearer one is always served.
    @Test(arguments: [Float(0.02), 0])
    func aQueryBetweenTwoCachedQuestionsIsAnAmbiguousMiss(margin: Float) async throws {
        func unit(_ x: Float, _ y: Float, _ z: Float) -> [Float] {
            let norm = (x * x + y * y + z * z).squareRoot()
            return [x / norm, y / norm, z / norm]
        }
        let embedder = TableEmbedder(table: [
            "cancel my order": [1, 0, 0],
            "cancel my subscription": unit(0.8, 0.6, 0),
            // cosine 0.9487 to the order, 0.9487 × 0.8 + 0.3162 × 0.6 = 0.9487 to the subscription: a tie
            "cancel it": unit(3, 1, 0),
            // cosine 0.9994 to the order, 0.96 to "cancel it" (stored after its miss), 0.82 to the subscription
            "cancel the order": unit(30, 1, 0),
        ])
        let layer = SemanticLayer(
            index: InMemorySemanticIndex(dimension: 3, clock: self.clock), embedder: embedder, threshold: 0.9,
            rerank: SemanticRerank(lexicalWeight: 0, ambiguityMargin: margin)
        )
        let cache = try self.makeCache(layers: [InMemoryCacheBackend(clock: self.clock)], semantic: layer)
        let upstream = EchoCompletionProvider()
        let order = try await cache.completion(for: self.request("cancel my order"), upstream: upstream)
        _ = try await cache.completion(for: self.request("cancel my subscription"), upstream: upstream)
        let between = try await cache.completion(for: self.request("cancel it"), upstream: upstream)
        #expect(between.outcome.source == (margin > 0 ? .miss : .semanticHit))
        #expect((between.outcome.semanticScore ?? 0) >= 0.9, "above the threshold: only the ambiguity refused it")
        #expect(cache.statistics().semantic?.ambiguous == (margin > 0 ? 1 : 0))
        let near = try await cache.completion(for: self.request("cancel the order"), upstream: upstream)
        #expect(near.outcome.source == .semanticHit)
        #expect(near.response == order.response)
    }

    /// Entries stored for the same question text are not rivals; entries without a stored text are.
    @Test func entriesForTheSameQuestionAreNotRivals() {
        let now = CacheTime(millisecondsSinceEpoch: 0)
        func match(_ id: String, _ similarity: Float, _ text: String?) -> SemanticMatch {
            SemanticMatch(
                key: CacheKey(digest: Digest256(hashing: Array(id.utf8)), scopeID: CacheScope(tenant: "t").id), similarity: similarity,
                entry: CacheEntry(value: Array(id.utf8), createdAt: now, expiresAt: now + .seconds(60), queryText: text))
        }
        let rerank = SemanticRerank(lexicalWeight: 0, ambiguityMargin: 0.05)
        let twins = rerank.choose(from: [match("a", 0.95, "same question"), match("b", 0.94, "same question"), match("c", 0.80, "other")], query: "q")
        #expect(twins?.isAmbiguous == false)
        #expect(twins.map { abs(($0.runnerUp ?? 0) - 0.80) < 1e-6 } == true, "the runner-up is the best entry for another question")
        let rivals = rerank.choose(from: [match("a", 0.95, "one question"), match("b", 0.94, "another question")], query: "q")
        #expect(rivals?.isAmbiguous == true)
        let unknown = rerank.choose(from: [match("a", 0.95, nil), match("b", 0.94, nil)], query: "q")
        #expect(unknown?.isAmbiguous == true, "without stored texts nothing shows the entries answer the same question")
        #expect(rerank.choose(from: [match("a", 0.95, "x")], query: "q")?.isAmbiguous == false)
        #expect(rerank.choose(from: [], query: "q") == nil)
        #expect(SemanticRerank(ambiguityMargin: -1).ambiguityMargin == 0, "a negative margin is clamped")
    }

    @Test(arguments: [true, false])
    func aQuestionWithOtherNumbersIsNeverASemanticHit(guarded: Bool) async throws {
        var layer = self.semanticLayer(threshold: 0.5)
        layer.numbersMustMatch = guarded
        let cache = try self.makeCache(layers: [InMemoryCacheBackend(clock: self.clock)], semantic: layer)
        let upstream = EchoCompletionProvider()
        _ = try await cache.completion(for: self.request("what is the price of product 123"), upstream: upstream)
        let other = try await cache.completion(for: self.request("what is the price of product 456"), upstream: upstream)
        #expect(other.outcome.source == (guarded ? .miss : .semanticHit), "the embeddings are close; only the numbers differ")
        let same = try await cache.completion(for: self.request("price of product 123 please"), upstream: upstream)
        #expect(same.outcome.source == .semanticHit, "the same numbers still match")
        #expect(SemanticRerank.numbers("2 units of product 123, v2.5") == ["2", "123", "5"])
    }

    /// Close embeddings, opposite operations: the guard makes the lookup a miss, counts the refusal per guard, and a
    /// candidate the guards let through is still served.
    @Test(arguments: [true, false])
    func anOppositeOperationIsNeverASemanticHit(guarded: Bool) async throws {
        var layer = self.semanticLayer(threshold: 0.5)
        layer.guards = guarded ? .all : .none
        let cache = try self.makeCache(layers: [InMemoryCacheBackend(clock: self.clock)], semantic: layer)
        let upstream = EchoCompletionProvider()
        _ = try await cache.completion(for: self.request("how do I enable dark mode on my phone"), upstream: upstream)
        let opposite = try await cache.completion(for: self.request("how do I disable dark mode on my phone"), upstream: upstream)
        #expect(opposite.outcome.source == (guarded ? .miss : .semanticHit))
        #expect(cache.statistics().semantic?.guarded == (guarded ? ["opposites": 1] : [:]))
        // Both answers are now stored (or only the first, unguarded); a paraphrase of the first is served the first.
        let paraphrase = try await cache.completion(for: self.request("how can I enable dark mode on my phone"), upstream: upstream)
        #expect(paraphrase.outcome.source == .semanticHit)
        #expect(paraphrase.response.text == "answer to: how do I enable dark mode on my phone")
    }

    @Test func rerankingWordsAndScores() {
        #expect(SemanticRerank.words("How do I reset MY password?! Reset, réinitialiser 2FA") == ["i", "reset", "my", "password", "réinitialiser", "2fa"])
        #expect(SemanticRerank.overlap([], []) == 0)
        #expect(SemanticRerank.overlap(["a1", "b"], ["b", "c"]) == Float(1) / 3)
        let rerank = SemanticRerank(candidates: 0, lexicalWeight: -1)
        #expect(rerank.candidates == 1 && rerank.lexicalWeight == 0, "out-of-range settings are clamped")
        #expect(rerank.score(similarity: 0.5, query: ["x"], candidate: "x") == 0.5)
        #expect(SemanticRerank().score(similarity: 0.5, query: ["x"], candidate: nil) == 0.5, "no stored text, no bonus")
    }

    @Test func tenantsNeverShareSemanticEntries() async throws {
        let cache = try self.makeCache(layers: [InMemoryCacheBackend(clock: self.clock)], semantic: self.semanticLayer())
        let upstream = EchoCompletionProvider()
        _ = try await cache.completion(for: self.request("how do I reset my account password"), in: CacheScope(tenant: "a"), upstream: upstream)
        let other = try await cache.completion(for: self.request("how do I reset my account password please"), in: CacheScope(tenant: "b"), upstream: upstream)
        #expect(other.outcome.source == .miss, "tenant b got tenant a's answer semantically")
        #expect(other.outcome.nearestSimilarity == nil, "tenant b's search saw tenant a's record")
        #expect(upstream.calls == 2)
    }

    @Test func followUpInAnotherConversationIsNotASemanticHit() async throws {
        let cache = try self.makeCache(layers: [InMemoryCacheBackend(clock: self.clock)], semantic: self.semanticLayer(threshold: 0.5))
        let upstream = EchoCompletionProvider()
        let android = ChatRequest(
            model: "gpt-4o-mini",
            messages: [.system("Support bot."), .user("My phone is an Android."), .assistant("Got it."), .user("How do I reset it?")],
            temperature: 0
        )
        let iphone = ChatRequest(
            model: "gpt-4o-mini",
            messages: [.system("Support bot."), .user("My phone is an iPhone."), .assistant("Got it."), .user("How do I reset it?")],
            temperature: 0
        )
        _ = try await cache.completion(for: android, upstream: upstream)
        let result = try await cache.completion(for: iphone, upstream: upstream)
        #expect(result.outcome.source == .miss, "a follow-up matched another conversation's answer")
        #expect(upstream.calls == 2)
        var otherSystem = android
        otherSystem.body["messages"] = .array(
            [ChatMessage.system("Sales bot."), .user("My phone is an Android."), .assistant("Got it."), .user("How do I reset it?")].map { .object($0.fields) }
        )
        #expect(try await cache.completion(for: otherSystem, upstream: upstream).outcome.source == .miss)
    }

    @Test func failingSemanticLayerIsAMiss() async throws {
        struct BrokenEmbedder: EmbeddingProvider {
            var model: String { "broken" }
            var dimension: Int { 256 }
            func embed(_ texts: [String]) async throws -> [[Float]] { throw CacheError(.unavailable, "down") }
        }
        var semantic = self.semanticLayer()
        semantic.embedder = BrokenEmbedder()
        let cache = try self.makeCache(layers: [InMemoryCacheBackend(clock: self.clock)], semantic: semantic)
        let upstream = EchoCompletionProvider()
        _ = try await cache.completion(for: self.request("q"), upstream: upstream)
        #expect(try await cache.completion(for: self.request("q"), upstream: upstream).outcome.source == .hitL1)
        #expect((cache.statistics().semantic?.errors ?? 0) >= 2)
    }

    @Test func invalidationByTagRemovesFromEveryLayerAndOtherInstances() async throws {
        let bus = InProcessInvalidationBus()
        let shared = InMemoryCacheBackend(clock: self.clock)
        let localA = InMemoryCacheBackend(clock: self.clock)
        let localB = InMemoryCacheBackend(clock: self.clock)
        let a = try self.makeCache(layers: [localA, shared], semantic: nil, bus: bus)
        let b = try self.makeCache(layers: [localB, shared], semantic: nil, bus: bus)
        let runB = Task { try await b.run() }
        defer { runB.cancel() }
        while bus.subscriberCount == 0 { try await Task.sleep(for: .milliseconds(1)) }
        let upstream = EchoCompletionProvider()
        let tagged = CacheControl(tags: ["product:123"])
        _ = try await a.completion(for: self.request("price of 123"), control: tagged, upstream: upstream)
        _ = try await a.completion(for: self.request("price of 456"), control: CacheControl(tags: ["product:456"]), upstream: upstream)
        #expect(try await b.completion(for: self.request("price of 123"), upstream: upstream).outcome.source == .hitL2)
        #expect(try await b.completion(for: self.request("price of 123"), upstream: upstream).outcome.source == .hitL1)
        #expect(localB.count == 1)
        let removed = try await a.invalidate(.tag("product:123"))
        #expect(removed.removed == 2 && removed.isComplete, "A's L1 and the shared L2 each held one tagged entry")
        var waited = 0
        while localB.count > 0, waited < 200 {
            try await Task.sleep(for: .milliseconds(5))
            waited += 1
        }
        #expect(localB.count == 0, "instance B's L1 kept an invalidated entry")
        #expect(try await b.completion(for: self.request("price of 123"), upstream: upstream).outcome.source == .miss)
        #expect(try await a.completion(for: self.request("price of 456"), upstream: upstream).outcome.source == .hitL1, "an untagged entry was invalidated")
    }

    @Test func scopeVersionBumpStartsFresh() async throws {
        let cache = try self.makeCache(layers: [InMemoryCacheBackend(clock: self.clock)])
        let upstream = EchoCompletionProvider()
        let v1 = CacheScope(tenant: "t", namespace: "faq", version: "1")
        _ = try await cache.completion(for: self.request("q"), in: v1, upstream: upstream)
        #expect(try await cache.completion(for: self.request("q"), in: v1.with(version: "2"), upstream: upstream).outcome.source == .miss)
        #expect(try await cache.invalidate(.scope(v1)).removed == 1)
        #expect(try await cache.completion(for: self.request("q"), in: v1, upstream: upstream).outcome.source == .miss)
    }
}
