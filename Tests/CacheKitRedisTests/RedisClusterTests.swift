import CacheKit
import CacheKitTesting
import Foundation
import Testing

@testable import CacheKitRedis

/// The 3-primary, 3-replica cluster scripts/test starts (CACHEKIT_REDIS_CLUSTER_URL).
enum RedisClusterTestServer {
    static let url = ProcessInfo.processInfo.environment["CACHEKIT_REDIS_CLUSTER_URL"]
    static var available: Bool { url != nil }

    static func configuration(prefix: String = "ck-cluster-\(UInt32.random(in: 0...UInt32.max))") throws -> RedisClient.Configuration {
        var configuration = try RedisClient.Configuration(url: url ?? "redis+cluster://127.0.0.1:6400")
        configuration.keyPrefix = prefix
        return configuration
    }

    /// The ports of the cluster's nodes that hold slots, and of those that replicate them, as a node reports them.
    static func roles(askingPort port: Int) throws -> (primaries: [Int], replicas: [Int]) {
        var primaries: [Int] = [], replicas: [Int] = []
        for line in try RedisTestServer.cli(["cluster", "nodes"], port: port).split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 8, !fields[2].contains("fail"), let address = fields[1].split(separator: "@").first,
                let nodePort = address.split(separator: ":").last.flatMap({ Int($0) })
            else { continue }
            if fields[2].contains("master"), fields.count > 8 { primaries.append(nodePort) }
            if fields[2].contains("slave") { replicas.append(nodePort) }
        }
        return (primaries.sorted(), replicas.sorted())
    }
}

@Suite("Redis Cluster: slots, map and URL")
struct RedisClusterUnitTests {
    @Test func slotsAreTheServersCRC16WithHashTags() {
        #expect(RedisClusterSlot.crc16(Array("123456789".utf8)) == 0x31C3)
        // Slots the server reports (CLUSTER KEYSLOT) for the same keys.
        #expect(RedisClusterSlot.of(Array("foo".utf8)) == 12182)
        #expect(RedisClusterSlot.of(Array("bar".utf8)) == 5061)
        #expect(RedisClusterSlot.of(Array("{user1000}.following".utf8)) == RedisClusterSlot.of(Array("{user1000}.followers".utf8)))
        #expect(RedisClusterSlot.of(Array("{user1000}.following".utf8)) == RedisClusterSlot.of(Array("user1000".utf8)))
        // An empty tag hashes the whole key; only the first tag counts.
        #expect(RedisClusterSlot.of(Array("foo{}{bar}".utf8)) == Int(RedisClusterSlot.crc16(Array("foo{}{bar}".utf8)) & 0x3FFF))
        #expect(RedisClusterSlot.of(Array("foo{{bar}}zap".utf8)) == RedisClusterSlot.of(Array("{bar".utf8)))
        #expect(RedisClusterSlot.of(Array("foo{bar}{zap}".utf8)) == RedisClusterSlot.of(Array("bar".utf8)))
    }

    func node(_ host: String, _ port: Int64) -> RedisValue { .array([.bulk(Array(host.utf8)), .integer(port), .bulk(Array("id".utf8))]) }

    @Test func aSlotsReplyIsReadAndCheckedBeforeUse() throws {
        let reply = RedisValue.array([
            .array([.integer(0), .integer(8191), self.node("10.0.0.1", 7000), self.node("10.0.0.4", 7003)]),
            .array([.integer(8192), .integer(16383), self.node("", 7001), self.node("?", 7004)]),
        ])
        let map = try RedisClusterMap(slotsReply: reply, askedHost: "10.0.0.9")
        #expect(map.coveredSlots == 16384)
        #expect(map.shard(ofSlot: 0)?.primary == .tcp(host: "10.0.0.1", port: 7000))
        #expect(map.shard(ofSlot: 0)?.replicas == [.tcp(host: "10.0.0.4", port: 7003)])
        #expect(map.shard(ofSlot: 16383)?.primary == .tcp(host: "10.0.0.9", port: 7001), "an empty host is the node asked")
        #expect(map.shard(ofSlot: 16383)?.replicas == [], "a node of unknown address is left out")
        #expect(map.shard(ofSlot: 16384) == nil)
        #expect(map.shard(ofSlot: -1) == nil)

        var moved = map
        moved.move(slot: 5, to: .tcp(host: "10.0.0.2", port: 7002))
        #expect(moved.shard(ofSlot: 5)?.primary == .tcp(host: "10.0.0.2", port: 7002))
        #expect(moved.shard(ofSlot: 6)?.primary == .tcp(host: "10.0.0.1", port: 7000))

        let hostile: [RedisValue] = [
            .integer(3),
            .array([.array([.integer(0), .integer(16384), self.node("a", 1)])]),
            .array([.array([.integer(9), .integer(3), self.node("a", 1)])]),
            .array([.array([.integer(-1), .integer(3), self.node("a", 1)])]),
            .array([.array([.integer(0), .integer(3), self.node("a", 0)])]),
            .array([.array([.integer(0), .integer(3), self.node("a", 65536)])]),
            .array([.array([.integer(0), .integer(3)])]),
            .array([.array([.integer(0), .integer(3), .array([.integer(1), .integer(2)])])]),
            .array([.array([.integer(0), .integer(3), .bulk(Array(repeating: 65, count: 300))])]),
            .array(Array(repeating: .array([.integer(0), .integer(0), self.node("a", 1)]), count: 16385)),
        ]
        for reply in hostile {
            #expect(throws: CacheError.self) { try RedisClusterMap(slotsReply: reply, askedHost: "h") }
        }
    }

