import CCacheKitLibPQ
public import CacheKit

extension PostgresClient {
    /// How to reach PostgreSQL and how CacheKit lays out its tables, with documented defaults.
    public struct Configuration: Sendable, CustomStringConvertible {
        /// A `postgresql://` URL or a libpq keyword string (`host=… port=… dbname=… sslmode=require`), passed to libpq
        /// as it is, so every libpq option works (TLS with `sslmode`, `sslrootcert`, ...). Never logged.
        public var connectionString: String
        /// Connections in the pool. Default 8.
        public var poolSize: Int
        /// Tasks that may wait for a connection. Default 10,000.
        public var maximumWaiters: Int
        /// The server-side time limit of one statement (`statement_timeout`). Default 2 s. The client also gives up on
        /// a statement one second after it (a frozen server), cancels it and discards the connection.
        public var statementTimeout: Duration
        /// The time limit to connect (libpq `connect_timeout`, unless the connection string sets one). Default 5 s.
        public var connectTimeout: Duration
        /// Prefix of CacheKit's tables: lowercase letters, digits and `_`, starting with a letter. Default `cachekit`.
        public var tablePrefix: String
        /// HNSW build parameters `m` and `ef_construction`. Defaults 16 and 64 (pgvector's).
        public var hnswM: Int
        public var hnswEfConstruction: Int
        /// `hnsw.ef_search` for every semantic query: candidates kept per search; higher is slower and more exact.
        /// Default 64.
        public var efSearch: Int
        /// How often `run()` purges expired rows, and how many per statement. Defaults 30 s and 1,000.
        public var purgeInterval: Duration
        public var purgeBatch: Int
        /// First and largest delay between connection attempts after a failure.
        public var reconnectBackoff: ReconnectBackoff
        /// The name in logs, metrics and errors. Default `postgres`.
        public var name: String
        /// The most semantic records one scope (tenant, namespace, version) keeps in a vector table; past it the
        /// oldest-inserted are deleted, and counted (`PGVectorSemanticIndex.evictedRecords`). Checked every
        /// hundredth of the cap's inserts into a scope by one instance, so a scope may exceed it by about 1 % per
        /// writing instance between checks. Default 100,000 (the memory index's bound); `nil`: no cap.
        public var maximumRecordsPerScope: Int? = 100_000
        /// Records of one partition (scope, namespace, version, embedding model) past which it moves to a table of its
        /// own, with its own HNSW index; smaller partitions share the vector table and are searched exactly. Keeps
        /// searches right and fast whatever the planner's statistics: see `PGVectorSemanticIndex`. Default 1,000
        /// (an exact search of 1,000 rows of 384 dimensions takes about 1.5 ms).
        public var dedicatedTableThreshold: Int = 1_000
        /// A streaming replica that semantic searches read from, to take reads off the primary. Default `nil`: every
        /// statement goes to the primary.
        public var readReplica: ReadReplica? = nil

        /// A streaming replica for semantic searches, and how stale it may be.
        ///
        /// Searches go to the replica while its measured replay lag is at most `maximumLag`; a replica that lags more,
        /// fails, cannot be reached or is no longer in recovery (promoted) is left for the primary until it is
        /// healthy again. Writes and removals always go to the primary, and after this instance writes or removes
        /// records of a scope, its searches in that scope read the primary for `maximumLag` plus one lag check (1 s)
        /// (every scope after a removal by tag): read-your-writes, and a removal is never undone by a stale replica
        /// here. Another instance reading the same replica may still find a removed record for up to that long: the
        /// staleness bound of replica reads. The lag is exported as
        /// `cachekit_postgres_replica_lag_seconds`.
        public struct ReadReplica: Sendable {
            /// The replica's libpq connection string. Never logged.
            public var connectionString: String
            /// The most replay lag at which searches still read the replica. Default 1 s.
            public var maximumLag: Duration

            /// - Throws: `CacheError` `.invalidConfiguration` when libpq cannot parse `connectionString` (the message
            ///   never quotes a password), or `maximumLag` is not positive.
            public init(connectionString: String, maximumLag: Duration = .seconds(1)) throws(CacheError) {
                try Configuration.validate(connectionString: connectionString, name: "postgres-replica")
                guard maximumLag > .zero else {
                    throw CacheError(.invalidConfiguration, "the replica's maximum lag must be positive", backend: "postgres-replica")
                }
                self.connectionString = connectionString
                self.maximumLag = maximumLag
            }
        }

