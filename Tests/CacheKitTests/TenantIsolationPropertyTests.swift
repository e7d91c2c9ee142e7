import CacheKit
import CacheKitTesting
import PropertyBased
import Testing

/// Tenant isolation as a property: for random sequences of requests from random tenants and namespaces, asking
/// random questions or paraphrases of them, through an exact L1, an exact L2 and a semantic layer, no answer is
/// ever served to a tenant or namespace other than the one it was produced for. A failure prints the shrunk
/// sequence and a seed to replay it (`.fixedSeed(...)`).
@Suite("Tenant isolation (property)")
struct TenantIsolationPropertyTests {
    struct Step: Sendable, CustomStringConvertible {
        var tenant: Int, namespace: Int, question: Int, paraphrase: Bool
        var description: String { "t\(self.tenant)/n\(self.namespace)/q\(self.question)\(self.paraphrase ? "'" : "")" }
    }

    static let questions = [
        "how do I reset my account password", "what is the price of the premium plan", "where can I download my invoices",
        "how do I cancel my subscription", "does the app work offline",
    ]

    static let steps = zip(Gen.int(in: 0...2), Gen.int(in: 0...1), Gen.int(in: 0...4), Gen.bool())
        .map { Step(tenant: $0, namespace: $1, question: $2, paraphrase: $3) }
        .array(of: 1...40)

    @Test func noAnswerCrossesATenantOrNamespace() async {
        // Over all runs, how many answers came from cache: the property means something only if hits happen.
        let hits = LockedState((exact: 0, semantic: 0))
        await propertyCheck(count: 150, input: Self.steps) { steps in
            let clock = ManualClock()
            var configuration = CacheConfiguration()
            configuration.layers = [
                CacheLayer(backend: InMemoryCacheBackend(clock: clock), name: "L1"),
                CacheLayer(backend: InMemoryCacheBackend(clock: clock), options: .init(isShared: true), name: "L2"),
            ]
            // A low threshold and a lexical embedder: paraphrases of any question come close, so only the scope can
            // keep tenants apart.
            configuration.semantic = SemanticLayer(
                index: InMemorySemanticIndex(dimension: 256, clock: clock), embedder: HashingEmbeddingProvider(dimension: 256), threshold: 0.3,
                rerank: SemanticRerank(ambiguityMargin: 0)
            )
            configuration.clock = clock
            configuration.logger.logLevel = .critical
            let cache = try MultiLayerCache(configuration: configuration)
            for step in steps {
                let owner = "tenant \(step.tenant) namespace \(step.namespace)"
                let text = Self.questions[step.question] + (step.paraphrase ? " please" : "")
                let upstream = ClosureCompletionProvider { request in
                    ChatResponse(id: "x", model: request.model, created: 0, content: "\(owner): \(request.lastUserText ?? "")")
                }
                let scope = CacheScope(tenant: "tenant-\(step.tenant)", namespace: "ns-\(step.namespace)")
                let request = ChatRequest(model: "gpt-4o-mini", messages: [.user(text)], temperature: 0)
                guard let result = try? await cache.completion(for: request, in: scope, upstream: upstream) else {
                    Issue.record("request failed at \(step)")
                    return
                }
                switch result.outcome.source {
                case .semanticHit: hits.withLock { $0.semantic += 1 }
                case .miss: break
                default: hits.withLock { $0.exact += 1 }
                }
                #expect(result.response.text?.hasPrefix(owner + ":") == true,
                        "\(step) (\(result.outcome.source)) was served \(result.response.text ?? "nil")")
            }
        }
        let (exact, semantic) = hits.withLock { $0 }
        print("tenant isolation property: \(exact) exact and \(semantic) semantic hits over 150 random sequences, 0 crossed")
        #expect(exact > 0 && semantic > 0, "no hits: the property was never exercised")
    }
}
