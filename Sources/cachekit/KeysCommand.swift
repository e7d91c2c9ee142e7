import ArgumentParser
import CacheKit
import CacheKitServer
import Foundation

struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Manage the keys file of `cachekit serve --auth keys`.",
        subcommands: [Create.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "create",
            abstract: "Make a new caller key, add its SHA-256 to the keys file, and print the key once.",
            discussion: """
                The keys file is JSON: {"keys": [{"sha256": "<hex>", "name": "...", "tenant": "...", "namespace": \\
                "...", "requests_per_minute": N, "max_spend_usd": X}]}. Only the SHA-256 of each key is stored; the \\
                key itself is printed on standard output this once and never again. The file is created (mode 0600) \\
                if it does not exist.
                """
        )

        @Option(help: "The keys file.")
        var file: String

        @Option(help: "The tenant this key's requests belong to.")
        var tenant: String

        @Option(help: "A name for the key, shown in errors and logs.")
        var name: String?

        @Option(help: "Pin the key to this namespace.")
        var namespace: String?

        @Option(help: "At most this many requests per minute.")
        var requestsPerMinute: Int?

        @Option(help: "At most this much upstream spend, in US dollars, per proxy process.")
        var maxSpendUsd: Double?

        func run() async throws {
            var document: [String: JSONValue] = ["keys": []]
            if let data = FileManager.default.contents(atPath: self.file) {
                _ = try VirtualKeys(json: Array(data))  // refuse to extend a broken file
                document = try JSONValue(parsing: Array(data)).objectValue ?? document
            }
            var generator = SystemRandomNumberGenerator()
            let key = "ck-" + Hex.encode((0..<24).map { _ in UInt8.random(in: 0...255, using: &generator) })
            var entry: [String: JSONValue] = ["sha256": .string(VirtualKeys.digest(of: key)), "tenant": .string(self.tenant)]
            if let name { entry["name"] = .string(name) }
            if let namespace { entry["namespace"] = .string(namespace) }
            if let requestsPerMinute { entry["requests_per_minute"] = .number(Double(requestsPerMinute)) }
            if let maxSpendUsd { entry["max_spend_usd"] = .number(maxSpendUsd) }
            document["keys"] = .array((document["keys"]?.arrayValue ?? []) + [.object(entry)])
            let bytes = JSONValue.object(document).canonicalBytes()
            _ = try VirtualKeys(json: bytes)
            guard FileManager.default.createFile(atPath: self.file, contents: Data(bytes), attributes: [.posixPermissions: 0o600]) else {
                throw CLIError("cannot write \(self.file)")
            }
            print(key)
        }
    }
}
