/// A cached answer and what is known about it.
public struct CacheEntry: Sendable, Hashable {
    /// The cached value: the response body bytes as the upstream sent them (canonical JSON for chat completions).
    public var value: [UInt8]
    /// When the answer was produced.
    public var createdAt: CacheTime
    /// After this instant the entry is stale.
    public var expiresAt: CacheTime
    /// Until this instant a stale entry may still be served while one refresh runs (stale-while-revalidate);
    /// equal to `expiresAt` when there is no stale window. Backends keep the entry until then and no longer.
    public var staleUntil: CacheTime
    /// Tags for invalidation (`product:123`, `tenant-faq`).
    public var tags: [String]
    /// Tokens the answer cost upstream; what a hit saves.
    public var usage: TokenUsage?
    /// The model that produced the answer.
    public var model: String?
    /// What the answer cost upstream in US dollars, if known.
    public var cost: Double?
    /// For semantic entries: the text that was embedded.
    public var queryText: String?
    /// For semantic entries: the embedding model's name.
    public var embeddingModel: String?

    public init(
        value: [UInt8],
        createdAt: CacheTime,
        expiresAt: CacheTime,
        staleUntil: CacheTime? = nil,
        tags: [String] = [],
        usage: TokenUsage? = nil,
        model: String? = nil,
        cost: Double? = nil,
        queryText: String? = nil,
        embeddingModel: String? = nil
    ) {
        self.value = value
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.staleUntil = max(staleUntil ?? expiresAt, expiresAt)
        self.tags = tags
        self.usage = usage
        self.model = model
        self.cost = cost
        self.queryText = queryText
        self.embeddingModel = embeddingModel
    }

    /// Whether the entry is fresh at `now`.
    public func isFresh(at now: CacheTime) -> Bool { now < self.expiresAt }

    /// Whether the entry may still be served at `now` (fresh, or stale inside its window).
    public func isUsable(at now: CacheTime) -> Bool { now < self.staleUntil }

    /// The entry's age at `now`.
    public func age(at now: CacheTime) -> Duration { now - self.createdAt }

    /// The entry as a layer whose TTL ceiling is `ceiling` stores it: expiry and stale window cut to `now + ceiling`.
    /// Never extends the entry's life.
    public func capped(by ceiling: Duration?, now: CacheTime) -> CacheEntry {
        guard let ceiling else { return self }
        let limit = now + ceiling
        var copy = self
        copy.expiresAt = min(self.expiresAt, limit)
        copy.staleUntil = min(self.staleUntil, limit)
        return copy
    }

    /// An approximate in-memory size in bytes, used by byte budgets.
    public var approximateSize: Int {
        var size = 96 + self.value.count
        for tag in self.tags { size += 16 + tag.utf8.count }
        size += (self.model?.utf8.count ?? 0) + (self.queryText?.utf8.count ?? 0) + (self.embeddingModel?.utf8.count ?? 0)
        return size
    }
}
