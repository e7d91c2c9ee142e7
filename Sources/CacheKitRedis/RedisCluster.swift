import CacheKit
import Logging
import Metrics
import ServiceLifecycle

/// Key slots of a Redis Cluster: CRC16 (XMODEM) of the key, or of its hash tag, modulo 16,384.
enum RedisClusterSlot {
    static let count = 16_384

    private static let table: [UInt16] = (0..<256).map { byte in
        var crc = UInt16(byte) << 8
        for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        return crc
    }

    static func crc16(_ bytes: some Sequence<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes { crc = (crc << 8) ^ self.table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)] }
        return crc
    }

    /// The slot of `key`. When the key has a `{` followed later by a `}` with at least one byte between them, only the
    /// bytes between the first `{` and the next `}` are hashed (the hash tag), as the server does.
    static func of(_ key: [UInt8]) -> Int {
        if let open = key.firstIndex(of: UInt8(ascii: "{")),
            let close = key[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1
        {
            return Int(self.crc16(key[(open + 1)..<close]) & 0x3FFF)
        }
        return Int(self.crc16(key) & 0x3FFF)
    }
}

/// Which node serves each slot: read from `CLUSTER SLOTS` (Redis 7.0 has no `CLUSTER SHARDS` reply worth the extra
/// parsing), corrected by `MOVED` replies between two reads.
struct RedisClusterMap: Sendable, Equatable {
    typealias Endpoint = RedisClient.Configuration.Endpoint

    struct Shard: Sendable, Equatable {
        var primary: Endpoint
        var replicas: [Endpoint]
    }

    private(set) var shards: [Shard]
    /// Per slot, the index of its shard in `shards`, or -1 when no node serves it.
    private var owners: [Int16]

    init(shards: [Shard] = [], owners: [Int16] = Array(repeating: -1, count: RedisClusterSlot.count)) {
        self.shards = shards
        self.owners = owners
    }

    /// Reads a `CLUSTER SLOTS` reply. Every number is checked before use: slots in 0 ... 16383, ports in 1 ... 65535, at
    /// most 16,384 ranges and 64 replicas per range; an empty host means the node that was asked (`askedHost`), and a
    /// node whose address is unknown (`?`) is left out.
    init(slotsReply reply: RedisValue, askedHost: String) throws(CacheError) {
        func malformed(_ what: String) -> CacheError { CacheError(.commandFailed, "CLUSTER SLOTS reply: \(what)") }
        guard let ranges = reply.array else { throw malformed("not an array") }
        guard ranges.count <= RedisClusterSlot.count else { throw malformed("more ranges than slots") }
        self.init()
        for range in ranges {
            guard let parts = range.array, parts.count >= 3, parts.count <= 3 + 64,
                case .integer(let start) = parts[0], case .integer(let end) = parts[1],
                start >= 0, end < RedisClusterSlot.count, start <= end
            else { throw malformed("a slot range is not [start, end, primary, replicas...] within 0 ... 16383") }
            let nodes = try parts[2...].map { (node: RedisValue) throws(CacheError) -> Endpoint? in
                guard let fields = node.array, fields.count >= 2, let hostBytes = fields[0].bytes, hostBytes.count <= 255,
                    case .integer(let port) = fields[1], (1...65535).contains(port)
                else { throw malformed("a node is not [host, port, ...] with a port in 1 ... 65535") }
                let host = String(decoding: hostBytes, as: UTF8.self)
                if host == "?" { return nil }
                return .tcp(host: host.isEmpty ? askedHost : host, port: Int(port))
            }
            guard let primary = nodes[0] else { continue }
            let shard = self.shardIndex(primary: primary, replicas: nodes.dropFirst().compactMap { $0 })
            for slot in Int(start)...Int(end) { self.owners[slot] = Int16(shard) }
        }
    }

    private mutating func shardIndex(primary: Endpoint, replicas: [Endpoint]) -> Int {
        if let index = self.shards.firstIndex(where: { $0.primary == primary }) {
            for replica in replicas where !self.shards[index].replicas.contains(replica) { self.shards[index].replicas.append(replica) }
            return index
        }
        self.shards.append(Shard(primary: primary, replicas: replicas))
        return self.shards.count - 1
    }

    /// The shard serving `slot`, if any.
    func shard(ofSlot slot: Int) -> Shard? {
        guard slot >= 0, slot < self.owners.count else { return nil }
        let index = Int(self.owners[slot])
        return index >= 0 ? self.shards[index] : nil
    }

