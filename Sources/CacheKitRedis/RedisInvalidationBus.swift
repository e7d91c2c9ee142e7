public import CacheKit
public import Logging

/// An `InvalidationBus` over Redis pub/sub: `publish` is a `PUBLISH` on `<prefix>:invalidations`; each
/// `subscribe()` opens a dedicated connection on a thread of its own that `SUBSCRIBE`s and turns messages into
/// events until the stream's consumer stops.
///
/// On a Redis Cluster the bus uses classic, cluster-wide `PUBLISH`/`SUBSCRIBE`, not sharded `SPUBLISH`: the
/// cluster forwards every message to every node, so a subscriber may listen on any node (primary or replica) and, when
/// that node fails, simply reconnects to the next one in the map with nothing to re-route. Invalidations are few and
/// small, so the fan-out costs little; sharded pub/sub would put the one channel on one shard anyway and make the
/// subscriber follow that shard through failovers and slot migrations.
///
/// Pub/sub is at-most-once: messages sent while a subscriber is disconnected are lost. So when the subscriber
/// loses its connection, and again after every reconnect, it yields `.everythingLocal`, and the cache drops its whole
/// local layer (it may have missed invalidations); versioned namespaces cover the rest. A connection that goes
/// silent (half-open: the server or the network vanished without a reset) is found by a keepalive: after
/// `keepaliveInterval` without traffic the subscriber sends `PING`, and without any reply within `keepaliveTimeout`
/// it drops the connection. When the consumer falls behind by more than `bufferSize` events, the oldest are dropped
/// and `.everythingLocal` is queued in their place, so nothing is silently lost.
///
/// With `messageSecret` set, every message carries an HMAC-SHA256 under it and unsigned or forged messages are
/// refused (counted and logged): a client that can only `PUBLISH` cannot wipe the instances' memory layers.
/// Without it, messages are accepted unsigned and the first subscription logs a warning.
public final class RedisInvalidationBus: InvalidationBus {
    /// Bus settings beyond the connection.
    public struct Options: Sendable {
        /// The shared secret that signs messages (at least 16 bytes; the same on every instance). Default `nil`.
        public var messageSecret: [UInt8]?
        /// Silence before the subscriber sends `PING`, and how long it then waits for any reply. Defaults 5 s and 5 s.
        public var keepaliveInterval: Duration
        public var keepaliveTimeout: Duration
        /// Events buffered for a slow consumer before the oldest are replaced by a local flush. Default 10,000.
        public var bufferSize: Int

        public init(messageSecret: [UInt8]? = nil, keepaliveInterval: Duration = .seconds(5), keepaliveTimeout: Duration = .seconds(5), bufferSize: Int = 10_000) {
            self.messageSecret = messageSecret
            self.keepaliveInterval = keepaliveInterval
            self.keepaliveTimeout = keepaliveTimeout
            self.bufferSize = bufferSize
        }
    }

    /// The client that publishes (shared with the Redis layer, or the bus's own).
    public let client: RedisClient
    public var configuration: RedisClient.Configuration { self.client.configuration }
    public let options: Options
    private let logger: Logger
    private let refused = LockedState(0)

    /// A bus on a shared client: publishing leases the client's connections; `subscribe()` opens the one
    /// subscriber connection (and its thread) a subscription needs. Nothing connects until the first `publish` or
    /// `subscribe`. Invalid options (a secret shorter than 16 bytes, a non-positive buffer or keepalive) make both
    /// throw `.invalidConfiguration`.
    public init(client: RedisClient, options: Options = Options(), logger: Logger = Logger(label: "cachekit.redis.bus")) {
        self.client = client
        self.options = options
        self.logger = logger
    }

    /// A convenience: a bus with a client of its own. Prefer `init(client:)` with the client of the Redis layer.
    public convenience init(configuration: RedisClient.Configuration, options: Options = Options(), logger: Logger = Logger(label: "cachekit.redis.bus")) {
        var own = configuration
        own.poolSize = min(configuration.poolSize, 2)
        self.init(client: RedisClient(configuration: own, logger: logger), options: options, logger: logger)
    }

    var channel: [UInt8] { Array("\(self.configuration.keyPrefix):invalidations".utf8) }

    /// Messages refused since start: unsigned or wrongly signed (with a secret), or malformed.
    public var refusedMessages: Int { self.refused.withLock { $0 } }

    func validateOptions() throws(CacheError) {
        if let secret = self.options.messageSecret, secret.count < 16 {
            throw CacheError(.invalidConfiguration, "the bus message secret must be at least 16 bytes", backend: self.configuration.name)
        }
        guard self.options.bufferSize > 0, self.options.keepaliveInterval > .zero, self.options.keepaliveTimeout > .zero else {
            throw CacheError(.invalidConfiguration, "bus buffer size and keepalive times must be positive", backend: self.configuration.name)
        }
    }

