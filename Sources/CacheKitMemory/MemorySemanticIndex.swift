public import CacheKit
import ServiceLifecycle

/// An in-process `SemanticIndex`: per partition, the vectors are stored contiguously (`[Float]`, row-major) and
/// searched with SIMD dot products (vectors are unit length, so dot product = cosine similarity).
///
/// - Bounds: at most `maximumRecords` records; past it the oldest-inserted records are dropped first.
/// - Expiry: records past `staleUntil` are skipped by searches and dropped by `sweep()`, which `run()` calls.
/// - Threading: one `pthread` mutex; a search holds it for one partition's scan.
/// - Refuses vectors of the wrong dimension, with NaN or infinity, or of zero length (`CacheError.invalidVector`).
public final class MemorySemanticIndex: SemanticIndex {
    public var capabilities: CacheCapabilities { [.contentRemoval, .localClearing, .backgroundWork] }
    /// Configuration with documented defaults.
    public struct Configuration: Sendable {
        /// The vector dimension (384 for all-MiniLM-L6-v2). Required.
        public var dimension: Int
        /// The most records kept. Default 100,000.
        public var maximumRecords: Int
        /// How often `run()` sweeps expired records. Default 60 s.
        public var sweepInterval: Duration
        /// The clock expiry is measured by. Default `SystemCacheClock()`.
        public var clock: any CacheClock
        /// The name in logs and metrics. Default `memory-semantic`.
        public var name: String
        /// Partitions with at least this many records are searched approximately: a scan of one sign bit per
        /// dimension (48 bytes a record at 384 dimensions) picks `approximateCandidates` records by Hamming
        /// distance, ranked then by exact cosine. Default 20,000; `Int.max` keeps every search exact.
        public var approximateAbove: Int
        /// How many records the approximate pass hands to exact ranking (at least 4 × the query's limit). Default 256.
        public var approximateCandidates: Int

        public init(
            dimension: Int,
            maximumRecords: Int = 100_000,
            sweepInterval: Duration = .seconds(60),
            clock: any CacheClock = SystemCacheClock(),
            name: String = "memory-semantic",
            approximateAbove: Int = 20_000,
            approximateCandidates: Int = 256
        ) {
            self.dimension = dimension
            self.maximumRecords = maximumRecords
            self.sweepInterval = sweepInterval
            self.clock = clock
            self.name = name
            self.approximateAbove = approximateAbove
            self.approximateCandidates = approximateCandidates
        }
    }

    public let configuration: Configuration
    public var name: String { self.configuration.name }
    public var dimension: Int { self.configuration.dimension }
    private let state: LockedState<SemanticStore>

    public init(configuration: Configuration) {
        precondition(configuration.dimension > 0, "dimension must be positive")
        self.configuration = configuration
        self.state = LockedState(
            SemanticStore(
                dimension: configuration.dimension, maximumRecords: max(1, configuration.maximumRecords),
                approximateAbove: max(1, configuration.approximateAbove), candidates: configuration.approximateCandidates))
    }

    /// An index of `dimension`-dimensional vectors with the other settings at their defaults.
    public convenience init(dimension: Int, clock: any CacheClock = SystemCacheClock()) {
        self.init(configuration: Configuration(dimension: dimension, clock: clock))
    }

    public func search(_ query: SemanticQuery) async throws -> [SemanticMatch] {
        let vector = try VectorValidation.normalized(query.vector, dimension: self.dimension, backend: self.name)
        guard query.limit > 0 else { return [] }
        let now = self.configuration.clock.now()
        return self.state.withLock { $0.search(vector, query: query, now: now) }
    }

    public func insert(_ record: SemanticRecord) async throws {
        var record = record
        record.vector = try VectorValidation.normalized(record.vector, dimension: self.dimension, backend: self.name)
        self.state.withLock { $0.insert(record) }
    }

    public func remove(_ key: CacheKey) async throws -> Bool {
        self.state.withLock { $0.remove(key) }
    }

    public func removeAll(taggedWith tag: String) async throws -> Int {
        self.state.withLock { store in store.removeAll { _, entry, _ in entry.tags.contains(tag) } }
    }

