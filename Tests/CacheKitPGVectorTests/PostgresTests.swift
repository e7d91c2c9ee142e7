import CacheKit
import CacheKitMemory
@testable import CacheKitPGVector
import CacheKitTesting
import Foundation
import Testing

enum PostgresTestServer {
    static let url = ProcessInfo.processInfo.environment["CACHEKIT_POSTGRES_URL"]
    static var available: Bool { url != nil }

    static func configuration(prefix: String = "ckt") throws -> PostgresClient.Configuration {
        try PostgresClient.Configuration(connectionString: url ?? "postgresql://cachekit@127.0.0.1:55432/cachekit", tablePrefix: prefix)
    }

    /// Runs SQL with the server's psql (admin actions the tests need, like pg_terminate_backend).
    @discardableResult
    static func psql(_ sql: String) throws -> String {
        let bin = ProcessInfo.processInfo.environment["CACHEKIT_PG_BIN"] ?? "/usr/bin"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: bin + "/psql")
        process.arguments = [url!, "-At", "-c", sql]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}

@Suite("PostgreSQL configuration")
struct PostgresConfigurationTests {
    /// libpq's parse errors quoted the raw token, a malformed password included, into the error and the CLI's
    /// output; the option name of an unknown option still shows.
    @Test(arguments: [
        "postgresql://u:p%zzhunter2@127.0.0.1/db", "host=127.0.0.1 password='hunter2", "host=127.0.0.1 hunter2",
        "postgresql://u@127.0.0.1/db?sslmode=require&hunter2",
    ])
    func parseErrorsNeverQuoteAPassword(_ connectionString: String) {
        do {
            _ = try PostgresClient.Configuration(connectionString: connectionString)
            Issue.record("accepted \(connectionString)")
        } catch {
            #expect(!error.message.contains("hunter2") && !"\(error)".contains("hunter2"), "\(error.message)")
            #expect(error.message.hasPrefix("PostgreSQL connection string: "))
        }
    }

    @Test func badConnectionStringsAndPrefixesAreClearErrors() {
        do {
            _ = try PostgresClient.Configuration(connectionString: "host=localhost nonsense_option=1")
            Issue.record("accepted an unknown option")
        } catch {
            #expect(error.code == .invalidConfiguration)
            #expect(error.message.contains("nonsense_option"), "\(error.message)")
        }
        do {
            _ = try PostgresClient.Configuration(connectionString: "postgresql://u:hunter2@h/db", tablePrefix: "x; DROP TABLE y")
            Issue.record("accepted an SQL-looking table prefix")
        } catch {
            #expect(error.code == .invalidConfiguration)
            #expect(!error.description.contains("hunter2"))
        }
        #expect((try? PostgresClient.Configuration(connectionString: "postgresql://u:hunter2@h/db"))?.description.contains("hunter2") == false)
    }
}

@Suite("PostgreSQL + pgvector against a real server", .serialized, .enabled(if: PostgresTestServer.available, "needs CACHEKIT_POSTGRES_URL (scripts/test starts PostgreSQL)"))
struct PostgresIntegrationTests {
    @Test(arguments: CacheBackendConformance.Behaviour.allCases)
    func backendConformance(_ behaviour: CacheBackendConformance.Behaviour) async throws {
        let configuration = try PostgresTestServer.configuration()
        try await CacheBackendConformance.realTime(largeValueBytes: 10 << 20) { PostgresCacheBackend(configuration: configuration) }.run(behaviour)
    }

    @Test(arguments: SemanticIndexConformance.Behaviour.allCases)
    func indexConformance(_ behaviour: SemanticIndexConformance.Behaviour) async throws {
        let configuration = try PostgresTestServer.configuration()
        try await SemanticIndexConformance.realTime { PGVectorSemanticIndex(configuration: configuration, dimension: 384) }.run(behaviour)
    }

    func request(_ text: String, system: String = "You are a support bot.") -> ChatRequest {
        ChatRequest(model: "gpt-4o-mini", messages: [.system(system), .user(text)], temperature: 0)
    }

