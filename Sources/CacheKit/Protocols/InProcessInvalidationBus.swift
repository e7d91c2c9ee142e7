/// An `InvalidationBus` inside one process: for several caches in one process, and for tests.
public final class InProcessInvalidationBus: InvalidationBus {
    private struct State {
        var subscribers: [Int: AsyncStream<InvalidationEvent>.Continuation] = [:]
        var nextID = 0
    }
    private let state = LockedState(State())

    public init() {}

    public func publish(_ event: InvalidationEvent) async throws {
        let subscribers = self.state.withLock { Array($0.subscribers.values) }
        for subscriber in subscribers { subscriber.yield(event) }
    }

    public func subscribe() async throws -> AsyncStream<InvalidationEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: InvalidationEvent.self, bufferingPolicy: .bufferingNewest(10_000))
        let id = self.state.withLock { state in
            let id = state.nextID
            state.nextID += 1
            state.subscribers[id] = continuation
            return id
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
        }
        return stream
    }

    /// How many subscribers are listening.
    public var subscriberCount: Int { self.state.withLock { $0.subscribers.count } }
}