    public func removeAll(in scope: CacheScope) async throws -> Int {
        self.state.withLock { store in store.removeAll { partition, _, _ in partition.scopeID == scope.id } }
    }

    /// Scans every record under the lock (O(n)).
    public func removeAll(in scope: CacheScope, where predicate: @escaping @Sendable (CacheEntry) -> Bool) async throws -> Int {
        self.state.withLock { store in store.removeAll { partition, entry, _ in partition.scopeID == scope.id && predicate(entry) } }
    }

    /// Drops every record (the index is local to this process).
    public func removeAllLocal() async throws -> Int {
        self.state.withLock { store in store.removeAll { _, _, _ in true } }
    }

    public func removeAll(near vector: [Float], minimumSimilarity: Float, in scope: CacheScope) async throws -> Int {
        let vector = try VectorValidation.normalized(vector, dimension: self.dimension, backend: self.name)
        return self.state.withLock { store in
            store.removeAll { partition, _, row in
                partition.scopeID == scope.id && SIMDMath.dot(row, vector) >= minimumSimilarity
            }
        }
    }

    /// Drops expired records; returns how many.
    @discardableResult
    public func sweep() -> Int {
        let now = self.configuration.clock.now()
        return self.state.withLock { store in store.removeAll { _, entry, _ in !entry.isUsable(at: now) } }
    }

    /// How many records are stored.
    public var count: Int { self.state.withLock { $0.count } }

    /// Sweeps expired records every `sweepInterval` until graceful shutdown or cancellation.
    public func run() async throws {
        await runPeriodically(every: self.configuration.sweepInterval) { self.sweep() }
    }
}

extension SemanticLayer {
    /// A semantic layer over a `MemorySemanticIndex` of the embedder's dimension.
    public static func memory(
        embedder: any EmbeddingProvider,
        threshold: Float = 0.9,
        maximumRecords: Int = 100_000,
        clock: any CacheClock = SystemCacheClock()
    ) -> SemanticLayer {
        let index = MemorySemanticIndex(
            configuration: .init(dimension: embedder.dimension, maximumRecords: maximumRecords, clock: clock)
        )
        return SemanticLayer(index: index, embedder: embedder, threshold: threshold)
    }
}

/// Vector arithmetic on `Float` buffers with SIMD.
package enum SIMDMath {
    /// The dot product of two equally long vectors.
    @inlinable
    package static func dot(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>) -> Float {
        let n = min(a.count, b.count)
        guard n > 0, let pa = a.baseAddress, let pb = b.baseAddress else { return 0 }
        return dot(pa, pb, count: n)
    }

    /// The dot product of `count` floats at `a` and `b`.
    @inlinable
    package static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count n: Int) -> Float {
        var acc0 = SIMD8<Float>()
        var acc1 = SIMD8<Float>()
        var i = 0
        let ra = UnsafeRawPointer(a)
        let rb = UnsafeRawPointer(b)
        let stride = MemoryLayout<Float>.stride
        while i + 16 <= n {
            acc0 += ra.loadUnaligned(fromByteOffset: i * stride, as: SIMD8<Float>.self)
                * rb.loadUnaligned(fromByteOffset: i * stride, as: SIMD8<Float>.self)
            acc1 += ra.loadUnaligned(fromByteOffset: (i + 8) * stride, as: SIMD8<Float>.self)
                * rb.loadUnaligned(fromByteOffset: (i + 8) * stride, as: SIMD8<Float>.self)
            i += 16
        }
        while i + 8 <= n {
            acc0 += ra.loadUnaligned(fromByteOffset: i * stride, as: SIMD8<Float>.self)
                * rb.loadUnaligned(fromByteOffset: i * stride, as: SIMD8<Float>.self)
            i += 8
        }
        var sum = (acc0 + acc1).sum()
        while i < n {
            sum += a[i] * b[i]
            i += 1
        }
        return sum
    }

    /// The dot product of two arrays.
    package static func dot(_ a: [Float], _ b: [Float]) -> Float {
        a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in dot(pa, pb) } }
    }

    static func dot(_ a: ArraySlice<Float>, _ b: [Float]) -> Float {
        a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in dot(pa, pb) } }
    }
}
