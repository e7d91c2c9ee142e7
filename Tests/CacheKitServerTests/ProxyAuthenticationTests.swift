import CacheKit
import CacheKitServer
import Foundation
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif

/// The fake upstream's view: calls, and which keys it saw (a SHA-256 prefix of each).
enum FakeUpstream {
    static var root: String { String(Upstream.url!.dropLast(3)) }

    static func stats() async throws -> (chatCalls: Int, keys: [String: Int]) {
        let (data, _) = try await URLSession.shared.data(from: URL(string: root + "/_stats")!)
        let json = try JSONValue(parsing: Array(data))
        return (json["chat_calls"]?.intValue ?? -1, json["keys"]?.objectValue?.compactMapValues { (value: JSONValue) in value.intValue } ?? [:])
    }

    static func seen(_ key: String) -> String { String(VirtualKeys.digest(of: key).prefix(16)) }

    static func reset() async throws {
        var request = URLRequest(url: URL(string: root + "/_reset")!)
        request.httpMethod = "POST"
        request.httpBody = Data("{}".utf8)
        _ = try await URLSession.shared.data(for: request)
    }
}

@Suite("The proxy authenticates its callers", .serialized, .enabled(if: Upstream.url != nil, "needs CACHEKIT_TEST_OPENAI_URL (scripts/test starts the fake upstream)"))
struct ProxyAuthenticationTests {
    static let secret = Array("another test secret, 32 bytes!!!".utf8)

    init() async throws { try await FakeUpstream.reset() }

    static func chat(_ text: String) -> String { ServerTests.chat(text) }

    static func post(_ base: URL, _ text: String, headers: [String: String]) async throws -> HTTP.Reply {
        try await HTTP.send(base.appendingPathComponent("v1/chat/completions"), method: "POST", json: Self.chat(text), headers: headers)
    }

    /// Passthrough, the default: no key is 401 (the proxy was an open relay for the operator's key); the caller's own
    /// key goes upstream; the tenant is a keyed hash of the key, whichever header carries it (Azure's `api-key`
    /// included); a key the upstream refuses is never served another key's cached answer, and its error carries no
    /// fragment of the key.
    @Test func passthroughForwardsTheCallersKeyAndNeverServesAKeyTheUpstreamRefused() async throws {
        let configuration = ProxyConfiguration(authentication: try .passthrough(tenantSecret: Self.secret))
        try await withProxy(proxyConfiguration: configuration) { base in
            let before = try await FakeUpstream.stats()
            let anonymous = try await Self.post(base, "who pays?", headers: [:])
            #expect(anonymous.status == 401 && (anonymous.json["error"] as? [String: Any])?["type"] as? String == "authentication_error")
            let empty = try await Self.post(base, "who pays?", headers: ["Authorization": "Bearer "])
            #expect(empty.status == 401, "an empty key is no key")
            #expect(try await FakeUpstream.stats().chatCalls == before.chatCalls, "nothing reached the upstream")

            let alice = "sk-caller-alice-0123456789"
            let first = try await Self.post(base, "who pays?", headers: ["Authorization": "Bearer \(alice)"])
            #expect(first.status == 200 && first.headers["x-cachekit-status"] == "MISS")
            let azure = try await Self.post(base, "who pays?", headers: ["api-key": alice])
            #expect(azure.headers["x-cachekit-status"] == "HIT-L1", "the api-key header is the same key, so the same tenant")
            let keys = try await FakeUpstream.stats().keys
            #expect(keys[FakeUpstream.seen(alice)] == 1, "the caller's own key went upstream: \(keys)")
            #expect(keys[FakeUpstream.seen("sk-upstream")] == nil, "the operator's key was used for a caller")

            let mallory = "sk-bad-mallory-guess-WXYZ"
            let refused = try await Self.post(base, "who pays?", headers: ["Authorization": "Bearer \(mallory)"])
            #expect(refused.status == 401, "a key the upstream refuses gets the upstream's answer, not alice's cached one")
            let message = refused.errorMessage ?? ""
            #expect(message.contains("Incorrect API key") && !message.contains("WXYZ") && !message.contains("sk-bad"), "\(message)")
            let bob = try await Self.post(base, "who pays?", headers: ["Authorization": "Bearer sk-caller-bob-0123456789"])
            #expect(bob.headers["x-cachekit-status"] == "MISS", "another key is another tenant")
        }
    }

