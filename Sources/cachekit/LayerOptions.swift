import ArgumentParser
import CacheKit
import Configuration
import CacheKitEmbeddings
import CacheKitMemory
import CacheKitPGVector
import CacheKitRedis
import Foundation
import Logging
import SystemPackage

/// The layers of a command's cache, read through swift-configuration with the libraries' own keys and strict errors.
///
/// Each key comes from its flag, else the environment (`CACHEKIT_` and the key in upper snake case: `redis.url` is
/// `CACHEKIT_REDIS_URL`, `cache.policy.defaultTtlSeconds` is `CACHEKIT_CACHE_POLICY_DEFAULT_TTL_SECONDS`), else the
/// `--config` JSON file (the same keys, nested: `{"redis": {"url": …}}`), else the default. The keys:
/// - `layers` (`--layers`): exact layers in read order, comma-separated: memory, redis, postgres (default memory);
/// - `semantic.index` (`--semantic`): none, memory or pgvector (default none); `semantic.threshold`
///   (`--threshold`, default 0.85); `semantic.rerank.*` as `SemanticRerank(config:)` reads them; `semantic.guards`
///   (`all`, `none` or a list, as `SemanticGuards(config:)` reads it);
/// - `embedding.modelDirectory` (`--model`), `embedding.threads`, `embedding.products`: `LocalEmbeddingProvider(config:)`;
/// - `redis.*` (`--redis-url` sets `redis.url`): `RedisClient.Configuration(config:)`;
/// - `postgres.*` (`--postgres-url` sets `postgres.url`): `PostgresClient.Configuration(config:)`;
/// - `cache.*`: `CacheConfiguration(config:)` (policy, failure policy, in-flight limits);
/// - `bus.secret` (hex, at least 32 digits): signs and checks every invalidation message.
///
/// `CACHEKIT_SEMANTIC`, `CACHEKIT_THRESHOLD` and `CACHEKIT_MODEL_DIR`, the names of earlier releases, still set
/// `semantic.index`, `semantic.threshold` and `embedding.modelDirectory` (after the names above).
struct LayerOptions: ParsableArguments {
    @Option(help: "A JSON configuration file with the keys of the libraries (flags and CACHEKIT_* variables override it).")
    var config: String?

    @Option(help: "Exact layers in read order, comma-separated: memory, redis, postgres (default memory). Key: layers.")
    var layers: String?

    @Option(help: "The semantic layer: none, memory or pgvector (needs a model: --model or CACHEKIT_MODEL_DIR; default none). Key: semantic.index.")
    var semantic: String?

    @Option(help: "The semantic threshold (re-ranked score; default 0.85). Key: semantic.threshold.")
    var threshold: Float?

    @Option(help: "The semantic guards: all (default), none, or a comma-separated list of numbers, negation, opposites, direction, entities, language. Key: semantic.guards.")
    var guards: String?

    @Option(help: "A sentence-transformers model folder for the semantic layer. Key: embedding.modelDirectory.")
    var model: String?

    @Option(help: "The Redis URL. Key: redis.url (CACHEKIT_REDIS_URL).")
    var redisURL: String?

    @Option(help: "The PostgreSQL connection string. Key: postgres.url (CACHEKIT_POSTGRES_URL).")
    var postgresURL: String?

    /// The keys a configuration file may hold at its top level, and under `semantic`, `embedding` and `proxy`.
    static let fileKeys: [String: Set<String>?] = [
        "layers": nil, "semantic": ["index", "threshold", "rerank", "guards"], "embedding": ["modelDirectory", "threads", "products"],
        "redis": nil, "postgres": nil, "cache": nil, "bus": nil, "openai": nil, "proxy": ServeCommand.proxyKeys,
    ]

    /// Environment variables of earlier releases (and the OpenAI SDKs' own), read after the canonical `CACHEKIT_` names.
    static let earlierNames: [(variable: String, key: AbsoluteConfigKey, secret: Bool)] = [
        ("CACHEKIT_SEMANTIC", ["semantic", "index"], false), ("CACHEKIT_MODEL_DIR", ["embedding", "modelDirectory"], false),
        ("CACHEKIT_ADMIN_TOKEN", ["proxy", "adminToken"], true), ("CACHEKIT_TENANT_SECRET", ["proxy", "tenantSecret"], true),
        ("OPENAI_BASE_URL", ["openai", "baseURL"], false), ("OPENAI_API_KEY", ["openai", "apiKey"], true),
    ]

