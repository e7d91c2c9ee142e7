/// An exact-match store of cache entries: a key-value store with TTL, tags and scopes.
///
/// Implementations must be safe to call from many tasks at once. A backend keeps an entry until its `staleUntil`
/// and must not return one past it. A backend that stores bytes encodes with `CacheEntryCodec` and throws
/// `CacheError` `.corruptEntry` when stored bytes do not decode; `MultiLayerCache` then counts the entry, deletes
/// it and treats the lookup as a miss.
///
/// Removal, local clearing and background work are `CacheStore` requirements with defaults; a backend that
/// implements one itself declares it in `capabilities`.
///
/// Prove an implementation with `CacheBackendConformance` from `CacheKitTesting`.
public protocol CacheBackend: CacheStore {
    /// The usable entry under `key`, or `nil`.
    func get(_ key: CacheKey) async throws -> CacheEntry?

    /// The usable entries under `keys`, in order (`nil` where there is none). The default calls `get` per key;
    /// remote backends batch (one `MGET`, one query).
    func get(_ keys: [CacheKey]) async throws -> [CacheEntry?]

    /// Stores `entry` under `key` until `entry.staleUntil`, replacing what was there.
    func set(_ entry: CacheEntry, for key: CacheKey) async throws

    /// Stores several entries; the default calls `set` per entry; remote backends pipeline.
    func set(_ entries: [KeyedEntry]) async throws
}

extension CacheBackend {
    public func get(_ keys: [CacheKey]) async throws -> [CacheEntry?] {
        var entries = [CacheEntry?]()
        entries.reserveCapacity(keys.count)
        for key in keys { entries.append(try await self.get(key)) }
        return entries
    }

    public func set(_ entries: [KeyedEntry]) async throws {
        for write in entries { try await self.set(write.entry, for: write.key) }
    }
}

/// An entry and the key it is stored under: one write of a batch (`CacheBackend.set(_:)`).
public struct KeyedEntry: Sendable, Hashable {
    public var key: CacheKey
    public var entry: CacheEntry

    public init(key: CacheKey, entry: CacheEntry) {
        self.key = key
        self.entry = entry
    }
}
