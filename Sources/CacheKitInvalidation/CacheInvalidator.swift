public import CacheKit
public import Logging
public import Metrics

/// Applies invalidations to a `MultiLayerCache` with a reason: from application events through `EventRule`s, or
/// directly by tag, key, scope, query-text pattern or semantic radius.
///
/// Every removal goes through `MultiLayerCache.invalidate`, which removes from the semantic index, then the shared
/// layers, then the local ones, and then publishes on the `InvalidationBus` so every other instance drops its
/// local copy. Each one is written to the audit log (swift-log, `notice`, with reason, target and count) and
/// counted: `cachekit_invalidations_total` and `cachekit_invalidated_entries_total`, both by `reason` and `kind`.
public final class CacheInvalidator: Sendable {
    /// One applied invalidation.
    public struct Record: Sendable, CustomStringConvertible {
        public var reason: String
        public var target: InvalidationTarget
        /// Entries removed here (every layer of this instance, shared layers included); other instances' local
        /// copies are removed when they receive the bus event.
        public var removed: Int
        /// Where the invalidation is not applied yet (retried in the background; reads are fenced until then).
        public var pending: [String] = []
        /// Whether every layer and the bus applied it.
        public var isComplete: Bool { self.pending.isEmpty }

        public var description: String {
            "\(self.reason): \(self.target) (\(self.removed) removed\(self.pending.isEmpty ? "" : "; pending in " + self.pending.joined(separator: ", ")))"
        }
    }

    /// Totals since the invalidator was created, by reason.
    public struct Totals: Sendable {
        public var invalidations: [String: Int] = [:]
        public var removedEntries: [String: Int] = [:]
    }

    public let cache: MultiLayerCache
    public let rules: InvalidationRules
    private let logger: Logger
    private let metricsFactory: any MetricsFactory
    private let totals = LockedState(Totals())

    /// An invalidator with the rules the cache was built with (`CacheConfiguration.writeRules`): the time rules
    /// and event rules are given once, in the configuration.
    ///
    /// - Throws: `CacheError` `.invalidConfiguration` when the cache's `writeRules` are not `InvalidationRules`.
    public convenience init(
        cache: MultiLayerCache, logger: Logger = Logger(label: "cachekit.invalidation"), metricsFactory: (any MetricsFactory)? = nil
    ) throws(CacheError) {
        guard let rules = cache.configuration.writeRules as? InvalidationRules else {
            throw CacheError(
                .invalidConfiguration,
                "writeRules: the cache was built without InvalidationRules; set configuration.writeRules, or pass the event rules with init(cache:rules:)"
            )
        }
        self.init(cache: cache, rules: rules, logger: logger, metricsFactory: metricsFactory)
    }

    /// An invalidator with event rules of its own, for a cache whose configuration has no `InvalidationRules`
    /// (event rules only; time rules act when answers are stored, so they belong in `CacheConfiguration.writeRules`).
    ///
    /// Metrics go to `metricsFactory`; default: the cache's (`CacheConfiguration.metricsFactory`), else the
    /// bootstrapped `MetricsSystem`.
    public init(
        cache: MultiLayerCache, rules: InvalidationRules, logger: Logger = Logger(label: "cachekit.invalidation"),
        metricsFactory: (any MetricsFactory)? = nil
    ) {
        self.cache = cache
        self.rules = rules
        self.logger = logger
        self.metricsFactory = metricsFactory ?? cache.configuration.metricsFactory ?? MetricsSystem.factory
    }

    /// Counts so far, by reason.
    public var statistics: Totals { self.totals.withLock { $0 } }

    /// Applies the event rules for `event` (in `scope`, default the cache's default scope, for patterns).
    ///
    /// - Throws: `CacheError` `.invalidRequest` if the event lacks an attribute its rules need (nothing is removed
    ///   then); layer errors only under `FailurePolicy.propagate`.
    @discardableResult
    public func handle(_ event: CacheEvent, in scope: CacheScope? = nil) async throws -> [Record] {
        let targets = try self.rules.targets(for: event, in: scope ?? self.cache.configuration.defaultScope)
        if targets.isEmpty { self.logger.debug("event matches no invalidation rule", metadata: ["event": "\(event.type)"]) }
        var records: [Record] = []
        for target in targets {
            records.append(try await self.invalidate(target, reason: "event \(event.type)", event: event))
        }
        return records
    }

    /// Invalidates `target` everywhere, recording `reason`.
    @discardableResult
    public func invalidate(_ target: InvalidationTarget, reason: String) async throws -> Record {
        try await self.invalidate(target, reason: reason, event: nil)
    }

    /// Removes semantic records within `minimumSimilarity` of `text` (the semantic index only; see
    /// `MultiLayerCache.invalidate(near:minimumSimilarity:in:)`), recording `reason`.
    @discardableResult
    public func invalidate(near text: String, minimumSimilarity: Float, in scope: CacheScope? = nil, reason: String) async throws -> Int {
        let removed = try await self.cache.invalidate(near: text, minimumSimilarity: minimumSimilarity, in: scope)
        self.record(reason: reason, kind: "semantic_radius", removed: removed)
        self.logger.notice(
            "cache invalidation",
            metadata: ["reason": "\(reason)", "target": "within \(minimumSimilarity) of a text", "removed": "\(removed)"]
        )
        return removed
    }

    private func invalidate(_ target: InvalidationTarget, reason: String, event: CacheEvent?) async throws -> Record {
        let report = try await self.cache.invalidate(target)
        self.record(reason: reason, kind: target.kind, removed: report.removed)
        var metadata: Logger.Metadata = ["reason": "\(reason)", "kind": "\(target.kind)", "target": "\(target)", "removed": "\(report.removed)"]
        if let event { metadata["event"] = "\(event)" }
        if !report.isComplete { metadata["pending"] = "\(report.pendingNames.joined(separator: ","))" }
        self.logger.notice("cache invalidation", metadata: metadata)
        return Record(reason: reason, target: target, removed: report.removed, pending: report.pendingNames)
    }

    private func record(reason: String, kind: String, removed: Int) {
        self.totals.withLock {
            $0.invalidations[reason, default: 0] += 1
            $0.removedEntries[reason, default: 0] += removed
        }
        let dimensions = [("reason", reason), ("kind", kind)]
        Counter(label: "cachekit_invalidations_total", dimensions: dimensions, factory: self.metricsFactory).increment()
        Counter(label: "cachekit_invalidated_entries_total", dimensions: dimensions, factory: self.metricsFactory).increment(by: removed)
    }
}
