public import CacheKit

/// A `CacheClock` that moves only when told to, for TTL tests.
public final class ManualClock: CacheClock {
    private let current: LockedState<CacheTime>

    /// Starts at `start` (default: 2025-01-01T00:00:00Z).
    public init(start: CacheTime = CacheTime(millisecondsSinceEpoch: 1_735_689_600_000)) {
        self.current = LockedState(start)
    }

    public func now() -> CacheTime { self.current.withLock { $0 } }

    /// Moves the clock forward.
    public func advance(by duration: Duration) {
        self.current.withLock { $0 = $0 + duration }
    }
}
