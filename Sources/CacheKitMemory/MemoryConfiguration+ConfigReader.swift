#if SwiftConfiguration
public import CacheKit
public import Configuration

extension MemoryCacheBackend.Configuration {
    /// Reads a memory layer's settings from `config`; the clock stays `SystemCacheClock()`.
    ///
    /// Keys (relative to the reader; scope it, e.g. `config.scoped(to: "memory")`):
    /// - `maximumBytes` (int, 1 KiB ... 1 TiB, default `67108864`)
    /// - `maximumEntries` (int, 1 ... 1,000,000,000, default `100000`)
    /// - `eviction` (string `s3fifo` or `lru`, default `s3fifo`)
    /// - `sweepIntervalSeconds` (double, seconds ≥ 0.01, default `30`)
    /// - `name` (string, default `memory`)
    ///
    /// - Throws: `CacheError` `.invalidConfiguration` naming the key when a value is malformed or out of range.
    public init(config: ConfigReader) throws(CacheError) {
        let defaults = Self()
        self.init(
            maximumBytes: try config.cacheKitInt("maximumBytes", default: defaults.maximumBytes, in: 1024...(1 << 40)),
            maximumEntries: try config.cacheKitInt("maximumEntries", default: defaults.maximumEntries, in: 1...1_000_000_000),
            eviction: try config.cacheKitChoice("eviction", default: defaults.eviction, ["s3fifo": .s3fifo, "lru": .lru]),
            sweepInterval: try config.cacheKitSeconds("sweepIntervalSeconds", default: defaults.sweepInterval, minimum: 0.01),
            name: config.cacheKitString("name") ?? defaults.name
        )
    }
}

extension MemorySemanticIndex.Configuration {
    /// Reads a memory semantic index's settings from `config`; the clock stays `SystemCacheClock()`.
    ///
    /// Keys:
    /// - `dimension` (int, 1 ... 65,536, default: the `dimension` argument, which is the embedder's)
    /// - `maximumRecords` (int, 1 ... 100,000,000, default `100000`)
    /// - `sweepIntervalSeconds` (double, seconds ≥ 0.01, default `60`)
    /// - `name` (string, default `memory-semantic`)
    /// - `approximateAbove` (int ≥ 1, default `20000`)
    /// - `approximateCandidates` (int, 1 ... 100,000, default `256`)
    ///
    /// - Throws: `CacheError` `.invalidConfiguration` naming the key when a value is malformed or out of range.
    public init(config: ConfigReader, dimension: Int) throws(CacheError) {
        let defaults = Self(dimension: dimension)
        self.init(
            dimension: try config.cacheKitInt("dimension", default: dimension, in: 1...65_536),
            maximumRecords: try config.cacheKitInt("maximumRecords", default: defaults.maximumRecords, in: 1...100_000_000),
            sweepInterval: try config.cacheKitSeconds("sweepIntervalSeconds", default: defaults.sweepInterval, minimum: 0.01),
            name: config.cacheKitString("name") ?? defaults.name,
            approximateAbove: try config.cacheKitInt("approximateAbove", default: defaults.approximateAbove, in: 1...Int.max),
            approximateCandidates: try config.cacheKitInt("approximateCandidates", default: defaults.approximateCandidates, in: 1...100_000)
        )
    }
}
#endif
