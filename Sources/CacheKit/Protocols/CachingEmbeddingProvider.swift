/// An `EmbeddingProvider` that remembers every vector it computed, in any `CacheBackend`, keyed by SHA-256 of
/// (embedding model, text): a repeated query is embedded once, and with a shared backend once for all instances.
///
/// Vectors are stored as little-endian `Float32` bytes in `CacheEntry.value` for `ttl` (default 30 days).
public struct CachingEmbeddingProvider: EmbeddingProvider {
    public let base: any EmbeddingProvider
    public let backend: any CacheBackend
    public let ttl: Duration
    private let clock: any CacheClock
    private static let scope = CacheScope(tenant: "cachekit-embeddings", namespace: "vectors", version: "1")

    public init(base: any EmbeddingProvider, backend: any CacheBackend, ttl: Duration = .seconds(30 * 86_400), clock: any CacheClock = SystemCacheClock()) {
        self.base = base
        self.backend = backend
        self.ttl = ttl
        self.clock = clock
    }

    public var model: String { self.base.model }
    public var dimension: Int { self.base.dimension }
    public func readsWhole(_ text: String) -> Bool { self.base.readsWhole(text) }

    func key(for text: String) -> CacheKey {
        var writer = CanonicalJSONWriter(capacity: text.utf8.count + 64)
        writer.write(JSONValue.array([.string("embedding"), .string(self.base.model), .string(text)]))
        return CacheKey(digest: writer.withBytes { Digest256(hashing: $0) }, scopeID: Self.scope.id)
    }

    /// Embeds the texts that are not cached (in one batch), and caches them. A failing cache is a miss.
    public func embed(_ texts: [String]) async throws -> [[Float]] {
        let keys = texts.map(self.key(for:))
        let cached = (try? await self.backend.get(keys)) ?? [CacheEntry?](repeating: nil, count: texts.count)
        var vectors = cached.map { $0.flatMap { Self.decode($0.value, dimension: self.dimension) } }
        let missing = vectors.indices.filter { vectors[$0] == nil }
        guard !missing.isEmpty else { return vectors.map { $0! } }
        let computed = try await self.base.embed(missing.map { texts[$0] })
        guard computed.count == missing.count else {
            throw CacheError(.invalidResponse, "embedding provider returned \(computed.count) vectors for \(missing.count) texts")
        }
        let now = self.clock.now()
        var writes: [KeyedEntry] = []
        for (position, index) in missing.enumerated() {
            vectors[index] = computed[position]
            writes.append(
                KeyedEntry(key: keys[index], entry: CacheEntry(value: Self.encode(computed[position]), createdAt: now, expiresAt: now + self.ttl, model: self.base.model))
            )
        }
        try? await self.backend.set(writes)
        return vectors.map { $0! }
    }

    static func encode(_ vector: [Float]) -> [UInt8] {
        var bytes = [UInt8]()
        bytes.reserveCapacity(vector.count * 4)
        for value in vector {
            let bits = value.bitPattern.littleEndian
            withUnsafeBytes(of: bits) { bytes.append(contentsOf: $0) }
        }
        return bytes
    }

    static func decode(_ bytes: [UInt8], dimension: Int) -> [Float]? {
        guard bytes.count == dimension * 4 else { return nil }
        return bytes.withUnsafeBytes { raw in
            (0..<dimension).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
    }
}
