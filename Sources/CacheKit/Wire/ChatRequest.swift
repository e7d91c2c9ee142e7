/// An OpenAI chat-completions request body.
///
/// The body is held as JSON members, so every field, including ones CacheKit has never heard of, takes part in
/// the key and survives a round trip; the properties below are typed views of the known fields. Decoding checks
/// the known fields' types and refuses a body that the upstream would refuse for its shape.
public struct ChatRequest: Sendable, Hashable {
    /// Every member of the request body.
    public var body: [String: JSONValue] {
        didSet { self.received = nil }
    }

    /// The bytes this request was parsed from, while `body` is unchanged: what is forwarded upstream, so values the
    /// caller wrote are sent as written (an integer above 2^53, such as a `seed`, is not rounded by the trip through
    /// `Double`). The key is always computed from `body`'s canonical form.
    private var received: [UInt8]?

    public static func == (lhs: ChatRequest, rhs: ChatRequest) -> Bool { lhs.body == rhs.body }
    public func hash(into hasher: inout Hasher) { hasher.combine(self.body) }

    /// Creates a request from its members, checking the known fields.
    ///
    /// - Throws: `CacheError` with code `.invalidRequest` naming the field that is wrong.
    public init(body: [String: JSONValue]) throws(CacheError) {
        try Self.validate(body)
        self.body = body
    }

    /// Creates a request with the common fields.
    public init(
        model: String,
        messages: [ChatMessage],
        temperature: Double? = nil,
        maxTokens: Int? = nil,
        seed: Int? = nil,
        stream: Bool = false
    ) {
        self.body = ["model": .string(model), "messages": .array(messages.map { .object($0.fields) })]
        if let temperature { self.body["temperature"] = .number(temperature) }
        if let maxTokens { self.body["max_tokens"] = .number(Double(maxTokens)) }
        if let seed { self.body["seed"] = .number(Double(seed)) }
        if stream { self.body["stream"] = .bool(true) }
    }

    /// Parses a JSON request body.
    ///
    /// - Throws: `CacheError` `.invalidRequest` for malformed JSON (with the byte offset) or a wrong field.
    public init(json bytes: some Collection<UInt8>) throws(CacheError) {
        let value: JSONValue
        do {
            value = try JSONValue(parsing: bytes)
        } catch {
            throw CacheError(.invalidRequest, "request body: \(error.description)", underlying: error)
        }
        guard case .object(let members) = value else {
            throw CacheError(.invalidRequest, "request body must be a JSON object, not \(value.typeName)")
        }
        try self.init(body: members)
        self.received = Array(bytes)
    }

