import CacheKit
import Foundation
import Testing

@Suite("cachekit serve and keys")
struct ServeCommandTests {
    /// Starts `cachekit serve` with `arguments`, waits until /healthz answers (or 10 s), stops it with SIGTERM and
    /// returns what it printed.
    static func serveOnce(_ arguments: [String], environment: [String: String]) throws -> (healthy: Bool, log: String) {
        let port = Int.random(in: 30_000...39_000)
        let process = Process()
        process.executableURL = CLI.binary
        process.arguments = ["serve", "--port", "\(port)", "--log-level", "info"] + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        var healthy = false
        for _ in 0..<100 where !healthy {
            let curl = Process()
            curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
            curl.arguments = ["-sf", "-o", "/dev/null", "http://127.0.0.1:\(port)/healthz"]
            try curl.run()
            curl.waitUntilExit()
            healthy = curl.terminationStatus == 0
            if !healthy { Thread.sleep(forTimeInterval: 0.1) }
        }
        process.terminate()
        let log = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (healthy, String(decoding: log, as: UTF8.self))
    }

    /// The proxy logged the upstream URL with its userinfo (`https://user:password@host`); and the generated tenant
    /// secret is kept in a file of mode 0600 and reused, never printed.
    @Test func theUpstreamsPasswordAndTheTenantSecretNeverReachTheLog() throws {
        let state = NSTemporaryDirectory() + "ck-serve-\(UInt32.random(in: 0...UInt32.max))"
        let environment = ["CACHEKIT_STATE_DIR": state, "OPENAI_API_KEY": "sk-operator-hunter3", "CACHEKIT_TENANT_SECRET": ""]
            .filter { !$0.value.isEmpty }
        let first = try Self.serveOnce(["--upstream", "http://proxyuser:hunter2@127.0.0.1:9/v1"], environment: environment)
        #expect(first.healthy, "\(first.log)")
        #expect(first.log.contains("[redacted]@127.0.0.1:9/v1"), "\(first.log)")
        for secret in ["hunter2", "proxyuser", "hunter3"] { #expect(!first.log.contains(secret), "\(secret) in \(first.log)") }
        let secretFile = state + "/tenant-secret"
        let attributes = try FileManager.default.attributesOfItem(atPath: secretFile)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let secret = try String(contentsOfFile: secretFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(secret.count == 64 && !first.log.contains(secret))
        #expect(FileManager.default.fileExists(atPath: state + "/invalidation-outbox.json") == false, "nothing pending, nothing written")
        let second = try Self.serveOnce([], environment: environment)
        #expect(second.healthy)
        #expect(try String(contentsOfFile: secretFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) == secret, "the secret is reused")
    }

    @Test func badAuthenticationSettingsAreClearErrors() throws {
        let unknownMode = try CLI.run(["serve", "--auth", "open"])
        #expect(unknownMode.status != 0 && unknownMode.err.contains("--auth must be passthrough or keys"))
        let noFile = try CLI.run(["serve", "--auth", "keys"])
        #expect(noFile.status != 0 && noFile.err.contains("--keys-file"))
        let shortSecret = try CLI.run(["serve"], environment: ["CACHEKIT_TENANT_SECRET": "abcd"])
        #expect(shortSecret.status != 0 && shortSecret.err.contains("CACHEKIT_TENANT_SECRET") && !shortSecret.err.contains("abcd"))
    }

    /// `cachekit keys create` prints a new key once and stores only its SHA-256.
    @Test func keysCreateStoresOnlyTheHash() throws {
        let file = NSTemporaryDirectory() + "ck-keys-\(UInt32.random(in: 0...UInt32.max)).json"
        let made = try CLI.run(["keys", "create", "--file", file, "--tenant", "acme", "--requests-per-minute", "60"])
        #expect(made.status == 0, "\(made.err)")
        let key = made.out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(key.hasPrefix("ck-") && key.count == 51)
        let stored = try String(contentsOfFile: file, encoding: .utf8)
        #expect(!stored.contains(key) && stored.contains("\"tenant\":\"acme\"") && stored.contains("\"requests_per_minute\":60"))
        #expect(try CLI.run(["keys", "create", "--file", file, "--tenant", "beta"]).status == 0)
        #expect(try String(contentsOfFile: file, encoding: .utf8).components(separatedBy: "sha256").count == 3, "two entries")
    }
}
