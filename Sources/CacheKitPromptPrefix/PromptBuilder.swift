public import CacheKit

/// Lays a chat request out static-first, so requests that share instructions, tools and examples share the
/// longest possible prompt prefix, which is what providers cache (OpenAI from 1,024 tokens in 128-token steps;
/// Anthropic at `cache_control` breakpoints).
///
/// Order: the system instructions, the fixed few-shot examples, then the dynamic context (retrieved documents,
/// the user's profile, today's date), the conversation so far, and the user's message. Tools are sorted by name and
/// every JSON value is written canonically (RFC 8785), so the static part is byte-for-byte identical whenever its
/// inputs are equal. Its fingerprint is the SHA-256 of exactly those canonical bytes: equal fingerprints mean equal
/// static prefixes, and a changed fingerprint names the input that changed it.
public struct PromptBuilder: Sendable {
    public var model: String
    /// Instruction blocks, joined by blank lines into the first system message.
    public var instructions: [String]
    /// Tool definitions (OpenAI `tools` entries); sent sorted by function name.
    public var tools: [JSONValue]
    /// Fixed few-shot example turns.
    public var examples: [ChatMessage]
    /// Per-request context blocks (documents, profile, dates); placed after everything static.
    public var context: [String]
    /// Earlier turns of this conversation.
    public var history: [ChatMessage]
    /// Other request members (`temperature`, `max_tokens`, …); not part of the prompt prefix.
    public var parameters: [String: JSONValue]

    public init(
        model: String, instructions: [String], tools: [JSONValue] = [], examples: [ChatMessage] = [],
        context: [String] = [], history: [ChatMessage] = [], parameters: [String: JSONValue] = [:]
    ) {
        self.model = model
        self.instructions = instructions
        self.tools = tools
        self.examples = examples
        self.context = context
        self.history = history
        self.parameters = parameters
    }

    /// The request for `userMessage`, with its static prefix described.
    public func build(userMessage: String) -> PromptLayout {
        var messages: [ChatMessage] = []
        if !self.instructions.isEmpty { messages.append(.system(self.instructions.joined(separator: "\n\n"))) }
        messages += self.examples
        let staticCount = messages.count
        if !self.context.isEmpty { messages.append(.system(self.context.joined(separator: "\n\n"))) }
        messages += self.history
        messages.append(.user(userMessage))
        var request = ChatRequest(model: self.model, messages: messages)
        for (name, value) in self.parameters where name != "model" && name != "messages" && name != "tools" {
            request[name] = value
        }
        let tools = Self.sortedTools(self.tools)
        if !tools.isEmpty { request["tools"] = .array(tools) }
        let prefix = StaticPrefix(model: self.model, tools: tools, messages: Array(messages.prefix(staticCount)))
        return PromptLayout(request: request, staticPrefix: prefix)
    }

    /// A tool's name: OpenAI's `function.name`, or a top-level `name` (Anthropic's shape); empty when neither.
    static func toolName(_ tool: JSONValue) -> String { tool["function"]?["name"]?.stringValue ?? tool["name"]?.stringValue ?? "" }

    /// Tools in a stable order: by function name, then by their canonical bytes.
    public static func sortedTools(_ tools: [JSONValue]) -> [JSONValue] {
        tools.map { (Self.toolName($0), $0.canonicalBytes(), $0) }
            .sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1.lexicographicallyPrecedes($1.1) }
            .map(\.2)
    }
}

/// A built request and the static part at its head.
public struct PromptLayout: Sendable {
    public var request: ChatRequest
    public var staticPrefix: StaticPrefix
}

/// The static head of a prompt: the model, the tools and the first `messages.count` messages.
public struct StaticPrefix: Sendable, Hashable {
    public var model: String
    public var tools: [JSONValue]
    public var messages: [ChatMessage]

    public init(model: String, tools: [JSONValue], messages: [ChatMessage]) {
        self.model = model
        self.tools = tools
        self.messages = messages
    }

    /// The canonical bytes the fingerprint covers: `{"messages":[…],"model":…,"tools":[…]}` in RFC 8785 form.
    public var canonicalBytes: [UInt8] {
        JSONValue.object([
            "model": .string(self.model), "tools": .array(self.tools), "messages": .array(self.messages.map { .object($0.fields) }),
        ]).canonicalBytes()
    }

    /// SHA-256 of `canonicalBytes`, hex.
    public var fingerprint: String { Digest256(hashing: self.canonicalBytes).hex }

    /// The estimated tokens of the static part (tools and messages as the provider renders them, roughly).
    public func estimatedTokens(counter: any TokenCounter = EstimatingTokenCounter()) -> Int {
        let tools = self.tools.reduce(0) { $0 + counter.count(String(decoding: $1.canonicalBytes(), as: UTF8.self)) }
        return tools + self.messages.reduce(0) { $0 + 4 + counter.count($1.text ?? "") }
    }
}
