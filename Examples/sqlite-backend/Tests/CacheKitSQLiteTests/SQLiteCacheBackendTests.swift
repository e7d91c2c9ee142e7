import CacheKit
import CacheKitMemory
import CacheKitSQLite
import CacheKitTesting
import Foundation
import GRDB
import Testing

/// Flips one byte in the middle of every stored entry, through a second connection (as a disk fault would).
private func flipAByteOfEveryEntry(at path: String) throws {
    let queue = try DatabaseQueue(path: path)
    try queue.write { db in
        let rows = try Row.fetchAll(db, sql: "SELECT digest, entry FROM cachekit_entries")
        for row in rows {
            var bytes: Data = row["entry"]
            bytes[bytes.startIndex + bytes.count / 2] ^= 0x5A
            try db.execute(sql: "UPDATE cachekit_entries SET entry = ? WHERE digest = ?", arguments: [bytes, row["digest"] as Data])
        }
    }
}

private func temporaryDatabase() -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("cachekit-sqlite-\(UUID().uuidString).db").path
}

@Suite("SQLiteCacheBackend")
struct SQLiteCacheBackendTests {
    /// The whole CacheKitTesting conformance suite, one test case per behaviour.
    @Test(arguments: CacheBackendConformance.Behaviour.allCases)
    func conformance(_ behaviour: CacheBackendConformance.Behaviour) async throws {
        let clock = ManualClock()
        let path = temporaryDatabase()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try await CacheBackendConformance(manualClock: clock) { try SQLiteCacheBackend(path: path, clock: clock) }.run(behaviour)
    }

    /// As a layer behind memory: a second process (a new cache on the same file) is answered from SQLite.
    @Test func answersSurviveARestart() async throws {
        let path = temporaryDatabase()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let request = ChatRequest(model: "gpt-4o-mini", messages: [.user("What is the capital of France?")], temperature: 0)
        let upstream = EchoCompletionProvider()
        func makeCache() throws -> MultiLayerCache {
            var configuration = CacheConfiguration()
            configuration.layers = [.memory(), CacheLayer(backend: try SQLiteCacheBackend(path: path), options: .init(isShared: true))]
            return try MultiLayerCache(configuration: configuration)
        }
        let first = try await makeCache().completion(for: request, upstream: upstream)
        #expect(first.outcome.source == .miss)
        let second = try await makeCache().completion(for: request, upstream: upstream)
        #expect(second.outcome.source == .hitL2, "the new cache's memory is empty; SQLite answers")
        #expect(second.response.text == first.response.text)
        #expect(upstream.calls == 1)
    }

    /// A damaged row is a corrupt entry: counted, deleted, answered from upstream, replaced.
    @Test func aDamagedRowIsAMissAndIsReplaced() async throws {
        let path = temporaryDatabase()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let backend = try SQLiteCacheBackend(path: path)
        var configuration = CacheConfiguration()
        configuration.layers = [CacheLayer(backend: backend, options: .init(isShared: true))]
        let cache = try MultiLayerCache(configuration: configuration)
        let request = ChatRequest(model: "gpt-4o-mini", messages: [.user("How do I reset my password?")], temperature: 0)
        let upstream = EchoCompletionProvider()
        _ = try await cache.completion(for: request, upstream: upstream)
        try flipAByteOfEveryEntry(at: path)
        let answer = try await cache.completion(for: request, upstream: upstream)
        #expect(answer.outcome.source == .miss)
        #expect(cache.statistics().layers[0].corruptEntries == 1)
        #expect(upstream.calls == 2)
        #expect(try await cache.completion(for: request, upstream: upstream).outcome.source == .hitL1)
    }
}
