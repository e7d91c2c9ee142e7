#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A wall-clock instant with millisecond resolution (milliseconds since 1970-01-01T00:00:00Z).
///
/// Entries are shared between instances through Redis and PostgreSQL, so their times are wall-clock times, the same
/// unit Redis `PX` uses.
public struct CacheTime: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Milliseconds since the Unix epoch.
    public var millisecondsSinceEpoch: Int64

    public init(millisecondsSinceEpoch: Int64) { self.millisecondsSinceEpoch = millisecondsSinceEpoch }

    /// The earliest representable instant; used as "never" for lower bounds.
    public static let distantPast = CacheTime(millisecondsSinceEpoch: 0)
    /// An instant far in the future (year 10000); used as "never expires".
    public static let distantFuture = CacheTime(millisecondsSinceEpoch: 253_402_300_800_000)

    public static func < (lhs: CacheTime, rhs: CacheTime) -> Bool { lhs.millisecondsSinceEpoch < rhs.millisecondsSinceEpoch }

    /// `lhs` moved by `rhs`, saturating at the bounds.
    public static func + (lhs: CacheTime, rhs: Duration) -> CacheTime {
        let (sum, overflow) = lhs.millisecondsSinceEpoch.addingReportingOverflow(rhs.milliseconds)
        if overflow { return rhs > .zero ? .distantFuture : .distantPast }
        return CacheTime(millisecondsSinceEpoch: min(sum, CacheTime.distantFuture.millisecondsSinceEpoch))
    }

    /// The time from `rhs` to `lhs`.
    /// The time from `rhs` to `lhs`; saturates instead of trapping when the difference does not fit (times read
    /// from a cache entry are checked, but a clock or a third-party backend may still hand over extreme values).
    public static func - (lhs: CacheTime, rhs: CacheTime) -> Duration {
        let (difference, overflow) = lhs.millisecondsSinceEpoch.subtractingReportingOverflow(rhs.millisecondsSinceEpoch)
        if overflow { return .milliseconds(rhs.millisecondsSinceEpoch < 0 ? Int64.max : Int64.min) }
        return .milliseconds(difference)
    }

    public var description: String { "\(self.millisecondsSinceEpoch)ms" }
}

extension Duration {
    /// The duration in whole milliseconds, saturating.
    public var milliseconds: Int64 {
        let (seconds, attoseconds) = self.components
        let (ms, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        if overflow { return seconds > 0 ? .max : .min }
        return ms + attoseconds / 1_000_000_000_000_000
    }

    /// The duration in seconds as a `Double`.
    public var seconds: Double {
        let (seconds, attoseconds) = self.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

/// Tells the time to the cache. Inject `ManualClock` (CacheKitTesting) to drive TTLs in tests.
public protocol CacheClock: Sendable {
    /// The current wall-clock time.
    func now() -> CacheTime
}

/// The system's real-time clock (`CLOCK_REALTIME`).
public struct SystemCacheClock: CacheClock {
    public init() {}

    public func now() -> CacheTime {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return CacheTime(millisecondsSinceEpoch: Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000)
    }
}
