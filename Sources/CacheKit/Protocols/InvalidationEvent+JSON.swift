extension InvalidationEvent {
    /// The event as canonical JSON, for buses that carry bytes (Redis pub/sub, PostgreSQL NOTIFY):
    /// `{"origin":…,"key":"<digest hex>","scope_id":"<hex>"}`, `{"origin":…,"tag":…}`,
    /// `{"origin":…,"scope":[tenant, namespace, version]}` (with `"pattern":…` for a query-text pattern) or
    /// `{"origin":…,"all_local":true}`.
    public func jsonBytes() -> [UInt8] {
        var members: [String: JSONValue] = ["origin": .string(self.origin)]
        if let key = self.target.key {
            members["key"] = .string(key.digest.hex)
            members["scope_id"] = .string(key.scopeID.hex)
        } else if let tag = self.target.tag {
            members["tag"] = .string(tag)
        } else if let scope = self.target.scope {
            members["scope"] = [.string(scope.tenant), .string(scope.namespace), .string(scope.version)]
        } else if let target = self.target.pattern {
            members["pattern"] = .string(target.pattern.glob)
            members["scope"] = [.string(target.scope.tenant), .string(target.scope.namespace), .string(target.scope.version)]
        } else {
            members["all_local"] = true
        }
        return JSONValue.object(members).canonicalBytes()
    }

    /// Reads an event written by `jsonBytes()`.
    ///
    /// - Throws: `CacheError` `.invalidResponse` for anything else.
    public init(json bytes: some Collection<UInt8>) throws(CacheError) {
        func invalid(_ reason: String) -> CacheError { CacheError(.invalidResponse, "invalidation event: \(reason)") }
        let value: JSONValue
        do { value = try JSONValue(parsing: bytes) } catch { throw invalid(error.description) }
        guard let origin = value["origin"]?.stringValue else { throw invalid("no origin") }
        if let hex = value["key"]?.stringValue {
            guard let digest = Digest256(hex: hex), let scopeHex = value["scope_id"]?.stringValue, let scopeID = Digest256(hex: scopeHex) else {
                throw invalid("bad key")
            }
            self.init(origin: origin, target: .key(CacheKey(digest: digest, scopeID: scopeID)))
        } else if let tag = value["tag"]?.stringValue {
            self.init(origin: origin, target: .tag(tag))
        } else if let parts = value["scope"]?.arrayValue?.compactMap(\.stringValue), parts.count == 3 {
            let scope = CacheScope(tenant: parts[0], namespace: parts[1], version: parts[2])
            if let glob = value["pattern"]?.stringValue {
                self.init(origin: origin, target: .pattern(QueryPattern(glob), in: scope))
            } else {
                self.init(origin: origin, target: .scope(scope))
            }
        } else if value["all_local"]?.boolValue == true {
            self.init(origin: origin, target: .everythingLocal)
        } else {
            throw invalid("no target")
        }
    }
}