    public func publish(_ event: InvalidationEvent) async throws {
        try self.validateOptions()
        let channel = self.channel
        let message = BusMessage.encode(event, secret: self.options.messageSecret)
        if let cluster = self.client.cluster {
            let reply = try await self.client.execute(cluster: cluster, [RedisCluster.Command(key: channel, [Array("PUBLISH".utf8), channel, message])])
            if case .error(let error) = reply[0] { throw CacheError(.commandFailed, "PUBLISH failed: \(error.prefix(120))", backend: self.configuration.name) }
            return
        }
        _ = try await self.client.withConnection { connection throws(CacheError) in
            try connection.execute([Array("PUBLISH".utf8), channel, message])
        }
    }

    public func subscribe() async throws -> AsyncStream<InvalidationEvent> {
        try self.validateOptions()
        if self.options.messageSecret == nil {
            self.logger.warning("invalidation bus messages are not authenticated: set RedisInvalidationBus.Options.messageSecret")
        }
        let (stream, continuation) = AsyncStream.makeStream(of: InvalidationEvent.self, bufferingPolicy: .bufferingNewest(self.options.bufferSize))
        let configuration = self.configuration
        let cluster = self.client.cluster
        let subscriber = Subscriber(
            configuration: configuration,
            nextConfiguration: {
                guard let cluster else { return configuration }
                var node = configuration
                node.endpoint = cluster.nextSubscriberEndpoint()
                return node
            },
            options: self.options, channel: self.channel, continuation: continuation,
            refused: self.refused, logger: self.logger)
        continuation.onTermination = { _ in subscriber.stop() }
        let ready = try await subscriber.start()
        if !ready { self.logger.warning("redis subscriber started while Redis is unreachable; it keeps retrying") }
        return stream
    }
}

/// The bytes of a bus message: the event's JSON, or with a secret `ck1.<HMAC-SHA256 hex>.<JSON>`.
enum BusMessage {
    static let prefix = Array("ck1.".utf8)

    static func encode(_ event: InvalidationEvent, secret: [UInt8]?) -> [UInt8] {
        let json = event.jsonBytes()
        guard let secret else { return json }
        return prefix + Array(Digest256(authenticating: json, key: secret).hex.utf8) + [UInt8(ascii: ".")] + json
    }

    /// The event in `payload`, or `nil` when it must be refused: malformed, or (with a secret) unsigned or forged.
    static func decode(_ payload: [UInt8], secret: [UInt8]?) -> InvalidationEvent? {
        var json = payload[...]
        if payload.starts(with: prefix) {
            let macStart = prefix.count, macEnd = macStart + 64
            guard payload.count > macEnd, payload[macEnd] == UInt8(ascii: ".") else { return nil }
            json = payload[(macEnd + 1)...]
            if let secret {
                let expected = Array(Digest256(authenticating: Array(json), key: secret).hex.utf8)
                // Compared in full, whatever differs first.
                var difference: UInt8 = 0
                for (a, b) in zip(expected, payload[macStart..<macEnd]) { difference |= a ^ b }
                guard difference == 0 else { return nil }
            }
        } else if secret != nil {
            return nil
        }
        return try? InvalidationEvent(json: json)
    }
}

/// One subscriber thread and its connection.
///
/// - Invariant (why `@unchecked Sendable` is sound): `connection` is read and written under `lock`; the thread is
///   the only user of the connection's context except `shutdownSocket()`, which only shuts the socket down to
///   unblock the thread's read (a thread-safe system call) and is called under `lock`, where the thread also closes
///   the connection; `stopped` is read under `lock`.
final class Subscriber: @unchecked Sendable {
    private let configuration: RedisClient.Configuration
    /// The server to (re)connect to: the configured one, or on a cluster the next node in turn.
    private let nextConfiguration: @Sendable () -> RedisClient.Configuration
    private let options: RedisInvalidationBus.Options
    private let channel: [UInt8]
    private let continuation: AsyncStream<InvalidationEvent>.Continuation
    private let refused: LockedState<Int>
    private let logger: Logger
    private let lock = LockedState<(connection: RedisConnection?, stopped: Bool)>((nil, false))
    private let threads: BlockingThreadPool

    init(
        configuration: RedisClient.Configuration, nextConfiguration: @escaping @Sendable () -> RedisClient.Configuration,
        options: RedisInvalidationBus.Options, channel: [UInt8],
        continuation: AsyncStream<InvalidationEvent>.Continuation, refused: LockedState<Int>, logger: Logger
    ) {
        self.configuration = configuration
        self.nextConfiguration = nextConfiguration
        self.options = options
        self.channel = channel
        self.continuation = continuation
        self.refused = refused
        self.logger = logger
        self.threads = BlockingThreadPool(threadCount: 1, name: "ck-redis-sub")
    }

