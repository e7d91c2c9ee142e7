import CacheKit
import CacheKitRedis
import CacheKitTesting
import Foundation
import Testing

/// A 3-primary, 3-replica Redis Cluster owned by one test, on its own ports, whose nodes the test may kill, restart,
/// fail over and reshard.
final class OwnedRedisCluster: @unchecked Sendable {
    let ports: [Int]
    let directory: String
    private var processes: [Int: Process] = [:]

    init(basePort: Int) throws {
        self.ports = Array(basePort..<(basePort + 6))
        self.directory = NSTemporaryDirectory() + "cachekit-cluster-\(basePort)-\(UInt32.random(in: 0...UInt32.max))"
        for port in self.ports {
            _ = try? RedisTestServer.cli(["shutdown", "nosave"], port: port)
            try FileManager.default.createDirectory(atPath: "\(self.directory)/\(port)", withIntermediateDirectories: true)
            try self.start(port)
        }
        try Self.run("/usr/bin/redis-cli", ["--cluster", "create"] + self.ports.map { "127.0.0.1:\($0)" } + ["--cluster-replicas", "1", "--cluster-yes"])
        try self.waitUntilHealthy(replicas: 3)
    }

    /// Starts (or restarts, rejoining with its nodes.conf) the node on `port`.
    func start(_ port: Int) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/redis-server")
        process.arguments = [
            "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000", "--repl-diskless-sync-delay", "0", "--dir", "\(self.directory)/\(port)",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.processes[port] = process
        for _ in 0..<100 {
            if (try? RedisTestServer.cli(["ping"], port: port))?.contains("PONG") == true { return }
            usleep(20_000)
        }
        throw CacheError(.unavailable, "cluster node \(port) did not start")
    }

    func kill(_ port: Int) {
        guard let process = self.processes.removeValue(forKey: port) else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Waits until every live node reports `cluster_state:ok`, `replicas` replicas are known, and every replica's link
    /// to its primary is up (a replica that never synced cannot take over).
    func waitUntilHealthy(replicas: Int, timeout: Duration = .seconds(20)) throws {
        let started = ContinuousClock.now
        while ContinuousClock.now - started < timeout {
            let live = self.processes.keys.sorted()
            let healthy = live.allSatisfy { port in
                (try? RedisTestServer.cli(["cluster", "info"], port: port))?.contains("cluster_state:ok") == true
            }
            let linked = live.reduce(0) { count, port in
                count + ((try? RedisTestServer.cli(["info", "replication"], port: port))?.contains("master_link_status:up") == true ? 1 : 0)
            }
            if healthy, linked == replicas, let first = live.first, (try? RedisClusterTestServer.roles(askingPort: first))?.replicas.count == replicas {
                return
            }
            usleep(100_000)
        }
        throw CacheError(.timeout, "the owned cluster did not become healthy within \(timeout)")
    }

    /// The node id of the node on `port`.
    func nodeID(_ port: Int) throws -> String {
        try RedisTestServer.cli(["cluster", "myid"], port: port).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The replica of the primary on `port`.
    func replica(of port: Int) throws -> Int? {
        let id = try self.nodeID(port)
        for line in try RedisTestServer.cli(["cluster", "nodes"], port: port).split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count > 3, fields[2].contains("slave"), fields[3] == id {
                return fields[1].split(separator: "@").first?.split(separator: ":").last.flatMap { Int($0) }
            }
        }
        return nil
    }

    static func run(_ executable: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw CacheError(.unavailable, "\(executable) \(arguments.prefix(3).joined(separator: " ")) exited with \(process.terminationStatus)")
        }
    }

    deinit {
        for port in Array(self.processes.keys) { self.kill(port) }
        try? FileManager.default.removeItem(atPath: self.directory)
    }
}

/// Faults of a Redis Cluster under a steady load through `MultiLayerCache` (the cluster as the only layer, so every
/// hit comes from it): a primary killed, a manual failover, a slot migration.
@Suite("Redis Cluster faults", .serialized, .enabled(if: RedisClusterTestServer.available, "needs redis-server in cluster mode (scripts/test)"))
struct RedisClusterFaultTests {
    struct LoadResult {
        var requests = 0
        var failures = 0
        var wrong = 0
        var hits = 0
    }

    static let questions = 200

