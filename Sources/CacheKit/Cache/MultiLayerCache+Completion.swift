
/// The one-call API: lookup, single-flight upstream call, store, and stale-while-revalidate refreshes.
extension MultiLayerCache {
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
                if lookup.outcome.source == .semanticHit, let audit = self.configuration.semantic?.audit {
                    self.scheduleAudit(request, lookup: lookup, served: response, audit: audit, upstream: upstream)
                }
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

    /// Audits a semantic hit in the background when it is due and the budget allows (see `SemanticLayer.Audit`).
    func scheduleAudit(_ request: ChatRequest, lookup: CacheLookup, served: ChatResponse, audit: SemanticLayer.Audit, upstream: some CompletionProvider) {
        guard let entryKey = lookup.semanticMatchKey else { return }
        let score = lookup.outcome.semanticScore ?? lookup.outcome.similarity ?? 1
        guard self.audits.isDue(entryKey, audit: audit, random: Double.random(in: 0..<1)) else { return }
        guard self.audits.takeCall(at: self.configuration.clock.now(), audit: audit), self.takeBackgroundSlot() else {
            self.recorder.auditSkipped()
            return
        }
        let namespace = lookup.scope.namespace
        Task {
            defer { self.releaseBackgroundSlot() }
            let fresh: ChatResponse
            let agreed: Bool
            do {
                fresh = try await upstream.complete(request)
                agreed = try await audit.comparison(served, fresh)
            } catch {
                self.logger.debug("semantic audit failed", metadata: ["error": "\(error)"])
                self.recorder.auditFailed()
                return
            }
            let cost = fresh.usage.flatMap { self.configuration.prices.cost(of: $0, model: fresh.model) } ?? 0
            self.audits.spend(cost)
            let overBound = self.audits.record(entryKey, agreed: agreed, score: score, namespace: namespace, audit: audit)
            self.recorder.audited(agreed: agreed, namespace: namespace, cost: cost)
            guard !agreed else { return }
            // The paraphrase's own answer replaces the borrowed one under its exact key (and in the index).
            _ = try? await self.store(fresh, for: lookup)
            if overBound, let semantic = self.configuration.semantic {
                do {
                    _ = try await semantic.index.remove(entryKey)
                    self.recorder.auditRemoved()
                } catch {
                    self.logger.debug("removing an audited entry failed", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    /// Takes one of the `maximumBackgroundRefreshes` slots that background work (refreshes, re-embedding) shares;
    /// `false` when all are taken. Give it back with `releaseBackgroundSlot()`.
    func takeBackgroundSlot() -> Bool {
        let limit = self.configuration.maximumBackgroundRefreshes
        return self.refreshes.withLock { count in
            guard count < limit else { return false }
            count += 1
            return true
        }
    }

    func releaseBackgroundSlot() { self.refreshes.withLock { $0 -= 1 } }

    /// Starts one background refresh of a stale entry, unless one is running for the key or too many are.
    func scheduleRefresh(_ request: ChatRequest, lookup: CacheLookup, upstream: some CompletionProvider) {
        guard self.takeBackgroundSlot() else { return }
        let started = self.flights.startIfIdle(lookup.key) {
            defer { self.releaseBackgroundSlot() }
            let response = try await self.callUpstream(request, upstream: upstream)
            try await self.store(response, for: lookup)
            return FlightResult(response: response, cached: nil)
        }
        if started {
            self.recorder.refreshStarted()
        } else {
            self.releaseBackgroundSlot()
        }
    }

    /// Background refreshes and coalesced upstream calls still running.
    public var inFlightCalls: Int { self.flights.count }
}
