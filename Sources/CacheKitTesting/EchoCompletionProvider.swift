public import CacheKit

/// An in-process `CompletionProvider` for unit tests: answers deterministically (`answer to: <last user text>`),
/// counts calls, and can add latency or fail. Integration tests and the demo use the loopback HTTP server instead.
public final class EchoCompletionProvider: CompletionProvider {
    private struct State {
        var calls = 0
        var latency: Duration = .zero
        var failuresLeft = 0
        var responseOverride: ChatResponse?
    }
    private let state = LockedState(State())

    public init(latency: Duration = .zero) {
        self.state.withLock { $0.latency = latency }
    }

    /// Calls received so far.
    public var calls: Int { self.state.withLock { $0.calls } }

    /// Sets the latency of each call.
    public func setLatency(_ latency: Duration) { self.state.withLock { $0.latency = latency } }

    /// Makes the next `count` calls throw `CacheError` `.upstreamFailed`.
    public func failNext(_ count: Int) { self.state.withLock { $0.failuresLeft = count } }

    /// Answers every call with `response` (for refusals, errors); `nil` restores the echo.
    public func respond(with response: ChatResponse?) { self.state.withLock { $0.responseOverride = response } }

    /// The answer text for a request.
    public static func answer(for request: ChatRequest) -> String {
        "answer to: " + (request.messages.last { $0.role == "user" }?.text ?? "")
    }

    public func complete(_ request: ChatRequest) async throws -> ChatResponse {
        let (latency, fail, override, number) = self.state.withLock { state in
            state.calls += 1
            let fail = state.failuresLeft > 0
            if fail { state.failuresLeft -= 1 }
            return (state.latency, fail, state.responseOverride, state.calls)
        }
        if latency > .zero { try await Task.sleep(for: latency) }
        if fail { throw CacheError(.upstreamFailed, "injected upstream failure") }
        if let override { return override }
        let text = Self.answer(for: request)
        return ChatResponse(
            id: "chatcmpl-echo-\(number)", model: request.model, created: 1_735_689_600, content: text,
            usage: TokenUsage(promptTokens: 20 + text.utf8.count / 4, completionTokens: 10 + text.utf8.count / 4)
        )
    }
}
