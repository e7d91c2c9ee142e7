/// A nearest-neighbour index of query embeddings, partitioned so that only requests that differ in their query
/// text alone can match, and filtered by scope in every query.
///
/// Vectors are unit length (cosine similarity = dot product). An index refuses vectors of the wrong dimension, with
/// NaN or infinity, or of zero length, with `CacheError` `.invalidVector`. Entries past `staleUntil` are never
/// returned.
///
/// Removal by key, tag, scope and content, and background work, are `CacheStore` requirements (records are removed
/// by the exact key of the request that produced them, and by their entry's tags and scope).
///
/// Prove an implementation with `SemanticIndexConformance` from `CacheKitTesting`.
public protocol SemanticIndex: CacheStore {
    /// The vector dimension the index stores.
    var dimension: Int { get }

    /// The nearest stored records to `query.vector` inside `query.partition` (and its scope), best first, at most
    /// `query.limit`, none below `query.minimumSimilarity`.
    func search(_ query: SemanticQuery) async throws -> [SemanticMatch]

    /// Stores a record, replacing a record with the same key.
    func insert(_ record: SemanticRecord) async throws

    /// Removes every record of `scope` whose vector's similarity to `vector` is at least `minimumSimilarity`, in any
    /// partition: semantic invalidation ("forget everything about the old price").
    @discardableResult
    func removeAll(near vector: [Float], minimumSimilarity: Float, in scope: CacheScope) async throws -> Int
}

/// A semantic search.
public struct SemanticQuery: Sendable {
    /// The query embedding (unit length).
    public var vector: [Float]
    /// The partition to search (it carries the scope id).
    public var partition: SemanticPartition
    /// The lowest cosine similarity to return.
    public var minimumSimilarity: Float
    /// The most matches to return.
    public var limit: Int

    public init(vector: [Float], partition: SemanticPartition, minimumSimilarity: Float, limit: Int = 1) {
        self.vector = vector
        self.partition = partition
        self.minimumSimilarity = minimumSimilarity
        self.limit = limit
    }
}

/// A record of the semantic index: an entry, its exact key and the embedding of its query text.
public struct SemanticRecord: Sendable {
    /// The exact key of the request that produced the entry; records are replaced and removed by it.
    public var key: CacheKey
    /// The partition of that request.
    public var partition: SemanticPartition
    /// The embedding of the query text (unit length).
    public var vector: [Float]
    /// The entry (its tags and `staleUntil` govern the record).
    public var entry: CacheEntry

    public init(key: CacheKey, partition: SemanticPartition, vector: [Float], entry: CacheEntry) {
        self.key = key
        self.partition = partition
        self.vector = vector
        self.entry = entry
    }
}

/// One result of a semantic search.
public struct SemanticMatch: Sendable {
    /// The exact key of the matched record.
    public var key: CacheKey
    /// Cosine similarity between the query and the record, in [-1, 1].
    public var similarity: Float
    /// The matched entry.
    public var entry: CacheEntry

    public init(key: CacheKey, similarity: Float, entry: CacheEntry) {
        self.key = key
        self.similarity = similarity
        self.entry = entry
    }
}

/// Checks and normalises vectors for semantic indexes.
public enum VectorValidation {
    /// Returns `vector` scaled to unit length.
    ///
    /// - Throws: `CacheError` `.invalidVector` for a wrong dimension, NaN or infinity, or a zero vector.
    public static func normalized(_ vector: [Float], dimension: Int, backend: String? = nil) throws(CacheError) -> [Float] {
        guard vector.count == dimension else {
            throw CacheError(.invalidVector, "vector has dimension \(vector.count), the index stores \(dimension)", backend: backend)
        }
        var sum: Float = 0
        for component in vector {
            guard component.isFinite else { throw CacheError(.invalidVector, "vector contains NaN or infinity", backend: backend) }
            sum += component * component
        }
        guard sum > 0, sum.isFinite else { throw CacheError(.invalidVector, "vector has zero length", backend: backend) }
        let scale = 1 / sum.squareRoot()
        if abs(sum - 1) < 1e-6 { return vector }
        return vector.map { $0 * scale }
    }
}
