public import CacheKit

/// How long until `backend` works again: a write and a read of a probe entry both succeed. Polls every 10 ms, up
/// to `limit` (returned when it never recovers).
public func timeUntilWorking(_ backend: any CacheBackend, scope: CacheScope = .default, limit: Duration = .seconds(10)) async -> Duration {
    let started = ContinuousClock.now
    let key = CacheKey(digest: Digest256(hashing: Array("probe".utf8)), scopeID: scope.id)
    while ContinuousClock.now - started < limit {
        let now = SystemCacheClock().now()
        if (try? await backend.set(CacheEntry(value: [1], createdAt: now, expiresAt: now + .seconds(10)), for: key)) != nil,
            (try? await backend.get(key)) != nil
        {
            return ContinuousClock.now - started
        }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return limit
}

/// Many concurrent reads through one backend's pool, every other one cancelled at a random point, to show that a
/// cancelled call never hands its reply to another caller.
public enum CancellationStorm {
    public struct Result: Sendable, CustomStringConvertible {
        /// Reads answered with their own row.
        public var answered = 0
        /// Reads that ended in an error (cancelled, or their connection destroyed).
        public var cancelled = 0
        /// Reads answered with something other than their own row; also counts rows wrong afterwards. Must be 0.
        public var wrong = 0
        public var description: String { "\(self.cancelled) cancelled, \(self.answered) answered, \(self.wrong) wrong" }
    }

    /// Stores `rows` entries under `scope`, then, with `proxy` (between the backend and its server) adding
    /// `latency`, issues `calls` concurrent reads of random rows and cancels every other one after a random delay
    /// up to `maximumDelay`. Most of those cancels reach calls still queued for a connection, so it then makes sure
    /// some land mid-flight: with 200 ms of latency, `inFlight` reads (the pool's size) are cancelled 50 ms after they
    /// were sent. Finally, with the latency gone, it reads every row once more.
    public static func run(
        on backend: any CacheBackend, scope: CacheScope, rows: Int = 100, calls: Int, maximumDelay: Duration,
        through proxy: TCPFaultProxy, latency: Duration = .milliseconds(3), inFlight: Int = 4
    ) async throws -> Result {
        func key(_ i: Int) -> CacheKey { CacheKey(digest: Digest256(hashing: Array("row \(i)".utf8)), scopeID: scope.id) }
        @Sendable func value(_ i: Int) -> [UInt8] { Array("value \(i)".utf8) }
        let now = SystemCacheClock().now()
        for i in 0..<rows {
            try await backend.set(CacheEntry(value: value(i), createdAt: now, expiresAt: now + .seconds(300)), for: key(i))
        }
        proxy.fault = .latency(latency)
        let maximum = Int(maximumDelay.components.seconds * 1000 + maximumDelay.components.attoseconds / 1_000_000_000_000_000)
        let plan = (0..<calls).map { _ in (row: Int.random(in: 0..<rows), delay: Int.random(in: 0...maximum)) }
        let result = LockedState(Result())
        @Sendable func record(_ outcome: Swift.Result<CacheEntry?, any Error>, row: Int) {
            switch outcome {
            case .success(let entry) where entry?.value == value(row): result.withLock { $0.answered += 1 }
            case .success: result.withLock { $0.wrong += 1 }
            case .failure: result.withLock { $0.cancelled += 1 }
            }
        }
        await withTaskGroup(of: Void.self) { group in
            for (i, step) in plan.enumerated() {
                let call = Task { try await backend.get(key(step.row)) }
                group.addTask {
                    if i % 2 == 0 {
                        try? await Task.sleep(for: .milliseconds(step.delay))
                        call.cancel()
                    }
                    record(await call.result, row: step.row)
                }
            }
        }
        // Certainly mid-flight: sent, the reply held back by the proxy, then cancelled.
        proxy.fault = .latency(.milliseconds(200))
        let held = (0..<inFlight).map { i in (row: i % rows, call: Task { try await backend.get(key(i % rows)) }) }
        try? await Task.sleep(for: .milliseconds(50))
        for (_, call) in held { call.cancel() }
        for (row, call) in held { record(await call.result, row: row) }
        proxy.fault = .none
        for i in 0..<rows where try await backend.get(key(i))?.value != value(i) {
            result.withLock { $0.wrong += 1 }
        }
        return result.withLock { $0 }
    }
}
