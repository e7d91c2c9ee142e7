@testable import CacheKit
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The pool's decisions as a state machine, driven through deterministic schedules (no server, no threads), and the
/// pool itself against connections that fail or are held on purpose. The three bugs: deciding to wait and queueing
/// were two lock sections (a release between them left the waiter asleep beside an idle connection); a failed
/// connect failed one waiter and left the rest waiting forever; waiting had no deadline.
@Suite("Connection pool")
struct ConnectionPoolTests {
    typealias Machine = ConnectionPoolStateMachine<Int>

    func machine(size: Int = 1, waiters: Int = 100) -> Machine {
        Machine(size: size, maximumWaiters: waiters, initialBackoff: .milliseconds(25), maximumBackoff: .milliseconds(500))
    }

    let now = ContinuousClock.now
    var later: ContinuousClock.Instant { self.now + .seconds(10) }

    @Test func aReleaseAfterTheDecisionToWaitReachesTheWaiter() {
        var pool = self.machine()
        guard case .connect = pool.lease(id: 1, now: self.now, deadline: self.later) else { Issue.record("first lease connects"); return }
        pool.connectSucceeded()
        // Task 2 decides to wait and is queued in the same event; the release that follows must wake it.
        guard case .wait = pool.lease(id: 2, now: self.now, deadline: self.later) else { Issue.record("second lease waits"); return }
        guard case .handOver(let connection, let id) = pool.release(7, healthy: true) else { Issue.record("not handed over"); return }
        #expect(connection == 7 && id == 2)
        #expect(pool.idle.isEmpty && pool.waiters.isEmpty)
    }

    @Test func aFailedConnectFailsEveryWaiterAndStartsTheBackoff() {
        var pool = self.machine()
        guard case .connect = pool.lease(id: 1, now: self.now, deadline: self.later) else { return }
        for id in 2...6 { guard case .wait = pool.lease(id: UInt64(id), now: self.now, deadline: self.later) else { return } }
        let failed = pool.connectFailed(now: self.now, jitter: 1)
        #expect(failed == [2, 3, 4, 5, 6], "all five waiters fail, not one")
        #expect(pool.waiters.isEmpty && pool.open == 0)
        guard case .fail(.backoff) = pool.lease(id: 7, now: self.now + .milliseconds(10), deadline: self.later) else {
            Issue.record("a lease during the backoff fails fast"); return
        }
        guard case .connect = pool.lease(id: 8, now: self.now + .milliseconds(30), deadline: self.later) else {
            Issue.record("after the backoff a lease connects again"); return
        }
    }

    @Test func aCancelledOrExpiredWaiterLeavesTheQueue() {
        var pool = self.machine()
        _ = pool.lease(id: 1, now: self.now, deadline: self.later)
        pool.connectSucceeded()
        _ = pool.lease(id: 2, now: self.now, deadline: self.now + .milliseconds(100))
        _ = pool.lease(id: 3, now: self.now, deadline: self.later)
        let first = pool.abandon(3), second = pool.abandon(3)
        #expect(first && !second)
        let early = pool.expire(now: self.now + .milliseconds(50)), due = pool.expire(now: self.now + .milliseconds(100))
        #expect(early.isEmpty && due == [2])
        guard case .keep = pool.release(1, healthy: true) else { Issue.record("no waiter left: kept idle"); return }
    }

    @Test func aBrokenConnectionsSlotGoesToTheOldestWaiter() {
        var pool = self.machine()
        _ = pool.lease(id: 1, now: self.now, deadline: self.later)
        pool.connectSucceeded()
        _ = pool.lease(id: 2, now: self.now, deadline: self.later)
        _ = pool.lease(id: 3, now: self.now, deadline: self.later)
        guard case .connectFor(2) = pool.release(1, healthy: false) else { Issue.record("the slot went elsewhere"); return }
        #expect(pool.open == 1 && pool.destroyed == 1 && pool.waiters.map(\.id) == [3])
        let (idle, waiters) = pool.shutdown()
        #expect(idle.isEmpty && waiters == [3])
        guard case .fail(.shutDown) = pool.lease(id: 4, now: self.now, deadline: self.later) else { return }
    }

