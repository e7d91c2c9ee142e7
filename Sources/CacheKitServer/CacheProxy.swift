public import CacheKit
public import CacheKitInvalidation
public import CacheKitOpenAI
import Crypto
import Foundation
import HTTPTypes
public import Hummingbird
public import Logging
import NIOCore
public import Prometheus

/// Settings of the OpenAI-compatible caching proxy.
public struct ProxyConfiguration: Sendable {
    /// Who may call and which tenant each caller is. Default: passthrough (the caller's key goes upstream, the
    /// tenant is a keyed hash of it) with a secret made for this process; instances that share a layer must be
    /// given the same secret (`ProxyAuthentication.passthrough(tenantSecret:)`).
    public var authentication: ProxyAuthentication
    /// Request bodies above this size are refused with 413. Default 4 MiB.
    public var maximumBodyBytes: Int
    /// The bearer token of `POST /admin/invalidate`; `nil` or empty disables the admin route (404): an empty token
    /// never opens it.
    public var adminToken: String? {
        didSet { if self.adminToken?.isEmpty == true { self.adminToken = nil } }
    }
    /// What one request may ask the cache to store: at most `maximumTags` tags (default 16) of at most
    /// `maximumTagBytes` bytes each (default 128), and a TTL of at most `maximumTTL` (default 30 days). A request
    /// past a bound is refused with 400 naming it.
    public var maximumTags: Int
    public var maximumTagBytes: Int
    public var maximumTTL: Duration
    /// How long reading a request body may take (default 30 s; then 408), and how long a connection may stay idle,
    /// or take to send its request head, before it is closed (default 60 s): a slow client cannot hold sockets.
    public var bodyReadTimeout: Duration
    public var idleTimeout: Duration

    public init(
        authentication: ProxyAuthentication? = nil, maximumBodyBytes: Int = 4 << 20, adminToken: String? = nil,
        maximumTags: Int = 16, maximumTagBytes: Int = 128, maximumTTL: Duration = .seconds(30 * 86_400),
        bodyReadTimeout: Duration = .seconds(30), idleTimeout: Duration = .seconds(60)
    ) {
        self.authentication = authentication ?? ProxyAuthentication.processSecret
        self.maximumBodyBytes = maximumBodyBytes
        self.adminToken = adminToken?.isEmpty == true ? nil : adminToken
        self.maximumTags = maximumTags
        self.maximumTagBytes = maximumTagBytes
        self.maximumTTL = maximumTTL
        self.bodyReadTimeout = bodyReadTimeout
        self.idleTimeout = idleTimeout
    }
}

extension ProxyAuthentication {
    /// Passthrough with a random secret made once per process.
    static let processSecret: ProxyAuthentication = {
        var generator = SystemRandomNumberGenerator()
        let secret = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return ProxyAuthentication(mode: .passthrough(secret: SymmetricKey(data: secret)), allowsAnonymous: false)
    }()
}

/// An OpenAI-compatible HTTP front for a `MultiLayerCache`: `POST /v1/chat/completions` (JSON and SSE streaming)
/// answered from the cache or forwarded upstream on a miss, `POST /v1/embeddings` forwarded, `GET /healthz`,
/// `GET /metrics` (Prometheus text), `GET /stats` (JSON), `GET /dashboard`, and `POST /admin/invalidate`.
public final class CacheProxy: Sendable {
    public let cache: MultiLayerCache
    public let upstream: OpenAIClient
    public let configuration: ProxyConfiguration
    let invalidator: CacheInvalidator
    let limiter = CallerLimiter()
    let registry: PrometheusCollectorRegistry?
    let logger: Logger

    /// `registry`: where swift-metrics is bootstrapped to (served at `/metrics`); `nil` serves an empty page.
    public init(
        cache: MultiLayerCache, upstream: OpenAIClient, configuration: ProxyConfiguration = ProxyConfiguration(),
        rules: InvalidationRules = InvalidationRules(), registry: PrometheusCollectorRegistry? = nil,
        logger: Logger = Logger(label: "cachekit.serve")
    ) {
        self.cache = cache
        self.upstream = upstream
        self.configuration = configuration
        self.invalidator = CacheInvalidator(cache: cache, rules: rules, logger: logger)
        self.registry = registry
        self.logger = logger
    }

