public import CacheKit

/// Finds what stops requests from sharing a cached prompt prefix: volatile content (timestamps, dates, UUIDs,
/// counters, request ids) or unordered JSON inside the static part, tool lists in varying order, and a static part
/// shorter than the provider's minimum. Over a stream of requests it also estimates the provider's cache hit
/// ratio and reports, for each request that missed, where its prefix broke and why.
public struct PrefixAuditor: Sendable {
    /// The provider's caching rule: the minimum cached prefix and the step it grows in (OpenAI: 1,024 and 128).
    public var minimumPrefixTokens: Int
    public var prefixStep: Int
    public var counter: any TokenCounter
    /// How many earlier requests a request's prefix is compared with (the provider keeps a prefix for minutes).
    public var window: Int

    public init(minimumPrefixTokens: Int = 1024, prefixStep: Int = 128, counter: any TokenCounter = EstimatingTokenCounter(), window: Int = 64) {
        self.minimumPrefixTokens = minimumPrefixTokens
        self.prefixStep = max(1, prefixStep)
        self.counter = counter
        self.window = max(1, window)
    }

    // MARK: One request

    /// What in one request's static part would break the prefix. Without a layout, the static part is taken to be
    /// the tools and the first message if it is a system or developer message (where most apps put their fixed
    /// instructions, and where volatile content does the most harm).
    public func audit(_ request: ChatRequest) -> [PrefixFinding] {
        self.audit(Prompt(request, staticMessages: nil))
    }

    /// What in a built request's static part (exactly the builder's) would break the prefix.
    public func audit(_ layout: PromptLayout) -> [PrefixFinding] {
        self.audit(Prompt(layout.request, staticMessages: layout.staticPrefix.messages.count))
    }

    private func audit(_ prompt: Prompt) -> [PrefixFinding] {
        let request = prompt.request
        var findings: [PrefixFinding] = []
        let segments = prompt.segments
        let staticSegments = segments.prefix { $0.isStatic }
        for segment in staticSegments {
            for (kind, excerpt) in VolatileContent.find(in: segment.text) {
                findings.append(.volatileContent(kind: kind, location: segment.location, excerpt: excerpt))
            }
            for excerpt in VolatileContent.unorderedJSONObjects(in: segment.text) {
                findings.append(.unorderedJSON(location: segment.location, excerpt: excerpt))
            }
        }
        let tools = request["tools"]?.arrayValue ?? []
        if tools != PromptBuilder.sortedTools(tools) { findings.append(.toolsNotSorted(names: tools.map(PromptBuilder.toolName))) }
        let tokens = staticSegments.reduce(0) { $0 + self.counter.count($1.text) }
        if tokens < self.minimumPrefixTokens { findings.append(.prefixTooShort(tokens: tokens, minimum: self.minimumPrefixTokens)) }
        return findings
    }

    // MARK: A stream

    /// Replays `requests` in order as a provider's prefix cache would see them and reports the estimated hit ratio
    /// and every break.
    public func audit(_ requests: [ChatRequest]) -> PrefixReport {
        self.audit(prompts: requests.map { Prompt($0, staticMessages: nil) })
    }

    /// The same for built requests, whose static part is known exactly.
    public func audit(_ layouts: [PromptLayout]) -> PrefixReport {
        self.audit(prompts: layouts.map { Prompt($0.request, staticMessages: $0.staticPrefix.messages.count) })
    }

    private func audit(prompts: [Prompt]) -> PrefixReport {
        var report = PrefixReport(minimumPrefixTokens: self.minimumPrefixTokens)
        var previous: [Prompt] = []
        for (index, prompt) in prompts.enumerated() {
            let promptTokens = self.counter.count(prompt.text)
            var best: (shared: Int, other: Prompt)?
            for other in previous.suffix(self.window) {
                let shared = Prompt.commonPrefixLength(prompt.utf8, other.utf8)
                if best == nil || shared > best!.shared { best = (shared, other) }
            }
            let sharedText = best.map { String(decoding: prompt.utf8.prefix($0.shared), as: UTF8.self) } ?? ""
            let sharedTokens = self.counter.count(sharedText)
            let cached = Self.cachedTokens(shared: sharedTokens, prompt: promptTokens, minimum: self.minimumPrefixTokens, step: self.prefixStep)
            report.requests += 1
            report.promptTokens += promptTokens
            report.cachedTokens += cached
            if cached > 0 { report.requestsWithCachedPrefix += 1 }
            let staticBytes = prompt.segments.prefix { $0.isStatic }.reduce(0) { $0 + $1.byteCount }
            if let (shared, other) = best, shared < staticBytes {
                report.breaks.append(self.describeBreak(request: index, prompt: prompt, other: other, at: shared))
            } else if best != nil, cached == 0 {
                report.breaks.append(PrefixBreak(request: index, location: "whole prompt", reason: .tooShort(tokens: sharedTokens), excerpt: ""))
            }
            previous.append(prompt)
        }
        return report
    }

