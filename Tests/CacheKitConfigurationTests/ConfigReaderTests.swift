import CacheKit
import CacheKitEmbeddings
import CacheKitMemory
import CacheKitOpenAI
import CacheKitPGVector
import CacheKitRedis
import Configuration
import Foundation
import Synchronization
import SystemPackage
import Testing

/// Collects what a `ConfigReader` reported reading.
final class CollectingReporter: AccessReporter {
    let events = Mutex<[AccessEvent]>([])
    func report(_ event: AccessEvent) { self.events.withLock { $0.append(event) } }
}

private func reader(_ environment: [String: String], reporter: CollectingReporter? = nil) -> ConfigReader {
    ConfigReader(provider: EnvironmentVariablesProvider(environmentVariables: environment), accessReporter: reporter)
}

private func expectInvalid(_ key: String, _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("expected an invalid-configuration error naming \(key)")
    } catch let error as CacheError {
        #expect(error.code == .invalidConfiguration)
        #expect(error.message.contains("'\(key)'"), "\(error.message)")
    } catch {
        Issue.record("unexpected error \(error)")
    }
}

@Suite("init(config:) through swift-configuration")
struct ConfigReaderTests {
    @Test func emptyConfigurationGivesTheDocumentedDefaults() throws {
        let empty = reader([:])
        let redis = try RedisClient.Configuration(config: empty.scoped(to: "redis"))
        let plain = RedisClient.Configuration()
        #expect(redis.endpoint == plain.endpoint && redis.poolSize == plain.poolSize && redis.commandTimeout == plain.commandTimeout)
        #expect(redis.password == nil && redis.keyPrefix == "cachekit")
        let cache = try CacheConfiguration(config: empty.scoped(to: "cache"))
        #expect(cache.policy.defaultTTL == .seconds(3600) && cache.failurePolicy == .treatAsMiss && cache.maximumInFlightCalls == 10_000)
        let memory = try MemoryCacheBackend.Configuration(config: empty)
        #expect(memory.maximumBytes == 64 << 20 && memory.eviction == .s3fifo && memory.sweepInterval == .seconds(30))
        let openAI = try OpenAIClient.Configuration(config: empty.scoped(to: "openai"))
        #expect(openAI.baseURL == "https://api.openai.com/v1" && openAI.apiKey == nil && openAI.maximumRetries == 2)
        #expect(try SemanticRerank(config: empty) == SemanticRerank())
        #expect(try SemanticGuards(config: empty) == .all)
    }

    @Test func semanticGuardsAreNamedOrAllOrNone() throws {
        #expect(try SemanticGuards(config: reader(["GUARDS": "none"])) == .none)
        #expect(try SemanticGuards(config: reader(["GUARDS": "negation, Opposites"])) == SemanticGuards([.negation, .opposites]))
        #expect(throws: CacheError.self) { try SemanticGuards(config: reader(["GUARDS": "negation,telepathy"])) }
    }

    @Test func environmentVariablesFollowTheScopedKeys() throws {
        let config = reader([
            "REDIS_URL": "redis://app:s3cr%40t@10.0.0.5:6380/2",
            "REDIS_POOL_SIZE": "4",
            "REDIS_COMMAND_TIMEOUT_SECONDS": "0.25",
            "REDIS_KEY_PREFIX": "shop",
            "CACHE_POLICY_DEFAULT_TTL_SECONDS": "600",
            "CACHE_POLICY_CACHES_NONDETERMINISTIC_REQUESTS": "true",
            "CACHE_FAILURE_POLICY": "propagate",
            "CACHE_MAXIMUM_IN_FLIGHT_CALLS": "32",
            "MEMORY_MAXIMUM_BYTES": "1048576",
            "MEMORY_EVICTION": "LRU",
            "OPENAI_BASE_URL": "http://127.0.0.1:8080/v1",
            "OPENAI_API_KEY": "sk-test-123",
            "OPENAI_REQUEST_TIMEOUT_SECONDS": "7.5",
        ])
        let redis = try RedisClient.Configuration(config: config.scoped(to: "redis"))
        #expect(redis.endpoint == .tcp(host: "10.0.0.5", port: 6380))
        #expect(redis.database == 2 && redis.username == "app" && redis.password == "s3cr@t")
        #expect(redis.poolSize == 4 && redis.commandTimeout == .milliseconds(250) && redis.keyPrefix == "shop")
        let cache = try CacheConfiguration(config: config.scoped(to: "cache"))
        #expect(cache.policy.defaultTTL == .seconds(600) && cache.policy.cachesNondeterministicRequests)
        #expect(cache.failurePolicy == .propagate && cache.maximumInFlightCalls == 32)
        let memory = try MemoryCacheBackend.Configuration(config: config.scoped(to: "memory"))
        #expect(memory.maximumBytes == 1 << 20 && memory.eviction == .lru)
        let openAI = try OpenAIClient.Configuration(config: config.scoped(to: "openai"))
        #expect(openAI.baseURL == "http://127.0.0.1:8080/v1" && openAI.apiKey == "sk-test-123" && openAI.requestTimeout == .milliseconds(7500))
    }

