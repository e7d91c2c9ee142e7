//! Memory, then Redis shared by every instance, then a pgvector semantic layer; the cache runs in a ServiceGroup.
import CacheKit
import CacheKitEmbeddings
import CacheKitMemory
import CacheKitPGVector
import CacheKitRedis
import Logging
import ServiceLifecycle

// snippet.hide
func makeCache(modelFolder: String) throws -> MultiLayerCache {
// snippet.show
let redis = try RedisConfiguration(url: "redis://127.0.0.1:6379/0")
let postgres = try PostgresConfiguration(connectionString: "postgresql://cachekit@127.0.0.1:5432/cachekit")
let embedder = try LocalEmbeddingProvider(directory: modelFolder)  // all-MiniLM-L6-v2, in process

var configuration = CacheConfiguration()
configuration.layers = [.memory(), .redis(redis)]
configuration.semantic = .pgvector(postgres, embedder: embedder, threshold: 0.85)
configuration.invalidationBus = RedisInvalidationBus(configuration: redis)
let cache = MultiLayerCache(configuration: configuration)
// snippet.hide
return cache
}
func serve(cache: MultiLayerCache, server: some Service) async throws {
// snippet.show

// The cache is a Service: its sweeps, pool health checks and bus subscriber run until graceful shutdown. Services
// stop in reverse order, so the server drains its requests before the cache closes its pools.
let group = ServiceGroup(
    configuration: .init(services: [cache, server], gracefulShutdownSignals: [.sigterm, .sigint], logger: Logger(label: "app"))
)
try await group.run()
// snippet.hide
}
