public import ServiceLifecycle

/// What a store of answers can do beyond the operations every store has. A store declares its capabilities in
/// `CacheStore.capabilities`; `CacheBackendConformance` and `SemanticIndexConformance` check each one declared, and
/// `MultiLayerCache` refuses, when it is built, a composition that needs one a store lacks.
public struct CacheCapabilities: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    /// `removeAll(in:where:)` removes exactly the entries the predicate selects (without it, the default removes the
    /// whole scope: more than asked, never less).
    public static let contentRemoval = CacheCapabilities(rawValue: 1 << 0)
    /// `removeAllLocal()` drops everything this process holds (without it, the default throws `.unsupported`).
    public static let localClearing = CacheCapabilities(rawValue: 1 << 1)
    /// `run()` does background work (an expiry sweep, pool maintenance); without it, the default waits for graceful
    /// shutdown and does nothing.
    public static let backgroundWork = CacheCapabilities(rawValue: 1 << 2)

    public var description: String {
        var names: [String] = []
        if self.contains(.contentRemoval) { names.append("contentRemoval") }
        if self.contains(.localClearing) { names.append("localClearing") }
        if self.contains(.backgroundWork) { names.append("backgroundWork") }
        return "[\(names.joined(separator: ", "))]"
    }
}

/// What exact backends (`CacheBackend`) and semantic indexes (`SemanticIndex`) have in common: a name, removal by
/// key, tag, scope and content, local clearing, and background work.
///
/// Every capability is a requirement with a documented default, as Hummingbird's `PersistDriver` refines `Service`
/// and gives `getWithTTL` a default: a wrapper or a third-party store implements or forwards each one, and can never
/// lose one by accident to a failed downcast. A store that overrides a default says so in `capabilities`.
public protocol CacheStore: Service, Sendable {
    /// A short name for logs, metrics and errors (`memory`, `redis`).
    var name: String { get }

    /// The capabilities this store implements itself rather than by the defaults. Default: none.
    var capabilities: CacheCapabilities { get }

    /// Removes the entry under `key`. Returns whether there was one.
    @discardableResult
    func remove(_ key: CacheKey) async throws -> Bool

    /// Removes every entry tagged `tag`, in every scope. Returns how many were removed.
    @discardableResult
    func removeAll(taggedWith tag: String) async throws -> Int

    /// Removes every entry of `scope`. Returns how many were removed.
    @discardableResult
    func removeAll(in scope: CacheScope) async throws -> Int

    /// Removes the entries of `scope` for which `predicate` is true (pattern invalidation by stored query text);
    /// returns how many. It reads every entry of the scope: O(n), an administrative operation, never on the request
    /// path.
    ///
    /// Default: removes the whole scope (`removeAll(in:)`): more than asked, never less, so an invalidation by
    /// pattern never leaves a matching answer behind in a store that cannot read its entries.
    @discardableResult
    func removeAll(in scope: CacheScope, where predicate: @escaping @Sendable (CacheEntry) -> Bool) async throws -> Int

    /// Removes every entry this process holds (sent after an invalidation bus reconnects, because messages may have
    /// been missed; applied to layers that are not shared). Returns how many.
    ///
    /// Default: throws `CacheError` `.unsupported`. A store that is not shared must implement it to be used with an
    /// invalidation bus; `MultiLayerCache` refuses the composition otherwise.
    @discardableResult
    func removeAllLocal() async throws -> Int

    /// The store's background work (expiry sweeps, pool maintenance) until graceful shutdown or cancellation.
    /// `MultiLayerCache.run()` runs it for every layer. Default: waits for graceful shutdown.
    func run() async throws
}

extension CacheStore {
    public var capabilities: CacheCapabilities { [] }

    @discardableResult
    public func removeAll(in scope: CacheScope, where predicate: @escaping @Sendable (CacheEntry) -> Bool) async throws -> Int {
        try await self.removeAll(in: scope)
    }

    @discardableResult
    public func removeAllLocal() async throws -> Int {
        throw CacheError(.unsupported, "\(self.name) cannot drop what this process holds (no removeAllLocal)", backend: self.name)
    }

    public func run() async throws {
        try? await gracefulShutdown()
    }
}

extension InvalidationTarget {
    /// Removes what this target names from `store`: the one place an invalidation becomes store operations.
    /// Returns how many entries or records went.
    public func apply(to store: some CacheStore) async throws -> Int {
        if let key = self.key { return try await store.remove(key) ? 1 : 0 }
        if let target = self.pattern { return try await store.removeAll(in: target.scope) { target.pattern.matches($0) } }
        if let tag = self.tag { return try await store.removeAll(taggedWith: tag) }
        if let scope = self.scope { return try await store.removeAll(in: scope) }
        return try await store.removeAllLocal()
    }
}
