import CacheKit
import Testing

@Suite("Statistics primitives")
struct StatisticsTests {
    @Test func histogramPercentilesAreWithinTheBucketResolution() {
        var histogram = LatencyHistogram()
        for value in 1...10_000 { histogram.record(UInt64(value) * 1000) }
        for (fraction, exact) in [(0.5, 5_000_000.0), (0.95, 9_500_000.0), (0.99, 9_900_000.0)] {
            let measured = Double(histogram.percentile(fraction))
            #expect(abs(measured - exact) / exact < 0.125, "p\(fraction) = \(measured), expected ≈ \(exact)")
        }
        #expect(histogram.count == 10_000)
        #expect(LatencyHistogram().percentile(0.5) == 0)
    }

    @Test func priceTableUsesLongestPrefixAndCachedInputPrice() {
        let table = PriceTable.default
        #expect(table.price(for: "gpt-4o-mini-2024-07-18") == table.prices["gpt-4o-mini"])
        #expect(table.price(for: "gpt-4o-2024-08-06") == table.prices["gpt-4o"])
        #expect(table.price(for: "unknown-model") == nil)
        let usage = TokenUsage(promptTokens: 1_000_000, completionTokens: 1_000_000, cachedPromptTokens: 500_000)
        let cost = table.cost(of: usage, model: "gpt-4o") ?? 0
        #expect(abs(cost - (0.5 * 2.50 + 0.5 * 1.25 + 10.00)) < 1e-9)
    }
}
