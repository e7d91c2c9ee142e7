public import CacheKit

/// A rule applied when an answer is stored: entries whose query text or namespace match get a TTL and tags.
///
/// When several rules match, the shortest TTL wins and all their tags are attached. A TTL the request set itself
/// (`CacheControl.ttl`) is kept if it is shorter: a rule can only make an answer fresher.
public struct TimeRule: Sendable, Hashable {
    /// What a rule matches.
    public enum Match: Sendable, Hashable {
        /// Query texts matching a case-insensitive glob (`*`, `?`), in any namespace.
        case query(QueryPattern)
        /// Every answer stored in a namespace.
        case namespace(String)
        /// Query texts matching a glob, in one namespace.
        case queryInNamespace(QueryPattern, String)
    }

    public var match: Match
    /// The TTL to apply; `nil` leaves the TTL alone (a rule that only tags).
    public var ttl: Duration?
    /// Tags to attach, for invalidation by tag later.
    public var tags: [String]

    public init(_ match: Match, ttl: Duration? = nil, tags: [String] = []) {
        self.match = match
        self.ttl = ttl
        self.tags = tags
    }

    /// Whether the rule applies to an answer to `queryText` stored in `scope`.
    public func applies(queryText: String?, scope: CacheScope) -> Bool {
        switch self.match {
        case .query(let pattern): queryText.map(pattern.matches) ?? false
        case .namespace(let namespace): scope.namespace == namespace
        case .queryInNamespace(let pattern, let namespace): scope.namespace == namespace && (queryText.map(pattern.matches) ?? false)
        }
    }
}

/// A rule applied when an application event arrives: what to invalidate for an event type.
///
/// Tags and patterns are templates: `{name}` is replaced by the event's attribute `name` (`"product:{id}"` with
/// `id = 123` is `product:123`). An event that lacks an attribute a template needs is refused before anything is
/// removed.
public struct EventRule: Sendable, Hashable {
    /// The event type this rule answers (`product_updated`).
    public var event: String
    /// Tag templates: every entry carrying one of the resulting tags is removed from every layer.
    public var tags: [String]
    /// Query-text glob templates: matching entries of the event's scope are removed (O(n) scans, see
    /// `CacheStore.removeAll(in:where:)`); use tags where you can.
    public var patterns: [String]

    public init(event: String, tags: [String] = [], patterns: [String] = []) {
        self.event = event
        self.tags = tags
        self.patterns = patterns
    }
}

/// An application event that may invalidate cached answers: a type and string attributes.
public struct CacheEvent: Sendable, Hashable, CustomStringConvertible {
    public var type: String
    public var attributes: [String: String]

    public init(_ type: String, _ attributes: [String: String] = [:]) {
        self.type = type
        self.attributes = attributes
    }

    public var description: String {
        "\(self.type){" + self.attributes.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + "}"
    }
}

/// The typed rule set: time rules (applied at write through `CacheConfiguration.writeRules`) and event rules
/// (applied by `CacheInvalidator.handle(_:)`).
public struct InvalidationRules: Sendable, CacheWriteRules {
    public var timeRules: [TimeRule]
    public var eventRules: [EventRule]

    public init(timeRules: [TimeRule] = [], eventRules: [EventRule] = []) {
        self.timeRules = timeRules
        self.eventRules = eventRules
    }

    /// The namespaces the time rules name (`.namespace`, `.queryInNamespace`).
    public var namespaces: Set<String> {
        Set(self.timeRules.compactMap { rule in
            switch rule.match {
            case .namespace(let namespace), .queryInNamespace(_, let namespace): namespace
            default: nil
            }
        })
    }

    public func apply(to control: inout CacheControl, queryText: String?, scope: CacheScope) {
        for rule in self.timeRules where rule.applies(queryText: queryText, scope: scope) {
            if let ttl = rule.ttl { control.ttl = min(control.ttl ?? ttl, ttl) }
            for tag in rule.tags where !control.tags.contains(tag) { control.tags.append(tag) }
        }
    }

    /// The invalidation targets an event resolves to, in `scope`.
    ///
    /// - Throws: `CacheError` `.invalidRequest` when a template names an attribute the event lacks, or has an
    ///   unclosed `{`.
    public func targets(for event: CacheEvent, in scope: CacheScope) throws(CacheError) -> [InvalidationTarget] {
        var targets: [InvalidationTarget] = []
        for rule in self.eventRules where rule.event == event.type {
            for template in rule.tags { targets.append(.tag(try Self.fill(template, from: event))) }
            for template in rule.patterns { targets.append(.pattern(QueryPattern(try Self.fill(template, from: event)), in: scope)) }
        }
        var seen = Set<InvalidationTarget>()
        return targets.filter { seen.insert($0).inserted }
    }

    /// Replaces every `{name}` in `template` with the event's attribute `name`.
    static func fill(_ template: String, from event: CacheEvent) throws(CacheError) -> String {
        var result = ""
        var rest = template[...]
        while let open = rest.firstIndex(of: "{") {
            result += rest[..<open]
            guard let close = rest[open...].firstIndex(of: "}") else {
                throw CacheError(.invalidRequest, "template \"\(template)\" has an unclosed {")
            }
            let name = String(rest[rest.index(after: open)..<close])
            guard let value = event.attributes[name] else {
                throw CacheError(.invalidRequest, "event \(event.type) has no attribute \"\(name)\" (template \"\(template)\")")
            }
            result += value
            rest = rest[rest.index(after: close)...]
        }
        return result + rest
    }
}

extension CacheScope {
    /// A scope whose version is derived from the prompt template version and the model: changing either starts
    /// a fresh namespace with no scan or delete, and the old entries age out by their TTL.
    public static func versioned(tenant: String, namespace: String = "default", templateVersion: String, model: String) -> CacheScope {
        CacheScope(tenant: tenant, namespace: namespace, version: NamespaceVersion.make(templateVersion: templateVersion, model: model))
    }
}

/// Namespace versions from what shapes the answers.
public enum NamespaceVersion {
    /// `t` + the first 16 hex digits of SHA-256 over the canonical JSON `[templateVersion, model]`.
    public static func make(templateVersion: String, model: String) -> String {
        let bytes = JSONValue.array([.string(templateVersion), .string(model)]).canonicalBytes()
        return "t" + Digest256(hashing: bytes).hex.prefix(16)
    }
}