    @Test func aClusterURLAndItsSettings() throws {
        let redis = try RedisClient.Configuration(
            config: reader(["URL": "redis+cluster://10.0.0.1:7000,10.0.0.2:7001", "CLUSTER_READ_FROM_REPLICAS": "true", "CLUSTER_MAXIMUM_REDIRECTS": "3"]))
        #expect(redis.endpoint == .tcp(host: "10.0.0.1", port: 7000) && redis.cluster?.seeds == [.tcp(host: "10.0.0.2", port: 7001)])
        #expect(redis.cluster?.readFromReplicas == true && redis.cluster?.maximumRedirects == 3)
        expectInvalid("cluster.maximumRedirects") {
            _ = try RedisClient.Configuration(config: reader(["URL": "redis+cluster://h:1", "CLUSTER_MAXIMUM_REDIRECTS": "0"]))
        }
        #expect(try RedisClient.Configuration(config: reader(["URL": "redis://h:1"])).cluster == nil)
    }

    @Test func malformedOrOutOfRangeValuesAreErrorsNamingTheKey() {
        expectInvalid("poolSize") { _ = try RedisClient.Configuration(config: reader(["POOL_SIZE": "eight"])) }
        expectInvalid("poolSize") { _ = try RedisClient.Configuration(config: reader(["POOL_SIZE": "0"])) }
        expectInvalid("port") { _ = try RedisClient.Configuration(config: reader(["PORT": "70000"])) }
        expectInvalid("commandTimeoutSeconds") { _ = try RedisClient.Configuration(config: reader(["COMMAND_TIMEOUT_SECONDS": "-1"])) }
        expectInvalid("commandTimeoutSeconds") { _ = try RedisClient.Configuration(config: reader(["COMMAND_TIMEOUT_SECONDS": "nan"])) }
        expectInvalid("unixSocket") { _ = try RedisClient.Configuration(config: reader(["UNIX_SOCKET": "relative.sock"])) }
        expectInvalid("eviction") { _ = try MemoryCacheBackend.Configuration(config: reader(["EVICTION": "random"])) }
        expectInvalid("failurePolicy") { _ = try CacheConfiguration(config: reader(["FAILURE_POLICY": "ignore"])) }
        expectInvalid("defaultTtlSeconds") { _ = try CachePolicy(config: reader(["DEFAULT_TTL_SECONDS": "0"])) }
        expectInvalid("cachesNondeterministicRequests") { _ = try CachePolicy(config: reader(["CACHES_NONDETERMINISTIC_REQUESTS": "maybe"])) }
        expectInvalid("baseURL") { _ = try OpenAIClient.Configuration(config: reader(["BASE_URL": "api.openai.com"])) }
        expectInvalid("url") { _ = try PostgresClient.Configuration(config: reader([:])) }
        expectInvalid("efSearch") { _ = try PostgresClient.Configuration(config: reader(["URL": "postgresql://127.0.0.1/db", "EF_SEARCH": "5000"])) }
        expectInvalid("modelDirectory") { _ = try LocalEmbeddingProvider(config: reader([:])) }
    }

    @Test func secretsAreReadAsSecretsAndNeverInErrors() throws {
        let reporter = CollectingReporter()
        let config = reader(
            ["REDIS_URL": "redis://:hunter2-redis@127.0.0.1:6379", "REDIS_PASSWORD": "hunter2-override", "OPENAI_API_KEY": "sk-hunter2", "POSTGRES_URL": "postgresql://u:hunter2-pg@127.0.0.1/db"],
            reporter: reporter
        )
        let redis = try RedisClient.Configuration(config: config.scoped(to: "redis"))
        #expect(redis.password == "hunter2-override")
        _ = try OpenAIClient.Configuration(config: config.scoped(to: "openai"))
        _ = try PostgresClient.Configuration(config: config.scoped(to: "postgres"))
        let events = reporter.events.withLock { $0 }
        let secretKeys: Set<String> = ["redis.url", "redis.password", "openai.apiKey", "postgres.url"]
        var seen: Set<String> = []
        for event in events {
            let key = event.metadata.key.components.joined(separator: ".")
            guard secretKeys.contains(key), case .success(let value?) = event.result else { continue }
            seen.insert(key)
            #expect(value.isSecret, "\(key) was read without isSecret")
            #expect(!"\(value)".contains("hunter2"), "\(key) prints its value")
        }
        #expect(seen == secretKeys)
        // A malformed URL with a password: the error does not carry it.
        do {
            _ = try RedisClient.Configuration(config: reader(["URL": "redis://:hunter2@host:notaport"]))
            Issue.record("expected an error")
        } catch {
            #expect(!"\(error)".contains("hunter2"))
        }
        do {
            _ = try PostgresClient.Configuration(config: reader(["URL": "postgresql://u:hunter2@127.0.0.1/db?bogus_option=1"]))
            Issue.record("expected an error")
        } catch {
            #expect(!"\(error)".contains("hunter2"))
        }
    }