        /// Creates a configuration.
        ///
        /// - Throws: `CacheError` `.invalidConfiguration` if libpq cannot parse `connectionString` (the message is
        ///   libpq's and names the bad option, never the password) or the table prefix is not a plain identifier.
        public init(
            connectionString: String,
            poolSize: Int = 8,
            maximumWaiters: Int = 10_000,
            statementTimeout: Duration = .seconds(2),
            connectTimeout: Duration = .seconds(5),
            tablePrefix: String = "cachekit",
            hnswM: Int = 16,
            hnswEfConstruction: Int = 64,
            efSearch: Int = 64,
            purgeInterval: Duration = .seconds(30),
            purgeBatch: Int = 1000,
            reconnectBackoff: ReconnectBackoff = ReconnectBackoff(),
            name: String = "postgres"
        ) throws(CacheError) {
            try Self.validate(connectionString: connectionString, name: name)
            guard Self.isIdentifier(tablePrefix) else {
                throw CacheError(.invalidConfiguration, "table prefix must match [a-z][a-z0-9_]{0,30}", backend: name)
            }
            guard (2...100).contains(hnswM), (4...1000).contains(hnswEfConstruction), (1...1000).contains(efSearch) else {
                throw CacheError(.invalidConfiguration, "HNSW parameters out of range (m 2-100, ef_construction 4-1000, ef_search 1-1000)", backend: name)
            }
            self.connectionString = connectionString
            self.poolSize = poolSize
            self.maximumWaiters = maximumWaiters
            self.statementTimeout = statementTimeout
            self.connectTimeout = connectTimeout
            self.tablePrefix = tablePrefix
            self.hnswM = hnswM
            self.hnswEfConstruction = hnswEfConstruction
            self.efSearch = efSearch
            self.purgeInterval = purgeInterval
            self.purgeBatch = purgeBatch
            self.reconnectBackoff = reconnectBackoff
            self.name = name
        }

        /// Reads `CACHEKIT_POSTGRES_URL` from `environment`; `nil` if it is not set.
        public static func fromEnvironment(_ environment: [String: String]) throws(CacheError) -> PostgresClient.Configuration? {
            guard let url = environment["CACHEKIT_POSTGRES_URL"], !url.isEmpty else { return nil }
            return try PostgresClient.Configuration(connectionString: url)
        }

        /// Checks that libpq can parse `connectionString`; the error never quotes a password.
        static func validate(connectionString: String, name: String) throws(CacheError) {
            var error: UnsafeMutablePointer<CChar>?
            guard let options = PQconninfoParse(connectionString, &error) else {
                let reason = error.map { String(cString: $0) } ?? "unparsable"
                if let error { PQfreemem(error) }
                let redacted = Self.redactingQuotedTokens(reason.trimmingSuffixNewlines, of: connectionString)
                throw CacheError(.invalidConfiguration, "PostgreSQL connection string: \(redacted)", backend: name)
            }
            PQconninfoFree(options)
        }

        static func isIdentifier(_ text: String) -> Bool {
            let bytes = Array(text.utf8)
            guard let first = bytes.first, (0x61...0x7A).contains(first), bytes.count <= 31 else { return false }
            return bytes.allSatisfy { (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x5F }
        }

        var poolConfiguration: ConnectionPoolConfiguration {
            ConnectionPoolConfiguration(size: self.poolSize, maximumWaiters: self.maximumWaiters, reconnectBackoff: self.reconnectBackoff, name: self.name)
        }

        /// Never prints the connection string (it may hold a password).
        /// libpq's parse errors quote the raw token they stopped at, which may be a password (`invalid percent-encoded
        /// token: "p%zzword"`, `missing "=" after "hunter2"`). Quoted text stays only when it is an option name as
        /// written in `connectionString` (`name=`); everything else quoted becomes `[redacted]`.
        static func redactingQuotedTokens(_ message: String, of connectionString: String) -> String {
            let parts = message.split(separator: "\"", omittingEmptySubsequences: false)
            var out = ""
            for (index, part) in parts.enumerated() {
                if index > 0 { out += "\"" }
                let quoted = index % 2 == 1 && index < parts.count - 1
                if quoted {
                    let isOptionName = !part.isEmpty && part.count <= 40 && part.allSatisfy { $0 == "_" || ("a"..."z").contains($0) }
                        && connectionString.contains(part + "=")
                    out += isOptionName ? String(part) : "[redacted]"
                } else {
                    out += part
                }
            }
            return out
        }

        public var description: String {
            "PostgresClient.Configuration(pool: \(self.poolSize), tables: \(self.tablePrefix)_*, ef_search: \(self.efSearch), replica: \(self.readReplica == nil ? "none" : "set"))"
        }
    }
}

extension String {
    var trimmingSuffixNewlines: String {
        var text = self
        while text.last == "\n" || text.last == " " { text.removeLast() }
        return text
    }
}
