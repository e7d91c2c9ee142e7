public import CacheKit

/// The simplest correct `CacheBackend`: a dictionary under a lock, no eviction. The reference that proves the
/// conformance suite itself, and a handy backend for tests. Not for production (unbounded).
public final class InMemoryCacheBackend: CacheBackend {
    public var capabilities: CacheCapabilities { [.localClearing] }
    public let name: String
    private let clock: any CacheClock
    private let storage = LockedState<[CacheKey: CacheEntry]>([:])

    public init(name: String = "in-memory", clock: any CacheClock = SystemCacheClock()) {
        self.name = name
        self.clock = clock
    }

    public func get(_ key: CacheKey) async throws -> CacheEntry? {
        let now = self.clock.now()
        return self.storage.withLock { storage in
            guard let entry = storage[key] else { return nil }
            guard entry.isUsable(at: now) else {
                storage[key] = nil
                return nil
            }
            return entry
        }
    }

    public func set(_ entry: CacheEntry, for key: CacheKey) async throws {
        self.storage.withLock { $0[key] = entry }
    }

    public func remove(_ key: CacheKey) async throws -> Bool {
        self.storage.withLock { $0.removeValue(forKey: key) != nil }
    }

    public func removeAll(taggedWith tag: String) async throws -> Int {
        self.storage.withLock { storage in
            let keys = storage.filter { $0.value.tags.contains(tag) }.map(\.key)
            for key in keys { storage[key] = nil }
            return keys.count
        }
    }

    public func removeAll(in scope: CacheScope) async throws -> Int {
        self.storage.withLock { storage in
            let keys = storage.keys.filter { $0.scopeID == scope.id }
            for key in keys { storage[key] = nil }
            return keys.count
        }
    }

    public func removeAllLocal() async -> Int {
        self.storage.withLock { storage in
            defer { storage.removeAll() }
            return storage.count
        }
    }

    /// How many entries are stored (expired ones included until read).
    public var count: Int { self.storage.withLock { $0.count } }
}
