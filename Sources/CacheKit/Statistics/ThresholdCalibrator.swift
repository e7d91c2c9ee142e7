/// Chooses a semantic-match threshold from labelled data.
///
/// Each sample is one query against a semantic cache: the similarity of its nearest stored neighbour and whether
/// serving that neighbour's answer would be correct (same intent). At threshold `t` a query hits when its
/// similarity is at least `t`; precision is correct hits / hits, recall is correct hits / queries whose nearest
/// neighbour is correct, hit rate is hits / queries.
public struct ThresholdCalibrator: Sendable {
    /// One labelled query.
    public struct Sample: Sendable, Hashable {
        public var similarity: Float
        public var correct: Bool
        public init(similarity: Float, correct: Bool) {
            self.similarity = similarity
            self.correct = correct
        }
    }

    /// The figures at one threshold.
    public struct Point: Sendable, Hashable {
        public var threshold: Float
        public var queries: Int
        public var correctHits: Int
        public var wrongHits: Int
        public var misses: Int { self.queries - self.correctHits - self.wrongHits }
        public var hits: Int { self.correctHits + self.wrongHits }
        public var hitRate: Double { self.queries == 0 ? 0 : Double(self.hits) / Double(self.queries) }
        public var precision: Double { self.hits == 0 ? 1 : Double(self.correctHits) / Double(self.hits) }
        public var recall: Double
        public var f1: Double { self.precision + self.recall == 0 ? 0 : 2 * self.precision * self.recall / (self.precision + self.recall) }
    }

    /// How to pick the threshold.
    public struct Criterion: Sendable, Hashable {
        fileprivate let minimumPrecision: Double?
        /// The threshold with the highest F1.
        public static let maximumF1 = Criterion(minimumPrecision: nil)
        /// The lowest threshold (so the highest hit rate) whose precision is at least `precision`.
        public static func highestHitRate(minimumPrecision precision: Double) -> Criterion { Criterion(minimumPrecision: precision) }
    }

    public var samples: [Sample]

    public init(samples: [Sample]) { self.samples = samples }

    /// The figures at `threshold`.
    public func evaluate(at threshold: Float) -> Point {
        var correct = 0
        var wrong = 0
        var positives = 0
        for sample in self.samples {
            if sample.correct { positives += 1 }
            guard sample.similarity >= threshold else { continue }
            if sample.correct { correct += 1 } else { wrong += 1 }
        }
        return Point(
            threshold: threshold, queries: self.samples.count, correctHits: correct, wrongHits: wrong,
            recall: positives == 0 ? 0 : Double(correct) / Double(positives)
        )
    }

    /// The figures at every threshold from `lower` to `upper` in `step`s.
    public func sweep(from lower: Float = 0.5, through upper: Float = 1.0, step: Float = 0.01) -> [Point] {
        var points: [Point] = []
        var index = 0
        while lower + Float(index) * step <= upper + step / 2 {
            points.append(self.evaluate(at: ((lower + Float(index) * step) * 10_000).rounded() / 10_000))
            index += 1
        }
        return points
    }

    /// The best threshold of a sweep by `criterion`; `nil` if no threshold meets a precision floor.
    public func best(by criterion: Criterion, in points: [Point]? = nil) -> Point? {
        let points = points ?? self.sweep()
        if let floor = criterion.minimumPrecision {
            return points.filter { $0.precision >= floor && $0.hits > 0 }.min { $0.threshold < $1.threshold }
        }
        return points.max { ($0.f1, -$0.threshold) < ($1.f1, -$1.threshold) }
    }
}
