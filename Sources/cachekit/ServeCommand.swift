import ArgumentParser
import CacheKit
import CacheKitOpenAI
import CacheKitServer
import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run an OpenAI-compatible caching proxy: point any client's base URL at it.",
        discussion: """
            POST /v1/chat/completions (JSON and stream: true) and POST /v1/embeddings are answered from the cache \
            or forwarded to --upstream (OPENAI_BASE_URL) with OPENAI_API_KEY. Responses carry x-cachekit-status \
            (HIT-L1, HIT-L2, SEMANTIC-HIT, MISS, REFRESH, BYPASS), x-cachekit-key, x-cachekit-similarity and age. \
            Requests may send Cache-Control (no-cache, no-store, max-age=N), x-cachekit-namespace, x-cachekit-ttl, \
            x-cachekit-force-refresh and x-cachekit-tags. Each caller's API key selects its own tenant (a hash; the \
            key itself is never stored or logged). Also: GET /healthz, GET /metrics (Prometheus), GET /stats, \
            GET /dashboard, POST /admin/invalidate (Authorization: Bearer --admin-token). SIGINT/SIGTERM drain \
            in-flight requests and stop.
            """
    )

    @OptionGroup var layers: LayerOptions

    @Option(help: "The upstream OpenAI-compatible base URL (default: OPENAI_BASE_URL or https://api.openai.com/v1).")
    var upstream: String?

    @Option(help: "The address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "The port to listen on.")
    var port = 8080

    @Option(help: "The admin bearer token (default: CACHEKIT_ADMIN_TOKEN; none disables /admin).")
    var adminToken: String?

    @Option(help: "The largest accepted request body, in bytes.")
    var maxBodyBytes = 4 << 20

    @Flag(help: "Put every caller in one tenant instead of one per API key.")
    var sharedTenant = false

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        guard let level = Logger.Level(rawValue: self.logLevel) else { throw CLIError("unknown log level \(self.logLevel)") }
        var logger = Logger(label: "cachekit.serve")
        logger.logLevel = level
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        var configuration = try self.layers.configuration(logLevel: level)
        configuration.logger = logger
        try await LayerOptions.preflight(configuration)
        let cache = MultiLayerCache(configuration: configuration)
        var upstreamConfiguration = OpenAIConfiguration.fromEnvironment(environment)
        if let upstream = self.upstream {
            guard let url = URL(string: upstream), url.scheme == "http" || url.scheme == "https", url.host != nil else {
                throw CLIError("--upstream must be an http(s) URL, not \"\(upstream)\"")
            }
            upstreamConfiguration.baseURL = upstream
        }
        let proxy = CacheProxy(
            cache: cache, upstream: OpenAIClient(configuration: upstreamConfiguration),
            configuration: ProxyConfiguration(
                maximumBodyBytes: self.maxBodyBytes, adminToken: self.adminToken ?? environment["CACHEKIT_ADMIN_TOKEN"],
                tenantFromAPIKey: !self.sharedTenant),
            registry: registry, logger: logger
        )
        let app = proxy.application(host: self.host, port: self.port)
        logger.notice("cachekit serve", metadata: [
            "listen": "\(self.host):\(self.port)", "upstream": "\(upstreamConfiguration.baseURL)",
            "layers": "\(configuration.layers.map(\.name).joined(separator: ","))", "semantic": "\(configuration.semantic?.index.name ?? "none")",
        ])
        let group = ServiceGroup(
            configuration: .init(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        )
        try await group.run()
    }
}