    @Test func semanticIsolationThroughTheCache() async throws {
        let configuration = try PostgresTestServer.configuration()
        var cacheConfiguration = CacheConfiguration()
        cacheConfiguration.layers = [.memory()]
        cacheConfiguration.semantic = .pgvector(configuration, embedder: HashingEmbeddingProvider(dimension: 384), threshold: 0.8)
        let cache = try MultiLayerCache(configuration: cacheConfiguration)
        let upstream = EchoCompletionProvider()
        let tenant = CacheScope(tenant: "pg-\(UInt32.random(in: 0...UInt32.max))")
        _ = try await cache.completion(for: self.request("how do I reset my account password"), in: tenant, upstream: upstream)
        let same = try await cache.completion(for: self.request("how do I reset my account password please"), in: tenant, upstream: upstream)
        #expect(same.outcome.source == .semanticHit, "same partition, paraphrase: expected a semantic hit")
        let otherTenant = try await cache.completion(
            for: self.request("how do I reset my account password please"), in: CacheScope(tenant: "other-\(UInt32.random(in: 0...UInt32.max))"), upstream: upstream
        )
        #expect(otherTenant.outcome.source == .miss, "another tenant got the answer")
        let otherSystem = try await cache.completion(
            for: self.request("how do I reset my account password please", system: "You are a sales bot."), in: tenant, upstream: upstream
        )
        #expect(otherSystem.outcome.source == .miss, "another system prompt got the answer")
        #expect(upstream.calls == 3)
    }

    @Test func searchesUseThePartitionsOwnHNSWIndexOrAnExactSort() async throws {
        let configuration = try PostgresTestServer.configuration(prefix: "ckexplain")
        let index = PGVectorSemanticIndex(configuration: configuration, dimension: 384)
        let scope = CacheScope(tenant: "explain")
        let partition = SemanticPartition(digest: Digest256(hashing: [7]), scopeID: scope.id)
        var generator = SeededGenerator(seed: 3)
        let now = SystemCacheClock().now()
        for i in 0..<1500 {
            var v = (0..<384).map { _ in Float.random(in: -1...1, using: &generator) }
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            v = v.map { $0 / norm }
            let key = CacheKey(digest: Digest256(hashing: Array("e\(i)".utf8)), scopeID: scope.id)
            try await index.insert(SemanticRecord(key: key, partition: partition, vector: v, entry: CacheEntry(value: [1], createdAt: now, expiresAt: now + .seconds(600))))
        }
        #expect(try await index.refreshStatisticsIfGrown(), "1,500 inserts into an empty table should trigger a refresh")
        #expect(try await !index.refreshStatisticsIfGrown(), "no growth since: no second ANALYZE")
        // Past 1,000 records the partition has its own table, searched by its own HNSW index whatever the statistics.
        let child = index.dedicatedTableName(partition.digest)
        let plan = try await index.explainSearch(SemanticQuery(vector: [Float](repeating: 0.05, count: 384), partition: partition, minimumSimilarity: 0, limit: 1))
        print("search plan:\n\(plan)")
        #expect(plan.contains("\(child)_hnsw"), "the search did not use the partition's HNSW index:\n\(plan)")
        #expect(try await index.search(SemanticQuery(vector: [Float](repeating: 0.05, count: 384), partition: partition, minimumSimilarity: -1, limit: 3)).count == 3)
        // A small partition is sorted exactly (through the partition index, or a scan of a small shared table), never
        // through an HNSW index.
        let small = SemanticPartition(digest: Digest256(hashing: [8]), scopeID: scope.id)
        let smallPlan = try await index.explainSearch(SemanticQuery(vector: [Float](repeating: 0.05, count: 384), partition: small, minimumSimilarity: 0, limit: 1))
        #expect(!smallPlan.contains("hnsw") && smallPlan.contains("Sort"), "\(smallPlan)")
    }

