public import CacheKit

/// `CacheStatistics` as JSON (`GET /stats`, `cachekit stats`): counts, rates, money, and latency percentiles in
/// milliseconds.
public enum StatisticsJSON {
    public static func encode(_ s: CacheStatistics) -> JSONValue {
        func latency(_ histogram: LatencyHistogram) -> JSONValue {
            let summary = histogram.summary
            return [
                "count": .number(Double(summary.count)), "p50_ms": .number(summary.p50.fractionalMilliseconds),
                "p95_ms": .number(summary.p95.fractionalMilliseconds), "p99_ms": .number(summary.p99.fractionalMilliseconds),
            ]
        }
        var object: [String: JSONValue] = [
            "requests": .number(Double(s.requests)), "cacheable": .number(Double(s.cacheable)), "hits": .number(Double(s.hits)),
            "hit_rate": .number(s.hitRate), "stale_hits": .number(Double(s.staleHits)), "refreshes": .number(Double(s.refreshes)),
            "upstream_calls": .number(Double(s.upstreamCalls)), "upstream_errors": .number(Double(s.upstreamErrors)),
            "coalesced_waiters": .number(Double(s.coalescedWaiters)), "not_stored": .number(Double(s.notStored)),
            "tokens_saved": .number(Double(s.tokensSaved)), "cost_saved_usd": .number(s.costSavedUSD),
            "prompt_cache_tokens_read": .number(Double(s.promptCacheTokensRead)), "upstream_prompt_tokens": .number(Double(s.upstreamPromptTokens)),
            "prompt_cache_hit_ratio": .number(s.promptCacheHitRatio), "prompt_cache_saved_usd": .number(s.promptCacheSavedUSD),
            "skipped": .object(s.skipped.mapValues { .number(Double($0)) }),
            "hit_latency": latency(s.hitLatency), "upstream_latency": latency(s.upstreamLatency),
            "layers": .array(s.layers.map { layer in
                [
                    "name": .string(layer.name), "hits": .number(Double(layer.hits)), "misses": .number(Double(layer.misses)),
                    "errors": .number(Double(layer.errors)), "corrupt_entries": .number(Double(layer.corruptEntries)),
                    "hit_rate": .number(layer.hitRate), "latency": latency(layer.latency),
                ]
            }),
        ]
        if let semantic = s.semantic {
            object["semantic"] = [
                "lookups": .number(Double(semantic.lookups)), "hits": .number(Double(semantic.hits)), "misses": .number(Double(semantic.misses)),
                "errors": .number(Double(semantic.errors)), "near_misses": .number(Double(semantic.nearMisses)),
                "ambiguous": .number(Double(semantic.ambiguous)),
                "guarded": .object(semantic.guarded.mapValues { .number(Double($0)) }),
                "verifications": .object(semantic.verifications.mapValues { counts in
                    ["accepted": .number(Double(counts.accepted)), "rejected": .number(Double(counts.rejected)), "failed": .number(Double(counts.failed))]
                }),
                "promoted": .number(Double(semantic.promoted)),
                "audit": [
                    "agreements": .number(Double(semantic.audit.agreements)), "disagreements": .number(Double(semantic.audit.disagreements)),
                    "failures": .number(Double(semantic.audit.failures)), "skipped_for_budget": .number(Double(semantic.audit.skippedForBudget)),
                    "entries_removed": .number(Double(semantic.audit.entriesRemoved)), "spent_usd": .number(semantic.audit.spentUSD),
                    "estimated_precision": semantic.audit.estimatedPrecision.map { .number($0) } ?? .null,
                    "precision_interval": semantic.audit.precisionInterval.map { .array([.number($0.lowerBound), .number($0.upperBound)]) } ?? .null,
                ],
                "latency": latency(semantic.latency), "embedding_latency": latency(semantic.embeddingLatency),
            ]
        }
        return .object(object)
    }
}

extension Duration {
    var fractionalMilliseconds: Double { Double(self.components.seconds) * 1000 + Double(self.components.attoseconds) / 1e15 }
}
