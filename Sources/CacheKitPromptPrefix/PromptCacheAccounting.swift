public import CacheKit

/// What a provider's prompt cache did for one response.
public struct PromptCacheUsage: Sendable, Hashable {
    /// All input tokens of the request.
    public var inputTokens: Int
    /// Input tokens read from the provider's cache.
    public var cachedTokens: Int
    /// Input tokens written to the cache (Anthropic bills these at a premium); 0 for OpenAI.
    public var cacheWriteTokens: Int

    public init(inputTokens: Int, cachedTokens: Int, cacheWriteTokens: Int = 0) {
        self.inputTokens = inputTokens
        self.cachedTokens = cachedTokens
        self.cacheWriteTokens = cacheWriteTokens
    }

    /// From an OpenAI chat completion body: `usage.prompt_tokens` and `usage.prompt_tokens_details.cached_tokens`.
    public init?(openAIResponse body: JSONValue) {
        guard let usage = body["usage"], let prompt = usage["prompt_tokens"]?.intValue else { return nil }
        self.init(inputTokens: prompt, cachedTokens: usage["prompt_tokens_details"]?["cached_tokens"]?.intValue ?? 0)
    }

    /// From an Anthropic Messages body: `input_tokens` counts only the uncached rest, so the total is its sum with
    /// `cache_read_input_tokens` and `cache_creation_input_tokens`.
    public init?(anthropicResponse body: JSONValue) {
        guard let usage = body["usage"], let uncached = usage["input_tokens"]?.intValue else { return nil }
        let read = usage["cache_read_input_tokens"]?.intValue ?? 0
        let written = usage["cache_creation_input_tokens"]?.intValue ?? 0
        self.init(inputTokens: uncached + read + written, cachedTokens: read, cacheWriteTokens: written)
    }
}

/// Prompt-cache prices per million tokens relative to the input price: OpenAI reads at 50 % (model-specific in
/// `PriceTable.cachedInput`), Anthropic reads at 10 % and writes at 125 %.
public struct PromptCachePricing: Sendable, Hashable {
    public var readMultiplier: Double
    public var writeMultiplier: Double

    public init(readMultiplier: Double, writeMultiplier: Double) {
        self.readMultiplier = readMultiplier
        self.writeMultiplier = writeMultiplier
    }

    public static let anthropic = PromptCachePricing(readMultiplier: 0.10, writeMultiplier: 1.25)
}

/// Accumulates provider prompt-cache usage: totals, the hit ratio over time (per-minute buckets) and money saved.
public final class PromptCacheAccountant: Sendable {
    public struct Totals: Sendable, Hashable {
        public var responses = 0
        public var inputTokens = 0
        public var cachedTokens = 0
        public var cacheWriteTokens = 0
        /// US dollars saved (cached reads at their discount, minus the premium paid on cache writes).
        public var savedUSD: Double = 0
        public var hitRatio: Double { self.inputTokens == 0 ? 0 : Double(self.cachedTokens) / Double(self.inputTokens) }
    }

    private struct State {
        var totals = Totals()
        var minutes: [(minute: Int64, totals: Totals)] = []
    }

    public let prices: PriceTable
    private let state = LockedState(State())
    private let keepMinutes: Int

    public init(prices: PriceTable = .default, keepMinutes: Int = 60) {
        self.prices = prices
        self.keepMinutes = max(1, keepMinutes)
    }

    /// Records one response's usage for `model` at `time`, priced by `pricing` (default: the price table's cached
    /// input price for reads, no write premium, as OpenAI bills).
    public func record(_ usage: PromptCacheUsage, model: String, at time: CacheTime, pricing: PromptCachePricing? = nil) {
        var saved = 0.0
        if let price = self.prices.price(for: model) {
            let readPrice = pricing.map { price.input * $0.readMultiplier } ?? price.cachedInput
            let writePremium = pricing.map { price.input * ($0.writeMultiplier - 1) } ?? 0
            saved = (Double(usage.cachedTokens) * (price.input - readPrice) - Double(usage.cacheWriteTokens) * writePremium) / 1_000_000
        }
        let minute = time.millisecondsSinceEpoch / 60_000
        self.state.withLock { state in
            func add(_ totals: inout Totals) {
                totals.responses += 1
                totals.inputTokens += usage.inputTokens
                totals.cachedTokens += usage.cachedTokens
                totals.cacheWriteTokens += usage.cacheWriteTokens
                totals.savedUSD += saved
            }
            add(&state.totals)
            if state.minutes.last?.minute != minute { state.minutes.append((minute, Totals())) }
            add(&state.minutes[state.minutes.count - 1].totals)
            if state.minutes.count > self.keepMinutes { state.minutes.removeFirst(state.minutes.count - self.keepMinutes) }
        }
    }

    /// Everything recorded so far.
    public var totals: Totals { self.state.withLock { $0.totals } }

    /// The hit ratio per minute (oldest first), for the last `keepMinutes` minutes that had responses.
    public var hitRatioByMinute: [MinuteHitRatio] {
        self.state.withLock { state in
            state.minutes.map { MinuteHitRatio(minute: CacheTime(millisecondsSinceEpoch: $0.minute * 60_000), hitRatio: $0.totals.hitRatio) }
        }
    }

    /// The provider's prompt-cache hit ratio in one minute.
    public struct MinuteHitRatio: Sendable, Hashable {
        /// The start of the minute.
        public var minute: CacheTime
        /// Cached input tokens over all input tokens in that minute.
        public var hitRatio: Double
    }
}
