/// An error from CacheKit or one of its backends.
///
/// The code is extensible (a struct, not an enum) so new cases do not break users' `switch` statements.
/// `description` names the code, the backend and a message, and never prints a cache key, a cached value, a
/// request body or a secret: messages are written by CacheKit from fixed text and field names only.
public struct CacheError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case invalidRequest, invalidResponse, invalidVector, invalidConfiguration, corruptEntry, valueTooLarge
            case timeout, cancelled, unavailable, connectionFailed, authenticationFailed, commandFailed
            case upstreamFailed, limitExceeded, unsupported
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// A request body that is malformed or has a wrong field.
        public static let invalidRequest = Code(.invalidRequest)
        /// A response body that is malformed.
        public static let invalidResponse = Code(.invalidResponse)
        /// A vector of the wrong dimension, with NaN or infinity, or of zero length.
        public static let invalidVector = Code(.invalidVector)
        /// A configuration value or URL that cannot work.
        public static let invalidConfiguration = Code(.invalidConfiguration)
        /// Stored bytes that fail to decode or whose checksum does not match.
        public static let corruptEntry = Code(.corruptEntry)
        /// A value over the configured size limit.
        public static let valueTooLarge = Code(.valueTooLarge)
        /// An operation that did not finish within its time limit.
        public static let timeout = Code(.timeout)
        /// An operation whose task was cancelled.
        public static let cancelled = Code(.cancelled)
        /// A backend that is not reachable or not ready.
        public static let unavailable = Code(.unavailable)
        /// A connection that could not be made or broke.
        public static let connectionFailed = Code(.connectionFailed)
        /// Credentials that were refused.
        public static let authenticationFailed = Code(.authenticationFailed)
        /// A command or query that the server refused.
        public static let commandFailed = Code(.commandFailed)
        /// The upstream model call failed.
        public static let upstreamFailed = Code(.upstreamFailed)
        /// A bounded queue or table is full.
        public static let limitExceeded = Code(.limitExceeded)
        /// The backend does not offer this operation.
        public static let unsupported = Code(.unsupported)

        public var description: String { self.base.rawValue }
    }

    /// What kind of failure this is.
    public var code: Code
    /// A message written by CacheKit; it never contains keys, values or secrets.
    public var message: String
    /// The backend that failed, if any.
    public var backend: String?
    /// The error underneath, if any.
    public var underlying: (any Error)?

    /// Creates an error.
    public init(_ code: Code, _ message: String, backend: String? = nil, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.backend = backend
        self.underlying = underlying
    }

    public var description: String {
        if let backend { return "CacheError(\(self.code), backend: \(backend)): \(self.message)" }
        return "CacheError(\(self.code)): \(self.message)"
    }
}