    /// Slots some node serves.
    var coveredSlots: Int { self.owners.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) } }

    /// Every known node: primaries first, then replicas.
    var nodes: [Endpoint] { self.shards.map(\.primary) + self.shards.flatMap(\.replicas) }

    /// After `MOVED <slot> <endpoint>`: the slot belongs to the shard whose primary is `endpoint` (a new shard when none).
    mutating func move(slot: Int, to endpoint: Endpoint) {
        guard slot >= 0, slot < self.owners.count else { return }
        self.owners[slot] = Int16(self.shardIndex(primary: endpoint, replicas: []))
    }
}

/// A cluster redirect or a condition worth retrying, read from an error reply.
enum RedisClusterRedirect: Equatable {
    case moved(slot: Int, to: RedisClient.Configuration.Endpoint)
    case ask(slot: Int, to: RedisClient.Configuration.Endpoint)
    /// `TRYAGAIN` (a multi-key command during a slot migration), `CLUSTERDOWN`, `LOADING`, `MASTERDOWN`: the same
    /// node, a moment later.
    case retry

    /// `MOVED 3999 127.0.0.1:6381`, `ASK 3999 127.0.0.1:6381`; `nil` for any other error.
    init?(_ message: String) {
        let words = message.split(separator: " ")
        guard let first = words.first else { return nil }
        switch first {
        case "MOVED", "ASK":
            guard words.count == 3, let slot = Int(words[1]), slot >= 0, slot < RedisClusterSlot.count,
                let colon = words[2].lastIndex(of: ":"), let port = Int(words[2][words[2].index(after: colon)...]),
                (1...65535).contains(port)
            else { return nil }
            var host = words[2][..<colon]
            if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
            guard !host.isEmpty else { return nil }
            let endpoint = RedisClient.Configuration.Endpoint.tcp(host: String(host), port: port)
            self = first == "MOVED" ? .moved(slot: slot, to: endpoint) : .ask(slot: slot, to: endpoint)
        case "TRYAGAIN", "CLUSTERDOWN", "LOADING", "MASTERDOWN":
            self = .retry
        default:
            return nil
        }
    }
}

/// The cluster side of a `RedisClient`: the slot map, a pool per node, and commands routed by slot with redirects
/// followed.
///
/// Commands for one node are pipelined on one of its connections; nodes are asked concurrently. A reply `MOVED`
/// corrects the map at once and schedules a re-read; `ASK` sends that one command to the named node after `ASKING`;
/// `TRYAGAIN`/`CLUSTERDOWN` and a node that cannot be reached are retried after a short pause and a re-read of the
/// map (at most one re-read per 100 ms, shared by every caller). Each command is tried at most
/// `1 + maximumRedirects` times. Every command CacheKit routes this way is idempotent (`GET`, `SET`, `DEL`, `SADD`,
/// `PEXPIRE`, `SMEMBERS`, `SREM`, `PUBLISH` aside), so a retry after a lost reply changes nothing.
final class RedisCluster: Sendable {
    typealias Endpoint = RedisClient.Configuration.Endpoint

    /// A node and whether its connections serve replica reads (`READONLY`).
    struct Target: Hashable, Sendable {
        var endpoint: Endpoint
        var readOnly: Bool
    }

    /// One command and the slot it is routed by.
    struct Command: Sendable {
        var slot: Int
        var arguments: [[UInt8]]
        /// A read may go to a replica when `readFromReplicas` is set.
        var isRead: Bool

        init(key: [UInt8], _ arguments: [[UInt8]], isRead: Bool = false) {
            self.slot = RedisClusterSlot.of(key)
            self.arguments = arguments
            self.isRead = isRead
        }
    }

    private struct State {
        var map: RedisClusterMap?
        var pools: [Target: ConnectionPool<RedisConnection>] = [:]
        var refresh: Task<RedisClusterMap, any Error>?
        var lastRefresh: ContinuousClock.Instant?
        var turn = 0
        var running = false
    }

    let configuration: RedisClient.Configuration
    let options: RedisClient.Configuration.Cluster
    private let logger: Logger
    private let metricsFactory: any MetricsFactory
    private let state = LockedState(State())
    private let refreshes: Counter
    private let redirects: Counter

