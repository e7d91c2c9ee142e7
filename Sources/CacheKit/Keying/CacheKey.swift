/// The exact-match key of a cached entry: SHA-256 over the canonical bytes of the key schema version, the scope and
/// the request without its transport-only fields. It also carries the scope's id, so backends can remove by scope.
public struct CacheKey: Sendable, Hashable, CustomStringConvertible {
    /// SHA-256 of the canonical key document.
    public let digest: Digest256
    /// The id of the scope the key belongs to.
    public let scopeID: Digest256

    /// Creates a key from its parts (backends that read keys back from storage use this).
    public init(digest: Digest256, scopeID: Digest256) {
        self.digest = digest
        self.scopeID = scopeID
    }

    /// 64 lowercase hex characters of the digest.
    public var hex: String { self.digest.hex }

    public var description: String { "CacheKey(\(self.digest.hex.prefix(16))…)" }

    public static func == (lhs: CacheKey, rhs: CacheKey) -> Bool { lhs.digest == rhs.digest }
    public func hash(into hasher: inout Hasher) { hasher.combine(self.digest.w0) }
}
