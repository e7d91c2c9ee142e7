import CacheKit
import Foundation
import GRDB
import ServiceLifecycle

/// A `CacheBackend` that keeps entries in a SQLite file (through GRDB): a persistent cache for one machine that
/// survives restarts, or a layer for tools that have no Redis.
///
/// Entries are stored as `CacheEntryCodec` bytes (checksummed: a damaged row reads as `.corruptEntry`, which
/// `MultiLayerCache` counts, deletes and treats as a miss). Every value is a bound parameter; no user data is ever
/// part of the SQL text. Expired rows are never returned and are purged by `run()` every `purgeInterval`.
public final class SQLiteCacheBackend: CacheBackend {
    /// It purges expired rows in `run()`; pattern removal and local clearing use `CacheStore`'s defaults (the whole
    /// scope; refused).
    public var capabilities: CacheCapabilities { [.backgroundWork] }
    public let name: String
    private let database: DatabaseQueue
    private let clock: any CacheClock
    private let purgeInterval: Duration

    /// Opens (creating if needed) the cache database at `path`; `":memory:"` for a private in-memory database.
    ///
    /// - Throws: GRDB's error when the file cannot be opened or the schema cannot be created.
    public init(
        path: String, name: String = "sqlite", clock: any CacheClock = SystemCacheClock(), purgeInterval: Duration = .seconds(60)
    ) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA journal_mode = WAL") }
        self.database = path == ":memory:" ? try DatabaseQueue(configuration: configuration) : try DatabaseQueue(path: path, configuration: configuration)
        self.name = name
        self.clock = clock
        self.purgeInterval = purgeInterval
        try self.database.write { db in
            try db.execute(sql: """
                CREATE TABLE IF NOT EXISTS cachekit_entries (
                    digest BLOB PRIMARY KEY NOT NULL, scope BLOB NOT NULL, stale_until INTEGER NOT NULL, entry BLOB NOT NULL
                ) WITHOUT ROWID;
                CREATE INDEX IF NOT EXISTS cachekit_entries_scope ON cachekit_entries(scope);
                CREATE INDEX IF NOT EXISTS cachekit_entries_stale_until ON cachekit_entries(stale_until);
                CREATE TABLE IF NOT EXISTS cachekit_tags (
                    tag TEXT NOT NULL, digest BLOB NOT NULL, PRIMARY KEY (tag, digest)
                ) WITHOUT ROWID;
                CREATE INDEX IF NOT EXISTS cachekit_tags_digest ON cachekit_tags(digest);
                """)
        }
    }

    public func get(_ key: CacheKey) async throws -> CacheEntry? {
        let now = self.clock.now().millisecondsSinceEpoch
        let digest = Data(key.digest.bytes)
        let stored = try await self.database.read { db in
            try Data.fetchOne(db, sql: "SELECT entry FROM cachekit_entries WHERE digest = ? AND stale_until > ?", arguments: [digest, now])
        }
        guard let stored else { return nil }
        let entry = try CacheEntryCodec.decode(Array(stored))  // throws .corruptEntry for damaged bytes
        return entry.isUsable(at: self.clock.now()) ? entry : nil
    }

    public func set(_ entry: CacheEntry, for key: CacheKey) async throws {
        try await self.set([KeyedEntry(key: key, entry: entry)])
    }

    /// Writes every entry in one transaction.
    public func set(_ entries: [KeyedEntry]) async throws {
        let rows = entries.map { (Data($0.key.digest.bytes), Data($0.key.scopeID.bytes), $0.entry.staleUntil.millisecondsSinceEpoch, Data(CacheEntryCodec.encode($0.entry)), $0.entry.tags) }
        try await self.database.write { db in
            for (digest, scope, staleUntil, bytes, tags) in rows {
                try db.execute(
                    sql: """
                        INSERT INTO cachekit_entries (digest, scope, stale_until, entry) VALUES (?, ?, ?, ?)
                        ON CONFLICT (digest) DO UPDATE SET scope = excluded.scope, stale_until = excluded.stale_until, entry = excluded.entry
                        """,
                    arguments: [digest, scope, staleUntil, bytes]
                )
                try db.execute(sql: "DELETE FROM cachekit_tags WHERE digest = ?", arguments: [digest])
                for tag in Set(tags) {
                    try db.execute(sql: "INSERT INTO cachekit_tags (tag, digest) VALUES (?, ?)", arguments: [tag, digest])
                }
            }
        }
    }

    @discardableResult
    public func remove(_ key: CacheKey) async throws -> Bool {
        let digest = Data(key.digest.bytes)
        return try await self.database.write { db in
            try db.execute(sql: "DELETE FROM cachekit_tags WHERE digest = ?", arguments: [digest])
            try db.execute(sql: "DELETE FROM cachekit_entries WHERE digest = ?", arguments: [digest])
            return db.changesCount > 0
        }
    }

    @discardableResult
    public func removeAll(taggedWith tag: String) async throws -> Int {
        try await self.database.write { db in
            try db.execute(
                sql: "DELETE FROM cachekit_entries WHERE digest IN (SELECT digest FROM cachekit_tags WHERE tag = ?)", arguments: [tag])
            let removed = db.changesCount
            try db.execute(sql: "DELETE FROM cachekit_tags WHERE digest NOT IN (SELECT digest FROM cachekit_entries)")
            return removed
        }
    }

    @discardableResult
    public func removeAll(in scope: CacheScope) async throws -> Int {
        let scopeID = Data(scope.id.bytes)
        return try await self.database.write { db in
            try db.execute(
                sql: "DELETE FROM cachekit_tags WHERE digest IN (SELECT digest FROM cachekit_entries WHERE scope = ?)", arguments: [scopeID])
            try db.execute(sql: "DELETE FROM cachekit_entries WHERE scope = ?", arguments: [scopeID])
            return db.changesCount
        }
    }

    /// Deletes rows past their stale window; returns how many.
    @discardableResult
    public func purgeExpired() async throws -> Int {
        let now = self.clock.now().millisecondsSinceEpoch
        return try await self.database.write { db in
            try db.execute(
                sql: "DELETE FROM cachekit_tags WHERE digest IN (SELECT digest FROM cachekit_entries WHERE stale_until <= ?)", arguments: [now])
            try db.execute(sql: "DELETE FROM cachekit_entries WHERE stale_until <= ?", arguments: [now])
            return db.changesCount
        }
    }

    /// Purges expired rows every `purgeInterval` until graceful shutdown or cancellation (the `backgroundWork`
    /// capability it declares).
    public func run() async throws {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: self.purgeInterval) }
            } catch {
                return
            }
            _ = try? await self.purgeExpired()
        }
    }

    /// The number of rows, expired ones included until purged.
    public func count() async throws -> Int {
        try await self.database.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM cachekit_entries") ?? 0 }
    }
}
