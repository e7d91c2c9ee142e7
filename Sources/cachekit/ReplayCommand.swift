import ArgumentParser
import CacheKit
import CacheKitOpenAI
import Foundation

struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Replay a workload (JSON Lines of {\"request\", \"label\"}) through the configured layers and report.",
        discussion: """
            Each line is {"request": <chat request>, "label": "<answer id>"}: an OpenAI chat-completions body and \
            the id of its right answer. The simulated upstream answers with the label, so a semantic hit is correct \
            when it serves its own label's answer; with --upstream URL the requests go to a real OpenAI-compatible \
            server and a semantic hit is correct when it serves the answer that server gave first for the same \
            label. Layers: --layers memory,redis,postgres and --semantic memory|pgvector (CACHEKIT_REDIS_URL, \
            CACHEKIT_POSTGRES_URL, CACHEKIT_MODEL_DIR). --html writes a self-contained report page.

            --json prints one object with these keys: requests, upstream_calls, hits_l1 (first exact layer), \
            hits_l2 (later exact layers), semantic_hits, semantic_correct, semantic_wrong, misses (answered \
            upstream), bypasses (not cacheable by policy), hit_rate, p50_ms and p95_ms (every request), \
            cached_p50_ms and cached_p95_ms, upstream_p50_ms and upstream_p95_ms, tokens_saved, cost_saved_usd. \
            The format is documented in docs/replay-workload.md.
            """
    )

    @Argument(help: "The workload file, or - for standard input.")
    var file: String

    @OptionGroup var layers: LayerOptions

    @Option(help: "A real OpenAI-compatible upstream base URL (with OPENAI_API_KEY) instead of the simulated one.")
    var upstream: String?

    @Option(help: "Simulated upstream time to first token, in milliseconds.")
    var upstreamLatencyMs: Int = 60

    @Flag(help: "Print the summary as JSON.")
    var json = false

    @Option(help: "Audit this share of semantic hits online (SemanticLayer.Audit.sampleRate) and report its estimate next to the true precision.")
    var auditRate: Double?

    @Option(help: "The audit's error bound per entry (SemanticLayer.Audit.maximumErrorRate, default 0.02).")
    var auditDelta: Double = 0.02

    @Option(help: "Write a self-contained HTML report with charts to this file.")
    var html: String?

    func run() async throws {
        let items = try WorkloadItem.parse(try readInput(self.file), source: self.file)
        guard !items.isEmpty else { throw CLIError("\(self.file) has no requests") }
        var configuration = try await self.layers.configuration(logLevel: .error)
        if let rate = self.auditRate {
            guard configuration.semantic != nil else { throw CLIError("--audit-rate needs a semantic layer (--semantic memory or pgvector)") }
            guard (0...1).contains(rate), (0...1).contains(self.auditDelta) else { throw CLIError("--audit-rate and --audit-delta must be between 0 and 1") }
            // A replay is short: the budget is the sample rate alone.
            configuration.semantic?.audit = SemanticLayer.Audit(
                sampleRate: rate, maximumErrorRate: self.auditDelta, maximumCallsPerMinute: .max, maximumUSDPerHour: .infinity
            )
        }
        try await LayerOptions.preflight(configuration)
        let cache = try MultiLayerCache(configuration: configuration)
        let upstream: any CompletionProvider
        if let url = self.upstream {
            guard let parsed = URL(string: url), parsed.scheme == "http" || parsed.scheme == "https", parsed.host != nil else {
                throw CLIError("--upstream must be an http(s) URL, not \"\(url)\"")
            }
            var client = OpenAIClient.Configuration.fromEnvironment(ProcessInfo.processInfo.environment)
            client.baseURL = url
            upstream = OpenAIClient(configuration: client)
        } else {
            var labels: [String: String] = [:]
            for item in items {
                if let text = item.request.messages.last(where: { $0.role == "user" })?.text { labels[text] = item.label }
            }
            upstream = SimulatedUpstream(labels: labels, baseLatency: .milliseconds(self.upstreamLatencyMs))
        }
        let interactive = !self.json && isatty(STDOUT_FILENO) != 0
        var summary = try await WorkloadRunner(cache: cache, upstream: upstream).run(items) { done in
            guard interactive else { return }
            let width = 30, filled = width * done / items.count
            print("\r  [" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] \(done)/\(items.count)",
                  terminator: done == items.count ? "\n\n" : "")
            fflush(nil)
        }
        if self.auditRate != nil {
            summary.audit = try await Self.settledAudit(cache, summary: summary)
        }
        if let html = self.html {
            guard FileManager.default.createFile(atPath: html, contents: Data(HTMLReport.page(summary, layers: configuration.layers.map(\.name), title: self.file).utf8)) else {
                throw CLIError("cannot write \(html)")
            }
        }
        if self.json {
            print(String(decoding: summary.json.canonicalBytes(), as: UTF8.self))
        } else {
            print(Report.text(summary, statistics: cache.statistics()))
            if let audit = summary.audit { print("Audit               " + String(decoding: audit.canonicalBytes(), as: UTF8.self)) }
        }
    }
}

