/// Coalesces concurrent identical upstream calls: the first caller for a key runs the call in a task of its own,
/// every caller for the same key awaits that task. The table is bounded; past the bound `run` returns `nil` and
/// the caller runs uncoalesced.
final class SingleFlight<Value: Sendable>: Sendable {
    private let flights = LockedState<[CacheKey: Task<Value, any Error>]>([:])
    let limit: Int

    init(limit: Int) { self.limit = limit }

    /// Awaits the flight for `key`, starting it with `operation` if there is none.
    /// Returns the value and whether this caller joined an existing flight; `nil` when the table is full.
    func run(
        _ key: CacheKey,
        operation: @escaping @Sendable () async throws -> Value
    ) async throws -> (value: Value, joined: Bool)? {
        let (task, joined): (Task<Value, any Error>?, Bool) = self.flights.withLock { flights in
            if let existing = flights[key] { return (existing, true) }
            guard flights.count < self.limit else { return (nil, false) }
            let task = Task {
                defer { _ = self.flights.withLock { $0.removeValue(forKey: key) } }
                return try await operation()
            }
            flights[key] = task
            return (task, false)
        }
        guard let task else { return nil }
        return (try await task.value, joined)
    }

    /// Starts a flight for `key` if there is none and the table has room; does not wait. Returns whether it started.
    func startIfIdle(_ key: CacheKey, operation: @escaping @Sendable () async throws -> Value) -> Bool {
        self.flights.withLock { flights in
            guard flights[key] == nil, flights.count < self.limit else { return false }
            flights[key] = Task {
                defer { _ = self.flights.withLock { $0.removeValue(forKey: key) } }
                return try await operation()
            }
            return true
        }
    }

    /// Flights in progress.
    var count: Int { self.flights.withLock { $0.count } }
}
