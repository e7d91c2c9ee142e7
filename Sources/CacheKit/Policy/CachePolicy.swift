/// Decides which requests the cache may answer and store.
///
/// By default only deterministic requests are cached: `temperature` explicitly 0 (an absent temperature means the
/// provider default of 1) and `n` at most 1. A request that asks for several samples or for randomness would get
/// the same answer every time from a cache, which is not what it asked for.
public struct CachePolicy: Sendable {
    /// Cache requests that are not deterministic too. Default `false`.
    public var cachesNondeterministicRequests: Bool
    /// Time to live of stored answers when the request gives none. Default 1 hour.
    public var defaultTTL: Duration
    /// Stale window when the request gives none. Default zero (no stale serving).
    public var defaultStaleWhileRevalidate: Duration
    /// The largest response body stored, in bytes. Larger answers are returned but not stored. Default 8 MiB.
    public var maximumValueBytes: Int

    public init(
        cachesNondeterministicRequests: Bool = false,
        defaultTTL: Duration = .seconds(3600),
        defaultStaleWhileRevalidate: Duration = .zero,
        maximumValueBytes: Int = 8 << 20
    ) {
        self.cachesNondeterministicRequests = cachesNondeterministicRequests
        self.defaultTTL = defaultTTL
        self.defaultStaleWhileRevalidate = defaultStaleWhileRevalidate
        self.maximumValueBytes = maximumValueBytes
    }

    /// What the cache may do with one request.
    public struct Decision: Sendable, Hashable {
        /// Whether a cached answer may be served.
        public var read: Bool
        /// Whether the upstream answer may be stored.
        public var write: Bool
        /// Why reading or writing is off, if it is.
        public var skipReason: SkipReason?
    }

    /// Why the cache skipped a request.
    public struct SkipReason: Sendable, Hashable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// `temperature` absent or non-zero, or `n` above 1.
        public static let nondeterministic = SkipReason("nondeterministic")
        /// The request said `no-store`.
        public static let noStore = SkipReason("no_store")
        /// The request said `no-cache` (force refresh).
        public static let noCache = SkipReason("no_cache")

        public var description: String { self.name }
    }

    /// Whether `request` is deterministic: explicit `temperature: 0` and `n` ≤ 1.
    public func isDeterministic(_ request: ChatRequest) -> Bool {
        guard request.temperature == 0 else { return false }
        if let n = request.body["n"], !n.isNull { return (n.doubleValue ?? 2) <= 1 }
        return true
    }

    /// The decision for `request` under `control`.
    public func decision(for request: ChatRequest, control: CacheControl) -> Decision {
        if !self.cachesNondeterministicRequests, !self.isDeterministic(request) {
            return Decision(read: false, write: false, skipReason: .nondeterministic)
        }
        if control.noStore { return Decision(read: !control.noCache, write: false, skipReason: .noStore) }
        if control.noCache { return Decision(read: false, write: true, skipReason: .noCache) }
        return Decision(read: true, write: true, skipReason: nil)
    }
}

/// What happens when a layer fails or times out.
public struct FailurePolicy: Sendable, Hashable, CustomStringConvertible {
    private enum Base: Sendable, Hashable { case treatAsMiss, propagate }
    private let base: Base

    /// A failing layer is a miss (reads) or skipped (writes); the error is logged and counted. The default.
    public static let treatAsMiss = FailurePolicy(base: .treatAsMiss)
    /// A failing layer's error is thrown to the caller.
    public static let propagate = FailurePolicy(base: .propagate)

    public var description: String { self.base == .treatAsMiss ? "treatAsMiss" : "propagate" }
}
