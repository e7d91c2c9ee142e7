@testable import CacheKit
import Testing

@Suite("BackfillGate")
struct BackfillGateTests {
    /// A wait with no window open returns at once.
    @Test func nothingOpenNothingToWaitFor() async {
        let gate = BackfillGate()
        await gate.waitForEarlierWindows()
        #expect(gate.openWindows == 0)
    }

    /// A wait returns only after every window opened before it has closed, and never waits for a window opened
    /// after it began (a stream of new reads cannot starve an invalidation).
    @Test func waitsForEarlierWindowsOnly() async throws {
        let gate = BackfillGate()
        let first = gate.enter()
        let second = gate.enter()
        let finished = LockedState(false)
        let waiter = Task {
            await gate.waitForEarlierWindows()
            finished.withLock { $0 = true }
        }
        // Let the wait start its epoch, then open a later window that it must not wait for.
        while gate.pendingWaits == 0 { try await Task.sleep(for: .milliseconds(1)) }
        let later = gate.enter()
        gate.leave(first)
        try await Task.sleep(for: .milliseconds(20))
        #expect(!finished.withLock { $0 }, "the wait returned while an earlier window was open")
        gate.leave(second)
        await waiter.value
        #expect(finished.withLock { $0 })
        #expect(gate.openWindows == 1, "only the later window is still open")
        gate.leave(later)
        #expect(gate.openWindows == 0)
    }

    /// Many readers and invalidations at once: every wait returns, and no window is left counted.
    @Test func concurrentReadersAndWaitsAllFinish() async {
        let gate = BackfillGate()
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<400 {
                group.addTask {
                    if index % 10 == 0 {
                        await gate.waitForEarlierWindows()
                    } else {
                        let window = gate.enter()
                        await Task.yield()
                        gate.leave(window)
                    }
                }
            }
        }
        #expect(gate.openWindows == 0)
    }
}
