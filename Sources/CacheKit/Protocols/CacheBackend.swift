/// An exact-match store of cache entries: a key-value store with TTL, tags and scopes.
///
/// Implementations must be safe to call from many tasks at once. A backend keeps an entry until its `staleUntil`
/// and must not return one past it. A backend that stores bytes encodes with `CacheEntryCodec` and throws
/// `CacheError` `.corruptEntry` when stored bytes do not decode; `MultiLayerCache` then counts the entry, deletes
/// it and treats the lookup as a miss.
///
/// A backend with background work (a connection pool, an expiry sweep) also conforms to `Service` from
/// swift-service-lifecycle; `MultiLayerCache.run()` runs the services of its layers.
///
/// Prove an implementation with `CacheBackendConformance` from `CacheKitTesting`.
public protocol CacheBackend: Sendable {
    /// A short name for logs, metrics and errors (`memory`, `redis`).
    var name: String { get }

    /// The usable entry under `key`, or `nil`.
    func get(_ key: CacheKey) async throws -> CacheEntry?

    /// The usable entries under `keys`, in order (`nil` where there is none). The default calls `get` per key;
    /// remote backends batch (one `MGET`, one query).
    func get(_ keys: [CacheKey]) async throws -> [CacheEntry?]

    /// Stores `entry` under `key` until `entry.staleUntil`, replacing what was there.
    func set(_ entry: CacheEntry, for key: CacheKey) async throws

    /// Stores several entries; the default calls `set` per entry; remote backends pipeline.
    func set(_ entries: [(key: CacheKey, entry: CacheEntry)]) async throws

    /// Removes the entry under `key`. Returns whether there was one.
    @discardableResult
    func remove(_ key: CacheKey) async throws -> Bool

    /// Removes every entry tagged `tag`, in every scope. Returns how many were removed.
    @discardableResult
    func removeAll(taggedWith tag: String) async throws -> Int

    /// Removes every entry of `scope`. Returns how many were removed.
    @discardableResult
    func removeAll(in scope: CacheScope) async throws -> Int
}

extension CacheBackend {
    public func get(_ keys: [CacheKey]) async throws -> [CacheEntry?] {
        var entries = [CacheEntry?]()
        entries.reserveCapacity(keys.count)
        for key in keys { entries.append(try await self.get(key)) }
        return entries
    }

    public func set(_ entries: [(key: CacheKey, entry: CacheEntry)]) async throws {
        for (key, entry) in entries { try await self.set(entry, for: key) }
    }
}
