// Times CacheKit operations in one process and prints nanoseconds per operation as JSON, for the side-by-side
// scripts in compare/. Usage: cachekit-bench REQUEST.json
import CacheKit
import CacheKitEmbeddings
import CacheKitMemory
import CacheKitOpenAI
import CacheKitPGVector
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
if arguments.count >= 4, arguments[2] == "--pgvector-prepare" {
    try await Task.detached { try await pgvectorPrepare(url: arguments[3]) }.value
    exit(0)
}
if arguments.count >= 4, arguments[2] == "--pgvector-move" {
    // Moves the bulk-loaded partition to its own table (where its HNSW index is built); prints the seconds taken.
    try await Task.detached {
        let start = ContinuousClock.now
        try await benchIndex(arguments[3]).moveLargePartitions()
        print((ContinuousClock.now - start).seconds)
    }.value
    exit(0)
}
if arguments.count >= 5, arguments[2] == "--pgvector-search" {
    try await Task.detached { try await pgvectorSearch(url: arguments[3], queriesFile: arguments[4]) }.value
    exit(0)
}
if arguments.count >= 4, arguments[2] == "--openai" {
    try await Task.detached { try await openAIBenchmark(url: arguments[3], request: try ChatRequest(json: Array(data))) }.value
    exit(0)
}
if arguments.count >= 5, arguments[2] == "--memory-index" {
    try await Task.detached { try await memoryIndexBenchmark(count: Int(arguments[3]) ?? 100_000, directory: arguments[4]) }.value
    exit(0)
}
if arguments.count >= 5, arguments[2] == "--semantic" {
    try await Task.detached { try await semanticBenchmark(pairsFile: arguments[3], directory: arguments[4]) }.value
    exit(0)
}
if arguments.count >= 4, arguments[2] == "--guards" {
    // The guards alone on GPTCache's pairs (the query's profile, the stored question's, the verdict), 20 rounds.
    let pairs = try JSONValue(parsing: Array(FileManager.default.contents(atPath: arguments[3])!)).arrayValue!
        .map { ($0["similar"]!.stringValue!, $0["origin"]!.stringValue!) }
    var times: [Double] = []
    for _ in 0..<20 {
        for (asked, stored) in pairs {
            let start = ContinuousClock.now
            consume(SemanticGuards.all.refusal(query: SemanticGuards.Profile(asked), candidate: SemanticGuards.Profile(stored)))
            times.append((ContinuousClock.now - start).seconds * 1_000_000)
        }
    }
    times.sort()
    print("guards per pair: p50 \(times[times.count / 2]) us, p95 \(times[times.count * 95 / 100]) us")
    exit(0)
}
if arguments.count >= 4, arguments[2] == "--embed" {
    try embeddingBenchmark(directory: arguments[3])
    exit(0)
}
if arguments.count >= 4, arguments[2] == "--redis" {
    try await Task.detached { try await redisBenchmark(url: arguments[3], request: try ChatRequest(json: Array(data))) }.value
    exit(0)
}

if arguments.count >= 3, arguments[2] == "--scaling" {
    try await Task.detached { try await scalingBenchmark(request: try ChatRequest(json: Array(data))) }.value
    exit(0)
}

let benchScope = CacheScope(tenant: "bench")
let benchPartition = SemanticPartition(digest: Digest256(hashing: Array("bench-partition".utf8)), scopeID: benchScope.id)

func benchIndex(_ url: String) throws -> PGVectorSemanticIndex {
    let ef = Int(ProcessInfo.processInfo.environment["BENCH_EF_SEARCH"] ?? "") ?? 64
    return PGVectorSemanticIndex(configuration: try PostgresClient.Configuration(connectionString: url, tablePrefix: "ckbench", efSearch: ef), dimension: 384)
}

