public import CacheKit
public import Logging
import Metrics
import ServiceLifecycle

/// The shared L2: entries in Redis, shared by every instance, over hiredis.
///
/// Key layout under `keyPrefix` (only hex after the prefix, so no user character ever reaches a key or a pattern):
/// - entry: `<prefix>:e:<scope id (32 hex)>:<key digest (64 hex)>` → `CacheEntryCodec` bytes, expiring with `PX` at
///   the entry's `staleUntil`;
/// - tag: `<prefix>:t:<SHA-256 of the tag (64 hex)>` → a set of entry keys, written in the same `MULTI` as the entry
///   and expiring no earlier than its longest-lived member.
///
/// Removal by tag reads and deletes the tag set atomically (`MULTI SMEMBERS DEL`), then deletes the members; removal
/// by scope walks `SCAN MATCH <prefix>:e:<scope id>:*`. `KEYS`, `FLUSHDB` and `FLUSHALL` are never sent.
/// Cancellation and failure semantics are those of the connection pool: see `RedisConnectionPool`.
public final class RedisCacheBackend: CacheBackend {
    public var capabilities: CacheCapabilities { [.contentRemoval, .backgroundWork] }
    /// The client the backend talks through (shared with other layers and the bus, or its own).
    public let client: RedisClient
    public var configuration: RedisClient.Configuration { self.client.configuration }
    public var name: String { self.client.configuration.name }
    private let clock: any CacheClock
    private let logger: Logger
    private let entryPrefix: [UInt8]
    private let tagPrefix: [UInt8]

    /// A backend on a shared client: the client's key prefix and name. Nothing connects until the first command.
    public init(client: RedisClient, clock: any CacheClock = SystemCacheClock(), logger: Logger = Logger(label: "cachekit.redis")) {
        self.client = client
        self.clock = clock
        self.logger = logger
        self.entryPrefix = Array("\(client.configuration.keyPrefix):e:".utf8)
        self.tagPrefix = Array("\(client.configuration.keyPrefix):t:".utf8)
    }

    /// A convenience: a backend with a client of its own, made from `configuration`. Prefer one shared `RedisClient`
    /// when the bus or another layer talks to the same server.
    public convenience init(configuration: RedisClient.Configuration, clock: any CacheClock = SystemCacheClock(), logger: Logger = Logger(label: "cachekit.redis")) {
        self.init(client: RedisClient(configuration: configuration, logger: logger), clock: clock, logger: logger)
    }

    // MARK: Keys

    /// `<prefix>:e:<scope id, 32 hex>:<digest, 64 hex>`.
    func entryKey(_ key: CacheKey) -> [UInt8] {
        var bytes = [UInt8]()
        bytes.reserveCapacity(self.entryPrefix.count + 32 + 1 + 64)
        bytes.append(contentsOf: self.entryPrefix)
        key.scopeID.appendHex(to: &bytes, byteCount: 16)
        bytes.append(UInt8(ascii: ":"))
        key.digest.appendHex(to: &bytes)
        return bytes
    }

    /// `<prefix>:t:<SHA-256 of the tag, 64 hex>`.
    func tagKey(_ tag: String) -> [UInt8] {
        var bytes = self.tagPrefix
        Digest256(hashing: Array(tag.utf8)).appendHex(to: &bytes)
        return bytes
    }

    /// The `SCAN MATCH` pattern of a scope's entries, with glob characters of the prefix escaped.
    func scopePattern(_ scope: CacheScope) -> [UInt8] {
        var pattern = ""
        for character in self.configuration.keyPrefix {
            if "*?[]\\".contains(character) { pattern.append("\\") }
            pattern.append(character)
        }
        return Array("\(pattern):e:\(scope.idPrefix):*".utf8)
    }

    // MARK: CacheBackend

    public func get(_ key: CacheKey) async throws -> CacheEntry? {
        let redisKey = self.entryKey(key)
        let value = try await self.run { connection throws(CacheError) in try connection.execute([Array("GET".utf8), redisKey]) }
        return try self.decode(value)
    }

    public func get(_ keys: [CacheKey]) async throws -> [CacheEntry?] {
        guard !keys.isEmpty else { return [] }
        let arguments = [Array("MGET".utf8)] + keys.map(self.entryKey)
        let value = try await self.run { connection throws(CacheError) in try connection.execute(arguments) }
        guard let values = value.array, values.count == keys.count else {
            throw CacheError(.commandFailed, "MGET returned an unexpected reply", backend: self.name)
        }
        return try values.map(self.decode)
    }

