#if SwiftConfiguration
import CacheKit
import Configuration

extension PostgresConfiguration {
    /// Reads how to reach PostgreSQL and lay out CacheKit's tables from `config`.
    ///
    /// Keys (relative to the reader; scope it, e.g. `config.scoped(to: "postgres")`, so that the environment
    /// variable `POSTGRES_URL` sets `url`):
    /// - `url` (string, secret, required): a `postgresql://` URL or a libpq keyword string, passed to libpq as it is
    /// - `poolSize` (int, 1 ... 1024, default `8`)
    /// - `maximumWaiters` (int ≥ 0, default `10000`)
    /// - `statementTimeoutSeconds` (double > 0, default `2`)
    /// - `connectTimeoutSeconds` (double ≥ 1, default `5`)
    /// - `tablePrefix` (string `[a-z][a-z0-9_]{0,30}`, default `cachekit`)
    /// - `hnswM` (int, 2 ... 100, default `16`), `hnswEfConstruction` (int, 4 ... 1000, default `64`)
    /// - `efSearch` (int, 1 ... 1000, default `64`)
    /// - `purgeIntervalSeconds` (double ≥ 0.01, default `30`), `purgeBatch` (int, 1 ... 1,000,000, default `1000`)
    /// - `reconnectBackoffInitialSeconds` (double > 0, default `0.025`),
    ///   `reconnectBackoffMaximumSeconds` (double > 0, default `0.5`)
    /// - `name` (string, default `postgres`)
    ///
    /// - Throws: `CacheError` `.invalidConfiguration` naming the key when `url` is missing or a value is malformed or
    ///   out of range; a connection string libpq cannot parse is described by libpq, without the password.
    public init(config: ConfigReader) throws(CacheError) {
        guard let url = config.cacheKitString("url", secret: true) else {
            throw ConfigReader.invalid("url", "is required (a postgresql:// URL or a libpq keyword string)")
        }
        try self.init(
            connectionString: url,
            poolSize: try config.cacheKitInt("poolSize", default: 8, in: 1...1024),
            maximumWaiters: try config.cacheKitInt("maximumWaiters", default: 10_000, in: 0...Int(Int32.max)),
            statementTimeout: try config.cacheKitSeconds("statementTimeoutSeconds", default: .seconds(2), minimum: 0.001),
            connectTimeout: try config.cacheKitSeconds("connectTimeoutSeconds", default: .seconds(5), minimum: 1),
            tablePrefix: config.cacheKitString("tablePrefix") ?? "cachekit",
            hnswM: try config.cacheKitInt("hnswM", default: 16, in: 2...100),
            hnswEfConstruction: try config.cacheKitInt("hnswEfConstruction", default: 64, in: 4...1000),
            efSearch: try config.cacheKitInt("efSearch", default: 64, in: 1...1000),
            purgeInterval: try config.cacheKitSeconds("purgeIntervalSeconds", default: .seconds(30), minimum: 0.01),
            purgeBatch: try config.cacheKitInt("purgeBatch", default: 1000, in: 1...1_000_000),
            reconnectBackoff: (
                try config.cacheKitSeconds("reconnectBackoffInitialSeconds", default: .milliseconds(25), minimum: 0.001),
                try config.cacheKitSeconds("reconnectBackoffMaximumSeconds", default: .milliseconds(500), minimum: 0.001)
            ),
            name: config.cacheKitString("name") ?? "postgres"
        )
    }
}
#endif
