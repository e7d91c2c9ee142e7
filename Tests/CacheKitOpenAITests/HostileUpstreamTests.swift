import CacheKit
import CacheKitMemory
@testable import CacheKitOpenAI
import Foundation
import Testing

/// An upstream that misbehaves on purpose (scripts/lib/fake-openai.py's fault modes): nothing it sends may end the
/// process, leak a key, or get a partial or wrong answer cached. Each test failed (or crashed the test process) before
/// the fix it names.
@Suite("Hostile upstream", .serialized, .enabled(if: FakeOpenAI.available, "needs CACHEKIT_TEST_OPENAI_URL (scripts/test starts the fake server)"))
struct HostileUpstreamTests {
    init() throws { try FakeOpenAI.post("/_reset", "{}") }

    func cache() throws -> MultiLayerCache { try FakeOpenAI.memoryCache() }

    func request(_ text: String, stream: Bool = false) -> ChatRequest {
        ChatRequest(model: "gpt-4o-mini", messages: [.user(text)], temperature: 0, stream: stream)
    }

    /// `Retry-After: inf` or `1e20` trapped in `Int64(seconds * 1000)`; now the wait is capped at
    /// `maximumRetryDelay` and the retry succeeds.
    @Test(arguments: ["inf", "1e20", "nan", "-5", "Wed, 21 Oct 2015 07:28:00 GMT"])
    func aRetryAfterThatDoesNotFitIsCappedNotATrap(_ header: String) async throws {
        try FakeOpenAI.post("/_control", #"{"mode":"429","count":1,"retry_after":"\#(header)"}"#)
        var configuration = FakeOpenAI.client().configuration
        configuration.maximumRetryDelay = .milliseconds(200)
        let started = ContinuousClock.now
        let response = try await OpenAIClient(configuration: configuration).complete(self.request("retry after \(header)"))
        #expect(response.text == "answer to: retry after \(header)")
        #expect(ContinuousClock.now - started < .seconds(5), "the wait was capped")
        #expect(OpenAIClient.retryAfterSeconds("inf") == nil && OpenAIClient.retryAfterSeconds("1e20") == 1e20)
    }

    /// An embeddings reply that repeats an index hit a force unwrap of the missing one.
    @Test func anEmbeddingsReplyRepeatingAnIndexIsAnError() async throws {
        try FakeOpenAI.post("/_control", #"{"mode":"duplicate_index","count":1}"#)
        await #expect(throws: OpenAIError.self) { _ = try await FakeOpenAI.client().embed(["one", "two"]) }
        let twice: [JSONValue] = [["index": 0, "embedding": [1, 0]], ["index": 0, "embedding": [0, 1]]]
        #expect(throws: OpenAIError.self) { _ = try OpenAIClient.orderedEmbeddings(twice, count: 2, dimension: 2) }
        let outside: [JSONValue] = [["index": 0, "embedding": [1, 0]], ["index": 7, "embedding": [0, 1]]]
        #expect(throws: OpenAIError.self) { _ = try OpenAIClient.orderedEmbeddings(outside, count: 2, dimension: 2) }
        let text: [JSONValue] = [["index": 0, "embedding": [1, "x"]]]
        #expect(throws: OpenAIError.self) { _ = try OpenAIClient.orderedEmbeddings(text, count: 1, dimension: 2) }
        let good: [JSONValue] = [["index": 1, "embedding": [0, 2]], ["index": 0, "embedding": [3, 0]]]
        #expect(try OpenAIClient.orderedEmbeddings(good, count: 2, dimension: 2) == [[1, 0], [0, 1]])
    }

    /// An SSE error event followed by `[DONE]` in the same read ended as a success: the partial answer was assembled,
    /// cached and replayed. Now the caller gets an error and nothing is cached, in one write or two.
    @Test(arguments: ["error_then_done", "error_then_done_split"])
    func aStreamThatCarriedAnErrorIsAnErrorAndNeverCached(_ mode: String) async throws {
        let cache = try self.cache()
        try FakeOpenAI.post("/_control", #"{"mode":"\#(mode)","count":1}"#)
        let request = self.request("a long answer that fails half way through please", stream: true)
        let stream = try await cache.streamingCompletion(for: request, upstream: FakeOpenAI.client())
        await #expect(throws: OpenAIError.self) { for try await _ in stream.chunks {} }
        #expect(try await cache.lookup(request).entry == nil, "the partial answer was cached")
        let again = try await cache.completion(for: self.request("a long answer that fails half way through please"), upstream: FakeOpenAI.client())
        #expect(again.outcome.source == .miss)
        #expect(again.response.text == "answer to: a long answer that fails half way through please")
    }

    /// A stream that ends with `[DONE]` but no finish reason is passed on to the caller, but never cached.
    @Test func aStreamWithoutAFinishReasonIsPassedOnButNotCached() async throws {
        let cache = try self.cache()
        try FakeOpenAI.post("/_control", #"{"mode":"no_finish","count":1}"#)
        let request = self.request("no finish reason", stream: true)
        let stream = try await cache.streamingCompletion(for: request, upstream: FakeOpenAI.client())
        var text = ""
        for try await chunk in stream.chunks { text += chunk.contentDelta ?? "" }
        #expect(text == "answer to: no finish reason")
        #expect(try await cache.lookup(request).entry == nil, "an answer without a finish reason was cached")
        #expect(ChatResponse(body: ["choices": [["index": 0, "message": ["role": "assistant", "content": "x"]]]]).uncacheableReason == "no finish reason")
    }

    /// Response bodies are bounded: a 5 MB answer to a client that accepts 1 MB is an error, not a 5 MB allocation,
    /// and an answer with thousands of headers is refused.
    @Test func oversizedResponsesAndHeadersAreRefused() async throws {
        var configuration = FakeOpenAI.client().configuration
        configuration.maximumResponseBytes = 1 << 20
        configuration.maximumRetries = 0
        let client = OpenAIClient(configuration: configuration)
        try FakeOpenAI.post("/_control", #"{"mode":"huge","count":1,"bytes":5000000}"#)
        do {
            _ = try await client.complete(self.request("huge"))
            Issue.record("a 5 MB body was accepted")
        } catch let error as OpenAIError {
            #expect(error.code == .invalidResponse && error.message.contains("larger than"), "\(error)")
        }
        try FakeOpenAI.post("/_control", #"{"mode":"huge_headers","count":1}"#)
        await #expect(throws: OpenAIError.self) { _ = try await client.complete(self.request("headers")) }
        #expect(try await client.complete(self.request("fine")).text == "answer to: fine", "the client still works")
    }

    /// OpenAI's 401 quotes the key's first and last characters; the caller never sees any of it.
    @Test func upstreamErrorsNeverRepeatTheKeyOrItsFragments() async throws {
        let key = "sk-bad-0123456789abcdefWXYZ"
        var configuration = FakeOpenAI.client().configuration
        configuration.apiKey = key
        do {
            _ = try await OpenAIClient(configuration: configuration).complete(self.request("who am i"))
            Issue.record("a refused key was accepted")
        } catch let error as OpenAIError {
            #expect(error.status == 401)
            #expect(error.message.contains("Incorrect API key provided"), "\(error.message)")
            for fragment in ["WXYZ", "sk-bad", "***"] { #expect(!error.message.contains(fragment), "\(error.message)") }
            #expect(!"\(error)".contains("WXYZ"))
        }
        let redacted = SecretRedaction.redact("key sk-proj-abc...wxyz1234 and 'sk-live_0123456789abcdef', plain words stay.", secrets: [])
        #expect(redacted == "key [redacted] and '[redacted]', plain words stay.")
    }

    /// The caller's numbers reach the upstream unchanged: an integer above 2^53 was rounded by the trip through
    /// `Double` (the key stays canonical).
    @Test func forwardedBodiesKeepTheCallersNumbers() throws {
        let body = #"{"model":"gpt-4o-mini","seed":9007199254740993,"temperature":0,"messages":[{"role":"user","content":"hi"}],"stream":true,"x":1.10}"#
        let request = try ChatRequest(json: Array(body.utf8))
        let plain = String(decoding: request.forwardedBytes(settingStream: false), as: UTF8.self)
        #expect(plain.contains("\"seed\":9007199254740993") && plain.contains("\"x\":1.10"), "\(plain)")
        #expect(!plain.contains("\"stream\""))
        let streamed = try JSONValue(parsing: request.forwardedBytes(settingStream: true))
        #expect(streamed["stream"] == true && streamed["stream_options"]?["include_usage"] == true)
        #expect(String(decoding: request.forwardedBytes(settingStream: true), as: UTF8.self).contains("9007199254740993"))
        var changed = request
        changed.model = "gpt-4o"
        #expect(String(decoding: changed.forwardedBytes(settingStream: false), as: UTF8.self).contains("\"model\":\"gpt-4o\""))
    }
}
