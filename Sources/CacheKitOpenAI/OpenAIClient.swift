public import CacheKit
public import Logging

extension OpenAIClient {
    /// How to reach an OpenAI-compatible server, with documented defaults.
    public struct Configuration: Sendable, CustomStringConvertible {
        /// How the API key is sent.
        public struct Authorization: Sendable, Hashable {
            fileprivate let header: String
            fileprivate let bearer: Bool
            /// `Authorization: Bearer <key>` (OpenAI, vLLM, Ollama, LiteLLM, llama.cpp server). The default.
            public static let bearer = Authorization(header: "Authorization", bearer: true)
            /// `api-key: <key>` (Azure OpenAI).
            public static let azureAPIKey = Authorization(header: "api-key", bearer: false)
        }

        /// The API root, e.g. `https://api.openai.com/v1` (default) or an Azure deployment URL.
        public var baseURL: String
        /// The API key. Never logged or printed.
        public var apiKey: String?
        public var authorization: Authorization
        /// `OpenAI-Organization` and `OpenAI-Project` headers.
        public var organization: String?
        public var project: String?
        /// Headers added to every request.
        public var extraHeaders: [String: String]
        /// Azure's `api-version` query parameter.
        public var apiVersion: String?
        /// Time limits. Defaults: connect 5 s, a whole non-streaming request 120 s, a stream silent for 60 s.
        public var connectTimeout: Duration
        public var requestTimeout: Duration
        public var streamIdleTimeout: Duration
        /// Retries after 429, 5xx and connection errors (never after another 4xx). Default 2.
        public var maximumRetries: Int
        /// The first backoff (doubled per retry, with jitter) and the longest wait honoured from `Retry-After`.
        /// Defaults 500 ms and 30 s.
        public var initialBackoff: Duration
        public var maximumRetryDelay: Duration
        /// The embedding model, its dimension and how many texts one request carries. Defaults
        /// `text-embedding-3-small`, 1536, 2048 (OpenAI's limit).
        public var embeddingModel: String
        public var embeddingDimension: Int
        /// Sends `dimensions` with embedding requests (models that support shortening). Default `false`.
        public var sendsEmbeddingDimensions: Bool
        public var embeddingBatchSize: Int
        /// Concurrent connections. Default 8.
        public var poolSize: Int
        /// The largest response body read from the upstream, streamed or not; a larger one fails the request with
        /// `.invalidResponse` (and is never cached). Default 32 MiB.
        public var maximumResponseBytes: Int

        public init(
            baseURL: String = "https://api.openai.com/v1",
            apiKey: String? = nil,
            authorization: Authorization = .bearer,
            organization: String? = nil,
            project: String? = nil,
            extraHeaders: [String: String] = [:],
            apiVersion: String? = nil,
            connectTimeout: Duration = .seconds(5),
            requestTimeout: Duration = .seconds(120),
            streamIdleTimeout: Duration = .seconds(60),
            maximumRetries: Int = 2,
            initialBackoff: Duration = .milliseconds(500),
            maximumRetryDelay: Duration = .seconds(30),
            embeddingModel: String = "text-embedding-3-small",
            embeddingDimension: Int = 1536,
            sendsEmbeddingDimensions: Bool = false,
            embeddingBatchSize: Int = 2048,
            poolSize: Int = 8,
            maximumResponseBytes: Int = 32 << 20
        ) {
            self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
            self.apiKey = apiKey
            self.authorization = authorization
            self.organization = organization
            self.project = project
            self.extraHeaders = extraHeaders
            self.apiVersion = apiVersion
            self.connectTimeout = connectTimeout
            self.requestTimeout = requestTimeout
            self.streamIdleTimeout = streamIdleTimeout
            self.maximumRetries = maximumRetries
            self.initialBackoff = initialBackoff
            self.maximumRetryDelay = maximumRetryDelay
            self.embeddingModel = embeddingModel
            self.embeddingDimension = embeddingDimension
            self.sendsEmbeddingDimensions = sendsEmbeddingDimensions
            self.embeddingBatchSize = embeddingBatchSize
            self.poolSize = poolSize
            self.maximumResponseBytes = maximumResponseBytes
        }