    /// Queues `event`; when the buffer is full (the consumer fell behind), the oldest event was dropped, so a local
    /// flush is queued after it: whatever was dropped is covered.
    func deliver(_ event: InvalidationEvent) {
        if case .dropped = self.continuation.yield(event) {
            self.logger.warning("invalidation events dropped by a slow consumer; flushing the local layers")
            _ = self.continuation.yield(InvalidationEvent(origin: "redis-subscriber-overflow", target: .everythingLocal))
        }
    }

    /// Starts the thread; returns once the first subscription is confirmed (`true`) or failed (`false`).
    func start() async throws -> Bool {
        try await withCheckedThrowingContinuation { (ready: CheckedContinuation<Bool, any Error>) in
            self.threads.submit { self.loop(ready: ready) }
        }
    }

    func stop() {
        // Under the lock: the loop closes (and frees) the connection under the same lock, so the socket is never
        // shut down after its context was freed (ThreadSanitizer found that race when stop() called it outside).
        self.lock.withLock { state in
            state.stopped = true
            state.connection?.shutdownSocket()
        }
        self.threads.submit {}  // the loop exits; shutdown joins nothing from inside
    }

    private var stopped: Bool { self.lock.withLock { $0.stopped } }

    private func loop(ready: CheckedContinuation<Bool, any Error>) {
        var readySignal: CheckedContinuation<Bool, any Error>? = ready
        var backoff: Duration = self.configuration.reconnectBackoff.initial
        var everConnected = false
        while !self.stopped {
            do {
                let connection = try RedisConnection(self.nextConfiguration())
                let keep = self.lock.withLock { state -> Bool in
                    guard !state.stopped else { return false }
                    state.connection = connection
                    return true
                }
                guard keep else {
                    connection.close()
                    break
                }
                _ = try connection.execute([Array("SUBSCRIBE".utf8), self.channel])
                // A read that has begun may take at most the keepalive timeout; between replies the loop polls.
                connection.setTimeout(milliseconds: Int(self.options.keepaliveTimeout.milliseconds))
                if everConnected {
                    // Messages may have been published while we were away.
                    self.deliver(InvalidationEvent(origin: "redis-subscriber-reconnect", target: .everythingLocal))
                }
                everConnected = true
                backoff = self.configuration.reconnectBackoff.initial
                readySignal?.resume(returning: true)
                readySignal = nil
                var awaitingPong = false
                while !self.stopped {
                    let wait = awaitingPong ? self.options.keepaliveTimeout : self.options.keepaliveInterval
                    guard try connection.waitReadable(milliseconds: Int(wait.milliseconds)) else {
                        // Silence: ask, and if even the PING gets no reply, the connection is dead (half-open).
                        if awaitingPong { throw CacheError(.timeout, "no reply to PING within \(self.options.keepaliveTimeout): the connection is dead") }
                        try connection.sendPing()
                        awaitingPong = true
                        continue
                    }
                    let reply = try connection.readReply()
                    awaitingPong = false  // any reply proves the connection alive
                    guard let parts = reply.array, parts.count == 3, parts[0].bytes == Array("message".utf8), let payload = parts[2].bytes else {
                        continue
                    }
                    if let event = BusMessage.decode(payload, secret: self.options.messageSecret) {
                        self.deliver(event)
                    } else {
                        self.refused.withLock { $0 += 1 }
                        self.logger.warning("refused an invalidation message: malformed, unsigned or wrongly signed")
                    }
                }
            } catch {
                if self.stopped { break }
                self.logger.warning("redis subscriber disconnected; reconnecting", metadata: ["error": "\(error)"])
                // Whatever was published from now until the next subscription is lost: drop the local layers now, and
                // again after reconnecting.
                self.deliver(InvalidationEvent(origin: "redis-subscriber-disconnect", target: .everythingLocal))
                readySignal?.resume(returning: false)
                readySignal = nil
                everConnected = true  // whatever happens next, a (re)connection may have missed messages
                let pause = backoff * Double.random(in: 0.5...1.0)
                usleep(UInt32(max(1, pause.milliseconds)) * 1000)
                backoff = min(self.configuration.reconnectBackoff.maximum, backoff * 2)
            }
            self.lock.withLock { state in
                state.connection?.close()
                state.connection = nil
            }
        }
        readySignal?.resume(returning: false)
        self.continuation.finish()
    }
}

#if canImport(Glibc)
import Glibc
#endif
