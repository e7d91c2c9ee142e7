#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import CacheKit
import Testing

@Suite("BlockingThreadPool")
struct BlockingThreadPoolTests {
    @Test func runsJobsAndReturnsResults() async throws {
        let pool = BlockingThreadPool(threadCount: 2, name: "test")
        let results = try await withThrowingTaskGroup(of: Int.self) { group in
            for i in 0..<100 { group.addTask { try await pool.run { i * 2 } } }
            return try await group.reduce(0, +)
        }
        #expect(results == 9900)
        pool.shutdown()
        // After shutdown, work still runs (inline), nothing is lost.
        #expect(try await pool.run { 7 } == 7)
    }

    /// A pool starts no thread until work arrives, one per job that finds every thread busy, never more than asked.
    @Test func startsThreadsOnlyAsWorkArrives() async throws {
        let pool = BlockingThreadPool(threadCount: 3, name: "lazy")
        #expect(pool.startedThreads == 0)
        #expect(try await pool.run { 1 } == 1)
        #expect(pool.startedThreads == 1)
        // Four jobs that block until all four are queued: three threads start, the fourth job waits for one.
        let gate = LockedState(0)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    try await pool.run {
                        gate.withLock { $0 += 1 }
                        while gate.withLock({ $0 }) < 3 { usleep(1000) }
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(pool.startedThreads == 3)
        pool.shutdown()
    }

    /// A pool released from inside one of its own jobs (the last reference held by the job) must neither crash
    /// nor hang: its threads keep the shared state alive until they exit.
    @Test func canBeReleasedFromInsideItsOwnJob() async throws {
        for _ in 0..<20 {
            var pool: BlockingThreadPool? = BlockingThreadPool(threadCount: 2, name: "self-release")
            let done = LockedState(false)
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let captured = pool!
                pool = nil
                captured.submit { [captured] in
                    _ = captured.name
                    done.withLock { $0 = true }
                    continuation.resume()
                }
            }
            #expect(done.withLock { $0 })
        }
    }
}

extension BlockingThreadPoolTests {
    /// Two plain `write()`s into a socket whose peer is gone: the second raises SIGPIPE on Linux, which would end
    /// this process unless the pool's threads block it. They do, so both writes fail with an error and the test
    /// process lives to check it.
    @Test func aWriteToAClosedSocketOnAPoolThreadIsAnErrorNotSIGPIPE() async throws {
        let pool = BlockingThreadPool(threadCount: 1, name: "sigpipe-test")
        let results = try await pool.run { () -> [Int32] in
            var sockets: [Int32] = [0, 0]
            #if canImport(Glibc)
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &sockets) == 0 else { return [-2] }
            #else
            guard socketpair(AF_UNIX, SOCK_STREAM, 0, &sockets) == 0 else { return [-2] }
            #endif
            close(sockets[1])
            var errors: [Int32] = []
            let bytes: [UInt8] = Array(repeating: 0x61, count: 1024)
            for _ in 0..<2 {
                let written = bytes.withUnsafeBytes { write(sockets[0], $0.baseAddress, $0.count) }
                errors.append(written < 0 ? errno : 0)
            }
            close(sockets[0])
            return errors
        }
        #expect(results == [EPIPE, EPIPE], "errno per write: \(results)")
    }
}
