// Times CacheKit operations in one process and prints nanoseconds per operation as JSON, for the side-by-side
// scripts in compare/. Usage: cachekit-bench REQUEST.json
import CacheKit
import CacheKitMemory
import CacheKitRedis
import Foundation

@inline(never) func consume<T>(_ value: T) { withExtendedLifetime(value) {} }

/// The median over `rounds` rounds of the mean ns/op of `iterations` runs of `body`.
func measure(rounds: Int = 7, iterations: Int, _ body: () -> Void) -> Double {
    var samples: [Double] = []
    for _ in 0..<rounds {
        let start = ContinuousClock.now
        for _ in 0..<iterations { body() }
        let elapsed = ContinuousClock.now - start
        samples.append(Double(elapsed.components.attoseconds) / 1e9 / Double(iterations) + Double(elapsed.components.seconds) * 1e9 / Double(iterations))
    }
    return samples.sorted()[rounds / 2]
}

func measureAsync(rounds: Int = 7, iterations: Int, _ body: () async throws -> Void) async throws -> Double {
    var samples: [Double] = []
    for _ in 0..<rounds {
        let start = ContinuousClock.now
        for _ in 0..<iterations { try await body() }
        let elapsed = ContinuousClock.now - start
        samples.append((Double(elapsed.components.seconds) * 1e18 + Double(elapsed.components.attoseconds)) / 1e9 / Double(iterations))
    }
    return samples.sorted()[rounds / 2]
}

let arguments = CommandLine.arguments
guard arguments.count >= 2, let data = FileManager.default.contents(atPath: arguments[1]) else {
    FileHandle.standardError.write("usage: cachekit-bench REQUEST.json [--redis URL]\n".data(using: .utf8)!)
    exit(2)
}
if arguments.count >= 4, arguments[2] == "--redis" {
    try await Task.detached { try await redisBenchmark(url: arguments[3], request: try ChatRequest(json: Array(data))) }.value
    exit(0)
}

/// L2 hits through MultiLayerCache (Redis only, one client, 2 KB value) and pipelined bulk warm-up, as ops/s.
func redisBenchmark(url: String, request: ChatRequest) async throws {
    var redis = try RedisConfiguration(url: url)
    redis.keyPrefix = "ck-bench"
    var configuration = CacheConfiguration()
    configuration.layers = [.redis(redis)]
    configuration.logger.logLevel = .error
    let cache = MultiLayerCache(configuration: configuration)
    let value = String(repeating: "v", count: 2000 - 200)
    let upstream = ClosureCompletionProvider { request in ChatResponse(id: "x", model: request.model, created: 0, content: value) }
    _ = try await cache.completion(for: request, upstream: upstream)
    guard try await cache.lookup(request).outcome.source == .hitL1 else { throw CacheError(.unavailable, "no L2 hit") }
    let operations = 20_000
    var start = ContinuousClock.now
    for _ in 0..<operations { consume(try await cache.lookup(request)) }
    let hitSeconds = (ContinuousClock.now - start).seconds
    let backend = RedisCacheBackend(configuration: redis)
    let now = SystemCacheClock().now()
    let entry = CacheEntry(value: [UInt8](repeating: 0x61, count: 2000), createdAt: now, expiresAt: now + .seconds(600))
    let keys = (0..<operations).map { CacheKey(digest: Digest256(hashing: Array("warm\($0)".utf8)), scopeID: CacheScope.default.id) }
    start = ContinuousClock.now
    var index = 0
    let warmBatch = 128
    while index < keys.count {
        let batch = keys[index..<min(keys.count, index + warmBatch)].map { (key: $0, entry: entry) }
        try await backend.set(batch)
        index += warmBatch
    }
    let warmSeconds = (ContinuousClock.now - start).seconds
    print(String(decoding: JSONValue.object([
        "l2_hit_ops_per_s": .number((Double(operations) / hitSeconds).rounded()),
        "l2_hit_us": .number(hitSeconds / Double(operations) * 1e6),
        "warmup_batch": .number(Double(warmBatch)),
        "warmup_sets_per_s": .number((Double(operations) / warmSeconds).rounded()),
    ]).canonicalBytes(), as: UTF8.self))
}
let request = try ChatRequest(json: Array(data))
let keyer = RequestKeyer()
if ProcessInfo.processInfo.environment["BENCH_CANONICAL_ONLY"] != nil {
    for _ in 0..<300_000 { consume(keyer.canonicalBytes(for: request, in: CacheScope.default)) }
    exit(0)
}
let scope = CacheScope.default
var results: [String: JSONValue] = [:]
results["request_bytes"] = .number(Double(keyer.canonicalBytes(for: request, in: scope).count))
results["key_ns"] = .number(measure(iterations: 20_000) { consume(keyer.key(for: request, in: scope)) })
let canonical = keyer.canonicalBytes(for: request, in: scope)
results["canonical_ns"] = .number(measure(iterations: 20_000) { consume(keyer.canonicalBytes(for: request, in: scope)) })
results["sha256_ns"] = .number(measure(iterations: 20_000) { consume(Digest256(hashing: canonical)) })

let digests = (0..<10_000).map { Digest256(hashing: Array("k\($0)".utf8)) }
let dictionary = Dictionary(uniqueKeysWithValues: digests.map { ($0, [UInt8](repeating: 1, count: 2048)) })
var index = 0
results["dictionary_hot_ns"] = .number(measure(iterations: 1_000_000) { consume(dictionary[digests[42]]) })
results["dictionary_random_ns"] = .number(measure(iterations: 1_000_000) {
    consume(dictionary[digests[index]])
    index = (index &+ 7919) % digests.count
})

// Measured from a task on the global executor, as a server's request handler runs: top-level code runs on the
// main actor, and every await from there would hop threads.
results.merge(try await Task.detached { () async throws -> [String: JSONValue] in
    var results: [String: JSONValue] = [:]
    var configuration = CacheConfiguration()
    configuration.layers = [.memory()]
    configuration.logger.logLevel = .error
    let cache = MultiLayerCache(configuration: configuration)
    let upstream = ClosureCompletionProvider { request in
        ChatResponse(id: "x", model: request.model, created: 0, content: String(repeating: "a", count: 1500), usage: TokenUsage(promptTokens: 500, completionTokens: 400))
    }
    _ = try await cache.completion(for: request, upstream: upstream)
    results["l1_hit_lookup_ns"] = .number(try await measureAsync(iterations: 20_000) { consume(try await cache.lookup(request)) })
    results["l1_hit_completion_ns"] = .number(try await measureAsync(iterations: 5_000) { consume(try await cache.completion(for: request, upstream: upstream)) })
    return results
}.value) { $1 }
print(String(decoding: JSONValue.object(results).canonicalBytes(), as: UTF8.self))