        /// `OPENAI_BASE_URL` and `OPENAI_API_KEY` from `environment` (the base URL defaults to OpenAI's).
        public static func fromEnvironment(_ environment: [String: String]) -> OpenAIClient.Configuration {
            OpenAIClient.Configuration(baseURL: environment["OPENAI_BASE_URL"] ?? "https://api.openai.com/v1", apiKey: environment["OPENAI_API_KEY"])
        }

        /// Never prints the API key.
        public var description: String {
            "OpenAIClient.Configuration(\(self.baseURL), key: \(self.apiKey == nil ? "none" : "set"), retries: \(self.maximumRetries))"
        }
    }
}

/// An OpenAI-compatible HTTP client over libcurl: chat completions (JSON and streamed), embeddings, retries.
///
/// Transfers run on a dedicated thread pool with reused easy handles (keep-alive, TLS sessions); TLS verification is
/// on; proxies come from the usual environment variables (`https_proxy`, `no_proxy`). A cancelled task returns at
/// once and its transfer is aborted (libcurl checks within about a second); the handle is then discarded.
public final class OpenAIClient: CompletionProvider, EmbeddingProvider {
    public let configuration: OpenAIClient.Configuration
    let pool: ConnectionPool<CurlHandle>
    let logger: Logger

    public init(configuration: OpenAIClient.Configuration, logger: Logger = Logger(label: "cachekit.openai")) {
        self.configuration = configuration
        self.logger = logger
        self.pool = ConnectionPool(
            configuration: ConnectionPoolConfiguration(size: configuration.poolSize, name: "openai"), logger: logger
        ) { try CurlHandle() }
    }

    /// Pool figures: open and idle transfers handles, waiters, handles created and destroyed.
    public var poolCounters: ConnectionPoolCounters { self.pool.counters }

    public var model: String { self.configuration.embeddingModel }
    public var dimension: Int { self.configuration.embeddingDimension }

    // MARK: Requests

    /// The request to send. `credential` replaces the configured API key (the proxy's passthrough mode).
    func request(path: String, body: [UInt8], streaming: Bool, credential: Credential? = nil) -> HTTPRequest {
        var url = self.configuration.baseURL + path
        if let version = self.configuration.apiVersion {
            url += "?api-version=" + Self.percentEncode(version)
        }
        var headers: [(String, String)] = [("Content-Type", "application/json"), ("Accept", streaming ? "text/event-stream" : "application/json")]
        if let credential {
            headers.append((credential.authorization.header, credential.authorization.bearer ? "Bearer \(credential.key)" : credential.key))
        } else if let key = self.configuration.apiKey {
            let auth = self.configuration.authorization
            headers.append((auth.header, auth.bearer ? "Bearer \(key)" : key))
        }
        if let organization = self.configuration.organization { headers.append(("OpenAI-Organization", organization)) }
        if let project = self.configuration.project { headers.append(("OpenAI-Project", project)) }
        for (name, value) in self.configuration.extraHeaders.sorted(by: { $0.key < $1.key }) { headers.append((name, value)) }
        return HTTPRequest(
            url: url, headers: headers, body: body, timeout: streaming ? nil : self.configuration.requestTimeout,
            idleTimeout: self.configuration.streamIdleTimeout, connectTimeout: self.configuration.connectTimeout
        )
    }

