#if SwiftConfiguration
public import CacheKit
public import Configuration

extension OpenAIClient.Configuration {
    /// Reads how to reach an OpenAI-compatible server from `config`.
    ///
    /// Keys (relative to the reader; scope it, e.g. `config.scoped(to: "openai")`, so that the environment variables
    /// `OPENAI_BASE_URL` and `OPENAI_API_KEY` set `baseURL` and `apiKey`):
    /// - `baseURL` (string, `http://` or `https://`, default `https://api.openai.com/v1`)
    /// - `apiKey` (string, secret, default: none)
    /// - `authorization` (string `bearer` or `azureAPIKey`, default `bearer`)
    /// - `organization`, `project`, `apiVersion` (string, default: none)
    /// - `connectTimeoutSeconds` (double > 0, default `5`), `requestTimeoutSeconds` (double > 0, default `120`),
    ///   `streamIdleTimeoutSeconds` (double > 0, default `60`)
    /// - `maximumRetries` (int, 0 ... 20, default `2`)
    /// - `initialBackoffSeconds` (double > 0, default `0.5`), `maximumRetryDelaySeconds` (double > 0, default `30`)
    /// - `embeddingModel` (string, default `text-embedding-3-small`), `embeddingDimension` (int, 1 ... 65,536,
    ///   default `1536`), `sendsEmbeddingDimensions` (bool, default `false`), `embeddingBatchSize` (int, 1 ... 2048,
    ///   default `2048`)
    /// - `poolSize` (int, 1 ... 1024, default `8`)
    ///
    /// Extra headers are set in code (`extraHeaders`).
    ///
    /// - Throws: `CacheError` `.invalidConfiguration` naming the key when a value is malformed or out of range.
    public init(config: ConfigReader) throws(CacheError) {
        let defaults = OpenAIClient.Configuration()
        let baseURL = config.cacheKitString("baseURL") ?? defaults.baseURL
        guard baseURL.hasPrefix("http://") || baseURL.hasPrefix("https://") else {
            throw ConfigReader.invalid("baseURL", "must start with http:// or https://")
        }
        self.init(
            baseURL: baseURL,
            apiKey: config.cacheKitString("apiKey", secret: true),
            authorization: try config.cacheKitChoice(
                "authorization", default: defaults.authorization, ["bearer": .bearer, "azureAPIKey": .azureAPIKey]),
            organization: config.cacheKitString("organization"),
            project: config.cacheKitString("project"),
            apiVersion: config.cacheKitString("apiVersion"),
            connectTimeout: try config.cacheKitSeconds("connectTimeoutSeconds", default: defaults.connectTimeout, minimum: 0.001),
            requestTimeout: try config.cacheKitSeconds("requestTimeoutSeconds", default: defaults.requestTimeout, minimum: 0.001),
            streamIdleTimeout: try config.cacheKitSeconds("streamIdleTimeoutSeconds", default: defaults.streamIdleTimeout, minimum: 0.001),
            maximumRetries: try config.cacheKitInt("maximumRetries", default: defaults.maximumRetries, in: 0...20),
            initialBackoff: try config.cacheKitSeconds("initialBackoffSeconds", default: defaults.initialBackoff, minimum: 0.001),
            maximumRetryDelay: try config.cacheKitSeconds("maximumRetryDelaySeconds", default: defaults.maximumRetryDelay, minimum: 0.001),
            embeddingModel: config.cacheKitString("embeddingModel") ?? defaults.embeddingModel,
            embeddingDimension: try config.cacheKitInt("embeddingDimension", default: defaults.embeddingDimension, in: 1...65_536),
            sendsEmbeddingDimensions: try config.cacheKitBool("sendsEmbeddingDimensions", default: defaults.sendsEmbeddingDimensions),
            embeddingBatchSize: try config.cacheKitInt("embeddingBatchSize", default: defaults.embeddingBatchSize, in: 1...2048),
            poolSize: try config.cacheKitInt("poolSize", default: defaults.poolSize, in: 1...1024)
        )
    }
}
#endif
