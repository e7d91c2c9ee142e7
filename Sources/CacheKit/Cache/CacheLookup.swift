/// The result of looking a request up, and what the cache needs to store its answer afterwards.
public struct CacheLookup: Sendable {
    /// The entry found, if any (fresh, or stale inside its window).
    public var entry: CacheEntry?
    /// Where it came from.
    public var outcome: CacheOutcome
    /// The request's exact key.
    public let key: CacheKey
    /// The scope the request was looked up in (after any namespace override).
    public let scope: CacheScope
    /// What the policy allows.
    public let decision: CachePolicy.Decision
    /// The request's controls.
    public let control: CacheControl
    /// The semantic partition, query text and (once computed) its embedding.
    var semantic: SemanticContext?
    /// The query text stored with the answer (the last user message), set on a miss.
    public internal(set) var queryText: String?
    /// On a semantic hit, the key of the entry served.
    var semanticMatchKey: CacheKey?

    struct SemanticContext: Sendable {
        /// The request's partition for the current embedding model's vectors.
        var partition: SemanticPartition
        /// The request's partition before the model is mixed in (`SemanticPartition.embedded(by:)`).
        var basePartition: SemanticPartition
        var text: String
        var vector: [Float]?
    }
}

/// An answer and where it came from.
public struct CachedCompletion: Sendable {
    /// The answer.
    public var response: ChatResponse
    /// Where it came from.
    public var outcome: CacheOutcome
}
