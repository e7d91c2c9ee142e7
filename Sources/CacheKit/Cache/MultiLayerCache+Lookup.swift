
/// Lookup: the exact layers in order with backfill, then the semantic layer on an exact miss.
extension MultiLayerCache {
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
            let window = self.backfillGate.enter()
            defer { self.backfillGate.leave(window) }
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
        defer { if let window { self.backfillGate.leave(window) } }
        for (index, layer) in self.configuration.layers.enumerated() {
            if index == 1 { window = self.backfillGate.enter() }
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
    func prepareStore(_ lookup: inout CacheLookup, for request: ChatRequest, in scope: CacheScope) {
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
}
