import CacheKit

/// An error from an OpenAI-compatible server or from reaching it.
///
/// `description` names the HTTP status, the provider's error type, message and code, and the request id; it never
/// contains the API key or the request body.
public struct OpenAIError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        /// The server answered with an error status.
        public static let http = Code("http")
        /// The server could not be reached, or the connection broke.
        public static let transport = Code("transport")
        /// The request exceeded its time limit.
        public static let timeout = Code("timeout")
        /// The response could not be read (malformed JSON, truncated stream).
        public static let invalidResponse = Code("invalid_response")
        /// The caller cancelled.
        public static let cancelled = Code("cancelled")
        public var description: String { self.name }
    }

    public var code: Code
    /// The HTTP status, for `.http`.
    public var status: Int?
    /// The provider's `error.type` (`rate_limit_error`, `invalid_request_error`, ...).
    public var type: String?
    /// The provider's `error.message`, or CacheKit's description of the failure.
    public var message: String
    /// The provider's `error.code`.
    public var providerCode: String?
    /// The `x-request-id` header, to quote to the provider's support.
    public var requestID: String?
    /// How many attempts were made.
    public var attempts: Int

    public var description: String {
        var text = "OpenAIError(\(self.code)"
        if let status { text += ", status \(status)" }
        if let type { text += ", \(type)" }
        if let providerCode { text += ", code \(providerCode)" }
        text += "): \(self.message)"
        if let requestID { text += " [request \(requestID)]" }
        if self.attempts > 1 { text += " after \(self.attempts) attempts" }
        return text
    }

    /// Whether a retry may succeed: 429, 5xx, transport failures and timeouts.
    var isRetryable: Bool {
        switch self.code {
        case .http: return self.status == 429 || (self.status ?? 0) >= 500
        case .transport, .timeout: return true
        default: return false
        }
    }
}