    /// A scope keeps at most `maximumRecordsPerScope` records: the oldest-inserted go first, counted; another scope
    /// is untouched. Before, pgvector tables grew without bound per tenant (only the memory index had a cap).
    @Test func perScopeCapDropsTheOldestAndCountsThem() async throws {
        var configuration = try PostgresTestServer.configuration(prefix: "ckcap\(UInt16.random(in: 0...UInt16.max))")
        configuration.maximumRecordsPerScope = 5
        let clock = ManualClock()
        let index = PGVectorSemanticIndex(configuration: configuration, dimension: 8, clock: clock)
        var generator = SeededGenerator(seed: 11)
        func record(_ i: Int, in scope: CacheScope) -> SemanticRecord {
            var v = (0..<8).map { _ in Float.random(in: -1...1, using: &generator) }
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            v = v.map { $0 / norm }
            let now = clock.now()
            return SemanticRecord(
                key: CacheKey(digest: Digest256(hashing: Array("\(scope.tenant) \(i)".utf8)), scopeID: scope.id),
                partition: SemanticPartition(digest: Digest256(hashing: [UInt8(i)]), scopeID: scope.id), vector: v,
                entry: CacheEntry(value: [UInt8(i)], createdAt: now, expiresAt: now + .seconds(600)))
        }
        let big = CacheScope(tenant: "big"), small = CacheScope(tenant: "small")
        var inserted: [SemanticRecord] = []
        for i in 0..<12 {
            clock.advance(by: .seconds(1))
            let r = record(i, in: big)
            inserted.append(r)
            try await index.insert(r)
            if i < 3 { try await index.insert(record(i, in: small)) }
        }
        #expect(index.evictedRecords == 7, "12 inserts into a scope capped at 5")
        for (i, r) in inserted.enumerated() {
            let found = try await index.search(SemanticQuery(vector: r.vector, partition: r.partition, minimumSimilarity: 0.99, limit: 1))
            #expect((found.first?.key == r.key) == (i >= 7), "record \(i): the newest 5 stay, the oldest 7 go")
        }
        #expect(try await index.removeAll(in: small) == 3, "another scope lost records to the cap")
        #expect(try await index.removeAll(in: big) == 5)
    }

    @Test func unreachableServerAndUnknownDatabaseAreClearErrors() async throws {
        let wrongPort = try PostgresClient.Configuration(connectionString: "postgresql://cachekit@127.0.0.1:1/cachekit?connect_timeout=2")
        let key = CacheKey(digest: Digest256(hashing: [1]), scopeID: CacheScope.default.id)
        do {
            _ = try await PostgresCacheBackend(configuration: wrongPort).get(key)
            Issue.record("connected to a closed port")
        } catch let error as CacheError {
            #expect(error.code == .connectionFailed, "\(error)")
        }
        var wrongUser = PostgresTestServer.url!
        wrongUser = wrongUser.replacingOccurrences(of: "cachekit@", with: "no_such_role_ck:hunter2@")
        do {
            _ = try await PostgresCacheBackend(configuration: try PostgresClient.Configuration(connectionString: wrongUser)).get(key)
            Issue.record("connected as a role that does not exist")
        } catch let error as CacheError {
            #expect(error.message.contains("no_such_role_ck"), "\(error)")
            #expect(!error.description.contains("hunter2"), "the password leaked into the error")
        }
        var url = PostgresTestServer.url!
        url = String(url[..<url.lastIndex(of: "/")!]) + "/no_such_database_ck"
        do {
            _ = try await PostgresCacheBackend(configuration: try PostgresClient.Configuration(connectionString: url)).get(key)
            Issue.record("connected to a database that does not exist")
        } catch let error as CacheError {
            #expect(error.message.contains("no_such_database_ck"), "\(error)")
        }
    }

