@testable import CacheKit
import CacheKitTesting
import Synchronization
import Testing

/// Verifiers on the request path (a rejection, an error or a timeout is a miss; each is counted) and off it
/// (grey-zone promotion writes an exact alias, without holding up the lookup).
@Suite("Hit verifiers")
struct HitVerifierTests {
    let clock = ManualClock()

    /// A verifier made of a closure.
    struct Verifier: HitVerifier {
        var name: String
        var body: @Sendable (HitCandidate) async throws -> HitVerdict
        func verify(_ candidate: HitCandidate) async throws -> HitVerdict { try await self.body(candidate) }
    }

    func request(_ text: String) -> ChatRequest {
        ChatRequest(model: "gpt-4o-mini", messages: [.system("You are helpful."), .user(text)], temperature: 0)
    }

    func makeCache(_ configure: (inout SemanticLayer) -> Void) throws -> MultiLayerCache {
        var configuration = CacheConfiguration(clock: self.clock)
        configuration.layers = [CacheLayer(backend: InMemoryCacheBackend(clock: self.clock), name: "L1")]
        var layer = SemanticLayer(
            index: InMemorySemanticIndex(dimension: 256, clock: self.clock), embedder: HashingEmbeddingProvider(dimension: 256), threshold: 0.5
        )
        configure(&layer)
        configuration.semantic = layer
        return try MultiLayerCache(configuration: configuration)
    }

    static let question = "how do I reset the password of my account"
    static let paraphrase = "how can I reset the password for my account"

    @Test(arguments: [true, false])
    func aRejectionIsAMissAndEachVerdictIsCounted(accepting: Bool) async throws {
        let seen = Mutex<[String]>([])
        let cache = try self.makeCache { layer in
            layer.verifiers = [Verifier(name: "check") { candidate in
                seen.withLock { $0.append("\(candidate.cachedQuery ?? "") | \(candidate.query)") }
                return accepting ? .accept : .reject("no")
            }]
        }
        let upstream = EchoCompletionProvider()
        _ = try await cache.completion(for: self.request(Self.question), upstream: upstream)
        let second = try await cache.completion(for: self.request(Self.paraphrase), upstream: upstream)
        #expect(second.outcome.source == (accepting ? .semanticHit : .miss))
        #expect(seen.withLock { $0 } == ["\(Self.question) | \(Self.paraphrase)"], "the verifier sees both questions")
        let counts = try #require(cache.statistics().semantic?.verifications["check"])
        #expect(counts.accepted == (accepting ? 1 : 0) && counts.rejected == (accepting ? 0 : 1) && counts.failed == 0)
    }

    @Test func aSlowOrFailingVerifierIsAMiss() async throws {
        let cache = try self.makeCache { layer in
            layer.verifierTimeout = .milliseconds(50)
            layer.verifiers = [
                Verifier(name: "slow") { _ in
                    try await Task.sleep(for: .seconds(5))
                    return .accept
                },
            ]
        }
        let upstream = EchoCompletionProvider()
        _ = try await cache.completion(for: self.request(Self.question), upstream: upstream)
        let started = ContinuousClock.now
        let second = try await cache.completion(for: self.request(Self.paraphrase), upstream: upstream)
        #expect(second.outcome.source == .miss)
        #expect(ContinuousClock.now - started < .seconds(4), "the lookup waited for the verifier past its timeout")
        #expect(cache.statistics().semantic?.verifications["slow"]?.failed == 1)
    }