/// Creates the schema and prints what the loader needs: scope id, partition and a valid payload, as hex.
func pgvectorPrepare(url: String) async throws {
    try await benchIndex(url).migrate()
    let now = SystemCacheClock().now()
    let entry = CacheEntry(value: Array(#"{"answer":"cached"}"#.utf8), createdAt: now, expiresAt: now + .seconds(86_400))
    print(String(decoding: JSONValue.object([
        "scope_hex": .string(benchScope.id.hex), "partition_hex": .string(benchPartition.digest.hex),
        "payload_hex": .string(CacheEntryCodec.encode(entry).map { String(format: "%02x", $0) }.joined()),
    ]).canonicalBytes(), as: UTF8.self))
}

/// Searches every query of a JSON array of vectors through PGVectorSemanticIndex, and the first one 300 more
/// times; prints the top-1 keys (hex) and latency percentiles.
func pgvectorSearch(url: String, queriesFile: String) async throws {
    let index = try benchIndex(url)
    let queries = try JSONValue(parsing: Array(FileManager.default.contents(atPath: queriesFile)!)).arrayValue!.map { $0.arrayValue!.map { Float($0.doubleValue!) } }
    var keys: [JSONValue] = []
    for query in queries {
        let match = try await index.search(SemanticQuery(vector: query, partition: benchPartition, minimumSimilarity: -1, limit: 1))
        keys.append(match.first.map { .string($0.key.digest.hex) } ?? .null)
    }
    var fixed = LatencyHistogram()
    for _ in 0..<300 {
        let start = ContinuousClock.now
        _ = try await index.search(SemanticQuery(vector: queries[0], partition: benchPartition, minimumSimilarity: -1, limit: 1))
        fixed.record(ContinuousClock.now - start)
    }
    print(String(decoding: JSONValue.object([
        "keys": .array(keys), "fixed_p50_ms": .number(Double(fixed.percentile(0.5)) / 1e6),
        "fixed_p95_ms": .number(Double(fixed.percentile(0.95)) / 1e6),
    ]).canonicalBytes(), as: UTF8.self))
}

/// A direct call to the loopback upstream through OpenAIClient, and a cache hit through MultiLayerCache, p50 of 300.
func openAIBenchmark(url: String, request: ChatRequest) async throws {
    let client = OpenAIClient(configuration: OpenAIClient.Configuration(baseURL: url, apiKey: "sk-bench"))
    var configuration = CacheConfiguration()
    configuration.layers = [.memory()]
    configuration.logger.logLevel = .error
    let cache = try MultiLayerCache(configuration: configuration)
    _ = try await client.complete(request)
    var direct = LatencyHistogram()
    for _ in 0..<300 {
        let start = ContinuousClock.now
        _ = try await client.complete(request)
        direct.record(ContinuousClock.now - start)
    }
    _ = try await cache.completion(for: request, upstream: client)
    var hit = LatencyHistogram()
    for _ in 0..<300 {
        let start = ContinuousClock.now
        _ = try await cache.completion(for: request, upstream: client)
        hit.record(ContinuousClock.now - start)
    }
    print(String(decoding: JSONValue.object([
        "direct_p50_ms": .number(Double(direct.percentile(0.5)) / 1e6), "hit_p50_ms": .number(Double(hit.percentile(0.5)) / 1e6),
    ]).canonicalBytes(), as: UTF8.self))
}

/// The memory semantic index at `count` × 384 in one partition: exact scan vs the approximate path (sign-bit
/// Hamming pass + exact re-rank), p50 per top-1 lookup and recall@1 of approximate vs exact on near-duplicate
/// queries. Writes the vectors and queries (float32, row-major) into `directory` for the numpy comparison.
func memoryIndexBenchmark(count: Int, directory: String) async throws {
    let dimension = 384
    var state: UInt64 = 42
    func next() -> Float {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Float(Int64(bitPattern: state >> 11) % 2_000_001 - 1_000_000) / 1_000_000
    }
    func unit(_ v: [Float]) -> [Float] {
        let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return v.map { $0 / norm }
    }
    let exact = MemorySemanticIndex(configuration: .init(dimension: dimension, maximumRecords: count + 1, approximateAbove: .max))
    let approximate = MemorySemanticIndex(configuration: .init(dimension: dimension, maximumRecords: count + 1))
    let scope = CacheScope.default
    let partition = SemanticPartition(digest: Digest256(hashing: [7]), scopeID: scope.id)
    let now = SystemCacheClock().now()
    let entry = CacheEntry(value: [1], createdAt: now, expiresAt: now + .seconds(3600))
    var all: [Float] = []
    all.reserveCapacity(count * dimension)
    var vectors: [[Float]] = []
    for i in 0..<count {
        let v = unit((0..<dimension).map { _ in next() })
        all += v
        if i % 500 == 0 { vectors.append(v) }
        let record = SemanticRecord(key: CacheKey(digest: Digest256(hashing: Array("v\(i)".utf8)), scopeID: scope.id), partition: partition, vector: v, entry: entry)
        try await exact.insert(record)
        try await approximate.insert(record)
    }
    let queries = vectors.map { v in unit(v.map { $0 + next() * 0.04 }) }
    func p50(_ index: MemorySemanticIndex) async throws -> (Double, [CacheKey?]) {
        var times: [Double] = []
        var keys: [CacheKey?] = []
        for q in queries {
            let started = ContinuousClock.now
            let best = try await index.search(SemanticQuery(vector: q, partition: partition, minimumSimilarity: -1, limit: 1))
            times.append((ContinuousClock.now - started).seconds * 1000)
            keys.append(best.first?.key)
        }
        return (times.sorted()[times.count / 2], keys)
    }
    let (exactMs, exactKeys) = try await p50(exact)
    let (approximateMs, approximateKeys) = try await p50(approximate)
    let recall = Double(zip(exactKeys, approximateKeys).filter { $0 == $1 }.count) / Double(queries.count)
    all.withUnsafeBytes { _ = FileManager.default.createFile(atPath: directory + "/vectors.f32", contents: Data($0)) }
    queries.flatMap { $0 }.withUnsafeBytes { _ = FileManager.default.createFile(atPath: directory + "/queries.f32", contents: Data($0)) }
    print(String(decoding: JSONValue.object([
        "count": .number(Double(count)), "dimension": .number(Double(dimension)), "queries": .number(Double(queries.count)),
        "exact_p50_ms": .number(exactMs), "approximate_p50_ms": .number(approximateMs), "recall_at_1": .number(recall),
        "bytes_per_vector": .number(Double(dimension * 4 + (dimension + 63) / 64 * 8)),
    ]).canonicalBytes(), as: UTF8.self))
}

/// Semantic hits end to end on GPTCache's pairs: every origin answered and stored once through MultiLayerCache
/// (memory L1 + local model + memory semantic index), then every paraphrase looked up (exact miss, embedding, search, re-rank,
/// guards); latency of each hit, and how many were served their own pair's answer. BENCH_THRESHOLD (default 0.71, the
/// calibrated one), BENCH_MARGIN (default 0.01). Runs twice in one process, with every guard and with none, and times the
/// guards alone (the query's profile, one stored question's, the verdict) per pair.
func semanticBenchmark(pairsFile: String, directory: String) async throws {
    let pairs = try JSONValue(parsing: Array(FileManager.default.contents(atPath: pairsFile)!)).arrayValue!
    let embedder = try LocalEmbeddingProvider(directory: directory)
    var results: [String: JSONValue] = [:]
    for guards in [SemanticGuards.none, .all] {
        results[guards.enabled.isEmpty ? "no_guards" : "all_guards"] = try await semanticRun(pairs: pairs, embedder: embedder, guards: guards)
    }
    // The same lookups with every vector computed beforehand: search, re-ranking and guards alone, with and
    // without guards, alternating query by query so that both see the same machine state.
    let texts = pairs.flatMap { [$0["origin"]!.stringValue!, $0["similar"]!.stringValue!] }
    let vectors = Dictionary(zip(texts, try await embedder.embed(texts)), uniquingKeysWith: { a, _ in a })
    let remembered = RememberedEmbeddings(model: embedder.model, dimension: embedder.dimension, vectors: vectors)
    let guarded = try await semanticCache(pairs: pairs, embedder: remembered, guards: .all)
    let unguarded = try await semanticCache(pairs: pairs, embedder: remembered, guards: .none)
    // One round: a hit is then written to L1, and the same lookup again would be an exact hit.
    var with: [Double] = [], without: [Double] = []
    for (i, pair) in pairs.enumerated() {
        let request = semanticRequest(pair["similar"]!.stringValue!)
        for first in i % 2 == 0 ? [true, false] : [false, true] {
            let start = ContinuousClock.now
            let lookup = try await (first ? guarded : unguarded).lookup(request)
            let elapsed = (ContinuousClock.now - start).seconds * 1000
            if lookup.entry != nil { if first { with.append(elapsed) } else { without.append(elapsed) } }
        }
    }
    with.sort()
    without.sort()
    results["lookup_without_embedding_p50_ms"] = ["all_guards": .number(with[with.count / 2]), "no_guards": .number(without[without.count / 2])]
    var guardTimes: [Double] = []
    for pair in pairs {
        let (asked, stored) = (pair["similar"]!.stringValue!, pair["origin"]!.stringValue!)
        let start = ContinuousClock.now
        consume(SemanticGuards.all.refusal(query: SemanticGuards.Profile(asked), candidate: SemanticGuards.Profile(stored)))
        guardTimes.append((ContinuousClock.now - start).seconds * 1_000_000)
    }
    guardTimes.sort()
    results["guards_per_pair_p50_us"] = .number(guardTimes[guardTimes.count / 2])
    results["guards_per_pair_p95_us"] = .number(guardTimes[guardTimes.count * 95 / 100])
    print(String(decoding: JSONValue.object(results).canonicalBytes(), as: UTF8.self))
}

/// Vectors computed beforehand, by text.
struct RememberedEmbeddings: EmbeddingProvider {
    var model: String
    var dimension: Int
    var vectors: [String: [Float]]
    func embed(_ texts: [String]) async throws -> [[Float]] { texts.map { self.vectors[$0]! } }
}

func semanticRequest(_ text: String) -> ChatRequest {
    var request = ChatRequest(model: "gpt-4o-mini", messages: [.user(text)])
    request.temperature = 0  // deterministic: cacheable
    return request
}

func semanticThreshold() -> Float { Float(ProcessInfo.processInfo.environment["BENCH_THRESHOLD"] ?? "") ?? 0.71 }
func semanticMargin() -> Float { Float(ProcessInfo.processInfo.environment["BENCH_MARGIN"] ?? "") ?? 0.01 }

/// A cache (memory L1 + memory semantic index) holding every origin under its own answer.
func semanticCache(pairs: [JSONValue], embedder: any EmbeddingProvider, guards: SemanticGuards) async throws -> MultiLayerCache {
    var configuration = CacheConfiguration()
    configuration.layers = [.memory()]
    configuration.logger.logLevel = .error
    configuration.semantic = SemanticLayer(
        index: MemorySemanticIndex(configuration: .init(dimension: embedder.dimension, maximumRecords: pairs.count + 1)),
        embedder: embedder, threshold: semanticThreshold(), rerank: SemanticRerank(ambiguityMargin: semanticMargin()), guards: guards
    )
    let cache = try MultiLayerCache(configuration: configuration)
    for (i, pair) in pairs.enumerated() {
        let answer = "pair-\(i)-end"
        let upstream = ClosureCompletionProvider { request in ChatResponse(id: "x", model: request.model, created: 0, content: answer) }
        // Stored without reading first (no-cache), as GPTCache's benchmark inserts every origin: read through, a
        // later origin close to an earlier one would be served the earlier answer and never stored.
        var control = CacheControl.none
        control.noCache = true
        _ = try await cache.completion(for: semanticRequest(pair["origin"]!.stringValue!), control: control, upstream: upstream)
    }
    return cache
}

func semanticRun(pairs: [JSONValue], embedder: LocalEmbeddingProvider, guards: SemanticGuards) async throws -> JSONValue {
    let (threshold, margin) = (semanticThreshold(), semanticMargin())
    let cache = try await semanticCache(pairs: pairs, embedder: embedder, guards: guards)
    let request = semanticRequest
    var latencies: [Double] = []
    var correct = 0, wrong = 0, misses = 0
    for (i, pair) in pairs.enumerated() {
        let start = ContinuousClock.now
        let lookup = try await cache.lookup(request(pair["similar"]!.stringValue!))
        let elapsed = ContinuousClock.now - start
        guard let entry = lookup.entry else {
            misses += 1
            continue
        }
        latencies.append(elapsed.seconds * 1000)
        if String(decoding: entry.value, as: UTF8.self).contains("\"pair-\(i)-end\"") { correct += 1 } else { wrong += 1 }
    }
    return [
        "threshold": .number(Double(threshold)), "margin": .number(Double(margin)),
        "correct": .number(Double(correct)), "wrong": .number(Double(wrong)), "misses": .number(Double(misses)),
        "hit_p50_ms": .number(latencies.sorted()[latencies.count / 2]), "hit_p95_ms": .number(latencies.sorted()[latencies.count * 95 / 100]),
    ]
}

/// Local embedding latency: one 16-token query (batch 1) and 32 queries (batch 32), medians of 30 runs, with
/// CacheKit's panel kernels (the default) and with OpenBLAS in the same process.
func embeddingBenchmark(directory: String) throws {
    let query = "How do I reset the password of my account on the mobile app today?"
    let batch = (0..<32).map { "Question number \($0): how do I reset the password of my account today?" }
    func median(_ body: () -> Void) -> Double {
        var samples: [Double] = []
        for _ in 0..<30 {
            let start = ContinuousClock.now
            body()
            samples.append((ContinuousClock.now - start).seconds * 1000)
        }
        return samples.sorted()[15]
    }
    var figures: [String: JSONValue] = [:]
    var modes = [("", EmbeddingMatrixProducts.automatic), ("blas_", .blas)]
    if let only = ProcessInfo.processInfo.environment["BENCH_EMBED_ONLY"] { modes = modes.filter { $0.0 == only } }
    for (name, products) in modes {
        let provider = try LocalEmbeddingProvider(directory: directory, products: products)
        _ = provider.embedNow([query])
        let single = median { _ = provider.embedNow([query]) }
        let many = median { _ = provider.embedNow(batch) }
        figures["tokens"] = .number(Double(provider.tokenizer.encode(query).count))
        figures[name + "single_ms"] = .number(single)
        figures[name + "batch32_ms"] = .number(many)
        figures[name + "batch32_per_query_ms"] = .number(many / 32)
    }
    print(String(decoding: JSONValue.object(figures).canonicalBytes(), as: UTF8.self))
}

/// L2 hits through MultiLayerCache (Redis only, one client, 2 KB value) and pipelined bulk warm-up, as ops/s.
func redisBenchmark(url: String, request: ChatRequest) async throws {
    var redis = try RedisClient.Configuration(url: url)
    redis.keyPrefix = "ck-bench"
    var configuration = CacheConfiguration()
    configuration.layers = [.redis(redis)]
    configuration.logger.logLevel = .error
    let cache = try MultiLayerCache(configuration: configuration)
    let value = String(repeating: "v", count: 2000 - 200)
    let upstream = ClosureCompletionProvider { request in ChatResponse(id: "x", model: request.model, created: 0, content: value) }
    _ = try await cache.completion(for: request, upstream: upstream)
    guard try await cache.lookup(request).outcome.source == .hitL1 else { throw CacheError(.unavailable, "no L2 hit") }
    let warmOnly = ProcessInfo.processInfo.environment["BENCH_WARM_ONLY"] != nil  // for profiling the warm-up
    let operations = warmOnly ? 200_000 : 20_000
    var start = ContinuousClock.now
    for _ in 0..<(warmOnly ? 1 : operations) { consume(try await cache.lookup(request)) }
    let hitSeconds = (ContinuousClock.now - start).seconds
    let backend = RedisCacheBackend(configuration: redis)
    let now = SystemCacheClock().now()
    let entry = CacheEntry(value: [UInt8](repeating: 0x61, count: 2000), createdAt: now, expiresAt: now + .seconds(600))
    let keys = (0..<operations).map { CacheKey(digest: Digest256(hashing: Array("warm\($0)".utf8)), scopeID: CacheScope.default.id) }
    start = ContinuousClock.now
    var index = 0
    let warmBatch = Int(ProcessInfo.processInfo.environment["BENCH_WARM_BATCH"] ?? "") ?? 128
    while index < keys.count {
        let batch = keys[index..<min(keys.count, index + warmBatch)].map { KeyedEntry(key: $0, entry: entry) }
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
    let cache = try MultiLayerCache(configuration: configuration)
    let upstream = ClosureCompletionProvider { request in
        ChatResponse(id: "x", model: request.model, created: 0, content: String(repeating: "a", count: 1500), usage: TokenUsage(promptTokens: 500, completionTokens: 400))
    }
    _ = try await cache.completion(for: request, upstream: upstream)
    if ProcessInfo.processInfo.environment["BENCH_LOOKUP_ONLY"] != nil {
        for _ in 0..<500_000 { consume(try await cache.lookup(request)) }
        exit(0)
    }
    results["l1_hit_lookup_ns"] = .number(try await measureAsync(iterations: 20_000) { consume(try await cache.lookup(request)) })
    // Random of 10k distinct requests: each request is its own 2 KB tree, so this also measures reading cold
    // request trees; the key alone over the same requests separates that from the cache's own cost.
    var requests: [ChatRequest] = []
    for i in 0..<10_000 {
        var variant = request
        var messages = variant.messages
        messages[messages.count - 1] = .user("question number \(i)")
        variant.messages = messages
        requests.append(variant)
        _ = try await cache.completion(for: variant, upstream: upstream)
    }
    var position = 0
    results["key_random_of_10k_ns"] = .number(measure(iterations: 20_000) {
        consume(keyer.key(for: requests[position], in: scope))
        position = (position &+ 7919) % requests.count
    })
    results["l1_hit_lookup_random_of_10k_ns"] = .number(try await measureAsync(iterations: 20_000) {
        consume(try await cache.lookup(requests[position]))
        position = (position &+ 7919) % requests.count
    })
    results["l1_hit_completion_ns"] = .number(try await measureAsync(iterations: 5_000) { consume(try await cache.completion(for: request, upstream: upstream)) })
    if let stored = try await cache.lookup(request).entry?.value {
        results["response_parse_ns"] = .number(measure(iterations: 20_000) { consume(try? ChatResponse(json: stored)) })
        results["response_bytes"] = .number(Double(stored.count))
    }
    return results
}.value) { $1 }
print(String(decoding: JSONValue.object(results).canonicalBytes(), as: UTF8.self))

// MARK: - Scaling to two cores

/// Operations per second of `body` run by `workers` tasks at once for `seconds`.
func throughput(workers: Int, seconds: Double = 1.5, _ body: @escaping @Sendable (Int) async throws -> Void) async throws -> Double {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    let start = ContinuousClock.now
    let total = try await withThrowingTaskGroup(of: Int.self) { group in
        for worker in 0..<workers {
            group.addTask {
                var count = 0
                while ContinuousClock.now < deadline {
                    for _ in 0..<64 { try await body(worker &* 1_000_003 &+ count); count += 1 }
                }
                return count
            }
        }
        return try await group.reduce(0, +)
    }
    let elapsed = ContinuousClock.now - start
    return Double(total) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
}

/// How the hit path scales from one task to two: key alone, backend get alone, lookup on one hot key, lookup over
/// 10k keys (median of 3 rounds each; ratio 2.0 is perfect scaling on two cores).
func scalingBenchmark(request: ChatRequest) async throws {
    let keyer = RequestKeyer()
    let scope = CacheScope(tenant: "acme")
    var configuration = CacheConfiguration()
    configuration.layers = [.memory(.init(maximumBytes: 512 << 20, maximumEntries: 100_000))]
    configuration.logger.logLevel = .error
    let cache = try MultiLayerCache(configuration: configuration)
    let upstream = ClosureCompletionProvider { request in
        ChatResponse(id: "x", model: request.model, created: 0, content: String(repeating: "a", count: 1500))
    }
    var requests: [ChatRequest] = []
    for i in 0..<10_000 {
        var copy = request
        copy["user"] = .string("user-\(i)")
        requests.append(copy)
        _ = try await cache.completion(for: copy, in: scope, upstream: upstream)
    }
    _ = try await cache.completion(for: request, in: scope, upstream: upstream)
    let backend = MemoryCacheBackend()
    let key = keyer.key(for: request, in: scope)
    let now = SystemCacheClock().now()
    try await backend.set(CacheEntry(value: [UInt8](repeating: 1, count: 2048), createdAt: now, expiresAt: now + .seconds(3600)), for: key)
    let frozenRequests = requests
    let cases: [(String, @Sendable (Int) async throws -> Void)] = [
        ("key", { _ in withExtendedLifetime(keyer.key(for: request, in: scope)) {} }),
        ("backend.entry hot", { _ in withExtendedLifetime(backend.entry(for: key)) {} }),
        ("lookup hot key", { _ in withExtendedLifetime(try await cache.lookup(request, in: scope)) {} }),
        ("lookup random of 10k", { i in withExtendedLifetime(try await cache.lookup(frozenRequests[(i &* 7919) % frozenRequests.count], in: scope)) {} }),
    ]
    var rows: [JSONValue] = []
    for (name, body) in cases {
        var one: [Double] = [], two: [Double] = []
        for _ in 0..<3 {
            one.append(try await throughput(workers: 1, body))
            two.append(try await throughput(workers: 2, body))
        }
        let a = one.sorted()[1], b = two.sorted()[1]
        print(String(format: "%-22@ 1 task %9.0f/s (%.2f µs)   2 tasks %9.0f/s   ×%.2f", name as NSString, a, 1e6 / a, b, b / a))
        rows.append(["case": .string(name), "one": .number(a), "two": .number(b), "ratio": .number(b / a)])
    }
}

