import CacheKit
import CacheKitMemory
import Foundation

enum Fixtures {
    /// The 2 KB chat request of compare/request-2kb.json (a copy is bundled here).
    static let request2KB: ChatRequest = {
        let url = Bundle.module.url(forResource: "request-2kb", withExtension: "json")!
        return try! ChatRequest(json: Array(FileManager.default.contents(atPath: url.path)!))
    }()

    static func request(_ i: Int) -> ChatRequest {
        var request = request2KB
        var messages = request.messages
        messages[messages.count - 1] = .user("question number \(i)")
        request.messages = messages
        return request
    }

    static func unitVectors(count: Int, dimension: Int, seed: UInt64) -> [[Float]] {
        var state = seed
        func next() -> Float {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(Int64(bitPattern: state >> 11) % 2_000_001 - 1_000_000) / 1_000_000
        }
        return (0..<count).map { _ in
            let v = (0..<dimension).map { _ in next() }
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return v.map { $0 / norm }
        }
    }
}

extension Fixtures {
    /// Queries near stored vectors: each a stored vector plus `noise` of random direction, renormalised.
    static func nearDuplicates(of vectors: [[Float]], count: Int, noise: Float, seed: UInt64) -> [[Float]] {
        let directions = unitVectors(count: count, dimension: vectors[0].count, seed: seed)
        return (0..<count).map { i in
            let base = vectors[(i &* 7919) % vectors.count]
            let mixed = zip(base, directions[i]).map { $0 + noise * $1 }
            let norm = mixed.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return mixed.map { $0 / norm }
        }
    }

    static let upstream = ClosureCompletionProvider { request in
        ChatResponse(id: "x", model: request.model, created: 0, content: String(repeating: "a", count: 1500),
                     usage: TokenUsage(promptTokens: 500, completionTokens: 400))
    }

    /// The body `cachekit serve` is asked for in the proxy benchmark (temperature 0, so it is cached).
    static let proxyRequestBody = Array(#"{"model":"gpt-4o-mini","temperature":0,"messages":[{"role":"system","content":"You are a support assistant."},{"role":"user","content":"How do I reset my password?"}]}"#.utf8)
}

/// A minimal HTTP/1.1 client over one keep-alive loopback connection: POST a JSON body, read the whole response.
final class LoopbackHTTPClient: @unchecked Sendable {
    private let socket: Int32
    private let head: [UInt8]
    private var buffer = [UInt8](repeating: 0, count: 1 << 16)

    init(hostPort: String, path: String) throws {
        let parts = hostPort.split(separator: ":")
        guard parts.count == 2, let port = UInt16(parts[1]) else { throw CacheError(.invalidConfiguration, "CACHEKIT_BENCH_PROXY must be host:port") }
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        inet_pton(AF_INET, String(parts[0]), &address.sin_addr)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw CacheError(.connectionFailed, "cannot connect to \(hostPort)")
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        self.socket = fd
        self.head = Array("POST \(path) HTTP/1.1\r\nHost: \(hostPort)\r\nContent-Type: application/json\r\nAuthorization: Bearer sk-bench\r\nContent-Length: ".utf8)
    }

    deinit { close(self.socket) }

    /// Sends `body`; returns the status and the response head, lower-cased.
    func post(_ body: [UInt8]) throws -> (Int, String) {
        var request = self.head
        request += Array("\(body.count)\r\n\r\n".utf8)
        request += body
        var sent = 0
        while sent < request.count {
            let n = request.withUnsafeBytes { send(self.socket, $0.baseAddress! + sent, request.count - sent, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw CacheError(.connectionFailed, "send failed") }
            sent += n
        }
        var received: [UInt8] = []
        var headEnd: Int?
        var head = ""
        var contentLength = 0
        while true {
            let n = self.buffer.withUnsafeMutableBytes { recv(self.socket, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { throw CacheError(.connectionFailed, "connection closed") }
            received += self.buffer[0..<n]
            if headEnd == nil, let end = Self.headEnd(in: received) {
                headEnd = end
                head = String(decoding: received[0..<end], as: UTF8.self).lowercased()
                if let line = head.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }) {
                    contentLength = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) ?? 0
                }
            }
            if let headEnd, received.count >= headEnd + contentLength {
                let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
                return (status, head)
            }
        }
    }

    /// The offset just past the blank line that ends the response head, if it has arrived.
    private static func headEnd(in bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4) where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 {
            return i + 4
        }
        return nil
    }
}
