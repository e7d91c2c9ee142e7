#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A fixed set of threads for blocking C calls (hiredis, libpq, libcurl), so they never block Swift's cooperative
/// thread pool (the same approach as sqlite-nio's `NIOThreadPool`).
///
/// Jobs run in submission order on the first free thread. `shutdown()` (also run when the pool is released) lets
/// queued jobs finish, then joins the threads; jobs submitted after it run inline on the caller's thread so that
/// nothing is lost. The pool may be released from inside one of its own jobs: the threads keep the shared state
/// alive until they have exited.
///
/// The threads block SIGPIPE: a C client that writes to a socket its peer has reset gets `EPIPE` instead of a
/// signal whose default action ends the whole process. (hiredis writes with plain `write()`; as CacheKit uses it, a
/// connection is destroyed after its first failed call, so it never writes twice into a reset socket, which is when
/// Linux raises SIGPIPE. The mask keeps any future write path from taking the host application down.)
package final class BlockingThreadPool: Sendable {
    private let core: Core
    /// The pool's name.
    package var name: String { self.core.name }

    /// A pool of at most `threadCount` threads. None starts here: a thread starts when a job arrives and every
    /// running thread is busy, so a pool that is never used costs no thread.
    package init(threadCount: Int, name: String) {
        self.core = Core(name: name, maximumThreads: max(1, threadCount))
    }

    /// The threads started so far (at most `threadCount`).
    package var startedThreads: Int { self.core.startedThreads }

    deinit { self.core.shutdown() }

    /// Queues `job` to run on one of the pool's threads.
    package func submit(_ job: @escaping @Sendable () -> Void) { self.core.submit(job) }

    /// Runs `body` on a pool thread and returns its result. The caller's task suspends; no cooperative thread blocks.
    /// Cancellation does not interrupt `body` (C calls cannot be interrupted): callers bound their calls with
    /// timeouts and discard state that a cancelled call left behind.
    package func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            self.submit { continuation.resume(with: Result { try body() }) }
        }
    }

    /// Stops accepting work, lets queued jobs finish, and joins the threads (all but the calling one, if it is a
    /// pool thread). Idempotent.
    package func shutdown() { self.core.shutdown() }

    /// The queue and the threads. Each worker thread holds a strong reference until it exits.
    ///
    /// - Invariant (why `@unchecked Sendable` is sound): `queue`, `head`, `stopping`, `spinning` and `threads` are
    ///   read and written only with `mutex` held; the pthread objects live as long as the `Core`, which every thread
    ///   retains while it runs.
    private final class Core: @unchecked Sendable {
        let name: String
        private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
        private var queue: [@Sendable () -> Void] = []
        private var head = 0
        private var stopping = false
        private var spinning = 0
        private var threads: [pthread_t] = []
        /// Threads waiting for a job (spinning or asleep).
        private var idle = 0
        private let maximumThreads: Int
        /// How many times an idle thread yields before it sleeps.
        static let spinLimit = 200
        /// How many idle threads may spin at once.
        static let maximumSpinners = 64

        init(name: String, maximumThreads: Int) {
            self.name = name
            self.maximumThreads = maximumThreads
            pthread_mutex_init(self.mutex, nil)
            pthread_cond_init(self.condition, nil)
        }

        deinit {
            pthread_cond_destroy(self.condition)
            pthread_mutex_destroy(self.mutex)
            self.condition.deallocate()
            self.mutex.deallocate()
        }

        var startedThreads: Int {
            pthread_mutex_lock(self.mutex)
            defer { pthread_mutex_unlock(self.mutex) }
            return self.threads.count
        }

        /// Starts one thread. Called with `mutex` held.
        private func startThread() {
            let retained = Unmanaged.passRetained(self)
            #if canImport(Darwin)
            var thread: pthread_t?
            #else
            var thread = pthread_t()
            #endif
            let rc = pthread_create(&thread, nil, { argument in
                let core = Unmanaged<Core>.fromOpaque(argument!).takeRetainedValue()
                var signals = sigset_t()
                sigemptyset(&signals)
                sigaddset(&signals, SIGPIPE)
                pthread_sigmask(SIG_BLOCK, &signals, nil)
                core.work()
                return nil
            }, retained.toOpaque())
            precondition(rc == 0, "pthread_create failed: \(rc)")
            #if canImport(Darwin)
            self.threads.append(thread!)
            #else
            self.threads.append(thread)
            #endif
        }

        private func work() {
            pthread_mutex_lock(self.mutex)
            while true {
                self.idle += 1
                // One thread stays awake briefly for the next job: a request/response client submits one right after
                // the previous reply, and waking a sleeping thread costs more than the call itself on small machines.
                // At most `maximumSpinners` spin at once.
                if self.head == self.queue.count, !self.stopping, self.spinning < Self.maximumSpinners {
                    self.spinning += 1
                    var spins = 0
                    while self.head == self.queue.count, !self.stopping, spins < Self.spinLimit {
                        pthread_mutex_unlock(self.mutex)
                        sched_yield()
                        spins += 1
                        pthread_mutex_lock(self.mutex)
                    }
                    self.spinning -= 1
                }
                while self.head == self.queue.count, !self.stopping { pthread_cond_wait(self.condition, self.mutex) }
                self.idle -= 1
                if self.head == self.queue.count {
                    pthread_mutex_unlock(self.mutex)
                    return
                }
                let job = self.queue[self.head]
                self.head += 1
                if self.head > 1024, self.head * 2 > self.queue.count {
                    self.queue.removeFirst(self.head)
                    self.head = 0
                }
                pthread_mutex_unlock(self.mutex)
                job()
                pthread_mutex_lock(self.mutex)
            }
        }

        func submit(_ job: @escaping @Sendable () -> Void) {
            pthread_mutex_lock(self.mutex)
            guard !self.stopping else {
                pthread_mutex_unlock(self.mutex)
                job()
                return
            }
            self.queue.append(job)
            // More queued jobs than idle threads: start one more thread, up to the limit.
            if self.queue.count - self.head > self.idle, self.threads.count < self.maximumThreads { self.startThread() }
            pthread_cond_signal(self.condition)
            pthread_mutex_unlock(self.mutex)
        }

        func shutdown() {
            pthread_mutex_lock(self.mutex)
            let threads = self.threads
            self.threads = []
            self.stopping = true
            pthread_cond_broadcast(self.condition)
            pthread_mutex_unlock(self.mutex)
            let current = pthread_self()
            for thread in threads where pthread_equal(thread, current) == 0 { pthread_join(thread, nil) }
            // A thread that released the last reference to its own pool is not joined (it cannot join itself): it
            // sees `stopping` after its job returns and exits, then releases the core. Detach it so it leaves no
            // zombie behind.
            for thread in threads where pthread_equal(thread, current) != 0 { pthread_detach(thread) }
        }
    }
}
