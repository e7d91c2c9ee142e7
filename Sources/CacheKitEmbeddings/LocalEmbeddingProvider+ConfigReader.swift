#if SwiftConfiguration
public import CacheKit
public import Configuration

extension LocalEmbeddingProvider {
    /// Loads the model that `config` names.
    ///
    /// Keys (relative to the reader; scope it, e.g. `config.scoped(to: "embedding")`, so that the environment
    /// variable `EMBEDDING_MODEL_DIRECTORY` sets `modelDirectory`):
    /// - `modelDirectory` (string, required): a sentence-transformers folder (`scripts/fetch-model` makes one)
    /// - `threads` (int, 1 ... 64, default `1`): embedding calls computing at once
    /// - `products` (string `automatic`, `halfPrecisionPanels` or `blas`, default `automatic`)
    ///
    /// - Throws: `CacheError` `.invalidConfiguration` naming the key, or the missing or malformed model file.
    public convenience init(config: ConfigReader) throws(CacheError) {
        guard let directory = config.cacheKitString("modelDirectory") else {
            throw ConfigReader.invalid("modelDirectory", "is required (a sentence-transformers folder; scripts/fetch-model makes one)")
        }
        try self.init(
            directory: directory,
            threads: try config.cacheKitInt("threads", default: 1, in: 1...64),
            products: try config.cacheKitChoice(
                "products", default: .automatic,
                ["automatic": .automatic, "halfPrecisionPanels": .halfPrecisionPanels, "blas": .blas]
            )
        )
    }
}
#endif