    @Test func redirectsAreReadStrictly() {
        #expect(RedisClusterRedirect("MOVED 3999 127.0.0.1:6381") == .moved(slot: 3999, to: .tcp(host: "127.0.0.1", port: 6381)))
        #expect(RedisClusterRedirect("ASK 3999 [::1]:6381") == .ask(slot: 3999, to: .tcp(host: "::1", port: 6381)))
        #expect(RedisClusterRedirect("TRYAGAIN Multiple keys request during rehashing of slot") == .retry)
        #expect(RedisClusterRedirect("CLUSTERDOWN The cluster is down") == .retry)
        for message in ["MOVED 16384 h:1", "MOVED x h:1", "MOVED 1 h:0", "MOVED 1 :1", "MOVED 1", "ASK 1 h", "WRONGTYPE x", "ERR"] {
            #expect(RedisClusterRedirect(message) == nil, "\(message)")
        }
    }

    @Test func clusterURLs() throws {
        let configuration = try RedisClient.Configuration(url: "redis+cluster://user:p%40ss@10.0.0.1:7000,10.0.0.2,[::1]:7002?readFromReplicas=true")
        #expect(configuration.endpoint == .tcp(host: "10.0.0.1", port: 7000))
        #expect(configuration.cluster?.seeds == [.tcp(host: "10.0.0.2", port: 6379), .tcp(host: "::1", port: 7002)])
        #expect(configuration.cluster?.readFromReplicas == true)
        #expect(configuration.username == "user" && configuration.password == "p@ss")
        #expect(!configuration.description.contains("p@ss"))
        #expect(try RedisClient.Configuration(url: "redis+cluster://h:1/0").cluster?.readFromReplicas == false)
        for bad in ["redis+cluster://h:1/2", "redis+cluster://h:1,,h:2", "redis+cluster://", "redis+cluster://h:1?foo=1", "redis+cluster://h:99999"] {
            #expect(throws: CacheError.self, "\(bad)") { try RedisClient.Configuration(url: bad) }
        }
        // A database other than 0 set by hand is refused at the first command, naming the setting.
        var wrong = try RedisClient.Configuration(url: "redis+cluster://127.0.0.1:1")
        wrong.database = 3
        #expect(throws: CacheError.self) { try wrong.validateCluster() }
    }
}

@Suite("Redis Cluster against a 3+3 cluster", .enabled(if: RedisClusterTestServer.available, "needs CACHEKIT_REDIS_CLUSTER_URL (scripts/test starts a cluster)"))
struct RedisClusterConformanceTests {
    @Test(arguments: CacheBackendConformance.Behaviour.allCases)
    func conformance(_ behaviour: CacheBackendConformance.Behaviour) async throws {
        try await CacheBackendConformance.realTime(largeValueBytes: 10 << 20) {
            RedisCacheBackend(configuration: try RedisClusterTestServer.configuration())
        }.run(behaviour)
    }

    func entry(_ i: Int, tags: [String], scope: CacheScope = .default) -> KeyedEntry {
        let now = SystemCacheClock().now()
        return KeyedEntry(
            key: CacheKey(digest: Digest256(hashing: Array("cluster \(i)".utf8)), scopeID: scope.id),
            entry: CacheEntry(value: Array("value \(i)".utf8), createdAt: now, expiresAt: now + .seconds(60), tags: tags))
    }

