public import CacheKit

extension RedisClient {
    /// How to reach Redis and how to use it, with documented defaults.
    ///
    /// TLS: hiredis 0.14 (Debian 12) has no TLS, so `rediss://` URLs are refused with an explanation. To reach a
    /// TLS-only Redis, run `stunnel` locally (client mode, `accept = 127.0.0.1:6380`, `connect = redis.example:6379`)
    /// and point CacheKit at `redis://127.0.0.1:6380`.
    public struct Configuration: Sendable, CustomStringConvertible {
        /// Where the server is.
        public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
            fileprivate enum Base: Sendable, Hashable {
                case tcp(host: String, port: Int)
                case unix(path: String)
            }
            fileprivate let base: Base

            /// A TCP host and port.
            public static func tcp(host: String, port: Int = 6379) -> Endpoint { Endpoint(base: .tcp(host: host, port: port)) }
            /// A Unix domain socket.
            public static func unix(path: String) -> Endpoint { Endpoint(base: .unix(path: path)) }

            var tcp: (host: String, port: Int)? { if case .tcp(let host, let port) = self.base { (host, port) } else { nil } }
            var unixPath: String? { if case .unix(let path) = self.base { path } else { nil } }

            public var description: String {
                switch self.base {
                case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
                case .unix(let path): "unix:\(path)"
                }
            }
        }

        /// The server. Default `127.0.0.1:6379`.
        public var endpoint: Endpoint
        /// The database number (`SELECT`). Default 0.
        public var database: Int
        /// The ACL user name for `AUTH`, if any.
        public var username: String?
        /// The password for `AUTH`, if any. Never logged or printed.
        public var password: String?
        /// Connections in the pool. Default 8.
        public var poolSize: Int
        /// Time limit to connect. Default 1 s.
        public var connectTimeout: Duration
        /// Time limit for one command's reply (each socket read); past it the connection is destroyed. Default 500 ms.
        public var commandTimeout: Duration
        /// Tasks that may wait for a connection; past it, a lease fails with `.limitExceeded`. Default 10,000.
        public var maximumWaiters: Int
        /// First and largest delay between reconnection attempts after a failure (exponential, with jitter).
        /// Defaults 25 ms and 500 ms.
        public var reconnectBackoff: ReconnectBackoff
        /// Prefix of every key CacheKit writes. Default `cachekit`.
        public var keyPrefix: String
        /// The name in logs, metrics and errors. Default `redis`.
        public var name: String

        public init(
            endpoint: Endpoint = .tcp(host: "127.0.0.1", port: 6379),
            database: Int = 0,
            username: String? = nil,
            password: String? = nil,
            poolSize: Int = 8,
            connectTimeout: Duration = .seconds(1),
            commandTimeout: Duration = .milliseconds(500),
            maximumWaiters: Int = 10_000,
            reconnectBackoff: ReconnectBackoff = ReconnectBackoff(),
            keyPrefix: String = "cachekit",
            name: String = "redis"
        ) {
            self.endpoint = endpoint
            self.database = database
            self.username = username
            self.password = password
            self.poolSize = poolSize
            self.connectTimeout = connectTimeout
            self.commandTimeout = commandTimeout
            self.maximumWaiters = maximumWaiters
            self.reconnectBackoff = reconnectBackoff
            self.keyPrefix = keyPrefix
            self.name = name
        }

