/// Token counts of one completion, as the provider reported them.
public struct TokenUsage: Sendable, Hashable {
    /// Input tokens.
    public var promptTokens: Int
    /// Output tokens.
    public var completionTokens: Int
    /// Input tokens the provider served from its own prompt cache (`prompt_tokens_details.cached_tokens`).
    public var cachedPromptTokens: Int
    /// Reasoning tokens (`completion_tokens_details.reasoning_tokens`).
    public var reasoningTokens: Int

    public init(promptTokens: Int, completionTokens: Int, cachedPromptTokens: Int = 0, reasoningTokens: Int = 0) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.cachedPromptTokens = cachedPromptTokens
        self.reasoningTokens = reasoningTokens
    }

    /// Reads an OpenAI `usage` object.
    ///
    /// Counts come from the upstream: a negative or absurd one is clamped to `0...maximumCount`, so sums and prices
    /// computed from them can never overflow.
    public init?(json: JSONValue?) {
        guard let json, json.objectValue != nil else { return nil }
        func count(_ value: JSONValue?) -> Int { min(max(value?.intValue ?? 0, 0), Self.maximumCount) }
        self.promptTokens = count(json["prompt_tokens"])
        self.completionTokens = count(json["completion_tokens"])
        self.cachedPromptTokens = count(json["prompt_tokens_details"]?["cached_tokens"])
        self.reasoningTokens = count(json["completion_tokens_details"]?["reasoning_tokens"])
    }

    /// The largest token count read from a response or a cache entry: 2^32, far above any real request, and small
    /// enough that billions of them still add up without overflow.
    public static let maximumCount = 1 << 32

    /// Input plus output tokens (saturating).
    public var totalTokens: Int {
        let (sum, overflow) = self.promptTokens.addingReportingOverflow(self.completionTokens)
        return overflow ? .max : sum
    }
}

/// An OpenAI chat-completions response body, held as JSON members with typed views of the known fields.
public struct ChatResponse: Sendable, Hashable {
    /// Every member of the response body.
    public var body: [String: JSONValue]

    /// Wraps response members as they are.
    public init(body: [String: JSONValue]) { self.body = body }

    /// A response with one assistant message, as a provider would send it.
    public init(id: String, model: String, created: Int, content: String, finishReason: String = "stop", usage: TokenUsage? = nil) {
        self.body = [
            "id": .string(id), "object": "chat.completion", "created": .number(Double(created)), "model": .string(model),
            "choices": [
                [
                    "index": 0, "message": ["role": "assistant", "content": .string(content)],
                    "finish_reason": .string(finishReason),
                ]
            ],
        ]
        if let usage {
            self.body["usage"] = [
                "prompt_tokens": .number(Double(usage.promptTokens)),
                "completion_tokens": .number(Double(usage.completionTokens)),
                "total_tokens": .number(Double(usage.totalTokens)),
            ]
        }
    }

    /// Parses a JSON response body.
    ///
    /// - Throws: `CacheError` `.invalidResponse` for malformed JSON or a body that is not an object.
    public init(json bytes: some Collection<UInt8>) throws(CacheError) {
        let value: JSONValue
        do {
            value = try JSONValue(parsing: bytes)
        } catch {
            throw CacheError(.invalidResponse, "response body: \(error.description)", underlying: error)
        }
        guard case .object(let members) = value else {
            throw CacheError(.invalidResponse, "response body must be a JSON object, not \(value.typeName)")
        }
        self.body = members
    }

    /// The canonical JSON bytes of the body.
    public func jsonBytes() -> [UInt8] { JSONValue.object(self.body).canonicalBytes() }

    /// `id`.
    public var id: String { self.body["id"]?.stringValue ?? "" }
    /// `model`.
    public var model: String { self.body["model"]?.stringValue ?? "" }
    /// `created`, seconds since 1970.
    public var created: Int { self.body["created"]?.intValue ?? 0 }

    /// `choices[*].message`.
    public var messages: [ChatMessage] {
        (self.body["choices"]?.arrayValue ?? []).compactMap { $0["message"]?.objectValue.map(ChatMessage.init(fields:)) }
    }

    /// `choices[*].finish_reason`.
    public var finishReasons: [String] {
        (self.body["choices"]?.arrayValue ?? []).compactMap { $0["finish_reason"]?.stringValue }
    }

    /// The first choice's text.
    public var text: String? { self.messages.first?.text }

    /// `usage`.
    public var usage: TokenUsage? { TokenUsage(json: self.body["usage"]) }

    /// Why this response must not be cached, or `nil` if it may be: an `error` member, no choices, a choice without
    /// a finish reason (truncated), a refusal or a content-filter stop. Errors and refusals are never cached.
    public var uncacheableReason: String? {
        if self.body["error"] != nil { return "error" }
        guard let choices = self.body["choices"]?.arrayValue, !choices.isEmpty else { return "no choices" }
        for choice in choices {
            // An answer without a finish reason was cut off (a stream that ended early): passed on, never cached.
            guard choice["finish_reason"]?.stringValue != nil else { return "no finish reason" }
            if choice["finish_reason"]?.stringValue == "content_filter" { return "content filter" }
            if let refusal = choice["message"]?["refusal"], !refusal.isNull { return "refusal" }
        }
        return nil
    }
}

extension ChatResponse: Codable {
    public init(from decoder: any Decoder) throws {
        let value = try JSONValue(from: decoder)
        guard case .object(let members) = value else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "response body must be an object"))
        }
        self.body = members
    }

    public func encode(to encoder: any Encoder) throws {
        try JSONValue.object(self.body).encode(to: encoder)
    }
}
