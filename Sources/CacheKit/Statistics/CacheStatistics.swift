import Metrics
/// A snapshot of what a `MultiLayerCache` has done since it started.
public struct CacheStatistics: Sendable {
    /// One exact layer's figures.
    public struct Layer: Sendable {
        public var name: String
        public var hits: Int = 0
        public var misses: Int = 0
        /// Failed or timed-out operations (reads and writes).
        public var errors: Int = 0
        /// Entries that failed to decode; each was deleted and served as a miss.
        public var corruptEntries: Int = 0
        /// Lookup latency.
        public var latency = LatencyHistogram()
        /// Entry age at hit, in nanoseconds (freshness).
        public var entryAgeAtHit = LatencyHistogram()

        /// hits / (hits + misses).
        public var hitRate: Double { self.hits + self.misses == 0 ? 0 : Double(self.hits) / Double(self.hits + self.misses) }
    }

    /// The semantic layer's figures.
    public struct Semantic: Sendable {
        public var lookups: Int = 0
        public var hits: Int = 0
        public var misses: Int = 0
        public var errors: Int = 0
        /// Misses whose nearest neighbour was within the near-miss margin below the threshold.
        public var nearMisses: Int = 0
        /// Misses above the threshold whose best candidate was within `SemanticRerank.ambiguityMargin` of an
        /// entry stored for another question (also counted in `misses`).
        public var ambiguous: Int = 0
        /// Candidates at or above the threshold that a guard refused, per guard (`SemanticGuards.Guard` raw value):
        /// read best first, until one passes. A lookup whose best candidate is refused may still hit on another one.
        public var guarded: [String: Int] = [:]
        /// Verdicts per verifier (`HitVerifier.name`), on the request path and in grey-zone promotion.
        public var verifications: [String: Verifications] = [:]
        /// Near-threshold candidates a verifier accepted off the request path, now exact aliases.
        public var promoted: Int = 0
        /// The online audit's figures (zero when it is off).
        public var audit = CacheStatistics.Audit()
        /// Search latency (embedding excluded).
        public var latency = LatencyHistogram()
        /// Embedding latency (cached embeddings included).
        public var embeddingLatency = LatencyHistogram()
        /// Similarity of served hits, 20 buckets of 0.05 from 0 to 1.
        public var hitSimilarity = [Int](repeating: 0, count: 20)
        /// Similarity of the nearest neighbour on misses, 20 buckets of 0.05 from 0 to 1.
        public var missNearestSimilarity = [Int](repeating: 0, count: 20)
        /// The most recent near misses (newest last, at most 64).
        public var recentNearMisses: [NearMiss] = []
    }

    /// One verifier's verdicts.
    public struct Verifications: Sendable {
        public var accepted: Int = 0
        public var rejected: Int = 0
        /// Errors and timeouts (not accepted).
        public var failed: Int = 0
        /// Time per verdict.
        public var latency = LatencyHistogram()
    }

    /// A semantic miss whose nearest neighbour came within the near-miss margin of the threshold.
    public struct NearMiss: Sendable, Hashable {
        /// The nearest neighbour's similarity (or re-ranked score).
        public var similarity: Float
        /// The threshold it missed.
        public var threshold: Float

        public init(similarity: Float, threshold: Float) {
            self.similarity = similarity
            self.threshold = threshold
        }
    }

    /// Per exact layer, in read order.
    public var layers: [Layer]
    /// The semantic layer, if configured.
    public var semantic: Semantic?
    /// Requests seen.
    public var requests: Int = 0
    /// Requests the policy allowed the cache to read or write.
    public var cacheable: Int = 0
    /// Requests skipped, by reason (`nondeterministic`, `no_store`, `no_cache`).
    public var skipped: [String: Int] = [:]
    /// Answers served from a cache layer (exact or semantic).
    public var hits: Int = 0
    /// Stale answers served while a refresh ran.
    public var staleHits: Int = 0
    /// Background refreshes started.
    public var refreshes: Int = 0
    /// Entries of an earlier embedding model re-embedded by the current one (`SemanticLayer.ModelChange.reembed`).
    public var reembedded: Int = 0
    /// Calls made to the upstream model.
    public var upstreamCalls: Int = 0
    /// Upstream calls that failed.
    public var upstreamErrors: Int = 0
    /// Requests that waited on another request's identical upstream call instead of making their own.
    public var coalescedWaiters: Int = 0
    /// Answers not stored: errors, refusals, oversize.
    public var notStored: Int = 0
    /// Tokens that hits did not spend upstream.
    public var tokensSaved: Int = 0
    /// US dollars that hits did not spend upstream (models in the price table only).
    public var costSavedUSD: Double = 0
    /// Input tokens the provider served from its own prompt cache on upstream calls.
    public var promptCacheTokensRead: Int = 0
    /// Input tokens of upstream calls (the denominator of the provider's prompt-cache hit ratio).
    public var upstreamPromptTokens: Int = 0
    /// US dollars the provider's prompt cache saved on upstream calls (cached input at its discounted price).
    public var promptCacheSavedUSD: Double = 0
    /// The share of upstream input tokens served from the provider's prompt cache.
    public var promptCacheHitRatio: Double {
        self.upstreamPromptTokens == 0 ? 0 : Double(self.promptCacheTokensRead) / Double(self.upstreamPromptTokens)
    }
    /// Latency of answers served from cache (lookup only).
    public var hitLatency = LatencyHistogram()
    /// Latency of upstream calls.
    public var upstreamLatency = LatencyHistogram()