    init(configuration: RedisClient.Configuration, options: RedisClient.Configuration.Cluster, logger: Logger, metricsFactory: any MetricsFactory) {
        self.configuration = configuration
        self.options = options
        self.logger = logger
        self.metricsFactory = metricsFactory
        let dimensions = [("backend", configuration.name)]
        self.refreshes = Counter(label: "cachekit_redis_cluster_map_reads_total", dimensions: dimensions, factory: metricsFactory)
        self.redirects = Counter(label: "cachekit_redis_cluster_redirects_total", dimensions: dimensions, factory: metricsFactory)
    }

    // MARK: Nodes and the map

    /// The pool of one node, made on first use.
    func pool(_ target: Target) -> ConnectionPool<RedisConnection> {
        self.state.withLock { state in
            if let pool = state.pools[target] { return pool }
            var node = self.configuration
            node.endpoint = target.endpoint
            let configuration = node
            let pool = ConnectionPool(configuration: configuration.poolConfiguration, logger: self.logger, metricsFactory: self.metricsFactory) {
                try RedisConnection(configuration, readOnly: target.readOnly)
            }
            state.pools[target] = pool
            return pool
        }
    }

    /// The current map, read first if none is known.
    func map() async throws -> RedisClusterMap {
        if let map = self.state.withLock({ $0.map }) { return map }
        return try await self.refresh(force: true)
    }

    /// Re-reads the map. One read at a time: callers arriving meanwhile share it; without `force`, a map read less
    /// than 100 ms ago is kept.
    @discardableResult
    func refresh(force: Bool = false) async throws -> RedisClusterMap {
        let task = self.state.withLock { state -> Task<RedisClusterMap, any Error> in
            if let running = state.refresh { return running }
            if !force, let map = state.map, let last = state.lastRefresh, ContinuousClock.now - last < .milliseconds(100) {
                return Task { map }
            }
            let task = Task {
                defer { self.state.withLock { $0.refresh = nil } }
                return try await self.readMap()
            }
            state.refresh = task
            return task
        }
        return try await task.value
    }

    /// Asks the known nodes, then the seeds, for `CLUSTER SLOTS`; the first complete answer wins.
    private func readMap() async throws -> RedisClusterMap {
        let known = self.state.withLock { $0.map?.nodes ?? [] }
        var candidates: [Endpoint] = []
        for endpoint in known + [self.configuration.endpoint] + self.options.seeds where !candidates.contains(endpoint) {
            candidates.append(endpoint)
        }
        var failures: [String] = []
        for endpoint in candidates {
            do {
                let reply = try await self.pool(Target(endpoint: endpoint, readOnly: false)).withConnection { connection in
                    try connection.execute([Array("CLUSTER".utf8), Array("SLOTS".utf8)])
                }
                let map = try RedisClusterMap(slotsReply: reply, askedHost: endpoint.tcp?.host ?? "")
                guard map.coveredSlots > 0 else {
                    failures.append("\(endpoint): serves no slot")
                    continue
                }
                let removed = self.state.withLock { state -> [ConnectionPool<RedisConnection>] in
                    state.map = map
                    state.lastRefresh = .now
                    // Pools of nodes that left the map are closed (a node that returns gets a new pool).
                    let nodes = Set(map.nodes + [self.configuration.endpoint] + self.options.seeds)
                    let gone = state.pools.keys.filter { !nodes.contains($0.endpoint) }
                    return gone.compactMap { state.pools.removeValue(forKey: $0) }
                }
                for pool in removed { pool.shutdown() }
                self.refreshes.increment()
                if map.coveredSlots < RedisClusterSlot.count {
                    self.logger.warning("the Redis Cluster serves \(map.coveredSlots) of 16384 slots", metadata: ["node": "\(endpoint)"])
                }
                return map
            } catch {
                failures.append("\(endpoint): \(error)")
            }
        }
        throw CacheError(
            .unavailable, "no cluster node answered CLUSTER SLOTS (\(failures.prefix(3).joined(separator: "; ")))", backend: self.configuration.name)
    }

    /// Where a command goes: the slot's primary, or for a read with `readFromReplicas` one of its replicas in turn
    /// (the primary on a retry).
    private func target(_ map: RedisClusterMap, _ command: Command, attempt: Int) -> Target? {
        guard let shard = map.shard(ofSlot: command.slot) else { return nil }
        if command.isRead, self.options.readFromReplicas, attempt == 0, !shard.replicas.isEmpty {
            let turn = self.state.withLock { state in
                state.turn &+= 1
                return state.turn
            }
            return Target(endpoint: shard.replicas[Int(UInt(bitPattern: turn) % UInt(shard.replicas.count))], readOnly: true)
        }
        return Target(endpoint: shard.primary, readOnly: false)
    }

