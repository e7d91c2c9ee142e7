import Logging
import Metrics
public import ServiceLifecycle

/// A layered cache in front of a chat-completions model.
///
/// ## Read order
/// 1. The policy decides whether the request may be read and/or written (`CachePolicy`, `CacheControl`).
/// 2. The exact key is computed once and looked up in `layers` in order. A hit in a slower layer is written back
///    (backfilled) into the faster layers before it is returned, with its original expiry: a backfill never extends
///    an entry's life.
/// 3. Only on an exact miss, the semantic layer embeds the last user message (once per request) and searches the
///    request's partition. A match at or above the threshold is served, reports its similarity, and is backfilled
///    into the exact layers under the new request's key.
/// 4. An entry past its TTL but inside its stale window is served as stale and one background refresh runs.
///
/// ## Write policy
/// On a miss, concurrent identical requests are coalesced (single flight): one upstream call, every waiter gets its
/// answer. The answer is written through to every exact layer (each capped at its TTL ceiling) and indexed
/// semantically, unless it is an error, a refusal, larger than the policy allows, or the request is `no-store`.
///
/// ## Failure policy
/// With `.treatAsMiss` (the default) a layer that throws or exceeds its timeout is a miss on reads and skipped on
/// writes; the error is logged and counted, and the request is still answered. An entry that fails to decode is
/// deleted and counted as corrupt. With `.propagate`, layer errors are thrown. Upstream errors are always thrown and
/// never cached.
///
/// ## Invalidation
/// Runs from the slowest layer to the fastest (semantic, then exact layers in reverse) so a concurrent read cannot
/// backfill a stale copy upward, then is published on the invalidation bus so other instances drop their local copies.
///
/// `run()` runs the layers' background services and applies other instances' invalidations; the cache also works
/// without it (no sweeps, no cross-instance invalidation).
public final class MultiLayerCache: Service, Sendable {
    /// The configuration the cache was made with.
    public let configuration: CacheConfiguration
    let recorder: CacheStatisticsRecorder
    let flights: SingleFlight<FlightResult>
    let refreshes = LockedState(0)
    /// Reads that may backfill faster layers hold a window of it; an invalidation waits for the windows opened
    /// before it, then clears the faster layers again (see `removeEverywhere`).
    let backfillGate = BackfillGate()
    /// The semantic audit's per-entry records and budget.
    let audits = AuditBook()
    /// Invalidations a layer or the bus has not applied yet: retried by `run()`, and fencing reads until applied.
    let outbox: InvalidationOutbox

    var logger: Logger { self.configuration.logger }

    struct FlightResult: Sendable {
        var response: ChatResponse
        /// The entry and its layer, when another caller stored it while this flight was being set up.
        var cached: (layer: Int, entry: CacheEntry)?
    }

    /// Creates a cache from parts that fit together. Nothing connects until the layers are first used or `run()`
    /// starts.
    ///
    /// - Throws: `CacheError` `.invalidConfiguration` naming the setting, for any problem `CacheConfiguration.validate()`
    ///   finds (an embedder of another dimension than its index, two layers with one name, ...).
    public init(configuration: CacheConfiguration) throws(CacheError) {
        try configuration.validate()
        self.configuration = configuration
        self.recorder = CacheStatisticsRecorder(
            layerNames: configuration.layers.map(\.name),
            semantic: configuration.semantic != nil,
            metricsPrefix: configuration.metricsPrefix,
            metricsFactory: configuration.metricsFactory ?? MetricsSystem.factory
        )
        self.flights = SingleFlight(limit: max(1, configuration.maximumInFlightCalls))
        self.outbox = InvalidationOutbox(file: configuration.invalidationOutboxPath.map { ($0, configuration.layers.map(\.name)) })
        if let problem = self.outbox.load() {
            configuration.logger.error("the invalidation outbox could not be read; pending invalidations may be lost", metadata: ["problem": "\(problem)"])
        }
    }

    /// A snapshot of the statistics.
    public func statistics() -> CacheStatistics { self.recorder.snapshot() }

    /// The exact key of `request` in `scope` (the default scope when `nil`).
    public func key(for request: ChatRequest, in scope: CacheScope? = nil) -> CacheKey {
        self.configuration.keyer.key(for: request, in: scope ?? self.configuration.defaultScope)
    }

    // MARK: - Failures

    func layerFailed(_ index: Int, _ error: any Error, operation: String) throws {
        if error is CancellationError || Task.isCancelled { throw error }
        self.recorder.layerError(index)
        self.logger.warning(
            "cache layer failed; treated as a miss",
            metadata: ["layer": "\(self.configuration.layers[index].name)", "operation": "\(operation)", "error": "\(error)"]
        )
        if self.configuration.failurePolicy == .propagate { throw error }
    }

    func semanticFailed(_ error: any Error, operation: String) throws {
        if error is CancellationError || Task.isCancelled { throw error }
        self.recorder.semanticError()
        self.logger.warning("semantic layer failed; treated as a miss", metadata: ["operation": "\(operation)", "error": "\(error)"])
        if self.configuration.failurePolicy == .propagate { throw error }
    }
}