    /// Flags first (these and a command's own, `commandFlags`), then the environment (canonical names, then the
    /// earlier names), then the file.
    func reader(
        commandFlags: [AbsoluteConfigKey: ConfigValue] = [:], environment: [String: String] = ProcessInfo.processInfo.environment
    ) async throws -> ConfigReader {
        var flags = commandFlags
        func set(_ key: String, _ value: ConfigContent?, secret: Bool = false) {
            if let value { flags[AbsoluteConfigKey(key.split(separator: ".").map(String.init))] = ConfigValue(value, isSecret: secret) }
        }
        set("layers", self.layers.map { .string($0) })
        set("semantic.index", self.semantic.map { .string($0) })
        set("semantic.threshold", self.threshold.map { .double(Double($0)) })
        set("semantic.guards", self.guards.map { .string($0) })
        set("embedding.modelDirectory", self.model.map { .string($0) })
        set("redis.url", self.redisURL.map { .string($0) }, secret: true)
        set("postgres.url", self.postgresURL.map { .string($0) }, secret: true)
        var earlier: [AbsoluteConfigKey: ConfigValue] = [:]
        for (variable, key, secret) in Self.earlierNames {
            if let value = environment[variable], !value.isEmpty { earlier[key] = ConfigValue(.string(value), isSecret: secret) }
        }
        if let value = environment["CACHEKIT_THRESHOLD"], !value.isEmpty {
            guard let number = Double(value) else { throw CLIError("CACHEKIT_THRESHOLD must be a number, not \"\(value)\"") }
            earlier[["semantic", "threshold"]] = ConfigValue(.double(number), isSecret: false)
        }
        var providers: [any ConfigProvider] = [
            InMemoryProvider(name: "flags", values: flags),
            EnvironmentVariablesProvider(
                environmentVariables: environment,
                secretsSpecifier: .dynamic { name, _ in name.hasSuffix("_URL") || name.hasSuffix("PASSWORD") || name.hasSuffix("SECRET") }
            ).prefixKeys(with: "cachekit"),
            InMemoryProvider(name: "earlier environment names", values: earlier),
        ]
        if let path = self.config {
            try Self.checkFileKeys(path)
            do {
                providers.append(try await FileProvider<JSONSnapshot>(filePath: FilePath(path)))
            } catch {
                throw CLIError("\(path): \(error)")
            }
        }
        return ConfigReader(providers: providers)
    }

    /// Refuses a file that is not a JSON object or holds a key no library reads (a misspelt key would otherwise be
    /// silently ignored).
    static func checkFileKeys(_ path: String) throws {
        let bytes = try readInput(path)
        let object: [String: JSONValue]
        do {
            guard let parsed = try JSONValue(parsing: bytes).objectValue else { throw CLIError("\(path): the configuration must be a JSON object") }
            object = parsed
        } catch let error as JSONParsingError {
            throw CLIError("\(path): \(error.description)")
        }
        for key in object.keys.sorted() {
            guard let inner = Self.fileKeys[key] else {
                throw CLIError("\(path): unknown setting \"\(key)\" (known: \(Self.fileKeys.keys.sorted().joined(separator: ", ")))")
            }
            guard let allowed = inner, let members = object[key]?.objectValue else { continue }
            if let unknown = members.keys.sorted().first(where: { !allowed.contains($0) }) {
                throw CLIError("\(path): unknown setting \"\(key).\(unknown)\" (known: \(allowed.sorted().joined(separator: ", ")))")
            }
        }
    }

    func configuration(logLevel: Logger.Level = .warning) async throws -> CacheConfiguration {
        try await self.configuration(from: try await self.reader(), logLevel: logLevel)
    }

    /// Runs `read`, turning a `CacheError` (a key that is present but malformed) into the tool's error.
    static func read<T>(_ what: () throws(CacheError) -> T) throws -> T {
        do { return try what() } catch { throw CLIError("configuration: \(error.message)") }
    }