    /// Hits / requests.
    public var hitRate: Double { self.requests == 0 ? 0 : Double(self.hits) / Double(self.requests) }
}

/// Writes `CacheStatistics` (under a lock) and the same figures to swift-metrics.
final class CacheStatisticsRecorder: Sendable {
    private let state: LockedState<CacheStatistics>
    private let metrics: CacheMetrics

    init(layerNames: [String], semantic: Bool, metricsPrefix: String, metricsFactory: any MetricsFactory) {
        self.state = LockedState(
            CacheStatistics(layers: layerNames.map { CacheStatistics.Layer(name: $0) }, semantic: semantic ? .init() : nil)
        )
        self.metrics = CacheMetrics(prefix: metricsPrefix, layerNames: layerNames, factory: metricsFactory)
    }

    func snapshot() -> CacheStatistics { self.state.withLock { $0 } }

    func request(skipped reason: CachePolicy.SkipReason?) {
        self.state.withLock { stats in
            stats.requests += 1
            if let reason { stats.skipped[reason.description, default: 0] += 1 }
            if reason != .nondeterministic { stats.cacheable += 1 }
        }
        self.metrics.requests.increment()
        if let reason { self.metrics.skipped(reason.description).increment() }
    }

    func layerHit(_ index: Int, latency: Duration, age: Duration) {
        self.state.withLock { stats in
            stats.layers[index].hits += 1
            stats.layers[index].latency.record(latency)
            stats.layers[index].entryAgeAtHit.record(age)
        }
        self.metrics.layers[index].hits.increment()
        self.metrics.layers[index].latency.recordNanoseconds(latency.nanoseconds)
    }

    func layerMiss(_ index: Int, latency: Duration) {
        self.state.withLock { stats in
            stats.layers[index].misses += 1
            stats.layers[index].latency.record(latency)
        }
        self.metrics.layers[index].misses.increment()
        self.metrics.layers[index].latency.recordNanoseconds(latency.nanoseconds)
    }

    func layerError(_ index: Int, corrupt: Bool = false) {
        self.state.withLock { stats in
            stats.layers[index].errors += corrupt ? 0 : 1
            stats.layers[index].corruptEntries += corrupt ? 1 : 0
        }
        (corrupt ? self.metrics.layers[index].corrupt : self.metrics.layers[index].errors).increment()
    }

    func semanticLookup(hit: Bool, similarity: Float?, threshold: Float, margin: Float, ambiguous: Bool = false, searchLatency: Duration) {
        let bucket = similarity.map { min(19, max(0, Int($0 * 20))) }
        self.state.withLock { stats in
            stats.semantic?.lookups += 1
            stats.semantic?.latency.record(searchLatency)
            if hit {
                stats.semantic?.hits += 1
                if let bucket { stats.semantic?.hitSimilarity[bucket] += 1 }
            } else {
                stats.semantic?.misses += 1
                if ambiguous { stats.semantic?.ambiguous += 1 }
                if let bucket { stats.semantic?.missNearestSimilarity[bucket] += 1 }
                if let similarity, similarity >= threshold - margin {
                    stats.semantic?.nearMisses += 1
                    stats.semantic?.recentNearMisses.append(CacheStatistics.NearMiss(similarity: similarity, threshold: threshold))
                    if stats.semantic?.recentNearMisses.count ?? 0 > 64 { stats.semantic?.recentNearMisses.removeFirst() }
                }
            }
        }
        (hit ? self.metrics.semanticHits : self.metrics.semanticMisses).increment()
        if ambiguous { self.metrics.semanticAmbiguous.increment() }
        self.metrics.semanticLatency.recordNanoseconds(searchLatency.nanoseconds)
        if let similarity { self.metrics.similarity.record(Double(similarity)) }
    }