    /// Random schedules of every event: no waiter ever sleeps while a connection is idle or a slot is free, and the
    /// counts stay consistent.
    @Test func invariantsHoldOverRandomSchedules() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            var pool = self.machine(size: Int.random(in: 1...3, using: &generator), waiters: 5)
            var leased: [Int] = [], connecting = 0, waiting: [UInt64] = [], nextID: UInt64 = 0, nextConnection = 0
            var time = self.now
            for _ in 0..<300 {
                time += .milliseconds(Int.random(in: 0...20, using: &generator))
                switch Int.random(in: 0..<6, using: &generator) {
                case 0:
                    nextID += 1
                    switch pool.lease(id: nextID, now: time, deadline: time + .milliseconds(200)) {
                    case .use(let connection): leased.append(connection)
                    case .connect: connecting += 1
                    case .wait: waiting.append(nextID)
                    case .fail: break
                    }
                case 1 where connecting > 0:
                    connecting -= 1
                    if Bool.random(using: &generator) {
                        pool.connectSucceeded()
                        nextConnection += 1
                        leased.append(nextConnection)
                    } else {
                        let failed = pool.connectFailed(now: time, jitter: 1)
                        waiting.removeAll { failed.contains($0) }
                    }
                case 2 where !leased.isEmpty:
                    let connection = leased.remove(at: Int.random(in: 0..<leased.count, using: &generator))
                    switch pool.release(connection, healthy: Bool.random(using: &generator)) {
                    case .handOver(let handed, let id):
                        leased.append(handed)
                        waiting.removeAll { $0 == id }
                    case .connectFor(let id):
                        connecting += 1
                        waiting.removeAll { $0 == id }
                    default: break
                    }
                case 3 where !waiting.isEmpty:
                    let id = waiting.remove(at: Int.random(in: 0..<waiting.count, using: &generator))
                    let abandoned = pool.abandon(id)
                    #expect(abandoned)
                case 4:
                    let expired = pool.expire(now: time)
                    waiting.removeAll { expired.contains($0) }
                default: break
                }
                #expect(!(pool.waiters.count > 0 && !pool.idle.isEmpty), "a waiter sleeps beside an idle connection")
                #expect(!(pool.waiters.count > 0 && pool.open < pool.size), "a waiter sleeps beside a free slot")
                #expect(pool.open == pool.idle.count + leased.count + connecting && pool.open <= pool.size)
                #expect(pool.waiters.map(\.id).sorted() == waiting.sorted())
            }
        }
    }
}

/// A connection that can be held and counts its closes.
final class ProbeConnection: PooledConnection {
    let closed = LockedState(false)
    func close() { self.closed.withLock { $0 = true } }
}

@Suite("Connection pool with real tasks")
struct ConnectionPoolTaskTests {
    /// With the server unreachable, a connect failure fails every task waiting behind it at once (before: one failed,
    /// the rest waited for a health check or forever).
    @Test func waitersBehindAFailedConnectAllFailFast() async throws {
        let gate = LockedState(false)
        let pool = ConnectionPool<ProbeConnection>(configuration: .init(size: 1, name: "probe"), logger: .init(label: "test")) {
            while !gate.withLock({ $0 }) { usleep(1000) }  // the first connect is slow, then fails
            throw CacheError(.connectionFailed, "refused")
        }
        let started = ContinuousClock.now
        let results = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<6 { group.addTask { (try? await pool.withConnection { _ in 1 }) == nil } }
            group.addTask {
                try? await Task.sleep(for: .milliseconds(200))
                gate.withLock { $0 = true }
                return true
            }
            var failed = 0
            for await result in group where result { failed += 1 }
            return failed
        }
        #expect(results == 7, "every caller failed (6 leases + the gate task)")
        // A hang shows as the test never finishing, or far past the 200 ms gate; a generous bound, so a loaded machine
        // does not fail it (a wall-clock figure is a benchmark's business, not a test's).
        #expect(ContinuousClock.now - started < .seconds(30), "waiters hung after the connect failed")
        #expect(pool.counters.waiters == 0 && pool.counters.open == 0)
    }

    /// Waiting for a lease has a deadline.
    @Test func aLeaseWaitsNoLongerThanItsTimeout() async throws {
        let pool = ConnectionPool<ProbeConnection>(
            configuration: .init(size: 1, name: "probe", leaseTimeout: .milliseconds(200)), logger: .init(label: "test")
        ) { ProbeConnection() }
        let holding = Task { try await pool.withConnection { _ in usleep(1_500_000) } }
        try await Task.sleep(for: .milliseconds(50))
        let started = ContinuousClock.now
        await #expect { try await pool.withConnection { _ in () } } throws: { ($0 as? CacheError)?.code == .timeout }
        let waited = ContinuousClock.now - started
        #expect(waited >= .milliseconds(150) && waited < .seconds(1), "waited \(waited)")
        try await holding.value
        try await pool.withConnection { _ in () }
        #expect(pool.counters.waiters == 0 && pool.counters.created == 1)
    }

    /// A waiter cancelled while queued leaves at once and the connection goes to the next one.
    @Test func aCancelledWaiterLeavesAndTheNextOneIsServed() async throws {
        let pool = ConnectionPool<ProbeConnection>(configuration: .init(size: 1, name: "probe"), logger: .init(label: "test")) { ProbeConnection() }
        let holding = Task { try await pool.withConnection { _ in usleep(300_000) } }
        try await Task.sleep(for: .milliseconds(50))
        let cancelled = Task { try await pool.withConnection { _ in 1 } }
        let next = Task { try await pool.withConnection { _ in 2 } }
        try await Task.sleep(for: .milliseconds(50))
        #expect(pool.counters.waiters == 2)
        cancelled.cancel()
        await #expect(throws: CancellationError.self) { try await cancelled.value }
        #expect(pool.counters.waiters == 1)
        try await holding.value
        #expect(try await next.value == 2)
    }
}
