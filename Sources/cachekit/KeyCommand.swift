import ArgumentParser
import CacheKit

struct KeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key",
        abstract: "Print the cache key of a chat request body.",
        discussion: """
            Reads an OpenAI chat-completions request body (JSON) from FILE, or from standard input with `-`, and \
            prints its 64-hex-digit key. With --canonical it prints the exact bytes that are hashed, so anyone can \
            check that `cachekit key --canonical FILE | sha256sum` equals `cachekit key FILE`.
            """
    )

    @Argument(help: "The request body file, or - for standard input.")
    var file: String

    @Flag(help: "Print the canonical bytes that are hashed instead of the key.")
    var canonical = false

    @Option(help: "The scope's tenant.")
    var tenant = CacheScope.default.tenant

    @Option(help: "The scope's namespace.")
    var namespace = CacheScope.default.namespace

    @Option(help: "The scope's version.")
    var version = CacheScope.default.version

    func run() async throws {
        let bytes = try readInput(self.file)
        let request: ChatRequest
        do {
            request = try ChatRequest(json: bytes)
        } catch {
            throw CLIError("\(self.file): \(error.message)")
        }
        let scope = CacheScope(tenant: self.tenant, namespace: self.namespace, version: self.version)
        let keyer = RequestKeyer()
        if self.canonical {
            let canonical = keyer.canonicalBytes(for: request, in: scope)
            print(String(decoding: canonical, as: UTF8.self), terminator: "")
        } else {
            print(keyer.key(for: request, in: scope).hex)
        }
    }
}
