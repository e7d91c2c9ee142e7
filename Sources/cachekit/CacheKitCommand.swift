import ArgumentParser

@main
struct CacheKitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cachekit",
        abstract: "A layered cache in front of large-language-model calls.",
        discussion: """
            Keys are SHA-256 over RFC 8785 canonical JSON of the request and its scope; answers are served from \
            memory, Redis or a semantic layer. Run `cachekit demo` to see it work with no servers and no API key.
            """,
        subcommands: [KeyCommand.self, DemoCommand.self, EmbedCommand.self, CalibrateCommand.self, PrefixAuditCommand.self, ServeCommand.self, KeysCommand.self, ReplayCommand.self, WarmCommand.self, StatsCommand.self, InvalidateCommand.self]
    )
}

/// Reads a whole file, or standard input for `-`.
func readInput(_ path: String) throws -> [UInt8] {
    if path == "-" {
        var bytes: [UInt8] = []
        while let line = readLine(strippingNewline: false) { bytes.append(contentsOf: line.utf8) }
        return bytes
    }
    guard let file = fopen(path, "rb") else {
        throw CLIError("cannot open \(path): \(String(cString: strerror(errno)))")
    }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = fread(&buffer, 1, buffer.count, file)
        if count > 0 { bytes.append(contentsOf: buffer[0..<count]) }
        if count < buffer.count { break }
    }
    if ferror(file) != 0 { throw CLIError("cannot read \(path)") }
    return bytes
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A command-line failure: printed as one line (`Error: ...`) with a non-zero exit code, without the usage text.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