    private func decode(_ value: RedisValue) throws(CacheError) -> CacheEntry? {
        let bytes: [UInt8]
        switch value {
        case .null: return nil
        case .bulk(let value): bytes = value
        default: throw CacheError(.commandFailed, "GET returned a reply that is not a value", backend: self.name)
        }
        let entry: CacheEntry
        do {
            entry = try CacheEntryCodec.decode(bytes)
        } catch {
            throw CacheError(error.code, error.message, backend: self.name)
        }
        guard entry.isUsable(at: self.clock.now()) else { return nil }
        return entry
    }

    public func set(_ entry: CacheEntry, for key: CacheKey) async throws {
        try await self.set([KeyedEntry(key: key, entry: entry)])
    }

    public func set(_ entries: [KeyedEntry]) async throws {
        guard !entries.isEmpty else { return }
        let now = self.clock.now()
        // MULTI only when tags must change with their entries atomically; plain entries are one SET each.
        let transactional = entries.contains { !$0.entry.tags.isEmpty }
        // Encoded on the connection's thread straight into the pipeline buffer: no array per command or value.
        let replies = try await self.run { connection throws(CacheError) in
            try connection.pipeline { encoder, flush throws(CacheError) in
                if transactional {
                    encoder.command(1)
                    encoder.argument("MULTI".utf8)
                }
                for write in entries {
                    let (key, entry) = (write.key, write.entry)
                    let redisKey = self.entryKey(key)
                    let ttl = Int((entry.staleUntil - now).milliseconds)
                    guard ttl > 0 else {
                        encoder.command(2)
                        encoder.argument("DEL".utf8)
                        encoder.argument(redisKey)
                        continue
                    }
                    encoder.command(5)
                    encoder.argument("SET".utf8)
                    encoder.argument(redisKey)
                    encoder.argument(count: CacheEntryCodec.encodedCount(entry)) { CacheEntryCodec.encode(entry, appendingTo: &$0) }
                    encoder.argument("PX".utf8)
                    encoder.argument(ttl)
                    for tag in Set(entry.tags) {
                        let tagKey = self.tagKey(tag)
                        encoder.command(3)
                        encoder.argument("SADD".utf8)
                        encoder.argument(tagKey)
                        encoder.argument(redisKey)
                        // A new set has no TTL (NX sets it); an existing one only ever lives longer (GT).
                        for condition in ["NX", "GT"] {
                            encoder.command(4)
                            encoder.argument("PEXPIRE".utf8)
                            encoder.argument(tagKey)
                            encoder.argument(ttl)
                            encoder.argument(condition.utf8)
                        }
                    }
                    try flush(&encoder)
                }
                if transactional {
                    encoder.command(1)
                    encoder.argument("EXEC".utf8)
                }
            }
        }
        for reply in replies {
            if case .error(let message) = reply {
                throw CacheError(.commandFailed, "write failed: \(message.prefix(120))", backend: self.name)
            }
        }
        if transactional, case .null = replies.last ?? .null {
            throw CacheError(.commandFailed, "write transaction was aborted", backend: self.name)
        }
    }

    public func remove(_ key: CacheKey) async throws -> Bool {
        let redisKey = self.entryKey(key)
        let value = try await self.run { connection throws(CacheError) in try connection.execute([Array("DEL".utf8), redisKey]) }
        return (value.integer ?? 0) > 0
    }

    public func removeAll(taggedWith tag: String) async throws -> Int {
        let tagKey = self.tagKey(tag)
        let replies = try await self.run { connection throws(CacheError) in
            try connection.pipeline([[Array("MULTI".utf8)], [Array("SMEMBERS".utf8), tagKey], [Array("DEL".utf8), tagKey], [Array("EXEC".utf8)]])
        }
        guard let results = replies.last?.array, let members = results.first?.array else { return 0 }
        return try await self.delete(members.compactMap(\.bytes))
    }

    public func removeAll(in scope: CacheScope) async throws -> Int {
        try await self.scan(scope) { keys in try await self.delete(keys) }
    }