    /// The routes.
    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: OpenAIErrorMiddleware(logger: self.logger))
        router.post("/v1/chat/completions") { request, context in try await self.chatCompletions(request, context: context) }
        router.post("/v1/embeddings") { request, context in try await self.embeddings(request, context: context) }
        router.get("/healthz") { _, _ in Self.json(.ok, ["status": "ok"]) }
        router.get("/metrics") { _, _ in
            var buffer: [UInt8] = []
            self.registry?.emit(into: &buffer)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: buffer)))
        }
        router.get("/stats") { _, _ in
            var stats = StatisticsJSON.encode(self.cache.statistics())
            if case .object(var members) = stats {
                members["pending_invalidations"] = .number(Double(self.cache.pendingInvalidations))
                stats = .object(members)
            }
            return Self.json(.ok, stats)
        }
        router.get("/dashboard") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: Dashboard.html)))
        }
        router.post("/admin/invalidate") { request, context in try await self.adminInvalidate(request, context: context) }
        return router
    }

    /// A Hummingbird application serving the routes on `host:port`, with the cache's own services alongside.
    public func application(host: String = "127.0.0.1", port: Int = 8080) -> some ApplicationProtocol {
        Application(
            router: self.router(),
            server: .http1(configuration: .init(idleTimeout: .nanoseconds(Int64(self.configuration.idleTimeout.milliseconds) * 1_000_000))),
            configuration: .init(address: .hostname(host, port: port), serverName: "cachekit"),
            services: [self.cache],
            logger: self.logger
        )
    }

    // MARK: - Chat completions

    func chatCompletions(_ request: Request, context: BasicRequestContext) async throws -> Response {
        // Authentication first: nothing of an unauthenticated request is read.
        let caller = try self.configuration.authentication.caller(of: request.headers)
        if let entry = caller.virtualKey { try self.limiter.admit(entry) }
        let body = try await self.jsonBody(request)
        let chat: ChatRequest
        do { chat = try ChatRequest(json: body) } catch {
            throw ProxyError(.badRequest, error.message, type: "invalid_request_error")
        }
        let scope = CacheScope(tenant: caller.tenant, namespace: caller.namespace ?? request.headers[.cachekitNamespace] ?? "default")
        let control = try self.control(from: request.headers)
        let upstream: any CompletionProvider = caller.credential.map { self.upstream.forwarding($0) } ?? self.upstream
        do {
            if chat.body["stream"]?.boolValue == true {
                let stream = try await self.cache.streamingCompletion(for: chat, in: scope, control: control, upstream: upstream)
                var headers = self.headers(for: stream.outcome)
                headers[.contentType] = "text/event-stream"
                headers[.cacheControl] = "no-cache"
                let chunks = stream.chunks
                let logger = self.logger
                return Response(status: .ok, headers: headers, body: ResponseBody { writer in
                    do {
                        for try await chunk in chunks {
                            var line = Array("data: ".utf8)
                            line += chunk.jsonBytes()
                            line += Array("\n\n".utf8)
                            try await writer.write(ByteBuffer(bytes: line))
                        }
                        try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                    } catch {
                        // Headers are gone: report the failure in the stream, as OpenAI does, and end it.
                        logger.warning("stream failed", metadata: ["error": "\(error)"])
                        let payload = Self.errorObject(Self.upstreamMessage(error), type: "upstream_error").canonicalBytes()
                        try await writer.write(ByteBuffer(bytes: Array("data: ".utf8) + payload + Array("\n\n".utf8)))
                    }
                    try await writer.finish(nil)
                })
            }
            let result = try await self.cache.completion(for: chat, in: scope, control: control, upstream: upstream)
            if let entry = caller.virtualKey, !result.outcome.source.isHit, let usage = result.response.usage,
                let cost = self.cache.configuration.prices.cost(of: usage, model: result.response.model.isEmpty ? chat.model : result.response.model)
            {
                self.limiter.spend(entry, usd: cost)
            }
            var headers = self.headers(for: result.outcome)
            headers[.contentType] = "application/json"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: result.response.jsonBytes())))
        } catch let error as OpenAIError {
            throw Self.proxyError(error)
        } catch let error as CacheError where error.code == .invalidRequest {
            throw ProxyError(.badRequest, error.message, type: "invalid_request_error")
        }
    }

    func headers(for outcome: CacheOutcome) -> HTTPFields {
        var headers = HTTPFields()
        headers[.cachekitStatus] = outcome.source.description
        if let key = outcome.key { headers[.cachekitKey] = key.digest.hex }
        if let similarity = outcome.similarity { headers[.cachekitSimilarity] = String(similarity) }
        if let age = outcome.entryAge { headers[.age] = String(age.components.seconds) }
        return headers
    }

    /// `Cache-Control: no-cache | no-store | max-age=N`, `x-cachekit-ttl: N` (seconds),
    /// `x-cachekit-force-refresh: true`, `x-cachekit-tags: a,b`.
    /// The request's cache controls, checked against this proxy's bounds (tag count and length, TTL ceiling).
    func control(from headers: HTTPFields) throws -> CacheKit.CacheControl {
        let control = try Self.control(from: headers)
        guard control.tags.count <= self.configuration.maximumTags else {
            throw ProxyError(.badRequest, "x-cachekit-tags: at most \(self.configuration.maximumTags) tags")
        }
        if let long = control.tags.first(where: { $0.utf8.count > self.configuration.maximumTagBytes }) {
            throw ProxyError(.badRequest, "x-cachekit-tags: a tag of \(long.utf8.count) bytes (at most \(self.configuration.maximumTagBytes))")
        }
        if let ttl = control.ttl, ttl > self.configuration.maximumTTL {
            throw ProxyError(.badRequest, "x-cachekit-ttl: at most \(self.configuration.maximumTTL.components.seconds) seconds")
        }
        return control
    }

    static func control(from headers: HTTPFields) throws -> CacheKit.CacheControl {
        var control = CacheKit.CacheControl()
        for directive in (headers[.cacheControl] ?? "").split(separator: ",") {
            let part = directive.trimmingCharacters(in: .whitespaces).lowercased()
            if part == "no-cache" { control.noCache = true }
            else if part == "no-store" { control.noStore = true }
            else if part.hasPrefix("max-age=") {
                guard let seconds = Int(part.dropFirst(8)), seconds >= 0 else { throw ProxyError(.badRequest, "Cache-Control max-age must be a whole number of seconds") }
                control.maxAge = .seconds(seconds)
            }
        }
        if let ttl = headers[.cachekitTTL] {
            guard let seconds = Int(ttl.trimmingCharacters(in: .whitespaces)), seconds > 0 else { throw ProxyError(.badRequest, "x-cachekit-ttl must be a positive number of seconds") }
            control.ttl = .seconds(seconds)
        }
        if let refresh = headers[.cachekitForceRefresh], ["1", "true", "yes"].contains(refresh.lowercased()) { control.noCache = true }
        if let tags = headers[.cachekitTags] { control.tags = tags.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } }
        return control
    }

    // MARK: - Embeddings

    func embeddings(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let caller = try self.configuration.authentication.caller(of: request.headers)
        if let entry = caller.virtualKey { try self.limiter.admit(entry) }
        let body = try await self.jsonBody(request)
        do { _ = try JSONValue(parsing: body) } catch { throw ProxyError(.badRequest, "invalid JSON: \(error.description)", type: "invalid_request_error") }
        do {
            let reply =
                if let credential = caller.credential {
                    try await self.upstream.post(path: "/embeddings", json: body, credential: credential)
                } else {
                    try await self.upstream.post(path: "/embeddings", json: body)
                }
            return Self.json(.ok, reply)
        } catch let error as OpenAIError {
            throw Self.proxyError(error)
        }
    }

    // MARK: - Admin

    func adminInvalidate(_ request: Request, context: BasicRequestContext) async throws -> Response {
        guard let token = self.configuration.adminToken, !token.isEmpty else {
            throw ProxyError(.notFound, "no such route: POST /admin/invalidate", type: "invalid_request_error")
        }
        let presented = request.headers[.authorization].map { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : $0 } ?? ""
        guard !presented.isEmpty, Self.constantTimeEqual(Array(presented.utf8), Array(token.utf8)) else {
            throw ProxyError(.unauthorized, "the admin token is missing or wrong", type: "authentication_error")
        }
        let body = try JSONValue(parsing: try await self.jsonBody(request))
        let tenant = body["tenant"]?.stringValue ?? "anonymous"
        let scope = CacheScope(tenant: tenant, namespace: body["namespace"]?.stringValue ?? "default")
        let reason = "admin" + (body["reason"]?.stringValue.map { ": " + $0 } ?? "")
        let records: [CacheInvalidator.Record]
        if let tag = body["tag"]?.stringValue {
            records = [try await self.invalidator.invalidate(.tag(tag), reason: reason)]
        } else if let event = body["event"]?.stringValue {
            let attributes = body["attributes"]?.objectValue?.compactMapValues(\.stringValue) ?? [:]
            records = try await self.invalidator.handle(CacheEvent(event, attributes), in: scope)
        } else if let pattern = body["pattern"]?.stringValue {
            records = [try await self.invalidator.invalidate(.pattern(QueryPattern(pattern), in: scope), reason: reason)]
        } else if body["namespace"] != nil {
            records = [try await self.invalidator.invalidate(.scope(scope), reason: reason)]
        } else {
            throw ProxyError(.badRequest, "give one of \"tag\", \"event\", \"pattern\" or \"namespace\"", type: "invalid_request_error")
        }
        // 200 only when every layer and the bus applied it; 202 when some did not yet: the rest is retried in the
        // background and stale entries are withheld meanwhile, so the caller knows it is not finished.
        let pending = Set(records.flatMap(\.pending)).sorted()
        let removed = records.reduce(0) { $0 + $1.removed }
        return Self.json(
            pending.isEmpty ? .ok : .accepted,
            ["removed": .number(Double(removed)), "complete": .bool(pending.isEmpty), "pending": .array(pending.map(JSONValue.string))])
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        // Compare digests, so neither the length nor the first differing byte shows in the timing.
        Digest256(hashing: a) == Digest256(hashing: b)
    }

    // MARK: - Helpers

    func jsonBody(_ request: Request) async throws -> [UInt8] {
        let type = request.headers[.contentType]?.lowercased() ?? ""
        guard type.hasPrefix("application/json") else {
            throw ProxyError(.unsupportedMediaType, "Content-Type must be application/json, not \(type.isEmpty ? "nothing" : "\"\(type)\"")", type: "invalid_request_error")
        }
        let limit = self.configuration.maximumBodyBytes
        let timeout = self.configuration.bodyReadTimeout
        let deadline = ContinuousClock.now + timeout
        var buffer = ByteBuffer()
        // A body that trickles in is cut off once it has taken `bodyReadTimeout` (checked as each part arrives); one
        // that stops arriving is closed by the connection's idle timeout.
        for try await part in request.body {
            guard buffer.readableBytes + part.readableBytes <= limit else {
                throw ProxyError(.contentTooLarge, "request body larger than \(limit) bytes", type: "invalid_request_error")
            }
            buffer.writeImmutableBuffer(part)
            guard ContinuousClock.now <= deadline else {
                throw ProxyError(.requestTimeout, "the request body took longer than \(timeout) to arrive", type: "invalid_request_error")
            }
        }
        return Array(buffer.readableBytesView)
    }

    static func json(_ status: HTTPResponse.Status, _ value: JSONValue) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: value.canonicalBytes())))
    }

    static func errorObject(_ message: String, type: String, code: String? = nil) -> JSONValue {
        ["error": ["message": .string(message), "type": .string(type), "param": .null, "code": code.map(JSONValue.string) ?? .null]]
    }

    static func proxyError(_ error: OpenAIError) -> ProxyError {
        // The upstream's own client errors pass through (the caller sent something the provider refuses);
        // everything else is the upstream failing: 502.
        if error.code == .http, let status = error.status, (400..<500).contains(status), status != 429 {
            return ProxyError(HTTPResponse.Status(code: status), error.message, type: error.type ?? "invalid_request_error")
        }
        if error.code == .http, error.status == 429 {
            return ProxyError(.tooManyRequests, "upstream rate limit: \(error.message)", type: "rate_limit_error")
        }
        return ProxyError(.badGateway, upstreamMessage(error), type: "upstream_error")
    }

    static func upstreamMessage(_ error: any Error) -> String {
        if let error = error as? OpenAIError { return "upstream unavailable: \(error.message)" }
        return "upstream unavailable: \(error)"
    }
}

