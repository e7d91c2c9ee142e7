/// One message of a chat request or response, held as JSON members with typed views of the known fields.
public struct ChatMessage: Sendable, Hashable {
    /// Every member of the message.
    public var fields: [String: JSONValue]

    /// Wraps message members as they are.
    public init(fields: [String: JSONValue]) { self.fields = fields }

    /// A message with a role and text content.
    public init(role: String, content: String) {
        self.fields = ["role": .string(role), "content": .string(content)]
    }

    /// A system message.
    public static func system(_ text: String) -> ChatMessage { ChatMessage(role: "system", content: text) }
    /// A developer message (the newer name of system messages for reasoning models).
    public static func developer(_ text: String) -> ChatMessage { ChatMessage(role: "developer", content: text) }
    /// A user message.
    public static func user(_ text: String) -> ChatMessage { ChatMessage(role: "user", content: text) }
    /// An assistant message.
    public static func assistant(_ text: String) -> ChatMessage { ChatMessage(role: "assistant", content: text) }

    /// `role`.
    public var role: String {
        get { self.fields["role"]?.stringValue ?? "" }
        set { self.fields["role"] = .string(newValue) }
    }

    /// `content` as it is: a string, an array of parts (text, images, audio...), or `nil`.
    public var content: JSONValue? {
        get { self.fields["content"] }
        set { self.fields["content"] = newValue }
    }

    /// The text of the message: the string content, or its text parts joined by newlines.
    public var text: String? {
        guard let content = self.fields["content"] else { return nil }
        if let string = content.stringValue { return string }
        guard let parts = content.arrayValue else { return nil }
        let texts = parts.compactMap { part -> String? in
            guard part["type"]?.stringValue == "text" else { return nil }
            return part["text"]?.stringValue
        }
        return texts.isEmpty ? nil : texts.joined(separator: "\n")
    }

    /// `name`.
    public var name: String? { self.fields["name"]?.stringValue }

    /// `tool_calls`.
    public var toolCalls: [JSONValue]? { self.fields["tool_calls"]?.arrayValue }

    /// `tool_call_id`.
    public var toolCallID: String? { self.fields["tool_call_id"]?.stringValue }

    /// `refusal`, when the model refused.
    public var refusal: String? { self.fields["refusal"]?.stringValue }
}
