import Metrics

/// The swift-metrics instruments of one cache, created once so the hot path only increments.
///
/// Names (with the configured prefix, `cachekit` by default): `<p>_requests_total`, `<p>_skipped_total{reason}`,
/// `<p>_hits_total`, `<p>_layer_hits_total{layer}`, `<p>_layer_misses_total{layer}`, `<p>_layer_errors_total{layer}`,
/// `<p>_layer_corrupt_total{layer}`, `<p>_layer_lookup_seconds{layer}`, `<p>_semantic_hits_total`,
/// `<p>_semantic_misses_total`, `<p>_semantic_ambiguous_total`, `<p>_semantic_errors_total`, `<p>_semantic_lookup_seconds`,
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
    let requests: Counter
    let hits: Counter
    let layers: [LayerInstruments]
    let semanticHits: Counter
    let semanticMisses: Counter
    let semanticAmbiguous: Counter
    let semanticErrors: Counter
    let semanticLatency: Metrics.Timer
    let similarity: Recorder
    let upstreamCalls: Counter
    let upstreamErrors: Counter
    let upstreamLatency: Metrics.Timer
    let coalesced: Counter
    let tokensSaved: Counter
    let costSaved: FloatingPointCounter

    init(prefix: String, layerNames: [String]) {
        self.prefix = prefix
        self.requests = Counter(label: "\(prefix)_requests_total")
        self.hits = Counter(label: "\(prefix)_hits_total")
        self.layers = layerNames.map { name in
            let dimensions = [("layer", name)]
            return LayerInstruments(
                hits: Counter(label: "\(prefix)_layer_hits_total", dimensions: dimensions),
                misses: Counter(label: "\(prefix)_layer_misses_total", dimensions: dimensions),
                errors: Counter(label: "\(prefix)_layer_errors_total", dimensions: dimensions),
                corrupt: Counter(label: "\(prefix)_layer_corrupt_total", dimensions: dimensions),
                latency: Metrics.Timer(label: "\(prefix)_layer_lookup_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds)
            )
        }
        self.semanticHits = Counter(label: "\(prefix)_semantic_hits_total")
        self.semanticMisses = Counter(label: "\(prefix)_semantic_misses_total")
        self.semanticAmbiguous = Counter(label: "\(prefix)_semantic_ambiguous_total")
        self.semanticErrors = Counter(label: "\(prefix)_semantic_errors_total")
        self.semanticLatency = Metrics.Timer(label: "\(prefix)_semantic_lookup_seconds", preferredDisplayUnit: .seconds)
        self.similarity = Recorder(label: "\(prefix)_semantic_similarity", aggregate: true)
        self.upstreamCalls = Counter(label: "\(prefix)_upstream_calls_total")
        self.upstreamErrors = Counter(label: "\(prefix)_upstream_errors_total")
        self.upstreamLatency = Metrics.Timer(label: "\(prefix)_upstream_seconds", preferredDisplayUnit: .seconds)
        self.coalesced = Counter(label: "\(prefix)_coalesced_total")
        self.tokensSaved = Counter(label: "\(prefix)_tokens_saved_total")
        self.costSaved = FloatingPointCounter(label: "\(prefix)_cost_saved_usd_total")
    }

    func skipped(_ reason: String) -> Counter {
        Counter(label: "\(self.prefix)_skipped_total", dimensions: [("reason", reason)])
    }
}