    static func percentEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += "%" + Hex.encode([byte]).uppercased()
            }
        }
        return out
    }

    /// Sends one JSON request with retries; returns the parsed body of a 2xx answer.
    /// POSTs a JSON body to `path` (appended to the base URL, e.g. `/embeddings`) with this client's retries and
    /// authentication, and returns the JSON reply. Non-2xx replies throw `OpenAIError` with the status and the
    /// provider's error message.
    public func post(path: String, json body: [UInt8]) async throws -> JSONValue {
        try await self.send(path: path, body: body)
    }

    /// `post(path:json:)` with the caller's own key instead of the configured one.
    public func post(path: String, json body: [UInt8], credential: Credential) async throws -> JSONValue {
        try await self.send(path: path, body: body, credential: credential)
    }

    func send(path: String, body: [UInt8], credential: Credential? = nil) async throws -> JSONValue {
        let request = self.request(path: path, body: body, streaming: false, credential: credential)
        let limit = self.configuration.maximumResponseBytes
        var attempt = 0
        while true {
            attempt += 1
            let outcome: Result<(HTTPResponseHead, [UInt8]), any Error> = await Result(catching: {
                try await self.pool.withConnection { handle in
                    var data = [UInt8]()
                    var oversized = false
                    let head: HTTPResponseHead
                    do {
                        head = try handle.perform(request) { chunk in
                            guard data.count + chunk.count <= limit else {
                                oversized = true
                                return false
                            }
                            data.append(contentsOf: chunk)
                            return true
                        }
                    } catch where oversized {
                        throw OpenAIError(code: .invalidResponse, message: "the response is larger than \(limit) bytes", attempts: 1)
                    }
                    return (head, data)
                }
            })
            do {
                let (head, data) = try outcome.get()
                if (200..<300).contains(head.status) {
                    do {
                        return try JSONValue(parsing: data)
                    } catch {
                        throw OpenAIError(code: .invalidResponse, message: "response body: \(error.description)", requestID: head.header("x-request-id"), attempts: attempt)
                    }
                }
                let error = Self.httpError(head, data, attempts: attempt, secrets: self.secrets(credential))
                guard error.isRetryable, attempt <= self.configuration.maximumRetries else { throw error }
                try await self.pause(before: attempt + 1, retryAfter: head.header("retry-after"), after: error)
            } catch let error as CacheError {
                let converted = Self.transportError(error, attempts: attempt)
                guard converted.isRetryable, attempt <= self.configuration.maximumRetries else { throw converted }
                try await self.pause(before: attempt + 1, retryAfter: nil, after: converted)
            }
        }
    }

    func pause(before attempt: Int, retryAfter: String?, after error: OpenAIError) async throws {
        var delay = self.configuration.initialBackoff * (1 << min(attempt - 2, 10))
        delay = delay * Double.random(in: 0.5...1.0)
        if let seconds = Self.retryAfterSeconds(retryAfter) {
            // Checked before any arithmetic: `inf`, `1e20` or `nan` from the server must not trap; anything past
            // the longest honoured wait is that wait.
            let ceiling = self.configuration.maximumRetryDelay.seconds
            delay = .milliseconds(Int64((min(seconds, ceiling) * 1000).rounded()))
        }
        delay = min(delay, self.configuration.maximumRetryDelay)
        self.logger.info("retrying", metadata: ["attempt": "\(attempt)", "delay": "\(delay)", "error": "\(error)"])
        try await Task.sleep(for: delay)
    }

    /// A `Retry-After` header in seconds, if it is a finite non-negative number (an HTTP date is ignored).
    static func retryAfterSeconds(_ header: String?) -> Double? {
        guard let header, let seconds = Double(header.trimmingSpaces), seconds.isFinite, seconds >= 0 else { return nil }
        return seconds
    }

    /// The keys an upstream error message must not repeat: the configured one and the caller's.
    func secrets(_ credential: Credential?) -> [String] {
        [self.configuration.apiKey, credential?.key].compactMap { $0 }
    }

    /// The error for a non-2xx answer. The provider's message is passed on with every API key and key fragment
    /// removed (OpenAI's 401 quotes the key's first and last characters).
    static func httpError(_ head: HTTPResponseHead, _ data: [UInt8], attempts: Int, secrets: [String] = []) -> OpenAIError {
        let body = try? JSONValue(parsing: data)
        let error = body?["error"]
        return OpenAIError(
            code: .http, status: head.status, type: error?["type"]?.stringValue,
            message: SecretRedaction.redact(error?["message"]?.stringValue ?? "HTTP \(head.status)", secrets: secrets),
            providerCode: error?["code"]?.stringValue, requestID: head.header("x-request-id"), attempts: attempts
        )
    }

    static func transportError(_ error: CacheError, attempts: Int) -> OpenAIError {
        let code: OpenAIError.Code =
            switch error.code {
            case .timeout: .timeout
            case .cancelled: .cancelled
            default: .transport
            }
        return OpenAIError(code: code, message: error.message, attempts: attempts)
    }

    // MARK: CompletionProvider

    public func complete(_ request: ChatRequest) async throws -> ChatResponse {
        try await self.complete(request, credential: nil)
    }

    public func streamCompletion(_ request: ChatRequest) async throws -> AsyncThrowingStream<ChatCompletionChunk, any Error> {
        try await self.streamCompletion(request, credential: nil)
    }

    /// This client with `credential` sent instead of the configured API key: the connections, retries and limits
    /// are shared; only the key differs. The proxy's passthrough mode answers each caller's misses this way.
    public func forwarding(_ credential: Credential) -> Forwarding { Forwarding(client: self, credential: credential) }

    func complete(_ request: ChatRequest, credential: Credential?) async throws -> ChatResponse {
        let body = request.forwardedBytes(settingStream: false)
        let json = try await self.send(path: "/chat/completions", body: body, credential: credential)
        guard case .object(let members) = json else {
            throw OpenAIError(code: .invalidResponse, message: "response body is not a JSON object", attempts: 1)
        }
        return ChatResponse(body: members)
    }

    func streamCompletion(_ request: ChatRequest, credential: Credential?) async throws -> AsyncThrowingStream<ChatCompletionChunk, any Error> {
        let body = request.forwardedBytes(settingStream: true)
        let httpRequest = self.request(path: "/chat/completions", body: body, streaming: true, credential: credential)
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: ChatCompletionChunk.self)
        let task = Task {
            await self.runStream(httpRequest, secrets: self.secrets(credential), continuation: continuation)
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    /// Streams one request into `continuation`, retrying only while nothing has been delivered.
    ///
    /// The stream succeeds only when it ends with `[DONE]` and carried no error event: an error event (even one
    /// followed by `[DONE]` in the same read), a non-2xx answer, a body over `maximumResponseBytes` or a stream that
    /// stops early finishes `continuation` with an error, so the cache never assembles or stores a partial answer.
    func runStream(
        _ request: HTTPRequest, secrets: [String], continuation: AsyncThrowingStream<ChatCompletionChunk, any Error>.Continuation
    ) async {
        let limit = self.configuration.maximumResponseBytes
        var attempt = 0
        while true {
            attempt += 1
            let delivered = LockedState(false)
            let result: Result<(HTTPResponseHead, UpstreamStreamReader.End), any Error> = await Result(catching: {
                try await self.pool.withConnection { handle in
                    var reader = UpstreamStreamReader()
                    var received = 0
                    var raw = [UInt8]()  // the start of the body, for an error answered as JSON instead of events
                    let head: HTTPResponseHead
                    do {
                        head = try handle.perform(request) { chunk in
                            received += chunk.count
                            guard received <= limit else {
                                reader.fail(Array("{\"error\":{\"message\":\"the stream is larger than \(limit) bytes\"}}".utf8))
                                return false
                            }
                            if raw.count < 65_536 { raw.append(contentsOf: chunk.prefix(65_536 - raw.count)) }
                            for parsed in reader.feed(chunk) {
                                delivered.withLock { $0 = true }
                                continuation.yield(parsed)
                            }
                            return true
                        }
                    } catch where reader.end != .open && reader.end != .done {
                        // The reader refused more bytes (the size limit): the recorded failure is the answer.
                        return (HTTPResponseHead(status: 200, headers: []), reader.end)
                    }
                    // A non-2xx answer arrives as a JSON body, not as events: keep it for the error.
                    return (head, (200..<300).contains(head.status) ? reader.end : .failed(raw))
                }
            })
            switch result {
            case .success(let (head, end)):
                if (200..<300).contains(head.status) {
                    switch end {
                    case .done:
                        continuation.finish()
                    case .failed(let body):
                        continuation.finish(throwing: Self.httpError(HTTPResponseHead(status: 500, headers: head.headers), body, attempts: attempt, secrets: secrets))
                    case .open:
                        continuation.finish(throwing: OpenAIError(code: .invalidResponse, message: "the stream ended without [DONE]: truncated", requestID: head.header("x-request-id"), attempts: attempt))
                    }
                    return
                }
                let body: [UInt8] = if case .failed(let bytes) = end { bytes } else { [] }
                let error = Self.httpError(head, body, attempts: attempt, secrets: secrets)
                if error.isRetryable, attempt <= self.configuration.maximumRetries, !delivered.withLock({ $0 }) {
                    do { try await self.pause(before: attempt + 1, retryAfter: head.header("retry-after"), after: error) } catch {
                        continuation.finish(throwing: CancellationError())
                        return
                    }
                    continue
                }
                continuation.finish(throwing: error)
                return
            case .failure(let failure):
                let error = (failure as? CacheError).map { Self.transportError($0, attempts: attempt) }
                if let error, error.isRetryable, attempt <= self.configuration.maximumRetries, !delivered.withLock({ $0 }) {
                    do { try await self.pause(before: attempt + 1, retryAfter: nil, after: error) } catch {
                        continuation.finish(throwing: CancellationError())
                        return
                    }
                    continue
                }
                continuation.finish(throwing: error ?? failure)
                return
            }
        }
    }

    // MARK: EmbeddingProvider

    public func embed(_ texts: [String]) async throws -> [[Float]] {
        var vectors: [[Float]] = []
        vectors.reserveCapacity(texts.count)
        var start = 0
        while start < texts.count {
            let batch = Array(texts[start..<min(texts.count, start + max(1, self.configuration.embeddingBatchSize))])
            start += batch.count
            var body: [String: JSONValue] = ["model": .string(self.configuration.embeddingModel), "input": .array(batch.map(JSONValue.string))]
            if self.configuration.sendsEmbeddingDimensions { body["dimensions"] = .number(Double(self.configuration.embeddingDimension)) }
            let json = try await self.send(path: "/embeddings", body: JSONValue.object(body).canonicalBytes())
            guard let data = json["data"]?.arrayValue, data.count == batch.count else {
                throw OpenAIError(code: .invalidResponse, message: "embeddings response has \(json["data"]?.arrayValue?.count ?? 0) vectors for \(batch.count) inputs", attempts: 1)
            }
            vectors += try Self.orderedEmbeddings(data, count: batch.count, dimension: self.dimension)
        }
        return vectors
    }
}

