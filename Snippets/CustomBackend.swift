//! The smallest correct backend, and the factory that makes it a layer. Prove yours with CacheKitTesting.
import CacheKit
import Synchronization

final class DictionaryBackend: CacheBackend {
    let name = "dictionary"
    private let clock: any CacheClock
    private let entries = Mutex<[CacheKey: (scope: Digest256, bytes: [UInt8], staleUntil: CacheTime, tags: [String])]>([:])

    init(clock: any CacheClock = SystemCacheClock()) { self.clock = clock }

    func get(_ key: CacheKey) async throws -> CacheEntry? {
        guard let row = self.entries.withLock({ $0[key] }), self.clock.now() < row.staleUntil else { return nil }
        return try CacheEntryCodec.decode(row.bytes)  // .corruptEntry when the bytes are damaged
    }

    func set(_ entry: CacheEntry, for key: CacheKey) async throws {
        let row = (scope: key.scopeID, bytes: CacheEntryCodec.encode(entry), staleUntil: entry.staleUntil, tags: entry.tags)
        self.entries.withLock { $0[key] = row }
    }

    func remove(_ key: CacheKey) async throws -> Bool { self.entries.withLock { $0.removeValue(forKey: key) != nil } }

    func removeAll(taggedWith tag: String) async throws -> Int {
        self.entries.withLock { entries in
            let keys = entries.filter { $0.value.tags.contains(tag) }.map(\.key)
            for key in keys { entries[key] = nil }
            return keys.count
        }
    }

    func removeAll(in scope: CacheScope) async throws -> Int {
        self.entries.withLock { entries in
            let keys = entries.filter { $0.value.scope == scope.id }.map(\.key)
            for key in keys { entries[key] = nil }
            return keys.count
        }
    }
}

extension CacheLayer {
    /// `configuration.layers = [.memory(), .dictionary()]`
    static func dictionary() -> CacheLayer { CacheLayer(backend: DictionaryBackend(), options: .init(isShared: false)) }
}