    /// Entries land on every primary; tags, scopes and bulk writes work across slots and nodes.
    @Test func entriesSpreadOverEveryPrimaryAndRemovalsReachThemAll() async throws {
        let configuration = try RedisClusterTestServer.configuration()
        let client = RedisClient(configuration: configuration)
        let backend = RedisCacheBackend(client: client)
        let seedPort = configuration.endpoint.description.split(separator: ":").last.flatMap { Int($0) } ?? 6400
        let (primaries, _) = try RedisClusterTestServer.roles(askingPort: seedPort)
        #expect(primaries.count == 3)
        func keysPerPrimary() throws -> [Int] {
            try primaries.map { port in
                try RedisTestServer.cli(["--scan", "--pattern", "\(configuration.keyPrefix):e:*"], port: port).split(separator: "\n").count
            }
        }
        let scope = CacheScope(tenant: "cluster-tenant")
        try await backend.set((0..<300).map { self.entry($0, tags: $0 % 3 == 0 ? ["third", "all"] : ["all"]) })
        try await backend.set((0..<60).map { self.entry(1000 + $0, tags: [], scope: scope) })
        let spread = try keysPerPrimary()
        print("300 + 60 entries over the primaries: \(spread)")
        #expect(spread.count == 3 && spread.allSatisfy { $0 > 60 }, "entries not spread over every primary: \(spread)")
        let read = try await backend.get((0..<300).map { self.entry($0, tags: []).key })
        #expect(read.enumerated().allSatisfy { $0.element?.value == Array("value \($0.offset)".utf8) })

        #expect(try await backend.removeAll(taggedWith: "third") == 100)
        #expect(try await backend.removeAll(in: scope) == 60)
        #expect(try await backend.removeAll(taggedWith: "all") == 200)
        #expect(try keysPerPrimary() == [0, 0, 0])
        #expect(try await backend.removeAll(taggedWith: "all") == 0)
        #expect(client.poolCounters.open >= 3, "a pool per primary")
    }

    /// The bus on a cluster: a message published through one node reaches a subscriber on whichever node it listens.
    @Test func theBusDeliversAcrossNodes() async throws {
        let configuration = try RedisClusterTestServer.configuration()
        let publisher = RedisInvalidationBus(client: RedisClient(configuration: configuration))
        var streams: [AsyncStream<InvalidationEvent>] = []
        // Three subscribers of one client take three different nodes in turn.
        let subscribing = RedisInvalidationBus(client: RedisClient(configuration: configuration))
        for _ in 0..<3 { streams.append(try await subscribing.subscribe()) }
        try await Task.sleep(for: .milliseconds(200))
        try await publisher.publish(InvalidationEvent(origin: "elsewhere", target: .tag("across-nodes")))
        for stream in streams {
            var received: InvalidationTarget?
            for await event in stream {
                received = event.target
                break
            }
            #expect(received == .tag("across-nodes"))
        }
    }

    /// With replica reads, reads reach the replicas, and a removal is acknowledged by them before it returns: a read
    /// right after never finds the removed entry on a replica.
    @Test func replicaReadsAndRemovalsThatReplicasAcknowledge() async throws {
        var configuration = try RedisClusterTestServer.configuration()
        configuration.cluster?.readFromReplicas = true
        let backend = RedisCacheBackend(configuration: configuration)
        let seedPort = configuration.endpoint.description.split(separator: ":").last.flatMap { Int($0) } ?? 6400
        let (_, replicas) = try RedisClusterTestServer.roles(askingPort: seedPort)
        func replicaGets() throws -> Int {
            try replicas.reduce(0) { total, port in
                let stats = try RedisTestServer.cli(["info", "commandstats"], port: port)
                let line = stats.split(separator: "\r\n").first { $0.hasPrefix("cmdstat_get:") } ?? ""
                let calls = line.split(separator: "=").dropFirst().first?.split(separator: ",").first.flatMap { Int($0) } ?? 0
                return total + calls
            }
        }
        let before = try replicaGets()
        var staleAfterRemoval = 0
        for i in 0..<40 {
            let write = self.entry(5000 + i, tags: ["replicated"])
            try await backend.set(write.entry, for: write.key)
            let started = ContinuousClock.now
            while try await backend.get(write.key) == nil, ContinuousClock.now - started < .seconds(2) {}
            #expect(try await backend.remove(write.key))
            if try await backend.get(write.key) != nil { staleAfterRemoval += 1 }
        }
        let served = try replicaGets() - before
        print("replica reads: \(served) GETs served by replicas; \(staleAfterRemoval) stale reads right after a removal")
        #expect(served >= 80, "reads did not go to the replicas")
        #expect(staleAfterRemoval == 0)
    }
}
