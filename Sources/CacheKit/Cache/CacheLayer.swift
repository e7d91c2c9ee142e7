/// One exact-match layer of a `MultiLayerCache`: a backend and how the cache uses it.
///
/// Backend modules add factories in extensions (`.memory(...)` in CacheKitMemory, `.redis(...)` in CacheKitRedis);
/// third-party backends use `init(backend:options:)` the same way.
public struct CacheLayer: Sendable {
    /// How the cache uses a layer.
    public struct Options: Sendable {
        /// The longest an entry lives in this layer; an entry lives for the smaller of its own TTL and this.
        /// `nil` = no ceiling. Typically short for memory, long for shared layers.
        public var ttlCeiling: Duration?
        /// A time limit per operation; past it the operation counts as a failure. `nil` = none (memory layers).
        public var timeout: Duration?
        /// Whether other instances share this layer (Redis, PostgreSQL). Invalidations from other instances are
        /// applied to the layers that are not shared.
        public var isShared: Bool

        public init(ttlCeiling: Duration? = nil, timeout: Duration? = nil, isShared: Bool = false) {
            self.ttlCeiling = ttlCeiling
            self.timeout = timeout
            self.isShared = isShared
        }
    }

    /// The backend.
    public var backend: any CacheBackend
    /// How the cache uses it.
    public var options: Options
    /// The layer's name in statistics (defaults to the backend's name).
    public var name: String

    /// Creates a layer.
    public init(backend: any CacheBackend, options: Options = Options(), name: String? = nil) {
        self.backend = backend
        self.options = options
        self.name = name ?? backend.name
    }
}

/// The semantic layer of a `MultiLayerCache`: an index, the embedding model, and the match threshold.
public struct SemanticLayer: Sendable {
    /// The nearest-neighbour index.
    public var index: any SemanticIndex
    /// The embedding model; its dimension must equal the index's.
    public var embedder: any EmbeddingProvider
    /// The lowest score served as a hit: the cosine similarity, or with `rerank` the re-ranked score. Default 0.9;
    /// calibrate it for your model and data with `ThresholdCalibrator` (`cachekit calibrate`).
    public var threshold: Float
    /// Per-namespace thresholds that override `threshold`.
    public var namespaceThresholds: [String: Float]
    /// How far below the threshold a nearest neighbour is still reported as a near miss. Default 0.1.
    public var nearMissMargin: Float
    /// The longest an entry lives in the index. `nil` = no ceiling.
    public var ttlCeiling: Duration?
    /// A time limit per index or embedding operation. `nil` = none.
    public var timeout: Duration?
    /// Re-ranking of the nearest neighbours by word overlap (see `SemanticRerank`); the threshold then applies to
    /// the re-ranked score. Default on (5 candidates, weight 0.2); `nil` serves the nearest neighbour by cosine alone.
    public var rerank: SemanticRerank?
    /// Refuse a semantic match whose stored question differs from the query in its numbers, a negation, an
    /// opposite operation or direction, an entity or its language (see `SemanticGuards`). Default: every guard.
    public var guards: SemanticGuards
    /// Serve a semantic match only when its stored question has the same numbers as the query ("price of product
    /// 123" never answers "price of product 456", however close their embeddings): the `numbers` guard. Default true.
    public var numbersMustMatch: Bool {
        get { self.guards.enabled.contains(.numbers) }
        set { if newValue { self.guards.enabled.insert(.numbers) } else { self.guards.enabled.remove(.numbers) } }
    }
    /// The longest query text (the last user message) that is embedded, in UTF-8 bytes. A longer message is looked
    /// up and stored exactly only, as is one past the model's window (`EmbeddingProvider.readsWhole`; 256 tokens,
    /// about 1,000 characters, for all-MiniLM-L6-v2), which would otherwise match on its first part alone.
    /// Default 4,096.
    public var maximumQueryBytes: Int = 4096
    /// Verifiers a candidate must also pass on the request path, after the guards, in order (see `HitVerifier`). A
    /// rejection, an error or a timeout makes the lookup a miss. Default: none.
    public var verifiers: [any HitVerifier] = []
    /// The time each verifier on the request path may take. Default 200 ms.
    public var verifierTimeout: Duration = .milliseconds(200)
    /// Near-threshold candidates verified off the request path. Default: off.
    public var promotion: Promotion?
    /// The online audit of semantic hits (see `Audit`). Default: off.
    public var audit: Audit?
    /// What the semantic layer does with the vectors of an earlier embedding model. Default `.startEmpty`.
    public var modelChange: ModelChange = .startEmpty
    /// Whether other instances share the index (pgvector). Another instance's invalidation is applied to an index
    /// that is not shared (a memory index), as to the exact layers that are not. Default: false.
    public var isShared: Bool = false

    public init(
        index: any SemanticIndex,
        embedder: any EmbeddingProvider,
        threshold: Float = 0.9,
        namespaceThresholds: [String: Float] = [:],
        nearMissMargin: Float = 0.1,
        ttlCeiling: Duration? = nil,
        timeout: Duration? = nil,
        rerank: SemanticRerank? = SemanticRerank(),
        numbersMustMatch: Bool = true,
        guards: SemanticGuards = .all
    ) {
        self.rerank = rerank
        self.guards = guards
        if !numbersMustMatch { self.guards.enabled.remove(.numbers) }
        self.index = index
        self.embedder = embedder
        self.threshold = threshold
        self.namespaceThresholds = namespaceThresholds
        self.nearMissMargin = nearMissMargin
        self.ttlCeiling = ttlCeiling
        self.timeout = timeout
    }

    /// Grey-zone promotion: a lookup whose best candidate scores just below the threshold (within `margin`) is a miss
    /// as usual, and in the background, once the guards pass it, `verifier` is asked; an accepted candidate's
    /// answer is written under the query's exact key, so the same wording asked again is an exact hit. Never on the
    /// request path; bounded like background refreshes (`CacheConfiguration.maximumBackgroundRefreshes`).
    public struct Promotion: Sendable {
        public var verifier: any HitVerifier
        /// How far below the threshold a candidate is still verified. Default 0.05.
        public var margin: Float
        /// The time the verifier may take. Default 30 s.
        public var timeout: Duration

        public init(verifier: any HitVerifier, margin: Float = 0.05, timeout: Duration = .seconds(30)) {
            self.verifier = verifier
            self.margin = max(0, margin)
            self.timeout = timeout
        }
    }

    /// What the semantic layer does with the vectors of an earlier embedding model after `embedder` changes.
    ///
    /// Entries record the model that embedded them (`CacheEntry.embeddingModel`) and each model's vectors live in a
    /// partition of their own, so vectors of two models are never compared, even at the same dimension.
    public struct ModelChange: Sendable {
        /// The earlier model, while its entries are being re-embedded.
        public let previous: (any EmbeddingProvider)?

        /// The new model starts with an empty semantic layer; the earlier model's records age out by their TTL.
        public static let startEmpty = ModelChange(previous: nil)

        /// Entries of `previous` stay reachable: on a miss under the new model, the query is also embedded by
        /// `previous` and searched among its records; a hit there is served and its stored question re-embedded by the
        /// new model in the background, so each entry moves over the first time it is asked for. Costs a second
        /// embedding per semantic miss while set; remove it once the old records have aged out. `previous` must make
        /// vectors of the index's dimension.
        public static func reembed(from previous: any EmbeddingProvider) -> ModelChange { ModelChange(previous: previous) }
    }

    /// The threshold for `namespace`.
    public func threshold(for namespace: String) -> Float { self.namespaceThresholds[namespace] ?? self.threshold }
}