    /// A node for a subscriber: every known node in turn (primaries and replicas all deliver cluster-wide `PUBLISH`),
    /// the configured ones before a map is known.
    func nextSubscriberEndpoint() -> Endpoint {
        self.state.withLock { state in
            var nodes = state.map?.nodes ?? []
            for seed in [self.configuration.endpoint] + self.options.seeds where !nodes.contains(seed) { nodes.append(seed) }
            state.turn &+= 1
            return nodes[Int(UInt(bitPattern: state.turn) % UInt(nodes.count))]
        }
    }

    /// The primaries of the current map (read first if none is known).
    func primaries() async throws -> [Endpoint] {
        try await self.map().shards.map(\.primary)
    }

    // MARK: Commands

    /// Runs `commands`, each on the node serving its slot, and returns their replies in order. Error replies other than
    /// redirects are returned in place. With `waitForReplicas`, each node's batch ends with `WAIT` for the shard's
    /// replicas, and a shard whose replicas did not all acknowledge within `commandTimeout` fails the call.
    func execute(_ commands: [Command], waitForReplicas: Bool = false) async throws -> [RedisValue] {
        var replies = [RedisValue](repeating: .null, count: commands.count)
        var pending = Array(commands.indices)
        var asking: [Int: Endpoint] = [:]
        var lastFailure: any Error = CacheError(.unavailable, "the cluster did not answer", backend: self.configuration.name)
        for attempt in 0...self.options.maximumRedirects {
            let map = try await self.map()
            var groups: [Target: [Int]] = [:]
            var askingGroups: [Endpoint: [Int]] = [:]
            var retry: [Int] = []
            var refreshNeeded = false
            var pause = false
            for index in pending {
                if let endpoint = asking[index] {
                    askingGroups[endpoint, default: []].append(index)
                } else if let target = self.target(map, commands[index], attempt: attempt) {
                    groups[target, default: []].append(index)
                } else {
                    retry.append(index)
                    refreshNeeded = true
                    pause = true
                    lastFailure = CacheError(.unavailable, "no node serves slot \(commands[index].slot)", backend: self.configuration.name)
                }
            }
            asking = [:]
            let replicaCounts = waitForReplicas ? Dictionary(map.shards.map { ($0.primary, $0.replicas.count) }, uniquingKeysWith: max) : [:]
            let outcomes: [(indices: [Int], result: Result<[RedisValue], any Error>)]
            if askingGroups.isEmpty, groups.count == 1, let (target, indices) = groups.first {
                // One node (a single key, or keys of one shard): no child task.
                let wait = waitForReplicas && !target.readOnly ? replicaCounts[target.endpoint] ?? 0 : 0
                outcomes = [(indices, await self.send(indices.map { commands[$0].arguments }, to: target, asking: false, waitForReplicas: wait))]
            } else {
                outcomes = await withTaskGroup(of: (indices: [Int], result: Result<[RedisValue], any Error>).self) { group in
                    for (target, indices) in groups {
                        let wait = waitForReplicas && !target.readOnly ? replicaCounts[target.endpoint] ?? 0 : 0
                        let batch = indices.map { commands[$0].arguments }
                        group.addTask { (indices, await self.send(batch, to: target, asking: false, waitForReplicas: wait)) }
                    }
                    for (endpoint, indices) in askingGroups {
                        let batch = indices.map { commands[$0].arguments }
                        group.addTask {
                            (indices, await self.send(batch, to: Target(endpoint: endpoint, readOnly: false), asking: true, waitForReplicas: 0))
                        }
                    }
                    var outcomes: [(indices: [Int], result: Result<[RedisValue], any Error>)] = []
                    for await outcome in group { outcomes.append(outcome) }
                    return outcomes
                }
            }
            for outcome in outcomes {
                switch outcome.result {
                case .failure(let error):
                    if error is CancellationError { throw error }
                    lastFailure = error
                    retry += outcome.indices
                    refreshNeeded = true
                    pause = true
                case .success(let values):
                    for (index, value) in zip(outcome.indices, values) {
                        guard case .error(let message) = value, let redirect = RedisClusterRedirect(message) else {
                            replies[index] = value
                            continue
                        }
                        self.redirects.increment()
                        lastFailure = CacheError(.commandFailed, "cluster: \(message.prefix(80))", backend: self.configuration.name)
                        retry.append(index)
                        switch redirect {
                        case .moved(let slot, let endpoint):
                            self.state.withLock { $0.map?.move(slot: slot, to: endpoint) }
                            refreshNeeded = true
                        case .ask(_, let endpoint):
                            asking[index] = endpoint
                        case .retry:
                            pause = true
                        }
                    }
                }
            }
            if retry.isEmpty { return replies }
            pending = retry
            if refreshNeeded { _ = try? await self.refresh() }
            if pause { try await Task.sleep(for: .milliseconds(10 << min(attempt, 5))) }
        }
        throw lastFailure
    }

