public import CacheKit
import CacheKitOpenAI
import Crypto
import Foundation
import HTTPTypes

/// How the proxy authenticates its callers, which tenant each one is, and whose key pays upstream.
///
/// - ``passthrough(tenantSecret:)`` (the default of `cachekit serve`): a caller must present an API key
///   (`Authorization: Bearer …` or Azure's `api-key: …`); that key, not the operator's, is sent upstream on a miss,
///   and the caller's tenant is an HMAC-SHA256 of the key under a server secret. Entries of a tenant are written only
///   after the upstream accepted that tenant's key, so a cached answer is never served to a key the upstream has not
///   accepted at least once; without the secret, a tenant id cannot be linked to a key.
/// - ``keys(_:)``: a keys file maps each caller key (stored as its SHA-256, never in clear) to a tenant, an optional
///   namespace and rate and spend limits; the operator's key goes upstream. An unknown key is 401.
///
/// A request without a key is 401 in both modes unless ``allowsAnonymous`` is set, which serves it in the tenant
/// `anonymous` with the operator's key: an explicit choice, off by default.
public struct ProxyAuthentication: Sendable {
    enum Mode: Sendable {
        case passthrough(secret: SymmetricKey)
        case keys(VirtualKeys)
    }

    let mode: Mode
    /// Serve requests that present no key, in the tenant `anonymous`, with the operator's key. Default `false`.
    public var allowsAnonymous: Bool

    /// Passthrough: the caller's key goes upstream; the tenant is HMAC-SHA256(`tenantSecret`, key). Every instance
    /// that shares a layer must use the same secret (at least 16 bytes).
    public static func passthrough(tenantSecret: [UInt8], allowsAnonymous: Bool = false) throws(CacheError) -> ProxyAuthentication {
        guard tenantSecret.count >= 16 else {
            throw CacheError(.invalidConfiguration, "the tenant secret must be at least 16 bytes (it has \(tenantSecret.count))")
        }
        return ProxyAuthentication(mode: .passthrough(secret: SymmetricKey(data: tenantSecret)), allowsAnonymous: allowsAnonymous)
    }

    /// Virtual keys: only the keys in `keys` are served, each in its own tenant, with the operator's key upstream.
    public static func keys(_ keys: VirtualKeys, allowsAnonymous: Bool = false) -> ProxyAuthentication {
        ProxyAuthentication(mode: .keys(keys), allowsAnonymous: allowsAnonymous)
    }

    /// Who is calling: the tenant, a namespace the key is pinned to, the credential to forward upstream (`nil`:
    /// the operator's own), and the virtual key for limits.
    struct Caller: Sendable {
        var tenant: String
        var namespace: String?
        var credential: OpenAIClient.Credential?
        var virtualKey: VirtualKeys.Entry?
    }

    /// The presented key: `Authorization: Bearer <key>` (or a bare `Authorization: <key>`), else `api-key: <key>`.
    /// An empty value counts as no key.
    static func presentedKey(_ headers: HTTPFields) -> OpenAIClient.Credential? {
        if let authorization = headers[.authorization]?.trimmingCharacters(in: .whitespaces) {
            // "Bearer" alone (HTTP stacks trim the trailing space of "Bearer ") is no key, not the key "Bearer".
            let key = authorization.lowercased().hasPrefix("bearer") ? String(authorization.dropFirst(6)) : authorization
            let trimmed = key.trimmingCharacters(in: .whitespaces)
            if !trimmed.isEmpty { return OpenAIClient.Credential(key: trimmed, authorization: .bearer) }
        }
        if let key = headers[.apiKey]?.trimmingCharacters(in: .whitespaces), !key.isEmpty {
            return OpenAIClient.Credential(key: key, authorization: .azureAPIKey)
        }
        return nil
    }

    /// The caller of a request, or a `ProxyError` (401) when it may not be served.
    func caller(of headers: HTTPFields) throws(ProxyError) -> Caller {
        guard let presented = Self.presentedKey(headers) else {
            guard self.allowsAnonymous else {
                throw ProxyError(
                    .unauthorized, "no API key: send Authorization: Bearer <key> (or api-key: <key>)", type: "authentication_error")
            }
            return Caller(tenant: "anonymous", namespace: nil, credential: nil, virtualKey: nil)
        }
        switch self.mode {
        case .passthrough(let secret):
            let mac = HMAC<SHA256>.authenticationCode(for: Array(presented.key.utf8), using: secret)
            return Caller(tenant: "key:" + Hex.encode(Array(mac).prefix(16)), namespace: nil, credential: presented, virtualKey: nil)
        case .keys(let keys):
            guard let entry = keys.entry(for: presented.key) else {
                throw ProxyError(.unauthorized, "unknown API key", type: "authentication_error")
            }
            return Caller(tenant: entry.tenant, namespace: entry.namespace, credential: nil, virtualKey: entry)
        }
    }
}

