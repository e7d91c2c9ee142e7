/// Keeps an invalidation from being undone by a read that began before it.
///
/// A read that finds an entry in a slower layer writes it back (backfills) into the faster ones. If an invalidation
/// removes the entry between that read and its write-back, the write-back would restore what was removed. So a read
/// that may backfill holds a *window* for its duration, and an invalidation, after its removals, waits for every
/// window opened before it (`waitForEarlierWindows()`), then removes again from the layers a backfill can reach:
/// after that, no read that saw the removed entry is still running.
///
/// Windows are counted per epoch; each wait starts a new epoch and returns once no window of an earlier epoch is
/// open. Windows opened after the wait began never delay it, so a steady stream of reads cannot starve an
/// invalidation. Enter and leave are one lock each (no allocation in the common case); the L1 hit path takes none.
final class BackfillGate: Sendable {
    private struct State {
        var epoch: UInt64 = 0
        /// Open windows by the epoch they were opened in.
        var open: [UInt64: Int] = [:]
        var waiters: [(epoch: UInt64, continuation: CheckedContinuation<Void, Never>)] = []

        var oldestOpen: UInt64 { self.open.keys.min() ?? .max }
    }

    private let state = LockedState(State())

    /// Opens a window; pass the result to `leave(_:)` exactly once.
    func enter() -> UInt64 {
        self.state.withLock { state in
            state.open[state.epoch, default: 0] += 1
            return state.epoch
        }
    }

    /// Closes a window, releasing the waits it was the last to hold up.
    func leave(_ epoch: UInt64) {
        let ready = self.state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.open[epoch, default: 1] -= 1
            if state.open[epoch] == 0 { state.open[epoch] = nil }
            let oldest = state.oldestOpen
            var ready: [CheckedContinuation<Void, Never>] = []
            state.waiters.removeAll { waiter in
                guard oldest >= waiter.epoch else { return false }
                ready.append(waiter.continuation)
                return true
            }
            return ready
        }
        for continuation in ready { continuation.resume() }
    }

    /// Starts a new epoch and returns once every window opened before it has closed.
    func waitForEarlierWindows() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = self.state.withLock { state -> Bool in
                state.epoch += 1
                if state.oldestOpen >= state.epoch { return true }
                state.waiters.append((state.epoch, continuation))
                return false
            }
            if done { continuation.resume() }
        }
    }

    /// Windows open now (for tests).
    var openWindows: Int { self.state.withLock { $0.open.values.reduce(0, +) } }

    /// Waits not yet released (for tests).
    var pendingWaits: Int { self.state.withLock { $0.waiters.count } }
}