    /// One node's batch on one of its connections: pipelined, `ASKING` before each command when `asking`, `WAIT` after
    /// the batch when `waitForReplicas` > 0 (checked here). The replies of `commands`, in order.
    private func send(_ commands: [[[UInt8]]], to target: Target, asking: Bool, waitForReplicas: Int) async -> Result<[RedisValue], any Error> {
        let name = self.configuration.name
        let timeout = max(1, Int(self.configuration.commandTimeout.milliseconds) / 2)
        do {
            let replies = try await self.pool(target).withConnection { connection throws(CacheError) -> [RedisValue] in
                var batch = asking ? commands.flatMap { [[Array("ASKING".utf8)], $0] } : commands
                if waitForReplicas > 0 { batch.append([Array("WAIT".utf8), Array(String(waitForReplicas).utf8), Array(String(timeout).utf8)]) }
                var replies = try connection.pipeline(batch)
                if waitForReplicas > 0 {
                    let acknowledged = replies.removeLast().integer ?? 0
                    guard acknowledged >= waitForReplicas else {
                        throw CacheError(
                            .timeout, "\(acknowledged) of \(waitForReplicas) replicas of \(target.endpoint) acknowledged the removal in \(timeout) ms",
                            backend: name)
                    }
                }
                return asking ? stride(from: 1, to: replies.count, by: 2).map { replies[$0] } : replies
            }
            return .success(replies)
        } catch {
            return .failure(error)
        }
    }

    /// Runs one command on a given node (a `SCAN` of that node's keys), following nothing.
    func execute(_ arguments: [[UInt8]], on endpoint: Endpoint) async throws -> RedisValue {
        try await self.pool(Target(endpoint: endpoint, readOnly: false)).withConnection { connection in try connection.execute(arguments) }
    }

    // MARK: Service

    /// Pool figures summed over every node.
    var counters: ConnectionPoolCounters {
        let pools = self.state.withLock { Array($0.pools.values) }
        return pools.map(\.counters).reduce(ConnectionPoolCounters(open: 0, idle: 0, waiters: 0, created: 0, destroyed: 0)) {
            ConnectionPoolCounters(
                open: $0.open + $1.open, idle: $0.idle + $1.idle, waiters: $0.waiters + $1.waiters, created: $0.created + $1.created,
                destroyed: $0.destroyed + $1.destroyed)
        }
    }

    var startedThreads: Int { self.state.withLock { $0.pools.values.reduce(0) { $0 + $1.threads.startedThreads } } }

    /// Every second: pings idle connections of every node; every `topologyRefreshInterval`: re-reads the map. At
    /// graceful shutdown closes every pool. Runs once however many callers; later callers wait for shutdown.
    func run() async {
        let first = self.state.withLock { state in
            defer { state.running = true }
            return !state.running
        }
        guard first else {
            try? await gracefulShutdown()
            return
        }
        await runPeriodically(every: .seconds(1)) {
            let (pools, last) = self.state.withLock { (Array($0.pools.values), $0.lastRefresh) }
            for pool in pools {
                await pool.healthCheck { connection in try connection.execute([Array("PING".utf8)]) == .status("PONG") }
            }
            if last.map({ ContinuousClock.now - $0 >= self.options.topologyRefreshInterval }) ?? true {
                do {
                    try await self.refresh(force: true)
                } catch {
                    self.logger.warning("cannot read the Redis Cluster's map", metadata: ["error": "\(error)"])
                }
            }
        }
        let pools = self.state.withLock { Array($0.pools.values) }
        for pool in pools { pool.shutdown() }
    }
}
