#if SwiftConfiguration
public import CacheKit
public import Configuration

extension RedisClient.Configuration {
    /// Reads how to reach and use Redis from `config`.
    ///
    /// Keys (relative to the reader; scope it, e.g. `config.scoped(to: "redis")`, so that the environment variable
    /// `REDIS_URL` sets `url`):
    /// - `url` (string, secret, default: none): `redis://[user[:password]@]host[:port][/db]`,
    ///   `unix:///path.sock[?db=N]` or `redis+cluster://host:port,host:port`, as `init(url:)` reads it. When set,
    ///   `host`, `port` and `unixSocket` are ignored.
    /// - `host` (string, default `127.0.0.1`), `port` (int, 1 ... 65535, default `6379`)
    /// - `unixSocket` (string, absolute path, default: none; wins over `host`)
    /// - `database` (int ≥ 0, default `0`, or the URL's)
    /// - `username` (string, default: none, or the URL's)
    /// - `password` (string, secret, default: none, or the URL's)
    /// - `poolSize` (int, 1 ... 1024, default `8`)
    /// - `connectTimeoutSeconds` (double > 0, default `1`)
    /// - `commandTimeoutSeconds` (double > 0, default `0.5`)
    /// - `maximumWaiters` (int ≥ 0, default `10000`)
    /// - `reconnectBackoffInitialSeconds` (double > 0, default `0.025`),
    ///   `reconnectBackoffMaximumSeconds` (double > 0, default `0.5`)
    /// - `cluster.readFromReplicas` (bool, default `false`, or the URL's; only with a `redis+cluster://` URL),
    ///   `cluster.maximumRedirects` (int, 1 ... 100, default `5`)
    /// - `keyPrefix` (string, default `cachekit`)
    /// - `name` (string, default `redis`)
    ///
    /// - Throws: `CacheError` `.invalidConfiguration` naming the key when a value is malformed or out of range; a bad
    ///   URL is described without its password.
    public init(config: ConfigReader) throws(CacheError) {
        if let url = config.cacheKitString("url", secret: true) {
            try self.init(url: url)
        } else {
            self.init()
            if let path = config.cacheKitString("unixSocket") {
                guard path.hasPrefix("/") else { throw ConfigReader.invalid("unixSocket", "must be an absolute path") }
                self.endpoint = .unix(path: path)
            } else {
                self.endpoint = .tcp(
                    host: config.cacheKitString("host") ?? "127.0.0.1",
                    port: try config.cacheKitInt("port", default: 6379, in: 1...65535)
                )
            }
        }
        // Every other setting starts at its default (set by init() or init(url:) above).
        self.database = try config.cacheKitInt("database", default: self.database, in: 0...Int(Int32.max))
        if let username = config.cacheKitString("username") { self.username = username }
        if let password = config.cacheKitString("password", secret: true) { self.password = password }
        self.poolSize = try config.cacheKitInt("poolSize", default: self.poolSize, in: 1...1024)
        self.connectTimeout = try config.cacheKitSeconds("connectTimeoutSeconds", default: self.connectTimeout, minimum: 0.001)
        self.commandTimeout = try config.cacheKitSeconds("commandTimeoutSeconds", default: self.commandTimeout, minimum: 0.001)
        self.maximumWaiters = try config.cacheKitInt("maximumWaiters", default: self.maximumWaiters, in: 0...Int(Int32.max))
        self.reconnectBackoff = ReconnectBackoff(
            initial: try config.cacheKitSeconds("reconnectBackoffInitialSeconds", default: self.reconnectBackoff.initial, minimum: 0.001),
            maximum: try config.cacheKitSeconds("reconnectBackoffMaximumSeconds", default: self.reconnectBackoff.maximum, minimum: 0.001)
        )
        if var cluster = self.cluster {
            cluster.readFromReplicas = try config.cacheKitBool("cluster.readFromReplicas", default: cluster.readFromReplicas)
            cluster.maximumRedirects = try config.cacheKitInt("cluster.maximumRedirects", default: cluster.maximumRedirects, in: 1...100)
            self.cluster = cluster
        }
        self.keyPrefix = config.cacheKitString("keyPrefix") ?? self.keyPrefix
        self.name = config.cacheKitString("name") ?? self.name
    }
}
#endif