    @Test func theJudgeReadsYesOrNo() async throws {
        func judge(_ reply: String) -> JudgeVerifier {
            JudgeVerifier(provider: ClosureCompletionProvider { request in
                ChatResponse(id: "j", model: request.model, created: 0, content: reply)
            }, model: "small")
        }
        let candidate = HitCandidate(
            query: "b", cachedQuery: "a", entry: CacheEntry(value: [], createdAt: CacheTime(millisecondsSinceEpoch: 0), expiresAt: CacheTime(millisecondsSinceEpoch: 1)), similarity: 0.9, score: 0.9,
            scope: CacheScope(tenant: "t")
        )
        #expect(try await judge("YES").verify(candidate).accepted)
        #expect(try await judge(" yes.").verify(candidate).accepted)
        #expect(try await judge("No").verify(candidate).accepted == false)
        await #expect(throws: CacheError.self) { _ = try await judge("perhaps").verify(candidate) }
        // The judge sees both questions and never the answer.
        let text = judge("YES").request(for: candidate).messages.compactMap(\.text).joined(separator: "\n")
        #expect(text.contains("First question: a") && text.contains("Second question: b"))
        let all = AllVerifiers([GuardVerifier(), judge("YES")])
        #expect(try await all.verify(candidate).accepted)
        var opposite = candidate
        (opposite.cachedQuery, opposite.query) = ("how do I enable dark mode", "how do I disable dark mode")
        #expect(try await all.verify(opposite).accepted == false, "the guards refuse before the judge is asked")
    }

    /// Just below the threshold: a miss at once; in the background the verifier approves, and the same wording asked
    /// again is an exact hit on the cached answer.
    @Test func aGreyZoneCandidateIsPromotedOffTheRequestPath() async throws {
        let (gate, opener) = AsyncStream.makeStream(of: Void.self)
        let asked = Mutex(0)
        // The paraphrase's score, read from another cache: the threshold goes just above it.
        let probe = try self.makeCache { _ in }
        _ = try await probe.completion(for: self.request(Self.question), upstream: EchoCompletionProvider())
        let score = try #require(try await probe.lookup(self.request(Self.paraphrase)).outcome.semanticScore)
        let upstream = EchoCompletionProvider()

        let cache = try self.makeCache { layer in
            layer.threshold = score + 0.01
            layer.promotion = SemanticLayer.Promotion(verifier: Verifier(name: "judge") { _ in
                asked.withLock { $0 += 1 }
                for await _ in gate { break }
                return .accept
            })
        }
        _ = try await cache.completion(for: self.request(Self.question), upstream: upstream)
        let first = try await cache.lookup(self.request(Self.paraphrase))
        #expect(first.entry == nil, "a grey-zone candidate is a miss while it is verified")
        for _ in 0..<200 where asked.withLock({ $0 }) == 0 { try await Task.sleep(for: .milliseconds(5)) }
        #expect(asked.withLock { $0 } == 1)
        opener.yield()
        for _ in 0..<200 where cache.statistics().semantic?.promoted == 0 { try await Task.sleep(for: .milliseconds(5)) }
        #expect(cache.statistics().semantic?.promoted == 1)
        let again = try await cache.completion(for: self.request(Self.paraphrase), upstream: upstream)
        #expect(again.outcome.source == .exactHit(layer: 0))
        #expect(again.response.text == "answer to: " + Self.question)
        #expect(upstream.calls == 1)
    }

    @Test func aRejectedOrGuardedGreyZoneCandidateIsNotPromoted() async throws {
        let asked = Mutex(0)
        // Cosine alone (re-ranked scores of these near-copies exceed 1, past any threshold).
        let probe = try self.makeCache {
            $0.guards = .none
            $0.rerank = nil
        }
        let upstream = EchoCompletionProvider()
        _ = try await probe.completion(for: self.request("how do I enable dark mode on my phone"), upstream: upstream)
        let score = try #require(try await probe.lookup(self.request("how do I disable dark mode on my phone")).outcome.semanticScore)
        let cache = try self.makeCache { layer in
            layer.rerank = nil
            layer.threshold = score + 0.01
            layer.promotion = SemanticLayer.Promotion(verifier: Verifier(name: "judge") { _ in
                asked.withLock { $0 += 1 }
                return .accept
            })
        }
        _ = try await cache.completion(for: self.request("how do I enable dark mode on my phone"), upstream: upstream)
        _ = try await cache.lookup(self.request("how do I disable dark mode on my phone"))
        try await Task.sleep(for: .milliseconds(100))
        #expect(asked.withLock { $0 } == 0, "the guards refuse before the verifier is asked")
        #expect(cache.statistics().semantic?.promoted == 0)
    }
}

