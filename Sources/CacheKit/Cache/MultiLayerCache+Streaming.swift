/// An answer as a stream of chunks, and where it came from.
public struct CachedStream: Sendable {
    /// The chunks: replayed from the cache on a hit, forwarded as they arrive on a miss.
    public var chunks: AsyncThrowingStream<ChatCompletionChunk, any Error>
    /// Where the answer comes from (known before the first chunk).
    public var outcome: CacheOutcome
}

extension MultiLayerCache {
    /// Answers `request` as a stream.
    ///
    /// - A hit (exact or semantic) is replayed as chunks that carry every field of the stored answer (content,
    ///   tool-call deltas, reasoning, refusal, finish reasons, usage), whether it was stored from a streamed or a
    ///   non-streamed call.
    /// - A miss streams the upstream's chunks to the caller as they arrive while assembling them; the assembled
    ///   answer is stored only if the stream completed. An upstream error, a truncated stream, or a caller that stops
    ///   reading leaves nothing in the cache.
    /// - Streamed misses are not coalesced: each caller gets its own upstream stream.
    public func streamingCompletion(
        for request: ChatRequest,
        in scope: CacheScope? = nil,
        control: CacheControl = .none,
        upstream: some CompletionProvider
    ) async throws -> CachedStream {
        let lookup = try await self.lookup(request, in: scope, control: control)
        if let entry = lookup.entry, let response = try? ChatResponse(json: entry.value) {
            if lookup.outcome.isStale { self.scheduleRefresh(request, lookup: lookup, upstream: upstream) }
            let chunks = response.streamChunks()
            return CachedStream(
                chunks: AsyncThrowingStream { continuation in
                    for chunk in chunks { continuation.yield(chunk) }
                    continuation.finish()
                },
                outcome: lookup.outcome
            )
        }
        var outcome = lookup.outcome
        if lookup.entry != nil {
            // Stored bytes that are not a response: drop them everywhere and go upstream.
            _ = try? await self.removeEverywhere(.key(lookup.key))
            outcome.source = .miss
        }
        outcome.similarity = nil
        outcome.isStale = false
        let started = ContinuousClock.now
        let upstreamChunks: AsyncThrowingStream<ChatCompletionChunk, any Error>
        do {
            upstreamChunks = try await upstream.streamCompletion(request)
        } catch {
            self.recorder.upstream(latency: ContinuousClock.now - started, failed: true, usage: nil)
            throw error
        }
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: ChatCompletionChunk.self)
        let task = Task {
            var collected: [ChatCompletionChunk] = []
            do {
                for try await chunk in upstreamChunks {
                    try Task.checkCancellation()
                    collected.append(chunk)
                    continuation.yield(chunk)
                }
                try Task.checkCancellation()
                let response = try ChatResponse(assembling: collected)
                self.recorder.upstream(
                latency: ContinuousClock.now - started, failed: false, usage: response.usage,
                promptCacheSaving: response.usage.map { self.configuration.prices.promptCacheSaving(of: $0, model: response.model) } ?? 0
            )
                if lookup.decision.write { _ = try? await self.store(response, for: lookup) }
                continuation.finish()
            } catch {
                self.recorder.upstream(latency: ContinuousClock.now - started, failed: true, usage: nil)
                self.logger.info("stream not cached: it did not complete", metadata: ["error": "\(error)"])
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return CachedStream(chunks: stream, outcome: outcome)
    }
}