/// An error answered as OpenAI does: `{"error": {"message", "type", "param", "code"}}` with the status.
struct ProxyError: Error {
    var status: HTTPResponse.Status
    var message: String
    var type: String

    init(_ status: HTTPResponse.Status, _ message: String, type: String = "invalid_request_error") {
        self.status = status
        self.message = message
        self.type = type
    }
}

/// Turns every error, including Hummingbird's own (unknown route, wrong method), into an OpenAI-style body.
struct OpenAIErrorMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as ProxyError {
            return CacheProxy.json(error.status, CacheProxy.errorObject(error.message, type: error.type))
        } catch let error as HTTPError {
            let message = error.status == .notFound ? "no such route: \(request.method) \(request.uri.path)" : (error.body ?? error.status.reasonPhrase)
            return CacheProxy.json(error.status, CacheProxy.errorObject(message, type: "invalid_request_error"))
        } catch let error as JSONParsingError {
            return CacheProxy.json(.badRequest, CacheProxy.errorObject("invalid JSON: \(error.description)", type: "invalid_request_error"))
        } catch {
            self.logger.error("request failed", metadata: ["error": "\(error)"])
            return CacheProxy.json(.internalServerError, CacheProxy.errorObject("internal error", type: "server_error"))
        }
    }
}

extension HTTPField.Name {
    static let cachekitStatus = HTTPField.Name("x-cachekit-status")!
    static let cachekitKey = HTTPField.Name("x-cachekit-key")!
    static let cachekitSimilarity = HTTPField.Name("x-cachekit-similarity")!
    static let cachekitNamespace = HTTPField.Name("x-cachekit-namespace")!
    static let cachekitTTL = HTTPField.Name("x-cachekit-ttl")!
    static let cachekitForceRefresh = HTTPField.Name("x-cachekit-force-refresh")!
    static let cachekitTags = HTTPField.Name("x-cachekit-tags")!
}
