public import CacheKit

/// Wraps a backend and records every operation (each `CacheStore` capability is forwarded, so the wrapped backend
/// keeps them all), for tests that check what the cache did to a layer.
public final class RecordingCacheBackend: CacheBackend {
    /// One recorded operation.
    public struct Operation: Sendable, Hashable, CustomStringConvertible {
        public var name: String
        public var key: CacheKey?
        public var tag: String?
        public var description: String { self.name }
    }

    public let base: any CacheBackend
    private let log = LockedState<[Operation]>([])

    public init(_ base: any CacheBackend) { self.base = base }

    public var name: String { self.base.name }

    /// The operations so far, oldest first.
    public var operations: [Operation] { self.log.withLock { $0 } }

    /// How many operations named `name` (`get`, `set`, `remove`, `removeTag`, `removeScope`, `removeWhere`, `removeAllLocal`, `run`) were recorded.
    public func count(_ name: String) -> Int { self.log.withLock { $0.filter { $0.name == name }.count } }

    /// Forgets the recorded operations.
    public func reset() { self.log.withLock { $0.removeAll() } }

    private func record(_ name: String, key: CacheKey? = nil, tag: String? = nil) {
        self.log.withLock { $0.append(Operation(name: name, key: key, tag: tag)) }
    }

    public func get(_ key: CacheKey) async throws -> CacheEntry? {
        self.record("get", key: key)
        return try await self.base.get(key)
    }

    public func set(_ entry: CacheEntry, for key: CacheKey) async throws {
        self.record("set", key: key)
        try await self.base.set(entry, for: key)
    }

    public func remove(_ key: CacheKey) async throws -> Bool {
        self.record("remove", key: key)
        return try await self.base.remove(key)
    }

    public func removeAll(taggedWith tag: String) async throws -> Int {
        self.record("removeTag", tag: tag)
        return try await self.base.removeAll(taggedWith: tag)
    }

    public func removeAll(in scope: CacheScope) async throws -> Int {
        self.record("removeScope")
        return try await self.base.removeAll(in: scope)
    }

    public func removeAll(in scope: CacheScope, where predicate: @escaping @Sendable (CacheEntry) -> Bool) async throws -> Int {
        self.record("removeWhere")
        return try await self.base.removeAll(in: scope, where: predicate)
    }

    public func removeAllLocal() async throws -> Int {
        self.record("removeAllLocal")
        return try await self.base.removeAllLocal()
    }

    public func get(_ keys: [CacheKey]) async throws -> [CacheEntry?] {
        for key in keys { self.record("get", key: key) }
        return try await self.base.get(keys)
    }

    public func set(_ entries: [KeyedEntry]) async throws {
        for write in entries { self.record("set", key: write.key) }
        try await self.base.set(entries)
    }

    /// The wrapped backend's capabilities.
    public var capabilities: CacheCapabilities { self.base.capabilities }

    /// Runs the wrapped backend's background work.
    public func run() async throws {
        self.record("run")
        try await self.base.run()
    }
}