    /// `--allow-anonymous` is an explicit choice: callers without a key share the tenant `anonymous` and the
    /// operator's key.
    @Test func anonymousCallersAreServedOnlyWhenAllowed() async throws {
        let configuration = ProxyConfiguration(authentication: try .passthrough(tenantSecret: Self.secret, allowsAnonymous: true))
        try await withProxy(proxyConfiguration: configuration) { base in
            #expect(try await Self.post(base, "anonymous question", headers: [:]).headers["x-cachekit-status"] == "MISS")
            #expect(try await Self.post(base, "anonymous question", headers: [:]).headers["x-cachekit-status"] == "HIT-L1")
            #expect(try await FakeUpstream.stats().keys[FakeUpstream.seen("sk-upstream")] ?? 0 >= 1, "anonymous calls use the operator's key")
            let keyed = try await Self.post(base, "anonymous question", headers: ["Authorization": "Bearer sk-caller-carol-0123456789"])
            #expect(keyed.headers["x-cachekit-status"] == "MISS", "a keyed caller never shares the anonymous tenant")
        }
    }

    /// Keys mode: only listed keys (stored hashed) are served, each in its tenant and namespace, with the operator's
    /// key upstream; past its requests per minute a key gets 429.
    @Test func keysModeServesOnlyListedKeysWithinTheirLimits() async throws {
        let key = "ck-test-key-0001"
        let file = #"{"keys":[{"sha256":"\#(VirtualKeys.digest(of: key))","name":"acme","tenant":"acme","namespace":"support","requests_per_minute":3}]}"#
        let keys = try VirtualKeys(json: Array(file.utf8))
        let configuration = ProxyConfiguration(authentication: .keys(keys))
        try await withProxy(proxyConfiguration: configuration) { base in
            #expect(try await Self.post(base, "listed?", headers: ["Authorization": "Bearer ck-unknown"]).status == 401)
            #expect(try await Self.post(base, "listed?", headers: [:]).status == 401)
            let auth = ["Authorization": "Bearer \(key)"]
            #expect(try await Self.post(base, "listed?", headers: auth).headers["x-cachekit-status"] == "MISS")
            #expect(try await Self.post(base, "listed?", headers: auth.merging(["x-cachekit-namespace": "other"]) { $1 }).headers["x-cachekit-status"] == "HIT-L1",
                    "the key is pinned to its namespace")
            #expect(try await FakeUpstream.stats().keys[FakeUpstream.seen(key)] == nil, "a virtual key never goes upstream")
            #expect(try await Self.post(base, "listed?", headers: auth).status == 200)
            let limited = try await Self.post(base, "listed?", headers: auth)
            #expect(limited.status == 429 && limited.errorMessage?.contains("3 requests per minute") == true, "\(limited.errorMessage ?? "")")
        }
        #expect(throws: CacheError.self) { try VirtualKeys(json: Array(#"{"keys":[{"sha256":"abc","tenant":"t"}]}"#.utf8)) }
        #expect(throws: CacheError.self) { try VirtualKeys(json: Array(#"{"keys":[{"sha256":"\#(VirtualKeys.digest(of: "k"))"}]}"#.utf8)) }
    }

    /// `CACHEKIT_ADMIN_TOKEN=` (empty) with no Authorization header passed the check: an empty token now disables the
    /// admin route.
    @Test func anEmptyAdminTokenDisablesTheAdminRoute() async throws {
        try await withProxy(adminToken: "", { (base: URL) async throws in
            let admin = base.appendingPathComponent("admin/invalidate")
            let bare = try await HTTP.send(admin, method: "POST", json: #"{"tag":"x"}"#)
            #expect(bare.status == 404)
            let empty = try await HTTP.send(admin, method: "POST", json: #"{"tag":"x"}"#, headers: ["Authorization": "Bearer "])
            #expect(empty.status == 404)
        })
        var configuration = ProxyConfiguration(authentication: try .passthrough(tenantSecret: Self.secret), adminToken: "")
        #expect(configuration.adminToken == nil)
        configuration.adminToken = ""
        #expect(configuration.adminToken == nil)
    }

    /// What one request may make the cache store is bounded: tag count, tag length, TTL.
    @Test func callersCannotStoreUnboundedTagsOrTTLs() async throws {
        try await withProxy { base in
            let many = (0..<17).map { "t\($0)" }.joined(separator: ",")
            let cases: [([String: String], String)] = [
                (["x-cachekit-tags": many], "at most 16 tags"),
                (["x-cachekit-tags": String(repeating: "x", count: 129)], "129 bytes"),
                (["x-cachekit-ttl": "999999999"], "x-cachekit-ttl: at most"),
            ]
            for (headers, says) in cases {
                let reply = try await Self.post(base, "bounded", headers: headers)
                #expect(reply.status == 400 && reply.errorMessage?.contains(says) == true, "\(says): \(reply.errorMessage ?? "")")
            }
            #expect(try await Self.post(base, "bounded", headers: ["x-cachekit-tags": "a,b", "x-cachekit-ttl": "60"]).status == 200)
        }
    }

    /// Slow clients cannot hold sockets: connections that never finish their request head are closed after the idle
    /// timeout, a body that trickles in is cut off with 408, and the proxy keeps answering.
    @Test func slowClientsAreDisconnected() async throws {
        let configuration = ProxyConfiguration(
            authentication: try .passthrough(tenantSecret: Self.secret, allowsAnonymous: true),
            bodyReadTimeout: .seconds(1), idleTimeout: .seconds(1))
        try await withProxy(proxyConfiguration: configuration) { base in
            let port = UInt16(base.port!)
            let slow = try (0..<64).map { _ in try LoopbackSocket(port: port) }
            for socket in slow { socket.send("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-") }
            try await Task.sleep(for: .milliseconds(2500))
            let closed = slow.filter { $0.isClosedByPeer(waiting: .seconds(2)) }.count
            #expect(closed == 64, "\(closed) of 64 half-sent requests were closed")

            // One byte every 300 ms never trips the 1 s idle timeout; the body deadline cuts it off.
            let trickle = try LoopbackSocket(port: port)
            trickle.send("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
            let started = ContinuousClock.now
            var answer = ""
            while answer.isEmpty, ContinuousClock.now - started < .seconds(6) {
                trickle.send(" ")
                answer = trickle.receive(waiting: .milliseconds(300))
            }
            #expect(answer.hasPrefix("HTTP/1.1 408"), "\(answer.prefix(60))")
            #expect(try await Self.post(base, "still serving", headers: [:]).status == 200)
        }
    }
}

/// A blocking TCP client on loopback, for the slow-client test.
final class LoopbackSocket {
    let descriptor: Int32

    init(port: UInt16) throws {
        self.descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(self.descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else { throw CacheError(.connectionFailed, "connect failed: errno \(errno)") }
    }

    deinit { close(self.descriptor) }

    func send(_ text: String) {
        _ = text.utf8CString.withUnsafeBufferPointer { Glibc.send(self.descriptor, $0.baseAddress, $0.count - 1, Int32(MSG_NOSIGNAL)) }
    }

    private func setTimeout(_ duration: Duration) {
        var timeout = timeval(tv_sec: Int(duration.components.seconds), tv_usec: Int(duration.components.attoseconds / 1_000_000_000_000))
        setsockopt(self.descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Whether the peer closed the connection (a read returns end of file or a reset) within `waiting`.
    func isClosedByPeer(waiting: Duration) -> Bool {
        self.setTimeout(waiting)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(self.descriptor, &buffer, buffer.count, 0)
            if count == 0 { return true }
            if count < 0 { return errno == ECONNRESET }
        }
    }

    /// What arrives within `waiting`, until the peer closes or the time is up.
    func receive(waiting: Duration) -> String {
        self.setTimeout(waiting)
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let count = recv(self.descriptor, &buffer, buffer.count, 0)
        return count > 0 ? String(decoding: buffer.prefix(count), as: UTF8.self) : ""
    }
}
