import ArgumentParser
import CacheKit

/// One line of a replay workload: `{"request": <chat request>, "label": "<answer id>"}`.
struct WorkloadItem: Sendable {
    var request: ChatRequest
    var label: String

    /// Parses JSON Lines; blank lines are skipped. Errors name the line.
    static func parse(_ bytes: [UInt8], source: String) throws -> [WorkloadItem] {
        var items: [WorkloadItem] = []
        var lineNumber = 0
        for line in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            guard line.contains(where: { $0 != 0x20 && $0 != 0x09 && $0 != 0x0D }) else { continue }
            let value: JSONValue
            do {
                value = try JSONValue(parsing: line)
            } catch {
                throw CLIError("\(source) line \(lineNumber): \(error.description)")
            }
            guard let object = value.objectValue, let request = object["request"]?.objectValue else {
                throw CLIError("\(source) line \(lineNumber): expected {\"request\": {...}, \"label\": \"...\"}")
            }
            guard let label = object["label"]?.stringValue else {
                throw CLIError("\(source) line \(lineNumber): \"label\" must be a string")
            }
            do {
                items.append(WorkloadItem(request: try ChatRequest(body: request), label: label))
            } catch {
                throw CLIError("\(source) line \(lineNumber): \(error.message)")
            }
        }
        return items
    }
}

/// What a replay measured; `json` has the keys `replay --help` and docs/replay-workload.md document.
struct ReplaySummary: Sendable {
    var requests = 0
    var upstreamCalls = 0
    var hitsL1 = 0
    var hitsL2 = 0
    var semanticHits = 0
    var semanticCorrect = 0
    var semanticWrong = 0
    var misses = 0
    var bypasses = 0
    var cachedLatency = LatencyHistogram()
    var upstreamLatency = LatencyHistogram()
    var allLatency = LatencyHistogram()
    var tokensSaved = 0
    var costSavedUSD = 0.0
    var seconds = 0.0
    /// Semantic hits, and wrong ones, in the second half of the workload (after warm-up).
    var lateSemanticHits = 0
    var lateSemanticWrong = 0
    /// With `--audit-rate`: what the online audit estimated, next to the truth.
    var audit: JSONValue?

    var hitRate: Double { self.requests == 0 ? 0 : Double(self.hitsL1 + self.hitsL2 + self.semanticHits) / Double(self.requests) }

    static func milliseconds(_ nanoseconds: UInt64) -> Double { Double(nanoseconds) / 1e6 }

    var json: JSONValue {
        func number(_ value: Int) -> JSONValue { .number(Double(value)) }
        func ms(_ value: UInt64) -> JSONValue { .number((Self.milliseconds(value) * 1000).rounded() / 1000) }
        var object: [String: JSONValue] = [
            "requests": number(self.requests), "upstream_calls": number(self.upstreamCalls),
            "hits_l1": number(self.hitsL1), "hits_l2": number(self.hitsL2), "semantic_hits": number(self.semanticHits),
            "semantic_correct": number(self.semanticCorrect), "semantic_wrong": number(self.semanticWrong),
            "misses": number(self.misses), "bypasses": number(self.bypasses), "hit_rate": .number((self.hitRate * 10000).rounded() / 10000),
            "p50_ms": ms(self.allLatency.percentile(0.5)), "p95_ms": ms(self.allLatency.percentile(0.95)),
            "cached_p50_ms": ms(self.cachedLatency.percentile(0.5)), "cached_p95_ms": ms(self.cachedLatency.percentile(0.95)),
            "upstream_p50_ms": ms(self.upstreamLatency.percentile(0.5)), "upstream_p95_ms": ms(self.upstreamLatency.percentile(0.95)),
            "tokens_saved": number(self.tokensSaved), "cost_saved_usd": .number((self.costSavedUSD * 1e6).rounded() / 1e6),
        ]
        if let audit = self.audit { object["audit"] = audit }
        return .object(object)
    }
}

/// Runs a workload through a cache, one request after another, and scores it.
struct WorkloadRunner {
    let cache: MultiLayerCache
    let upstream: any CompletionProvider

    func run(_ items: [WorkloadItem], progress: ((Int) -> Void)? = nil) async throws -> ReplaySummary {
        var summary = ReplaySummary()
        // The first upstream answer seen per label: a semantic hit is correct when it serves the answer of its own
        // label (with the simulated upstream, that answer is the label itself).
        var answers: [String: String] = [:]
        let started = ContinuousClock.now
        for (index, item) in items.enumerated() {
            let before = ContinuousClock.now
            let result = try await self.cache.completion(for: item.request, upstream: self.upstream)
            let elapsed = ContinuousClock.now - before
            summary.requests += 1
            summary.allLatency.record(elapsed)
            let source = result.outcome.source
            if source.isHit {
                summary.cachedLatency.record(elapsed)
                summary.tokensSaved += result.response.usage?.totalTokens ?? 0
            } else {
                summary.upstreamLatency.record(elapsed)
            }
            if let layer = source.exactLayerIndex {
                if layer == 0 { summary.hitsL1 += 1 } else { summary.hitsL2 += 1 }
            } else if source == .semanticHit {
                summary.semanticHits += 1
                let correct = result.response.text == (answers[item.label] ?? item.label)
                if correct { summary.semanticCorrect += 1 } else { summary.semanticWrong += 1 }
                if index >= items.count / 2 {
                    summary.lateSemanticHits += 1
                    if !correct { summary.lateSemanticWrong += 1 }
                }
            } else if source == .bypass {
                summary.bypasses += 1
            } else {
                summary.misses += 1
            }
            if !source.isHit, answers[item.label] == nil, let text = result.response.text { answers[item.label] = text }
            progress?(index + 1)
        }
        summary.seconds = (ContinuousClock.now - started).seconds
        let stats = self.cache.statistics()
        summary.upstreamCalls = stats.upstreamCalls
        summary.costSavedUSD = stats.costSavedUSD
        return summary
    }
}
