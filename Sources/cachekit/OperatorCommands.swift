import ArgumentParser
import CacheKit
import CacheKitInvalidation
import CacheKitOpenAI
import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

struct WarmCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "warm",
        abstract: "Pre-warm the shared layers from a list of top requests.",
        discussion: """
            Reads request bodies, one per line (a workload line {"request": …} works too), and answers each through \
            the configured layers: cached ones are left alone, the rest are asked upstream (--upstream or \
            OPENAI_BASE_URL, with OPENAI_API_KEY) and stored. Use shared layers (--layers redis or postgres): a \
            memory layer lives only as long as this command.
            """
    )

    @Argument(help: "The requests file, or - for standard input.")
    var file: String

    @OptionGroup var layers: LayerOptions

    @Option(help: "The upstream base URL (default: OPENAI_BASE_URL).")
    var upstream: String?

    @Option(help: "Namespace to warm.")
    var namespace = "default"

    @Option(help: "Tenant to warm.")
    var tenant = "default"

    func run() async throws {
        var requests: [ChatRequest] = []
        for (number, line) in try readInput(self.file).split(separator: UInt8(ascii: "\n")).enumerated() where line.contains(where: { $0 > 0x20 }) {
            do {
                let value = try JSONValue(parsing: line)
                let body = value["request"]?.objectValue ?? value.objectValue
                guard let body else { throw CLIError("\(self.file) line \(number + 1): expected a request object") }
                requests.append(try ChatRequest(body: body))
            } catch let error as JSONParsingError {
                throw CLIError("\(self.file) line \(number + 1): \(error.description)")
            } catch let error as CacheError {
                throw CLIError("\(self.file) line \(number + 1): \(error.message)")
            }
        }
        let configuration = try await self.layers.configuration(logLevel: .error)
        if !configuration.layers.contains(where: \.options.isShared) {
            FileHandle.standardError.write(Data("warning: no shared layer configured; what this command stores goes away with it\n".utf8))
        }
        try await LayerOptions.preflight(configuration)
        var client = OpenAIClient.Configuration.fromEnvironment(ProcessInfo.processInfo.environment)
        if let upstream = self.upstream { client.baseURL = upstream }
        let cache = try MultiLayerCache(configuration: configuration)
        let upstream = OpenAIClient(configuration: client)
        let scope = CacheScope(tenant: self.tenant, namespace: self.namespace)
        var stored = 0, cached = 0, failed = 0
        let interactive = isatty(STDOUT_FILENO) != 0
        for (index, request) in requests.enumerated() {
            do {
                let result = try await cache.completion(for: request, in: scope, upstream: upstream)
                if result.outcome.source.isHit { cached += 1 } else { stored += 1 }
            } catch {
                failed += 1
                FileHandle.standardError.write(Data("request \(index + 1): \(error)\n".utf8))
            }
            if interactive {
                print("\r  \(index + 1)/\(requests.count) (stored \(stored), already cached \(cached), failed \(failed))", terminator: "")
                fflush(nil)
            }
        }
        if interactive { print("") }
        print("warmed \(requests.count) requests: \(stored) stored, \(cached) already cached, \(failed) failed")
        if failed > 0 { throw ExitCode(1) }
    }
}

