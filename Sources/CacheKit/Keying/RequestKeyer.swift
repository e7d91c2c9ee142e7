/// Computes cache keys and semantic partitions from requests.
///
/// The key document is `{"request":<request>,"scope":{"namespace":…,"tenant":…,"version":…},"v":<schema>}` in
/// RFC 8785 canonical form, with the transport-only members left out of the request. Its SHA-256 is the key.
/// `cachekit key --canonical` prints exactly these bytes.
public struct RequestKeyer: Sendable {
    /// The key schema version. Bumping it is the only way the bytes of an existing key change.
    public static let schemaVersion = 1

    /// Request members that only shape the transport, never the answer; they are not part of the key.
    /// Default: `stream` and `stream_options`.
    public var transportOnlyFields: Set<String> {
        didSet { self.excluded = Array(self.transportOnlyFields) }
    }
    /// The same names as a list: a few equality checks are cheaper than hashing every member name.
    private var excluded: [String]

    /// Creates a keyer. Add fields such as `user` to `transportOnlyFields` when they never change answers for you.
    public init(transportOnlyFields: Set<String> = ["stream", "stream_options"]) {
        self.transportOnlyFields = transportOnlyFields
        self.excluded = Array(transportOnlyFields)
    }

    /// The canonical bytes that are hashed into the key of `request` in `scope`.
    public func canonicalBytes(for request: ChatRequest, in scope: CacheScope) -> [UInt8] {
        self.document(member: "request", request.body, scope: scope).bytes
    }

    /// The exact-match key of `request` in `scope`.
    public func key(for request: ChatRequest, in scope: CacheScope) -> CacheKey {
        let writer = self.document(member: "request", request.body, scope: scope)
        return CacheKey(digest: writer.withBytes { Digest256(hashing: $0) }, scopeID: scope.id)
    }

    /// The semantic partition of `request` and the text to embed: the last user message's text parts are taken out
    /// as the query; everything else (scope, model, system prompt, earlier turns, parameters, non-text parts of the
    /// last user message) is hashed into the partition, so only requests that differ in that text alone can match.
    ///
    /// Returns `nil` when the request has no user message with text.
    public func semanticQuery(for request: ChatRequest, in scope: CacheScope) -> (partition: SemanticPartition, text: String)? {
        guard let index = request.lastUserMessageIndex, var messages = request.body["messages"]?.arrayValue,
            var message = messages[index].objectValue
        else { return nil }
        let text: String
        switch message["content"] {
        case .string(let string)?:
            text = string
            message["content"] = .null
        case .array(let parts)?:
            let texts = parts.compactMap { $0["type"]?.stringValue == "text" ? $0["text"]?.stringValue : nil }
            text = texts.joined(separator: "\n")
            message["content"] = .array(parts.filter { $0["type"]?.stringValue != "text" })
        default:
            return nil
        }
        guard !text.isEmpty else { return nil }
        messages[index] = .object(message)
        var body = request.body
        body["messages"] = .array(messages)
        let writer = self.document(member: "partition", body, scope: scope)
        return (SemanticPartition(digest: writer.withBytes { Digest256(hashing: $0) }, scopeID: scope.id), text)
    }

    private func document(member: StaticString, _ body: [String: JSONValue], scope: CacheScope) -> CanonicalJSONWriter {
        var writer = CanonicalJSONWriter(capacity: 4096)
        writer.writeRaw("{\"")
        writer.writeRaw(member)
        writer.writeRaw("\":")
        writer.write(members: body, excluding: self.excluded)
        writer.writeRaw(",\"scope\":{\"namespace\":")
        writer.write(string: scope.namespace)
        writer.writeRaw(",\"tenant\":")
        writer.write(string: scope.tenant)
        writer.writeRaw(",\"version\":")
        writer.write(string: scope.version)
        writer.writeRaw("},\"v\":")
        writer.write(number: Double(Self.schemaVersion))
        writer.writeRaw("}")
        return writer
    }
}

/// The partition a semantic query searches: only entries whose request matched in everything but the query text.
public struct SemanticPartition: Sendable, Hashable, CustomStringConvertible {
    /// SHA-256 of the canonical partition document.
    public let digest: Digest256
    /// The id of the scope; every semantic query filters on it as well.
    public let scopeID: Digest256

    public init(digest: Digest256, scopeID: Digest256) {
        self.digest = digest
        self.scopeID = scopeID
    }

    /// The partition of this request's vectors made by the embedding model `model`: two models' vectors never share a
    /// partition, so a model swap never compares them, even at the same dimension.
    public func embedded(by model: String) -> SemanticPartition {
        var bytes = self.digest.bytes
        bytes.append(contentsOf: Array("\u{0}embedding-model\u{0}".utf8))
        bytes.append(contentsOf: Array(model.utf8))
        return SemanticPartition(digest: Digest256(hashing: bytes), scopeID: self.scopeID)
    }

    public var description: String { "SemanticPartition(\(self.digest.hex.prefix(16))…)" }
}
