// swift-tools-version:6.2
import PackageDescription

/// swift-configuration, for the `init(config:)` initialisers; only with the `SwiftConfiguration` trait (on by default).
let configuration: Target.Dependency = .product(
    name: "Configuration", package: "swift-configuration", condition: .when(traits: ["SwiftConfiguration"])
)

let package = Package(
    name: "CacheKit",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "CacheKit", targets: ["CacheKit"]),
        .library(name: "CacheKitMemory", targets: ["CacheKitMemory"]),
        .library(name: "CacheKitRedis", targets: ["CacheKitRedis"]),
        .library(name: "CacheKitPGVector", targets: ["CacheKitPGVector"]),
        .library(name: "CacheKitOpenAI", targets: ["CacheKitOpenAI"]),
        .library(name: "CacheKitEmbeddings", targets: ["CacheKitEmbeddings"]),
        .library(name: "CacheKitInvalidation", targets: ["CacheKitInvalidation"]),
        .library(name: "CacheKitPromptPrefix", targets: ["CacheKitPromptPrefix"]),
        .library(name: "CacheKitTesting", targets: ["CacheKitTesting"]),
        .executable(name: "cachekit", targets: ["cachekit"]),
        .plugin(name: "NewBackend", targets: ["NewBackend"]),
    ],
    traits: [
        .trait(
            name: "SwiftConfiguration",
            description: "init(config: ConfigReader) for every configuration type (swift-configuration: environment variables, JSON and YAML files)."
        ),
        .default(enabledTraits: ["SwiftConfiguration"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        .package(
            url: "https://github.com/apple/swift-configuration.git", from: "1.4.0",
            traits: [.defaults, "YAML"]
        ),
        // Documentation: `swift package generate-documentation` (DocC catalogs and snippets).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin.git", from: "1.5.0"),
        // Tests only: the tenant-isolation property test.
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        // FilePath for the tool's configuration file and the configuration-file tests (already a dependency of
        // swift-configuration).
        .package(url: "https://github.com/apple/swift-system.git", from: "1.5.0"),
    ],
    targets: [
        .plugin(
            name: "NewBackend",
            capability: .command(
                intent: .custom(verb: "cachekit-new-backend", description: "Write a new CacheKit backend package that passes the conformance suite."),
                permissions: [.writeToPackageDirectory(reason: "writes the new backend package (default ./cachekit-<name>, or --output)")]
            )
        ),
        .target(name: "CCacheKitCRC32C"),
        .target(name: "CCacheKitKernels"),
        .target(
            name: "CacheKit",
            dependencies: [
                "CCacheKitCRC32C",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                configuration,
            ]
        ),
        .target(name: "CacheKitMemory", dependencies: ["CacheKit", configuration]),
        .target(name: "CacheKitTesting", dependencies: ["CacheKit"]),
        .systemLibrary(
            name: "CCacheKitHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"]), .brew(["hiredis"])]
        ),
        .target(
            name: "CacheKitRedis",
            dependencies: [
                "CacheKit", "CCacheKitHiredis", configuration,
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "cachekit",
            dependencies: [
                "CacheKit",
                "CacheKitMemory",
                "CacheKitEmbeddings",
                "CacheKitPromptPrefix",
                "CacheKitServer",
                "CacheKitRedis",
                "CacheKitPGVector",
                "CacheKitOpenAI",
                "CacheKitInvalidation",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                // The tool reads its settings through swift-configuration (the SwiftConfiguration trait, on by default).
                configuration,
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [.copy("Resources/demo-workload.jsonl")]
        ),
        .systemLibrary(
            name: "CCacheKitLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"]), .brew(["libpq"])]
        ),
        .target(
            name: "CacheKitPGVector",
            dependencies: [
                "CacheKit", "CCacheKitLibPQ", configuration,
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .systemLibrary(
            name: "CCacheKitCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"]), .brew(["curl"])]
        ),
        .target(
            name: "CacheKitOpenAI",
            dependencies: ["CacheKit", "CCacheKitCurl", .product(name: "Logging", package: "swift-log"), configuration]
        ),
        .systemLibrary(
            name: "CCacheKitBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"]), .brew(["openblas"])]
        ),
        .target(name: "CacheKitEmbeddings", dependencies: ["CacheKit", "CCacheKitBLAS", "CCacheKitKernels", configuration]),
        .target(
            name: "CacheKitInvalidation",
            dependencies: ["CacheKit", .product(name: "Logging", package: "swift-log"), .product(name: "Metrics", package: "swift-metrics")]
        ),
        .target(name: "CacheKitPromptPrefix", dependencies: ["CacheKit"]),
        .target(
            name: "CacheKitServer",
            dependencies: [
                "CacheKit", "CacheKitOpenAI", "CacheKitInvalidation",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .testTarget(
            name: "CacheKitTests",
            dependencies: [
                "CacheKit", "CacheKitTesting", .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                .product(name: "PropertyBased", package: "swift-property-based"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ]
        ),
        .testTarget(
            name: "CacheKitInvalidationTests",
            dependencies: ["CacheKitInvalidation", "CacheKitMemory", "CacheKitRedis", "CacheKitPGVector", "CacheKitTesting"]
        ),
        .testTarget(name: "CacheKitPromptPrefixTests", dependencies: ["CacheKitPromptPrefix", "CacheKitTesting"]),
        .testTarget(name: "CLITests", dependencies: ["cachekit", "CacheKit"], exclude: ["Fixtures"]),
        .testTarget(
            name: "CacheKitServerTests",
            dependencies: [
                "CacheKitServer", "CacheKitMemory", "CacheKitTesting",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"), .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "CacheKitConfigurationTests",
            dependencies: [
                "CacheKit", "CacheKitMemory", "CacheKitRedis", "CacheKitPGVector", "CacheKitOpenAI", "CacheKitEmbeddings",
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .testTarget(name: "CacheKitMemoryTests", dependencies: ["CacheKitMemory", "CacheKitTesting"]),
        .testTarget(
            name: "CacheKitEmbeddingsTests",
            dependencies: ["CacheKitEmbeddings", "CCacheKitKernels", "CacheKitMemory", "CacheKitTesting"],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(name: "CacheKitOpenAITests", dependencies: ["CacheKitOpenAI", "CacheKitMemory", "CacheKitTesting"]),
        .testTarget(name: "CacheKitPGVectorTests", dependencies: ["CacheKitPGVector", "CacheKitMemory", "CacheKitTesting"]),
        .testTarget(name: "CacheKitRedisTests", dependencies: ["CacheKitRedis", "CacheKitMemory", "CacheKitTesting"]),
    ]
)

// Every Swift library and tool target imports its dependencies internally unless a file says `public import`, as
// Hummingbird does: a module's public API shows exactly which other modules it exposes.
for target in package.targets where [.regular, .executable].contains(target.type) && !target.name.hasPrefix("CCacheKit") {
    target.swiftSettings = (target.swiftSettings ?? []) + [.enableUpcomingFeature("InternalImportsByDefault")]
}