struct StatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Show a running `cachekit serve`'s statistics (GET /stats).",
        discussion: "Prints hit rate, hits per layer, latency and savings; --json prints the object as served."
    )

    @Option(help: "The proxy's base URL.")
    var url = "http://127.0.0.1:8080"

    @Flag(help: "Print the JSON object.")
    var json = false

    func run() async throws {
        guard let base = URL(string: self.url), base.scheme == "http" || base.scheme == "https" else { throw CLIError("--url must be an http(s) URL") }
        let data: Data
        do { (data, _) = try await URLSession.shared.data(from: base.appendingPathComponent("stats")) } catch {
            throw CLIError("cannot reach \(self.url): \(error.localizedDescription)")
        }
        let stats: JSONValue
        do { stats = try JSONValue(parsing: Array(data)) } catch { throw CLIError("\(self.url)/stats did not return JSON") }
        if self.json {
            print(String(decoding: stats.canonicalBytes(), as: UTF8.self))
            return
        }
        func number(_ value: JSONValue?) -> Double { value?.doubleValue ?? 0 }
        print(String(format: "requests %.0f, hit rate %.1f %%, upstream calls %.0f, tokens saved %.0f, saved $%.6f",
            number(stats["requests"]), 100 * number(stats["hit_rate"]), number(stats["upstream_calls"]), number(stats["tokens_saved"]), number(stats["cost_saved_usd"])))
        for layer in stats["layers"]?.arrayValue ?? [] {
            print(String(format: "  %-10@ hits %.0f, misses %.0f, errors %.0f", (layer["name"]?.stringValue ?? "?") as NSString, number(layer["hits"]), number(layer["misses"]), number(layer["errors"])))
        }
        if let semantic = stats["semantic"] {
            print(String(format: "  semantic   hits %.0f of %.0f lookups, near misses %.0f", number(semantic["hits"]), number(semantic["lookups"]), number(semantic["near_misses"])))
        }
        print(String(format: "latency p50/p95: cached %.3f/%.3f ms, upstream %.1f/%.1f ms",
            number(stats["hit_latency"]?["p50_ms"]), number(stats["hit_latency"]?["p95_ms"]),
            number(stats["upstream_latency"]?["p50_ms"]), number(stats["upstream_latency"]?["p95_ms"])))
    }
}