    /// OpenAI's rule: nothing below the minimum, then the shared prefix rounded down to the step.
    static func cachedTokens(shared: Int, prompt: Int, minimum: Int, step: Int) -> Int {
        let shared = min(shared, prompt)
        guard shared >= minimum else { return 0 }
        return minimum + (shared - minimum) / step * step
    }

    private func describeBreak(request: Int, prompt: Prompt, other: Prompt, at offset: Int) -> PrefixBreak {
        let segment = prompt.segment(containing: offset)
        let otherSegment = other.segment(containing: offset)
        let location = segment?.location ?? "end of prompt"
        let excerpt = prompt.excerpt(around: offset)
        if let segment, segment.location == "tools", let otherSegment, otherSegment.location == "tools",
            let mine = prompt.request["tools"]?.arrayValue, let theirs = other.request["tools"]?.arrayValue,
            mine.count == theirs.count, PromptBuilder.sortedTools(mine) == PromptBuilder.sortedTools(theirs)
        {
            return PrefixBreak(request: request, location: location, reason: .toolOrder, excerpt: excerpt)
        }
        let window = prompt.excerpt(around: offset, radius: 48) + " " + other.excerpt(around: offset, radius: 48)
        if let (kind, _) = VolatileContent.find(in: window).first {
            return PrefixBreak(request: request, location: location, reason: .volatile(kind), excerpt: excerpt)
        }
        if let segment, let otherSegment, segment.text != otherSegment.text,
            !VolatileContent.unorderedJSONObjects(in: segment.text).isEmpty || !VolatileContent.unorderedJSONObjects(in: otherSegment.text).isEmpty
        {
            return PrefixBreak(request: request, location: location, reason: .unorderedJSON, excerpt: excerpt)
        }
        return PrefixBreak(request: request, location: location, reason: .contentChanged, excerpt: excerpt)
    }
}

/// Something in a request's static part that would break a shared prefix.
public enum PrefixFinding: Sendable, Hashable, CustomStringConvertible {
    case volatileContent(kind: VolatileKind, location: String, excerpt: String)
    case unorderedJSON(location: String, excerpt: String)
    case toolsNotSorted(names: [String])
    case prefixTooShort(tokens: Int, minimum: Int)

    public var description: String {
        switch self {
        case .volatileContent(let kind, let location, let excerpt): "\(kind) in the static part (\(location)): \"\(excerpt)\" — move it after the static part"
        case .unorderedJSON(let location, let excerpt): "JSON with unsorted keys in the static part (\(location)): \(excerpt) — serialise it canonically"
        case .toolsNotSorted(let names): "tools not in a stable order (\(names.joined(separator: ", "))) — sort them by name"
        case .prefixTooShort(let tokens, let minimum): "static part ≈ \(tokens) tokens, below the provider's minimum of \(minimum): nothing will be cached"
        }
    }
}

/// Kinds of per-request content that make a prefix differ on every request.
public enum VolatileKind: String, Sendable, Hashable, CustomStringConvertible {
    case timestamp, date, time, uuid, epoch, requestID = "request id", counter
    public var description: String { self.rawValue }
}

/// Where and why a request's prefix stopped matching the best earlier one.
public struct PrefixBreak: Sendable, Hashable, CustomStringConvertible {
    public enum Reason: Sendable, Hashable, CustomStringConvertible {
        case volatile(VolatileKind)
        case toolOrder
        case unorderedJSON
        case contentChanged
        case tooShort(tokens: Int)

