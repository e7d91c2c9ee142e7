
/// Storing an answer in every exact layer and the semantic index.
extension MultiLayerCache {
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

    func writeFailed(_ index: Int, _ error: any Error, propagate: Bool) throws {
        do { try self.layerFailed(index, error, operation: "set") } catch { if propagate { throw error } }
    }
}
