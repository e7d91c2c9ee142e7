public import CacheKit
public import Logging
import Metrics
import ServiceLifecycle

/// The shared L2: entries in Redis, shared by every instance, over hiredis; one server or a Redis Cluster.
///
/// Key layout under `keyPrefix` (only hex after the prefix, so no user character ever reaches a key or a pattern):
/// - entry: `<prefix>:e:<scope id (32 hex)>:<key digest (64 hex)>` → `CacheEntryCodec` bytes, expiring with `PX` at
///   the entry's `staleUntil`;
/// - tag: `<prefix>:t:<SHA-256 of the tag (64 hex)>` (on a cluster `<prefix>:t:{<64 hex>}`, so that the tag and its
///   claim share a slot) → a set of entry keys, expiring no earlier than its longest-lived member. On one server it
///   is written in the same `MULTI` as the entry; on a cluster (where a transaction cannot span slots) it is written
///   first, then the entry, so an entry is never stored without being reachable through its tags;
/// - claim: `<prefix>:c:<same hex as the tag>` → the members of a tag being invalidated.
///
/// Removal by tag moves the tag set into its claim in one script (`EVAL`: union into the claim, delete the tag, keep
/// the longer TTL, return the claim's members), deletes the members, then removes from the claim exactly the members
/// it deleted. If deleting fails, the claim keeps them and the next removal of the tag deletes them: a failed
/// invalidation never turns into a later "0 removed" while entries remain. Removal by scope walks
/// `SCAN MATCH <prefix>:e:<scope id>:*` (on a cluster, on every primary). `KEYS`, `FLUSHDB` and `FLUSHALL` are never
/// sent. Cancellation and failure semantics are those of the connection pool.
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
    private let claimPrefix: [UInt8]

    /// A backend on a shared client: the client's key prefix and name. Nothing connects until the first command.
    public init(client: RedisClient, clock: any CacheClock = SystemCacheClock(), logger: Logger = Logger(label: "cachekit.redis")) {
        self.client = client
        self.clock = clock
        self.logger = logger
        self.entryPrefix = Array("\(client.configuration.keyPrefix):e:".utf8)
        self.tagPrefix = Array("\(client.configuration.keyPrefix):t:".utf8)
        self.claimPrefix = Array("\(client.configuration.keyPrefix):c:".utf8)
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

    /// `<prefix>:t:<SHA-256 of the tag, 64 hex>`; on a cluster the hex is in braces (a hash tag). One allocation: it
    /// is on every tagged write.
    func tagKey(_ tag: String) -> [UInt8] {
        var bytes = self.tagPrefix
        self.appendTagHex(tag, to: &bytes)
        return bytes
    }

    /// The tag's set and its claim (same slot on a cluster).
    func tagKeys(_ tag: String) -> (tag: [UInt8], claim: [UInt8]) {
        var hex: [UInt8] = []
        self.appendTagHex(tag, to: &hex)
        return (self.tagPrefix + hex, self.claimPrefix + hex)
    }

    private func appendTagHex(_ tag: String, to bytes: inout [UInt8]) {
        let clustered = self.client.cluster != nil
        if clustered { bytes.append(UInt8(ascii: "{")) }
        Digest256(hashing: Array(tag.utf8)).appendHex(to: &bytes)
        if clustered { bytes.append(UInt8(ascii: "}")) }
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
        if self.client.cluster != nil { return try await self.decode(self.values(of: [redisKey])[0]) }
        let value = try await self.run { connection throws(CacheError) in try connection.execute([Array("GET".utf8), redisKey]) }
        return try self.decode(value)
    }

    public func get(_ keys: [CacheKey]) async throws -> [CacheEntry?] {
        guard !keys.isEmpty else { return [] }
        return try await self.values(of: keys.map(self.entryKey)).map(self.decode)
    }

    /// The raw values of `keys`: one `MGET` on one server; on a cluster a `GET` per key, pipelined per node.
    private func values(of keys: [[UInt8]]) async throws -> [RedisValue] {
        let values: [RedisValue]
        if let cluster = self.client.cluster {
            values = try await self.client.execute(cluster: cluster, keys.map { RedisCluster.Command(key: $0, [Array("GET".utf8), $0], isRead: true) })
        } else {
            let reply = try await self.run { connection throws(CacheError) in try connection.execute([Array("MGET".utf8)] + keys) }
            values = reply.array ?? []
        }
        guard values.count == keys.count else { throw CacheError(.commandFailed, "GET returned an unexpected reply", backend: self.name) }
        return values
    }

    private func decode(_ value: RedisValue) throws(CacheError) -> CacheEntry? {
        let bytes: [UInt8]
        switch value {
        case .null: return nil
        case .bulk(let value): bytes = value
        case .error(let message): throw CacheError(.commandFailed, "GET failed: \(message.prefix(120))", backend: self.name)
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
        if let cluster = self.client.cluster { return try await self.set(entries, on: cluster) }
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

    /// On a cluster: the tags' set members first (grouped by node, pipelined), then the entries, so that a stored
    /// entry is always reachable through its tags.
    private func set(_ entries: [KeyedEntry], on cluster: RedisCluster) async throws {
        let now = self.clock.now()
        var tagCommands: [RedisCluster.Command] = []
        var entryCommands: [RedisCluster.Command] = []
        for write in entries {
            let redisKey = self.entryKey(write.key)
            let ttl = Int((write.entry.staleUntil - now).milliseconds)
            guard ttl > 0 else {
                entryCommands.append(RedisCluster.Command(key: redisKey, [Array("DEL".utf8), redisKey]))
                continue
            }
            let milliseconds = Array(String(ttl).utf8)
            for tag in Set(write.entry.tags) {
                let tagKey = self.tagKey(tag)
                tagCommands.append(RedisCluster.Command(key: tagKey, [Array("SADD".utf8), tagKey, redisKey]))
                for condition in ["NX", "GT"] {
                    tagCommands.append(RedisCluster.Command(key: tagKey, [Array("PEXPIRE".utf8), tagKey, milliseconds, Array(condition.utf8)]))
                }
            }
            var value: [UInt8] = []
            value.reserveCapacity(CacheEntryCodec.encodedCount(write.entry))
            CacheEntryCodec.encode(write.entry, appendingTo: &value)
            entryCommands.append(RedisCluster.Command(key: redisKey, [Array("SET".utf8), redisKey, value, Array("PX".utf8), milliseconds]))
        }
        for commands in [tagCommands, entryCommands] where !commands.isEmpty {
            for reply in try await self.client.execute(cluster: cluster, commands) {
                if case .error(let message) = reply {
                    throw CacheError(.commandFailed, "write failed: \(message.prefix(120))", backend: self.name)
                }
            }
        }
    }

    public func remove(_ key: CacheKey) async throws -> Bool {
        try await self.delete([self.entryKey(key)]) > 0
    }

    /// Moves the tag's set into its claim atomically and returns the claim's members (those of earlier removals that
    /// failed too). The claim keeps the longer of the two TTLs (none when either has none).
    static let claimScript = Array(
        """
        local tagTTL = redis.call('PTTL', KEYS[1])
        local claimTTL = redis.call('PTTL', KEYS[2])
        if tagTTL == -2 and claimTTL == -2 then return {} end
        redis.call('SUNIONSTORE', KEYS[2], KEYS[2], KEYS[1])
        redis.call('DEL', KEYS[1])
        if tagTTL ~= -1 and claimTTL ~= -1 then redis.call('PEXPIRE', KEYS[2], math.max(tagTTL, claimTTL, 1)) end
        return redis.call('SMEMBERS', KEYS[2])
        """.utf8)

    public func removeAll(taggedWith tag: String) async throws -> Int {
        let (tagKey, claimKey) = self.tagKeys(tag)
        let claim = [Array("EVAL".utf8), Self.claimScript, Array("2".utf8), tagKey, claimKey]
        let reply: RedisValue
        if let cluster = self.client.cluster {
            reply = try await self.client.execute(cluster: cluster, [RedisCluster.Command(key: tagKey, claim)])[0]
        } else {
            reply = try await self.run { connection throws(CacheError) in try connection.execute(claim) }
        }
        if case .error(let message) = reply { throw CacheError(.commandFailed, "tag claim failed: \(message.prefix(120))", backend: self.name) }
        guard let members = reply.array?.compactMap(\.bytes), !members.isEmpty else { return 0 }
        // Deleted first; only then are they taken out of the claim (a failure above leaves them for the next removal).
        let removed = try await self.delete(members)
        var start = 0
        while start < members.count {
            let batch = Array(members[start..<min(members.count, start + 500)])
            start += batch.count
            let release = [Array("SREM".utf8), claimKey] + batch
            if let cluster = self.client.cluster {
                _ = try await self.client.execute(cluster: cluster, [RedisCluster.Command(key: claimKey, release)])
            } else {
                _ = try await self.run { connection throws(CacheError) in try connection.execute(release) }
            }
        }
        return removed
    }

    public func removeAll(in scope: CacheScope) async throws -> Int {
        try await self.scan(scope) { keys in try await self.delete(keys) }
    }

    /// Reads each SCAN batch with MGET and deletes the entries `predicate` selects: O(n) in the scope's entries
    /// (see `CacheStore.removeAll(in:where:)`). A corrupt entry is left to its own TTL and the next read.
    public func removeAll(in scope: CacheScope, where predicate: @escaping @Sendable (CacheEntry) -> Bool) async throws -> Int {
        try await self.scan(scope) { keys in
            let entries = try await self.values(of: keys)
            let doomed = zip(keys, entries).compactMap { key, value -> [UInt8]? in
                guard let entry = try? self.decode(value) else { return nil }
                return predicate(entry) ? key : nil
            }
            return try await self.delete(doomed)
        }
    }

    /// Walks the scope's entry keys with `SCAN MATCH` (never `KEYS`), on a cluster on every primary, handing each
    /// non-empty batch to `body`; returns the sum of what `body` returned.
    private func scan(_ scope: CacheScope, _ body: ([[UInt8]]) async throws -> Int) async throws -> Int {
        let pattern = self.scopePattern(scope)
        guard let cluster = self.client.cluster else {
            return try await self.scan(pattern, body) { arguments in
                try await self.run { connection throws(CacheError) in try connection.execute(arguments) }
            }
        }
        var total = 0
        for primary in try await cluster.primaries() {
            total += try await self.scan(pattern, body) { arguments in try await self.client.execute(cluster: cluster, arguments, on: primary) }
        }
        return total
    }

    /// One node's `SCAN` walk, each command sent by `send`.
    private func scan(
        _ pattern: [UInt8], _ body: ([[UInt8]]) async throws -> Int, send: ([[UInt8]]) async throws -> RedisValue
    ) async throws -> Int {
        var cursor: [UInt8] = Array("0".utf8)
        var total = 0
        repeat {
            let reply = try await send([Array("SCAN".utf8), cursor, Array("MATCH".utf8), pattern, Array("COUNT".utf8), Array("500".utf8)])
            guard let parts = reply.array, parts.count == 2, let next = parts[0].bytes, let keys = parts[1].array?.compactMap(\.bytes) else {
                throw CacheError(.commandFailed, "SCAN returned an unexpected reply", backend: self.name)
            }
            if !keys.isEmpty { total += try await body(keys) }
            cursor = next
        } while cursor != Array("0".utf8)
        return total
    }

    /// Deletes `keys`: `DEL` in batches of 500 on one server; on a cluster a `DEL` per key, pipelined per node (and,
    /// with `readFromReplicas`, acknowledged by the shard's replicas before this returns).
    private func delete(_ keys: [[UInt8]]) async throws -> Int {
        guard !keys.isEmpty else { return 0 }
        if let cluster = self.client.cluster {
            let replies = try await self.client.execute(
                cluster: cluster, keys.map { RedisCluster.Command(key: $0, [Array("DEL".utf8), $0]) },
                waitForReplicas: cluster.options.readFromReplicas)
            var removed = 0
            for reply in replies {
                if case .error(let message) = reply { throw CacheError(.commandFailed, "DEL failed: \(message.prefix(120))", backend: self.name) }
                removed += Int(reply.integer ?? 0)
            }
            return removed
        }
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
