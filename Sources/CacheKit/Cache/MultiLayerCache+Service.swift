import ServiceLifecycle

/// `run()`: the layers' background work, other instances' invalidations, and the outbox's retries.
extension MultiLayerCache {
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
