// swift-tools-version: 6.2
// libFuzzer targets for CacheKit's parsers. Build and run with ../scripts/fuzz (needs -sanitize=fuzzer).
import PackageDescription

let package = Package(
    name: "CacheKitFuzz",
    dependencies: [.package(name: "CacheKit", path: "../")],
    targets: [
        .target(name: "FuzzSupport"),
        .executableTarget(name: "FuzzKey", dependencies: ["FuzzSupport", .product(name: "CacheKit", package: "CacheKit")]),
        .executableTarget(name: "FuzzEntry", dependencies: ["FuzzSupport", .product(name: "CacheKit", package: "CacheKit")]),
        .executableTarget(name: "FuzzSSE", dependencies: ["FuzzSupport", .product(name: "CacheKitOpenAI", package: "CacheKit")]),
        .executableTarget(name: "FuzzModelFiles", dependencies: ["FuzzSupport", .product(name: "CacheKitEmbeddings", package: "CacheKit")]),
        .executableTarget(
            name: "FuzzModelFolder",
            dependencies: [
                "FuzzSupport", .product(name: "CacheKit", package: "CacheKit"), .product(name: "CacheKitEmbeddings", package: "CacheKit"),
                .product(name: "CacheKitTesting", package: "CacheKit"),
            ]
        ),
        .executableTarget(
            name: "FuzzUpstream",
            dependencies: ["FuzzSupport", .product(name: "CacheKit", package: "CacheKit"), .product(name: "CacheKitOpenAI", package: "CacheKit")]
        ),
        .executableTarget(
            name: "FuzzConfig",
            dependencies: [
                "FuzzSupport", .product(name: "CacheKit", package: "CacheKit"), .product(name: "CacheKitRedis", package: "CacheKit"),
                .product(name: "CacheKitPGVector", package: "CacheKit"),
            ]
        ),
    ]
)
