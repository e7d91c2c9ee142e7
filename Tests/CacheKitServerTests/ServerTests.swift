import CacheKit
import CacheKitMemory
import CacheKitOpenAI
import CacheKitServer
import Foundation
import Logging
import ServiceLifecycle
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

enum Upstream {
    static let url = ProcessInfo.processInfo.environment["CACHEKIT_TEST_OPENAI_URL"]
}

/// A proxy on a loopback port in front of the fake upstream, for the duration of `body`.
/// Unless `proxyConfiguration` is given, callers without a key are served (anonymous) so the older suites need no
/// keys; the authentication suites pass their own configuration.
func withProxy(
    adminToken: String? = "admin-secret", maximumBodyBytes: Int = 1 << 20, proxyConfiguration: ProxyConfiguration? = nil,
    _ body: @escaping @Sendable (URL) async throws -> Void, shutdown: (@Sendable (ServiceGroup) async -> Void)? = nil
) async throws {
    var configuration = CacheConfiguration()
    configuration.layers = [.memory()]
    configuration.logger.logLevel = .error
    let cache = try MultiLayerCache(configuration: configuration)
    var logger = Logger(label: "test.serve")
    logger.logLevel = .error
    let proxy = CacheProxy(
        cache: cache, upstream: OpenAIClient(configuration: OpenAIClient.Configuration(baseURL: Upstream.url!, apiKey: "sk-upstream")),
        configuration: try proxyConfiguration
            ?? ProxyConfiguration(
                authentication: try .passthrough(tenantSecret: Array("a test secret of 32 bytes, fixed".utf8), allowsAnonymous: true),
                maximumBodyBytes: maximumBodyBytes, adminToken: adminToken),
        logger: logger)
    let port = Int.random(in: 20_000...29_000)
    let group = ServiceGroup(services: [proxy.application(host: "127.0.0.1", port: port)], logger: logger)
    let running = Task { try await group.run() }
    defer { running.cancel() }
    let base = URL(string: "http://127.0.0.1:\(port)")!
    for _ in 0..<100 {
        if (try? await HTTP.send(base.appendingPathComponent("healthz")))?.status == 200 { break }
        try await Task.sleep(for: .milliseconds(20))
    }
    async let work: Void = body(base)
    if let shutdown { await shutdown(group) }
    try await work
    await group.triggerGracefulShutdown()
    _ = await running.result
}

enum HTTP {
    struct Reply {
        var status: Int
        var headers: [String: String]
        var body: Data
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: self.body)) as? [String: Any] ?? [:] }
        var errorMessage: String? { (self.json["error"] as? [String: Any])?["message"] as? String }
    }

    static func send(_ url: URL, method: String = "GET", json: String? = nil, headers: [String: String] = [:], contentType: String = "application/json") async throws -> Reply {
        var request = URLRequest(url: url)
        request.httpMethod = method
        if let json {
            request.httpBody = Data(json.utf8)
            request.setValue(contentType, forHTTPHeaderField: "Content-Type")
        }
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as! HTTPURLResponse
        var fields: [String: String] = [:]
        for (name, value) in http.allHeaderFields { fields[String(describing: name).lowercased()] = String(describing: value) }
        return Reply(status: http.statusCode, headers: fields, body: data)
    }
}

@Suite("cachekit serve", .serialized, .enabled(if: Upstream.url != nil, "needs CACHEKIT_TEST_OPENAI_URL (scripts/test starts the fake upstream)"))
struct ServerTests {
    static func chat(_ text: String, temperature: Double = 0) -> String {
        #"{"model":"gpt-4o-mini","temperature":\#(temperature),"messages":[{"role":"user","content":"\#(text)"}]}"#
    }

