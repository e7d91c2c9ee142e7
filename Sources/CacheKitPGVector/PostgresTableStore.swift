public import CacheKit

/// A CacheKit table in PostgreSQL: what `PostgresCacheBackend` (`<prefix>_entries`) and `PGVectorSemanticIndex`
/// (`<prefix>_vectors_<dimension>`) share. Both keep one row per entry with its key, scope, tags and `stale_until`, so
/// removal by key, tag, scope and content, and the purge of expired rows, are the same statements on either table,
/// written once here. Every value is a bound parameter; the table name is CacheKit's own identifier.
public protocol PostgresTableStore: CacheStore {
    /// The client the table is reached through.
    var client: PostgresClient { get }
    /// The table's name.
    var table: String { get }
    /// The clock expiry is measured by.
    var clock: any CacheClock { get }
    /// Applies the table's schema migrations (once per process; later calls return at once).
    func migrate() async throws
}

extension PostgresTableStore {
    public func remove(_ key: CacheKey) async throws -> Bool {
        try await self.migrate()
        return try await self.client.remove(key: key, from: self.table) > 0
    }

    public func removeAll(taggedWith tag: String) async throws -> Int {
        try await self.migrate()
        return try await self.client.remove(taggedWith: tag, from: self.table)
    }

    public func removeAll(in scope: CacheScope) async throws -> Int {
        try await self.migrate()
        return try await self.client.remove(scope: scope, from: self.table)
    }

    /// Reads the scope's rows and deletes those `predicate` selects: O(n) (see `CacheStore.removeAll(in:where:)`).
    public func removeAll(in scope: CacheScope, where predicate: @escaping @Sendable (CacheEntry) -> Bool) async throws -> Int {
        try await self.migrate()
        return try await self.client.remove(scope: scope, from: self.table, where: predicate)
    }

    /// Deletes expired rows now (from the table and its indexes); returns how many.
    @discardableResult
    public func purgeExpired() async throws -> Int {
        try await self.migrate()
        return try await self.client.purge(table: self.table, now: self.clock.now())
    }

    /// Pool figures of the client.
    public var poolCounters: ConnectionPoolCounters { self.client.poolCounters }

    /// Runs a statement after the migrations.
    func execute(_ name: String, _ sql: String, _ parameters: [PostgresParameter]) async throws -> PostgresRows {
        try await self.migrate()
        return try await self.client.execute(name, sql, parameters)
    }
}
