import ArgumentParser
import CacheKit
import CacheKitEmbeddings
import CacheKitMemory
import CacheKitPGVector
import CacheKitRedis
import Foundation
import Logging

/// The layers of a command's cache. Each setting comes from its flag, else the environment (`CACHEKIT_LAYERS`,
/// `CACHEKIT_SEMANTIC`, `CACHEKIT_THRESHOLD`, `CACHEKIT_MODEL_DIR`, `CACHEKIT_REDIS_URL`, `CACHEKIT_POSTGRES_URL`),
/// else the `--config` JSON file (`{"layers": "memory,redis", "semantic": "memory", "threshold": 0.85, "model": …,
/// "redis_url": …, "postgres_url": …}`), else the default.
struct LayerOptions: ParsableArguments {
    @Option(help: "A JSON configuration file (flags and CACHEKIT_* variables override it).")
    var config: String?

    @Option(help: "Exact layers in read order, comma-separated: memory, redis, postgres (default memory).")
    var layers: String?

    @Option(help: "The semantic layer: none, memory or pgvector (needs a model: --model or CACHEKIT_MODEL_DIR; default none).")
    var semantic: String?

    @Option(help: "The semantic threshold (re-ranked score; default 0.85).")
    var threshold: Float?

    @Option(help: "A sentence-transformers model folder for the semantic layer.")
    var model: String?

    @Option(help: "The Redis URL (default: CACHEKIT_REDIS_URL).")
    var redisURL: String?

    @Option(help: "The PostgreSQL connection string (default: CACHEKIT_POSTGRES_URL).")
    var postgresURL: String?

    /// The settings after flags, environment and file are merged.
    struct Resolved {
        var layers: String
        var semantic: String
        var threshold: Float
        var model: String?
        var redisURL: String?
        var postgresURL: String?
    }

    func resolved(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Resolved {
        var file: [String: JSONValue] = [:]
        if let path = self.config {
            let bytes = try readInput(path)
            do {
                guard let object = try JSONValue(parsing: bytes).objectValue else { throw CLIError("\(path): the configuration must be a JSON object") }
                file = object
            } catch let error as JSONParsingError {
                throw CLIError("\(path): \(error.description)")
            }
            let known: Set<String> = ["layers", "semantic", "threshold", "model", "redis_url", "postgres_url"]
            if let unknown = file.keys.sorted().first(where: { !known.contains($0) }) {
                throw CLIError("\(path): unknown setting \"\(unknown)\" (known: \(known.sorted().joined(separator: ", ")))")
            }
        }
        func string(_ flag: String?, _ variable: String, _ key: String) throws -> String? {
            if let flag { return flag }
            if let value = environment[variable], !value.isEmpty { return value }
            guard let value = file[key] else { return nil }
            guard let text = value.stringValue else { throw CLIError("\(self.config ?? "configuration"): \"\(key)\" must be a string") }
            return text
        }
        var threshold = self.threshold
        if threshold == nil, let value = environment["CACHEKIT_THRESHOLD"] {
            guard let number = Float(value) else { throw CLIError("CACHEKIT_THRESHOLD must be a number, not \"\(value)\"") }
            threshold = number
        }
        if threshold == nil, let value = file["threshold"] {
            guard let number = value.doubleValue else { throw CLIError("\(self.config ?? "configuration"): \"threshold\" must be a number") }
            threshold = Float(number)
        }
        return Resolved(
            layers: try string(self.layers, "CACHEKIT_LAYERS", "layers") ?? "memory",
            semantic: try string(self.semantic, "CACHEKIT_SEMANTIC", "semantic") ?? "none",
            threshold: threshold ?? 0.85,
            model: try string(self.model, "CACHEKIT_MODEL_DIR", "model"),
            redisURL: try string(self.redisURL, "CACHEKIT_REDIS_URL", "redis_url"),
            postgresURL: try string(self.postgresURL, "CACHEKIT_POSTGRES_URL", "postgres_url")
        )
    }

    func configuration(logLevel: Logger.Level = .warning) throws -> CacheConfiguration {
        let settings = try self.resolved()
        var configuration = CacheConfiguration()
        configuration.logger.logLevel = logLevel
        // One client per server, shared by the layers, the index and the bus that talk to it.
        var redis: RedisClient?
        func redisClient() throws -> RedisClient {
            if let redis { return redis }
            guard let url = settings.redisURL else {
                throw CLIError("the redis layer needs --redis-url or CACHEKIT_REDIS_URL")
            }
            do { redis = RedisClient(configuration: try .init(url: url)) } catch { throw CLIError("bad Redis URL: \(error.message)") }
            return redis!
        }
        var postgres: PostgresClient?
        func postgresClient() throws -> PostgresClient {
            if let postgres { return postgres }
            guard let url = settings.postgresURL else {
                throw CLIError("the postgres and pgvector layers need --postgres-url or CACHEKIT_POSTGRES_URL")
            }
            do {
                postgres = PostgresClient(configuration: try .init(connectionString: url))
            } catch {
                throw CLIError("bad PostgreSQL connection string: \(error.message)")
            }
            return postgres!
        }
        var layers: [CacheLayer] = []
        for name in settings.layers.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) {
            switch name {
            case "memory": layers.append(.memory())
            case "redis": layers.append(.redis(client: try redisClient()))
            case "postgres": layers.append(.postgres(client: try postgresClient()))
            default: throw CLIError("unknown layer \"\(name)\" (memory, redis, postgres)")
            }
        }
        guard !layers.isEmpty || settings.semantic != "none" else { throw CLIError("no layers: give --layers or --semantic") }
        configuration.layers = layers
        if let redis {
            // CACHEKIT_BUS_SECRET (hex, at least 32 digits): signs and checks every invalidation message.
            var options = RedisInvalidationBus.Options()
            if let hex = ProcessInfo.processInfo.environment["CACHEKIT_BUS_SECRET"] {
                guard let secret = Hex.decode(Array(hex.utf8)), secret.count >= 16 else { throw CLIError("CACHEKIT_BUS_SECRET must be at least 32 hex digits") }
                options.messageSecret = secret
            }
            configuration.invalidationBus = RedisInvalidationBus(client: redis, options: options)
        }
        switch settings.semantic.lowercased() {
        case "none": break
        case "memory", "pgvector":
            guard let directory = settings.model else {
                throw CLIError("the semantic layer needs a model: --model DIR or CACHEKIT_MODEL_DIR (./scripts/fetch-model prints one)")
            }
            let embedder: LocalEmbeddingProvider
            do { embedder = try LocalEmbeddingProvider(directory: directory) } catch { throw CLIError("cannot load the embedding model: \(error.message)") }
            configuration.semantic = settings.semantic.lowercased() == "memory"
                ? .memory(embedder: embedder, threshold: settings.threshold)
                : .pgvector(client: try postgresClient(), embedder: embedder, threshold: settings.threshold)
        default:
            throw CLIError("unknown semantic layer \"\(settings.semantic)\" (none, memory, pgvector)")
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
