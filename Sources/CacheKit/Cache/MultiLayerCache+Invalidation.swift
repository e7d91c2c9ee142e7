
/// Invalidation: slowest layer first, fenced by the outbox, gated against backfills, announced on the bus.
extension MultiLayerCache {
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
            await self.backfillGate.waitForEarlierWindows()
            let reachable = self.configuration.semantic != nil ? layers.count : layers.count - 1
            removed += try await self.remove(target, fromLayers: 0..<reachable, localOnly: localOnly, failed: &failed)
        }
        return (removed, failed)
    }

    /// Removes `target` from the exact layers in `indices`, slowest first; adds the layers that failed to `failed`.
    func remove(
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
}
