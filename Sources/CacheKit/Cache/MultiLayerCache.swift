import Logging
import ServiceLifecycle

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
    /// Reads that may backfill faster layers, by invalidation epoch: an invalidation waits for the ones that began
    /// before it, then clears the faster layers again, so a copy read before the removal cannot be written back
    /// after it (see `removeEverywhere`).
    let backfillWindows = LockedState(BackfillWindows())
    /// Invalidations a layer or the bus has not applied yet: retried by `run()`, and fencing reads until applied.
    let outbox: InvalidationOutbox

    struct BackfillWindows {
        var epoch: UInt64 = 0
        var active: [UInt64: Int] = [:]
        var waiters: [(epoch: UInt64, continuation: CheckedContinuation<Void, Never>)] = []
    }
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
            metricsPrefix: configuration.metricsPrefix
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

    // MARK: - Lookup

    /// Looks `request` up in every layer, as the read order above says. Does not call upstream.
    ///
    /// - Throws: only under `FailurePolicy.propagate` (a layer's error), or `CancellationError`.
    public func lookup(_ request: ChatRequest, in scope: CacheScope? = nil, control: CacheControl = .none) async throws -> CacheLookup {
        guard self.configuration.tracer != nil else { return try await self.lookupUntraced(request, in: scope, control: control) }
        return try await self.traced("cachekit.lookup") { span in
            let lookup = try await self.lookupUntraced(request, in: scope, control: control)
            Self.annotate(span, with: lookup.outcome, scope: lookup.scope)
            return lookup
        }
    }

    func lookupUntraced(_ request: ChatRequest, in scope: CacheScope?, control: CacheControl) async throws -> CacheLookup {
        let started = ContinuousClock.now
        var scope = scope ?? self.configuration.defaultScope
        if let namespace = control.namespace { scope = scope.with(namespace: namespace) }
        let decision = self.configuration.policy.decision(for: request, control: control)
        self.recorder.request(skipped: decision.skipReason)
        let key = self.configuration.keyer.key(for: request, in: scope)
        var lookup = CacheLookup(
            entry: nil,
            outcome: CacheOutcome(source: decision.write ? (decision.read ? .miss : .refresh) : (decision.read ? .miss : .bypass)),
            key: key, scope: scope, decision: decision, control: control, semantic: nil
        )
        lookup.outcome.skipReason = decision.skipReason
        lookup.outcome.key = key
        guard decision.read else {
            // A refresh (no-cache) reads nothing but stores its answer: in the semantic index too, so that
            // paraphrases get the new answer rather than the record it replaces, and with its query text.
            if decision.write { self.prepareStore(&lookup, for: request, in: scope) }
            return lookup
        }

        let now = self.configuration.clock.now()
        if let (index, entry) = try await self.exactLookup(key, control: control, now: now) {
            lookup.entry = entry
            lookup.outcome.source = .exactHit(layer: index)
            lookup.outcome.layerName = self.configuration.layers[index].name
            lookup.outcome.isStale = !entry.isFresh(at: now)
            lookup.outcome.entryAge = entry.age(at: now)
            lookup.outcome.lookupLatency = ContinuousClock.now - started
            self.recorder.served(entry: entry, latency: lookup.outcome.lookupLatency, stale: lookup.outcome.isStale)
            return lookup
        }

        // On the miss path only (the hit path stays free of it): the text stored with the answer, for patterns,
        // write rules and re-ranking.
        self.prepareStore(&lookup, for: request, in: scope)
        if let semantic = self.configuration.semantic, lookup.semantic != nil {
            let window = self.enterBackfillWindow()
            defer { self.leaveBackfillWindow(window) }
            if let match = try await self.semanticLookup(&lookup, layer: semantic, control: control, now: now) {
                lookup.entry = match.entry
                lookup.outcome.source = .semanticHit
                lookup.outcome.similarity = match.similarity
                lookup.outcome.layerName = semantic.index.name
                lookup.outcome.isStale = !match.entry.isFresh(at: now)
                lookup.outcome.entryAge = match.entry.age(at: now)
                lookup.outcome.lookupLatency = ContinuousClock.now - started
                self.recorder.served(entry: match.entry, latency: lookup.outcome.lookupLatency, stale: lookup.outcome.isStale)
                try? await self.writeExact(match.entry, for: key, upTo: self.configuration.layers.count, now: now)
                return lookup
            }
        }
        lookup.outcome.lookupLatency = ContinuousClock.now - started
        return lookup
    }

    /// Reads the exact layers in order; backfills the faster ones on a hit in a slower one.
    func exactLookup(_ key: CacheKey, control: CacheControl, now: CacheTime, recording: Bool = true) async throws -> (Int, CacheEntry)? {
        // Past the first layer a hit is backfilled: hold a backfill window from that read to the end (the L1 hit
        // path takes none).
        var window: UInt64?
        defer { if let window { self.leaveBackfillWindow(window) } }
        for (index, layer) in self.configuration.layers.enumerated() {
            if index == 1 { window = self.enterBackfillWindow() }
            let started = ContinuousClock.now
            let found: CacheEntry?
            do {
                if self.configuration.tracer == nil {
                    found = try await withDeadline(layer.options.timeout, backend: layer.name) { try await layer.backend.get(key) }
                } else {
                    found = try await self.traced("cachekit.get") { span in
                        span?.attributes["cachekit.layer"] = layer.name
                        let entry = try await withDeadline(layer.options.timeout, backend: layer.name) { try await layer.backend.get(key) }
                        span?.attributes["cachekit.hit"] = entry != nil
                        return entry
                    }
                }
            } catch let error as CacheError where error.code == .corruptEntry {
                self.recorder.layerError(index, corrupt: true)
                self.logger.warning("corrupt entry deleted", metadata: ["layer": "\(layer.name)", "error": "\(error)"])
                _ = try? await withDeadline(layer.options.timeout, backend: layer.name) { try await layer.backend.remove(key) }
                continue
            } catch {
                try self.layerFailed(index, error, operation: "get")
                continue
            }
            let latency = ContinuousClock.now - started
            guard let entry = found, entry.isUsable(at: now), self.acceptable(entry, control: control, now: now) else {
                if recording { self.recorder.layerMiss(index, latency: latency) }
                continue
            }
            // An invalidation this layer has not applied yet names the entry: not served, not backfilled.
            if self.outbox.blocks(entry, key: key, in: .layer(index)) {
                self.logger.debug("entry withheld: a pending invalidation names it", metadata: ["layer": "\(layer.name)"])
                if recording { self.recorder.layerMiss(index, latency: latency) }
                continue
            }
            if recording { self.recorder.layerHit(index, latency: latency, age: entry.age(at: now)) }
            if index > 0 { try? await self.writeExact(entry, for: key, upTo: index, now: now) }
            return (index, entry)
        }
        return nil
    }

    func acceptable(_ entry: CacheEntry, control: CacheControl, now: CacheTime) -> Bool {
        guard let maxAge = control.maxAge else { return true }
        return entry.age(at: now) <= maxAge
    }

    /// Sets what a store needs beyond the key: the query text (for patterns, write rules and re-ranking) and,
    /// with a semantic layer, the partition and text to embed.
    private func prepareStore(_ lookup: inout CacheLookup, for request: ChatRequest, in scope: CacheScope) {
        let query = self.configuration.semantic != nil ? self.configuration.keyer.semanticQuery(for: request, in: scope) : nil
        lookup.queryText = query?.text ?? request.lastUserText
        // A query past the semantic layer's bound is exact-only (never embedded, never matched on a prefix).
        if let query, let semantic = self.configuration.semantic, query.text.utf8.count <= semantic.maximumQueryBytes {
            lookup.semantic = CacheLookup.SemanticContext(partition: query.partition, text: query.text, vector: nil)
        }
    }

    func semanticLookup(
        _ lookup: inout CacheLookup,
        layer: SemanticLayer,
        control: CacheControl,
        now: CacheTime
    ) async throws -> SemanticMatch? {
        guard let context = lookup.semantic else { return nil }
        let vector: [Float]
        do {
            let started = ContinuousClock.now
            vector = try await self.traced("cachekit.embed") { span in
                span?.attributes["cachekit.embedding_model"] = layer.embedder.model
                return try await withDeadline(layer.timeout, backend: layer.index.name) { try await layer.embedder.embed(context.text) }
            }
            self.recorder.embedding(latency: ContinuousClock.now - started)
        } catch {
            try self.semanticFailed(error, operation: "embed")
            return nil
        }
        lookup.semantic?.vector = vector
        let threshold = layer.threshold(for: lookup.scope.namespace)
        // With re-ranking, a candidate's score can exceed its cosine by up to the lexical weight.
        let bonus = layer.rerank?.lexicalWeight ?? 0
        let query = SemanticQuery(
            vector: vector, partition: context.partition,
            minimumSimilarity: max(-1, threshold - max(layer.nearMissMargin, 0) - bonus), limit: layer.rerank?.candidates ?? 1
        )
        let started = ContinuousClock.now
        let matches: [SemanticMatch]
        do {
            matches = try await withDeadline(layer.timeout, backend: layer.index.name) { try await layer.index.search(query) }
        } catch {
            try self.semanticFailed(error, operation: "search")
            return nil
        }
        lookup.outcome.nearestSimilarity = matches.first?.similarity
        // Only entries that could be served compete; the best by score (or by cosine without re-ranking) wins.
        let numbers = layer.numbersMustMatch ? SemanticRerank.numbers(context.text) : []
        let usable = matches.filter { match in
            guard match.entry.isUsable(at: now), self.acceptable(match.entry, control: control, now: now) else { return false }
            guard !self.outbox.blocks(match.entry, key: match.key, in: .semantic) else { return false }
            guard layer.numbersMustMatch, let stored = match.entry.queryText else { return true }
            return SemanticRerank.numbers(stored) == numbers
        }
        let best: (match: SemanticMatch, score: Float, ambiguous: Bool)?
        if let rerank = layer.rerank {
            best = rerank.choose(from: usable, query: context.text).map { ($0.match, $0.score, $0.isAmbiguous) }
        } else {
            best = usable.first.map { ($0, $0.similarity, false) }
        }
        let above = best.map { $0.score >= threshold } ?? false
        // Above the threshold but too close to an entry stored for another question: a miss, not a guess.
        let ambiguous = above && best?.ambiguous == true
        let hit = above && !ambiguous
        lookup.outcome.semanticScore = best?.score
        self.recorder.semanticLookup(
            hit: hit, similarity: best?.score ?? matches.first?.similarity, threshold: threshold, margin: layer.nearMissMargin,
            ambiguous: ambiguous, searchLatency: ContinuousClock.now - started
        )
        return hit ? best?.match : nil
    }

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

    // MARK: - Store

    /// Stores `response` as the answer to the request that `lookup` came from, in every exact layer and the
    /// semantic index, if the policy and the response allow it. Returns whether it was stored.
    ///
    /// - Throws: only under `FailurePolicy.propagate`, or `CancellationError`.
    @discardableResult
    public func store(_ response: ChatResponse, for lookup: CacheLookup) async throws -> Bool {
        guard lookup.decision.write else { return false }
        if let reason = response.uncacheableReason {
            self.recorder.notStored()
            self.logger.debug("answer not stored", metadata: ["reason": "\(reason)"])
            return false
        }
        let bytes = response.jsonBytes()
        guard bytes.count <= self.configuration.policy.maximumValueBytes else {
            self.recorder.notStored()
            self.logger.info("answer not stored: larger than the policy's maximum", metadata: ["bytes": "\(bytes.count)"])
            return false
        }
        let now = self.configuration.clock.now()
        let policy = self.configuration.policy
        var control = lookup.control
        if let rules = self.configuration.writeRules {
            rules.apply(to: &control, queryText: lookup.queryText, scope: lookup.scope)
        }
        let expires = now + (control.ttl ?? policy.defaultTTL)
        let usage = response.usage
        let model = response.model.isEmpty ? nil : response.model
        let entry = CacheEntry(
            value: bytes,
            createdAt: now,
            expiresAt: expires,
            staleUntil: expires + (control.staleWhileRevalidate ?? policy.defaultStaleWhileRevalidate),
            tags: control.tags,
            usage: usage,
            model: model,
            cost: usage.flatMap { usage in model.flatMap { self.configuration.prices.cost(of: usage, model: $0) } },
            queryText: lookup.queryText,
            embeddingModel: lookup.semantic != nil ? self.configuration.semantic?.embedder.model : nil
        )
        try await self.write(entry, for: lookup, now: now)
        return true
    }

    func write(_ entry: CacheEntry, for lookup: CacheLookup, now: CacheTime) async throws {
        async let exact: Void = self.writeExact(entry, for: lookup.key, upTo: self.configuration.layers.count, now: now, propagate: true)
        var semanticError: (any Error)?
        if let layer = self.configuration.semantic, var context = lookup.semantic {
            do {
                if context.vector == nil {
                    let text = context.text
                    context.vector = try await withDeadline(layer.timeout, backend: layer.index.name) { try await layer.embedder.embed(text) }
                }
                let record = SemanticRecord(
                    key: lookup.key, partition: context.partition, vector: context.vector!,
                    entry: entry.capped(by: layer.ttlCeiling, now: now)
                )
                try await withDeadline(layer.timeout, backend: layer.index.name) { try await layer.index.insert(record) }
            } catch {
                semanticError = error
            }
        }
        try await exact
        if let semanticError { try self.semanticFailed(semanticError, operation: "insert") }
    }

    /// Writes `entry` into exact layers `0..<end`, each capped at its TTL ceiling, concurrently. A failing layer is
    /// logged and counted; with `propagate` (a store, not a backfill) and the `.propagate` policy, the first
    /// failure is thrown once every layer has finished.
    func writeExact(_ entry: CacheEntry, for key: CacheKey, upTo end: Int, now: CacheTime, propagate: Bool = false) async throws {
        let layers = self.configuration.layers.prefix(end)
        if layers.count == 1, let layer = layers.first, layer.options.timeout == nil {
            // The common L1-only backfill: no task group.
            do { try await layer.backend.set(entry.capped(by: layer.options.ttlCeiling, now: now), for: key) } catch {
                try self.writeFailed(0, error, propagate: propagate)
            }
            return
        }
        let failures = await withTaskGroup(of: (Int, (any Error)?).self) { group in
            for (index, layer) in layers.enumerated() {
                let capped = entry.capped(by: layer.options.ttlCeiling, now: now)
                guard capped.isUsable(at: now) else { continue }
                group.addTask {
                    do {
                        try await withDeadline(layer.options.timeout, backend: layer.name) { try await layer.backend.set(capped, for: key) }
                        return (index, nil)
                    } catch {
                        return (index, error)
                    }
                }
            }
            var failures: [(Int, any Error)] = []
            for await (index, error) in group { if let error { failures.append((index, error)) } }
            return failures.sorted { $0.0 < $1.0 }
        }
        var first: (any Error)?
        for (index, error) in failures {
            do { try self.writeFailed(index, error, propagate: propagate) } catch { first = first ?? error }
        }
        if let first { throw first }
    }

    private func writeFailed(_ index: Int, _ error: any Error, propagate: Bool) throws {
        do { try self.layerFailed(index, error, operation: "set") } catch { if propagate { throw error } }
    }

    // MARK: - One-call API

    /// Answers `request` from the cache or, on a miss, from `upstream`, storing the answer as the policy allows.
    ///
    /// - Parameters:
    ///   - request: The chat request.
    ///   - scope: The tenant/namespace/version to isolate in; `nil` uses the configuration's default scope.
    ///   - control: Per-request controls (`no-store`, `no-cache`, `max-age`, TTL, tags, namespace).
    ///   - upstream: The model to call on a miss.
    /// - Returns: The answer and where it came from.
    /// - Throws: the upstream's error (never cached); a layer's error only under `FailurePolicy.propagate`.
    ///
    /// Cancellation: a coalesced miss runs in a task of its own so that one caller's cancellation cannot fail the
    /// others; a cancelled caller therefore still waits for that shared upstream call to finish.
    public func completion(
        for request: ChatRequest,
        in scope: CacheScope? = nil,
        control: CacheControl = .none,
        upstream: some CompletionProvider
    ) async throws -> CachedCompletion {
        let lookup = try await self.lookup(request, in: scope, control: control)
        if let entry = lookup.entry {
            do {
                let response = try ChatResponse(json: entry.value)
                if lookup.outcome.isStale { self.scheduleRefresh(request, lookup: lookup, upstream: upstream) }
                return CachedCompletion(response: response, outcome: lookup.outcome)
            } catch {
                // A stored value that does not parse is corrupt: drop it everywhere and answer upstream.
                self.logger.warning("cached value is not a valid response; deleted", metadata: ["error": "\(error)"])
                if let index = lookup.outcome.source.exactLayerIndex { self.recorder.layerError(index, corrupt: true) }
                _ = try? await self.removeEverywhere(.key(lookup.key))
            }
        }
        var outcome = lookup.outcome
        if lookup.entry != nil { outcome.source = .miss }
        outcome.similarity = nil
        outcome.entryAge = nil
        outcome.isStale = false
        guard lookup.decision.write else {
            let response = try await self.callUpstream(request, upstream: upstream)
            return CachedCompletion(response: response, outcome: outcome)
        }
        let recheck = lookup.decision.read
        let flight: @Sendable () async throws -> FlightResult = {
            if recheck, let (layer, entry) = try? await self.exactLookup(lookup.key, control: lookup.control, now: self.configuration.clock.now(), recording: false),
                let response = try? ChatResponse(json: entry.value)
            {
                return FlightResult(response: response, cached: (layer, entry))
            }
            let response = try await self.callUpstream(request, upstream: upstream)
            try await self.store(response, for: lookup)
            return FlightResult(response: response, cached: nil)
        }
        guard let (result, joined) = try await self.flights.run(lookup.key, operation: flight) else {
            return CachedCompletion(response: try await flight().response, outcome: outcome)
        }
        if joined {
            self.recorder.coalesced()
            outcome.coalesced = true
        } else if let (layer, entry) = result.cached {
            // Stored by an identical request between this one's lookup and its flight: a hit after all.
            outcome.source = .exactHit(layer: layer)
            outcome.layerName = self.configuration.layers[layer].name
            outcome.entryAge = entry.age(at: self.configuration.clock.now())
            self.recorder.served(entry: entry, latency: outcome.lookupLatency, stale: false)
        }
        return CachedCompletion(response: result.response, outcome: outcome)
    }

    func callUpstream(_ request: ChatRequest, upstream: some CompletionProvider) async throws -> ChatResponse {
        let started = ContinuousClock.now
        do {
            let response = try await self.traced("cachekit.upstream", kind: .client) { span in
                span?.attributes["cachekit.model"] = request.model
                let response = try await upstream.complete(request)
                if let usage = response.usage {
                    span?.attributes["cachekit.prompt_tokens"] = usage.promptTokens
                    span?.attributes["cachekit.completion_tokens"] = usage.completionTokens
                    span?.attributes["cachekit.cached_prompt_tokens"] = usage.cachedPromptTokens
                }
                return response
            }
            self.recorder.upstream(
                latency: ContinuousClock.now - started, failed: false, usage: response.usage,
                promptCacheSaving: response.usage.map { self.configuration.prices.promptCacheSaving(of: $0, model: response.model) } ?? 0
            )
            return response
        } catch {
            self.recorder.upstream(latency: ContinuousClock.now - started, failed: true, usage: nil)
            throw error
        }
    }

    /// Starts one background refresh of a stale entry, unless one is running for the key or too many are.
    func scheduleRefresh(_ request: ChatRequest, lookup: CacheLookup, upstream: some CompletionProvider) {
        let limit = self.configuration.maximumBackgroundRefreshes
        guard self.refreshes.withLock({ count in
            guard count < limit else { return false }
            count += 1
            return true
        }) else { return }
        let started = self.flights.startIfIdle(lookup.key) {
            defer { self.refreshes.withLock { $0 -= 1 } }
            let response = try await self.callUpstream(request, upstream: upstream)
            try await self.store(response, for: lookup)
            return FlightResult(response: response, cached: nil)
        }
        if started {
            self.recorder.refreshStarted()
        } else {
            self.refreshes.withLock { $0 -= 1 }
        }
    }

    /// Background refreshes and coalesced upstream calls still running.
    public var inFlightCalls: Int { self.flights.count }

    // MARK: - Invalidation

    /// Removes what `target` names from every layer, slowest first, then announces it on the invalidation bus.
    ///
    /// The report says how many entries and records were removed in this instance's layers and where the
    /// invalidation could not be applied (a layer that failed or timed out, the bus). Those destinations are not
    /// forgotten: the cache's outbox retries them in `run()` (`retryPendingInvalidations()`) until they apply, and
    /// until then an entry that the target names and that was written before the invalidation is not served from a
    /// destination that lacks it. So once this returns, no stale answer is served, whatever failed.
    ///
    /// - Throws: a layer's error under `.propagate` (the failure is still queued for retry).
    @discardableResult
    public func invalidate(_ target: InvalidationTarget) async throws -> InvalidationReport {
        let report = try await self.traced("cachekit.invalidate") { span in
            var (removed, failed) = try await self.removeEverywhere(target)
            if let bus = self.configuration.invalidationBus {
                do {
                    try await bus.publish(InvalidationEvent(origin: self.configuration.instanceID, target: target))
                } catch {
                    self.logger.warning("invalidation not published; retrying in the background", metadata: ["error": "\(error)"])
                    failed.insert(.bus)
                }
            }
            self.outbox.add(target, at: self.configuration.clock.now(), missingIn: failed)
            span?.attributes["cachekit.target"] = target.kind
            span?.attributes["cachekit.removed"] = removed
            if !failed.isEmpty { span?.attributes["cachekit.pending"] = failed.map(\.description).sorted().joined(separator: ",") }
            return InvalidationReport(removed: removed, pending: failed.sorted { $0.description < $1.description }, pendingNames: self.names(failed))
        }
        self.logger.info("invalidated", metadata: ["target": "\(target)", "report": "\(report)"])
        if !report.isComplete, self.configuration.failurePolicy == .propagate {
            throw CacheError(.connectionFailed, "invalidation pending in \(report.pendingNames.joined(separator: ", "))")
        }
        return report
    }

    /// How many invalidations some layer or the bus has not applied yet.
    public var pendingInvalidations: Int { self.outbox.count }

    /// Retries the pending invalidations that are due; returns how many are still pending. `run()` calls this on its
    /// own; tools and tests may call it to drain the outbox sooner.
    @discardableResult
    public func retryPendingInvalidations() async -> Int {
        for pending in self.outbox.due() {
            var succeeded: Set<InvalidationDestination> = []
            for destination in pending.destinations {
                do {
                    switch destination.base {
                    case .layer(let index):
                        guard self.configuration.layers.indices.contains(index) else { succeeded.insert(destination); continue }
                        let layer = self.configuration.layers[index]
                        _ = try await withDeadline(layer.options.timeout, backend: layer.name) { try await pending.target.apply(to: layer.backend) }
                    case .semantic:
                        guard let semantic = self.configuration.semantic else { succeeded.insert(destination); continue }
                        _ = try await withDeadline(semantic.timeout, backend: semantic.index.name) { try await pending.target.apply(to: semantic.index) }
                    case .bus:
                        guard let bus = self.configuration.invalidationBus else { succeeded.insert(destination); continue }
                        try await bus.publish(InvalidationEvent(origin: self.configuration.instanceID, target: pending.target))
                    }
                    succeeded.insert(destination)
                } catch {
                    self.logger.debug("pending invalidation still failing", metadata: ["destination": "\(destination)", "error": "\(error)"])
                }
            }
            self.outbox.retried(pending.id, succeeded: succeeded)
            if succeeded == pending.destinations {
                self.logger.info("pending invalidation applied", metadata: ["target": "\(pending.target)", "attempts": "\(pending.attempts + 1)"])
            }
        }
        return self.outbox.count
    }

    func names(_ destinations: Set<InvalidationDestination>) -> [String] {
        destinations.map { destination in
            switch destination.base {
            case .layer(let index): self.configuration.layers.indices.contains(index) ? self.configuration.layers[index].name : "layer \(index)"
            case .semantic: self.configuration.semantic?.index.name ?? "semantic"
            case .bus: "bus"
            }
        }.sorted()
    }

    /// Removes `target` from the semantic index and the exact layers (slowest first), then, after reads that began
    /// before, from the layers a backfill can reach again. Returns what was removed and the destinations that failed.
    func removeEverywhere(_ target: InvalidationTarget, localOnly: Bool = false) async throws -> (removed: Int, failed: Set<InvalidationDestination>) {
        var removed = 0
        var failed: Set<InvalidationDestination> = []
        // Another instance's invalidation reaches a semantic index that is not shared (it has already been applied to
        // a shared one).
        if let semantic = self.configuration.semantic, !localOnly || !semantic.isShared {
            do {
                removed += try await withDeadline(semantic.timeout, backend: semantic.index.name) {
                    try await target.apply(to: semantic.index)
                }
            } catch {
                failed.insert(.semantic)
                try self.semanticFailed(error, operation: "remove")
            }
        }
        let layers = self.configuration.layers
        removed += try await self.remove(target, fromLayers: layers.indices, localOnly: localOnly, failed: &failed)
        // A read that found the entry in a slower layer before it was removed may still write it back into a
        // faster one. Wait for the reads that began before now, then clear the layers a backfill can reach again:
        // after this returns, no read can see what was removed.
        if layers.count > 1 || self.configuration.semantic != nil {
            await self.waitForEarlierBackfills()
            let reachable = self.configuration.semantic != nil ? layers.count : layers.count - 1
            removed += try await self.remove(target, fromLayers: 0..<reachable, localOnly: localOnly, failed: &failed)
        }
        return (removed, failed)
    }

    /// Removes `target` from the exact layers in `indices`, slowest first; adds the layers that failed to `failed`.
    private func remove(
        _ target: InvalidationTarget, fromLayers indices: Range<Int>, localOnly: Bool, failed: inout Set<InvalidationDestination>
    ) async throws -> Int {
        var removed = 0
        for index in indices.reversed() {
            let layer = self.configuration.layers[index]
            if localOnly, layer.options.isShared { continue }
            do {
                removed += try await withDeadline(layer.options.timeout, backend: layer.name) {
                    try await target.apply(to: layer.backend)
                }
            } catch {
                failed.insert(.layer(index))
                try self.layerFailed(index, error, operation: "remove")
            }
        }
        return removed
    }

    func enterBackfillWindow() -> UInt64 {
        self.backfillWindows.withLock { state in
            state.active[state.epoch, default: 0] += 1
            return state.epoch
        }
    }

    func leaveBackfillWindow(_ epoch: UInt64) {
        let ready = self.backfillWindows.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.active[epoch, default: 1] -= 1
            if state.active[epoch] == 0 { state.active[epoch] = nil }
            let oldest = state.active.keys.min() ?? .max
            var ready: [CheckedContinuation<Void, Never>] = []
            state.waiters.removeAll { waiter in
                guard oldest >= waiter.epoch else { return false }
                ready.append(waiter.continuation)
                return true
            }
            return ready
        }
        for continuation in ready { continuation.resume() }
    }

    /// Starts a new epoch and returns once every backfill window of an earlier epoch has closed.
    func waitForEarlierBackfills() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = self.backfillWindows.withLock { state -> Bool in
                state.epoch += 1
                if (state.active.keys.min() ?? .max) >= state.epoch { return true }
                state.waiters.append((state.epoch, continuation))
                return false
            }
            if done { continuation.resume() }
        }
    }

    /// Removes records semantically close to `text` in `scope` from the semantic index (every partition).
    ///
    /// Exact-layer copies of those answers (the original request's entry, and backfills of earlier semantic hits)
    /// are not found by similarity and stay until their TTL: tag the entries and invalidate by tag when they must
    /// go everywhere at once. Returns how many records were removed.
    @discardableResult
    public func invalidate(near text: String, minimumSimilarity: Float, in scope: CacheScope? = nil) async throws -> Int {
        guard let semantic = self.configuration.semantic else { return 0 }
        let vector = try await semantic.embedder.embed(text)
        return try await semantic.index.removeAll(near: vector, minimumSimilarity: minimumSimilarity, in: scope ?? self.configuration.defaultScope)
    }

    // MARK: - Service

    /// Runs the layers' background services and applies invalidations published by other instances to this
    /// instance's local layers, until graceful shutdown or cancellation.
    public func run() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            for layer in self.configuration.layers {
                group.addTask { try await layer.backend.run() }
            }
            if let index = self.configuration.semantic?.index {
                group.addTask { try await index.run() }
            }
            if let bus = self.configuration.invalidationBus {
                let events = try await bus.subscribe()
                group.addTask {
                    for await event in events.cancelOnGracefulShutdown() {
                        await self.apply(event)
                    }
                }
            }
            // The outbox: invalidations a layer or the bus missed are retried until they apply.
            group.addTask {
                while !Task.isCancelled, !Task.isShuttingDownGracefully {
                    do { try await Task.sleep(for: self.outbox.initialBackoff) } catch { return }
                    if self.outbox.count > 0 { await self.retryPendingInvalidations() }
                }
            }
            group.addTask {
                try? await gracefulShutdown()
            }
        }
    }

    /// Applies another instance's invalidation to the local layers.
    func apply(_ event: InvalidationEvent) async {
        guard event.origin != self.configuration.instanceID else { return }
        do {
            let (_, failed) = try await self.removeEverywhere(event.target, localOnly: true)
            self.outbox.add(event.target, at: self.configuration.clock.now(), missingIn: failed)
        } catch {
            self.logger.warning("remote invalidation failed", metadata: ["error": "\(error)"])
        }
    }
}
