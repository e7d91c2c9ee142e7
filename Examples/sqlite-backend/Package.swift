// swift-tools-version:6.2
import PackageDescription

/// A third-party CacheKit backend: entries in a SQLite file through GRDB, proven by CacheKitTesting's conformance suite.
let package = Package(
    name: "cachekit-sqlite",
    platforms: [.macOS(.v15)],
    products: [.library(name: "CacheKitSQLite", targets: ["CacheKitSQLite"])],
    dependencies: [
        .package(name: "CacheKit", path: "../.."),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        .target(
            name: "CacheKitSQLite",
            dependencies: [
                .product(name: "CacheKit", package: "CacheKit"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "CacheKitSQLiteTests",
            dependencies: [
                "CacheKitSQLite",
                .product(name: "CacheKitTesting", package: "CacheKit"),
                .product(name: "CacheKitMemory", package: "CacheKit"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
    ]
)
