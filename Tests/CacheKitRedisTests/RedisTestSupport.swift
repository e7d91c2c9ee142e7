import CacheKit
import CacheKitRedis
import Foundation

/// The Redis server that scripts/test starts (CACHEKIT_REDIS_URL); the integration tests are skipped without it.
enum RedisTestServer {
    static let url = ProcessInfo.processInfo.environment["CACHEKIT_REDIS_URL"]
    static var available: Bool { url != nil }

    static func configuration(prefix: String = "ck-test-\(UInt32.random(in: 0...UInt32.max))") throws -> RedisClient.Configuration {
        var configuration = try RedisClient.Configuration(url: url ?? "redis://127.0.0.1:6390/0")
        configuration.keyPrefix = prefix
        return configuration
    }

    /// Runs redis-cli against the test server (admin commands the tests need, like CLIENT PAUSE).
    @discardableResult
    static func cli(_ arguments: [String], port: Int? = nil) throws -> String {
        let configuration = try self.configuration()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/redis-cli")
        process.arguments = ["-p", String(port ?? configuration.endpoint.description.split(separator: ":").last.flatMap { Int($0) } ?? 6390)] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}

/// A redis-server owned by one test, on its own port, that the test may kill, freeze and restart.
final class OwnedRedisServer: @unchecked Sendable {
    let port: Int
    let directory: String
    private(set) var process: Process?

    init(port: Int) throws {
        self.port = port
        self.directory = NSTemporaryDirectory() + "cachekit-redis-\(port)-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: self.directory, withIntermediateDirectories: true)
        try self.start()
    }

    func start() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/redis-server")
        process.arguments = ["--port", String(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", self.directory]
        process.standardOutput = FileHandle.nullDevice
        // Not the test's stderr: a server left behind by a dying test process would hold `swift test`'s pipe open
        // and hang the run.
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        for _ in 0..<100 {
            if (try? RedisTestServer.cli(["ping"], port: self.port))?.contains("PONG") == true { return }
            usleep(20_000)
        }
        throw CacheError(.unavailable, "owned redis-server did not start on \(self.port)")
    }

    func kill() {
        guard let process = self.process else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        self.process = nil
    }

    func freeze() { if let process { Foundation.kill(process.processIdentifier, SIGSTOP) } }
    func thaw() { if let process { Foundation.kill(process.processIdentifier, SIGCONT) } }

    deinit {
        self.thaw()
        self.kill()
        try? FileManager.default.removeItem(atPath: self.directory)
    }
}