    /// The body to send upstream, with `stream` set as asked (and `stream_options.include_usage` added to a streamed
    /// request that has no `stream_options`). A request parsed from bytes keeps every other member's bytes exactly
    /// as received; one built or changed in code is sent in canonical form.
    public func forwardedBytes(settingStream stream: Bool) -> [UInt8] {
        var replaced: [String: JSONValue] = [:]
        if stream {
            replaced["stream"] = .bool(true)
            if self.body["stream_options"] == nil { replaced["stream_options"] = ["include_usage": true] }
        }
        let removed: Set<String> = stream ? ["stream"] : ["stream", "stream_options"]
        guard let received = self.received, let spans = JSONParser.memberSpans(of: received) else {
            var body = self.body
            for name in removed { body[name] = nil }
            for (name, value) in replaced { body[name] = value }
            return JSONValue.object(body).canonicalBytes()
        }
        var out: [UInt8] = [UInt8(ascii: "{")]
        out.reserveCapacity(received.count + 64)
        for (name, span) in spans where !removed.contains(name) && replaced[name] == nil {
            if out.count > 1 { out.append(UInt8(ascii: ",")) }
            out += received[span]
        }
        for (name, value) in replaced.sorted(by: { $0.key < $1.key }) {
            if out.count > 1 { out.append(UInt8(ascii: ",")) }
            out += JSONValue.string(name).canonicalBytes()
            out.append(UInt8(ascii: ":"))
            out += value.canonicalBytes()
        }
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// The canonical JSON bytes of the body (RFC 8785; valid JSON for any upstream).
    public func jsonBytes() -> [UInt8] { JSONValue.object(self.body).canonicalBytes() }

    /// The member named `field`.
    public subscript(field: String) -> JSONValue? {
        get { self.body[field] }
        set { self.body[field] = newValue }
    }

    /// `model`.
    public var model: String {
        get { self.body["model"]?.stringValue ?? "" }
        set { self.body["model"] = .string(newValue) }
    }

    /// `messages`, as typed views.
    public var messages: [ChatMessage] {
        get { (self.body["messages"]?.arrayValue ?? []).compactMap { $0.objectValue.map(ChatMessage.init(fields:)) } }
        set { self.body["messages"] = .array(newValue.map { .object($0.fields) }) }
    }

    /// `temperature`; `nil` when absent (the OpenAI default is 1, which is not deterministic).
    public var temperature: Double? {
        get { self.body["temperature"]?.doubleValue }
        set { self.body["temperature"] = newValue.map(JSONValue.number) }
    }

    /// `n`, the number of choices; `nil` when absent (the default is 1).
    public var n: Int? {
        get { self.body["n"]?.intValue }
        set { self.body["n"] = newValue.map { .number(Double($0)) } }
    }

    /// `seed`.
    public var seed: Int? {
        get { self.body["seed"]?.intValue }
        set { self.body["seed"] = newValue.map { .number(Double($0)) } }
    }

    /// `stream`: whether the caller asked for Server-Sent Events. A transport field: it is not part of the key.
    public var stream: Bool {
        get { self.body["stream"]?.boolValue ?? false }
        set { self.body["stream"] = newValue ? .bool(true) : nil }
    }

    /// `max_completion_tokens`, or the older `max_tokens`.
    public var maxTokens: Int? {
        self.body["max_completion_tokens"]?.intValue ?? self.body["max_tokens"]?.intValue
    }

    /// `tools`.
    public var tools: [JSONValue]? {
        get { self.body["tools"]?.arrayValue }
        set { self.body["tools"] = newValue.map(JSONValue.array) }
    }

    /// `response_format`.
    public var responseFormat: JSONValue? {
        get { self.body["response_format"] }
        set { self.body["response_format"] = newValue }
    }

    /// `reasoning_effort`.
    public var reasoningEffort: String? {
        get { self.body["reasoning_effort"]?.stringValue }
        set { self.body["reasoning_effort"] = newValue.map(JSONValue.string) }
    }

    /// The text of the last user message (string content, or its text parts joined by newlines), if any.
    public var lastUserText: String? {
        guard let index = self.lastUserMessageIndex, let messages = self.body["messages"]?.arrayValue,
            let fields = messages[index].objectValue
        else { return nil }
        return ChatMessage(fields: fields).text
    }

    /// The index of the last message whose role is `user`, if any.
    public var lastUserMessageIndex: Int? {
        guard let messages = self.body["messages"]?.arrayValue else { return nil }
        return messages.lastIndex { $0["role"]?.stringValue == "user" }
    }

    static func validate(_ body: [String: JSONValue]) throws(CacheError) {
        guard let model = body["model"] else { throw CacheError(.invalidRequest, "request body has no 'model'") }
        guard model.stringValue != nil else {
            throw CacheError(.invalidRequest, "'model' must be a string, not \(model.typeName)")
        }
        guard let messages = body["messages"] else { throw CacheError(.invalidRequest, "request body has no 'messages'") }
        guard let list = messages.arrayValue else {
            throw CacheError(.invalidRequest, "'messages' must be an array, not \(messages.typeName)")
        }
        guard !list.isEmpty else { throw CacheError(.invalidRequest, "'messages' must not be empty") }
        for (index, message) in list.enumerated() {
            guard let fields = message.objectValue else {
                throw CacheError(.invalidRequest, "messages[\(index)] must be an object, not \(message.typeName)")
            }
            guard fields["role"]?.stringValue != nil else {
                throw CacheError(.invalidRequest, "messages[\(index)] needs a string 'role'")
            }
            if let content = fields["content"], content.stringValue == nil, content.arrayValue == nil, !content.isNull {
                throw CacheError(.invalidRequest, "messages[\(index)].content must be a string, an array or null")
            }
        }
        func number(_ name: String, _ range: ClosedRange<Double>? = nil, integer: Bool = false) throws(CacheError) {
            guard let value = body[name], !value.isNull else { return }
            guard let number = value.doubleValue else {
                throw CacheError(.invalidRequest, "'\(name)' must be a number, not \(value.typeName)")
            }
            if integer, number.rounded(.towardZero) != number {
                throw CacheError(.invalidRequest, "'\(name)' must be an integer")
            }
            if let range, !range.contains(number) {
                throw CacheError(.invalidRequest, "'\(name)' must be in \(range.lowerBound)...\(range.upperBound)")
            }
        }
        try number("temperature", 0...2)
        try number("top_p", 0...1)
        try number("n", 1...128, integer: true)
        try number("max_tokens", 0...Double(Int32.max), integer: true)
        try number("max_completion_tokens", 0...Double(Int32.max), integer: true)
        try number("seed", integer: true)
        if let stream = body["stream"], stream.boolValue == nil, !stream.isNull {
            throw CacheError(.invalidRequest, "'stream' must be a boolean, not \(stream.typeName)")
        }
    }
}

extension ChatRequest: Codable {
    public init(from decoder: any Decoder) throws {
        let value = try JSONValue(from: decoder)
        guard case .object(let members) = value else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "request body must be an object"))
        }
        try self.init(body: members)
    }

    public func encode(to encoder: any Encoder) throws {
        try JSONValue.object(self.body).encode(to: encoder)
    }
}
