import CacheKit
import CacheKitPromptPrefix
import CacheKitTesting
import Testing

/// Real-shaped OpenAI tools and a long, fixed instruction block (about 1,500 estimated tokens).
enum Shop {
    static let tools: [JSONValue] = [
        try! JSONValue(parsing: #"{"type":"function","function":{"name":"lookup_order","description":"Find an order by its number.","parameters":{"type":"object","properties":{"order_id":{"type":"string"}},"required":["order_id"]}}}"#),
        try! JSONValue(parsing: #"{"type":"function","function":{"name":"cancel_order","description":"Cancel an order that has not shipped.","parameters":{"type":"object","properties":{"order_id":{"type":"string"},"reason":{"type":"string"}},"required":["order_id"]}}}"#),
        try! JSONValue(parsing: #"{"type":"function","function":{"name":"track_parcel","description":"Track a parcel by carrier and tracking number.","parameters":{"type":"object","properties":{"carrier":{"type":"string","enum":["dhl","ups","posten"]},"tracking_number":{"type":"string"}},"required":["carrier","tracking_number"]}}}"#),
    ]
    static let instructions = (1...60).map { "Rule \($0): answer politely, cite the relevant help page, never promise delivery dates you cannot verify, and escalate refunds above the limit to a human agent." }.joined(separator: "\n")
    static let questions = (0..<12).map { "Where is my order number 10\($0)? It was due last week." }
}

@Suite("Prompt-prefix builder and auditor")
struct PromptPrefixTests {
    @Test func theBuilderPutsTheStaticPartFirstAndFingerprintsIt() throws {
        var builder = PromptBuilder(
            model: "gpt-4o-mini", instructions: [Shop.instructions], tools: Shop.tools,
            examples: [.user("Can I change my address?"), .assistant("Yes, until the order ships: Account › Orders.")],
            context: ["Customer: Ada (Pro plan). Today is 2026-11-26."], parameters: ["temperature": 0]
        )
        let first = builder.build(userMessage: Shop.questions[0])
        builder.tools = Shop.tools.reversed()
        builder.context = ["Customer: Bo (Free plan). Today is 2026-11-27."]
        let second = builder.build(userMessage: Shop.questions[1])
        #expect(first.staticPrefix.fingerprint == second.staticPrefix.fingerprint, "tool order and dynamic context must not change the prefix")
        #expect(first.request.messages.map(\.role) == ["system", "user", "assistant", "system", "user"])
        #expect(first.request.messages[3].text?.contains("Ada") == true, "dynamic context comes after the examples")
        #expect(first.request["tools"]?.arrayValue?.compactMap { $0["function"]?["name"]?.stringValue } == ["cancel_order", "lookup_order", "track_parcel"])
        #expect(first.request["temperature"] == .number(0))
        builder.instructions = [Shop.instructions + " Rule 61: be brief."]
        #expect(builder.build(userMessage: "x").staticPrefix.fingerprint != first.staticPrefix.fingerprint)
        // The auditor agrees: the second request shares the whole static part with the first.
        let report = PrefixAuditor().audit([first, second])
        #expect(report.breaks.isEmpty, "\(report)")
        #expect(report.cachedTokens > 1_024)
        #expect(PrefixAuditor().audit(first).isEmpty, "\(PrefixAuditor().audit(first))")
    }

    @Test func theAuditorNamesVolatileContentUnorderedJSONToolOrderAndShortPrefixes() {
        var request = ChatRequest(model: "gpt-4o-mini", messages: [
            .system(#"You are a helpful assistant. Current time: 2026-11-26T17:09:16Z. Session 3f2a8c1e-1b2c-4d5e-8f90-1234567890ab, request req_8f2k19xq0pz, ticket #48213, started 1764176956. Account: {"plan":"pro","account":"acme"}. Meeting 11/26/2026 at 17:09."#),
            .user("hello"),
        ])
        request["tools"] = .array(Array(Shop.tools))
        let findings = PrefixAuditor().audit(request)
        let kinds = findings.compactMap { finding -> VolatileKind? in
            if case .volatileContent(let kind, _, _) = finding { return kind }
            return nil
        }
        #expect(Set(kinds) == [.timestamp, .uuid, .requestID, .counter, .epoch, .date, .time], "\(findings)")
        #expect(findings.contains { if case .unorderedJSON = $0 { true } else { false } }, "\(findings)")
        #expect(findings.contains(.toolsNotSorted(names: ["lookup_order", "cancel_order", "track_parcel"])))
        #expect(findings.contains { if case .prefixTooShort = $0 { true } else { false } })
        // The user message is dynamic: volatile content there is fine.
        let clean = ChatRequest(model: "m", messages: [.system(Shop.instructions), .user("It is 2026-11-26T17:09:16Z, order 3f2a8c1e-1b2c-4d5e-8f90-1234567890ab")])
        #expect(PrefixAuditor().audit(clean).isEmpty, "\(PrefixAuditor().audit(clean))")
        // Sorted JSON and plain numbers are not flagged.
        let sorted = ChatRequest(model: "m", messages: [.system(Shop.instructions + #" Config: {"a":1,"b":{"c":2,"d":3}}. Limit 250 EUR, version 42."#), .user("x")])
        #expect(PrefixAuditor().audit(sorted).isEmpty, "\(PrefixAuditor().audit(sorted))")
    }

    @Test func aDriftingPromptIsFixedByTheBuilder() {
        // Before: the app puts the time at the top of its system prompt and lists tools in whatever order its
        // registry yields them. After: the same content through the builder.
        var generator = SeededGenerator(seed: 7)
        var drifting: [ChatRequest] = []
        var built: [PromptLayout] = []
        for (index, question) in Shop.questions.enumerated() {
            let now = "2026-11-26T17:\(index < 10 ? "0" : "")\(index):00Z"
            var request = ChatRequest(model: "gpt-4o-mini", messages: [.system("Current time: \(now)\n" + Shop.instructions), .user(question)])
            request["tools"] = .array(Shop.tools.shuffled(using: &generator))
            drifting.append(request)
            let builder = PromptBuilder(model: "gpt-4o-mini", instructions: [Shop.instructions], tools: Shop.tools.shuffled(using: &generator), context: ["Current time: \(now)"])
            built.append(builder.build(userMessage: question))
        }
        let before = PrefixAuditor().audit(drifting)
        let after = PrefixAuditor().audit(built)
        print("drifting prompt:", before)
        print("through the builder:", after)
        #expect(before.hitRatio < 0.05)
        #expect(before.breaksByReason.keys.contains { $0.contains("volatile") }, "\(before)")
        #expect(after.hitRatio > 0.8, "\(after)")
        #expect(after.requestsWithCachedPrefix == Shop.questions.count - 1)
        #expect(after.breaks.isEmpty)
        // Tool order alone is named as such.
        // Without the layout, the auditor takes only the first system message as static: the builder's context
        // message is dynamic either way.
        #expect(PrefixAuditor().audit(built.map(\.request)).breaks.isEmpty)
        var reordered = built[0].request
        reordered["tools"] = .array(Array((reordered["tools"]?.arrayValue ?? []).reversed()))
        #expect(PrefixAuditor().audit([built[0].request, reordered]).breaks.first?.reason == .toolOrder)
    }

    @Test func providerAdapters() throws {
        let builder = PromptBuilder(
            model: "claude-sonnet-4", instructions: [Shop.instructions], tools: Shop.tools,
            examples: [.user("Can I change my address?"), .assistant("Yes, until the order ships.")], context: ["Customer: Ada."]
        )
        let layout = builder.build(userMessage: "Where is order 1001?")
        var request = layout.request
        OpenAIPromptCache.apply(to: &request, prefix: layout.staticPrefix, namespace: "shop")
        let key = try #require(request["prompt_cache_key"]?.stringValue)
        #expect(key.hasPrefix("ck-shop-") && key.count == "ck-shop-".count + 32)
        #expect(key == OpenAIPromptCache.key(for: builder.build(userMessage: "other").staticPrefix, namespace: "shop"))

        let body = AnthropicPromptCache.messagesBody(for: layout, maxTokens: 512)
        #expect(AnthropicPromptCache.breakpoints(in: body) == 3, "last tool, system, last example")
        let tools = try #require(body["tools"]?.arrayValue)
        #expect(tools.map { $0["name"]?.stringValue } == ["cancel_order", "lookup_order", "track_parcel"])
        #expect(tools.last?["cache_control"]?["type"]?.stringValue == "ephemeral")
        #expect(tools.first?["input_schema"]?["type"]?.stringValue == "object")
        let system = try #require(body["system"]?.arrayValue)
        #expect(system.count == 2 && system[0]["cache_control"] != nil && system[1]["cache_control"] == nil, "static block cached, context after it")
        let messages = try #require(body["messages"]?.arrayValue)
        #expect(messages.map { $0["role"]?.stringValue } == ["user", "assistant", "user"])
        #expect(messages[1]["content"]?[0]?["cache_control"] != nil && messages[2]["content"]?[0]?["cache_control"] == nil)
    }
}

@Suite("Prompt-cache accounting")
struct PromptCacheAccountingTests {
    static let openAI = try! JSONValue(parsing: #"""
        {"id":"chatcmpl-1","object":"chat.completion","created":1764176956,"model":"gpt-4o-mini-2024-07-18",
         "choices":[{"index":0,"message":{"role":"assistant","content":"It ships tomorrow."},"finish_reason":"stop"}],
         "usage":{"prompt_tokens":2006,"completion_tokens":300,"total_tokens":2306,
                  "prompt_tokens_details":{"cached_tokens":1920,"audio_tokens":0},
                  "completion_tokens_details":{"reasoning_tokens":0}}}
        """#)
    static let anthropic = try! JSONValue(parsing: #"""
        {"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-20250514",
         "content":[{"type":"text","text":"It ships tomorrow."}],"stop_reason":"end_turn",
         "usage":{"input_tokens":21,"cache_creation_input_tokens":0,"cache_read_input_tokens":1888,"output_tokens":300}}
        """#)

    @Test func usageIsReadFromBothProviders() throws {
        #expect(PromptCacheUsage(openAIResponse: Self.openAI) == PromptCacheUsage(inputTokens: 2006, cachedTokens: 1920))
        #expect(PromptCacheUsage(anthropicResponse: Self.anthropic) == PromptCacheUsage(inputTokens: 1909, cachedTokens: 1888, cacheWriteTokens: 0))
        #expect(PromptCacheUsage(openAIResponse: ["id": "x"]) == nil)
    }

    @Test func theAccountantTotalsSavingsAndPerMinuteRatios() throws {
        var prices = PriceTable.default
        prices.prices["claude-sonnet-4"] = .init(input: 3.00, output: 15.00)
        let accountant = PromptCacheAccountant(prices: prices)
        let minute: Int64 = 29_402_949 * 60_000
        accountant.record(try #require(PromptCacheUsage(openAIResponse: Self.openAI)), model: "gpt-4o-mini", at: CacheTime(millisecondsSinceEpoch: minute))
        accountant.record(PromptCacheUsage(inputTokens: 2006, cachedTokens: 0), model: "gpt-4o-mini", at: CacheTime(millisecondsSinceEpoch: minute + 59_000))
        accountant.record(
            try #require(PromptCacheUsage(anthropicResponse: Self.anthropic)), model: "claude-sonnet-4-20250514",
            at: CacheTime(millisecondsSinceEpoch: minute + 60_000), pricing: .anthropic)
        accountant.record(PromptCacheUsage(inputTokens: 1000, cachedTokens: 0, cacheWriteTokens: 1000), model: "claude-sonnet-4", at: CacheTime(millisecondsSinceEpoch: minute + 61_000), pricing: .anthropic)
        let totals = accountant.totals
        #expect(totals.responses == 4 && totals.inputTokens == 2006 * 2 + 1909 + 1000 && totals.cachedTokens == 1920 + 1888)
        let expected = 1920 * (0.15 - 0.075) / 1e6 + 1888 * (3.00 - 0.30) / 1e6 - 1000 * (3.00 * 0.25) / 1e6
        #expect(abs(totals.savedUSD - expected) < 1e-12)
        let byMinute = accountant.hitRatioByMinute
        #expect(byMinute.count == 2)
        #expect(abs(byMinute[0].hitRatio - 1920.0 / 4012) < 1e-9 && abs(byMinute[1].hitRatio - 1888.0 / 2909) < 1e-9)
    }

    @Test func upstreamPromptCacheUsageIsFedIntoCacheStatistics() async throws {
        var configuration = CacheConfiguration()
        configuration.layers = [CacheLayer(backend: InMemoryCacheBackend(), options: .init())]
        let cache = try MultiLayerCache(configuration: configuration)
        let upstream = ClosureCompletionProvider { _ in try ChatResponse(json: Self.openAI.canonicalBytes()) }
        for question in ["a", "b", "a"] {
            _ = try await cache.completion(for: ChatRequest(model: "gpt-4o-mini", messages: [.user(question)], temperature: 0), upstream: upstream)
        }
        let statistics = cache.statistics()
        let calls = statistics.upstreamCalls, read = statistics.promptCacheTokensRead, prompt = statistics.upstreamPromptTokens
        let ratio = statistics.promptCacheHitRatio, saved = statistics.promptCacheSavedUSD
        #expect(calls == 2, "the third request is an L1 hit")
        #expect(read == 3840)
        #expect(prompt == 4012)
        #expect(abs(ratio - 3840.0 / 4012) < 1e-9)
        #expect(abs(saved - 3840 * (0.15 - 0.075) / 1e6) < 1e-12)
    }

    @Test func theTokenEstimatorIsInTheRightRange() {
        let counter = EstimatingTokenCounter()
        #expect(counter.count("") == 0)
        #expect(counter.count("Hello, world!") == 6)  // 2 + 1 + 2 + 1 (cl100k: 4): the estimate errs long on short text
        let english = Shop.instructions
        let estimate = counter.count(english)
        // cl100k gives about one token per 4.2 characters on such text.
        #expect(estimate > english.count / 6 && estimate < english.count / 3)
    }
}
