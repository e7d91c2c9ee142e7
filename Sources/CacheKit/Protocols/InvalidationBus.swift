/// What an invalidation removes.
public struct InvalidationTarget: Sendable, Hashable, CustomStringConvertible {
    private enum Base: Sendable, Hashable {
        case key(CacheKey)
        case tag(String)
        case scope(CacheScope)
        case pattern(QueryPattern, CacheScope)
        case everythingLocal
    }
    private let base: Base

    /// One entry.
    public static func key(_ key: CacheKey) -> InvalidationTarget { InvalidationTarget(base: .key(key)) }
    /// Every entry tagged `tag`.
    public static func tag(_ tag: String) -> InvalidationTarget { InvalidationTarget(base: .tag(tag)) }
    /// Every entry of a scope.
    public static func scope(_ scope: CacheScope) -> InvalidationTarget { InvalidationTarget(base: .scope(scope)) }
    /// Every entry of `scope` whose stored query text matches `pattern`. Layers must read every entry of the scope
    /// to find them (O(n)): an administrative operation. A layer that cannot read its entries removes the whole scope (`CacheStore.removeAll(in:where:)`).
    public static func pattern(_ pattern: QueryPattern, in scope: CacheScope) -> InvalidationTarget {
        InvalidationTarget(base: .pattern(pattern, scope))
    }
    /// Every entry of the receiving instance's local (non-shared) layers; sent after a subscriber reconnects,
    /// because it may have missed messages.
    public static let everythingLocal = InvalidationTarget(base: .everythingLocal)

    /// The key, if this targets one entry.
    public var key: CacheKey? { if case .key(let key) = self.base { key } else { nil } }
    /// The tag, if this targets a tag.
    public var tag: String? { if case .tag(let tag) = self.base { tag } else { nil } }
    /// The scope, if this targets a scope.
    public var scope: CacheScope? { if case .scope(let scope) = self.base { scope } else { nil } }
    /// The pattern and its scope, if this targets entries by query text.
    public var pattern: ScopedPattern? {
        if case .pattern(let pattern, let scope) = self.base { ScopedPattern(pattern: pattern, scope: scope) } else { nil }
    }

    /// A query-text pattern and the scope it applies in.
    public struct ScopedPattern: Sendable, Hashable {
        public var pattern: QueryPattern
        public var scope: CacheScope
    }
    /// Whether this targets every local entry.
    public var isEverythingLocal: Bool { self.base == .everythingLocal }

    /// `key`, `tag`, `scope`, `pattern` or `all_local`: a label for logs, metrics and spans.
    public var kind: String {
        switch self.base {
        case .key: "key"
        case .tag: "tag"
        case .scope: "scope"
        case .pattern: "pattern"
        case .everythingLocal: "all_local"
        }
    }

    public var description: String {
        switch self.base {
        case .key(let key): "key \(key)"
        case .tag(let tag): "tag \(tag)"
        case .scope(let scope): "scope \(scope)"
        case .pattern(let pattern, let scope): "pattern \(pattern) in \(scope)"
        case .everythingLocal: "everything local"
        }
    }
}

/// An invalidation that one instance announces to the others.
public struct InvalidationEvent: Sendable, Hashable {
    /// The instance that performed the invalidation (it has already applied it).
    public var origin: String
    /// What to remove.
    public var target: InvalidationTarget

    public init(origin: String, target: InvalidationTarget) {
        self.origin = origin
        self.target = target
    }
}

/// Publish/subscribe of invalidations between instances, so every instance's local layer drops what another
/// instance invalidated. Delivery may be at-most-once (Redis pub/sub): versioned namespaces back it up.
public protocol InvalidationBus: Sendable {
    /// Announces an invalidation to every subscriber, including other instances.
    func publish(_ event: InvalidationEvent) async throws

    /// The events published from now on, until the stream's consumer stops iterating.
    func subscribe() async throws -> AsyncStream<InvalidationEvent>
}
