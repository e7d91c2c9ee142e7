import CacheKit
import CacheKitMemory
import Logging
import OTel
import ServiceLifecycle
import Tracing

// CacheKit's spans exported with swift-otel over OTLP/HTTP: `cachekit.lookup` with one `cachekit.get` per layer
// read, `cachekit.embed`, `cachekit.upstream` and `cachekit.invalidate`, each with its outcome, layer and similarity.
//
// The collector comes from the standard variables: OTEL_EXPORTER_OTLP_ENDPOINT (default http://localhost:4318) and
// OTEL_EXPORTER_OTLP_PROTOCOL (`http/protobuf` default, or `http/json`). Point it at Jaeger or an OpenTelemetry
// Collector; scripts/test points it at a small receiver that checks the spans arrive.

var otel = OTel.Configuration.default
otel.serviceName = "cachekit-example"
otel.metrics.enabled = false
otel.logs.enabled = false
otel.traces.batchSpanProcessor.scheduleDelay = .milliseconds(200)
let observability = try OTel.bootstrap(configuration: otel)

var configuration = CacheConfiguration()
configuration.layers = [.memory()]
configuration.semantic = .memory(embedder: HashingEmbeddingProvider(dimension: 256), threshold: 0.7)
configuration.tracer = InstrumentationSystem.tracer  // the tracer OTel.bootstrap installed
configuration.logger.logLevel = .warning
let cache = try MultiLayerCache(configuration: configuration)

/// Answers after 50 ms.
struct Upstream: CompletionProvider {
    func complete(_ request: ChatRequest) async throws -> ChatResponse {
        try await Task.sleep(for: .milliseconds(50))
        return ChatResponse(id: "r", model: request.model, created: 0, content: "Answer to: \(request.lastUserText ?? "")")
    }
}

/// The work: a miss, an exact hit, a semantic hit and an invalidation, each under a parent span of its own.
struct Workload: Service {
    func run() async throws {
        func ask(_ question: String) async throws {
            try await withSpan("answer question") { span in
                let request = ChatRequest(model: "gpt-4o-mini", messages: [.user(question)], temperature: 0)
                let answer = try await cache.completion(for: request, upstream: Upstream())
                span.attributes["example.outcome"] = answer.outcome.source.description
                print("\(answer.outcome.source)  \(question)")
            }
        }
        try await ask("How do I reset my password?")
        try await ask("How do I reset my password?")
        try await ask("how do i reset my password please")
        let removed = try await withSpan("invalidate scope") { _ in try await cache.invalidate(.scope(.default)).removed }
        print("invalidated \(removed) entries")
    }
}

// The workload ends the group when it is done; services stop in reverse order, so OTel exports the last spans.
let group = ServiceGroup(
    configuration: .init(
        services: [
            .init(service: observability),
            .init(service: cache),
            .init(service: Workload(), successTerminationBehavior: .gracefullyShutdownGroup),
        ],
        logger: Logger(label: "example")
    )
)
try await group.run()