extension OpenAIClient {
    /// The vectors of an embeddings reply's `data`, in input order: every index in `0..<count` exactly once, each
    /// vector of `dimension` numbers. A repeated, missing or out-of-range index, or a wrong length, is
    /// `.invalidResponse`, never a crash.
    static func orderedEmbeddings(_ data: [JSONValue], count: Int, dimension: Int) throws -> [[Float]] {
        var ordered = [[Float]?](repeating: nil, count: count)
        for item in data {
            guard let index = item["index"]?.intValue, ordered.indices.contains(index) else {
                throw OpenAIError(code: .invalidResponse, message: "an embedding's index is missing or outside 0..<\(count)", attempts: 1)
            }
            guard ordered[index] == nil else {
                throw OpenAIError(code: .invalidResponse, message: "the embeddings reply repeats index \(index)", attempts: 1)
            }
            guard let values = item["embedding"]?.arrayValue, values.count == dimension else {
                throw OpenAIError(code: .invalidResponse, message: "an embedding has the wrong dimension (expected \(dimension))", attempts: 1)
            }
            let numbers = values.compactMap(\.doubleValue)
            guard numbers.count == dimension else {
                throw OpenAIError(code: .invalidResponse, message: "an embedding holds a value that is not a number", attempts: 1)
            }
            ordered[index] = numbers.map(Float.init)
        }
        return try ordered.map { vector in
            guard let vector else { throw OpenAIError(code: .invalidResponse, message: "the embeddings reply misses an index", attempts: 1) }
            return try VectorValidation.normalized(vector, dimension: dimension, backend: "openai")
        }
    }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}


extension String {
    fileprivate var trimmingSpaces: String {
        var text = Substring(self)
        while text.first == " " { text.removeFirst() }
        while text.last == " " { text.removeLast() }
        return String(text)
    }
}
