import CacheKit
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
