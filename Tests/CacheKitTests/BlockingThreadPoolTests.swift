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
