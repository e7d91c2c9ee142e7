import Metrics

/// The swift-metrics instruments of one cache, created once so the hot path only increments.
///
/// Names (with the configured prefix, `cachekit` by default): `<p>_requests_total`, `<p>_skipped_total{reason}`,
/// `<p>_hits_total`, `<p>_layer_hits_total{layer}`, `<p>_layer_misses_total{layer}`, `<p>_layer_errors_total{layer}`,
/// `<p>_layer_corrupt_total{layer}`, `<p>_layer_lookup_seconds{layer}`, `<p>_semantic_hits_total`,
/// `<p>_semantic_misses_total`, `<p>_semantic_ambiguous_total`, `<p>_semantic_guarded_total{guard}`,
/// `<p>_semantic_verifications_total{verifier, verdict}`, `<p>_semantic_verifier_seconds{verifier}`,
/// `<p>_semantic_promoted_total`, `<p>_semantic_audits_total{result}`, `<p>_semantic_estimated_precision`,
/// `<p>_semantic_errors_total`, `<p>_semantic_lookup_seconds`,
/// `<p>_semantic_similarity`, `<p>_upstream_calls_total`, `<p>_upstream_errors_total`, `<p>_upstream_seconds`,
/// `<p>_coalesced_total`, `<p>_tokens_saved_total`, `<p>_cost_saved_usd_total`.
struct CacheMetrics: Sendable {
    struct LayerInstruments: Sendable {
        let hits: Counter
        let misses: Counter
        let errors: Counter
        let corrupt: Counter
        let latency: Metrics.Timer
    }

    let prefix: String
    let factory: any MetricsFactory
    let requests: Counter
    let hits: Counter
    let layers: [LayerInstruments]
    let semanticHits: Counter
    let semanticMisses: Counter
    let semanticAmbiguous: Counter
    /// `<p>_semantic_guarded_total{guard}`: candidates at or above the threshold refused, per guard.
    let semanticGuarded: [SemanticGuards.Guard: Counter]
    let semanticErrors: Counter
    let semanticPromoted: Counter
    /// The online audit's estimated precision of semantic hits (the last value).
    let estimatedPrecision: Gauge
    let semanticLatency: Metrics.Timer
    let similarity: Recorder
    let upstreamCalls: Counter
    let upstreamErrors: Counter
    let upstreamLatency: Metrics.Timer
    let coalesced: Counter
    let tokensSaved: Counter
    let costSaved: FloatingPointCounter

    init(prefix: String, layerNames: [String], factory: any MetricsFactory) {
        self.prefix = prefix
        self.factory = factory
        self.requests = Counter(label: "\(prefix)_requests_total", factory: factory)
        self.hits = Counter(label: "\(prefix)_hits_total", factory: factory)
        self.layers = layerNames.map { name in
            let dimensions = [("layer", name)]
            return LayerInstruments(
                hits: Counter(label: "\(prefix)_layer_hits_total", dimensions: dimensions, factory: factory),
                misses: Counter(label: "\(prefix)_layer_misses_total", dimensions: dimensions, factory: factory),
                errors: Counter(label: "\(prefix)_layer_errors_total", dimensions: dimensions, factory: factory),
                corrupt: Counter(label: "\(prefix)_layer_corrupt_total", dimensions: dimensions, factory: factory),
                latency: Metrics.Timer(label: "\(prefix)_layer_lookup_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds, factory: factory)
            )
        }
        self.semanticHits = Counter(label: "\(prefix)_semantic_hits_total", factory: factory)
        self.semanticMisses = Counter(label: "\(prefix)_semantic_misses_total", factory: factory)
        self.semanticAmbiguous = Counter(label: "\(prefix)_semantic_ambiguous_total", factory: factory)
        self.semanticGuarded = Dictionary(uniqueKeysWithValues: SemanticGuards.Guard.allCases.map { kind in
            (kind, Counter(label: "\(prefix)_semantic_guarded_total", dimensions: [("guard", kind.rawValue)], factory: factory))
        })
        self.semanticErrors = Counter(label: "\(prefix)_semantic_errors_total", factory: factory)
        self.semanticPromoted = Counter(label: "\(prefix)_semantic_promoted_total", factory: factory)
        self.estimatedPrecision = Gauge(label: "\(prefix)_semantic_estimated_precision", factory: factory)
        self.semanticLatency = Metrics.Timer(label: "\(prefix)_semantic_lookup_seconds", preferredDisplayUnit: .seconds, factory: factory)
        self.similarity = Recorder(label: "\(prefix)_semantic_similarity", aggregate: true, factory: factory)
        self.upstreamCalls = Counter(label: "\(prefix)_upstream_calls_total", factory: factory)
        self.upstreamErrors = Counter(label: "\(prefix)_upstream_errors_total", factory: factory)
        self.upstreamLatency = Metrics.Timer(label: "\(prefix)_upstream_seconds", preferredDisplayUnit: .seconds, factory: factory)
        self.coalesced = Counter(label: "\(prefix)_coalesced_total", factory: factory)
        self.tokensSaved = Counter(label: "\(prefix)_tokens_saved_total", factory: factory)
        self.costSaved = FloatingPointCounter(label: "\(prefix)_cost_saved_usd_total", factory: factory)
    }

    func audits(_ result: String) -> Counter {
        Counter(label: "\(self.prefix)_semantic_audits_total", dimensions: [("result", result)], factory: self.factory)
    }

    func verification(_ verifier: String, verdict: String) -> Counter {
        Counter(label: "\(self.prefix)_semantic_verifications_total", dimensions: [("verifier", verifier), ("verdict", verdict)], factory: self.factory)
    }

    func verifierLatency(_ verifier: String) -> Metrics.Timer {
        Metrics.Timer(label: "\(self.prefix)_semantic_verifier_seconds", dimensions: [("verifier", verifier)], preferredDisplayUnit: .seconds, factory: self.factory)
    }

    func skipped(_ reason: String) -> Counter {
        Counter(label: "\(self.prefix)_skipped_total", dimensions: [("reason", reason)], factory: self.factory)
    }
}
