// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "multi-layer",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "CacheKit", path: "../.."),
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0", traits: [.defaults, "YAML"]),
    ],
    targets: [
        .executableTarget(
            name: "MultiLayerExample",
            dependencies: [
                .product(name: "CacheKit", package: "CacheKit"),
                .product(name: "CacheKitMemory", package: "CacheKit"),
                .product(name: "CacheKitRedis", package: "CacheKit"),
                .product(name: "CacheKitPGVector", package: "CacheKit"),
                .product(name: "CacheKitEmbeddings", package: "CacheKit"),
                .product(name: "CacheKitInvalidation", package: "CacheKit"),
                .product(name: "Configuration", package: "swift-configuration"),
            ]
        )
    ]
)
