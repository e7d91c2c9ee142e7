/// One Server-Sent Events chunk of a streamed chat completion (`object: chat.completion.chunk`).
public struct ChatCompletionChunk: Sendable, Hashable {
    /// Every member of the chunk.
    public var body: [String: JSONValue]

    /// Wraps chunk members as they are.
    public init(body: [String: JSONValue]) { self.body = body }

    /// Parses the JSON of one `data:` line.
    public init(json bytes: some Collection<UInt8>) throws(CacheError) {
        let value: JSONValue
        do {
            value = try JSONValue(parsing: bytes)
        } catch {
            throw CacheError(.invalidResponse, "stream chunk: \(error.description)", underlying: error)
        }
        guard case .object(let members) = value else {
            throw CacheError(.invalidResponse, "stream chunk must be a JSON object, not \(value.typeName)")
        }
        self.body = members
    }

    /// The canonical JSON bytes of the chunk.
    public func jsonBytes() -> [UInt8] { JSONValue.object(self.body).canonicalBytes() }

    /// The text delta of the first choice, if any.
    public var contentDelta: String? { self.body["choices"]?[0]?["delta"]?["content"]?.stringValue }
}

extension ChatResponse {
    /// The response replayed as a stream: per choice a role chunk, a chunk with every delta field (content,
    /// reasoning, refusal, tool calls with their arguments), a finish chunk, then a usage chunk, each carrying the
    /// response's id, model, creation time and system fingerprint. Assembling these chunks gives back this response.
    public func streamChunks() -> [ChatCompletionChunk] {
        var header: [String: JSONValue] = ["object": "chat.completion.chunk"]
        for name in ["id", "created", "model", "system_fingerprint", "service_tier"] {
            if let value = self.body[name] { header[name] = value }
        }
        func chunk(_ choice: JSONValue?) -> ChatCompletionChunk {
            var body = header
            body["choices"] = .array(choice.map { [$0] } ?? [])
            return ChatCompletionChunk(body: body)
        }
        var chunks: [ChatCompletionChunk] = []
        for (position, choice) in (self.body["choices"]?.arrayValue ?? []).enumerated() {
            let index = choice["index"] ?? .number(Double(position))
            var message = choice["message"]?.objectValue ?? [:]
            let role = message.removeValue(forKey: "role") ?? "assistant"
            chunks.append(chunk(["index": index, "delta": ["role": role], "finish_reason": nil]))
            if let calls = message["tool_calls"]?.arrayValue {
                message["tool_calls"] = .array(
                    calls.enumerated().map { offset, call in
                        var call = call.objectValue ?? [:]
                        if call["index"] == nil { call["index"] = .number(Double(offset)) }
                        return .object(call)
                    }
                )
            }
            message = message.filter { !$0.value.isNull }
            if !message.isEmpty {
                chunks.append(chunk(["index": index, "delta": .object(message), "finish_reason": nil]))
            }
            var finish: [String: JSONValue] = ["index": index, "delta": [:], "finish_reason": choice["finish_reason"] ?? nil]
            if let logprobs = choice["logprobs"], !logprobs.isNull { finish["logprobs"] = logprobs }
            chunks.append(chunk(.object(finish)))
        }
        if let usage = self.body["usage"] {
            var last = chunk(nil)
            last.body["usage"] = usage
            chunks.append(last)
        }
        return chunks
    }

    /// Assembles streamed chunks into one response: string deltas concatenated, tool-call deltas merged by index
    /// (arguments concatenated), finish reasons and usage kept.
    ///
    /// - Throws: `CacheError` `.invalidResponse` if there are no chunks.
    public init(assembling chunks: [ChatCompletionChunk]) throws(CacheError) {
        guard let first = chunks.first else { throw CacheError(.invalidResponse, "a stream with no chunks") }
        var body: [String: JSONValue] = ["object": "chat.completion"]
        for name in ["id", "created", "model", "system_fingerprint", "service_tier"] {
            if let value = first.body[name] { body[name] = value }
        }
        var messages: [Int: [String: JSONValue]] = [:]
        var toolCalls: [Int: [Int: [String: JSONValue]]] = [:]
        var finishReasons: [Int: JSONValue] = [:]
        var logprobs: [Int: JSONValue] = [:]
        for chunk in chunks {
            if let usage = chunk.body["usage"], !usage.isNull { body["usage"] = usage }
            for choice in chunk.body["choices"]?.arrayValue ?? [] {
                let index = choice["index"]?.intValue ?? 0
                var message = messages[index] ?? [:]
                for (name, value) in choice["delta"]?.objectValue ?? [:] {
                    switch (name, value) {
                    case ("tool_calls", .array(let calls)):
                        var merged = toolCalls[index] ?? [:]
                        for (offset, call) in calls.enumerated() {
                            let callIndex = call["index"]?.intValue ?? offset
                            var current = merged[callIndex] ?? [:]
                            for (field, part) in call.objectValue ?? [:] where field != "index" {
                                if field == "function", let function = part.objectValue {
                                    var existing = current["function"]?.objectValue ?? [:]
                                    for (key, piece) in function {
                                        if case .string(let text) = piece, case .string(let prior)? = existing[key] {
                                            existing[key] = .string(prior + text)
                                        } else {
                                            existing[key] = piece
                                        }
                                    }
                                    current["function"] = .object(existing)
                                } else {
                                    current[field] = part
                                }
                            }
                            merged[callIndex] = current
                        }
                        toolCalls[index] = merged
                    case ("role", _):
                        message["role"] = value
                    case (_, .string(let text)):
                        if case .string(let prior)? = message[name] {
                            message[name] = .string(prior + text)
                        } else {
                            message[name] = .string(text)
                        }
                    case (_, .null):
                        if message[name] == nil { message[name] = .null }
                    default:
                        message[name] = value
                    }
                }
                messages[index] = message
                if let reason = choice["finish_reason"], !reason.isNull { finishReasons[index] = reason }
                if let probs = choice["logprobs"], !probs.isNull { logprobs[index] = probs }
            }
        }
        let indices = Set(messages.keys).union(finishReasons.keys).sorted()
        body["choices"] = .array(
            indices.map { index in
                var message = messages[index] ?? [:]
                if message["role"] == nil { message["role"] = "assistant" }
                if let calls = toolCalls[index] {
                    message["tool_calls"] = .array(calls.sorted { $0.key < $1.key }.map { entry in
                        var call = entry.value
                        call["index"] = nil
                        return .object(call)
                    })
                }
                if message["content"] == nil { message["content"] = .null }
                var choice: [String: JSONValue] = [
                    "index": .number(Double(index)), "message": .object(message),
                    "finish_reason": finishReasons[index] ?? .null,
                ]
                if let probs = logprobs[index] { choice["logprobs"] = probs }
                return .object(choice)
            }
        )
        self.body = body
    }
}
