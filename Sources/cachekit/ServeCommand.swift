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
            or forwarded to --upstream (OPENAI_BASE_URL). Responses carry x-cachekit-status (HIT-L1, HIT-L2, \
            SEMANTIC-HIT, MISS, REFRESH, BYPASS), x-cachekit-key, x-cachekit-similarity and age. Requests may send \
            Cache-Control (no-cache, no-store, max-age=N), x-cachekit-namespace, x-cachekit-ttl, \
            x-cachekit-force-refresh and x-cachekit-tags.

            Callers authenticate with Authorization: Bearer <key> or api-key: <key>. --auth passthrough (the \
            default): the caller's own key is sent upstream on a miss and the caller's tenant is an HMAC of the key \
            under a server secret (--tenant-secret-file, created with 32 random bytes if missing; instances sharing \
            Redis or PostgreSQL need the same file, or CACHEKIT_TENANT_SECRET as 64 hex digits); OPENAI_API_KEY is \
            not used for callers. --auth keys --keys-file F: only the keys in F (stored as SHA-256; `cachekit keys \
            create` adds one) are served, each in its tenant with optional namespace, rate and spend limits, with \
            OPENAI_API_KEY upstream; an unknown key is 401. --allow-anonymous serves requests without a key in the \
            tenant "anonymous" with OPENAI_API_KEY (off by default: the proxy is not an open relay).

            Also: GET /healthz, GET /metrics (Prometheus), GET /stats, GET /dashboard, POST /admin/invalidate \
            (Authorization: Bearer --admin-token; an empty or missing token disables the route). SIGINT/SIGTERM \
            drain in-flight requests and stop.
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

    @Option(help: "How callers are authenticated: passthrough (their key goes upstream; default) or keys (--keys-file).")
    var auth = "passthrough"

    @Option(help: "passthrough: the file holding the tenant secret (hex), created if missing (default: CACHEKIT_STATE_DIR or ~/.local/state/cachekit, tenant-secret).")
    var tenantSecretFile: String?

    @Option(help: "keys: the keys file (JSON; see `cachekit keys create --help`).")
    var keysFile: String?

    @Flag(help: "Serve requests without an API key, in the tenant \"anonymous\", with OPENAI_API_KEY upstream.")
    var allowAnonymous = false

    @Option(help: "The file that keeps invalidations a layer missed across restarts (default: invalidation-outbox.json beside the tenant secret).")
    var outboxFile: String?

    @Option(help: "Idle connection timeout in seconds (also the time allowed to send a request head).")
    var idleTimeout = 60

    @Option(help: "Time allowed to send a request body, in seconds.")
    var bodyTimeout = 30

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        guard let level = Logger.Level(rawValue: self.logLevel) else { throw CLIError("unknown log level \(self.logLevel)") }
        var logger = Logger(label: "cachekit.serve")
        logger.logLevel = level
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        var configuration = try await self.layers.configuration(logLevel: level)
        configuration.logger = logger
        // Invalidations a layer missed survive a restart of the proxy (the outbox file beside the tenant secret).
        let stateDirectory = environment["CACHEKIT_STATE_DIR"] ?? ((environment["HOME"] ?? ".") + "/.local/state/cachekit")
        try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
        configuration.invalidationOutboxPath = self.outboxFile ?? stateDirectory + "/invalidation-outbox.json"
        try await LayerOptions.preflight(configuration)
        let cache = try MultiLayerCache(configuration: configuration)
        var upstreamConfiguration = OpenAIClient.Configuration.fromEnvironment(environment)
        if let upstream = self.upstream {
            guard let url = URL(string: upstream), url.scheme == "http" || url.scheme == "https", url.host != nil else {
                throw CLIError("--upstream must be an http(s) URL, not \"\(upstream)\"")
            }
            upstreamConfiguration.baseURL = upstream
        }
        guard self.idleTimeout > 0, self.bodyTimeout > 0 else { throw CLIError("--idle-timeout and --body-timeout must be positive") }
        let authentication = try self.authentication(environment)
        let proxy = CacheProxy(
            cache: cache, upstream: OpenAIClient(configuration: upstreamConfiguration),
            configuration: ProxyConfiguration(
                authentication: authentication, maximumBodyBytes: self.maxBodyBytes,
                adminToken: self.adminToken ?? environment["CACHEKIT_ADMIN_TOKEN"],
                bodyReadTimeout: .seconds(self.bodyTimeout), idleTimeout: .seconds(self.idleTimeout)),
            registry: registry, logger: logger
        )
        let app = proxy.application(host: self.host, port: self.port)
        logger.notice("cachekit serve", metadata: [
            "listen": "\(self.host):\(self.port)", "upstream": "\(Self.redactingUserInfo(upstreamConfiguration.baseURL))",
            "auth": "\(self.auth)\(self.allowAnonymous ? " + anonymous" : "")",
            "layers": "\(configuration.layers.map(\.name).joined(separator: ","))", "semantic": "\(configuration.semantic?.index.name ?? "none")",
        ])
        let group = ServiceGroup(
            configuration: .init(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        )
        try await group.run()
    }

    func authentication(_ environment: [String: String]) throws -> ProxyAuthentication {
        switch self.auth {
        case "passthrough":
            guard self.keysFile == nil else { throw CLIError("--keys-file goes with --auth keys") }
            return try ProxyAuthentication.passthrough(tenantSecret: try Self.tenantSecret(file: self.tenantSecretFile, environment), allowsAnonymous: self.allowAnonymous)
        case "keys":
            guard let file = self.keysFile else { throw CLIError("--auth keys needs --keys-file") }
            return ProxyAuthentication.keys(try VirtualKeys(contentsOf: file), allowsAnonymous: self.allowAnonymous)
        default:
            throw CLIError("--auth must be passthrough or keys, not \"\(self.auth)\"")
        }
    }

    /// The passthrough tenant secret: CACHEKIT_TENANT_SECRET (hex), else the file (hex), created with 32 random
    /// bytes and mode 0600 when it does not exist. Errors never print the secret.
    static func tenantSecret(file: String?, _ environment: [String: String]) throws -> [UInt8] {
        if let hex = environment["CACHEKIT_TENANT_SECRET"] {
            guard let bytes = Hex.decode(Array(hex.trimmingCharacters(in: .whitespacesAndNewlines).utf8)), bytes.count >= 16 else {
                throw CLIError("CACHEKIT_TENANT_SECRET must be at least 32 hex digits")
            }
            return bytes
        }
        let directory = environment["CACHEKIT_STATE_DIR"] ?? ((environment["HOME"] ?? ".") + "/.local/state/cachekit")
        let path = file ?? directory + "/tenant-secret"
        if let data = FileManager.default.contents(atPath: path) {
            guard let bytes = Hex.decode(Array(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines).utf8)), bytes.count >= 16 else {
                throw CLIError("\(path) must hold at least 32 hex digits (the tenant secret)")
            }
            return bytes
        }
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: path, contents: Data((Hex.encode(bytes) + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
            throw CLIError("cannot write the tenant secret to \(path)")
        }
        return bytes
    }

    /// `url` with any `user:password@` removed, for logs.
    static func redactingUserInfo(_ url: String) -> String {
        guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].firstIndex(of: "@") else { return url }
        let slash = url[scheme.upperBound...].firstIndex(of: "/") ?? url.endIndex
        guard at < slash else { return url }
        return String(url[..<scheme.upperBound]) + "[redacted]@" + String(url[url.index(after: at)...])
    }
}
