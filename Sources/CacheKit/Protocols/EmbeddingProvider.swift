/// Turns texts into unit-length vectors.
public protocol EmbeddingProvider: Sendable {
    /// The model's name; part of the embedding cache key and stored with semantic entries.
    var model: String { get }
    /// The vector dimension.
    var dimension: Int { get }
    /// One unit vector per text, in order.
    func embed(_ texts: [String]) async throws -> [[Float]]
    /// Whether the model reads all of `text`. A model truncates a text past its window (256 tokens for
    /// all-MiniLM-L6-v2), so two long texts that differ only after it get the same vector: the semantic layer never
    /// embeds such a text (it is looked up and stored exactly only). Default: `true` (a model without a window, or
    /// one far longer than `SemanticLayer.maximumQueryBytes`).
    func readsWhole(_ text: String) -> Bool
}

extension EmbeddingProvider {
    public func readsWhole(_ text: String) -> Bool { true }
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
