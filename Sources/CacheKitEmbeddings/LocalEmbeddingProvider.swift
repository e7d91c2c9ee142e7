import CacheKit
import Foundation

/// A sentence-embedding model (all-MiniLM-L6-v2 and other sentence-transformers BERT models of the same layout)
/// running in-process: no server, no API key.
///
/// Loads a sentence-transformers folder: `config.json`, `vocab.txt`, `model.safetensors` (F32 or F16), and
/// `1_Pooling/config.json` (mean pooling is required) and `sentence_bert_config.json` (`max_seq_length`) when
/// present. Thread-safe: the weights are immutable; each call computes on one of the provider's own threads, so the
/// cooperative pool is never blocked by the matrix products.
public final class LocalEmbeddingProvider: EmbeddingProvider {
    public let model: String
    public var dimension: Int { self.encoder.hidden }
    public let tokenizer: WordPieceTokenizer
    let encoder: BertEncoder
    private let threads: BlockingThreadPool

    /// Loads the model in `directory`.
    ///
    /// - Parameters:
    ///   - directory: a sentence-transformers folder.
    ///   - threads: how many embedding calls may compute at once. Default 1 (each call already uses two cores).
    ///   - products: how the matrix products are computed; default: CacheKit's half-precision panel kernels where
    ///     the processor has AVX2/FMA/F16C, else OpenBLAS.
    /// - Throws: `CacheError` `.invalidConfiguration` naming the missing or malformed file.
    public init(directory: String, threads: Int = 1, products: EmbeddingMatrixProducts = .automatic) throws(CacheError) {
        let folder = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        func read(_ name: String) throws(CacheError) -> Data {
            guard let data = FileManager.default.contents(atPath: "\(folder)/\(name)") else {
                throw CacheError(.invalidConfiguration, "the model folder \(folder) has no readable \(name)", backend: "embeddings")
            }
            return data
        }
        func json(_ name: String) throws(CacheError) -> JSONValue {
            do {
                return try JSONValue(parsing: Array(try read(name)))
            } catch let error as JSONParsingError {
                throw CacheError(.invalidConfiguration, "\(name): \(error.description)", backend: "embeddings")
            } catch let error as CacheError {
                throw error
            } catch {
                throw CacheError(.invalidConfiguration, "\(name): \(error)", backend: "embeddings")
            }
        }
        let config = try json("config.json")
        if FileManager.default.fileExists(atPath: "\(folder)/1_Pooling/config.json") {
            let pooling = try json("1_Pooling/config.json")
            guard pooling["pooling_mode_mean_tokens"]?.boolValue == true else {
                throw CacheError(.invalidConfiguration, "only mean pooling is supported (1_Pooling/config.json)", backend: "embeddings")
            }
        }
        var maximumLength = 256
        if FileManager.default.fileExists(atPath: "\(folder)/sentence_bert_config.json"),
            let length = try json("sentence_bert_config.json")["max_seq_length"]?.intValue
        {
            maximumLength = length
        }
        let vocabulary = String(decoding: try read("vocab.txt"), as: UTF8.self)
        let lowercases = (try? json("tokenizer_config.json"))?["do_lower_case"]?.boolValue ?? true
        self.tokenizer = try WordPieceTokenizer(vocabulary: vocabulary, lowercases: lowercases, maximumLength: maximumLength)
        self.encoder = try BertEncoder(config: config, weights: try SafeTensors(data: try read("model.safetensors")), products: products)
        // Token ids index the embedding matrix: a vocab.txt longer than the matrix (another model's, or a hostile
        // folder) would read past it.
        guard Int(self.tokenizer.largestID) < self.encoder.vocabularySize else {
            throw CacheError(
                .invalidConfiguration,
                "vocab.txt has ids up to \(self.tokenizer.largestID), but the model's word embeddings have \(self.encoder.vocabularySize) rows",
                backend: "embeddings")
        }
        self.model = (config["_name_or_path"]?.stringValue).map { "local:" + $0 } ?? "local:" + (folder.split(separator: "/").last.map(String.init) ?? "model")
        self.threads = BlockingThreadPool(threadCount: max(1, threads), name: "ck-embed")
    }

    /// Loads the model from `CACHEKIT_MODEL_DIR`.
    public static func fromEnvironment(_ environment: [String: String]) throws(CacheError) -> LocalEmbeddingProvider? {
        guard let directory = environment["CACHEKIT_MODEL_DIR"], !directory.isEmpty else { return nil }
        return try LocalEmbeddingProvider(directory: directory)
    }

    public func embed(_ texts: [String]) async throws -> [[Float]] {
        guard !texts.isEmpty else { return [] }
        let sequences = texts.map(self.tokenizer.encode)
        let encoder = self.encoder
        return try await self.threads.run { encoder.encode(sequences) }
    }

    /// The synchronous form, for tools and benchmarks (blocks the calling thread).
    public func embedNow(_ texts: [String]) -> [[Float]] {
        self.encoder.encode(texts.map(self.tokenizer.encode))
    }
}