    func semanticGuarded(_ refusals: [SemanticGuards.Guard]) {
        self.state.withLock { stats in
            for refusal in refusals { stats.semantic?.guarded[refusal.rawValue, default: 0] += 1 }
        }
        for refusal in refusals { self.metrics.semanticGuarded[refusal]?.increment() }
    }

    /// One verdict: `true` accepted, `false` rejected, `nil` failed (an error or a timeout).
    func verification(_ verifier: String, accepted: Bool?, latency: Duration) {
        self.state.withLock { stats in
            var counts = stats.semantic?.verifications[verifier] ?? CacheStatistics.Verifications()
            switch accepted {
            case true?: counts.accepted += 1
            case false?: counts.rejected += 1
            case nil: counts.failed += 1
            }
            counts.latency.record(latency)
            stats.semantic?.verifications[verifier] = counts
        }
        let verdict = accepted.map { $0 ? "accepted" : "rejected" } ?? "failed"
        self.metrics.verification(verifier, verdict: verdict).increment()
        self.metrics.verifierLatency(verifier).recordNanoseconds(latency.nanoseconds)
    }

    func audited(agreed: Bool, namespace: String, cost: Double) {
        let precision = self.state.withLock { stats -> Double? in
            if agreed {
                stats.semantic?.audit.agreements += 1
                stats.semantic?.audit.byNamespace[namespace, default: .init()].agreements += 1
            } else {
                stats.semantic?.audit.disagreements += 1
                stats.semantic?.audit.byNamespace[namespace, default: .init()].disagreements += 1
            }
            stats.semantic?.audit.spentUSD += cost
            return stats.semantic?.audit.estimatedPrecision
        }
        self.metrics.audits(agreed ? "agreed" : "disagreed").increment()
        if let precision { self.metrics.estimatedPrecision.record(precision) }
    }

    func auditFailed() {
        self.state.withLock { $0.semantic?.audit.failures += 1 }
        self.metrics.audits("failed").increment()
    }

    func auditSkipped() {
        self.state.withLock { $0.semantic?.audit.skippedForBudget += 1 }
        self.metrics.audits("skipped").increment()
    }

    func auditRemoved() {
        self.state.withLock { $0.semantic?.audit.entriesRemoved += 1 }
    }

    func promoted() {
        self.state.withLock { $0.semantic?.promoted += 1 }
        self.metrics.semanticPromoted.increment()
    }

    func embedding(latency: Duration) {
        self.state.withLock { $0.semantic?.embeddingLatency.record(latency) }
    }

    func semanticError() {
        self.state.withLock { $0.semantic?.errors += 1 }
        self.metrics.semanticErrors.increment()
    }

    func served(entry: CacheEntry, latency: Duration, stale: Bool) {
        let tokens = entry.usage?.totalTokens ?? 0
        let cost = entry.cost ?? 0
        self.state.withLock { stats in
            stats.hits += 1
            stats.staleHits += stale ? 1 : 0
            stats.tokensSaved += tokens
            stats.costSavedUSD += cost
            stats.hitLatency.record(latency)
        }
        self.metrics.hits.increment()
        self.metrics.tokensSaved.increment(by: tokens)
        self.metrics.costSaved.increment(by: cost)
    }

    func upstream(latency: Duration, failed: Bool, usage: TokenUsage?, promptCacheSaving: Double = 0) {
        self.state.withLock { stats in
            stats.upstreamCalls += 1
            stats.upstreamErrors += failed ? 1 : 0
            stats.upstreamLatency.record(latency)
            stats.promptCacheTokensRead += usage?.cachedPromptTokens ?? 0
            stats.upstreamPromptTokens += usage?.promptTokens ?? 0
            stats.promptCacheSavedUSD += promptCacheSaving
        }
        self.metrics.upstreamCalls.increment()
        if failed { self.metrics.upstreamErrors.increment() }
        self.metrics.upstreamLatency.recordNanoseconds(latency.nanoseconds)
    }

    func coalesced() {
        self.state.withLock { $0.coalescedWaiters += 1 }
        self.metrics.coalesced.increment()
    }

    func refreshStarted() { self.state.withLock { $0.refreshes += 1 } }
    func reembedded() { self.state.withLock { $0.reembedded += 1 } }

    func notStored() { self.state.withLock { $0.notStored += 1 } }
}

extension Duration {
    /// The duration in whole nanoseconds, saturating.
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = self.components
        let (ns, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds > 0 ? .max : .min }
        return ns + attoseconds / 1_000_000_000
    }
}
