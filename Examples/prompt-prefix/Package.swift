// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "prompt-prefix",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "CacheKit", path: "../..")],
    targets: [
        .executableTarget(
            name: "PromptPrefixExample",
            dependencies: [
                .product(name: "CacheKit", package: "CacheKit"),
                .product(name: "CacheKitPromptPrefix", package: "CacheKit"),
            ]
        )
    ]
)
