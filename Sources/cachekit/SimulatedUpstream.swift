import CacheKit

/// The upstream model of the demo and of `replay` without `--upstream`: answers each request with its workload
/// label after a latency that grows with the answer's length, as a real model's does, and counts its calls.
final class SimulatedUpstream: CompletionProvider {
    private let labels: [String: String]
    private let baseLatency: Duration
    private let perTokenLatency: Duration
    private let calls = LockedState(0)

    /// - Parameters:
    ///   - labels: the label to answer for each last-user-message text.
    ///   - baseLatency: time to first token.
    ///   - perTokenLatency: time per output token.
    init(labels: [String: String], baseLatency: Duration = .milliseconds(60), perTokenLatency: Duration = .microseconds(800)) {
        self.labels = labels
        self.baseLatency = baseLatency
        self.perTokenLatency = perTokenLatency
    }

    var callCount: Int { self.calls.withLock { $0 } }

    func complete(_ request: ChatRequest) async throws -> ChatResponse {
        let number = self.calls.withLock { count in
            count += 1
            return count
        }
        let question = request.messages.last { $0.role == "user" }?.text ?? ""
        let label = self.labels[question] ?? "unknown"
        let promptTokens = max(1, request.messages.reduce(0) { $0 + ($1.text?.utf8.count ?? 0) } / 4)
        let completionTokens = 60 + label.utf8.count % 40
        try await Task.sleep(for: self.baseLatency + self.perTokenLatency * completionTokens)
        return ChatResponse(
            id: "chatcmpl-sim-\(number)", model: request.model, created: 1_767_225_600, content: label,
            usage: TokenUsage(promptTokens: promptTokens, completionTokens: completionTokens)
        )
    }
}
