import Foundation
import PackagePlugin

/// `swift package cachekit-new-backend --name Dynamo [--output DIR]`: writes a new backend package that builds and
/// passes CacheKitTesting's conformance suite as generated, so a backend author starts from green and replaces
/// the dictionary with their store one behaviour at a time.
@main
struct NewBackend: CommandPlugin {
    func performCommand(context: PluginContext, arguments: [String]) async throws {
        var extractor = ArgumentExtractor(arguments)
        guard let rawName = extractor.extractOption(named: "name").last else {
            throw PluginError("give the backend a name: --name Dynamo (letters and digits, starting with a letter)")
        }
        let name = rawName.prefix(1).uppercased() + rawName.dropFirst()
        guard let first = name.unicodeScalars.first, CharacterSet.letters.contains(first),
            name.unicodeScalars.allSatisfy({ CharacterSet.alphanumerics.contains($0) && $0.isASCII }), name.count <= 40
        else {
            throw PluginError("--name must be ASCII letters and digits starting with a letter, at most 40 characters")
        }
        let output = extractor.extractOption(named: "output").last.map { URL(fileURLWithPath: $0, relativeTo: context.package.directoryURL) }
            ?? context.package.directoryURL.appendingPathComponent("cachekit-\(name.lowercased())")
        guard extractor.remainingArguments.isEmpty else {
            throw PluginError("unknown arguments: \(extractor.remainingArguments.joined(separator: " "))")
        }
        let manager = FileManager.default
        if let existing = try? manager.contentsOfDirectory(atPath: output.path), !existing.isEmpty {
            throw PluginError("\(output.path) exists and is not empty; choose another --output")
        }
        let dependency = try Self.cacheKitDependency(context: context, output: output)
        let files = Template.files(name: name, cacheKitDependency: dependency)
        for (path, text) in files {
            let url = output.appendingPathComponent(path)
            try manager.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: url)
        }
        print("Wrote \(files.count) files to \(output.path):")
        for path in files.keys.sorted() { print("  \(path)") }
        print("Next: cd \(output.path) && swift test   (the conformance suite passes as generated)")
    }

    /// How the new package depends on CacheKit: by path when the plugin runs on CacheKit itself (or CacheKit is a
    /// local dependency), else by the URL and version the running package resolved.
    static func cacheKitDependency(context: PluginContext, output: URL) throws -> String {
        let cacheKit: Package
        if context.package.displayName == "CacheKit" {
            cacheKit = context.package
        } else if let found = context.package.dependencies.first(where: { $0.package.displayName == "CacheKit" })?.package {
            cacheKit = found
        } else {
            throw PluginError("run this in CacheKit or in a package that depends on it")
        }
        if case .repository(let url, let version, _) = cacheKit.origin {
            return #".package(name: "CacheKit", url: "\#(url)", from: "\#(version)")"#
        }
        return #".package(name: "CacheKit", path: "\#(relativePath(from: output, to: cacheKit.directoryURL))")"#
    }
}

/// `to` relative to `from` (both absolute folders), for a path dependency that survives moving both together.
func relativePath(from: URL, to: URL) -> String {
    let a = from.standardizedFileURL.pathComponents
    let b = to.standardizedFileURL.pathComponents
    var common = 0
    while common < min(a.count, b.count), a[common] == b[common] { common += 1 }
    let ups = Array(repeating: "..", count: a.count - common)
    let path = (ups + b[common...]).joined(separator: "/")
    return path.isEmpty ? "." : path
}

struct PluginError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
