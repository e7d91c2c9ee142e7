/// The upstream model: what a cache miss calls.
public protocol CompletionProvider: Sendable {
    /// A non-streaming completion.
    func complete(_ request: ChatRequest) async throws -> ChatResponse

    /// A streaming completion. The default calls `complete` and replays the response as chunks.
    func streamCompletion(_ request: ChatRequest) async throws -> AsyncThrowingStream<ChatCompletionChunk, any Error>
}

extension CompletionProvider {
    public func streamCompletion(_ request: ChatRequest) async throws -> AsyncThrowingStream<ChatCompletionChunk, any Error> {
        let response = try await self.complete(request)
        let chunks = response.streamChunks()
        return AsyncThrowingStream { continuation in
            for chunk in chunks { continuation.yield(chunk) }
            continuation.finish()
        }
    }
}

/// A `CompletionProvider` made of a closure.
public struct ClosureCompletionProvider: CompletionProvider {
    private let body: @Sendable (ChatRequest) async throws -> ChatResponse

    /// Wraps `body`.
    public init(_ body: @escaping @Sendable (ChatRequest) async throws -> ChatResponse) { self.body = body }

    public func complete(_ request: ChatRequest) async throws -> ChatResponse { try await self.body(request) }
}
