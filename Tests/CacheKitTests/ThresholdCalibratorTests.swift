import CacheKit
import Testing

@Suite("ThresholdCalibrator")
struct ThresholdCalibratorTests {
    // Correct matches at high similarity, wrong ones spread lower: a threshold separates them.
    let samples: [ThresholdCalibrator.Sample] =
        (0..<80).map { .init(similarity: 0.80 + Float($0 % 20) * 0.01, correct: true) }
        + (0..<20).map { .init(similarity: 0.60 + Float($0) * 0.01, correct: false) }
        + [.init(similarity: 0.95, correct: false)]

    @Test func evaluationCountsHitsMissesPrecisionAndRecall() {
        let calibrator = ThresholdCalibrator(samples: self.samples)
        let point = calibrator.evaluate(at: 0.80)
        #expect(point.correctHits == 80)
        #expect(point.wrongHits == 1)
        #expect(point.misses == 20)
        #expect(abs(point.precision - 80.0 / 81.0) < 1e-9)
        #expect(point.recall == 1)
        #expect(abs(point.hitRate - 81.0 / 101.0) < 1e-9)
    }

    @Test func precisionFloorPicksTheLowestThresholdThatMeetsIt() throws {
        let calibrator = ThresholdCalibrator(samples: self.samples)
        let best = try #require(calibrator.best(by: .highestHitRate(minimumPrecision: 0.95)))
        #expect(best.precision >= 0.95)
        #expect(calibrator.evaluate(at: best.threshold - 0.01).precision < 0.95, "a lower threshold also met the floor")
        let f1 = try #require(calibrator.best(by: .maximumF1))
        #expect(abs(f1.threshold - 0.80) < 0.005)
        #expect(calibrator.best(by: .highestHitRate(minimumPrecision: 1.01)) == nil)
    }
}
