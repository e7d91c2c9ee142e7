/// Runs `operation` with a time limit. Returns as soon as the limit passes even if the operation ignores
/// cancellation (a hung socket read): the operation's task is cancelled and left to finish on its own.
///
/// - Throws: `CacheError` `.timeout` past the limit, the operation's error, or `CancellationError` if the caller is
///   cancelled.
func withDeadline<T: Sendable>(
    _ timeout: Duration?,
    backend: String,
    _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    guard let timeout else { return try await operation() }
    let gate = LockedState<CheckedContinuation<T, any Error>?>(nil)
    let work = LockedState<[Task<Void, Never>]>([])
    @Sendable func finish(_ result: Result<T, any Error>) {
        let continuation = gate.withLock { state -> CheckedContinuation<T, any Error>? in
            defer { state = nil }
            return state
        }
        continuation?.resume(with: result)
        for task in work.withLock({ $0 }) { task.cancel() }
    }
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { continuation in
            gate.withLock { $0 = continuation }
            let runner = Task {
                do { finish(.success(try await operation())) } catch { finish(.failure(error)) }
            }
            let timer = Task {
                do {
                    try await Task.sleep(for: timeout)
                    finish(.failure(CacheError(.timeout, "operation timed out after \(timeout)", backend: backend)))
                } catch {}
            }
            work.withLock { $0 = [runner, timer] }
            if gate.withLock({ $0 == nil }) {
                runner.cancel()
                timer.cancel()
            }
        }
    } onCancel: {
        finish(.failure(CancellationError()))
    }
}