    @Test func jsonAndYAMLFilesWithEnvironmentOverrides() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("cachekit-config-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let json = folder.appendingPathComponent("cachekit.json").path
        try Data(#"""
            {"cache": {"policy": {"defaultTtlSeconds": 120}, "metricsPrefix": "shop_cache"},
             "redis": {"host": "redis.internal", "port": 6390, "poolSize": 16},
             "memory": {"maximumEntries": 5000, "sweepIntervalSeconds": 0.5},
             "semantic": {"rerank": {"ambiguityMargin": 0.05}, "index": {"maximumRecords": 2000}},
             "postgres": {"url": "host=db.internal dbname=cache", "tablePrefix": "shop", "efSearch": 100}}
            """#.utf8).write(to: URL(fileURLWithPath: json))
        let yaml = folder.appendingPathComponent("cachekit.yaml").path
        try Data("""
            redis:
              poolSize: 24
              commandTimeoutSeconds: 0.2
            memory:
              eviction: lru
            """.utf8).write(to: URL(fileURLWithPath: yaml))
        let config = ConfigReader(providers: [
            EnvironmentVariablesProvider(environmentVariables: ["REDIS_POOL_SIZE": "12"]),
            try await FileProvider<YAMLSnapshot>(filePath: FilePath(yaml)),
            try await FileProvider<JSONSnapshot>(filePath: FilePath(json)),
        ])
        let redis = try RedisClient.Configuration(config: config.scoped(to: "redis"))
        #expect(redis.endpoint == .tcp(host: "redis.internal", port: 6390))
        #expect(redis.poolSize == 12, "the environment comes first")
        #expect(redis.commandTimeout == .milliseconds(200), "YAML before JSON")
        let cache = try CacheConfiguration(config: config.scoped(to: "cache"))
        #expect(cache.policy.defaultTTL == .seconds(120) && cache.metricsPrefix == "shop_cache")
        let memory = try MemoryCacheBackend.Configuration(config: config.scoped(to: "memory"))
        #expect(memory.maximumEntries == 5000 && memory.sweepInterval == .milliseconds(500) && memory.eviction == .lru)
        #expect(try SemanticRerank(config: config.scoped(to: ["semantic", "rerank"])).ambiguityMargin == 0.05)
        let index = try MemorySemanticIndex.Configuration(config: config.scoped(to: ["semantic", "index"]), dimension: 384)
        #expect(index.dimension == 384 && index.maximumRecords == 2000)
        let postgres = try PostgresClient.Configuration(config: config.scoped(to: "postgres"))
        #expect(postgres.connectionString == "host=db.internal dbname=cache" && postgres.tablePrefix == "shop" && postgres.efSearch == 100)
        // A malformed file is an error at load, not an empty configuration.
        let broken = folder.appendingPathComponent("broken.json").path
        try Data(#"{"redis": {"poolSize": 4"#.utf8).write(to: URL(fileURLWithPath: broken))
        await #expect(throws: (any Error).self) { _ = try await FileProvider<JSONSnapshot>(filePath: FilePath(broken)) }
    }

    @Test(.enabled(if: ProcessInfo.processInfo.environment["CACHEKIT_MODEL_DIR"] != nil, "needs CACHEKIT_MODEL_DIR"))
    func localModelLoadsFromConfiguration() async throws {
        let directory = try #require(ProcessInfo.processInfo.environment["CACHEKIT_MODEL_DIR"])
        let config = reader(["EMBEDDING_MODEL_DIRECTORY": directory, "EMBEDDING_PRODUCTS": "blas"])
        let provider = try LocalEmbeddingProvider(config: config.scoped(to: "embedding"))
        #expect(provider.dimension == 384)
        let vectors = try await provider.embed(["where is my order?"])
        #expect(vectors.count == 1 && vectors[0].count == 384)
    }
}
