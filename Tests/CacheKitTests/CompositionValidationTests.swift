import CacheKit
import CacheKitTesting
import Testing

/// Every problem `CacheConfiguration.validate()` finds is an error when the cache is built, naming the setting:
/// before, most of them surfaced as a counted miss on every call (a dimension mismatch) or never (a misspelt
/// namespace, two layers reported under one name).
@Suite("Composition is validated when the cache is built")
struct CompositionValidationTests {
    /// A store with none of the optional capabilities: it cannot drop what this process holds.
    final class MinimalBackend: CacheBackend {
        let base = InMemoryCacheBackend(name: "minimal")
        var name: String { "minimal" }
        func get(_ key: CacheKey) async throws -> CacheEntry? { try await self.base.get(key) }
        func set(_ entry: CacheEntry, for key: CacheKey) async throws { try await self.base.set(entry, for: key) }
        func remove(_ key: CacheKey) async throws -> Bool { try await self.base.remove(key) }
        func removeAll(taggedWith tag: String) async throws -> Int { try await self.base.removeAll(taggedWith: tag) }
        func removeAll(in scope: CacheScope) async throws -> Int { try await self.base.removeAll(in: scope) }
    }

    struct NamespaceRules: CacheWriteRules {
        var namespaces: Set<String>
        func apply(to control: inout CacheControl, queryText: String?, scope: CacheScope) {}
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        /// The text the error must contain: the setting, and what is wrong.
        var mentions: [String]
        var change: @Sendable (inout CacheConfiguration) -> Void
        var testDescription: String { self.name }
    }

    static func semantic(indexDimension: Int = 64, embedderDimension: Int = 64) -> SemanticLayer {
        SemanticLayer(index: InMemorySemanticIndex(dimension: indexDimension), embedder: HashingEmbeddingProvider(dimension: embedderDimension))
    }

    static let cases: [Case] = [
        Case(name: "two layers with one name", mentions: ["layers", "\"in-memory\""]) {
            $0.layers = [CacheLayer(backend: InMemoryCacheBackend()), CacheLayer(backend: InMemoryCacheBackend(), options: .init(isShared: true))]
        },
        Case(name: "embedder and index of different dimensions", mentions: ["semantic.embedder", "384", "256"]) {
            $0.semantic = Self.semantic(indexDimension: 256, embedderDimension: 384)
        },
        Case(name: "threshold outside -1...1", mentions: ["semantic.threshold", "1.5"]) {
            $0.semantic = Self.semantic()
            $0.semantic?.threshold = 1.5
        },
        Case(name: "namespace threshold outside -1...1", mentions: ["semantic.namespaceThresholds[\"legal\"]"]) {
            $0.semantic = Self.semantic()
            $0.semantic?.namespaceThresholds = ["legal": 9.7]
        },
        Case(name: "negative near-miss margin", mentions: ["semantic.nearMissMargin"]) {
            $0.semantic = Self.semantic()
            $0.semantic?.nearMissMargin = -0.1
        },
        Case(name: "query bound not positive", mentions: ["semantic.maximumQueryBytes"]) {
            $0.semantic = Self.semantic()
            $0.semantic?.maximumQueryBytes = 0
        },
        Case(name: "threshold for an undeclared namespace", mentions: ["semantic.namespaceThresholds", "\"medcial\"", "medical"]) {
            $0.namespaces = ["medical", "faq"]
            $0.semantic = Self.semantic()
            $0.semantic?.namespaceThresholds = ["medcial": 0.97]
        },
        Case(name: "rules that name an undeclared namespace", mentions: ["writeRules", "\"pricing\""]) {
            $0.namespaces = ["faq"]
            $0.writeRules = NamespaceRules(namespaces: ["faq", "pricing"])
        },
        Case(name: "a local layer that cannot clear itself, with a bus", mentions: ["layers[0]", "\"minimal\"", "localClearing"]) {
            $0.layers = [CacheLayer(backend: MinimalBackend())]
            $0.invalidationBus = InProcessInvalidationBus()
        },
        Case(name: "a local index that cannot clear itself, with a bus", mentions: ["semantic.index", "localClearing"]) {
            $0.semantic = Self.semantic()
            $0.invalidationBus = InProcessInvalidationBus()
        },
        Case(name: "a TTL ceiling that is not positive", mentions: ["layers[0].options.ttlCeiling"]) {
            $0.layers = [CacheLayer(backend: InMemoryCacheBackend(), options: .init(ttlCeiling: .zero))]
        },
        Case(name: "a layer timeout that is not positive", mentions: ["layers[0].options.timeout"]) {
            $0.layers = [CacheLayer(backend: InMemoryCacheBackend(), options: .init(timeout: .milliseconds(-5)))]
        },
        Case(name: "no in-flight calls allowed", mentions: ["maximumInFlightCalls"]) { $0.maximumInFlightCalls = 0 },
        Case(name: "negative background refreshes", mentions: ["maximumBackgroundRefreshes"]) { $0.maximumBackgroundRefreshes = -1 },
    ]

    @Test(arguments: Self.cases)
    func refusedAtBuildTime(_ problem: Case) throws {
        var configuration = CacheConfiguration(layers: [CacheLayer(backend: InMemoryCacheBackend())])
        // The same configuration without the problem builds.
        _ = try MultiLayerCache(configuration: configuration)
        problem.change(&configuration)
        do {
            _ = try MultiLayerCache(configuration: configuration)
            Issue.record("\(problem.name): the cache was built")
        } catch {
            #expect(error.code == .invalidConfiguration)
            for text in problem.mentions {
                #expect(error.message.contains(text), "\(problem.name): \"\(error.message)\" does not mention \(text)")
            }
        }
    }

    /// What the checks must not refuse: a declared namespace, a shared layer without local clearing under a bus, a
    /// shared index.
    @Test func soundCompositionsBuild() throws {
        var configuration = CacheConfiguration()
        configuration.namespaces = ["medical"]
        configuration.layers = [
            CacheLayer(backend: InMemoryCacheBackend(), name: "L1"),
            CacheLayer(backend: MinimalBackend(), options: .init(isShared: true)),
        ]
        configuration.semantic = Self.semantic()
        configuration.semantic?.isShared = true
        configuration.semantic?.namespaceThresholds = ["medical": 0.97]
        configuration.writeRules = NamespaceRules(namespaces: ["medical"])
        configuration.invalidationBus = InProcessInvalidationBus()
        _ = try MultiLayerCache(configuration: configuration)
    }
}
