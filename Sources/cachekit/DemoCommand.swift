import ArgumentParser
import CacheKit
import CacheKitEmbeddings
import CacheKitMemory
import Foundation

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the bundled support-desk workload through the embedded default cache and report.",
        discussion: """
            The embedded default is a memory L1 plus an in-memory semantic index: no servers, no API key. The \
            upstream is simulated (it answers each question with its intent label after a realistic delay), so the \
            report can say whether each semantic hit served the right answer.
            """
    )

    @Option(help: "A workload file (JSON Lines of {\"request\", \"label\"}); default: the bundled one.")
    var workload: String?

    @Option(help: "Semantic similarity threshold (default: 0.85 with the local model, 0.75 with the lexical fallback; scores include the word-overlap re-ranking).")
    var threshold: Float?

    @Option(help: "A sentence-transformers model folder (default: CACHEKIT_MODEL_DIR, which ./scripts/demo sets).")
    var model: String?

    @Option(help: "Simulated upstream time to first token, in milliseconds.")
    var upstreamLatencyMs: Int = 60

    @Flag(help: "Print the summary as JSON.")
    var json = false

    func run() async throws {
        let source: String
        let bytes: [UInt8]
        if let path = self.workload {
            source = path
            bytes = try readInput(path)
        } else {
            guard let url = Bundle.module.url(forResource: "demo-workload", withExtension: "jsonl"),
                let data = FileManager.default.contents(atPath: url.path)
            else { throw CLIError("the bundled workload is missing from this build") }
            source = "demo-workload.jsonl"
            bytes = Array(data)
        }
        let items = try WorkloadItem.parse(bytes, source: source)
        guard !items.isEmpty else { throw CLIError("\(source) has no requests") }

        let embedder: any EmbeddingProvider
        var threshold: Float
        if let directory = self.model ?? ProcessInfo.processInfo.environment["CACHEKIT_MODEL_DIR"] {
            do {
                embedder = try LocalEmbeddingProvider(directory: directory)
            } catch {
                throw CLIError("cannot load the embedding model: \(error.message)")
            }
            threshold = self.threshold ?? 0.85
        } else {
            if !self.json {
                print("No embedding model (set CACHEKIT_MODEL_DIR or run ./scripts/demo): using the lexical fallback embedder.")
            }
            embedder = HashingEmbeddingProvider(dimension: 512)
            threshold = self.threshold ?? 0.75
        }
        var configuration = CacheConfiguration()
        configuration.layers = [.memory()]
        configuration.semantic = .memory(embedder: embedder, threshold: threshold)
        configuration.logger.logLevel = .error
        let cache = try MultiLayerCache(configuration: configuration)
        var labels: [String: String] = [:]
        for item in items {
            if let text = item.request.messages.last(where: { $0.role == "user" })?.text { labels[text] = item.label }
        }
        let upstream = SimulatedUpstream(labels: labels, baseLatency: .milliseconds(self.upstreamLatencyMs))
        if !self.json {
            print("CacheKit demo: \(items.count) support questions through memory L1 + semantic index (\(embedder.model), threshold \(threshold)).")
            print("Simulated upstream: \(self.upstreamLatencyMs) ms to first token + 0.8 ms per token.\n")
        }
        let summary = try await WorkloadRunner(cache: cache, upstream: upstream).run(items) { done in
            if !self.json, isatty(STDOUT_FILENO) != 0 {
                print("\r  \(done)/\(items.count) requests", terminator: done == items.count ? "\n\n" : "")
                fflush(nil)
            }
        }
        if self.json {
            print(String(decoding: summary.json.canonicalBytes(), as: UTF8.self))
        } else {
            print(Report.text(summary, statistics: cache.statistics()))
        }
    }
}

enum Report {
    static func text(_ s: ReplaySummary, statistics: CacheStatistics) -> String {
        func ms(_ ns: UInt64) -> String { String(format: "%.3f ms", Double(ns) / 1e6) }
        func percent(_ x: Int, _ of: Int) -> String { of == 0 ? "-" : String(format: "%.1f%%", 100 * Double(x) / Double(of)) }
        let hits = s.hitsL1 + s.hitsL2 + s.semanticHits
        var lines: [String] = []
        lines.append("Requests            \(s.requests)   (\(String(format: "%.1f", s.seconds)) s)")
        lines.append("Served from cache   \(hits)   hit rate \(percent(hits, s.requests))")
        lines.append("  memory L1         \(s.hitsL1)")
        if s.hitsL2 > 0 { lines.append("  L2                \(s.hitsL2)") }
        lines.append("  semantic          \(s.semanticHits)   correct \(s.semanticCorrect), wrong \(s.semanticWrong)")
        lines.append("Upstream calls      \(s.upstreamCalls)   (misses \(s.misses), bypassed \(s.bypasses))")
        lines.append("")
        lines.append("Latency             p50          p95")
        lines.append("  cached            \(ms(s.cachedLatency.percentile(0.5)).padding(toLength: 12, withPad: " ", startingAt: 0)) \(ms(s.cachedLatency.percentile(0.95)))")
        lines.append("  upstream          \(ms(s.upstreamLatency.percentile(0.5)).padding(toLength: 12, withPad: " ", startingAt: 0)) \(ms(s.upstreamLatency.percentile(0.95)))")
        lines.append("")
        lines.append("Tokens saved        \(s.tokensSaved)")
        lines.append("Money saved         $\(String(format: "%.6f", s.costSavedUSD))  (gpt-4o-mini list prices)")
        if let semantic = statistics.semantic, semantic.nearMisses > 0 {
            lines.append("Near misses         \(semantic.nearMisses) semantic misses within 0.1 of the threshold")
        }
        if let semantic = statistics.semantic, semantic.ambiguous > 0 {
            lines.append("Ambiguous           \(semantic.ambiguous) queries between two cached questions, sent upstream instead of guessing")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
