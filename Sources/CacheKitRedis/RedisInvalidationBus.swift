import CacheKit
import Logging

/// An `InvalidationBus` over Redis pub/sub: `publish` is a `PUBLISH` on `<prefix>:invalidations`; each
/// `subscribe()` opens a dedicated connection on a thread of its own that `SUBSCRIBE`s and turns messages into
/// events until the stream's consumer stops.
///
/// Pub/sub is at-most-once: messages sent while a subscriber is disconnected are lost. So after every reconnect
/// the subscriber yields `.everythingLocal`, and the cache drops its whole local layer (it may have missed
/// invalidations); versioned namespaces cover the rest.
public final class RedisInvalidationBus: InvalidationBus {
    public let configuration: RedisConfiguration
    private let publisher: ConnectionPool<RedisConnection>
    private let logger: Logger

    public init(configuration: RedisConfiguration, logger: Logger = Logger(label: "cachekit.redis.bus")) {
        var publishing = configuration.poolConfiguration
        publishing.size = min(configuration.poolSize, 2)
        self.configuration = configuration
        self.publisher = ConnectionPool(configuration: publishing, logger: logger) { try RedisConnection(configuration) }
        self.logger = logger
    }

    var channel: [UInt8] { Array("\(self.configuration.keyPrefix):invalidations".utf8) }

    public func publish(_ event: InvalidationEvent) async throws {
        let channel = self.channel
        let message = event.jsonBytes()
        _ = try await self.publisher.withConnection { connection throws(CacheError) in
            try connection.execute([Array("PUBLISH".utf8), channel, message])
        }
    }

    public func subscribe() async throws -> AsyncStream<InvalidationEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: InvalidationEvent.self, bufferingPolicy: .bufferingNewest(10_000))
        let subscriber = Subscriber(configuration: self.configuration, channel: self.channel, continuation: continuation, logger: self.logger)
        continuation.onTermination = { _ in subscriber.stop() }
        let ready = try await subscriber.start()
        if !ready { self.logger.warning("redis subscriber started while Redis is unreachable; it keeps retrying") }
        return stream
    }
}

/// One subscriber thread and its connection.
///
/// - Invariant (why `@unchecked Sendable` is sound): `connection` is read and written under `lock`; the thread is
///   the only user of the connection's context except `shutdownSocket()`, which only shuts the socket down to
///   unblock the thread's read (a thread-safe system call), and `stopped` is read under `lock`.
final class Subscriber: @unchecked Sendable {
    private let configuration: RedisConfiguration
    private let channel: [UInt8]
    private let continuation: AsyncStream<InvalidationEvent>.Continuation
    private let logger: Logger
    private let lock = LockedState<(connection: RedisConnection?, stopped: Bool)>((nil, false))
    private let threads: BlockingThreadPool

    init(configuration: RedisConfiguration, channel: [UInt8], continuation: AsyncStream<InvalidationEvent>.Continuation, logger: Logger) {
        self.configuration = configuration
        self.channel = channel
        self.continuation = continuation
        self.logger = logger
        self.threads = BlockingThreadPool(threadCount: 1, name: "ck-redis-sub")
    }

    /// Starts the thread; returns once the first subscription is confirmed (`true`) or failed (`false`).
    func start() async throws -> Bool {
        try await withCheckedThrowingContinuation { (ready: CheckedContinuation<Bool, any Error>) in
            self.threads.submit { self.loop(ready: ready) }
        }
    }

    func stop() {
        let connection = self.lock.withLock { state -> RedisConnection? in
            state.stopped = true
            return state.connection
        }
        connection?.shutdownSocket()
        self.threads.submit {}  // the loop exits; shutdown joins nothing from inside
    }

    private var stopped: Bool { self.lock.withLock { $0.stopped } }

    private func loop(ready: CheckedContinuation<Bool, any Error>) {
        var readySignal: CheckedContinuation<Bool, any Error>? = ready
        var backoff: Duration = self.configuration.reconnectBackoff.initial
        var everConnected = false
        while !self.stopped {
            do {
                let connection = try RedisConnection(self.configuration)
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
                connection.setTimeout(milliseconds: 0)  // wait for messages indefinitely; stop() shuts the socket
                if everConnected {
                    // Messages may have been published while we were away.
                    self.continuation.yield(InvalidationEvent(origin: "redis-subscriber-reconnect", target: .everythingLocal))
                }
                everConnected = true
                backoff = self.configuration.reconnectBackoff.initial
                readySignal?.resume(returning: true)
                readySignal = nil
                while !self.stopped {
                    let reply = try connection.readReply()
                    guard let parts = reply.array, parts.count == 3, parts[0].bytes == Array("message".utf8), let payload = parts[2].bytes else {
                        continue
                    }
                    do {
                        self.continuation.yield(try InvalidationEvent(json: payload))
                    } catch {
                        self.logger.warning("ignored a malformed invalidation message", metadata: ["error": "\(error)"])
                    }
                }
            } catch {
                if self.stopped { break }
                self.logger.warning("redis subscriber disconnected; reconnecting", metadata: ["error": "\(error)"])
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
