import ArgumentParser
import CacheKit
import CacheKitEmbeddings
import Foundation

struct EmbedCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Print the embedding of a text as JSON, with the local model.",
        discussion: """
            Uses the sentence-transformers folder in --model or CACHEKIT_MODEL_DIR (./scripts/fetch-model prints \
            one). The vector is unit length; compare it with what sentence-transformers gives for the same model.
            """
    )

    @Argument(help: "The text to embed.")
    var text: String

    @Option(help: "A sentence-transformers model folder (default: CACHEKIT_MODEL_DIR).")
    var model: String?

    @Flag(help: "Also print the tokens.")
    var tokens = false

    func run() async throws {
        guard let directory = self.model ?? ProcessInfo.processInfo.environment["CACHEKIT_MODEL_DIR"] else {
            throw CLIError("no model: pass --model DIR or set CACHEKIT_MODEL_DIR (./scripts/fetch-model prints one)")
        }
        let provider: LocalEmbeddingProvider
        do {
            provider = try LocalEmbeddingProvider(directory: directory)
        } catch {
            throw CLIError("cannot load the embedding model: \(error.message)")
        }
        let vector = try await provider.embed(self.text)
        var output: [String: JSONValue] = [
            "model": .string(provider.model), "dimension": .number(Double(vector.count)),
            "vector": .array(vector.map { .number(Double($0)) }),
        ]
        if self.tokens { output["tokens"] = .array(provider.tokenizer.tokens(self.text).map(JSONValue.string)) }
        print(String(decoding: JSONValue.object(output).canonicalBytes(), as: UTF8.self))
    }
}
