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

        /// Settings of a Redis Cluster (see ``RedisClient/Configuration/cluster``).
        public struct Cluster: Sendable, Hashable {
            /// Nodes to learn the cluster's map from besides `endpoint`; any one answering is enough. Default none.
            public var seeds: [Endpoint]
            /// Reads (`GET`) go to the slot's replicas (`READONLY` connections) instead of its primary. Default
            /// `false`. A replica lags its primary (asynchronous replication: usually well under a millisecond on a
            /// LAN, unbounded while the link is broken), so a read may miss an entry just written; removals wait for
            /// the shard's replicas to acknowledge them (`WAIT`, up to `commandTimeout`) so that an invalidation does
            /// not report success while a replica still serves the old entry, and a replica that did not acknowledge
            /// in time fails the removal.
            public var readFromReplicas: Bool
            /// Redirects (`MOVED`, `ASK`) and retries (`TRYAGAIN`, `CLUSTERDOWN`, a failed node) followed for one
            /// command before it fails. Default 5.
            public var maximumRedirects: Int
            /// How often the slot map is re-read while all is well (it is also re-read on `MOVED` and when a node
            /// fails). Default 5 s.
            public var topologyRefreshInterval: Duration

            public init(seeds: [Endpoint] = [], readFromReplicas: Bool = false, maximumRedirects: Int = 5, topologyRefreshInterval: Duration = .seconds(5)) {
                self.seeds = seeds
                self.readFromReplicas = readFromReplicas
                self.maximumRedirects = maximumRedirects
                self.topologyRefreshInterval = topologyRefreshInterval
            }
        }

        /// The server, or with `cluster` set the first node to learn the cluster's map from. Default `127.0.0.1:6379`.
        public var endpoint: Endpoint
        /// A Redis Cluster instead of one server: `nil` (the default) for one server. With it, keys are routed by
        /// slot to each shard's primary, with a pool per node; the database must be 0.
        public var cluster: Cluster?
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
            name: String = "redis",
            cluster: Cluster? = nil
        ) {
            self.endpoint = endpoint
            self.cluster = cluster
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

        /// Reads a URL: `redis://[user[:password]@]host[:port][/database]`, `redis://[::1]:6379/2`,
        /// `unix:///path/to/redis.sock[?db=N]`, or for a Redis Cluster
        /// `redis+cluster://[user[:password]@]host[:port][,host[:port]...][?readFromReplicas=true]` (the hosts are
        /// seeds: any one answering is enough). User and password are percent-decoded.
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
            case "redis+cluster":
                try self.readCluster(rest, invalid)
                return
            case "redis":
                break
            default:
                throw invalid("unsupported scheme '\(scheme)' (expected redis://, redis+cluster:// or unix://)")
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

        /// The part of a `redis+cluster://` URL after the scheme: credentials, seeds, options.
        private mutating func readCluster(_ text: Substring, _ invalid: (String) -> CacheError) throws(CacheError) {
            var rest = text
            var cluster = Cluster()
            if let query = rest.firstIndex(of: "?") {
                for parameter in rest[rest.index(after: query)...].split(separator: "&") {
                    let parts = parameter.split(separator: "=", maxSplits: 1)
                    guard parts.count == 2, parts[0] == "readFromReplicas" else {
                        throw invalid("unknown cluster URL option (expected readFromReplicas=true|false)")
                    }
                    switch parts[1] {
                    case "true", "1", "yes": cluster.readFromReplicas = true
                    case "false", "0", "no": cluster.readFromReplicas = false
                    default: throw invalid("readFromReplicas must be true or false")
                    }
                }
                rest = rest[..<query]
            }
            var credentials = ""
            if let at = rest.lastIndex(of: "@") {
                credentials = String(rest[..<at]) + "@"
                rest = rest[rest.index(after: at)...]
            }
            if let slash = rest.firstIndex(of: "/") {
                guard rest[rest.index(after: slash)...].allSatisfy({ $0 == "0" || $0 == "/" }) else {
                    throw invalid("a Redis Cluster has only database 0")
                }
                rest = rest[..<slash]
            }
            var endpoints: [Endpoint] = []
            for (index, node) in rest.split(separator: ",", omittingEmptySubsequences: false).enumerated() {
                guard !node.isEmpty else { throw invalid("empty node in the cluster's seed list") }
                // Each seed is read as a single-node URL; the credentials are the same for every node.
                let seed = try Configuration(url: "redis://\(index == 0 ? credentials : "")\(node)")
                if index == 0 {
                    self.username = seed.username
                    self.password = seed.password
                }
                endpoints.append(seed.endpoint)
            }
            guard let first = endpoints.first, endpoints.count <= 64 else { throw invalid("a cluster URL needs 1 to 64 seed nodes") }
            self.endpoint = first
            cluster.seeds = Array(endpoints.dropFirst())
            self.cluster = cluster
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
            let target = self.cluster.map { "cluster of \(([self.endpoint] + $0.seeds).map(\.description).joined(separator: ","))" } ?? "\(self.endpoint)"
            return "RedisClient.Configuration(\(target), db: \(self.database), user: \(self.username ?? "-"), password: \(self.password == nil ? "none" : "set"), pool: \(self.poolSize))"
        }

        /// The cluster's settings are usable: database 0, a positive redirect bound and refresh interval.
        func validateCluster() throws(CacheError) {
            guard let cluster = self.cluster else { return }
            guard self.database == 0 else {
                throw CacheError(.invalidConfiguration, "a Redis Cluster has only database 0 (database is \(self.database))", backend: self.name)
            }
            guard cluster.maximumRedirects >= 1, cluster.maximumRedirects <= 100 else {
                throw CacheError(.invalidConfiguration, "cluster.maximumRedirects must be 1 ... 100", backend: self.name)
            }
            guard cluster.topologyRefreshInterval > .zero else {
                throw CacheError(.invalidConfiguration, "cluster.topologyRefreshInterval must be positive", backend: self.name)
            }
            guard self.endpoint.unixPath == nil, cluster.seeds.allSatisfy({ $0.unixPath == nil }) else {
                throw CacheError(.invalidConfiguration, "cluster nodes are reached over TCP, not a Unix socket", backend: self.name)
            }
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
