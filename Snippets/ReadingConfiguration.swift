//! Reading every setting through swift-configuration: environment variables first, then a YAML and a JSON file.
import CacheKit
import CacheKitMemory
import CacheKitRedis
import Configuration

// snippet.hide
func configure() async throws -> MultiLayerCache {
// snippet.show
let config = ConfigReader(providers: [
    EnvironmentVariablesProvider(),  // REDIS_URL, CACHE_POLICY_DEFAULT_TTL_SECONDS, ...
    try await FileProvider<YAMLSnapshot>(filePath: "cachekit.yaml", allowMissing: true),
    try await FileProvider<JSONSnapshot>(filePath: "cachekit.json", allowMissing: true),
])
var configuration = try CacheConfiguration(config: config.scoped(to: "cache"))
configuration.layers = [.memory(try MemoryCacheBackend.Configuration(config: config.scoped(to: "memory")))]
if config.string(forKey: "redis.url", isSecret: true) != nil {
    configuration.layers.append(.redis(client: RedisClient(configuration: try .init(config: config.scoped(to: "redis")))))
}
// A malformed value ("eight" for REDIS_POOL_SIZE, a negative timeout) throws CacheError naming the key.
// snippet.hide
return try MultiLayerCache(configuration: configuration)
}
