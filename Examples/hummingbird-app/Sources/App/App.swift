import CacheKit
import CacheKitMemory
import CacheKitOpenAI
import CacheKitRedis
import Configuration
import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

/// A Hummingbird app that answers questions through a CacheKit cache.
///
/// - `POST /ask` with `{"question": "..."}` answers `{"answer", "cache", "layer", "milliseconds"}`.
/// - `GET /metrics`: Prometheus text (CacheKit's `cachekit_*` series among them); `GET /stats`: the cache's counters.
///
/// Configuration comes from environment variables (and `cachekit.json` in the working folder, if present), read with
/// swift-configuration: `HTTP_PORT` (default 8080), `MEMORY_MAXIMUM_BYTES`, `REDIS_URL` (adds a shared Redis layer
/// behind memory), `CACHE_POLICY_DEFAULT_TTL_SECONDS`, `OPENAI_BASE_URL` and `OPENAI_API_KEY` (a real
/// OpenAI-compatible upstream; without them a stand-in answers after 300 ms so the app runs with no key).
@main
struct App {
    static func main() async {
        do {
            try await self.run()
        } catch {
            // A clear line instead of a crash report: a port in use, a malformed setting, an unreadable cachekit.json.
            print("App failed: \(error)")
            exit(1)
        }
    }

    static func run() async throws {
        let config = ConfigReader(providers: [
            EnvironmentVariablesProvider(),
            try await FileProvider<JSONSnapshot>(filePath: "cachekit.json", allowMissing: true),
        ])
        var logger = Logger(label: "app")
        logger.logLevel = .info

        // Metrics: CacheKit reports through swift-metrics; Prometheus renders them at /metrics.
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))

        // The cache: memory first, then Redis when REDIS_URL is set.
        var cacheConfiguration = try CacheConfiguration(config: config.scoped(to: "cache"))
        cacheConfiguration.layers = [.memory(try MemoryCacheBackend.Configuration(config: config.scoped(to: "memory")))]
        if config.string(forKey: "redis.url", isSecret: true) != nil {
            let redis = RedisClient(configuration: try .init(config: config.scoped(to: "redis")))
            cacheConfiguration.layers.append(.redis(client: redis))
            // The description never prints the password.
            logger.info("layers: memory + redis", metadata: ["redis": "\(redis.configuration)"])
        } else {
            logger.info("layers: memory only (set REDIS_URL to add Redis)")
        }
        let cache = try MultiLayerCache(configuration: cacheConfiguration)

        let upstream: any CompletionProvider
        if config.string(forKey: "openai.baseURL") != nil || config.string(forKey: "openai.apiKey", isSecret: true) != nil {
            upstream = OpenAIClient(configuration: try OpenAIClient.Configuration(config: config.scoped(to: "openai")))
        } else {
            upstream = StandInUpstream()
            logger.info("upstream: stand-in (set OPENAI_BASE_URL / OPENAI_API_KEY for a real one)")
        }
        let model = config.string(forKey: "model", default: "gpt-4o-mini")

        let router = Router()
        router.post("/ask") { request, context -> Response in
            let question = try await request.decode(as: Question.self, context: context)
            guard !question.question.isEmpty else { throw HTTPError(.badRequest, message: "question is empty") }
            let chat = ChatRequest(model: model, messages: [.user(question.question)], temperature: 0)
            let started = ContinuousClock.now
            let answer = try await cache.completion(for: chat, upstream: upstream)
            let elapsed = started.duration(to: .now)
            return try Response.json(Answer(
                answer: answer.response.text ?? "",
                cache: answer.outcome.source.description,
                layer: answer.outcome.layerName,
                milliseconds: Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000
            ))
        }
        router.get("/metrics") { _, _ -> Response in
            var buffer: [UInt8] = []
            registry.emit(into: &buffer)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(bytes: buffer)))
        }
        router.get("/stats") { _, _ -> Response in
            let s = cache.statistics()
            return try Response.json(Stats(requests: s.requests, hits: s.hits, hitRate: s.hitRate, upstreamCalls: s.upstreamCalls, tokensSaved: s.tokensSaved))
        }

        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: config.int(forKey: "http.port", default: 8080))),
            logger: logger
        )
        // One group runs the HTTP server and the cache (its layers' sweeps, health checks and pools). On SIGTERM or
        // SIGINT the group shuts down in reverse order: the server first (in-flight requests finish), then the cache
        // (sweeps stop, Redis connections close).
        let group = ServiceGroup(
            configuration: .init(services: [cache, app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        )
        try await group.run()
    }
}

struct Question: Decodable { var question: String }
struct Answer: Encodable { var answer: String; var cache: String; var layer: String?; var milliseconds: Double }
struct Stats: Encodable { var requests: Int; var hits: Int; var hitRate: Double; var upstreamCalls: Int; var tokensSaved: Int }

extension Response {
    static func json(_ value: some Encodable) throws -> Response {
        let data = try JSONEncoder().encode(value)
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Answers after 300 ms, like a fast LLM, so the app runs without an API key.
struct StandInUpstream: CompletionProvider {
    func complete(_ request: ChatRequest) async throws -> ChatResponse {
        try await Task.sleep(for: .milliseconds(300))
        let question = request.lastUserText ?? ""
        return ChatResponse(
            id: "standin-\(UInt32.random(in: 0...UInt32.max))", model: request.model, created: Int(Date().timeIntervalSince1970),
            content: "(stand-in upstream) You asked: \(question)",
            usage: TokenUsage(promptTokens: question.utf8.count / 4 + 1, completionTokens: 12)
        )
    }
}