        public var description: String {
            switch self {
            case .volatile(let kind): "volatile content (\(kind))"
            case .toolOrder: "same tools in another order"
            case .unorderedJSON: "JSON serialised with another key order"
            case .contentChanged: "static content changed"
            case .tooShort(let tokens): "shared prefix ≈ \(tokens) tokens, below the minimum"
            }
        }
    }

    public var request: Int
    public var location: String
    public var reason: Reason
    public var excerpt: String

    public var description: String { "request \(self.request): breaks in \(self.location): \(self.reason) near \"\(self.excerpt)\"" }
}

/// The replay of a stream of requests against a prefix cache.
public struct PrefixReport: Sendable, CustomStringConvertible {
    public var minimumPrefixTokens: Int
    public var requests = 0
    public var requestsWithCachedPrefix = 0
    public var promptTokens = 0
    public var cachedTokens = 0
    public var breaks: [PrefixBreak] = []

    /// Cached input tokens / input tokens.
    public var hitRatio: Double { self.promptTokens == 0 ? 0 : Double(self.cachedTokens) / Double(self.promptTokens) }

    /// Breaks counted by reason.
    public var breaksByReason: [String: Int] { self.breaks.reduce(into: [:]) { $0[$1.reason.description, default: 0] += 1 } }

    public var description: String {
        var text = "\(self.requests) requests, ≈\(self.promptTokens) input tokens, ≈\(self.cachedTokens) cached "
        text += "(hit ratio \(Int((self.hitRatio * 100).rounded())) %, \(self.requestsWithCachedPrefix) requests with a cached prefix)"
        for (reason, count) in self.breaksByReason.sorted(by: { $0.value > $1.value }) { text += "\n  \(count)× \(reason)" }
        if let first = self.breaks.first { text += "\n  first: \(first)" }
        return text
    }
}

/// A request flattened the way providers see it for prefix caching: tools first, then the messages in order.
struct Prompt {
    struct Segment {
        var location: String
        var text: String
        var start: Int
        var byteCount: Int
        var isStatic: Bool
    }

    let request: ChatRequest
    let segments: [Segment]
    let text: String
    let utf8: [UInt8]

    /// `staticMessages`: how many leading messages are static; `nil` for the heuristic (the first message if it is
    /// a system or developer message).
    init(_ request: ChatRequest, staticMessages: Int?) {
        self.request = request
        var segments: [Segment] = []
        var offset = 0
        func add(_ location: String, _ text: String, isStatic: Bool) {
            let count = text.utf8.count + 1  // and a separator
            segments.append(Segment(location: location, text: text, start: offset, byteCount: count, isStatic: isStatic))
            offset += count
        }
        if let tools = request["tools"]?.arrayValue, !tools.isEmpty {
            // Providers render tools as sent. CacheKit sends JSON canonically, so only the tools' order can vary.
            add("tools", tools.map { String(decoding: $0.canonicalBytes(), as: UTF8.self) }.joined(separator: "\n"), isStatic: true)
        }
        let messages = request.messages
        let staticCount = staticMessages ?? (messages.first.map { $0.role == "system" || $0.role == "developer" } == true ? 1 : 0)
        for (index, message) in messages.enumerated() {
            let role = message.role
            add("message \(index) (\(role))", "\(role): \(message.text ?? "")", isStatic: index < staticCount)
        }
        self.segments = segments
        self.text = segments.map(\.text).joined(separator: "\n")
        self.utf8 = Array(self.text.utf8)
    }

    func segment(containing offset: Int) -> Segment? {
        self.segments.first { offset >= $0.start && offset < $0.start + $0.byteCount }
    }

    func excerpt(around offset: Int, radius: Int = 24) -> String {
        let start = max(0, offset - radius), end = min(self.utf8.count, offset + radius)
        return String(decoding: self.utf8[start..<end].map { $0 == 0x0A ? 0x20 : $0 }, as: UTF8.self)
    }

    static func commonPrefixLength(_ a: [UInt8], _ b: [UInt8]) -> Int {
        var index = 0
        let count = min(a.count, b.count)
        while index < count, a[index] == b[index] { index += 1 }
        // Back up to a UTF-8 boundary so excerpts and token counts see whole characters.
        while index > 0, index < a.count, a[index] & 0xC0 == 0x80 { index -= 1 }
        return index
    }
}
