/// A deterministic bag-of-words `EmbeddingProvider` with no model and no dependencies: each lower-cased word is
/// hashed (FNV-1a) to a signed component, so texts that share words are close and texts that share none are near
/// orthogonal. It knows no synonyms: use it in tests, as a lexical baseline, or where no model can be loaded;
/// use a sentence-embedding model (CacheKitEmbeddings) for real paraphrase matching.
public struct HashingEmbeddingProvider: EmbeddingProvider {
    public let dimension: Int
    public var model: String { "hashing-bow-\(self.dimension)" }
    private let calls = LockedState(0)

    public init(dimension: Int = 64) {
        precondition(dimension > 0)
        self.dimension = dimension
    }

    /// How many texts were embedded.
    public var embeddedTexts: Int { self.calls.withLock { $0 } }

    public func embed(_ texts: [String]) async throws -> [[Float]] {
        self.calls.withLock { $0 += texts.count }
        return texts.map(self.vector(for:))
    }

    /// The vector of one text.
    public func vector(for text: String) -> [Float] {
        var vector = [Float](repeating: 0, count: self.dimension)
        var word = [UInt8]()
        func flush() {
            guard !word.isEmpty else { return }
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in word { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
            vector[Int(hash % UInt64(self.dimension))] += (hash >> 63) == 0 ? 1 : -1
            word.removeAll(keepingCapacity: true)
        }
        for byte in text.lowercased().utf8 {
            if (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x7A) || byte >= 0x80 {
                word.append(byte)
            } else {
                flush()
            }
        }
        flush()
        let norm = vector.reduce(0) { $0 + $1 * $1 }.squareRoot()
        if norm == 0 {
            vector[0] = 1
            return vector
        }
        return vector.map { $0 / norm }
    }
}
