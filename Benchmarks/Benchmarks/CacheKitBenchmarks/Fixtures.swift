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
