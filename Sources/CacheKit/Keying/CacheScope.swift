/// The isolation boundary of cached entries: a tenant, a namespace inside it, and the namespace's version.
///
/// Two requests in different scopes never share an entry, exact or semantic: the scope is hashed into every key and
/// is an equality filter in every semantic query. The parts are JSON strings inside the hashed bytes, so no choice
/// of characters can make one scope's parts read as another's: `("a:b", "c")` and `("a", "b:c")` differ.
public struct CacheScope: Sendable, Hashable, CustomStringConvertible {
    /// The tenant: a customer, an API key's hash, an organisation.
    public let tenant: String
    /// The namespace inside the tenant: an application, a prompt family.
    public let namespace: String
    /// The namespace's version. Bumping it starts a fresh namespace without scanning anything.
    public let version: String
    /// A 256-bit identifier of the scope (SHA-256 of its canonical form); backends key and filter by it.
    public let id: Digest256

    /// Creates a scope.
    public init(tenant: String, namespace: String = "default", version: String = "1") {
        self.tenant = tenant
        self.namespace = namespace
        self.version = version
        var writer = CanonicalJSONWriter(capacity: 64)
        writer.write(JSONValue.array([.string(tenant), .string(namespace), .string(version)]))
        self.id = writer.withBytes { Digest256(hashing: $0) }
    }

    /// The scope with everything defaulted: tenant `default`, namespace `default`, version `1`.
    public static let `default` = CacheScope(tenant: "default")

    /// The same tenant and version in another namespace.
    public func with(namespace: String) -> CacheScope {
        CacheScope(tenant: self.tenant, namespace: namespace, version: self.version)
    }

    /// The same tenant and namespace at another version.
    public func with(version: String) -> CacheScope {
        CacheScope(tenant: self.tenant, namespace: self.namespace, version: version)
    }

    /// Hex of the first 16 bytes of `id`, used inside backend keys (a fixed alphabet: no user characters).
    public var idPrefix: String { String(self.id.hex.prefix(32)) }

    public static func == (lhs: CacheScope, rhs: CacheScope) -> Bool { lhs.id == rhs.id }
    public func hash(into hasher: inout Hasher) { hasher.combine(self.id) }

    /// Does not print the tenant (it may be derived from a credential): only the scope id.
    public var description: String { "CacheScope(\(self.idPrefix))" }
}