/// The online audit: a sample of semantic hits answered again upstream in the background, compared, counted, and
/// acted on when they disagree.
@Suite("Semantic audit")
struct SemanticAuditTests {
    let clock = ManualClock()
    static let question = "how do I reset the password of my account"
    static let paraphrase = "how can I reset the password for my account"
    static let another = "how would I reset the password for my account"

    func request(_ text: String) -> ChatRequest {
        ChatRequest(model: "gpt-4o-mini", messages: [.system("You are helpful."), .user(text)], temperature: 0)
    }

    func makeCache(_ audit: SemanticLayer.Audit) throws -> MultiLayerCache {
        var configuration = CacheConfiguration(clock: self.clock)
        configuration.layers = [CacheLayer(backend: InMemoryCacheBackend(clock: self.clock), name: "L1")]
        var layer = SemanticLayer(
            index: InMemorySemanticIndex(dimension: 256, clock: self.clock), embedder: HashingEmbeddingProvider(dimension: 256), threshold: 0.5
        )
        layer.audit = audit
        configuration.semantic = layer
        return try MultiLayerCache(configuration: configuration)
    }

    /// Answers by topic (every password question gets one answer) or, `byText`, each wording its own.
    final class Upstream: CompletionProvider, Sendable {
        let byText: Bool
        let calls = Mutex(0)
        let gate: AsyncStream<Void>?
        init(byText: Bool, gate: AsyncStream<Void>? = nil) {
            self.byText = byText
            self.gate = gate
        }
        func complete(_ request: ChatRequest) async throws -> ChatResponse {
            let number = self.calls.withLock { count -> Int in
                count += 1
                return count
            }
            if number > 1, let gate { for await _ in gate { break } }
            let text = request.messages.last?.text ?? ""
            return ChatResponse(id: "u", model: request.model, created: 0, content: self.byText ? "answer to: \(text)" : "Use the reset link.")
        }
    }

    func waitFor(_ cache: MultiLayerCache, _ condition: (CacheStatistics.Audit) -> Bool) async throws {
        for _ in 0..<400 where !(cache.statistics().semantic.map { condition($0.audit) } ?? false) { try await Task.sleep(for: .milliseconds(5)) }
    }

    @Test func anAgreeingAuditIsCountedAndEstimatesPrecisionOffTheRequestPath() async throws {
        let (gate, opener) = AsyncStream.makeStream(of: Void.self)
        let upstream = Upstream(byText: false, gate: gate)
        let cache = try self.makeCache(SemanticLayer.Audit(sampleRate: 1))
        _ = try await cache.completion(for: self.request(Self.question), upstream: upstream)
        // The audit call waits on the gate; the hit is served without it.
        let hit = try await cache.completion(for: self.request(Self.paraphrase), upstream: upstream)
        #expect(hit.outcome.source == .semanticHit)
        #expect(cache.statistics().semantic?.audit.audits == 0)
        opener.yield()
        try await self.waitFor(cache) { $0.audits == 1 }
        let audit = try #require(cache.statistics().semantic?.audit)
        #expect(audit.agreements == 1 && audit.disagreements == 0 && audit.estimatedPrecision == 1)
        let interval = try #require(audit.precisionInterval)
        #expect(interval.upperBound == 1 && interval.lowerBound < 0.9, "one audit says little: a wide interval")
        #expect(audit.byNamespace["default"]?.agreements == 1)
        #expect(upstream.calls.withLock { $0 } == 2)
    }

