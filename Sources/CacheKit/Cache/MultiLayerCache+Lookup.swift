
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
                lookup.semanticMatchKey = match.key
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
        // A query past the semantic layer's bound or the model's window is exact-only (never embedded, never
        // matched on the part the model reads).
        if let query, let semantic = self.configuration.semantic, query.text.utf8.count <= semantic.maximumQueryBytes,
            semantic.embedder.readsWhole(query.text)
        {
            // Each model's vectors live in a partition of their own.
            lookup.semantic = CacheLookup.SemanticContext(
                partition: query.partition.embedded(by: semantic.embedder.model), basePartition: query.partition, text: query.text, vector: nil
            )
        }
    }

    func semanticLookup(
        _ lookup: inout CacheLookup,
        layer: SemanticLayer,
        control: CacheControl,
        now: CacheTime
    ) async throws -> SemanticMatch? {
        guard let context = lookup.semantic else { return nil }
        guard let vector = try await self.embed(context.text, with: layer.embedder, layer: layer) else { return nil }
        lookup.semantic?.vector = vector
        var threshold = layer.threshold(for: lookup.scope.namespace)
        // The audits of this namespace may have shown that a higher threshold is needed for the error bound.
        if layer.audit != nil { threshold = max(threshold, self.audits.minimumScore(in: lookup.scope.namespace)) }
        let started = ContinuousClock.now
        guard let found = try await self.bestMatch(
            for: vector, in: context.partition, model: layer.embedder.model, text: context.text, threshold: threshold, layer: layer,
            control: control, now: now
        ) else { return nil }
        lookup.outcome.nearestSimilarity = found.nearest
        lookup.outcome.semanticScore = found.best?.score
        var hit = found.hit
        var match = found.best?.match
        if hit, let chosen = found.best, !layer.verifiers.isEmpty {
            let candidate = HitCandidate(
                query: context.text, cachedQuery: chosen.match.entry.queryText, entry: chosen.match.entry,
                similarity: chosen.match.similarity, score: chosen.score, scope: lookup.scope
            )
            for verifier in layer.verifiers where await self.verdict(of: verifier, on: candidate, timeout: layer.verifierTimeout) != true {
                hit = false
                break
            }
        }
        if !hit, let promotion = layer.promotion, lookup.decision.write, let best = found.best, !found.bestIsAmbiguous,
            best.score < threshold, best.score >= threshold - promotion.margin
        {
            self.promote(best, query: context.text, key: lookup.key, scope: lookup.scope, layer: layer, promotion: promotion)
        }
        // During a model change, an entry embedded by the previous model is found through that model, served, and
        // re-embedded by the new one in the background.
        if !hit, let previous = layer.modelChange.previous,
            let previousVector = try await self.embed(context.text, with: previous, layer: layer),
            let old = try await self.bestMatch(
                for: previousVector, in: context.basePartition.embedded(by: previous.model), model: previous.model, text: context.text,
                threshold: threshold, layer: layer, control: control, now: now
            ), old.hit, let oldMatch = old.best?.match
        {
            hit = true
            match = oldMatch
            lookup.outcome.semanticScore = old.best?.score
            self.reembed(oldMatch, into: context.partition, layer: layer)
        }
        self.recorder.semanticLookup(
            hit: hit, similarity: lookup.outcome.semanticScore ?? found.nearest, threshold: threshold, margin: layer.nearMissMargin,
            ambiguous: found.ambiguous, searchLatency: ContinuousClock.now - started
        )
        return hit ? match : nil
    }

    /// `text`'s vector by `embedder`, or `nil` after a failure that the policy treats as a miss.
    private func embed(_ text: String, with embedder: any EmbeddingProvider, layer: SemanticLayer) async throws -> [Float]? {
        do {
            let started = ContinuousClock.now
            let vector = try await self.traced("cachekit.embed") { span in
                span?.attributes["cachekit.embedding_model"] = embedder.model
                return try await withDeadline(layer.timeout, backend: layer.index.name) { try await embedder.embed(text) }
            }
            self.recorder.embedding(latency: ContinuousClock.now - started)
            return vector
        } catch {
            try self.semanticFailed(error, operation: "embed")
            return nil
        }
    }

    /// The result of one search: the best servable candidate, whether it is a hit, and the nearest similarity.
    private struct SearchResult {
        var best: (match: SemanticMatch, score: Float)?
        var hit: Bool
        var ambiguous: Bool
        var nearest: Float?
        /// Whether the best candidate is within the ambiguity margin of another question's, at any score.
        var bestIsAmbiguous = false
    }

    /// `verifier`'s verdict on `candidate` within `timeout`: `true` accepted, `false` rejected, `nil` failed (an
    /// error or the timeout). Recorded per verifier.
    func verdict(of verifier: any HitVerifier, on candidate: HitCandidate, timeout: Duration?) async -> Bool? {
        let started = ContinuousClock.now
        let accepted: Bool?
        do {
            let verdict = try await self.traced("cachekit.verify") { span in
                span?.attributes["cachekit.verifier"] = verifier.name
                let verdict = try await withDeadline(timeout, backend: verifier.name) { try await verifier.verify(candidate) }
                span?.attributes["cachekit.accepted"] = verdict.accepted
                return verdict
            }
            accepted = verdict.accepted
        } catch {
            self.logger.debug("verifier failed", metadata: ["verifier": "\(verifier.name)", "error": "\(error)"])
            accepted = nil
        }
        self.recorder.verification(verifier.name, accepted: accepted, latency: ContinuousClock.now - started)
        return accepted
    }

    /// Grey-zone promotion, in the background: once the guards pass `best` (the lookup read none below the
    /// threshold), `promotion.verifier` is asked; an accepted answer is written under `key` in the exact layers.
    private func promote(
        _ best: (match: SemanticMatch, score: Float), query: String, key: CacheKey, scope: CacheScope, layer: SemanticLayer,
        promotion: SemanticLayer.Promotion
    ) {
        let entry = best.match.entry
        if let stored = entry.queryText, layer.guards.refusal(query: query, candidate: stored) != nil { return }
        guard self.takeBackgroundSlot() else { return }
        let candidate = HitCandidate(
            query: query, cachedQuery: entry.queryText, entry: entry, similarity: best.match.similarity, score: best.score, scope: scope
        )
        Task {
            defer { self.releaseBackgroundSlot() }
            guard await self.verdict(of: promotion.verifier, on: candidate, timeout: promotion.timeout) == true else { return }
            let now = self.configuration.clock.now()
            guard entry.isUsable(at: now), !self.outbox.blocks(entry, key: best.match.key, in: .semantic) else { return }
            do {
                try await self.writeExact(entry, for: key, upTo: self.configuration.layers.count, now: now)
                self.recorder.promoted()
            } catch {
                self.logger.debug("promotion write failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Searches `partition` (the vectors of `model`) and picks the best candidate that may be served; `nil` after a
    /// failure that the policy treats as a miss.
    private func bestMatch(
        for vector: [Float], in partition: SemanticPartition, model: String, text: String, threshold: Float, layer: SemanticLayer,
        control: CacheControl, now: CacheTime
    ) async throws -> SearchResult? {
        // With re-ranking, a candidate's score can exceed its cosine by up to the lexical weight.
        let bonus = layer.rerank?.lexicalWeight ?? 0
        let query = SemanticQuery(
            vector: vector, partition: partition,
            minimumSimilarity: max(-1, threshold - max(layer.nearMissMargin, 0) - bonus), limit: layer.rerank?.candidates ?? 1
        )
        let matches: [SemanticMatch]
        do {
            matches = try await withDeadline(layer.timeout, backend: layer.index.name) { try await layer.index.search(query) }
        } catch {
            try self.semanticFailed(error, operation: "search")
            return nil
        }
        // Only entries that could be served compete; the best by score (or by cosine without re-ranking) wins.
        var usable = matches.filter { match in
            // A record embedded by another model is never compared (its partition already differs; this is the
            // second lock on the same door, for indexes written before partitions carried the model).
            if let stored = match.entry.embeddingModel, stored != model { return false }
            guard match.entry.isUsable(at: now), self.acceptable(match.entry, control: control, now: now) else { return false }
            return !self.outbox.blocks(match.entry, key: match.key, in: .semantic)
        }
        // Scored once: by cosine plus word overlap with re-ranking, by cosine without.
        let words = layer.rerank.map { _ in SemanticRerank.words(text) } ?? []
        var scored = usable.map { match in
            (match, layer.rerank?.score(similarity: match.similarity, query: words, candidate: match.entry.queryText) ?? match.similarity)
        }
        // An entry the audit caught serving a wrong answer needs a closer match than the one it was wrong at.
        if layer.audit != nil { scored = scored.filter { $0.1 >= self.audits.minimumScore(for: $0.0.key) } }
        var refused: [(SemanticMatch, Float)] = []
        if !layer.guards.enabled.isEmpty {
            (scored, refused) = self.guarded(scored, text: text, threshold: threshold, layer: layer)
        }
        usable = scored.map(\.0)
        let best: (match: SemanticMatch, score: Float, ambiguous: Bool)?
        if let rerank = layer.rerank {
            best = rerank.choose(scored: scored, rivals: refused).map { ($0.match, $0.score, $0.isAmbiguous) }
        } else {
            best = usable.first.map { ($0, $0.similarity, false) }
        }
        let above = best.map { $0.score >= threshold } ?? false
        // Above the threshold but too close to an entry stored for another question: a miss, not a guess.
        let ambiguous = above && best?.ambiguous == true
        return SearchResult(
            best: best.map { ($0.match, $0.score) }, hit: above && !ambiguous, ambiguous: ambiguous, nearest: matches.first?.similarity,
            bestIsAmbiguous: best?.ambiguous == true
        )
    }

    /// `matches` split into those a guard refuses and the rest (see `SemanticGuards`). Candidates are read best
    /// first, and only until one at or above the threshold passes: a candidate below it cannot be served, and the
    /// ones after the first that passes cannot become the best; refused or not, they stay rivals in the ambiguity
    /// check. So a hit reads the query and, most often, one stored question. Refusals are counted per guard.
    private func guarded(
        _ scored: [(SemanticMatch, Float)], text: String, threshold: Float, layer: SemanticLayer
    ) -> (kept: [(SemanticMatch, Float)], refused: [(SemanticMatch, Float)]) {
        var query: SemanticGuards.Profile?
        var refusals: [SemanticGuards.Guard] = []
        var refused = Set<Int>()
        for index in scored.indices.sorted(by: { scored[$0].1 > scored[$1].1 }) {
            let (match, score) = scored[index]
            guard score >= threshold else { break }
            guard let stored = match.entry.queryText else { break }
            let profile = query ?? SemanticGuards.Profile(text)
            query = profile
            guard let refusal = layer.guards.refusal(query: profile, candidate: SemanticGuards.Profile(stored)) else { break }
            refusals.append(refusal)
            refused.insert(index)
        }
        if !refusals.isEmpty { self.recorder.semanticGuarded(refusals) }
        guard !refused.isEmpty else { return (scored, []) }
        return (scored.indices.filter { !refused.contains($0) }.map { scored[$0] }, refused.sorted().map { scored[$0] })
    }

    /// Indexes `match`'s entry under the current model, in the background: its stored question is embedded by the
    /// new model and inserted into `partition`. Bounded like background refreshes; skipped when too many run.
    private func reembed(_ match: SemanticMatch, into partition: SemanticPartition, layer: SemanticLayer) {
        guard let text = match.entry.queryText, self.takeBackgroundSlot() else { return }
        Task {
            defer { self.releaseBackgroundSlot() }
            do {
                let vector = try await withDeadline(layer.timeout, backend: layer.index.name) { try await layer.embedder.embed(text) }
                var entry = match.entry
                entry.embeddingModel = layer.embedder.model
                let record = SemanticRecord(key: match.key, partition: partition, vector: vector, entry: entry)
                try await withDeadline(layer.timeout, backend: layer.index.name) { try await layer.index.insert(record) }
                self.recorder.reembedded()
            } catch {
                self.logger.debug("re-embedding under the new model failed", metadata: ["error": "\(error)"])
            }
        }
    }
}
