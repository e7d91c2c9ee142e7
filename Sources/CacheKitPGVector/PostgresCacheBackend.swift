public import CacheKit
public import Logging
import ServiceLifecycle

/// Exact entries in PostgreSQL, for teams that keep everything there.
///
/// Table `<prefix>_entries(key bytea PRIMARY KEY, scope_id bytea, payload bytea, created_at, expires_at,
/// stale_until bigint, tags text[])` with indexes on scope, tags (GIN) and `stale_until`. Values are
/// `CacheEntryCodec` bytes. Every value is a bound parameter of a prepared statement. `run()` purges expired rows
/// in batches. Cancellation: a cancelled caller returns at once; the running statement is cancelled with `PQcancel`
/// and its connection is destroyed.
public final class PostgresCacheBackend: CacheBackend, PostgresTableStore {
    public var capabilities: CacheCapabilities { [.contentRemoval, .backgroundWork] }
    /// The client the backend talks through (shared with the semantic index, or its own).
    public let client: PostgresClient
    public var configuration: PostgresClient.Configuration { self.client.configuration }
    public var name: String { self.configuration.name }
    public let clock: any CacheClock
    public let table: String

    /// A backend on a shared client, in the table `<tablePrefix>_entries` (created on first use).
    public init(client: PostgresClient, clock: any CacheClock = SystemCacheClock()) {
        self.client = client
        self.clock = clock
        self.table = "\(client.configuration.tablePrefix)_entries"
    }

    /// A convenience: a backend with a client of its own. Prefer one shared `PostgresClient` when the semantic index
    /// lives on the same server.
    public convenience init(configuration: PostgresClient.Configuration, clock: any CacheClock = SystemCacheClock(), logger: Logger = Logger(label: "cachekit.postgres")) {
        self.init(client: PostgresClient(configuration: configuration, logger: logger), clock: clock)
    }

    var migrations: [PostgresClient.Migration] {
        let t = self.table
        return [
            .init(name: "\(t)_v1", statements: [
                """
                CREATE TABLE IF NOT EXISTS \(t) (key bytea PRIMARY KEY, scope_id bytea NOT NULL, payload bytea NOT NULL,
                  created_at bigint NOT NULL, expires_at bigint NOT NULL, stale_until bigint NOT NULL,
                  tags text[] NOT NULL DEFAULT '{}')
                """,
                "CREATE INDEX IF NOT EXISTS \(t)_scope ON \(t) (scope_id)",
                "CREATE INDEX IF NOT EXISTS \(t)_tags ON \(t) USING gin (tags)",
                "CREATE INDEX IF NOT EXISTS \(t)_stale ON \(t) (stale_until)",
            ])
        ]
    }

    /// Applies the schema migrations now (otherwise the first operation does).
    public func migrate() async throws { try await self.client.migrate(self.migrations) }


    public func get(_ key: CacheKey) async throws -> CacheEntry? {
        let rows = try await self.execute(
            "ck_get_\(self.table)", "SELECT payload FROM \(self.table) WHERE key = $1 AND stale_until > $2::bigint",
            [PostgresClient.digest(key.digest), .text(String(self.clock.now().millisecondsSinceEpoch))]
        )
        guard let payload = rows.rows.first?[0] else { return nil }
        do {
            return try CacheEntryCodec.decode(payload)
        } catch {
            throw CacheError(error.code, error.message, backend: self.name)
        }
    }

    public func set(_ entry: CacheEntry, for key: CacheKey) async throws {
        _ = try await self.execute(
            "ck_set_\(self.table)",
            """
            INSERT INTO \(self.table) (key, scope_id, payload, created_at, expires_at, stale_until, tags)
            VALUES ($1, $2, $3, $4::bigint, $5::bigint, $6::bigint, ARRAY(SELECT jsonb_array_elements_text($7::jsonb)))
            ON CONFLICT (key) DO UPDATE SET scope_id = EXCLUDED.scope_id, payload = EXCLUDED.payload,
              created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at, stale_until = EXCLUDED.stale_until,
              tags = EXCLUDED.tags
            """,
            [
                PostgresClient.digest(key.digest), PostgresClient.digest(key.scopeID), .binary(CacheEntryCodec.encode(entry)),
                .text(String(entry.createdAt.millisecondsSinceEpoch)), .text(String(entry.expiresAt.millisecondsSinceEpoch)),
                .text(String(entry.staleUntil.millisecondsSinceEpoch)), PostgresClient.tagsParameter(entry.tags),
            ]
        )
    }






    /// Runs the client (health checks, closing the pool at shutdown) and purges expired rows every `purgeInterval`,
    /// until graceful shutdown.
    public func run() async throws {
        try await self.client.maintain { try await self.purgeExpired() }
    }

}

extension CacheLayer {
    /// A PostgreSQL exact layer (shared by every instance) on a shared client.
    public static func postgres(client: PostgresClient, ttlCeiling: Duration? = nil, timeout: Duration? = nil) -> CacheLayer {
        CacheLayer(backend: PostgresCacheBackend(client: client), options: .init(ttlCeiling: ttlCeiling, timeout: timeout, isShared: true))
    }

    /// A convenience: a PostgreSQL exact layer with a client of its own.
    public static func postgres(_ configuration: PostgresClient.Configuration, ttlCeiling: Duration? = nil, timeout: Duration? = nil) -> CacheLayer {
        .postgres(client: PostgresClient(configuration: configuration), ttlCeiling: ttlCeiling, timeout: timeout)
    }
}
