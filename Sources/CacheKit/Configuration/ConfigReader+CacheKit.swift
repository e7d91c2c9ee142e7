#if SwiftConfiguration
public import Configuration
import Logging

/// Reading CacheKit's settings through swift-configuration, strictly: a key that is present but malformed (`"abc"`
/// for an integer, a negative pool size, a timeout of `NaN`) is a `CacheError` `.invalidConfiguration` naming the key,
/// never a silent fall-back to the default. Messages name the key and what was expected, never the value (the
/// `CacheError` rule). Values read with `secret: true` are marked secret, so access reporters redact them.
extension ConfigReader {
    package func cacheKitInt(_ key: String, default defaultValue: Int, in range: ClosedRange<Int>) throws(CacheError) -> Int {
        guard let value = self.int(forKey: ConfigKey(key)) else {
            try self.refuseMalformed(key, expected: "an integer")
            return defaultValue
        }
        guard range.contains(value) else { throw Self.invalid(key, "must be in \(range.lowerBound)...\(range.upperBound)") }
        return value
    }

    package func cacheKitDouble(_ key: String, default defaultValue: Double, in range: ClosedRange<Double>) throws(CacheError) -> Double {
        try self.cacheKitOptionalDouble(key, expected: "a number", in: range) ?? defaultValue
    }

    /// A duration given in seconds (`0.5` is 500 ms).
    package func cacheKitSeconds(_ key: String, default defaultValue: Duration, minimum: Double = 0) throws(CacheError) -> Duration {
        try self.cacheKitOptionalSeconds(key, minimum: minimum) ?? defaultValue
    }

    package func cacheKitOptionalSeconds(_ key: String, minimum: Double = 0) throws(CacheError) -> Duration? {
        try self.cacheKitOptionalDouble(key, expected: "a number of seconds", in: minimum...(365 * 86_400))
            .map { .nanoseconds(Int64(($0 * 1e9).rounded())) }
    }

    /// A number (an integer counts), or `nil` when the key is absent.
    private func cacheKitOptionalDouble(_ key: String, expected: String, in range: ClosedRange<Double>) throws(CacheError) -> Double? {
        guard let value = self.double(forKey: ConfigKey(key)) ?? self.int(forKey: ConfigKey(key)).map(Double.init) else {
            try self.refuseMalformed(key, expected: expected)
            return nil
        }
        guard value.isFinite, range.contains(value) else { throw Self.invalid(key, "must be a number in \(range.lowerBound)...\(range.upperBound)") }
        return value
    }

    package func cacheKitBool(_ key: String, default defaultValue: Bool) throws(CacheError) -> Bool {
        guard let value = self.bool(forKey: ConfigKey(key)) else {
            try self.refuseMalformed(key, expected: "true or false")
            return defaultValue
        }
        return value
    }

    /// A string; an empty string counts as unset.
    package func cacheKitString(_ key: String, secret: Bool = false) -> String? {
        guard let value = self.string(forKey: ConfigKey(key), isSecret: secret), !value.isEmpty else { return nil }
        return value
    }

    /// One of a fixed set of names, compared case-insensitively.
    package func cacheKitChoice<Value>(_ key: String, default defaultValue: Value, _ choices: KeyValuePairs<String, Value>) throws(CacheError) -> Value {
        guard let text = self.cacheKitString(key) else { return defaultValue }
        guard let match = choices.first(where: { $0.key.lowercased() == text.lowercased() }) else {
            throw Self.invalid(key, "must be one of \(choices.map(\.key).joined(separator: ", "))")
        }
        return match.value
    }

    /// Present as text but not convertible to the expected type: an error, not the default.
    private func refuseMalformed(_ key: String, expected: String) throws(CacheError) {
        guard self.string(forKey: ConfigKey(key)) != nil else { return }
        throw Self.invalid(key, "expected \(expected)")
    }

    package static func invalid(_ key: String, _ reason: String) -> CacheError {
        CacheError(.invalidConfiguration, "configuration key '\(key)': \(reason)")
    }
}

extension CachePolicy {
    /// Reads a policy from `config`.
    ///
    /// Keys (relative to the reader; scope it, e.g. `config.scoped(to: "cache.policy")`):
    /// - `cachesNondeterministicRequests` (bool, default `false`)
    /// - `defaultTtlSeconds` (double, seconds > 0, default `3600`)
    /// - `defaultStaleWhileRevalidateSeconds` (double, seconds ≥ 0, default `0`)
    /// - `maximumValueBytes` (int, 1 ... 1 GiB, default `8388608`)
    ///
    /// - Throws: `CacheError` `.invalidConfiguration` naming the key when a value is present but malformed or out of
    ///   range.
    public init(config: ConfigReader) throws(CacheError) {
        let defaults = CachePolicy()
        self.init(
            cachesNondeterministicRequests: try config.cacheKitBool("cachesNondeterministicRequests", default: defaults.cachesNondeterministicRequests),
            defaultTTL: try config.cacheKitSeconds("defaultTtlSeconds", default: defaults.defaultTTL, minimum: 0.001),
            defaultStaleWhileRevalidate: try config.cacheKitSeconds("defaultStaleWhileRevalidateSeconds", default: defaults.defaultStaleWhileRevalidate),
            maximumValueBytes: try config.cacheKitInt("maximumValueBytes", default: defaults.maximumValueBytes, in: 1...(1 << 30))
        )
    }
}