    @Test func postmasterKilledAndRestartedMidLoad() async throws {
        let control = try #require(ProcessInfo.processInfo.environment["CACHEKIT_PG_CTL"])
        func pgctl(_ action: String) throws {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/bash")
            process.arguments = [control, action]
            try process.run()
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "pg-ctl.sh \(action) failed")
        }
        var configuration = try PostgresTestServer.configuration()
        configuration.reconnectBackoff = ReconnectBackoff(initial: .milliseconds(20), maximum: .milliseconds(200))
        let backend = PostgresCacheBackend(configuration: configuration)
        try await backend.migrate()
        var cacheConfiguration = CacheConfiguration()
        cacheConfiguration.layers = [CacheLayer(backend: backend, options: .init(isShared: true))]
        cacheConfiguration.logger.logLevel = .critical
        let cache = try MultiLayerCache(configuration: cacheConfiguration)
        let upstream = EchoCompletionProvider()
        let tenant = CacheScope(tenant: "kill-\(UInt32.random(in: 0...UInt32.max))")
        let now = SystemCacheClock().now()
        var acknowledged: [CacheKey] = []
        var failures = 0
        var recoveredAfter: Duration?
        var restartedAt: ContinuousClock.Instant?
        for i in 0..<120 {
            if i == 40 { try pgctl("kill") }
            if i == 60 {
                try pgctl("start")
                restartedAt = .now
            }
            // A user request through the cache: must never fail.
            do {
                _ = try await cache.completion(for: ChatRequest(model: "m", messages: [.user("kill q\(i % 30)")], temperature: 0), in: tenant, upstream: upstream)
            } catch {
                failures += 1
            }
            // A direct write: acknowledged only when it returned without error.
            let key = CacheKey(digest: Digest256(hashing: Array("ack \(tenant.idPrefix) \(i)".utf8)), scopeID: tenant.id)
            do {
                try await backend.set(CacheEntry(value: Array("v\(i)".utf8), createdAt: now, expiresAt: now + .seconds(600)), for: key)
                acknowledged.append(key)
                if let restartedAt, recoveredAfter == nil { recoveredAfter = .now - restartedAt }
            } catch {}
            try await Task.sleep(for: .milliseconds(10))
        }
        var lost = 0
        for key in acknowledged where try await backend.get(key) == nil { lost += 1 }
        let errors = cache.statistics().layers[0].errors
        print("postmaster SIGKILL + restart: \(failures) user requests failed, \(errors) layer errors counted, \(acknowledged.count) writes acknowledged, \(lost) lost, first write \(recoveredAfter.map { "\($0)" } ?? "never") after restart")
        #expect(failures == 0)
        #expect(errors > 0, "the outage was not counted")
        #expect(lost == 0, "acknowledged writes were lost")
        #expect(recoveredAfter != nil && recoveredAfter! < .seconds(2), "the pool did not recover")
    }

    @Test func terminatedBackendsFailNoRequestAndLoseNothingAcknowledged() async throws {
        let configuration = try PostgresTestServer.configuration()
        let backend = PostgresCacheBackend(configuration: configuration)
        var cacheConfiguration = CacheConfiguration()
        cacheConfiguration.layers = [CacheLayer(backend: backend, options: .init(isShared: true))]
        cacheConfiguration.logger.logLevel = .critical
        let cache = try MultiLayerCache(configuration: cacheConfiguration)
        let upstream = EchoCompletionProvider()
        let tenant = CacheScope(tenant: "terminate-\(UInt32.random(in: 0...UInt32.max))")
        var failures = 0
        for i in 0..<200 {
            if i % 40 == 20 {
                try PostgresTestServer.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = ''")
            }
            let request = ChatRequest(model: "m", messages: [.user("q\(i)")], temperature: 0)
            do {
                let lookup = try await cache.lookup(request, in: tenant)
                let response = try await upstream.complete(request)
                try await cache.store(response, for: lookup)
            } catch {
                failures += 1
            }
        }
        let errors = cache.statistics().layers[0].errors
        print("pg_terminate_backend x5 during 200 writes: \(failures) failed, \(errors) layer errors counted, \(backend.poolCounters.destroyed) connections destroyed")
        #expect(failures == 0)
        // Writes whose layer call succeeded must all be readable.
        var lost = 0
        for i in 0..<200 {
            let key = cache.key(for: ChatRequest(model: "m", messages: [.user("q\(i)")], temperature: 0), in: tenant)
            if try await backend.get(key) == nil { lost += 1 }
        }
        print("entries missing after the terminations: \(lost) of 200 (writes that hit a terminated connection fail and are counted, not acknowledged)")
        #expect(lost <= errors, "more entries are missing than writes reported failed")
    }

    /// Network faults between CacheKit and PostgreSQL through a loopback TCP proxy, under a steady load of reads
    /// and writes: latency beyond the layer's timeout, a stall, and resets in the middle of replies.
    @Test func networkFaultsThroughAProxy() async throws {
        var components = try #require(URLComponents(string: try PostgresTestServer.configuration().connectionString))
        let proxy = try TCPFaultProxy(targetPort: try #require(components.port))
        defer { proxy.stop() }
        components.port = proxy.port
        var configuration = try PostgresClient.Configuration(connectionString: try #require(components.string), tablePrefix: "ckt")
        configuration.statementTimeout = .milliseconds(500)
        configuration.connectTimeout = .seconds(1)
        let backend = PostgresCacheBackend(configuration: configuration)
        var cacheConfiguration = CacheConfiguration()
        cacheConfiguration.layers = [CacheLayer(backend: backend, options: .init(timeout: .milliseconds(300), isShared: true))]
        cacheConfiguration.logger.logLevel = .critical
        let cache = try MultiLayerCache(configuration: cacheConfiguration)
        let upstream = EchoCompletionProvider()
        let tenant = CacheScope(tenant: "proxy-\(UInt32.random(in: 0...UInt32.max))")
        let stop = LockedState(false)
        let loader = Task { () -> (requests: Int, failures: Int) in
            var requests = 0, failures = 0
            while !stop.withLock({ $0 }) {
                let question = "question \(requests % 40)"
                do {
                    let answer = try await cache.completion(for: ChatRequest(model: "m", messages: [.user(question)], temperature: 0), in: tenant, upstream: upstream)
                    if answer.response.text != "answer to: \(question)" { failures += 1 }
                } catch {
                    failures += 1
                }
                requests += 1
                try? await Task.sleep(for: .milliseconds(2))
            }
            return (requests, failures)
        }
        let report = try await proxy.runPhases(
            [TCPFaultProxy.Fault.latency(.milliseconds(600)), .stall, .resetAfter(bytes: 200)], on: cache, probing: backend,
            recoveryLimit: .seconds(2)
        )
        try await Task.sleep(for: .milliseconds(200))
        stop.withLock { $0 = true }
        let result = await loader.value
        print("PostgreSQL TCP proxy faults: \(result.requests) requests, \(result.failures) failed, \(proxy.resetCount) connections reset, "
            + "\(backend.poolCounters.destroyed) connections destroyed; " + report.joined(separator: "; "))
        #expect(result.failures == 0, "user requests failed during network faults")
        #expect(proxy.resetCount > 0, "no connection was reset mid-reply")
        // Every stored entry still answers its own question: no reply reached the wrong caller or was cut short.
        for i in 0..<40 {
            let key = cache.key(for: ChatRequest(model: "m", messages: [.user("question \(i)")], temperature: 0), in: tenant)
            if let entry = try await backend.get(key) {
                #expect(String(decoding: entry.value, as: UTF8.self).contains("answer to: question \(i)\""))
            }
        }
        #expect(cache.statistics().layers[0].corruptEntries == 0)
    }

    /// 2,000 concurrent reads through the pool, every other one cancelled at a random point (queued, in flight
    /// behind 3 ms of added network latency, or done), while the rest use the same connections: no caller gets
    /// another's row, and the pool is back to normal afterwards.
    @Test func randomlyCancelledCallsNeverGetAnotherCallersRowAndThePoolRecovers() async throws {
        var components = try #require(URLComponents(string: try PostgresTestServer.configuration().connectionString))
        let proxy = try TCPFaultProxy(targetPort: try #require(components.port))
        defer { proxy.stop() }
        components.port = proxy.port
        let configuration = try PostgresClient.Configuration(connectionString: try #require(components.string), tablePrefix: "ckt")
        let backend = PostgresCacheBackend(configuration: configuration)
        let storm = try await CancellationStorm.run(
            on: backend, scope: CacheScope(tenant: "storm-\(UInt32.random(in: 0...UInt32.max))"), calls: 2000, maximumDelay: .milliseconds(1200),
            through: proxy)
        let counters = backend.poolCounters
        print("PostgreSQL cancellation: 2000 calls, \(storm); pool open \(counters.open), destroyed \(counters.destroyed), waiters \(counters.waiters)")
        #expect(storm.wrong == 0, "a caller received another caller's row")
        #expect(storm.cancelled > 0 && storm.answered >= 1000)
        #expect(counters.destroyed >= 4, "the four calls cancelled mid-flight did not destroy their connections")
        #expect(counters.waiters == 0 && counters.open <= configuration.poolSize, "the pool is back to normal")
    }

    /// Bytes changed inside entries stored in PostgreSQL (one flipped byte, a truncation, garbage), behind
    /// CacheKit's back: each is detected, counted, answered from upstream as a miss, and replaced by a good entry.
    @Test func entriesCorruptedInsidePostgresAreDetectedCountedAndReplaced() async throws {
        let backend = PostgresCacheBackend(configuration: try PostgresTestServer.configuration())
        var cacheConfiguration = CacheConfiguration()
        cacheConfiguration.layers = [CacheLayer(backend: backend, options: .init(isShared: true))]
        cacheConfiguration.logger.logLevel = .critical
        let cache = try MultiLayerCache(configuration: cacheConfiguration)
        let upstream = EchoCompletionProvider()
        let tenant = CacheScope(tenant: "corrupt-\(UInt32.random(in: 0...UInt32.max))")
        let questions = ["first question", "second question", "third question"]
        func key(_ question: String) -> String {
            cache.key(for: ChatRequest(model: "m", messages: [.user(question)], temperature: 0), in: tenant).digest.hex
        }
        for question in questions {
            _ = try await cache.completion(for: ChatRequest(model: "m", messages: [.user(question)], temperature: 0), in: tenant, upstream: upstream)
        }
        // Admin SQL of the test only; the keys are hex digests, so nothing user-typed reaches this text.
        try PostgresTestServer.psql("UPDATE ckt_entries SET payload = overlay(payload placing '\\xff'::bytea from 30 for 1) WHERE key = decode('\(key(questions[0]))', 'hex')")
        try PostgresTestServer.psql("UPDATE ckt_entries SET payload = substring(payload from 1 for 12) WHERE key = decode('\(key(questions[1]))', 'hex')")
        try PostgresTestServer.psql("UPDATE ckt_entries SET payload = '\\x00'::bytea WHERE key = decode('\(key(questions[2]))', 'hex')")
        for question in questions {
            let answer = try await cache.completion(for: ChatRequest(model: "m", messages: [.user(question)], temperature: 0), in: tenant, upstream: upstream)
            #expect(answer.outcome.source == .miss, "a corrupted entry was served")
            #expect(answer.response.text == "answer to: \(question)")
        }
        #expect(cache.statistics().layers[0].corruptEntries == 3)
        for question in questions {
            let again = try await cache.completion(for: ChatRequest(model: "m", messages: [.user(question)], temperature: 0), in: tenant, upstream: upstream)
            #expect(again.outcome.source == .hitL1 && again.response.text == "answer to: \(question)", "the corrupt entry was not replaced")
        }
        #expect(upstream.calls == 6)
    }
}
