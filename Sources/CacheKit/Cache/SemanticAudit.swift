extension SemanticLayer {
    /// An online audit of semantic hits: for a sample of them the upstream is also called, in the background, and
    /// the two answers compared. Agreement is kept per entry and per namespace; the estimated precision of semantic
    /// hits, with a 95 % interval, is in `CacheStatistics.Semantic.audit`, `/stats` and metrics.
    ///
    /// A disagreement is acted on at once: the query's exact key gets the upstream's answer (stored as a miss's
    /// would be), and the entry's own threshold rises above the score it was served at, so that a match as loose
    /// as that one is never served from it again (per-entry thresholds, vCache's idea, learned from what the audit
    /// saw). An entry whose observed error exceeds `maximumErrorRate` after `minimumAudits` audits leaves the
    /// semantic index. Per namespace, once `minimumNamespaceAudits` hits were audited, the threshold becomes the
    /// lowest score above which the audited hits' error rate is at most `maximumErrorRate` (never below the layer's
    /// own threshold); it follows the last 4,096 audits of the namespace.
    ///
    /// Audit calls cost what upstream calls cost: they are bounded per minute and in money per hour (priced with
    /// `CacheConfiguration.prices`), and share the background slots of refreshes. Never on the request path.
    public struct Audit: Sendable {
        /// How two answers are compared: `true` when they agree.
        public typealias Comparison = @Sendable (_ cached: ChatResponse, _ fresh: ChatResponse) async throws -> Bool

        /// The share of semantic hits audited. Default 0.05.
        public var sampleRate: Double
        /// Each entry's first semantic hits are always audited. Default 2.
        public var firstHits: Int
        /// The error rate an entry may show. Default 0.02.
        public var maximumErrorRate: Double
        /// Audits an entry needs before `maximumErrorRate` removes it. Default 3.
        public var minimumAudits: Int
        /// Audits a namespace needs before its own threshold is learned. Default 50.
        public var minimumNamespaceAudits: Int
        /// At most this many audit calls per minute. Default 60.
        public var maximumCallsPerMinute: Int
        /// At most this much money per hour (US dollars, as `CacheConfiguration.prices` prices the calls). Default 1.
        public var maximumUSDPerHour: Double
        /// The comparison. Default: the texts equal after lower-casing and collapsing white space and punctuation.
        public var comparison: Comparison

        public init(
            sampleRate: Double = 0.05, firstHits: Int = 2, maximumErrorRate: Double = 0.02, minimumAudits: Int = 3,
            minimumNamespaceAudits: Int = 50, maximumCallsPerMinute: Int = 60, maximumUSDPerHour: Double = 1, comparison: Comparison? = nil
        ) {
            self.minimumNamespaceAudits = max(1, minimumNamespaceAudits)
            self.sampleRate = min(1, max(0, sampleRate))
            self.firstHits = max(0, firstHits)
            self.maximumErrorRate = min(1, max(0, maximumErrorRate))
            self.minimumAudits = max(1, minimumAudits)
            self.maximumCallsPerMinute = max(0, maximumCallsPerMinute)
            self.maximumUSDPerHour = max(0, maximumUSDPerHour)
            self.comparison = comparison ?? { cached, fresh in Self.normalized(cached.text ?? "") == Self.normalized(fresh.text ?? "") }
        }

        /// Lower-cased letters and digits, runs of anything else as one space.
        public static func normalized(_ text: String) -> String {
            var result = ""
            var pendingSpace = false
            for character in text.lowercased() {
                if character.isLetter || character.isNumber {
                    if pendingSpace, !result.isEmpty { result.append(" ") }
                    pendingSpace = false
                    result.append(character)
                } else {
                    pendingSpace = true
                }
            }
            return result
        }
    }
}

extension CacheStatistics {
    /// What the online audit saw: agreements and disagreements, and the precision they estimate.
    public struct Audit: Sendable {
        public var agreements: Int = 0
        public var disagreements: Int = 0
        /// Audit calls that failed (the upstream or the comparison).
        public var failures: Int = 0
        /// Hits that were due an audit the budget did not allow.
        public var skippedForBudget: Int = 0
        /// Entries removed from the semantic index for their error rate.
        public var entriesRemoved: Int = 0
        /// Money spent on audit calls, as `CacheConfiguration.prices` prices them.
        public var spentUSD: Double = 0
        /// Per namespace: agreements and disagreements.
        public var byNamespace: [String: Counts] = [:]

        public init() {}

        public struct Counts: Sendable, Hashable {
            public var agreements: Int = 0
            public var disagreements: Int = 0

            public init() {}
        }

        /// Audited semantic hits.
        public var audits: Int { self.agreements + self.disagreements }
        /// The share of audited hits whose answer agreed; `nil` before the first audit.
        public var estimatedPrecision: Double? { self.audits == 0 ? nil : Double(self.agreements) / Double(self.audits) }
        /// The 95 % Wilson score interval of that share; `nil` before the first audit.
        public var precisionInterval: ClosedRange<Double>? { Self.wilson(self.agreements, self.audits) }

