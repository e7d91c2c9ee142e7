public import CacheKit

/// Reads an upstream's chat-completions event stream as it arrives, in network reads of any size: the chunks it
/// carries, and how it ended. The stream succeeds only with `[DONE]` after no error: an error event (an `error`
/// event name, or a data object with an `error` member, or data that is not a chunk), even one followed by `[DONE]`
/// in the same read, ends it as failed, and nothing after the end is read.
@_spi(Fuzzing) public struct UpstreamStreamReader: Sendable {
    /// How the stream has ended so far.
    public enum End: Sendable, Equatable {
        /// Still open: if the transfer stops here, the stream was truncated.
        case open
        /// `[DONE]` arrived with no error before it.
        case done
        /// An error arrived (its JSON body, for the error's message).
        case failed([UInt8])
    }

    public private(set) var end: End = .open
    private var parser: ServerSentEventParser

    public init(maximumEventBytes: Int = 8 << 20) {
        self.parser = ServerSentEventParser(maximumEventBytes: maximumEventBytes)
    }

    /// The chunks in `bytes` (nothing once the stream has ended).
    public mutating func feed(_ bytes: some Collection<UInt8>) -> [ChatCompletionChunk] {
        guard case .open = self.end else { return [] }
        var chunks: [ChatCompletionChunk] = []
        do {
            for event in try self.parser.feed(bytes) {
                if event.data == "[DONE]" {
                    self.end = .done
                    break
                }
                let data = Array(event.data.utf8)
                if event.name == "error" {
                    self.end = .failed(data)
                    break
                }
                guard let chunk = try? ChatCompletionChunk(json: data), chunk.body["error"] == nil else {
                    self.end = .failed(data)
                    break
                }
                chunks.append(chunk)
            }
        } catch {
            self.end = .failed(Array(#"{"error":{"message":"oversized event"}}"#.utf8))
        }
        return chunks
    }

    /// Marks the stream failed (the size limit) unless it already ended.
    public mutating func fail(_ body: [UInt8]) {
        if case .open = self.end { self.end = .failed(body) }
    }
}

/// The client's checks on an upstream's replies, for the fuzz targets.
@_spi(Fuzzing) public enum UpstreamReplyChecks {
    /// `OpenAIClient`'s ordering and validation of an embeddings reply's `data`.
    public static func embeddings(_ data: [JSONValue], count: Int, dimension: Int) throws -> [[Float]] {
        try OpenAIClient.orderedEmbeddings(data, count: count, dimension: dimension)
    }

    /// The message a caller sees for an error reply of `status` with `body`, with `secrets` removed.
    public static func errorMessage(status: Int, body: [UInt8], secrets: [String]) -> String {
        OpenAIClient.httpError(HTTPResponseHead(status: status, headers: []), body, attempts: 1, secrets: secrets).message
    }

    /// A `Retry-After` value as the client reads it.
    public static func retryAfter(_ header: String) -> Double? { OpenAIClient.retryAfterSeconds(header) }
}
