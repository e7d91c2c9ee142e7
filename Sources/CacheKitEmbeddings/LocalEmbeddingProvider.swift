public import CacheKit
public import Foundation

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
    let threads: BlockingThreadPool
    /// Calls queued or computing; past `maximumQueuedCalls` a call fails at once with `.limitExceeded` (a semantic
    /// miss under the default policy) instead of waiting behind work it cannot catch up with.
    private let queued = LockedState(0)
    /// How many calls may be queued or computing at once. Default 64.
    public let maximumQueuedCalls: Int

    /// Loads the model in `directory`.
    ///
    /// - Parameters:
    ///   - directory: a sentence-transformers folder.
    ///   - threads: how many embedding calls may compute at once. Default 1 (each call already uses two cores).
    ///   - products: how the matrix products are computed; default: CacheKit's half-precision panel kernels where
    ///     the processor has AVX2/FMA/F16C, else OpenBLAS.
    ///   - maximumQueuedCalls: calls queued or computing at once; past it a call fails with `.limitExceeded`.
    ///     Default 64.
    /// - Throws: `CacheError` `.invalidConfiguration` naming the missing or malformed file.
    public convenience init(directory: String, threads: Int = 1, products: EmbeddingMatrixProducts = .automatic, maximumQueuedCalls: Int = 64) throws(CacheError) {
        let folder = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        try self.init(
            folder: folder, files: { FileManager.default.contents(atPath: "\(folder)/\($0)") }, threads: threads, products: products,
            maximumQueuedCalls: maximumQueuedCalls)
    }

    /// Loads a model from files given in memory (`config.json`, `vocab.txt`, `model.safetensors`, and the optional
    /// ones), for the model-folder fuzz target: the same checks as a folder on disk.
    @_spi(Fuzzing) public convenience init(files: [String: Data], products: EmbeddingMatrixProducts = .automatic) throws(CacheError) {
        try self.init(folder: "memory", files: { files[$0] }, threads: 1, products: products, maximumQueuedCalls: 64)
    }

    init(
        folder: String, files: (String) -> Data?, threads: Int, products: EmbeddingMatrixProducts, maximumQueuedCalls: Int
    ) throws(CacheError) {
        func read(_ name: String) throws(CacheError) -> Data {
            guard let data = files(name) else {
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
        if files("1_Pooling/config.json") != nil {
            let pooling = try json("1_Pooling/config.json")
            guard pooling["pooling_mode_mean_tokens"]?.boolValue == true else {
                throw CacheError(.invalidConfiguration, "only mean pooling is supported (1_Pooling/config.json)", backend: "embeddings")
            }
        }
        var maximumLength = 256
        if files("sentence_bert_config.json") != nil,
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
        self.maximumQueuedCalls = max(1, maximumQueuedCalls)
    }

    /// Loads the model from `CACHEKIT_MODEL_DIR`.
    public static func fromEnvironment(_ environment: [String: String]) throws(CacheError) -> LocalEmbeddingProvider? {
        guard let directory = environment["CACHEKIT_MODEL_DIR"], !directory.isEmpty else { return nil }
        return try LocalEmbeddingProvider(directory: directory)
    }

    /// Embeds `texts` on the provider's threads (tokenising included, so a long text never runs on the cooperative
    /// pool). The queue is bounded (`maximumQueuedCalls`); a caller that is cancelled (a layer timeout) returns at
    /// once and its call is dropped from the queue: its slot is freed and nothing is computed for it.
    public func embed(_ texts: [String]) async throws -> [[Float]] {
        guard !texts.isEmpty else { return [] }
        let limit = self.maximumQueuedCalls
        guard self.queued.withLock({ count -> Bool in
            guard count < limit else { return false }
            count += 1
            return true
        }) else {
            throw CacheError(.limitExceeded, "the embedding queue is full (\(limit) calls)", backend: "embeddings")
        }
        let job = EmbeddingJob(release: { [queued] in queued.withLock { $0 -= 1 } })
        let tokenizer = self.tokenizer, encoder = self.encoder
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                guard job.start(continuation) else { return }
                self.threads.submit {
                    guard job.beginRunning() else { return }
                    job.finish(encoder.encode(texts.map(tokenizer.encode)))
                }
            }
        } onCancel: {
            job.cancel()
        }
    }

    /// Whether `text` fits the model's window (`WordPieceTokenizer.maximumLength` tokens with `[CLS]` and `[SEP]`).
    public func readsWhole(_ text: String) -> Bool { self.tokenizer.fits(text) }

    /// Calls queued or computing now.
    public var queuedCalls: Int { self.queued.withLock { $0 } }

    /// The synchronous form, for tools and benchmarks (blocks the calling thread).
    public func embedNow(_ texts: [String]) -> [[Float]] {
        self.encoder.encode(texts.map(self.tokenizer.encode))
    }
}

/// One `embed` call between its caller and the provider's thread: the caller is resumed exactly once (by the result
/// or by cancellation) and the queue slot is released exactly once (when the call finishes, or at once when it is
/// cancelled before it started computing: the thread then skips it).
final class EmbeddingJob: Sendable {
    private enum Phase {
        case idle
        case waiting(CheckedContinuation<[[Float]], any Error>)
        case running(CheckedContinuation<[[Float]], any Error>?)
        case done
    }

    private let phase = LockedState(Phase.idle)
    private let release: @Sendable () -> Void

    init(release: @escaping @Sendable () -> Void) { self.release = release }

    /// Registers the caller; `false` (caller resumed, slot released) if it was already cancelled.
    func start(_ continuation: CheckedContinuation<[[Float]], any Error>) -> Bool {
        let cancelled = self.phase.withLock { phase -> Bool in
            if case .done = phase { return true }
            phase = .waiting(continuation)
            return false
        }
        if cancelled { continuation.resume(throwing: CancellationError()) }
        return !cancelled
    }

    /// On the thread, before computing: `false` if the caller left (nothing to compute).
    func beginRunning() -> Bool {
        self.phase.withLock { phase in
            guard case .waiting(let continuation) = phase else { return false }
            phase = .running(continuation)
            return true
        }
    }

    /// Delivers the vectors (if the caller is still there) and releases the slot.
    func finish(_ vectors: [[Float]]) {
        let continuation = self.phase.withLock { phase -> CheckedContinuation<[[Float]], any Error>? in
            defer { phase = .done }
            if case .running(let continuation) = phase { return continuation }
            return nil
        }
        // The slot is free before the caller sees the result.
        self.release()
        continuation?.resume(returning: vectors)
    }

    /// The caller is cancelled: resumed at once; a call not yet computing gives its slot back now.
    func cancel() {
        let (continuation, releaseNow) = self.phase.withLock { phase -> (CheckedContinuation<[[Float]], any Error>?, Bool) in
            switch phase {
            case .idle:
                phase = .done
                return (nil, true)
            case .waiting(let continuation):
                phase = .done
                return (continuation, true)
            case .running(let continuation):
                phase = .running(nil)  // computing: the slot is released when it finishes
                return (continuation, false)
            case .done:
                return (nil, false)
            }
        }
        if releaseNow { self.release() }
        continuation?.resume(throwing: CancellationError())
    }
}