    /// Reads each SCAN batch with MGET and deletes the entries `predicate` selects: O(n) in the scope's entries
    /// (see `CacheStore.removeAll(in:where:)`). A corrupt entry is left to its own TTL and the next read.
    public func removeAll(in scope: CacheScope, where predicate: @escaping @Sendable (CacheEntry) -> Bool) async throws -> Int {
        try await self.scan(scope) { keys in
            let values = try await self.run { connection throws(CacheError) in try connection.execute([Array("MGET".utf8)] + keys) }
            guard let entries = values.array, entries.count == keys.count else {
                throw CacheError(.commandFailed, "MGET returned an unexpected reply", backend: self.name)
            }
            let doomed = zip(keys, entries).compactMap { key, value -> [UInt8]? in
                guard let entry = try? self.decode(value) else { return nil }
                return predicate(entry) ? key : nil
            }
            return try await self.delete(doomed)
        }
    }

    /// Walks the scope's entry keys with `SCAN MATCH` (never `KEYS`), handing each non-empty batch to `body`;
    /// returns the sum of what `body` returned.
    private func scan(_ scope: CacheScope, _ body: ([[UInt8]]) async throws -> Int) async throws -> Int {
        let pattern = self.scopePattern(scope)
        var cursor: [UInt8] = Array("0".utf8)
        var total = 0
        repeat {
            let current = cursor
            let reply = try await self.run { connection throws(CacheError) in
                try connection.execute([Array("SCAN".utf8), current, Array("MATCH".utf8), pattern, Array("COUNT".utf8), Array("500".utf8)])
            }
            guard let parts = reply.array, parts.count == 2, let next = parts[0].bytes, let keys = parts[1].array?.compactMap(\.bytes) else {
                throw CacheError(.commandFailed, "SCAN returned an unexpected reply", backend: self.name)
            }
            if !keys.isEmpty { total += try await body(keys) }
            cursor = next
        } while cursor != Array("0".utf8)
        return total
    }

    private func delete(_ keys: [[UInt8]]) async throws -> Int {
        guard !keys.isEmpty else { return 0 }
        var removed = 0
        var start = 0
        while start < keys.count {
            let batch = Array(keys[start..<min(keys.count, start + 500)])
            start += batch.count
            let reply = try await self.run { connection throws(CacheError) in try connection.execute([Array("DEL".utf8)] + batch) }
            removed += Int(reply.integer ?? 0)
        }
        return removed
    }

    /// Runs one pooled call on the client.
    func run<T: Sendable>(_ body: @escaping @Sendable (RedisConnection) throws(CacheError) -> T) async throws -> T {
        try await self.client.withConnection(body)
    }

    /// Pool figures of the client: open and idle connections, waiters, connections created and destroyed.
    public var poolCounters: ConnectionPoolCounters { self.client.poolCounters }

    /// Runs the client (health checks, then closing the pool at shutdown); when the client is shared and already
    /// running, waits for shutdown.
    public func run() async throws {
        try await self.client.run()
    }
}

extension CacheLayer {
    /// A shared Redis layer (L2). Entries live here at most `ttlCeiling` (default: their own TTL).
    ///
    /// `timeout` (default `nil`) adds a per-operation layer deadline on top of the backend's own bounds. Without it,
    /// every Redis call is still bounded: connecting by `connectTimeout`, each reply by `commandTimeout` (the
    /// socket's receive timeout), and a cancelled caller returns at once. A layer deadline costs two extra task
    /// wake-ups per operation (about 30 µs on a 2-core machine), so the default relies on the backend's bounds.
    public static func redis(
        client: RedisClient,
        ttlCeiling: Duration? = nil,
        timeout: Duration? = nil,
        clock: any CacheClock = SystemCacheClock()
    ) -> CacheLayer {
        CacheLayer(
            backend: RedisCacheBackend(client: client, clock: clock),
            options: .init(ttlCeiling: ttlCeiling, timeout: timeout, isShared: true)
        )
    }

    /// A convenience: a shared Redis layer with a client of its own. Prefer `redis(client:)` with one `RedisClient`
    /// per server when the invalidation bus talks to the same server.
    public static func redis(
        _ configuration: RedisClient.Configuration,
        ttlCeiling: Duration? = nil,
        timeout: Duration? = nil,
        clock: any CacheClock = SystemCacheClock()
    ) -> CacheLayer {
        .redis(client: RedisClient(configuration: configuration), ttlCeiling: ttlCeiling, timeout: timeout, clock: clock)
    }
}