        /// Reads a URL: `redis://[user[:password]@]host[:port][/database]`, `redis://[::1]:6379/2`, or
        /// `unix:///path/to/redis.sock[?db=N]`. User and password are percent-decoded.
        ///
        /// - Throws: `CacheError` `.invalidConfiguration` naming what is wrong (never echoing the password);
        ///   `rediss://` is refused because hiredis 0.14 has no TLS (see the type's documentation for stunnel).
        public init(url: String) throws(CacheError) {
            self.init()
            func invalid(_ reason: String) -> CacheError { CacheError(.invalidConfiguration, "Redis URL: \(reason)", backend: "redis") }
            guard let schemeEnd = url.range(of: "://") else { throw invalid("missing scheme (expected redis:// or unix://)") }
            let scheme = url[..<schemeEnd.lowerBound].lowercased()
            var rest = Substring(url[schemeEnd.upperBound...])
            switch scheme {
            case "rediss":
                throw invalid(
                    "rediss:// (TLS) is not supported: hiredis 0.14 has no TLS. Run stunnel locally and use redis://127.0.0.1:PORT"
                )
            case "unix", "redis+unix":
                var path = rest
                if let query = path.firstIndex(of: "?") {
                    let parameters = path[path.index(after: query)...]
                    path = path[..<query]
                    for parameter in parameters.split(separator: "&") {
                        let parts = parameter.split(separator: "=", maxSplits: 1)
                        if parts.count == 2, parts[0] == "db" {
                            guard let db = Int(parts[1]), db >= 0 else { throw invalid("db must be a non-negative integer") }
                            self.database = db
                        }
                    }
                }
                guard path.hasPrefix("/") else { throw invalid("a unix socket path must be absolute") }
                self.endpoint = .unix(path: String(path))
                return
            case "redis":
                break
            default:
                throw invalid("unsupported scheme '\(scheme)' (expected redis:// or unix://)")
            }
            if let at = rest.lastIndex(of: "@") {
                let credentials = rest[..<at]
                rest = rest[rest.index(after: at)...]
                if let colon = credentials.firstIndex(of: ":") {
                    let user = try Self.percentDecode(credentials[..<colon], invalid)
                    self.username = user.isEmpty ? nil : user
                    self.password = try Self.percentDecode(credentials[credentials.index(after: colon)...], invalid)
                } else if !credentials.isEmpty {
                    // redis://secret@host is the password-only form that redis-cli and redis-py accept.
                    self.password = try Self.percentDecode(credentials, invalid)
                }
            }
            var authority = rest
            var path: Substring = ""
            if let slash = rest.firstIndex(of: "/") {
                authority = rest[..<slash]
                path = rest[rest.index(after: slash)...]
            }
            if let query = path.firstIndex(of: "?") { path = path[..<query] }
            if let query = authority.firstIndex(of: "?") { authority = authority[..<query] }
            var host: Substring
            var port = 6379
            if authority.hasPrefix("[") {
                guard let close = authority.firstIndex(of: "]") else { throw invalid("unterminated IPv6 address") }
                host = authority[authority.index(after: authority.startIndex)..<close]
                let after = authority[authority.index(after: close)...]
                if after.hasPrefix(":") {
                    guard let value = Int(after.dropFirst()), (1...65535).contains(value) else { throw invalid("port must be 1-65535") }
                    port = value
                } else if !after.isEmpty {
                    throw invalid("unexpected text after the IPv6 address")
                }
            } else if let colon = authority.lastIndex(of: ":") {
                host = authority[..<colon]
                guard let value = Int(authority[authority.index(after: colon)...]), (1...65535).contains(value) else {
                    throw invalid("port must be 1-65535")
                }
                port = value
            } else {
                host = authority
            }
            guard !host.isEmpty else { throw invalid("missing host") }
            guard host.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == ":" || $0 == "_" }) else {
                throw invalid("host has characters that are not allowed")
            }
            if !path.isEmpty {
                guard let db = Int(path), db >= 0 else { throw invalid("database must be a non-negative integer") }
                self.database = db
            }
            self.endpoint = .tcp(host: String(host), port: port)
        }

        /// The settings of the connection pool.
        var poolConfiguration: ConnectionPoolConfiguration {
            ConnectionPoolConfiguration(size: self.poolSize, maximumWaiters: self.maximumWaiters, reconnectBackoff: self.reconnectBackoff, name: self.name)
        }

        /// Reads `CACHEKIT_REDIS_URL` from `environment`; `nil` if it is not set.
        public static func fromEnvironment(_ environment: [String: String]) throws(CacheError) -> RedisClient.Configuration? {
            guard let url = environment["CACHEKIT_REDIS_URL"], !url.isEmpty else { return nil }
            return try RedisClient.Configuration(url: url)
        }

        private static func percentDecode(_ text: Substring, _ invalid: (String) -> CacheError) throws(CacheError) -> String {
            var bytes: [UInt8] = []
            var iterator = Array(text.utf8).makeIterator()
            while let byte = iterator.next() {
                if byte == UInt8(ascii: "%") {
                    guard let high = iterator.next(), let low = iterator.next(), let decoded = Hex.decode([high, low]) else {
                        throw invalid("bad percent-encoding in the credentials")
                    }
                    bytes.append(contentsOf: decoded)
                } else {
                    bytes.append(byte)
                }
            }
            guard let string = String(validating: bytes, as: UTF8.self) else { throw invalid("credentials are not valid UTF-8") }
            return string
        }

        /// Prints the endpoint, database and user; never the password.
        public var description: String {
            "RedisClient.Configuration(\(self.endpoint), db: \(self.database), user: \(self.username ?? "-"), password: \(self.password == nil ? "none" : "set"), pool: \(self.poolSize))"
        }
    }
}

extension String {
    fileprivate func range(of needle: String) -> Range<String.Index>? {
        var index = self.startIndex
        while index < self.endIndex {
            if self[index...].hasPrefix(needle) { return index..<self.index(index, offsetBy: needle.count) }
            index = self.index(after: index)
        }
        return nil
    }
}
