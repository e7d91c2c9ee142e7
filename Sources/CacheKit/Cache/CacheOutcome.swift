/// Where an answer came from, and how long finding it took.
public struct CacheOutcome: Sendable, CustomStringConvertible {
    /// The source of an answer.
    public struct Source: Sendable, Hashable, CustomStringConvertible {
        private enum Base: Sendable, Hashable {
            case exact(Int)
            case semantic
            case miss
            case refresh
            case bypass
        }
        private let base: Base

        /// Served from the first exact layer.
        public static let hitL1 = Source(base: .exact(0))
        /// Served from the second exact layer.
        public static let hitL2 = Source(base: .exact(1))
        /// Served from the exact layer at `index` (0 = L1).
        public static func exactHit(layer index: Int) -> Source { Source(base: .exact(index)) }
        /// Served from the semantic layer; the outcome's `similarity` says how close.
        public static let semanticHit = Source(base: .semantic)
        /// Not in the cache: answered upstream (and stored if the policy allows).
        public static let miss = Source(base: .miss)
        /// The request forced a refresh (`no-cache`): answered upstream and stored.
        public static let refresh = Source(base: .refresh)
        /// The policy kept the cache out of it (non-deterministic request): answered upstream, not stored.
        public static let bypass = Source(base: .bypass)

        /// The exact layer index for exact hits.
        public var exactLayerIndex: Int? { if case .exact(let index) = self.base { index } else { nil } }
        /// Whether the answer came from any cache layer.
        public var isHit: Bool {
            switch self.base {
            case .exact, .semantic: true
            default: false
            }
        }

        /// `HIT-L1`, `HIT-L2`, `SEMANTIC-HIT`, `MISS`, `REFRESH`, `BYPASS` (the proxy's `x-cachekit-status`).
        public var description: String {
            switch self.base {
            case .exact(let index): "HIT-L\(index + 1)"
            case .semantic: "SEMANTIC-HIT"
            case .miss: "MISS"
            case .refresh: "REFRESH"
            case .bypass: "BYPASS"
            }
        }
    }

    /// Where the answer came from.
    public var source: Source
    /// The request's exact key (set by `MultiLayerCache`; `cachekit serve` sends it as `x-cachekit-key`).
    public var key: CacheKey?
    /// The layer's name, for hits.
    public var layerName: String?
    /// Cosine similarity of a semantic hit.
    public var similarity: Float?
    /// On a semantic miss, the nearest neighbour's similarity (near-miss diagnostics).
    public var nearestSimilarity: Float?
    /// The score the semantic threshold was compared with: the best candidate's re-ranked score (see
    /// `SemanticRerank`), or its cosine similarity without re-ranking. `nil` when no candidate was found.
    public var semanticScore: Float?
    /// Whether a stale entry was served while a background refresh runs.
    public var isStale: Bool
    /// Whether this call waited on an identical call's upstream request instead of making its own.
    public var coalesced: Bool
    /// Time spent looking in the cache.
    public var lookupLatency: Duration
    /// The served entry's age, for hits.
    public var entryAge: Duration?
    /// Why the policy skipped reading or writing, if it did.
    public var skipReason: CachePolicy.SkipReason?

    public init(
        source: Source,
        layerName: String? = nil,
        similarity: Float? = nil,
        nearestSimilarity: Float? = nil,
        isStale: Bool = false,
        coalesced: Bool = false,
        lookupLatency: Duration = .zero,
        entryAge: Duration? = nil,
        skipReason: CachePolicy.SkipReason? = nil
    ) {
        self.source = source
        self.layerName = layerName
        self.similarity = similarity
        self.nearestSimilarity = nearestSimilarity
        self.isStale = isStale
        self.coalesced = coalesced
        self.lookupLatency = lookupLatency
        self.entryAge = entryAge
        self.skipReason = skipReason
    }

    public var description: String {
        var text = self.source.description
        if let similarity { text += " similarity=\(similarity)" }
        if let semanticScore, semanticScore != self.similarity { text += " score=\(semanticScore)" }
        if self.isStale { text += " stale" }
        if self.coalesced { text += " coalesced" }
        return text
    }
}
