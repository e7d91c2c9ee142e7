/// A candidate semantic hit, as a ``HitVerifier`` sees it.
public struct HitCandidate: Sendable {
    /// The query's text (the last user message).
    public var query: String
    /// The stored question the candidate answered, when the index kept it.
    public var cachedQuery: String?
    /// The cached entry: the answer (`value`), when it was written, its tags.
    public var entry: CacheEntry
    /// Cosine similarity of the two questions' vectors.
    public var similarity: Float
    /// The score the threshold applies to (with re-ranking, cosine plus word overlap).
    public var score: Float
    /// The request's scope.
    public var scope: CacheScope

    public init(query: String, cachedQuery: String?, entry: CacheEntry, similarity: Float, score: Float, scope: CacheScope) {
        self.query = query
        self.cachedQuery = cachedQuery
        self.entry = entry
        self.similarity = similarity
        self.score = score
        self.scope = scope
    }
}

/// A verifier's decision on a candidate: accepted or not, with an optional score and reason.
public struct HitVerdict: Sendable, Hashable {
    public var accepted: Bool
    /// A confidence in `0 ... 1`, when the verifier computes one.
    public var score: Float?
    /// Why, in words written by the verifier (never the texts themselves).
    public var reason: String?

    public init(accepted: Bool, score: Float? = nil, reason: String? = nil) {
        self.accepted = accepted
        self.score = score
        self.reason = reason
    }

    public static let accept = HitVerdict(accepted: true)

    public static func reject(_ reason: String) -> HitVerdict { HitVerdict(accepted: false, reason: reason) }

    /// Accepted when `score` is at least `minimum`.
    public static func score(_ score: Float, minimum: Float) -> HitVerdict { HitVerdict(accepted: score >= minimum, score: score) }
}

/// Decides whether a candidate semantic hit may be served.
///
/// Verifiers run after the ``SemanticGuards`` on the request path (`SemanticLayer.verifiers`, each bounded by
/// `SemanticLayer.verifierTimeout`; a rejection, an error or a timeout is a miss), or off it for near-threshold
/// candidates (`SemanticLayer.Promotion`). Each is measured by name: `CacheStatistics.Semantic.verifications`,
/// `cachekit_semantic_verifications_total{verifier, verdict}`, `cachekit_semantic_verifier_seconds{verifier}` and a
/// `cachekit.verify` span.
public protocol HitVerifier: Sendable {
    /// A short name for statistics and metrics.
    var name: String { get }
    /// The verdict on `candidate`. Throwing counts as a failure (not accepted).
    func verify(_ candidate: HitCandidate) async throws -> HitVerdict
}

/// Verifiers in order: every one must accept; the first that does not decides.
public struct AllVerifiers: HitVerifier {
    public var verifiers: [any HitVerifier]
    public var name: String

    public init(_ verifiers: [any HitVerifier], name: String? = nil) {
        self.verifiers = verifiers
        self.name = name ?? verifiers.map(\.name).joined(separator: "+")
    }

    public func verify(_ candidate: HitCandidate) async throws -> HitVerdict {
        var last = HitVerdict.accept
        for verifier in self.verifiers {
            last = try await verifier.verify(candidate)
            guard last.accepted else { return HitVerdict(accepted: false, score: last.score, reason: "\(verifier.name): \(last.reason ?? "rejected")") }
        }
        return last
    }
}

/// ``SemanticGuards`` as a verifier: for composing them with other verifiers (the semantic layer applies its
/// guards itself).
public struct GuardVerifier: HitVerifier {
    public var guards: SemanticGuards
    public var name: String { "guards" }

    public init(_ guards: SemanticGuards = .all) { self.guards = guards }

    public func verify(_ candidate: HitCandidate) async throws -> HitVerdict {
        guard let cached = candidate.cachedQuery else { return .accept }
        if let refusal = self.guards.refusal(query: candidate.query, candidate: cached) { return .reject(refusal.rawValue) }
        return .accept
    }
}

/// A judge model asked whether the cached question's answer also answers the query, over any
/// `CompletionProvider` (a small, cheap model is enough).
///
/// The judge gets both questions, never the answer, and must reply YES or NO; anything else is an error (not
/// accepted). Off the request path (`SemanticLayer.Promotion`) its latency costs nothing; on it, it adds a model
/// call to every semantic hit.
public struct JudgeVerifier: HitVerifier {
    public var provider: any CompletionProvider
    public var model: String
    public var instructions: String
    public var name: String

    public static let defaultInstructions = """
        You decide whether a cached answer may be reused. Two questions follow. Reply YES if an answer to the first \
        question fully and correctly answers the second (same intent, same entities, same numbers, same polarity), \
        otherwise NO. Reply with the single word YES or NO.
        """

    public init(provider: any CompletionProvider, model: String, instructions: String = Self.defaultInstructions, name: String = "judge") {
        self.provider = provider
        self.model = model
        self.instructions = instructions
        self.name = name
    }

    /// The request sent to the judge.
    public func request(for candidate: HitCandidate) -> ChatRequest {
        ChatRequest(
            model: self.model,
            messages: [
                .system(self.instructions),
                .user("First question: \(candidate.cachedQuery ?? "")\nSecond question: \(candidate.query)"),
            ],
            temperature: 0, maxTokens: 2
        )
    }

    public func verify(_ candidate: HitCandidate) async throws -> HitVerdict {
        guard candidate.cachedQuery != nil else { return .reject("no stored question to compare") }
        let response = try await self.provider.complete(self.request(for: candidate))
        let reply = (response.text ?? "").lowercased().filter { $0.isLetter }
        if reply.hasPrefix("yes") { return .accept }
        if reply.hasPrefix("no") { return .reject("the judge said no") }
        throw CacheError(.invalidResponse, "the judge replied neither YES nor NO", backend: self.name)
    }
}