    @Test func namespacesTTLAndTagsFromHeadersAndAdminInvalidation() async throws {
        try await withProxy { base in
            let url = base.appendingPathComponent("v1/chat/completions")
            let auth = ["Authorization": "Bearer sk-caller"]
            let first = try await HTTP.send(url, method: "POST", json: Self.chat("price of product 1"), headers: auth.merging(["x-cachekit-tags": "product:1"]) { $1 })
            #expect(first.status == 200 && first.headers["x-cachekit-status"] == "MISS")
            #expect(try await HTTP.send(url, method: "POST", json: Self.chat("price of product 1"), headers: auth).headers["x-cachekit-status"] == "HIT-L1")
            let other = try await HTTP.send(url, method: "POST", json: Self.chat("price of product 1"), headers: auth.merging(["x-cachekit-namespace": "beta"]) { $1 })
            #expect(other.headers["x-cachekit-status"] == "MISS", "another namespace is another scope")

            let badTTL = try await HTTP.send(url, method: "POST", json: Self.chat("x"), headers: ["x-cachekit-ttl": "soon"])
            #expect(badTTL.status == 400 && badTTL.errorMessage?.contains("x-cachekit-ttl") == true)
            let badAge = try await HTTP.send(url, method: "POST", json: Self.chat("x"), headers: ["Cache-Control": "max-age=-3"])
            #expect(badAge.status == 400)

            let admin = base.appendingPathComponent("admin/invalidate")
            #expect(try await HTTP.send(admin, method: "POST", json: #"{"tag":"product:1"}"#).status == 401)
            #expect(try await HTTP.send(admin, method: "POST", json: #"{"tag":"product:1"}"#, headers: ["Authorization": "Bearer wrong"]).status == 401)
            let removed = try await HTTP.send(admin, method: "POST", json: #"{"tag":"product:1"}"#, headers: ["Authorization": "Bearer admin-secret"])
            #expect(removed.status == 200 && (removed.json["removed"] as? Int) == 1, "\(String(decoding: removed.body, as: UTF8.self))")
            #expect(try await HTTP.send(url, method: "POST", json: Self.chat("price of product 1"), headers: auth).headers["x-cachekit-status"] == "MISS")
            let vague = try await HTTP.send(admin, method: "POST", json: "{}", headers: ["Authorization": "Bearer admin-secret"])
            #expect(vague.status == 400)
        }
    }

    @Test func badInputGetsOpenAIStyleErrors() async throws {
        try await withProxy(adminToken: nil, maximumBodyBytes: 2048) { base in
            let url = base.appendingPathComponent("v1/chat/completions")
            let cases: [(json: String, contentType: String, status: Int, says: String)] = [
                (#"{"model":"#, "application/json", 400, "invalid JSON"),
                (#"{"model":"m","messages":"hi"}"#, "application/json", 400, "'messages' must be an array"),
                (Self.chat("x"), "text/plain", 415, "Content-Type"),
                (Self.chat(String(repeating: "x", count: 4000)), "application/json", 413, "larger than 2048"),
            ]
            for item in cases {
                let reply = try await HTTP.send(url, method: "POST", json: item.json, contentType: item.contentType)
                #expect(reply.status == item.status, "\(item.says): \(reply.status)")
                #expect(reply.errorMessage?.contains(item.says) == true, "\(reply.errorMessage ?? "no OpenAI error body")")
                #expect((reply.json["error"] as? [String: Any])?["type"] as? String == "invalid_request_error")
            }
            #expect(try await HTTP.send(base.appendingPathComponent("v2/nothing")).status == 404)
            #expect(try await HTTP.send(base.appendingPathComponent("admin/invalidate"), method: "POST", json: "{}").status == 404, "no admin token configured: no admin route")
        }
    }

    @Test func gracefulShutdownDrainsTheRequestInFlight() async throws {
        // The upstream holds the next call for 800 ms; shutdown starts 200 ms into it.
        var control = URLRequest(url: URL(string: Upstream.url!.replacingOccurrences(of: "/v1", with: "/_control"))!)
        control.httpMethod = "POST"
        control.httpBody = Data(#"{"mode":"latency","latency_ms":800,"count":1}"#.utf8)
        _ = try await URLSession.shared.data(for: control)
        let finished = LockedState<HTTP.Reply?>(nil)
        let baseURL = LockedState<URL?>(nil)
        try await withProxy({ base in
            baseURL.withLock { $0 = base }
            let reply = try await HTTP.send(base.appendingPathComponent("v1/chat/completions"), method: "POST", json: Self.chat("drain me"))
            finished.withLock { $0 = reply }
        }, shutdown: { group in
            try? await Task.sleep(for: .milliseconds(200))
            await group.triggerGracefulShutdown()
        })
        let reply = try #require(finished.withLock { $0 })
        #expect(reply.status == 200 && reply.headers["x-cachekit-status"] == "MISS", "the request in flight must complete")
        let base = try #require(baseURL.withLock { $0 })
        await #expect(throws: (any Error).self, "the server no longer accepts requests") {
            _ = try await HTTP.send(base.appendingPathComponent("healthz"))
        }
    }

    @Test func metricsStatsAndDashboard() async throws {
        try await withProxy { base in
            let url = base.appendingPathComponent("v1/chat/completions")
            for _ in 0..<3 { _ = try await HTTP.send(url, method: "POST", json: Self.chat("metrics please")) }
            let stats = try await HTTP.send(base.appendingPathComponent("stats"))
            #expect(stats.status == 200)
            #expect(stats.json["requests"] as? Int == 3 && stats.json["hits"] as? Int == 2 && stats.json["upstream_calls"] as? Int == 1)
            #expect(stats.json["pending_invalidations"] as? Int == 0)
            let dashboard = try await HTTP.send(base.appendingPathComponent("dashboard"))
            let page = String(decoding: dashboard.body, as: UTF8.self)
            #expect(dashboard.headers["content-type"]?.hasPrefix("text/html") == true)
            #expect(page.contains("<canvas id=\"layers\"") && page.contains("fetch('/stats')"))
            #expect(page.contains("id=\"precision\"") && page.contains("s.semantic.audit") && page.contains("s.semantic.guarded"))
            let metrics = try await HTTP.send(base.appendingPathComponent("metrics"))
            #expect(metrics.status == 200 && metrics.headers["content-type"]?.hasPrefix("text/plain") == true)
        }
    }
}
