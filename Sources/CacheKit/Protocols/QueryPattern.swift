/// A case-insensitive glob over an entry's stored query text (`CacheEntry.queryText`, the last user message):
/// `*` matches any run of characters, `?` one character, everything else itself. Entries without a stored query
/// text never match.
public struct QueryPattern: Sendable, Hashable, CustomStringConvertible {
    /// The pattern as written.
    public let glob: String
    private let pattern: [Character]

    public init(_ glob: String) {
        self.glob = glob
        self.pattern = Array(glob.lowercased())
    }

    /// Whether `text` matches the whole pattern.
    public func matches(_ text: String) -> Bool {
        let text = Array(text.lowercased())
        // Iterative glob matching with one backtrack point: linear in practice, never exponential.
        var t = 0, p = 0
        var star = -1, resume = 0
        while t < text.count {
            if p < self.pattern.count, self.pattern[p] == "?" || (self.pattern[p] != "*" && self.pattern[p] == text[t]) {
                t += 1
                p += 1
            } else if p < self.pattern.count, self.pattern[p] == "*" {
                star = p
                resume = t
                p += 1
            } else if star >= 0 {
                p = star + 1
                resume += 1
                t = resume
            } else {
                return false
            }
        }
        while p < self.pattern.count, self.pattern[p] == "*" { p += 1 }
        return p == self.pattern.count
    }

    /// Whether `entry`'s stored query text matches.
    public func matches(_ entry: CacheEntry) -> Bool { entry.queryText.map(self.matches) ?? false }

    public var description: String { "\"\(self.glob)\"" }
}

/// Adjusts what is stored with an answer: its TTL and tags, from the query text and scope. Applied by
/// `MultiLayerCache.store` after the request's own `CacheControl`.
public protocol CacheWriteRules: Sendable {
    /// Changes `control` (TTL, tags, stale window) for an answer to `queryText` in `scope`.
    func apply(to control: inout CacheControl, queryText: String?, scope: CacheScope)

    /// The namespaces the rules name, checked against `CacheConfiguration.namespaces` when the cache is built.
    /// Default: none.
    var namespaces: Set<String> { get }
}

extension CacheWriteRules {
    public var namespaces: Set<String> { [] }
}
