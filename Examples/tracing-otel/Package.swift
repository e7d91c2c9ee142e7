// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "tracing-otel",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "CacheKit", path: "../.."),
        // OTLP over HTTP only: the gRPC exporter's dependencies double the build.
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        .executableTarget(
            name: "TracingExample",
            dependencies: [
                .product(name: "CacheKit", package: "CacheKit"),
                .product(name: "CacheKitMemory", package: "CacheKit"),
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        )
    ]
)
