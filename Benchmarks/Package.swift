// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "CacheKitBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "CacheKit", path: "../"),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "CacheKitBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "CacheKit", package: "CacheKit"),
                .product(name: "CacheKitMemory", package: "CacheKit"),
                .product(name: "CacheKitRedis", package: "CacheKit"),
                .product(name: "CacheKitPGVector", package: "CacheKit"),
                .product(name: "CacheKitEmbeddings", package: "CacheKit"),
            ],
            path: "Benchmarks/CacheKitBenchmarks",
            resources: [.copy("request-2kb.json")],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // A plain timing harness for the side-by-side comparison scripts in compare/: prints ns/op as JSON.
        .executableTarget(
            name: "cachekit-bench",
            dependencies: [
                .product(name: "CacheKit", package: "CacheKit"),
                .product(name: "CacheKitMemory", package: "CacheKit"),
                .product(name: "CacheKitRedis", package: "CacheKit"),
                .product(name: "CacheKitPGVector", package: "CacheKit"),
                .product(name: "CacheKitEmbeddings", package: "CacheKit"),
                .product(name: "CacheKitOpenAI", package: "CacheKit"),
            ],
            path: "Sources/cachekit-bench"
        ),
    ]
)
