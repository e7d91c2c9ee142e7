//! What a running cache reports: per-layer hits and latency, tokens and money saved, near misses to tune by.
import CacheKit

// snippet.hide
func report(_ cache: MultiLayerCache) {
// snippet.show
let statistics = cache.statistics()
print("hit rate \(statistics.hitRate), upstream calls \(statistics.upstreamCalls), saved $\(statistics.costSavedUSD)")
for layer in statistics.layers {
    print("\(layer.name): \(layer.hits) hits, \(layer.errors) errors, p99 \(layer.latency.percentile(0.99)) ns")
}
if let semantic = statistics.semantic {
    // Many near misses just under the threshold: the threshold may be too strict for your traffic.
    print("semantic: \(semantic.hits) hits, \(semantic.nearMisses) near misses, \(semantic.ambiguous) ambiguous")
}
// snippet.hide
}
