import CacheKit
import CacheKitMemory
import CacheKitOpenAI
import CacheKitTesting
import Foundation
import Logging
import Testing

/// The loopback OpenAI-compatible server that scripts/test starts (scripts/lib/fake-openai.py).
enum FakeOpenAI {
    static let url = ProcessInfo.processInfo.environment["CACHEKIT_TEST_OPENAI_URL"]
    static var available: Bool { url != nil }
    static let apiKey = "sk-test-SECRET-0123456789abcdef"

    static var root: String { String(url!.dropLast(3)) }

    @discardableResult
    static func post(_ path: String, _ body: String) throws -> String {
        try self.curl(["-s", "-X", "POST", root + path, "-d", body])
    }

    static func stats() throws -> [String: Int] {
        let text = try self.curl(["-s", root + "/_stats"])
        guard case .object(let members) = try JSONValue(parsing: text) else { return [:] }
        return members.compactMapValues(\.intValue)
    }

    static func curl(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    /// A cache with one memory layer, quiet logs.
    static func memoryCache() throws -> MultiLayerCache {
        var configuration = CacheConfiguration()
        configuration.layers = [.memory()]
        configuration.logger.logLevel = .critical
        return try MultiLayerCache(configuration: configuration)
    }

    static func client(logger: Logger = Logger(label: "test"), timeout: Duration = .seconds(10)) -> OpenAIClient {
        OpenAIClient(
            configuration: OpenAIClient.Configuration(
                baseURL: url!, apiKey: apiKey, requestTimeout: timeout, streamIdleTimeout: timeout, initialBackoff: .milliseconds(50),
                embeddingModel: "fake-embed", embeddingDimension: 8, sendsEmbeddingDimensions: true, embeddingBatchSize: 2
            ),
            logger: logger
        )
    }
}

/// Collects log lines, to check that secrets never reach them.
final class CapturingLogHandler: LogHandler, @unchecked Sendable {
    let lines = LockedState<[String]>([])
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }
    func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
        let all = self.metadata.merging(metadata ?? [:]) { $1 }
        self.lines.withLock { $0.append("\(level) \(message) \(all)") }
    }
}

@Suite("OpenAI client and streaming through the cache", .serialized, .enabled(if: FakeOpenAI.available, "needs CACHEKIT_TEST_OPENAI_URL (scripts/test starts the fake server)"))
struct OpenAIClientTests {
    init() throws { try FakeOpenAI.post("/_reset", "{}") }

    func cache() throws -> MultiLayerCache { try FakeOpenAI.memoryCache() }

    func request(_ text: String, tools: Bool = false, reasoning: Bool = false) -> ChatRequest {
        var request = ChatRequest(model: "gpt-4o-mini", messages: [.system("Be brief."), .user(text)], temperature: 0)
        if tools {
            request.tools = [["type": "function", "function": ["name": "lookup", "parameters": ["type": "object", "properties": [:]]]]]
            request.body["tool_choice"] = "required"
        }
        if reasoning { request.reasoningEffort = "low" }
        return request
    }

    func collect(_ stream: AsyncThrowingStream<ChatCompletionChunk, any Error>) async throws -> [ChatCompletionChunk] {
        var chunks: [ChatCompletionChunk] = []
        for try await chunk in stream { chunks.append(chunk) }
        return chunks
    }

