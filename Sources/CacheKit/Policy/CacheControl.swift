/// Per-request cache controls, in the spirit of HTTP `Cache-Control`.
public struct CacheControl: Sendable, Hashable {
    /// Do not write the answer to any layer (`no-store`).
    public var noStore: Bool
    /// Do not read: go upstream and refresh the cached answer (`no-cache`, force refresh).
    public var noCache: Bool
    /// Accept only entries younger than this (`max-age`).
    public var maxAge: Duration?
    /// The answer's time to live; `nil` uses the policy's default.
    public var ttl: Duration?
    /// How long past its TTL the answer may be served while one refresh runs; `nil` uses the policy's default.
    public var staleWhileRevalidate: Duration?
    /// Serve and store in this namespace instead of the scope's own.
    public var namespace: String?
    /// Tags to attach to the stored answer.
    public var tags: [String]

    public init(
        noStore: Bool = false,
        noCache: Bool = false,
        maxAge: Duration? = nil,
        ttl: Duration? = nil,
        staleWhileRevalidate: Duration? = nil,
        namespace: String? = nil,
        tags: [String] = []
    ) {
        self.noStore = noStore
        self.noCache = noCache
        self.maxAge = maxAge
        self.ttl = ttl
        self.staleWhileRevalidate = staleWhileRevalidate
        self.namespace = namespace
        self.tags = tags
    }

    /// No controls: read and write as the policy says.
    public static let none = CacheControl()
}