    func configuration(from config: ConfigReader, logLevel: Logger.Level) async throws -> CacheConfiguration {
        var configuration = try Self.read { () throws(CacheError) in try CacheConfiguration(config: config.scoped(to: "cache")) }
        configuration.logger.logLevel = logLevel
        // One client per server, shared by the layers, the index and the bus that talk to it.
        var redis: RedisClient?
        func redisClient() throws -> RedisClient {
            if let redis { return redis }
            guard config.cacheKitString("redis.url", secret: true) != nil || config.cacheKitString("redis.host") != nil
                || config.cacheKitString("redis.unixSocket") != nil
            else {
                throw CLIError("the redis layer needs --redis-url or CACHEKIT_REDIS_URL")
            }
            let client = RedisClient(configuration: try Self.read { () throws(CacheError) in try .init(config: config.scoped(to: "redis")) })
            redis = client
            return client
        }
        var postgres: PostgresClient?
        func postgresClient() throws -> PostgresClient {
            if let postgres { return postgres }
            guard config.cacheKitString("postgres.url", secret: true) != nil else {
                throw CLIError("the postgres and pgvector layers need --postgres-url or CACHEKIT_POSTGRES_URL")
            }
            let client = PostgresClient(configuration: try Self.read { () throws(CacheError) in try .init(config: config.scoped(to: "postgres")) })
            postgres = client
            return client
        }
        var layers: [CacheLayer] = []
        let names = config.cacheKitString("layers") ?? "memory"
        for name in names.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) {
            switch name {
            case "memory": layers.append(.memory())
            case "redis": layers.append(.redis(client: try redisClient()))
            case "postgres": layers.append(.postgres(client: try postgresClient()))
            default: throw CLIError("unknown layer \"\(name)\" (memory, redis, postgres)")
            }
        }
        let semantic = (config.cacheKitString("semantic.index") ?? "none").lowercased()
        guard !layers.isEmpty || semantic != "none" else { throw CLIError("no layers: give --layers or --semantic") }
        configuration.layers = layers
        if let redis {
            var options = RedisInvalidationBus.Options()
            if let hex = config.cacheKitString("bus.secret", secret: true) {
                guard let secret = Hex.decode(Array(hex.utf8)), secret.count >= 16 else {
                    throw CLIError("bus.secret (CACHEKIT_BUS_SECRET) must be at least 32 hex digits")
                }
                options.messageSecret = secret
            }
            configuration.invalidationBus = RedisInvalidationBus(client: redis, options: options)
        }
        // Read (and checked) whether or not a semantic layer is configured: a malformed key is an error, never ignored.
        let threshold = try Self.read { () throws(CacheError) in try config.cacheKitDouble("semantic.threshold", default: 0.85, in: -1...1) }
        switch semantic {
        case "none": break
        case "memory", "pgvector":
            guard config.cacheKitString("embedding.modelDirectory") != nil else {
                throw CLIError("the semantic layer needs a model: --model DIR or CACHEKIT_MODEL_DIR (./scripts/fetch-model prints one)")
            }
            let embedder: LocalEmbeddingProvider
            do {
                embedder = try LocalEmbeddingProvider(config: config.scoped(to: "embedding"))
            } catch {
                throw CLIError("cannot load the embedding model: \(error.message)")
            }
            var layer = semantic == "memory"
                ? SemanticLayer.memory(embedder: embedder, threshold: Float(threshold))
                : SemanticLayer.pgvector(client: try postgresClient(), embedder: embedder, threshold: Float(threshold))
            layer.rerank = try Self.read { () throws(CacheError) in try SemanticRerank(config: config.scoped(to: "semantic.rerank")) }
            layer.guards = try Self.read { () throws(CacheError) in try SemanticGuards(config: config.scoped(to: "semantic")) }
            configuration.semantic = layer
        default:
            throw CLIError("unknown semantic layer \"\(semantic)\" (none, memory, pgvector)")
        }
        do {
            try configuration.validate()
        } catch {
            throw CLIError("configuration: \(error.message)")
        }
        return configuration
    }

    /// Reads one key from every layer, so an unreachable server is one clear error before any work starts.
    static func preflight(_ configuration: CacheConfiguration) async throws {
        let probe = CacheKey(digest: Digest256(hashing: Array("cachekit preflight".utf8)), scopeID: CacheScope.default.id)
        for layer in configuration.layers {
            do { _ = try await layer.backend.get(probe) } catch let error as CacheError {
                throw CLIError("cannot use the \(layer.name) layer: \(error.message)")
            }
        }
        if let semantic = configuration.semantic {
            let partition = SemanticPartition(digest: probe.digest, scopeID: probe.scopeID)
            let vector = [Float](repeating: 1 / Float(semantic.embedder.dimension).squareRoot(), count: semantic.embedder.dimension)
            do {
                _ = try await semantic.index.search(SemanticQuery(vector: vector, partition: partition, minimumSimilarity: 2, limit: 1))
            } catch let error as CacheError {
                throw CLIError("cannot use the semantic index: \(error.message)")
            }
        }
    }
}