    @Test func randomlyCancelledCallsNeverGetAnotherCallersAnswerAndThePoolRecovers() async throws {
        let client = FakeOpenAI.client()
        try FakeOpenAI.post("/_control", #"{"mode":"latency","latency_ms":40,"count":2000}"#)
        var generator = SeededGenerator(seed: 2026)
        let delays = (0..<1000).map { _ in Int.random(in: 0...5000, using: &generator) }
        let wrong = LockedState(0), answered = LockedState(0), cancelled = LockedState(0)
        await withTaskGroup(of: Void.self) { group in
            for i in 0..<1000 {
                let request = self.request("question \(i)")
                let call = Task { try await client.complete(request) }
                group.addTask {
                    // Every other call is cancelled at a random point: before, during or after its transfer.
                    if i % 2 == 0 {
                        try? await Task.sleep(for: .milliseconds(delays[i]))
                        call.cancel()
                    }
                    switch await call.result {
                    case .success(let response):
                        if response.text == "answer to: question \(i)" { answered.withLock { $0 += 1 } } else { wrong.withLock { $0 += 1 } }
                    case .failure:
                        cancelled.withLock { $0 += 1 }
                    }
                }
            }
        }
        try FakeOpenAI.post("/_reset", "{}")
        for i in 0..<20 {
            #expect(try await client.complete(self.request("after \(i)")).text == "answer to: after \(i)")
        }
        let counters = client.poolCounters
        print("libcurl cancellation: 1000 calls, \(cancelled.withLock { $0 }) cancelled, \(answered.withLock { $0 }) answered, \(wrong.withLock { $0 }) wrong; pool open \(counters.open), destroyed \(counters.destroyed), waiters \(counters.waiters)")
        #expect(wrong.withLock { $0 } == 0, "a caller received another caller's answer")
        #expect(cancelled.withLock { $0 } > 0 && answered.withLock { $0 } >= 500)
        #expect(counters.waiters == 0 && counters.open <= 8, "the pool is back to normal")
    }

    /// The upstream behind the TCP fault proxy: while it stalls or resets connections mid-answer, cached questions
    /// are all answered from the cache, uncached ones fail with a clear error within the client's timeout (nothing
    /// hangs, nothing partial is cached), and once the network heals every question gets its own answer.
    @Test func upstreamNetworkFaultsFailOnlyUncachedRequestsAndCacheNothingPartial() async throws {
        let proxy = try TCPFaultProxy(targetPort: try #require(URLComponents(string: FakeOpenAI.url!)?.port))
        defer { proxy.stop() }
        let client = OpenAIClient(
            configuration: OpenAIClient.Configuration(
                baseURL: "http://127.0.0.1:\(proxy.port)/v1", apiKey: FakeOpenAI.apiKey, requestTimeout: .milliseconds(500),
                streamIdleTimeout: .milliseconds(500), maximumRetries: 1, initialBackoff: .milliseconds(10)
            ),
            logger: Logger(label: "test")
        )
        let cache = try self.cache()
        for i in 0..<10 { _ = try await cache.completion(for: self.request("cached \(i)"), upstream: client) }
        var report: [String] = []
        for fault in [TCPFaultProxy.Fault.stall, .resetAfter(bytes: 40), .latency(.seconds(2))] {
            proxy.fault = fault
            var cachedFailures = 0, uncachedErrors = 0
            let started = ContinuousClock.now
            for i in 0..<10 {
                do {
                    let hit = try await cache.completion(for: self.request("cached \(i)"), upstream: client)
                    if hit.outcome.source != .hitL1 || hit.response.text != "answer to: cached \(i)" { cachedFailures += 1 }
                } catch {
                    cachedFailures += 1
                }
            }
            for i in 0..<3 {
                do {
                    _ = try await cache.completion(for: self.request("\(fault) \(i)"), upstream: client)
                    Issue.record("\(fault): an uncached request succeeded through a broken network")
                } catch {
                    uncachedErrors += 1
                }
            }
            let elapsed = ContinuousClock.now - started
            report.append("\(fault): cached 10/10 answered, uncached \(uncachedErrors)/3 clear errors in \(elapsed)")
            #expect(cachedFailures == 0, "\(fault): cached questions failed")
            #expect(uncachedErrors == 3)
            #expect(elapsed < .seconds(10), "\(fault): requests hung past their timeouts")
        }
        proxy.fault = .none
        for i in 0..<3 {
            let text = "\(TCPFaultProxy.Fault.resetAfter(bytes: 40)) \(i)"
            let healed = try await cache.completion(for: self.request(text), upstream: client)
            #expect(healed.outcome.source == .miss, "a failed answer was cached")
            #expect(healed.response.text == "answer to: \(text)")
        }
        print("upstream through the TCP fault proxy: " + report.joined(separator: "; ") + "; \(proxy.resetCount) connections reset")
        #expect(proxy.resetCount > 0)
    }

    @Test func identicalRequestsMakeOneUpstreamCallAndTheSecondIsServedFromL1() async throws {
        let cache = try self.cache()
        let client = FakeOpenAI.client()
        let first = try await cache.completion(for: self.request("capital of France?"), upstream: client)
        let second = try await cache.completion(for: self.request("capital of France?"), upstream: client)
        #expect(first.outcome.source == .miss)
        #expect(second.outcome.source == .hitL1)
        #expect(second.response == first.response)
        #expect(first.response.text == "answer to: capital of France?")
        #expect(first.response.usage?.promptTokens ?? 0 > 0)
        let stats = try FakeOpenAI.stats()
        #expect(stats["chat_calls"] == 1)
        #expect(stats["authorized_calls"] == 1, "the API key was not sent as a bearer token")
    }

    @Test func aStreamAfterANonStreamingCallIsReplayedFromCache() async throws {
        let cache = try self.cache()
        let client = FakeOpenAI.client()
        let original = try await cache.completion(for: self.request("tools please", tools: true, reasoning: true), upstream: client)
        var streaming = self.request("tools please", tools: true, reasoning: true)
        streaming.stream = true
        let replay = try await cache.streamingCompletion(for: streaming, upstream: client)
        #expect(replay.outcome.source == .hitL1)
        let assembled = try ChatResponse(assembling: try await self.collect(replay.chunks))
        #expect(assembled.messages.first?.toolCalls == original.response.messages.first?.toolCalls)
        #expect(assembled.messages.first?.fields["reasoning_content"] == original.response.messages.first?.fields["reasoning_content"])
        #expect(assembled.finishReasons == ["tool_calls"])
        #expect(assembled.usage == original.response.usage)
        #expect(try FakeOpenAI.stats()["chat_calls"] == 1)
    }

    @Test func aNonStreamingCallAfterAStreamIsServedFromCacheWithTheSameFields() async throws {
        let cache = try self.cache()
        let client = FakeOpenAI.client()
        var streaming = self.request("stream me", reasoning: true)
        streaming.stream = true
        let miss = try await cache.streamingCompletion(for: streaming, upstream: client)
        #expect(miss.outcome.source == .miss)
        let upstreamChunks = try await self.collect(miss.chunks)
        #expect(upstreamChunks.count > 3, "the upstream stream was not delivered chunk by chunk")
        let streamed = try ChatResponse(assembling: upstreamChunks)
        #expect(streamed.text == "answer to: stream me")
        let hit = try await cache.completion(for: self.request("stream me", reasoning: true), upstream: client)
        #expect(hit.outcome.source == .hitL1)
        #expect(hit.response.text == streamed.text)
        #expect(hit.response.messages.first?.fields["reasoning_content"] == "thinking about it")
        #expect(hit.response.usage == streamed.usage)
        #expect(hit.response.id == streamed.id)
        // And a streamed hit replays the same content and fields as the upstream stream produced.
        let replay = try await cache.streamingCompletion(for: streaming, upstream: client)
        let replayed = try ChatResponse(assembling: try await self.collect(replay.chunks))
        #expect(replay.outcome.source == .hitL1)
        #expect(replayed.body["choices"] == streamed.body["choices"])
        #expect(replayed.usage == streamed.usage)
        #expect(try FakeOpenAI.stats()["chat_calls"] == 1)
    }

    @Test func rateLimitWithRetryAfterIsRetriedAndSucceeds() async throws {
        try FakeOpenAI.post("/_control", #"{"mode":"429","count":1,"retry_after":1}"#)
        let response = try await FakeOpenAI.client().complete(self.request("retry me"))
        #expect(response.text == "answer to: retry me")
        #expect(try FakeOpenAI.stats()["chat_calls"] == 2)
    }

    @Test func serverErrorThenSuccess() async throws {
        try FakeOpenAI.post("/_control", #"{"mode":"500","count":2}"#)
        let response = try await FakeOpenAI.client().complete(self.request("flaky"))
        #expect(response.text == "answer to: flaky")
        #expect(try FakeOpenAI.stats()["chat_calls"] == 3)
    }

    @Test func clientErrorsAreNotRetriedAndCarryTheProviderDetails() async throws {
        try FakeOpenAI.post("/_control", #"{"mode":"400","count":1}"#)
        do {
            _ = try await FakeOpenAI.client().complete(self.request("bad"))
            Issue.record("a 400 was not an error")
        } catch let error as OpenAIError {
            #expect(error.status == 400)
            #expect(error.type == "invalid_request_error")
            #expect(error.message.contains("temperature"))
            #expect(error.requestID != nil)
            #expect(error.attempts == 1)
        }
        #expect(try FakeOpenAI.stats()["chat_calls"] == 1)
    }

    @Test func malformedJSONIsAClearErrorAndNothingIsCached() async throws {
        let cache = try self.cache()
        try FakeOpenAI.post("/_control", #"{"mode":"malformed","count":1}"#)
        do {
            _ = try await cache.completion(for: self.request("malformed"), upstream: FakeOpenAI.client())
            Issue.record("malformed JSON was accepted")
        } catch let error as OpenAIError {
            #expect(error.code == .invalidResponse)
            #expect(error.message.contains("invalid JSON"))
        }
        #expect(try await cache.completion(for: self.request("malformed"), upstream: FakeOpenAI.client()).outcome.source == .miss)
    }

    @Test func aTruncatedStreamIsAnErrorAndNothingIsCached() async throws {
        let cache = try self.cache()
        try FakeOpenAI.post("/_control", #"{"mode":"truncate","count":1}"#)
        var streaming = self.request("truncate this long answer please")
        streaming.stream = true
        let stream = try await cache.streamingCompletion(for: streaming, upstream: FakeOpenAI.client())
        await #expect(throws: (any Error).self) { _ = try await self.collect(stream.chunks) }
        #expect(try await cache.lookup(streaming).entry == nil, "an interrupted stream was cached")
    }

    @Test func aHangingServerTimesOut() async throws {
        try FakeOpenAI.post("/_control", #"{"mode":"hang","count":1,"seconds":5}"#)
        var configuration = FakeOpenAI.client(timeout: .seconds(1)).configuration
        configuration.maximumRetries = 0
        do {
            _ = try await OpenAIClient(configuration: configuration).complete(self.request("hang"))
            Issue.record("a hung request returned")
        } catch let error as OpenAIError {
            #expect(error.code == .timeout, "\(error)")
        }
    }

    @Test func aStreamWhoseReaderIsCancelledIsAbortedAndNotCached() async throws {
        let cache = try self.cache()
        try FakeOpenAI.post("/_control", #"{"mode":"slow","count":1,"delay_ms":100}"#)
        var streaming = self.request("a caller that is cancelled after the first chunk of a slow answer")
        streaming.stream = true
        let firstChunk = LockedState(false)
        let request = streaming
        let reader = Task { @Sendable in
            let stream = try await cache.streamingCompletion(for: request, upstream: FakeOpenAI.client())
            for try await _ in stream.chunks {
                firstChunk.withLock { $0 = true }
            }
        }
        while !firstChunk.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(10)) }
        reader.cancel()
        _ = await reader.result
        // The server notices the aborted transfer when it writes its next chunk.
        var aborted = 0
        for _ in 0..<100 where aborted == 0 {
            try await Task.sleep(for: .milliseconds(50))
            aborted = try FakeOpenAI.stats()["aborted_streams"] ?? 0
        }
        #expect(aborted == 1, "the transfer was not aborted")
        #expect(try await cache.lookup(streaming).entry == nil, "a cancelled stream was cached")
    }

    @Test func theAPIKeyNeverAppearsInLogsOrErrors() async throws {
        let handler = CapturingLogHandler()
        let logger = Logger(label: "capture") { _ in handler }
        try FakeOpenAI.post("/_control", #"{"mode":"429","count":1,"retry_after":0}"#)
        try FakeOpenAI.post("/_control", #"{"mode":"400","count":1}"#)
        var errors: [String] = []
        do { _ = try await FakeOpenAI.client(logger: logger).complete(self.request("k")) } catch { errors.append("\(error)") }
        #expect(!errors.isEmpty)
        #expect(handler.lines.withLock { $0.count } > 0, "the retry was not logged")
        let all = handler.lines.withLock { $0.joined(separator: "\n") } + errors.joined() + FakeOpenAI.client().configuration.description
        #expect(!all.contains("SECRET"), "the API key leaked: \(all)")
    }

    @Test func embeddingsAreBatchedAndCachedByModelAndText() async throws {
        let client = FakeOpenAI.client()
        let texts = ["one", "two", "three", "four", "five"]
        let vectors = try await client.embed(texts)
        #expect(vectors.count == 5)
        #expect(vectors.allSatisfy { $0.count == 8 && abs($0.reduce(0) { $0 + $1 * $1 } - 1) < 1e-4 })
        #expect(try FakeOpenAI.stats()["embedding_calls"] == 3, "5 texts in batches of 2 are 3 requests")
        let cached = CachingEmbeddingProvider(base: client, backend: MemoryCacheBackend())
        let first = try await cached.embed(["alpha", "beta"])
        let second = try await cached.embed(["beta", "alpha", "gamma"])
        #expect(second[0] == first[1] && second[1] == first[0])
        #expect(try FakeOpenAI.stats()["embedding_calls"] == 5, "cached texts were embedded again")
    }
}