extension SemanticRerank {
    /// Reads re-ranking settings from `config`.
    ///
    /// Keys:
    /// - `candidates` (int, 1 ... 100, default `5`)
    /// - `lexicalWeight` (double, 0 ... 10, default `0.2`)
    /// - `ambiguityMargin` (double, 0 ... 1, default `0.02`; `0` turns the check off)
    ///
    /// - Throws: `CacheError` `.invalidConfiguration` naming the key when a value is malformed or out of range.
    public init(config: ConfigReader) throws(CacheError) {
        let defaults = SemanticRerank()
        self.init(
            candidates: try config.cacheKitInt("candidates", default: defaults.candidates, in: 1...100),
            lexicalWeight: Float(try config.cacheKitDouble("lexicalWeight", default: Double(defaults.lexicalWeight), in: 0...10)),
            ambiguityMargin: Float(try config.cacheKitDouble("ambiguityMargin", default: Double(defaults.ambiguityMargin), in: 0...1))
        )
    }
}

extension SemanticGuards {
    /// Reads which guards apply from `config`.
    ///
    /// Key: `guards` (string: `all`, the default; `none`; or a comma-separated list of `numbers`, `negation`,
    /// `opposites`, `direction`, `entities`, `language`).
    ///
    /// - Throws: `CacheError` `.invalidConfiguration` naming the key when a name is unknown.
    public init(config: ConfigReader) throws(CacheError) {
        self = try SemanticGuards(list: config.cacheKitString("guards") ?? "all")
    }

    /// Parses `all`, `none` or a comma-separated list of guard names.
    ///
    /// - Throws: `CacheError` `.invalidConfiguration` when a name is unknown.
    public init(list: String) throws(CacheError) {
        switch list.lowercased() {
        case "all": self = .all
        case "none", "": self = .none
        default:
            var enabled = Set<Guard>()
            for name in list.split(separator: ",") {
                let trimmed = name.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed()
                guard let kind = Guard(rawValue: String(trimmed).lowercased()) else {
                    let known = Guard.allCases.map(\.rawValue).joined(separator: ", ")
                    throw CacheError(.invalidConfiguration, "guards: unknown guard '\(String(trimmed).prefix(32))' (known: \(known), all, none)")
                }
                enabled.insert(kind)
            }
            self.init(enabled)
        }
    }
}

extension CacheLayer.Options {
    /// Reads how the cache uses one layer from `config`.
    ///
    /// Keys:
    /// - `ttlCeilingSeconds` (double, seconds > 0, default: none)
    /// - `timeoutSeconds` (double, seconds > 0, default: none)
    /// - `isShared` (bool, default `false`, or `defaultShared` when given)
    ///
    /// - Throws: `CacheError` `.invalidConfiguration` naming the key when a value is malformed or out of range.
    public init(config: ConfigReader, defaultShared: Bool = false) throws(CacheError) {
        self.init(
            ttlCeiling: try config.cacheKitOptionalSeconds("ttlCeilingSeconds", minimum: 0.001),
            timeout: try config.cacheKitOptionalSeconds("timeoutSeconds", minimum: 0.001),
            isShared: try config.cacheKitBool("isShared", default: defaultShared)
        )
    }
}

extension CacheConfiguration {
    /// Reads the settings of a cache from `config`. Layers, the semantic layer, the tracer, write rules, the bus and
    /// the clock are objects, set in code after reading.
    ///
    /// Keys (relative to the reader; scope it, e.g. `config.scoped(to: "cache")`):
    /// - `policy.*`: see `CachePolicy.init(config:)`
    /// - `failurePolicy` (string `treatAsMiss` or `propagate`, default `treatAsMiss`)
    /// - `instanceID` (string, default: random)
    /// - `metricsPrefix` (string, default `cachekit`)
    /// - `logLabel` (string, default `cachekit`)
    /// - `maximumInFlightCalls` (int, 1 ... 10,000,000, default `10000`)
    /// - `maximumBackgroundRefreshes` (int, 0 ... 100,000, default `64`)
    ///
    /// With `EnvironmentVariablesProvider` and `config.scoped(to: "cache")`, `CACHE_POLICY_DEFAULT_TTL_SECONDS=600`
    /// sets the default TTL.
    ///
    /// - Throws: `CacheError` `.invalidConfiguration` naming the key when a value is malformed or out of range.
    public init(config: ConfigReader) throws(CacheError) {
        let defaults = CacheConfiguration()
        self.init(
            policy: try CachePolicy(config: config.scoped(to: "policy")),
            failurePolicy: try config.cacheKitChoice(
                "failurePolicy", default: defaults.failurePolicy, ["treatAsMiss": .treatAsMiss, "propagate": .propagate]),
            instanceID: config.cacheKitString("instanceID"),
            logger: config.cacheKitString("logLabel").map { Logger(label: $0) } ?? defaults.logger,
            metricsPrefix: config.cacheKitString("metricsPrefix") ?? defaults.metricsPrefix,
            maximumInFlightCalls: try config.cacheKitInt("maximumInFlightCalls", default: defaults.maximumInFlightCalls, in: 1...10_000_000),
            maximumBackgroundRefreshes: try config.cacheKitInt(
                "maximumBackgroundRefreshes", default: defaults.maximumBackgroundRefreshes, in: 0...100_000)
        )
    }
}
#endif
