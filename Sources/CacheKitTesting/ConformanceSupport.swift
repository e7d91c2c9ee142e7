import CacheKit
import Testing

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

/// The checks of the `CacheStore` capabilities, shared by both conformance suites: `put` stores an answer to a
/// question in a scope and returns its key, `isPresent` says whether the store still serves it.
struct CapabilityChecks: Sendable {
    var store: any CacheStore
    var put: @Sendable (_ question: String, _ scope: CacheScope) async throws -> CacheKey
    var isPresent: @Sendable (CacheKey) async throws -> Bool

    /// `removeAll(in:where:)` never leaves a selected entry nor touches another scope; a store declaring
    /// `.contentRemoval` removes exactly the selected entries.
    func contentRemoval() async throws {
        let scope = Fixtures.scope("content")
        let other = Fixtures.scope("content-other")
        let selected = [try await self.put("refund policy for plan A", scope), try await self.put("refund policy for plan B", scope)]
        let kept = try await self.put("shipping times", scope)
        let elsewhere = try await self.put("refund policy elsewhere", other)
        let pattern = QueryPattern("refund*")
        let removed = try await self.store.removeAll(in: scope) { pattern.matches($0) }
        for key in selected { #expect(try await !self.isPresent(key), "removeAll(in:where:) left a selected entry") }
        #expect(try await self.isPresent(elsewhere), "removeAll(in:where:) removed an entry of another scope")
        if self.store.capabilities.contains(.contentRemoval) {
            #expect(removed == 2, "removeAll(in:where:) reported \(removed), expected 2")
            #expect(try await self.isPresent(kept), "a store declaring .contentRemoval removed an entry the predicate did not select")
        }
    }

    /// A store declaring `.localClearing` drops every entry it holds, in every scope.
    func localClearing() async throws {
        guard self.store.capabilities.contains(.localClearing) else {
            // The default refuses rather than pretending: a caller must never believe a clear happened.
            do {
                _ = try await self.store.removeAllLocal()
            } catch let error as CacheError {
                #expect(error.code == .unsupported, "removeAllLocal() without .localClearing failed with \(error)")
            }
            return
        }
        let keys = [try await self.put("first", Fixtures.scope("clear-a")), try await self.put("second", Fixtures.scope("clear-b"))]
        let removed = try await self.store.removeAllLocal()
        #expect(removed >= 2, "removeAllLocal() reported \(removed), expected at least 2")
        for key in keys { #expect(try await !self.isPresent(key), "removeAllLocal() left an entry") }
    }

    /// `run()` (the store's background work, or the default) ends when its task is cancelled.
    func backgroundWork() async throws {
        let store = self.store
        let run = Task { try await store.run() }
        try await Task.sleep(for: .milliseconds(50))
        run.cancel()
        let ended = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                _ = await run.result
                return true
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(10))
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        #expect(ended, "\(store.name).run() did not end within 10 s of its task being cancelled")
    }
}
