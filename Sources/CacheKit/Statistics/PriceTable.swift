/// Prices per million tokens, by model, to turn saved tokens into saved money.
///
/// A model matches the longest entry that is a prefix of its name (`gpt-4o-2024-08-06` uses `gpt-4o`).
/// The defaults are list prices at the time of writing; set your own contract prices.
public struct PriceTable: Sendable, Hashable {
    /// One model's prices in US dollars per million tokens.
    public struct Price: Sendable, Hashable {
        public var input: Double
        public var cachedInput: Double
        public var output: Double

        public init(input: Double, cachedInput: Double? = nil, output: Double) {
            self.input = input
            self.cachedInput = cachedInput ?? input / 2
            self.output = output
        }
    }

    /// Prices by model name prefix.
    public var prices: [String: Price]

    public init(prices: [String: Price]) { self.prices = prices }

    /// A few common models' list prices.
    public static let `default` = PriceTable(prices: [
        "gpt-4o": Price(input: 2.50, cachedInput: 1.25, output: 10.00),
        "gpt-4o-mini": Price(input: 0.15, cachedInput: 0.075, output: 0.60),
        "gpt-4.1": Price(input: 2.00, cachedInput: 0.50, output: 8.00),
        "gpt-4.1-mini": Price(input: 0.40, cachedInput: 0.10, output: 1.60),
        "gpt-4.1-nano": Price(input: 0.10, cachedInput: 0.025, output: 0.40),
        "o3-mini": Price(input: 1.10, cachedInput: 0.55, output: 4.40),
        "o4-mini": Price(input: 1.10, cachedInput: 0.275, output: 4.40),
    ])

    /// The price of `model`, if known.
    public func price(for model: String) -> Price? {
        var best: (length: Int, price: Price)?
        for (prefix, price) in self.prices where model.hasPrefix(prefix) {
            if best == nil || prefix.count > best!.length { best = (prefix.count, price) }
        }
        return best?.price
    }

    /// What the provider's prompt cache saved on `usage`: its cached input tokens at the full input price minus
    /// at the cached price. 0 for an unknown model.
    public func promptCacheSaving(of usage: TokenUsage, model: String) -> Double {
        guard let price = self.price(for: model) else { return 0 }
        return Double(min(usage.cachedPromptTokens, usage.promptTokens)) * (price.input - price.cachedInput) / 1_000_000
    }

    /// What `usage` on `model` costs in US dollars, or `nil` for an unknown model.
    public func cost(of usage: TokenUsage, model: String) -> Double? {
        guard let price = self.price(for: model) else { return nil }
        let cached = min(usage.cachedPromptTokens, usage.promptTokens)
        let uncached = usage.promptTokens - cached
        return (Double(uncached) * price.input + Double(cached) * price.cachedInput + Double(usage.completionTokens) * price.output) / 1_000_000
    }
}
