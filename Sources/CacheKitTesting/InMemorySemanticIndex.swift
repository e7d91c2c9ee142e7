public import CacheKit

/// The simplest correct `SemanticIndex`: exact brute-force search over a list under a lock. The reference that
/// proves the conformance suite itself. Not for production (linear scans of everything).
public final class InMemorySemanticIndex: SemanticIndex {
    public let name: String
    public let dimension: Int
    private let clock: any CacheClock
    private let records = LockedState<[CacheKey: SemanticRecord]>([:])

    public init(dimension: Int, name: String = "in-memory-semantic", clock: any CacheClock = SystemCacheClock()) {
        self.dimension = dimension
        self.name = name
        self.clock = clock
    }

    public func search(_ query: SemanticQuery) async throws -> [SemanticMatch] {
        let vector = try VectorValidation.normalized(query.vector, dimension: self.dimension, backend: self.name)
        let now = self.clock.now()
        let candidates = self.records.withLock { records in
            records.values.filter { $0.partition == query.partition && $0.entry.isUsable(at: now) }
        }
        return
            candidates
            .map { SemanticMatch(key: $0.key, similarity: Self.dot($0.vector, vector), entry: $0.entry) }
            .filter { $0.similarity >= query.minimumSimilarity }
            .sorted { $0.similarity > $1.similarity }
            .prefix(max(0, query.limit))
            .map { $0 }
    }

    public func insert(_ record: SemanticRecord) async throws {
        var record = record
        record.vector = try VectorValidation.normalized(record.vector, dimension: self.dimension, backend: self.name)
        self.records.withLock { $0[record.key] = record }
    }

    public func remove(_ key: CacheKey) async throws -> Bool {
        self.records.withLock { $0.removeValue(forKey: key) != nil }
    }

    public func removeAll(taggedWith tag: String) async throws -> Int {
        self.removeWhere { $0.entry.tags.contains(tag) }
    }

    public func removeAll(in scope: CacheScope) async throws -> Int {
        self.removeWhere { $0.partition.scopeID == scope.id }
    }

    public func removeAll(near vector: [Float], minimumSimilarity: Float, in scope: CacheScope) async throws -> Int {
        let vector = try VectorValidation.normalized(vector, dimension: self.dimension, backend: self.name)
        return self.removeWhere { $0.partition.scopeID == scope.id && Self.dot($0.vector, vector) >= minimumSimilarity }
    }

    private func removeWhere(_ predicate: (SemanticRecord) -> Bool) -> Int {
        self.records.withLock { records in
            let keys = records.values.filter(predicate).map(\.key)
            for key in keys { records[key] = nil }
            return keys.count
        }
    }

    static func dot(_ a: [Float], _ b: [Float]) -> Float {
        var sum: Float = 0
        for i in a.indices { sum += a[i] * b[i] }
        return sum
    }
}
