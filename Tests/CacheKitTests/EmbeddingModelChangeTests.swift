import CacheKit
import CacheKitTesting
import Testing

/// Each embedding model's vectors live apart: a new model of the same dimension never compares its vectors with an
/// earlier model's (before, a swap silently matched across models whose vector spaces have nothing in common), and
/// the adopter chooses between starting empty and re-embedding as entries are used.
@Suite("Embedding model changes")
struct EmbeddingModelChangeTests {
    /// A model under a name of its own. Its vectors are the hashing model's, so a search that compared across models
    /// would find the other model's record: only the separation keeps them apart.
    struct NamedModel: EmbeddingProvider {
        let model: String
        let base = HashingEmbeddingProvider(dimension: 64)
        var dimension: Int { self.base.dimension }
        func embed(_ texts: [String]) async throws -> [[Float]] { try await self.base.embed(texts) }
    }

    static let question = ChatRequest(model: "gpt-4o-mini", messages: [.user("how do I reset my password")], temperature: 0)
    static let paraphrase = ChatRequest(model: "gpt-4o-mini", messages: [.user("how do I reset my password please")], temperature: 0)

    static func cache(index: any SemanticIndex, model: String, change: SemanticLayer.ModelChange = .startEmpty) throws -> MultiLayerCache {
        var semantic = SemanticLayer(index: index, embedder: NamedModel(model: model), threshold: 0.6, rerank: nil)
        semantic.modelChange = change
        var configuration = CacheConfiguration(layers: [CacheLayer(backend: InMemoryCacheBackend())], semantic: semantic)
        configuration.logger.logLevel = .critical
        return try MultiLayerCache(configuration: configuration)
    }

    @Test func aNewModelStartsEmptyByDefault() async throws {
        let index = InMemorySemanticIndex(dimension: 64)
        let upstream = EchoCompletionProvider()
        let old = try Self.cache(index: index, model: "model-a")
        _ = try await old.completion(for: Self.question, upstream: upstream)
        #expect(try await old.lookup(Self.paraphrase).outcome.source == .semanticHit, "the setup needs a semantic hit")
        let new = try Self.cache(index: index, model: "model-b")
        #expect(try await new.lookup(Self.paraphrase).outcome.source == .miss, "model-b was served a record embedded by model-a")
    }

    @Test func reembeddingMovesEachEntryOnFirstUse() async throws {
        let index = InMemorySemanticIndex(dimension: 64)
        let upstream = EchoCompletionProvider()
        let old = try Self.cache(index: index, model: "model-a")
        let stored = try await old.completion(for: Self.question, upstream: upstream)
        let moving = try Self.cache(index: index, model: "model-b", change: .reembed(from: NamedModel(model: "model-a")))
        let served = try await moving.completion(for: Self.paraphrase, upstream: upstream)
        #expect(served.outcome.source == .semanticHit, "the previous model's entry was not reachable during the change")
        #expect(served.response.text == stored.response.text)
        var waited = 0
        while moving.statistics().reembedded == 0, waited < 200 {
            try await Task.sleep(for: .milliseconds(5))
            waited += 1
        }
        #expect(moving.statistics().reembedded == 1)
        // Once moved, the entry is found by the new model alone.
        let after = try Self.cache(index: index, model: "model-b")
        #expect(try await after.lookup(Self.paraphrase).outcome.source == .semanticHit, "the entry was not re-embedded under model-b")
    }

    @Test func aModelChangeIsCheckedWhenTheCacheIsBuilt() {
        #expect(throws: CacheError.self) {
            try Self.cache(index: InMemorySemanticIndex(dimension: 64), model: "model-a", change: .reembed(from: NamedModel(model: "model-a")))
        }
        #expect(throws: CacheError.self) {
            try Self.cache(
                index: InMemorySemanticIndex(dimension: 64), model: "model-b", change: .reembed(from: HashingEmbeddingProvider(dimension: 32))
            )
        }
    }
}
