import ArgumentParser
import CacheKit
import CacheKitEmbeddings
import CacheKitMemory
import CacheKitPGVector
import CacheKitRedis
import Foundation
import Logging

/// The layers of a command's cache, from flags and the environment (`CACHEKIT_REDIS_URL`,
/// `CACHEKIT_POSTGRES_URL`, `CACHEKIT_MODEL_DIR`).
struct LayerOptions: ParsableArguments {
    @Option(help: "Exact layers in read order, comma-separated: memory, redis, postgres.")
    var layers = "memory"

    @Option(help: "The semantic layer: none, memory or pgvector (needs a model: --model or CACHEKIT_MODEL_DIR).")
    var semantic = "none"

    @Option(help: "The semantic threshold (re-ranked score).")
    var threshold: Float = 0.85

    @Option(help: "A sentence-transformers model folder for the semantic layer.")
    var model: String?

    @Option(help: "The Redis URL (default: CACHEKIT_REDIS_URL).")
    var redisURL: String?

    @Option(help: "The PostgreSQL connection string (default: CACHEKIT_POSTGRES_URL).")
    var postgresURL: String?

    func configuration(logLevel: Logger.Level = .warning) throws -> CacheConfiguration {
        let environment = ProcessInfo.processInfo.environment
        var configuration = CacheConfiguration()
        configuration.logger.logLevel = logLevel
        var redis: RedisConfiguration?
        func redisConfiguration() throws -> RedisConfiguration {
            if let redis { return redis }
            guard let url = self.redisURL ?? environment["CACHEKIT_REDIS_URL"] else {
                throw CLIError("the redis layer needs --redis-url or CACHEKIT_REDIS_URL")
            }
            do { redis = try RedisConfiguration(url: url) } catch { throw CLIError("bad Redis URL: \(error.message)") }
            return redis!
        }
        func postgres() throws -> PostgresConfiguration {
            guard let url = self.postgresURL ?? environment["CACHEKIT_POSTGRES_URL"] else {
                throw CLIError("the postgres and pgvector layers need --postgres-url or CACHEKIT_POSTGRES_URL")
            }
            do { return try PostgresConfiguration(connectionString: url) } catch { throw CLIError("bad PostgreSQL connection string: \(error.message)") }
        }
        var layers: [CacheLayer] = []
        for name in self.layers.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) {
            switch name {
            case "memory": layers.append(.memory())
            case "redis": layers.append(.redis(try redisConfiguration()))
            case "postgres": layers.append(.postgres(try postgres()))
            default: throw CLIError("unknown layer \"\(name)\" (memory, redis, postgres)")
            }
        }
        guard !layers.isEmpty || self.semantic != "none" else { throw CLIError("no layers: give --layers or --semantic") }
        configuration.layers = layers
        if let redis { configuration.invalidationBus = RedisInvalidationBus(configuration: redis) }
        switch self.semantic.lowercased() {
        case "none": break
        case "memory", "pgvector":
            guard let directory = self.model ?? environment["CACHEKIT_MODEL_DIR"] else {
                throw CLIError("the semantic layer needs a model: --model DIR or CACHEKIT_MODEL_DIR (./scripts/fetch-model prints one)")
            }
            let embedder: LocalEmbeddingProvider
            do { embedder = try LocalEmbeddingProvider(directory: directory) } catch { throw CLIError("cannot load the embedding model: \(error.message)") }
            configuration.semantic = self.semantic.lowercased() == "memory"
                ? .memorySemantic(embedder: embedder, threshold: self.threshold)
                : .pgvector(try postgres(), embedder: embedder, threshold: self.threshold)
        default:
            throw CLIError("unknown semantic layer \"\(self.semantic)\" (none, memory, pgvector)")
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