extension ReplayCommand {
    /// Waits (up to a minute) for the background audits to finish, then reports them next to the truth.
    static func settledAudit(_ cache: MultiLayerCache, summary: ReplaySummary) async throws -> JSONValue {
        func done() -> Int {
            let audit = cache.statistics().semantic?.audit
            return (audit?.audits ?? 0) + (audit?.failures ?? 0) + (audit?.skippedForBudget ?? 0)
        }
        var last = done(), stable = 0
        for _ in 0..<600 where stable < 5 {
            try await Task.sleep(for: .milliseconds(100))
            let now = done()
            stable = now == last ? stable + 1 : 0
            last = now
        }
        let audit = cache.statistics().semantic?.audit ?? CacheStatistics.Audit()
        let hits = summary.semanticCorrect + summary.semanticWrong
        func rate(_ part: Int, _ whole: Int) -> JSONValue { whole == 0 ? .null : .number(Double(part) / Double(whole)) }
        return [
            "calls": .number(Double(audit.audits + audit.failures)), "agreements": .number(Double(audit.agreements)),
            "disagreements": .number(Double(audit.disagreements)), "entries_removed": .number(Double(audit.entriesRemoved)),
            "estimated_precision": audit.estimatedPrecision.map { .number($0) } ?? .null,
            "precision_interval": audit.precisionInterval.map { .array([.number($0.lowerBound), .number($0.upperBound)]) } ?? .null,
            "true_precision": rate(summary.semanticCorrect, hits),
            "late_semantic_hits": .number(Double(summary.lateSemanticHits)), "late_semantic_wrong": .number(Double(summary.lateSemanticWrong)),
            "late_error_rate": rate(summary.lateSemanticWrong, summary.lateSemanticHits),
        ]
    }
}

/// The replay report as one HTML page with inline SVG charts (no scripts, no external files).
enum HTMLReport {
    static func page(_ s: ReplaySummary, layers: [String], title: String) -> String {
        func escape(_ text: String) -> String {
            text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
        }
        func bars(_ values: [(String, Double, String)], unit: String) -> String {
            let maximum = max(values.map(\.1).max() ?? 1, 1e-9)
            var svg = "<svg width=\"520\" height=\"\(values.count * 34 + 10)\" font-family=\"sans-serif\" font-size=\"13\">"
            for (index, (label, value, color)) in values.enumerated() {
                let y = index * 34 + 5, width = Int(300 * value / maximum)
                svg += "<text x=\"0\" y=\"\(y + 18)\">\(escape(label))</text>"
                svg += "<rect x=\"150\" y=\"\(y)\" width=\"\(max(width, 1))\" height=\"24\" fill=\"\(color)\"/>"
                svg += "<text x=\"\(156 + width)\" y=\"\(y + 18)\">\(String(format: "%.3f", value).replacingOccurrences(of: ".000", with: ""))\(unit)</text>"
            }
            return svg + "</svg>"
        }
        func ms(_ ns: UInt64) -> Double { Double(ns) / 1e6 }
        let sources: [(String, Double, String)] = [
            ("L1 (\(layers.first ?? "memory"))", Double(s.hitsL1), "#2a7"), ("L2+", Double(s.hitsL2), "#27a"),
            ("semantic, correct", Double(s.semanticCorrect), "#7a2"), ("semantic, wrong", Double(s.semanticWrong), "#c33"),
            ("upstream", Double(s.misses + s.bypasses), "#777"),
        ]
        let latency: [(String, Double, String)] = [
            ("cached p50", ms(s.cachedLatency.percentile(0.5)), "#2a7"), ("cached p95", ms(s.cachedLatency.percentile(0.95)), "#2a7"),
            ("upstream p50", ms(s.upstreamLatency.percentile(0.5)), "#a33"), ("upstream p95", ms(s.upstreamLatency.percentile(0.95)), "#a33"),
        ]
        return """
            <!doctype html><html lang="en"><head><meta charset="utf-8"><title>CacheKit replay</title>
            <style>body{font-family:system-ui,sans-serif;margin:24px;color:#222} td{padding:2px 12px 2px 0}</style></head><body>
            <h1>CacheKit replay: \(escape(title))</h1>
            <table><tr><td>requests</td><td>\(s.requests)</td></tr><tr><td>hit rate</td><td>\(String(format: "%.1f %%", 100 * s.hitRate))</td></tr>
            <tr><td>upstream calls</td><td>\(s.upstreamCalls)</td></tr><tr><td>tokens saved</td><td>\(s.tokensSaved)</td></tr>
            <tr><td>money saved</td><td>$\(String(format: "%.6f", s.costSavedUSD))</td></tr><tr><td>layers</td><td>\(escape(layers.joined(separator: ", ")))</td></tr></table>
            <h2>Where answers came from</h2>\(bars(sources, unit: ""))
            <h2>Latency (ms)</h2>\(bars(latency, unit: " ms"))
            </body></html>
            """
    }
}
