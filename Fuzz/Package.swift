// swift-tools-version: 6.2
// libFuzzer targets for CacheKit's parsers. Build and run with ../scripts/fuzz (needs -sanitize=fuzzer).
import PackageDescription

let package = Package(
    name: "CacheKitFuzz",
    dependencies: [.package(name: "CacheKit", path: "../")],
    targets: [
        .executableTarget(name: "FuzzKey", dependencies: [.product(name: "CacheKit", package: "CacheKit")]),
        .executableTarget(name: "FuzzEntry", dependencies: [.product(name: "CacheKit", package: "CacheKit")]),
        .executableTarget(name: "FuzzSSE", dependencies: [.product(name: "CacheKitOpenAI", package: "CacheKit")]),
    ]
)
