/// Turns texts into unit-length vectors.
public protocol EmbeddingProvider: Sendable {
    /// The model's name; part of the embedding cache key and stored with semantic entries.
    var model: String { get }
    /// The vector dimension.
    var dimension: Int { get }
    /// One unit vector per text, in order.
    func embed(_ texts: [String]) async throws -> [[Float]]
}

extension EmbeddingProvider {
    /// One text's vector.
    public func embed(_ text: String) async throws -> [Float] {
        let vectors = try await self.embed([text])
        guard let vector = vectors.first, vectors.count == 1 else {
            throw CacheError(.invalidResponse, "embedding provider returned \(vectors.count) vectors for 1 text")
        }
        return vector
    }
}
