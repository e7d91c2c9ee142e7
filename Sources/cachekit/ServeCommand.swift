import ArgumentParser
import CacheKit
import CacheKitOpenAI
import CacheKitServer
import Configuration
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

    @Option(help: "The upstream OpenAI-compatible base URL (default https://api.openai.com/v1). Key: openai.baseURL (OPENAI_BASE_URL).")
    var upstream: String?

    @Option(help: "The address to listen on (default 127.0.0.1). Key: proxy.host.")
    var host: String?

    @Option(help: "The port to listen on (default 8080). Key: proxy.port.")
    var port: Int?

    @Option(help: "The admin bearer token (none disables /admin). Key: proxy.adminToken (CACHEKIT_ADMIN_TOKEN).")
    var adminToken: String?

    @Option(help: "The largest accepted request body, in bytes (default 4 MiB). Key: proxy.maximumBodyBytes.")
    var maxBodyBytes: Int?

    @Option(help: "How callers are authenticated: passthrough (their key goes upstream; default) or keys (--keys-file). Key: proxy.auth.")
    var auth: String?

    @Option(help: "passthrough: the file holding the tenant secret (hex), created if missing (default: CACHEKIT_STATE_DIR or ~/.local/state/cachekit, tenant-secret). Key: proxy.tenantSecretFile; the secret itself: proxy.tenantSecret (CACHEKIT_TENANT_SECRET).")
    var tenantSecretFile: String?

    @Option(help: "keys: the keys file (JSON; see `cachekit keys create --help`). Key: proxy.keysFile.")
    var keysFile: String?

    @Flag(help: "Serve requests without an API key, in the tenant \"anonymous\", with OPENAI_API_KEY upstream. Key: proxy.allowAnonymous.")
    var allowAnonymous = false

    @Option(help: "The file that keeps invalidations a layer missed across restarts (default: invalidation-outbox.json beside the tenant secret). Key: proxy.outboxFile.")
    var outboxFile: String?

    @Option(help: "Idle connection timeout in seconds, also the time allowed to send a request head (default 60). Key: proxy.idleTimeoutSeconds.")
    var idleTimeout: Int?

    @Option(help: "Time allowed to send a request body, in seconds (default 30). Key: proxy.bodyTimeoutSeconds.")
    var bodyTimeout: Int?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (default info). Key: proxy.logLevel.")
    var logLevel: String?

    /// The keys of the proxy's own settings (under `proxy`), read like the layers' through swift-configuration.
    static let proxyKeys: Set<String> = [
        "host", "port", "adminToken", "maximumBodyBytes", "auth", "tenantSecretFile", "tenantSecret", "keysFile", "allowAnonymous",
        "outboxFile", "idleTimeoutSeconds", "bodyTimeoutSeconds", "logLevel",
    ]

    /// The proxy's settings after flags, environment and file.
    struct Settings {
        var host: String
        var port: Int
        var adminToken: String?
        var maximumBodyBytes: Int
        var auth: String
        var tenantSecretFile: String?
        var tenantSecret: String?
        var keysFile: String?
        var allowAnonymous: Bool
        var outboxFile: String?
        var idleTimeout: Int
        var bodyTimeout: Int
        var logLevel: Logger.Level
        var upstream: OpenAIClient.Configuration
    }

    /// This command's flags as configuration keys, for `LayerOptions.reader(commandFlags:)`.
    var flagValues: [AbsoluteConfigKey: ConfigValue] {
        var values: [AbsoluteConfigKey: ConfigValue] = [:]
        func set(_ key: String, _ value: ConfigContent?, secret: Bool = false) {
            if let value { values[AbsoluteConfigKey(key.split(separator: ".").map(String.init))] = ConfigValue(value, isSecret: secret) }
        }
        set("openai.baseURL", self.upstream.map { .string($0) })
        set("proxy.host", self.host.map { .string($0) })
        set("proxy.port", self.port.map { .int($0) })
        set("proxy.adminToken", self.adminToken.map { .string($0) }, secret: true)
        set("proxy.maximumBodyBytes", self.maxBodyBytes.map { .int($0) })
        set("proxy.auth", self.auth.map { .string($0) })
        set("proxy.tenantSecretFile", self.tenantSecretFile.map { .string($0) })
        set("proxy.keysFile", self.keysFile.map { .string($0) })
        set("proxy.allowAnonymous", self.allowAnonymous ? .bool(true) : nil)
        set("proxy.outboxFile", self.outboxFile.map { .string($0) })
        set("proxy.idleTimeoutSeconds", self.idleTimeout.map { .int($0) })
        set("proxy.bodyTimeoutSeconds", self.bodyTimeout.map { .int($0) })
        set("proxy.logLevel", self.logLevel.map { .string($0) })
        return values
    }

    static func settings(_ config: ConfigReader) throws -> Settings {
        let proxy = config.scoped(to: "proxy")
        let level = proxy.cacheKitString("logLevel") ?? "info"
        guard let logLevel = Logger.Level(rawValue: level) else { throw CLIError("configuration: proxy.logLevel: unknown log level \(level)") }
        let upstream = try LayerOptions.read { () throws(CacheError) in try OpenAIClient.Configuration(config: config.scoped(to: "openai")) }
        return Settings(
            host: proxy.cacheKitString("host") ?? "127.0.0.1",
            port: try LayerOptions.read { () throws(CacheError) in try proxy.cacheKitInt("port", default: 8080, in: 1...65535) },
            adminToken: proxy.cacheKitString("adminToken", secret: true),
            maximumBodyBytes: try LayerOptions.read { () throws(CacheError) in try proxy.cacheKitInt("maximumBodyBytes", default: 4 << 20, in: 1...(1 << 30)) },
            auth: proxy.cacheKitString("auth") ?? "passthrough",
            tenantSecretFile: proxy.cacheKitString("tenantSecretFile"),
            tenantSecret: proxy.cacheKitString("tenantSecret", secret: true),
            keysFile: proxy.cacheKitString("keysFile"),
            allowAnonymous: try LayerOptions.read { () throws(CacheError) in try proxy.cacheKitBool("allowAnonymous", default: false) },
            outboxFile: proxy.cacheKitString("outboxFile"),
            idleTimeout: try LayerOptions.read { () throws(CacheError) in try proxy.cacheKitInt("idleTimeoutSeconds", default: 60, in: 1...86_400) },
            bodyTimeout: try LayerOptions.read { () throws(CacheError) in try proxy.cacheKitInt("bodyTimeoutSeconds", default: 30, in: 1...86_400) },
            logLevel: logLevel,
            upstream: upstream
        )
    }

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let config = try await self.layers.reader(commandFlags: self.flagValues)
        let settings = try Self.settings(config)
        var logger = Logger(label: "cachekit.serve")
        logger.logLevel = settings.logLevel
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        var configuration = try await self.layers.configuration(from: config, logLevel: settings.logLevel)
        configuration.logger = logger
        // Invalidations a layer missed survive a restart of the proxy (the outbox file beside the tenant secret).
        let stateDirectory = environment["CACHEKIT_STATE_DIR"] ?? ((environment["HOME"] ?? ".") + "/.local/state/cachekit")
        try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
        configuration.invalidationOutboxPath = settings.outboxFile ?? stateDirectory + "/invalidation-outbox.json"
        try await LayerOptions.preflight(configuration)
        let cache = try MultiLayerCache(configuration: configuration)
        let authentication = try Self.authentication(settings, environment)
        let proxy = CacheProxy(
            cache: cache, upstream: OpenAIClient(configuration: settings.upstream),
            configuration: ProxyConfiguration(
                authentication: authentication, maximumBodyBytes: settings.maximumBodyBytes, adminToken: settings.adminToken,
                bodyReadTimeout: .seconds(settings.bodyTimeout), idleTimeout: .seconds(settings.idleTimeout)),
            registry: registry, logger: logger
        )
        let app = proxy.application(host: settings.host, port: settings.port)
        logger.notice("cachekit serve", metadata: [
            "listen": "\(settings.host):\(settings.port)", "upstream": "\(Self.redactingUserInfo(settings.upstream.baseURL))",
            "auth": "\(settings.auth)\(settings.allowAnonymous ? " + anonymous" : "")",
            "layers": "\(configuration.layers.map(\.name).joined(separator: ","))", "semantic": "\(configuration.semantic?.index.name ?? "none")",
        ])
        let group = ServiceGroup(
            configuration: .init(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        )
        try await group.run()
    }

    static func authentication(_ settings: Settings, _ environment: [String: String]) throws -> ProxyAuthentication {
        switch settings.auth {
        case "passthrough":
            guard settings.keysFile == nil else { throw CLIError("--keys-file (proxy.keysFile) goes with --auth keys") }
            let secret = try Self.tenantSecret(file: settings.tenantSecretFile, hex: settings.tenantSecret, environment)
            return try ProxyAuthentication.passthrough(tenantSecret: secret, allowsAnonymous: settings.allowAnonymous)
        case "keys":
            guard let file = settings.keysFile else { throw CLIError("--auth keys needs --keys-file (proxy.keysFile)") }
            return ProxyAuthentication.keys(try VirtualKeys(contentsOf: file), allowsAnonymous: settings.allowAnonymous)
        default:
            throw CLIError("--auth must be passthrough or keys (proxy.auth), not \"\(settings.auth)\"")
        }
    }

    /// The passthrough tenant secret: `proxy.tenantSecret` (hex; CACHEKIT_PROXY_TENANT_SECRET or
    /// CACHEKIT_TENANT_SECRET), else the file (hex), created with 32 random bytes and mode 0600 when it does not
    /// exist. Errors never print the secret.
    static func tenantSecret(file: String?, hex: String?, _ environment: [String: String]) throws -> [UInt8] {
        if let hex {
            guard let bytes = Hex.decode(Array(hex.trimmingCharacters(in: .whitespacesAndNewlines).utf8)), bytes.count >= 16 else {
                throw CLIError("proxy.tenantSecret (CACHEKIT_TENANT_SECRET) must be at least 32 hex digits")
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
