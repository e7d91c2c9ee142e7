import CacheKit
import Testing

@Suite("OpenAI wire types")
struct WireTypesTests {
    static let toolRequest = #"""
        {"model":"gpt-4o-2024-08-06","temperature":0,"seed":7,
         "messages":[{"role":"developer","content":"Use tools."},
           {"role":"user","content":[{"type":"text","text":"Weather in Paris?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo=","detail":"low"}}]},
           {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
           {"role":"tool","tool_call_id":"call_1","content":"18C"}],
         "tools":[{"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]},"strict":true}}],
         "tool_choice":"auto","parallel_tool_calls":false,
         "response_format":{"type":"json_schema","json_schema":{"name":"w","schema":{"type":"object"},"strict":true}},
         "reasoning_effort":"low","max_completion_tokens":300,"metadata":{"trace":"abc"},"x_vendor":{"nested":[1,2,{"deep":null}]}}
        """#

    @Test func requestRoundTripsLosslessly() throws {
        let request = try ChatRequest(json: Array(Self.toolRequest.utf8))
        let again = try ChatRequest(json: request.jsonBytes())
        #expect(again == request)
        #expect(request.model == "gpt-4o-2024-08-06")
        #expect(request.temperature == 0)
        #expect(request.seed == 7)
        #expect(request.maxTokens == 300)
        #expect(request.reasoningEffort == "low")
        #expect(request.tools?.count == 1)
        #expect(request.responseFormat?["type"] == "json_schema")
        #expect(request.body["x_vendor"]?["nested"]?[2]?["deep"] == .null, "an unknown field was not kept")
        let messages = request.messages
        #expect(messages.map(\.role) == ["developer", "user", "assistant", "tool"])
        #expect(messages[1].text == "Weather in Paris?")
        #expect(messages[2].toolCalls?.first?["function"]?["name"] == "get_weather")
        #expect(messages[3].toolCallID == "call_1")
        #expect(request.lastUserMessageIndex == 1)
    }

    @Test func codableMatchesTheCanonicalCodec() throws {
        let request = try ChatRequest(json: Array(Self.toolRequest.utf8))
        let value = try JSONValue(parsing: request.jsonBytes())
        guard case .object(let members) = value else {
            Issue.record("not an object")
            return
        }
        #expect(try ChatRequest(body: members) == request)
    }

    @Test(arguments: [
        (#"[]"#, "must be a JSON object"), (#"{"messages":[]}"#, "no 'model'"), (#"{"model":1,"messages":[]}"#, "'model' must be a string"),
        (#"{"model":"m"}"#, "no 'messages'"), (#"{"model":"m","messages":{}}"#, "'messages' must be an array"),
        (#"{"model":"m","messages":[1]}"#, "messages[0] must be an object"), (#"{"model":"m","messages":[{}]}"#, "needs a string 'role'"),
        (#"{"model":"m","messages":[{"role":"user","content":5}]}"#, "content must be"),
        (#"{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":"0"}"#, "'temperature' must be a number"),
        (#"{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":3}"#, "'temperature' must be in"),
        (#"{"model":"m","messages":[{"role":"user","content":"x"}],"n":1.5}"#, "'n' must be an integer"),
        (#"{"model":"m","messages":[{"role":"user","content":"x"}],"stream":"yes"}"#, "'stream' must be a boolean"),
        (#"{"model":"m","messages":[]}"#, "'messages' must not be empty"),
        (#"{"model":"m","messages":[}"#, "invalid JSON at byte"),
    ])
    func badRequestsGetAClearError(body: String, message: String) {
        do {
            _ = try ChatRequest(json: Array(body.utf8))
            Issue.record("accepted \(body)")
        } catch {
            #expect(error.code == .invalidRequest)
            #expect(error.message.contains(message), "\(error.message)")
        }
    }

    static let toolResponse = #"""
        {"id":"chatcmpl-1","object":"chat.completion","created":1735689600,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_1",
         "choices":[{"index":0,"message":{"role":"assistant","content":null,"reasoning_content":"think","tool_calls":[
            {"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
            {"id":"call_2","type":"function","function":{"name":"get_time","arguments":"{}"}}]},"finish_reason":"tool_calls","logprobs":null}],
         "usage":{"prompt_tokens":100,"completion_tokens":20,"total_tokens":120,"prompt_tokens_details":{"cached_tokens":64},"completion_tokens_details":{"reasoning_tokens":5}}}
        """#

    @Test func responseUsageAndFields() throws {
        let response = try ChatResponse(json: Array(Self.toolResponse.utf8))
        #expect(response.id == "chatcmpl-1")
        #expect(response.finishReasons == ["tool_calls"])
        #expect(response.usage == TokenUsage(promptTokens: 100, completionTokens: 20, cachedPromptTokens: 64, reasoningTokens: 5))
        #expect(response.uncacheableReason == nil)
        #expect(try ChatResponse(json: response.jsonBytes()) == response)
    }

    @Test func streamReplayAssemblesBackToTheSameAnswer() throws {
        let response = try ChatResponse(json: Array(Self.toolResponse.utf8))
        let chunks = response.streamChunks()
        #expect(chunks.allSatisfy { $0.body["id"] == "chatcmpl-1" && $0.body["object"] == "chat.completion.chunk" })
        #expect(chunks.last?.body["usage"]?["prompt_tokens_details"]?["cached_tokens"] == 64)
        let assembled = try ChatResponse(assembling: chunks)
        let original = response.body["choices"]?[0]
        let rebuilt = assembled.body["choices"]?[0]
        #expect(rebuilt?["finish_reason"] == original?["finish_reason"])
        #expect(rebuilt?["message"]?["tool_calls"] == original?["message"]?["tool_calls"])
        #expect(rebuilt?["message"]?["reasoning_content"] == "think")
        #expect(rebuilt?["message"]?["content"] == .null)
        #expect(assembled.usage == response.usage)
        #expect(assembled.model == response.model)
        #expect(assembled.body["system_fingerprint"] == "fp_1")
    }

    @Test func fragmentedToolCallDeltasMerge() throws {
        func chunk(_ json: String) throws -> ChatCompletionChunk { try ChatCompletionChunk(json: Array(json.utf8)) }
        let chunks = [
            try chunk(#"{"id":"c","model":"m","created":1,"choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]}}]}"#),
            try chunk(#"{"id":"c","model":"m","created":1,"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":"}}]}}]}"#),
            try chunk(#"{"id":"c","model":"m","created":1,"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]}}]}"#),
            try chunk(#"{"id":"c","model":"m","created":1,"choices":[{"index":0,"delta":{"content":"Hel"}}]}"#),
            try chunk(#"{"id":"c","model":"m","created":1,"choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"tool_calls"}]}"#),
        ]
        let response = try ChatResponse(assembling: chunks)
        #expect(response.text == "Hello")
        #expect(response.messages.first?.toolCalls?.first?["function"]?["arguments"] == #"{"a":1}"#)
        #expect(response.finishReasons == ["tool_calls"])
    }

    @Test func refusalsErrorsAndFilteredAnswersAreUncacheable() throws {
        let refusal = try ChatResponse(json: Array(#"{"choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":"I can't"},"finish_reason":"stop"}]}"#.utf8))
        let filtered = try ChatResponse(json: Array(#"{"choices":[{"index":0,"message":{"role":"assistant","content":""},"finish_reason":"content_filter"}]}"#.utf8))
        let error = try ChatResponse(json: Array(#"{"error":{"message":"x","type":"server_error"}}"#.utf8))
        #expect(refusal.uncacheableReason == "refusal")
        #expect(filtered.uncacheableReason == "content filter")
        #expect(error.uncacheableReason == "error")
    }
}
