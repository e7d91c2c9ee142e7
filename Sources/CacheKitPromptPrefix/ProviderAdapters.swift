public import CacheKit

/// OpenAI caches prompt prefixes automatically; `prompt_cache_key` routes requests with the same static part to
/// the same cache shard, which raises the hit rate when many prompts are in flight.
public enum OpenAIPromptCache {
    /// Sets `prompt_cache_key` to a key derived from the static prefix's fingerprint (and `namespace`, to keep
    /// tenants or products apart when they share a prompt).
    public static func apply(to request: inout ChatRequest, prefix: StaticPrefix, namespace: String? = nil) {
        request["prompt_cache_key"] = .string(self.key(for: prefix, namespace: namespace))
    }

    /// `ck-<namespace>-<32 hex digits of the fingerprint>`.
    public static func key(for prefix: StaticPrefix, namespace: String? = nil) -> String {
        "ck-" + (namespace.map { $0 + "-" } ?? "") + prefix.fingerprint.prefix(32)
    }
}

/// Anthropic caches up to explicit `cache_control` breakpoints (at most four per request). This writes a Messages
/// API body from a `PromptLayout` with breakpoints on the last static blocks: the last tool, the system prompt and
/// the last few-shot example, so everything before the dynamic context is cached.
public enum AnthropicPromptCache {
    public static let maximumBreakpoints = 4

    /// The Messages API body for `layout` (OpenAI-style tools are converted to Anthropic's `name` /
    /// `description` / `input_schema`).
    public static func messagesBody(for layout: PromptLayout, maxTokens: Int) -> JSONValue {
        let ephemeral: JSONValue = ["type": "ephemeral"]
        var body: [String: JSONValue] = ["model": .string(layout.staticPrefix.model), "max_tokens": .number(Double(maxTokens))]
        var breakpoints = 0
        // Tools: the breakpoint on the last one caches all of them.
        var tools: [JSONValue] = layout.staticPrefix.tools.map { tool in
            let function = tool["function"] ?? tool
            var converted: [String: JSONValue] = ["name": function["name"] ?? .string("")]
            if let description = function["description"] { converted["description"] = description }
            converted["input_schema"] = function["parameters"] ?? ["type": "object"]
            return .object(converted)
        }
        if var last = tools.last?.objectValue {
            last["cache_control"] = ephemeral
            tools[tools.count - 1] = .object(last)
            breakpoints += 1
        }
        if !tools.isEmpty { body["tools"] = .array(tools) }
        // System: the static system message(s) as one block with a breakpoint; dynamic system text after it.
        let staticMessages = layout.staticPrefix.messages
        let messages = layout.request.messages
        var system: [JSONValue] = staticMessages.filter { $0.role == "system" }.map { ["type": "text", "text": .string($0.text ?? "")] }
        if var last = system.last?.objectValue {
            last["cache_control"] = ephemeral
            system[system.count - 1] = .object(last)
            breakpoints += 1
        }
        let dynamic = messages.dropFirst(staticMessages.count)
        system += dynamic.filter { $0.role == "system" }.map { ["type": "text", "text": .string($0.text ?? "")] }
        if !system.isEmpty { body["system"] = .array(system) }
        // Conversation: few-shot examples (static), then history and the user's message.
        var turns: [JSONValue] = []
        let examples = staticMessages.filter { $0.role != "system" }
        for (index, message) in examples.enumerated() {
            var block: [String: JSONValue] = ["type": "text", "text": .string(message.text ?? "")]
            if index == examples.count - 1, breakpoints < Self.maximumBreakpoints {
                block["cache_control"] = ephemeral
                breakpoints += 1
            }
            turns.append(["role": .string(message.role), "content": [.object(block)]])
        }
        for message in dynamic where message.role != "system" {
            turns.append(["role": .string(message.role), "content": [["type": "text", "text": .string(message.text ?? "")]]])
        }
        body["messages"] = .array(turns)
        return .object(body)
    }

    /// The number of `cache_control` breakpoints in a Messages API body.
    public static func breakpoints(in body: JSONValue) -> Int {
        switch body {
        case .object(let members): (members["cache_control"] != nil ? 1 : 0) + members.values.reduce(0) { $0 + breakpoints(in: $1) }
        case .array(let elements): elements.reduce(0) { $0 + breakpoints(in: $1) }
        default: 0
        }
    }
}
