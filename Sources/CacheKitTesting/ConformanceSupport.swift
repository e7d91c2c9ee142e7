import CacheKit

/// A small seeded random generator (SplitMix64), so conformance runs are reproducible.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { self.state = seed }

    public mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

enum Fixtures {
    static func randomID() -> String {
        var generator = SystemRandomNumberGenerator()
        return String(UInt64.random(in: 0...UInt64.max, using: &generator), radix: 36)
    }

    static func scope(_ label: String) -> CacheScope {
        CacheScope(tenant: "conformance-\(label)-\(randomID())", namespace: "ns", version: "1")
    }

    static func key(_ text: String, in scope: CacheScope) -> CacheKey {
        RequestKeyer().key(for: ChatRequest(model: "gpt-4o-mini", messages: [.user(text)], temperature: 0), in: scope)
    }

    static func entry(
        _ text: String,
        now: CacheTime,
        ttl: Duration = .seconds(3600),
        stale: Duration = .zero,
        tags: [String] = []
    ) -> CacheEntry {
        CacheEntry(
            value: Array("{\"answer\":\"\(text)\"}".utf8),
            createdAt: now,
            expiresAt: now + ttl,
            staleUntil: now + ttl + stale,
            tags: tags,
            usage: TokenUsage(promptTokens: 12, completionTokens: 34, cachedPromptTokens: 2, reasoningTokens: 1),
            model: "gpt-4o-mini",
            cost: 0.000123,
            queryText: text,
            embeddingModel: "test-embedder"
        )
    }

    static func unitVector(dimension: Int, using generator: inout SeededGenerator) -> [Float] {
        var vector = (0..<dimension).map { _ in Float.random(in: -1...1, using: &generator) }
        let norm = vector.reduce(0) { $0 + $1 * $1 }.squareRoot()
        vector = vector.map { $0 / norm }
        return vector
    }

    /// A unit vector whose cosine similarity to `base` is about `similarity`.
    static func vector(near base: [Float], similarity: Float, using generator: inout SeededGenerator) -> [Float] {
        var noise = unitVector(dimension: base.count, using: &generator)
        let projection = zip(noise, base).reduce(0) { $0 + $1.0 * $1.1 }
        noise = zip(noise, base).map { $0 - projection * $1 }
        let noiseNorm = noise.reduce(0) { $0 + $1 * $1 }.squareRoot()
        let orthogonal = noise.map { $0 / noiseNorm }
        let sine = (1 - similarity * similarity).squareRoot()
        return zip(base, orthogonal).map { similarity * $0 + sine * $1 }
    }
}
