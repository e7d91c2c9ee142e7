import Tracing

extension MultiLayerCache {
    /// Runs `body` inside a span named `name` when `CacheConfiguration.tracer` is set (the span is the task's
    /// current context meanwhile, so nested spans become its children); calls it directly otherwise.
    func traced<T>(_ name: String, kind: SpanKind = .internal, _ body: ((any Span)?) async throws -> T) async throws -> T {
        guard let tracer = self.configuration.tracer else { return try await body(nil) }
        let span = tracer.startSpan(name, context: ServiceContext.current ?? .topLevel, ofKind: kind)
        defer { span.end() }
        do {
            return try await ServiceContext.withValue(span.context) { try await body(span) }
        } catch {
            span.recordError(error)
            throw error
        }
    }

    /// The attributes every span of a finished lookup carries.
    static func annotate(_ span: (any Span)?, with outcome: CacheOutcome, scope: CacheScope) {
        guard let span else { return }
        span.attributes["cachekit.outcome"] = outcome.source.description
        if let layer = outcome.layerName { span.attributes["cachekit.layer"] = layer }
        if let similarity = outcome.similarity { span.attributes["cachekit.similarity"] = Double(similarity) }
        if let score = outcome.semanticScore { span.attributes["cachekit.semantic_score"] = Double(score) }
        if let skip = outcome.skipReason { span.attributes["cachekit.skip_reason"] = skip.description }
        // The scope id, never the tenant name: spans leave the process.
        span.attributes["cachekit.scope"] = String(scope.id.hex.prefix(16))
    }
}
