public import CacheKit

extension OpenAIClient {
    /// A caller's own API key, sent upstream instead of the configured one. Never printed.
    public struct Credential: Sendable, Hashable, CustomStringConvertible {
        /// The key as the caller presented it.
        public var key: String
        /// How it is sent: `Authorization: Bearer` (default) or Azure's `api-key` header.
        public var authorization: OpenAIClient.Configuration.Authorization

        public init(key: String, authorization: OpenAIClient.Configuration.Authorization = .bearer) {
            self.key = key
            self.authorization = authorization
        }

        public var description: String { "Credential(redacted)" }
    }

    /// An `OpenAIClient` that sends one caller's credential: what `forwarding(_:)` returns. Shares the client's
    /// connections, retries and limits.
    public struct Forwarding: CompletionProvider {
        let client: OpenAIClient
        let credential: Credential

        public func complete(_ request: ChatRequest) async throws -> ChatResponse {
            try await self.client.complete(request, credential: self.credential)
        }

        public func streamCompletion(_ request: ChatRequest) async throws -> AsyncThrowingStream<ChatCompletionChunk, any Error> {
            try await self.client.streamCompletion(request, credential: self.credential)
        }
    }
}