struct InvalidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "invalidate",
        abstract: "Remove entries by tag, namespace, event or query pattern from every configured layer.",
        discussion: """
            Applies to the layers configured here (--layers, --semantic, CACHEKIT_*) and, when Redis is one of \
            them, publishes on its bus so running instances drop their memory copies. With --url it asks a running \
            `cachekit serve` instead (POST /admin/invalidate, --admin-token or CACHEKIT_ADMIN_TOKEN). Patterns scan \
            every entry of the scope (O(n)): prefer tags.
            """
    )

    @OptionGroup var layers: LayerOptions

    @Option(help: "Remove every entry carrying this tag.")
    var tag: String?

    @Option(help: "Remove every entry of this namespace (with --tenant).")
    var namespace: String?

    @Option(help: "The tenant of --namespace and --pattern.")
    var tenant = "default"

    @Option(help: "Remove the entries whose query text matches this glob (* and ?), in --namespace (default: default).")
    var pattern: String?

    @Option(help: "Apply the event rules of --rules for this event type.")
    var event: String?

    @Option(parsing: .singleValue, help: "An event attribute, name=value (repeatable).")
    var attribute: [String] = []

    @Option(help: "A JSON file of event rules: [{\"event\": …, \"tags\": […], \"patterns\": […]}].")
    var rules: String?

    @Option(help: "A running proxy's base URL: invalidate through its admin route instead.")
    var url: String?

    @Option(help: "The proxy's admin token (default: CACHEKIT_ADMIN_TOKEN).")
    var adminToken: String?

    func validate() throws {
        let targets = [self.tag != nil, self.event != nil, self.pattern != nil, self.namespace != nil && self.pattern == nil].filter { $0 }.count
        guard targets == 1 else { throw ValidationError("give exactly one of --tag, --namespace, --pattern or --event") }
    }

    func run() async throws {
        var attributes: [String: String] = [:]
        for pair in self.attribute {
            guard let equals = pair.firstIndex(of: "=") else { throw CLIError("--attribute must be name=value, not \"\(pair)\"") }
            attributes[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
        }
        let scope = CacheScope(tenant: self.tenant, namespace: self.namespace ?? "default")
        if let url = self.url {
            try await self.viaProxy(url, attributes: attributes)
            return
        }
        var eventRules: [EventRule] = []
        if let path = self.rules {
            do {
                for rule in try JSONValue(parsing: try readInput(path)).arrayValue ?? [] {
                    guard let event = rule["event"]?.stringValue else { throw CLIError("\(path): every rule needs \"event\"") }
                    eventRules.append(EventRule(
                        event: event, tags: rule["tags"]?.arrayValue?.compactMap(\.stringValue) ?? [],
                        patterns: rule["patterns"]?.arrayValue?.compactMap(\.stringValue) ?? []))
                }
            } catch let error as JSONParsingError { throw CLIError("\(path): \(error.description)") }
        }
        let configuration = try await self.layers.configuration(logLevel: .error)
        try await LayerOptions.preflight(configuration)
        let cache = try MultiLayerCache(configuration: configuration)
        let invalidator = CacheInvalidator(cache: cache, rules: InvalidationRules(eventRules: eventRules))
        let records: [CacheInvalidator.Record]
        if let tag = self.tag {
            records = [try await invalidator.invalidate(.tag(tag), reason: "cli")]
        } else if let pattern = self.pattern {
            records = [try await invalidator.invalidate(.pattern(QueryPattern(pattern), in: scope), reason: "cli")]
        } else if let event = self.event {
            guard !eventRules.isEmpty else { throw CLIError("--event needs --rules FILE with the event rules") }
            do {
                records = try await invalidator.handle(CacheEvent(event, attributes), in: scope)
            } catch let error as CacheError where error.code == .invalidRequest { throw CLIError(error.message) }
        } else {
            records = [try await invalidator.invalidate(.scope(scope), reason: "cli")]
        }
        let removed = records.reduce(0) { $0 + $1.removed }
        // A one-shot process has no background outbox: retry what failed for up to 10 s, then say it plainly.
        let deadline = ContinuousClock.now + .seconds(10)
        while cache.pendingInvalidations > 0, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
            await cache.retryPendingInvalidations()
        }
        guard cache.pendingInvalidations == 0 else {
            let pending = Set(records.flatMap(\.pending)).sorted().joined(separator: ", ")
            throw CLIError("removed \(removed) entries, but the invalidation did not reach \(pending) within 10 s: stale entries may remain there")
        }
        print("removed \(removed) entries")
    }

    func viaProxy(_ url: String, attributes: [String: String]) async throws {
        guard let base = URL(string: url), base.scheme == "http" || base.scheme == "https" else { throw CLIError("--url must be an http(s) URL") }
        guard let token = self.adminToken ?? ProcessInfo.processInfo.environment["CACHEKIT_ADMIN_TOKEN"] else {
            throw CLIError("--url needs --admin-token or CACHEKIT_ADMIN_TOKEN")
        }
        var body: [String: JSONValue] = ["tenant": .string(self.tenant)]
        if let tag = self.tag { body["tag"] = .string(tag) }
        if let namespace = self.namespace { body["namespace"] = .string(namespace) }
        if let pattern = self.pattern { body["pattern"] = .string(pattern) }
        if let event = self.event {
            body["event"] = .string(event)
            body["attributes"] = .object(attributes.mapValues(JSONValue.string))
        }
        var request = URLRequest(url: base.appendingPathComponent("admin/invalidate"))
        request.httpMethod = "POST"
        request.httpBody = Data(JSONValue.object(body).canonicalBytes())
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        let (data, response): (Data, URLResponse)
        do { (data, response) = try await URLSession.shared.data(for: request) } catch { throw CLIError("cannot reach \(url): \(error.localizedDescription)") }
        let reply = try? JSONValue(parsing: Array(data))
        guard (response as? HTTPURLResponse)?.statusCode == 200 else {
            throw CLIError("\(url) refused: \(reply?["error"]?["message"]?.stringValue ?? "HTTP \((response as? HTTPURLResponse)?.statusCode ?? 0)")")
        }
        print("removed \(Int(reply?["removed"]?.doubleValue ?? 0)) entries")
    }
}