        static func wilson(_ successes: Int, _ total: Int) -> ClosedRange<Double>? {
            guard total > 0 else { return nil }
            let z = 1.959964, n = Double(total), p = Double(successes) / n
            let centre = (p + z * z / (2 * n)) / (1 + z * z / n)
            let half = z * ((p * (1 - p) / n + z * z / (4 * n * n)).squareRoot()) / (1 + z * z / n)
            return max(0, centre - half)...min(1, centre + half)
        }
    }
}

/// The audit's memory: per entry, its audits and its learned threshold; the budget's windows.
final class AuditBook: Sendable {
    struct EntryRecord {
        var hits = 0
        var audits = 0
        var disagreements = 0
        var threshold: Float = -.infinity
        var lastUsed: UInt64 = 0
    }

    /// One namespace's audited hits (score, agreed), newest last, and the threshold they support.
    struct NamespaceRecord {
        var observations: [(score: Float, agreed: Bool)] = []
        var threshold: Float = -.infinity
    }

    struct State {
        var entries: [CacheKey: EntryRecord] = [:]
        var namespaces: [String: NamespaceRecord] = [:]
        var clock: UInt64 = 0
        var minute: Int64 = .min
        var callsThisMinute = 0
        var hour: Int64 = .min
        var spentThisHour = 0.0
        var hasThresholds = false
    }

    let state = LockedState(State())
    /// Entries remembered at most; the least recently used is forgotten first.
    let capacity: Int

    init(capacity: Int = 100_000) { self.capacity = capacity }

    /// The lowest score at which `key`'s entry may be served (`-infinity` unless an audit raised it).
    func minimumScore(for key: CacheKey) -> Float {
        self.state.withLock { state in state.hasThresholds ? state.entries[key]?.threshold ?? -.infinity : -.infinity }
    }

    /// Counts a hit on `key`'s entry and says whether it is due an audit.
    func isDue(_ key: CacheKey, audit: SemanticLayer.Audit, random: Double) -> Bool {
        self.state.withLock { state in
            state.clock += 1
            var record = state.entries[key] ?? EntryRecord()
            record.hits += 1
            record.lastUsed = state.clock
            state.entries[key] = record
            // Past capacity, the least recently used tenth goes in one pass (not one scan per new entry).
            if state.entries.count > self.capacity {
                let uses = state.entries.values.map(\.lastUsed).sorted()
                let cut = uses[uses.count / 10]
                state.entries = state.entries.filter { $0.value.lastUsed > cut }
            }
            return record.hits <= audit.firstHits || random < audit.sampleRate
        }
    }

    /// Takes one call from the budget at `now`; `false` when the minute's calls or the hour's money are spent.
    func takeCall(at now: CacheTime, audit: SemanticLayer.Audit) -> Bool {
        self.state.withLock { state in
            let minute = now.millisecondsSinceEpoch / 60_000, hour = now.millisecondsSinceEpoch / 3_600_000
            if minute != state.minute { (state.minute, state.callsThisMinute) = (minute, 0) }
            if hour != state.hour { (state.hour, state.spentThisHour) = (hour, 0) }
            guard state.callsThisMinute < audit.maximumCallsPerMinute, state.spentThisHour < audit.maximumUSDPerHour else { return false }
            state.callsThisMinute += 1
            return true
        }
    }

    func spend(_ usd: Double) { self.state.withLock { $0.spentThisHour += usd } }

    /// The lowest score the audits of `namespace` support (`-infinity` until they show one is needed).
    func minimumScore(in namespace: String) -> Float {
        self.state.withLock { $0.namespaces[namespace]?.threshold ?? -.infinity }
    }

    /// The lowest threshold at which the audited hits scoring at least that much (`minimum` of them or more) show
    /// an error rate of at most `bound`; `nil` when the observations are too few or none is good enough.
    static func threshold(for observations: [(score: Float, agreed: Bool)], bound: Double, minimum: Int) -> Float? {
        guard observations.count >= minimum else { return nil }
        let sorted = observations.sorted { $0.score > $1.score }
        var errors = 0
        var best: Float?
        for (index, observation) in sorted.enumerated() {
            if !observation.agreed { errors += 1 }
            let total = index + 1
            guard total >= minimum, index + 1 == sorted.count || sorted[index + 1].score < observation.score else { continue }
            if Double(errors) <= bound * Double(total) { best = observation.score }
        }
        return best
    }

    /// Records an audit of `key`'s entry served at `score`; returns whether the entry's error now exceeds the bound.
    func record(_ key: CacheKey, agreed: Bool, score: Float, namespace: String, audit: SemanticLayer.Audit) -> Bool {
        self.state.withLock { state in
            var space = state.namespaces[namespace] ?? NamespaceRecord()
            space.observations.append((score, agreed))
            if space.observations.count > 4096 { space.observations.removeFirst(space.observations.count - 4096) }
            if let learned = Self.threshold(for: space.observations, bound: audit.maximumErrorRate, minimum: audit.minimumNamespaceAudits) {
                space.threshold = learned
            }
            state.namespaces[namespace] = space
            var record = state.entries[key] ?? EntryRecord()
            record.audits += 1
            if !agreed {
                record.disagreements += 1
                // Never again as loose a match as the one that was wrong.
                record.threshold = max(record.threshold, score.nextUp)
                state.hasThresholds = true
            }
            state.entries[key] = record
            return record.audits >= audit.minimumAudits && Double(record.disagreements) / Double(record.audits) > audit.maximumErrorRate
        }
    }
}