    func makeCache(_ cluster: OwnedRedisCluster) throws -> (MultiLayerCache, RedisClient) {
        var configuration = try RedisClient.Configuration(url: "redis+cluster://127.0.0.1:\(cluster.ports[0]),127.0.0.1:\(cluster.ports[1])")
        configuration.keyPrefix = "ck-fault"
        configuration.commandTimeout = .milliseconds(300)
        configuration.connectTimeout = .milliseconds(300)
        let client = RedisClient(configuration: configuration)
        var cacheConfiguration = CacheConfiguration()
        cacheConfiguration.layers = [.redis(client: client, timeout: .milliseconds(500))]
        cacheConfiguration.logger.logLevel = .critical
        return (try MultiLayerCache(configuration: cacheConfiguration), client)
    }

    func request(_ i: Int) -> ChatRequest { ChatRequest(model: "m", messages: [.user("question \(i)")], temperature: 0) }

    /// Four callers asking the questions in turn until `stop`; counts failures, wrong answers and hits.
    func load(_ cache: MultiLayerCache, upstream: EchoCompletionProvider, until stop: LockedState<Bool>) async -> LoadResult {
        await withTaskGroup(of: LoadResult.self) { group in
            for caller in 0..<4 {
                group.addTask {
                    var result = LoadResult()
                    var i = caller
                    while !stop.withLock({ $0 }) {
                        let question = i % Self.questions
                        do {
                            let answer = try await cache.completion(for: self.request(question), upstream: upstream)
                            if answer.response.text != "answer to: question \(question)" { result.wrong += 1 }
                            if answer.outcome.source == .hitL1 { result.hits += 1 }
                        } catch {
                            result.failures += 1
                        }
                        result.requests += 1
                        i += 4
                        try? await Task.sleep(for: .milliseconds(1))
                    }
                    return result
                }
            }
            var total = LoadResult()
            for await part in group {
                total.requests += part.requests
                total.failures += part.failures
                total.wrong += part.wrong
                total.hits += part.hits
            }
            return total
        }
    }

    /// Fills the cache, then waits until every question is a hit (the entries replicated).
    func warm(_ cache: MultiLayerCache, _ upstream: EchoCompletionProvider) async throws {
        for i in 0..<Self.questions { _ = try await cache.completion(for: self.request(i), upstream: upstream) }
        try await Task.sleep(for: .milliseconds(200))
    }