/// The keys file of ``ProxyAuthentication/keys(_:)``: JSON of the form
///
/// ```json
/// {"keys": [{"sha256": "<64 hex digits>", "name": "acme-prod", "tenant": "acme", "namespace": "support",
///            "requests_per_minute": 600, "max_spend_usd": 50}]}
/// ```
///
/// `sha256` is the SHA-256 of the key in lowercase hex (`cachekit keys create` writes entries); `name`, `namespace`,
/// `requests_per_minute` and `max_spend_usd` are optional. Spend is counted from the upstream's reported usage at
/// the built-in prices, per process since it started.
public struct VirtualKeys: Sendable {
    /// One key's settings.
    public struct Entry: Sendable, Hashable {
        public var digest: String
        public var name: String
        public var tenant: String
        public var namespace: String?
        public var requestsPerMinute: Int?
        public var maximumSpendUSD: Double?
    }

    public private(set) var entries: [String: Entry]

    /// Parses a keys file. Errors name the entry and the field, never a key.
    public init(json bytes: [UInt8]) throws(CacheError) {
        let value: JSONValue
        do { value = try JSONValue(parsing: bytes) } catch {
            throw CacheError(.invalidConfiguration, "keys file: \(error.description)")
        }
        guard let list = value["keys"]?.arrayValue else {
            throw CacheError(.invalidConfiguration, "keys file: expected {\"keys\": [...]}")
        }
        var entries: [String: Entry] = [:]
        for (index, item) in list.enumerated() {
            func fail(_ reason: String) -> CacheError { CacheError(.invalidConfiguration, "keys file: keys[\(index)]: \(reason)") }
            guard let digest = item["sha256"]?.stringValue?.lowercased(), digest.count == 64, digest.allSatisfy(\.isHexDigit) else {
                throw fail("\"sha256\" must be 64 hex digits (the SHA-256 of the key)")
            }
            guard let tenant = item["tenant"]?.stringValue, !tenant.isEmpty, tenant.utf8.count <= 256 else {
                throw fail("\"tenant\" must be a non-empty string of at most 256 bytes")
            }
            let namespace = item["namespace"]?.stringValue
            if item["namespace"] != nil, namespace == nil { throw fail("\"namespace\" must be a string") }
            var rate: Int?
            if let value = item["requests_per_minute"] {
                guard let number = value.intValue, number > 0, number <= 1_000_000 else { throw fail("\"requests_per_minute\" must be 1...1000000") }
                rate = number
            }
            var spend: Double?
            if let value = item["max_spend_usd"] {
                guard let number = value.doubleValue, number >= 0, number.isFinite else { throw fail("\"max_spend_usd\" must be a non-negative number") }
                spend = number
            }
            guard entries[digest] == nil else { throw fail("the same key is listed twice") }
            entries[digest] = Entry(
                digest: digest, name: item["name"]?.stringValue ?? "keys[\(index)]", tenant: tenant, namespace: namespace,
                requestsPerMinute: rate, maximumSpendUSD: spend)
        }
        self.entries = entries
    }

    /// Reads and parses the keys file at `path`.
    public init(contentsOf path: String) throws(CacheError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CacheError(.invalidConfiguration, "cannot read the keys file \(path)")
        }
        try self.init(json: Array(data))
    }

    /// The entry of a presented key.
    public func entry(for key: String) -> Entry? {
        self.entries[Self.digest(of: key)]
    }

    /// The lowercase hex SHA-256 of a key: what a keys file stores.
    public static func digest(of key: String) -> String {
        Hex.encode(Array(SHA256.hash(data: Array(key.utf8))))
    }
}

/// Per-key request rate and spend, for ``VirtualKeys`` limits. A fixed one-minute window per key.
final class CallerLimiter: Sendable {
    private struct State {
        var windowStart: ContinuousClock.Instant
        var requests: Int
        var spentUSD: Double
    }

    private let state = LockedState<[String: State]>([:])

    /// Counts one request of `entry`; throws 429 when its minute's requests or its spend are used up.
    func admit(_ entry: VirtualKeys.Entry, now: ContinuousClock.Instant = .now) throws(ProxyError) {
        let verdict: String? = self.state.withLock { states in
            var current = states[entry.digest] ?? State(windowStart: now, requests: 0, spentUSD: 0)
            if now - current.windowStart >= .seconds(60) {
                current.windowStart = now
                current.requests = 0
            }
            if let limit = entry.maximumSpendUSD, current.spentUSD >= limit {
                states[entry.digest] = current
                return "spend limit of \(limit) USD reached for this key"
            }
            if let limit = entry.requestsPerMinute, current.requests >= limit {
                states[entry.digest] = current
                return "rate limit of \(limit) requests per minute reached for this key"
            }
            current.requests += 1
            states[entry.digest] = current
            return nil
        }
        if let verdict { throw ProxyError(.tooManyRequests, verdict, type: "rate_limit_error") }
    }

    /// Adds the money an upstream call of `entry` cost.
    func spend(_ entry: VirtualKeys.Entry, usd: Double) {
        guard usd.isFinite, usd > 0 else { return }
        self.state.withLock { states in
            states[entry.digest, default: State(windowStart: .now, requests: 0, spentUSD: 0)].spentUSD += usd
        }
    }
}

extension HTTPField.Name {
    static let apiKey = HTTPField.Name("api-key")!
}
