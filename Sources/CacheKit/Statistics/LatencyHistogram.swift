/// A log-linear histogram of non-negative values (nanoseconds, usually): 8 sub-buckets per power of two, so a
/// percentile is accurate to within 12.5%. Fixed size, no allocation per sample.
public struct LatencyHistogram: Sendable, Hashable {
    static let bucketCount = 496
    private(set) var buckets: [UInt64]
    /// How many samples were recorded.
    public private(set) var count: UInt64 = 0
    /// The sum of the samples.
    public private(set) var sum: UInt64 = 0
    /// The largest sample.
    public private(set) var maximum: UInt64 = 0

    public init() { self.buckets = [UInt64](repeating: 0, count: Self.bucketCount) }

    static func index(of value: UInt64) -> Int {
        if value < 8 { return Int(value) }
        let exponent = 63 - value.leadingZeroBitCount
        let sub = Int((value >> UInt64(exponent - 3)) & 7)
        return (exponent - 2) * 8 + sub
    }

    static func midpoint(of index: Int) -> UInt64 {
        if index < 8 { return UInt64(index) }
        let exponent = index / 8 + 2
        let sub = UInt64(index % 8)
        let width = UInt64(1) << UInt64(exponent - 3)
        return (8 + sub) * width + width / 2
    }

    /// Records one sample.
    public mutating func record(_ value: UInt64) {
        self.buckets[Self.index(of: value)] &+= 1
        self.count &+= 1
        self.sum &+= value
        self.maximum = max(self.maximum, value)
    }

    /// Records a duration in nanoseconds.
    public mutating func record(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        let nanoseconds = max(0, seconds) * 1_000_000_000 + max(0, attoseconds / 1_000_000_000)
        self.record(UInt64(nanoseconds))
    }

    /// The value below which `fraction` (0...1) of the samples fall; 0 when empty.
    public func percentile(_ fraction: Double) -> UInt64 {
        guard self.count > 0 else { return 0 }
        let rank = UInt64((Double(self.count) * min(max(fraction, 0), 1)).rounded(.up))
        var seen: UInt64 = 0
        for (index, bucket) in self.buckets.enumerated() where bucket > 0 {
            seen += bucket
            if seen >= max(rank, 1) { return min(Self.midpoint(of: index), self.maximum) }
        }
        return self.maximum
    }

    /// Adds another histogram's samples.
    public mutating func merge(_ other: LatencyHistogram) {
        for index in 0..<Self.bucketCount { self.buckets[index] &+= other.buckets[index] }
        self.count &+= other.count
        self.sum &+= other.sum
        self.maximum = max(self.maximum, other.maximum)
    }

    /// p50, p95, p99 and the mean, for reports.
    public var summary: LatencySummary {
        LatencySummary(
            count: Int(self.count),
            p50: .nanoseconds(Int64(self.percentile(0.50))),
            p95: .nanoseconds(Int64(self.percentile(0.95))),
            p99: .nanoseconds(Int64(self.percentile(0.99))),
            mean: self.count == 0 ? .zero : .nanoseconds(Int64(self.sum / self.count))
        )
    }
}

/// Percentiles of a latency distribution.
public struct LatencySummary: Sendable, Hashable {
    public var count: Int
    public var p50: Duration
    public var p95: Duration
    public var p99: Duration
    public var mean: Duration
}
