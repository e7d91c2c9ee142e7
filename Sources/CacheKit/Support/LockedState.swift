#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A value guarded by a `pthread_mutex_t`.
///
/// CacheKit uses this box instead of `Synchronization.Mutex` on the hot paths because ThreadSanitizer on Linux
/// reports false races on `Mutex` under contention, and the concurrency tests are run under TSan.
///
/// - Invariant (why `@unchecked Sendable` is sound): `state` is read or written only inside `withLock`, which holds
///   the mutex for the whole closure; the mutex itself is allocated once in `init` and destroyed once in `deinit`.
package final class LockedState<State>: @unchecked Sendable {
    private var state: State
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    /// Creates the box around an initial value.
    package init(_ initial: State) {
        self.state = initial
        self.mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        self.mutex.initialize(to: pthread_mutex_t())
        let rc = pthread_mutex_init(self.mutex, nil)
        precondition(rc == 0, "pthread_mutex_init failed with \(rc)")
    }

    deinit {
        pthread_mutex_destroy(self.mutex)
        self.mutex.deinitialize(count: 1)
        self.mutex.deallocate()
    }

    /// Runs `body` with exclusive access to the state. `body` must not suspend or re-enter the lock.
    @inlinable
    package func withLock<Result>(_ body: (inout State) throws -> Result) rethrows -> Result {
        self.lock()
        defer { self.unlock() }
        return try body(&self.unsafeState)
    }

    @usableFromInline
    var unsafeState: State {
        _read { yield self.state }
        _modify { yield &self.state }
    }

    @usableFromInline
    func lock() { pthread_mutex_lock(self.mutex) }

    @usableFromInline
    func unlock() { pthread_mutex_unlock(self.mutex) }
}
