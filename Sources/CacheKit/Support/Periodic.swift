import ServiceLifecycle

/// Runs `body` every `interval` until the task is cancelled or graceful shutdown begins: the loop behind the
/// `run()` of every backend with background work (expiry sweeps, purges, health checks).
package func runPeriodically(every interval: Duration, _ body: () async -> Void) async {
    while !Task.isCancelled, !Task.isShuttingDownGracefully {
        do {
            try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        } catch {
            return
        }
        if Task.isCancelled || Task.isShuttingDownGracefully { return }
        await body()
    }
}