    @Test func aDisagreementStoresTheRightAnswerAndRemovesTheEntryPastTheBound() async throws {
        let upstream = Upstream(byText: true)
        let cache = try self.makeCache(SemanticLayer.Audit(sampleRate: 1, maximumErrorRate: 0, minimumAudits: 1))
        _ = try await cache.completion(for: self.request(Self.question), upstream: upstream)
        let wrong = try await cache.completion(for: self.request(Self.paraphrase), upstream: upstream)
        #expect(wrong.outcome.source == .semanticHit && wrong.response.text == "answer to: " + Self.question)
        try await self.waitFor(cache) { $0.disagreements == 1 && $0.entriesRemoved == 1 }
        let audit = try #require(cache.statistics().semantic?.audit)
        #expect(audit.disagreements == 1 && audit.entriesRemoved == 1 && audit.estimatedPrecision == 0)
        // The paraphrase's own answer now sits under its exact key.
        let again = try await cache.completion(for: self.request(Self.paraphrase), upstream: upstream)
        #expect(again.outcome.source == .exactHit(layer: 0) && again.response.text == "answer to: " + Self.paraphrase)
        // And the entry that was wrong is never served to another wording again.
        let other = try await cache.completion(for: self.request(Self.another), upstream: upstream)
        #expect(other.response.text != "answer to: " + Self.question)
    }

    @Test func theBudgetBoundsAuditCalls() async throws {
        let upstream = Upstream(byText: false)
        let cache = try self.makeCache(SemanticLayer.Audit(sampleRate: 1, maximumCallsPerMinute: 1))
        _ = try await cache.completion(for: self.request(Self.question), upstream: upstream)
        _ = try await cache.completion(for: self.request(Self.paraphrase), upstream: upstream)
        _ = try await cache.completion(for: self.request(Self.another), upstream: upstream)
        try await self.waitFor(cache) { $0.audits == 1 && $0.skippedForBudget == 1 }
        let audit = try #require(cache.statistics().semantic?.audit)
        #expect(audit.audits == 1 && audit.skippedForBudget == 1)
        #expect(upstream.calls.withLock { $0 } == 2, "one answer and one audit call")
    }

    @Test func theNormalisedComparisonIgnoresCaseSpacingAndPunctuation() {
        #expect(SemanticLayer.Audit.normalized("  Use the RESET link!  ") == SemanticLayer.Audit.normalized("use the reset link"))
        #expect(SemanticLayer.Audit.normalized("Use the reset link") != SemanticLayer.Audit.normalized("Use the login link"))
    }
}

@Suite("Semantic audit: the namespace threshold")
struct AuditThresholdTests {
    @Test func theLowestThresholdThatKeepsTheErrorWithinTheBound() {
        // Scores 0.99 … 0.80: all right down to 0.89, then every other one wrong (0.88, 0.86 …).
        var observations: [(score: Float, agreed: Bool)] = []
        for i in 0..<20 {
            let score = Float(99 - i) / 100
            observations.append((score, i < 10 || i % 2 == 0))
        }
        #expect(AuditBook.threshold(for: observations, bound: 0.02, minimum: 5) == 0.89)
        #expect(AuditBook.threshold(for: observations, bound: 0.5, minimum: 5) == 0.80, "a loose bound accepts them all")
        #expect(AuditBook.threshold(for: Array(observations.prefix(4)), bound: 0.02, minimum: 5) == nil, "too few to learn from")
        let allWrong: [(score: Float, agreed: Bool)] = observations.map { ($0.score, false) }
        #expect(AuditBook.threshold(for: allWrong, bound: 0.02, minimum: 5) == nil, "none good enough")
    }
}

@Suite("Semantic audit: the book's capacity")
struct AuditBookCapacityTests {
    @Test func pastCapacityTheLeastRecentlyUsedGoFirst() {
        let book = AuditBook(capacity: 100)
        let audit = SemanticLayer.Audit(sampleRate: 0, firstHits: 1)
        func key(_ i: Int) -> CacheKey { CacheKey(digest: Digest256(hashing: Array("k\(i)".utf8)), scopeID: CacheScope(tenant: "t").id) }
        for i in 0..<101 { #expect(book.isDue(key(i), audit: audit, random: 1), "a first hit is due") }
        let count = book.state.withLock { $0.entries.count }
        #expect(count <= 100 && count >= 80, "the oldest tenth went: \(count) left")
        #expect(book.state.withLock { $0.entries[key(0)] == nil && $0.entries[key(100)] != nil })
    }
}
