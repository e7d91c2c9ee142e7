import CacheKit
import Foundation
import Testing

/// Runs the built `cachekit` executable (this target depends on it, so `swift test` builds it).
enum CLI {
    static var binary: URL {
        // The test bundle sits in the build products folder, next to the executable.
        var folder = Bundle.main.bundleURL
        while !FileManager.default.fileExists(atPath: folder.appendingPathComponent("cachekit").path), folder.path != "/" {
            folder = folder.deletingLastPathComponent()
        }
        return folder.appendingPathComponent("cachekit")
    }

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func run(_ arguments: [String], stdin: String? = nil, environment extra: [String: String] = [:]) throws -> (status: Int32, out: String, err: String) {
        let process = Process()
        process.executableURL = self.binary
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["CACHEKIT_MODEL_DIR"] = nil
        environment.merge(extra) { $1 }
        process.environment = environment
        let out = Pipe(), err = Pipe(), input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let error = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self), String(decoding: error, as: UTF8.self))
    }
}

@Suite("cachekit command line")
struct CLITests {
    @Test func replayJSONMatchesTheGoldenSummary() throws {
        let result = try CLI.run(["replay", CLI.fixtures.appendingPathComponent("small-workload.jsonl").path, "--upstream-latency-ms", "0", "--json"])
        #expect(result.status == 0, "\(result.err)")
        var summary = try #require(try JSONValue(parsing: Array(result.out.utf8)).objectValue)
        // Timings vary run to run; everything else is deterministic.
        for key in summary.keys where key.hasSuffix("_ms") { #expect(summary[key]?.doubleValue != nil, "\(key) is a number"); summary[key] = nil }
        let golden = try JSONValue(parsing: Array(try Data(contentsOf: CLI.fixtures.appendingPathComponent("small-workload.golden.json"))))
        #expect(JSONValue.object(summary) == golden, "\(result.out)")
        for key in ["requests", "upstream_calls", "hits_l1", "hits_l2", "semantic_hits", "semantic_correct", "semantic_wrong", "misses", "p50_ms", "p95_ms", "tokens_saved", "cost_saved_usd"] {
            #expect(result.out.contains("\"\(key)\""), "the documented summary key \(key) is missing")
        }
    }

    /// Every key the summary prints is documented in `replay --help` and in docs/replay-workload.md, so the format
    /// a user reads and the one the command writes cannot drift apart.
    @Test func replaySummaryKeysAreDocumentedInHelpAndDocs() throws {
        let result = try CLI.run(["replay", CLI.fixtures.appendingPathComponent("small-workload.jsonl").path, "--upstream-latency-ms", "0", "--json"])
        let keys = try #require(try JSONValue(parsing: Array(result.out.utf8)).objectValue).keys
        #expect(keys.count >= 12)
        let help = try CLI.run(["replay", "--help"]).out.replacingOccurrences(of: "\n", with: " ")
        let docURL = CLI.fixtures.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/replay-workload.md")
        let doc = try String(contentsOf: docURL, encoding: .utf8)
        for key in keys {
            #expect(help.contains(key), "replay --help does not document \(key)")
            #expect(doc.contains("`\(key)`"), "docs/replay-workload.md does not document \(key)")
        }
    }

    /// `calibrate` on a small pairs file: both folds reported, the margin and threshold chosen on the calibration
    /// half, and counts that add up; a malformed file is one clear error.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["CACHEKIT_MODEL_DIR"] != nil, "needs CACHEKIT_MODEL_DIR"))
    func calibrateReportsBothFoldsOfHeldOutPairs() throws {
        let model = ProcessInfo.processInfo.environment["CACHEKIT_MODEL_DIR"]!
        let pairs = CLI.fixtures.appendingPathComponent("paraphrase-pairs.json").path
        let result = try CLI.run(["calibrate", pairs, "--model", model, "--by-answer-text", "--minimum-precision", "0.9", "--json"])
        #expect(result.status == 0, "\(result.err)")
        let summary = try JSONValue(parsing: Array(result.out.utf8))
        let margin = try #require(summary["ambiguity_margin"]?.doubleValue)
        #expect(margin >= 0 && margin <= 0.05)
        for fold in [summary["holdout"], summary["reverse_fold"]?["holdout"]] {
            let holdout = try #require(fold)
            let counts = ["correct_hits", "wrong_hits", "misses"].compactMap { holdout[$0]?.intValue }
            #expect(counts.count == 3 && counts.reduce(0, +) == 10, "each half has 10 queries: \(holdout)")
            #expect((0...1).contains(holdout["hit_rate"]?.doubleValue ?? -1))
        }
        // Distinct support questions and their paraphrases: nearly every one is served its own answer.
        let all = try #require(summary["chosen_all_pairs"])
        #expect((all["correct_hits"]?.intValue ?? 0) >= 15, "\(all)")
        #expect((all["wrong_hits"]?.intValue ?? 99) <= 2, "\(all)")

        let fixed = try CLI.run(["calibrate", pairs, "--model", model, "--ambiguity-margin", "0.03", "--minimum-precision", "0.5", "--json"])
        #expect(fixed.status == 0, "\(fixed.err)")
        #expect(try JSONValue(parsing: Array(fixed.out.utf8))["ambiguity_margin"]?.doubleValue.map { abs($0 - 0.03) < 1e-6 } == true)

        let broken = try CLI.run(["calibrate", "-", "--model", model], stdin: #"[{"origin": "a"}]"#)
        #expect(broken.status != 0 && broken.err.contains("pair 0 needs string"), "\(broken.err)")
        let noModel = try CLI.run(["calibrate", pairs])
        #expect(noModel.status != 0 && noModel.err.contains("no model"), "\(noModel.err)")
    }

    @Test func malformedInputIsOneClearLineAndAFailingExit() throws {
        let bad = #"{"request":{"model":"m","messages":[{"role":"user","content":"a"}]},"label":"x"}"# + "\n{\"request\": nope}\n"
        let result = try CLI.run(["replay", "-"], stdin: bad)
        #expect(result.status != 0)
        #expect(result.err.contains("line 2"), "\(result.err)")
        #expect(result.err.split(separator: "\n").count == 1, "one line: \(result.err)")
        let missing = try CLI.run(["replay", "/nonexistent/workload.jsonl"])
        #expect(missing.status != 0 && missing.err.contains("/nonexistent/workload.jsonl"))
        let unreachable = try CLI.run(["replay", CLI.fixtures.appendingPathComponent("small-workload.jsonl").path, "--layers", "memory,redis", "--redis-url", "redis://127.0.0.1:1/0"])
        #expect(unreachable.status != 0 && unreachable.err.contains("cannot use the redis layer"), "\(unreachable.err)")
        let badLayer = try CLI.run(["replay", CLI.fixtures.appendingPathComponent("small-workload.jsonl").path, "--layers", "memcached"])
        #expect(badLayer.status != 0 && badLayer.err.contains("unknown layer"))
    }

    @Test func configurationFileThenEnvironmentThenFlags() throws {
        let workload = CLI.fixtures.appendingPathComponent("small-workload.jsonl").path
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("cachekit-\(UInt32.random(in: 0...UInt32.max)).json")
        try Data(#"{"layers":"bogus-from-file"}"#.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let fromFile = try CLI.run(["replay", workload, "--config", file.path, "--upstream-latency-ms", "0"])
        #expect(fromFile.status != 0 && fromFile.err.contains("bogus-from-file"), "the file is read: \(fromFile.err)")
        let fromEnvironment = try CLI.run(["replay", workload, "--config", file.path, "--upstream-latency-ms", "0"], environment: ["CACHEKIT_LAYERS": "bogus-from-env"])
        #expect(fromEnvironment.err.contains("bogus-from-env"), "the environment overrides the file: \(fromEnvironment.err)")
        let fromFlag = try CLI.run(["replay", workload, "--config", file.path, "--layers", "memory", "--upstream-latency-ms", "0", "--json"], environment: ["CACHEKIT_LAYERS": "bogus-from-env"])
        #expect(fromFlag.status == 0, "the flag overrides both: \(fromFlag.err)")
        try Data(#"{"layer":"memory"}"#.utf8).write(to: file)
        let typo = try CLI.run(["replay", workload, "--config", file.path])
        #expect(typo.status != 0 && typo.err.contains("unknown setting \"layer\""), "\(typo.err)")
    }

    /// The tool reads the libraries' keys through swift-configuration, with their strict errors: nested keys in the
    /// file, `CACHEKIT_` + the key in the environment, a malformed value named by its key.
    @Test func theToolReadsTheLibrariesKeys() throws {
        let workload = CLI.fixtures.appendingPathComponent("small-workload.jsonl").path
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("cachekit-\(UInt32.random(in: 0...UInt32.max)).json")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data(#"{"layers":"memory","cache":{"maximumInFlightCalls":"many"}}"#.utf8).write(to: file)
        let malformed = try CLI.run(["replay", workload, "--config", file.path, "--upstream-latency-ms", "0"])
        #expect(malformed.status != 0 && malformed.err.contains("maximumInFlightCalls"), "a malformed library key is named: \(malformed.err)")
        let fromEnvironment = try CLI.run(
            ["replay", workload, "--upstream-latency-ms", "0"], environment: ["CACHEKIT_CACHE_POLICY_DEFAULT_TTL_SECONDS": "-5"])
        #expect(fromEnvironment.status != 0 && fromEnvironment.err.contains("defaultTtlSeconds"), "\(fromEnvironment.err)")
        try Data(#"{"semantic":{"treshold":0.9}}"#.utf8).write(to: file)
        let nestedTypo = try CLI.run(["replay", workload, "--config", file.path])
        #expect(nestedTypo.status != 0 && nestedTypo.err.contains("unknown setting \"semantic.treshold\""), "\(nestedTypo.err)")
        try Data(#"{"layers":"memory","cache":{"policy":{"defaultTtlSeconds":600}},"semantic":{"index":"none"}}"#.utf8).write(to: file)
        let nested = try CLI.run(["replay", workload, "--config", file.path, "--upstream-latency-ms", "0", "--json"])
        #expect(nested.status == 0, "nested library keys are read: \(nested.err)")
        let threshold = try CLI.run(["replay", workload, "--upstream-latency-ms", "0"], environment: ["CACHEKIT_SEMANTIC_THRESHOLD": "2"])
        #expect(threshold.status != 0 && threshold.err.contains("semantic.threshold"), "\(threshold.err)")
    }

    /// `serve` reads its own settings (`proxy.*`, `openai.*`) the same way: flag, `CACHEKIT_` environment, file, with
    /// the earlier variable names still honoured and malformed values named by their key.
    @Test func serveReadsItsSettingsThroughTheSameReader() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("cachekit-\(UInt32.random(in: 0...UInt32.max)).json")
        defer { try? FileManager.default.removeItem(at: file) }
        let badPort = try CLI.run(["serve"], environment: ["CACHEKIT_PROXY_PORT": "99999"])
        #expect(badPort.status != 0 && badPort.err.contains("port"), "\(badPort.err)")
        try Data(#"{"proxy":{"prot":8080}}"#.utf8).write(to: file)
        let typo = try CLI.run(["serve", "--config", file.path])
        #expect(typo.status != 0 && typo.err.contains("unknown setting \"proxy.prot\""), "\(typo.err)")
        try Data(#"{"proxy":{"auth":"keys"}}"#.utf8).write(to: file)
        let keysWithoutFile = try CLI.run(["serve", "--config", file.path])
        #expect(keysWithoutFile.status != 0 && keysWithoutFile.err.contains("needs --keys-file"), "the file's proxy.auth is read: \(keysWithoutFile.err)")
        let flagWins = try CLI.run(["serve", "--config", file.path, "--auth", "bogus"])
        #expect(flagWins.status != 0 && flagWins.err.contains("\"bogus\""), "the flag overrides the file: \(flagWins.err)")
        let badUpstream = try CLI.run(["serve", "--upstream", "ftp://example.com"])
        #expect(badUpstream.status != 0 && badUpstream.err.contains("baseURL"), "\(badUpstream.err)")
        let shortSecret = try CLI.run(["serve"], environment: ["CACHEKIT_TENANT_SECRET": "abcd"])
        #expect(shortSecret.status != 0 && shortSecret.err.contains("at least 32 hex digits") && !shortSecret.err.contains("abcd"), "\(shortSecret.err)")
    }

    @Test func keyPrintsTheSHA256OfTheCanonicalBytes() throws {
        let request = #"{"messages":[{"content":"hi","role":"user"}],"temperature":0,"model":"gpt-4o-mini","stream":true}"#
        let key = try CLI.run(["key", "-"], stdin: request)
        let canonical = try CLI.run(["key", "--canonical", "-"], stdin: request)
        #expect(key.status == 0 && canonical.status == 0)
        #expect(canonical.out == #"{"request":{"messages":[{"content":"hi","role":"user"}],"model":"gpt-4o-mini","temperature":0},"scope":{"namespace":"default","tenant":"default","version":"1"},"v":1}"#)
        #expect(key.out.trimmingCharacters(in: .whitespacesAndNewlines) == Digest256(hashing: Array(canonical.out.utf8)).hex)
    }

    @Test func prefixAuditDemoShowsTheFix() throws {
        let result = try CLI.run(["prefix-audit", "--demo"])
        #expect(result.status == 0)
        #expect(result.out.contains("hit ratio 0 %") && result.out.contains("hit ratio 90 %"), "\(result.out)")
    }
}