    /// How long until every question is served from the cluster again (polled every 20 ms, at most 20 s).
    func timeUntilAllHit(_ cache: MultiLayerCache, _ upstream: EchoCompletionProvider, since start: ContinuousClock.Instant) async -> Duration {
        while ContinuousClock.now - start < .seconds(20) {
            var all = true
            for i in stride(from: 0, to: Self.questions, by: 7) {
                if (try? await cache.completion(for: self.request(i), upstream: upstream))?.outcome.source != .hitL1 {
                    all = false
                    break
                }
            }
            if all { return ContinuousClock.now - start }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return .seconds(20)
    }

    @Test func aPrimaryKilledMidLoadIsReplacedByItsReplica() async throws {
        let cluster = try OwnedRedisCluster(basePort: 6420)
        let (cache, client) = try self.makeCache(cluster)
        let upstream = EchoCompletionProvider()
        try await self.warm(cache, upstream)
        let service = Task { try await client.run() }
        defer { service.cancel() }
        // Three subscribers take three nodes in turn (the second primary's among them): each must hear a message
        // published after the failover, the one on the killed node after reconnecting elsewhere.
        let bus = RedisInvalidationBus(client: client, options: .init(keepaliveInterval: .milliseconds(500), keepaliveTimeout: .milliseconds(500)))
        var streams: [AsyncStream<InvalidationEvent>] = []
        for _ in 0..<3 { streams.append(try await bus.subscribe()) }
        let stop = LockedState(false)
        let loader = Task { await self.load(cache, upstream: upstream, until: stop) }
        try await Task.sleep(for: .milliseconds(300))
        // The primary of the second third of the slots, not a seed the client was given first.
        let victim = cluster.ports[2]
        let killed = ContinuousClock.now
        cluster.kill(victim)
        let recovery = await self.timeUntilAllHit(cache, upstream, since: killed)
        try await Task.sleep(for: .milliseconds(300))
        stop.withLock { $0 = true }
        let result = await loader.value
        let statistics = cache.statistics().layers[0]
        print(
            "Redis Cluster, primary SIGKILLed: \(result.requests) requests, \(result.failures) failed, \(result.wrong) wrong, "
                + "\(statistics.errors) layer errors counted, every question a hit again \(recovery) after the kill")
        #expect(result.failures == 0, "user requests failed during the failover")
        #expect(result.wrong == 0, "wrong answers during the failover")
        #expect(recovery < .seconds(15), "the cluster did not serve every entry again")
        if recovery >= .seconds(15) {
            print(try RedisTestServer.cli(["cluster", "nodes"], port: cluster.ports[0]))
            for i in stride(from: 0, to: Self.questions, by: 7) {
                let source = try await cache.completion(for: self.request(i), upstream: upstream).outcome.source
                if source != .hitL1 { print("question \(i): \(source)") }
            }
        }
        #expect(cache.statistics().layers[0].corruptEntries == 0)
        try await bus.publish(InvalidationEvent(origin: "after-failover", target: .tag("after-failover")))
        var reconnected = 0
        for stream in streams {
            for await event in stream {
                if event.target == .everythingLocal { reconnected += 1 }
                if event.target == .tag("after-failover") { break }
            }
        }
        print("bus after the failover: all 3 subscribers heard the next message; \(reconnected) had reconnected (and flushed their local layer)")
        #expect(reconnected >= 1, "no subscriber was on the killed node, or it did not report its reconnection")
        // The killed node comes back as a replica of its successor.
        try cluster.start(victim)
        try cluster.waitUntilHealthy(replicas: 3)
    }

    @Test func aManualFailoverAndASlotMigrationLoseNothing() async throws {
        let cluster = try OwnedRedisCluster(basePort: 6430)
        let (cache, client) = try self.makeCache(cluster)
        let upstream = EchoCompletionProvider()
        try await self.warm(cache, upstream)
        let service = Task { try await client.run() }
        defer { service.cancel() }
        let callsBefore = upstream.calls

        // CLUSTER FAILOVER on a replica: it becomes primary with no data loss; the client follows MOVED.
        let stop = LockedState(false)
        let loader = Task { await self.load(cache, upstream: upstream, until: stop) }
        try await Task.sleep(for: .milliseconds(200))
        guard let replica = try cluster.replica(of: cluster.ports[1]) else {
            Issue.record("no replica of \(cluster.ports[1])")
            return
        }
        let failoverStarted = ContinuousClock.now
        _ = try RedisTestServer.cli(["cluster", "failover"], port: replica)
        while try RedisTestServer.cli(["role"], port: replica).hasPrefix("slave"), ContinuousClock.now - failoverStarted < .seconds(10) {
            try await Task.sleep(for: .milliseconds(10))
        }
        let promoted = ContinuousClock.now - failoverStarted
        try await Task.sleep(for: .milliseconds(500))
        stop.withLock { $0 = true }
        let failover = await loader.value
        let errorsAfterFailover = cache.statistics().layers[0].errors
        print(
            "Redis Cluster, CLUSTER FAILOVER: \(failover.requests) requests, \(failover.failures) failed, \(failover.wrong) wrong, "
                + "\(failover.hits) hits, replica promoted in \(promoted), \(errorsAfterFailover) layer errors, "
                + "\(upstream.calls - callsBefore) upstream calls")

        // A slot migration of 1000 slots from the first primary to the third, during traffic (ASK, then MOVED).
        let source = try cluster.nodeID(cluster.ports[0])
        let destination = try cluster.nodeID(cluster.ports[2])
        let stopMigration = LockedState(false)
        let migrationLoader = Task { await self.load(cache, upstream: upstream, until: stopMigration) }
        let reshardStarted = ContinuousClock.now
        let reshard = Task.detached {
            try OwnedRedisCluster.run(
                "/usr/bin/redis-cli",
                [
                    "--cluster", "reshard", "127.0.0.1:\(cluster.ports[0])", "--cluster-from", source, "--cluster-to", destination,
                    "--cluster-slots", "1000", "--cluster-yes",
                ])
        }
        try await reshard.value
        let reshardTime = ContinuousClock.now - reshardStarted
        try await Task.sleep(for: .milliseconds(300))
        stopMigration.withLock { $0 = true }
        let migration = await migrationLoader.value
        let errors = cache.statistics().layers[0].errors - errorsAfterFailover
        print(
            "Redis Cluster, 1000 slots resharded in \(reshardTime): \(migration.requests) requests, \(migration.failures) failed, "
                + "\(migration.wrong) wrong, \(migration.hits) hits, \(errors) layer errors")
        #expect(failover.failures == 0 && migration.failures == 0, "user requests failed")
        #expect(failover.wrong == 0 && migration.wrong == 0, "wrong answers")
        #expect(errors == 0, "the slot migration made cluster calls fail instead of following ASK/MOVED")
        #expect(migration.hits == migration.requests, "entries were lost or unreachable during the migration")
        #expect(errorsAfterFailover == 0, "the manual failover made cluster calls fail instead of following MOVED")
    }
}
