//! Memory, then Redis shared by every instance, then a pgvector semantic layer, over one client per server; the cache
//! runs in a ServiceGroup.
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
// One client per server, shared by everything that talks to it. Creating one opens nothing.
let redis = RedisClient(configuration: try .init(url: "redis://127.0.0.1:6379/0"))
let postgres = PostgresClient(configuration: try .init(connectionString: "postgresql://cachekit@127.0.0.1:5432/cachekit"))
let embedder = try LocalEmbeddingProvider(directory: modelFolder)  // all-MiniLM-L6-v2, in process

var configuration = CacheConfiguration()
configuration.layers = [.memory(), .redis(client: redis)]
configuration.semantic = .pgvector(client: postgres, embedder: embedder, threshold: 0.85)
configuration.invalidationBus = RedisInvalidationBus(client: redis)
// Checks that the parts fit (the embedder's dimension against the index, layer names, ...) before anything runs.
let cache = try MultiLayerCache(configuration: configuration)
// snippet.hide
return cache
}
func serve(cache: MultiLayerCache, server: some Service) async throws {
// snippet.show

// The cache is a Service: its sweeps, the clients' health checks and the bus subscriber run until graceful shutdown
// (the clients may also be added to the group themselves; each runs once either way). Services
// stop in reverse order, so the server drains its requests before the cache closes its pools.
let group = ServiceGroup(
    configuration: .init(services: [cache, server], gracefulShutdownSignals: [.sigterm, .sigint], logger: Logger(label: "app"))
)
try await group.run()
// snippet.hide
}
