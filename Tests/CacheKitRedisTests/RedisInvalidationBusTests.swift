import CacheKit
import CacheKitMemory
@testable import CacheKitRedis
import CacheKitTesting
import Foundation
import Testing

/// The invalidation bus notices a dead connection, never drops events silently, and refuses messages it cannot
/// authenticate.
@Suite("Redis invalidation bus", .serialized, .enabled(if: RedisTestServer.available, "needs CACHEKIT_REDIS_URL (scripts/test starts Redis)"))
struct RedisInvalidationBusTests {
    static let secret = Array("bus secret of thirty-two bytes!!".utf8)

    /// A cache with only a memory layer and `bus`, running (so it applies bus events), holding one entry.
    func runningCache(bus: RedisInvalidationBus) async throws -> (MultiLayerCache, MemoryCacheBackend, Task<Void, any Error>) {
        let memory = MemoryCacheBackend()
        var configuration = CacheConfiguration()
        configuration.layers = [CacheLayer(backend: memory)]
        configuration.invalidationBus = bus
        configuration.logger.logLevel = .critical
        let cache = try MultiLayerCache(configuration: configuration)
        let running = Task { try await cache.run() }
        try await Task.sleep(for: .milliseconds(300))  // subscribed
        _ = try await cache.completion(
            for: ChatRequest(model: "m", messages: [.user("kept?")], temperature: 0), upstream: EchoCompletionProvider())
        #expect(memory.usage.entries == 1)
        return (cache, memory, running)
    }

    func waitUntil(_ limit: Duration, _ condition: () -> Bool) async throws -> Duration? {
        let started = ContinuousClock.now
        while ContinuousClock.now - started < limit {
            if condition() { return ContinuousClock.now - started }
            try await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }

    /// A half-open subscriber connection (the proxy stalls it: no reset, no bytes) blocked its read forever, so the
    /// instance never learned it was missing invalidations. The keepalive now finds it within interval + timeout and
    /// the instance drops its local layer.
    @Test func aSilentConnectionIsFoundByTheKeepaliveAndTheLocalLayerDropped() async throws {
        var configuration = try RedisTestServer.configuration()
        let proxy = try TCPFaultProxy(targetPort: Int(configuration.endpoint.description.split(separator: ":").last!)!)
        defer { proxy.stop() }
        configuration.endpoint = .tcp(host: "127.0.0.1", port: proxy.port)
        configuration.connectTimeout = .milliseconds(300)
        let bus = RedisInvalidationBus(
            configuration: configuration, options: .init(keepaliveInterval: .milliseconds(300), keepaliveTimeout: .milliseconds(300)))
        let (_, memory, running) = try await self.runningCache(bus: bus)
        defer { running.cancel() }
        try await Task.sleep(for: .milliseconds(800))
        #expect(memory.usage.entries == 1, "a healthy idle connection answers its PINGs and is kept")
        proxy.fault = .stall
        let detected = try await self.waitUntil(.seconds(5)) { memory.usage.entries == 0 }
        print("half-open bus connection detected and the local layer dropped after \(detected.map { "\($0)" } ?? "never")")
        #expect(detected != nil, "the stalled subscriber never noticed")
        #expect(detected.map { $0 < .seconds(2) } == true)
    }

    /// With a secret, an unsigned or forged message (anyone who can PUBLISH) is refused; a signed one is applied.
    @Test func unsignedOrForgedMessagesAreRefused() async throws {
        let configuration = try RedisTestServer.configuration()
        let bus = RedisInvalidationBus(configuration: configuration, options: .init(messageSecret: Self.secret))
        let (_, memory, running) = try await self.runningCache(bus: bus)
        defer { running.cancel() }
        let channel = "\(configuration.keyPrefix):invalidations"
        try RedisTestServer.cli(["PUBLISH", channel, #"{"all_local":true,"origin":"attacker"}"#])
        let forged = "ck1." + String(repeating: "0", count: 64) + #".{"all_local":true,"origin":"attacker"}"#
        try RedisTestServer.cli(["PUBLISH", channel, forged])
        let signedElsewhere = String(decoding: BusMessage.encode(InvalidationEvent(origin: "x", target: .everythingLocal), secret: Array("another secret of 32 bytes......".utf8)), as: UTF8.self)
        try RedisTestServer.cli(["PUBLISH", channel, signedElsewhere])
        #expect(try await self.waitUntil(.seconds(2)) { bus.refusedMessages == 3 } != nil, "refused \(bus.refusedMessages)")
        #expect(memory.usage.entries == 1, "an unauthenticated message wiped the local layer")

        let peer = RedisInvalidationBus(configuration: configuration, options: .init(messageSecret: Self.secret))
        try await peer.publish(InvalidationEvent(origin: "peer", target: .everythingLocal))
        #expect(try await self.waitUntil(.seconds(2)) { memory.usage.entries == 0 } != nil, "a signed message was not applied")
        await #expect(throws: CacheError.self) {
            try await RedisInvalidationBus(configuration: configuration, options: .init(messageSecret: [1, 2, 3])).publish(InvalidationEvent(origin: "x", target: .tag("t")))
        }
    }

    /// A consumer that falls behind lost the oldest events silently; now a local flush takes their place.
    @Test func anOverflowingBufferQueuesALocalFlushInsteadOfDroppingSilently() async throws {
        let (stream, continuation) = AsyncStream.makeStream(of: InvalidationEvent.self, bufferingPolicy: .bufferingNewest(3))
        let configuration = try RedisTestServer.configuration()
        let subscriber = Subscriber(
            configuration: configuration, nextConfiguration: { configuration }, options: .init(bufferSize: 3), channel: [], continuation: continuation,
            refused: LockedState(0), logger: .init(label: "test"))
        for i in 0..<5 { subscriber.deliver(InvalidationEvent(origin: "o", target: .tag("t\(i)"))) }
        continuation.finish()
        var received: [InvalidationTarget] = []
        for await event in stream { received.append(event.target) }
        #expect(received.last == .everythingLocal, "\(received)")
        #expect(received.count == 3)
        #expect(BusMessage.decode(Array(#"{"origin":"o","tag":"t"}"#.utf8), secret: nil)?.target == .tag("t"))
        #expect(BusMessage.decode(Array(#"{"origin":"o","tag":"t"}"#.utf8), secret: Self.secret) == nil)
        let signed = BusMessage.encode(InvalidationEvent(origin: "o", target: .tag("t")), secret: Self.secret)
        #expect(BusMessage.decode(signed, secret: Self.secret)?.target == .tag("t"))
        var tampered = signed
        tampered[tampered.count - 3] ^= 1
        #expect(BusMessage.decode(tampered, secret: Self.secret) == nil)
    }
}
