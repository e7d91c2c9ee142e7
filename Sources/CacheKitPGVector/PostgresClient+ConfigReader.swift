#if SwiftConfiguration
public import CacheKit
public import Configuration

extension PostgresClient.Configuration {
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
    /// - `maximumRecordsPerScope` (int, 0 ... 1,000,000,000, default `100000`; `0`: no cap)
    /// - `dedicatedTableThreshold` (int, 10 ... 10,000,000, default `1000`)
    /// - `replica.url` (string, secret, default: none): a streaming replica for semantic searches;
    ///   `replica.maximumLagSeconds` (double > 0, default `1`)
    ///
    /// - Throws: `CacheError` `.invalidConfiguration` naming the key when `url` is missing or a value is malformed or
    ///   out of range; a connection string libpq cannot parse is described by libpq, without the password.
    public init(config: ConfigReader) throws(CacheError) {
        guard let url = config.cacheKitString("url", secret: true) else {
            throw ConfigReader.invalid("url", "is required (a postgresql:// URL or a libpq keyword string)")
        }
        let defaults = try PostgresClient.Configuration(connectionString: url)
        try self.init(
            connectionString: url,
            poolSize: try config.cacheKitInt("poolSize", default: defaults.poolSize, in: 1...1024),
            maximumWaiters: try config.cacheKitInt("maximumWaiters", default: defaults.maximumWaiters, in: 0...Int(Int32.max)),
            statementTimeout: try config.cacheKitSeconds("statementTimeoutSeconds", default: defaults.statementTimeout, minimum: 0.001),
            connectTimeout: try config.cacheKitSeconds("connectTimeoutSeconds", default: defaults.connectTimeout, minimum: 1),
            tablePrefix: config.cacheKitString("tablePrefix") ?? defaults.tablePrefix,
            hnswM: try config.cacheKitInt("hnswM", default: defaults.hnswM, in: 2...100),
            hnswEfConstruction: try config.cacheKitInt("hnswEfConstruction", default: defaults.hnswEfConstruction, in: 4...1000),
            efSearch: try config.cacheKitInt("efSearch", default: defaults.efSearch, in: 1...1000),
            purgeInterval: try config.cacheKitSeconds("purgeIntervalSeconds", default: defaults.purgeInterval, minimum: 0.01),
            purgeBatch: try config.cacheKitInt("purgeBatch", default: defaults.purgeBatch, in: 1...1_000_000),
            reconnectBackoff: ReconnectBackoff(
                initial: try config.cacheKitSeconds("reconnectBackoffInitialSeconds", default: defaults.reconnectBackoff.initial, minimum: 0.001),
                maximum: try config.cacheKitSeconds("reconnectBackoffMaximumSeconds", default: defaults.reconnectBackoff.maximum, minimum: 0.001)
            ),
            name: config.cacheKitString("name") ?? defaults.name
        )
        self.dedicatedTableThreshold = try config.cacheKitInt(
            "dedicatedTableThreshold", default: defaults.dedicatedTableThreshold, in: 10...10_000_000)
        let cap = try config.cacheKitInt("maximumRecordsPerScope", default: defaults.maximumRecordsPerScope ?? 0, in: 0...1_000_000_000)
        self.maximumRecordsPerScope = cap == 0 ? nil : cap
        if let replica = config.cacheKitString("replica.url", secret: true) {
            self.readReplica = try ReadReplica(
                connectionString: replica,
                maximumLag: try config.cacheKitSeconds("replica.maximumLagSeconds", default: .seconds(1), minimum: 0.001)
            )
        }
    }
}
#endif
