import CacheKit
import Testing

@Suite("Cache keys")
struct CacheKeyTests {
    let keyer = RequestKeyer()

    static let goldenRequest = #"""
        {"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are terse."},
         {"role":"user","content":"What is the capital of France?"}],"temperature":0,"max_tokens":64,"stream":true}
        """#

    func request(_ text: String) throws -> ChatRequest { try ChatRequest(json: Array(text.utf8)) }

    // The golden vectors were computed independently with Python's json.dumps(sort_keys=True,
    // separators=(",", ":")) + hashlib.sha256 (the document is ASCII with integer numbers, where that equals
    // RFC 8785). They change only if RequestKeyer.schemaVersion is bumped.
    @Test func goldenVectors() throws {
        let request = try self.request(Self.goldenRequest)
        let canonical = String(decoding: self.keyer.canonicalBytes(for: request, in: .default), as: UTF8.self)
        #expect(
            canonical
                == #"{"request":{"max_tokens":64,"messages":[{"content":"You are terse.","role":"system"},{"content":"What is the capital of France?","role":"user"}],"model":"gpt-4o-mini","temperature":0},"scope":{"namespace":"default","tenant":"default","version":"1"},"v":1}"#
        )
        #expect(self.keyer.key(for: request, in: .default).hex == "f123daf4d3782e041afd739017a50262cebb4d824c5215a48696256c6fec85b4")
        let acme = CacheScope(tenant: "acme", namespace: "support", version: "7")
        #expect(self.keyer.key(for: request, in: acme).hex == "264b6e5086f86db721e491c331acb438edd3b4f03cca82fd82a500054febc53f")
        #expect(CacheScope.default.id.hex == "60c0106720e7c2f9887f93ee5df01c888a57d78206ea689f6262916c68cb9962")
        #expect(RequestKeyer.schemaVersion == 1)
    }

    @Test func keyEqualsSHA256OfCanonicalBytes() throws {
        let request = try self.request(Self.goldenRequest)
        let bytes = self.keyer.canonicalBytes(for: request, in: .default)
        #expect(Digest256(hashing: bytes) == self.keyer.key(for: request, in: .default).digest)
    }

    @Test func memberOrderWhitespaceAndNumberFormDoNotChangeTheKey() throws {
        let a = try self.request(#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0,"top_p":1}"#)
        let b = try self.request(
            "{ \"top_p\" : 1.0 ,\n \"temperature\": 0.0, \"messages\" : [ { \"content\" : \"hi\", \"role\":\"user\" } ], \"model\":\"m\" }"
        )
        #expect(self.keyer.key(for: a, in: .default) == self.keyer.key(for: b, in: .default))
    }

    @Test func transportFieldsDoNotChangeTheKey() throws {
        let base = try self.request(#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0}"#)
        var streamed = base
        streamed.body["stream"] = true
        streamed.body["stream_options"] = ["include_usage": true]
        #expect(self.keyer.key(for: base, in: .default) == self.keyer.key(for: streamed, in: .default))
    }

    @Test(arguments: [
        ("model", JSONValue.string("gpt-4o")), ("temperature", 0.2), ("seed", 42), ("top_p", 0.5), ("max_tokens", 10),
        ("tools", [["type": "function", "function": ["name": "f", "parameters": [:]]]]),
        ("tool_choice", "required"), ("response_format", ["type": "json_object"]), ("reasoning_effort", "high"),
        ("stop", ["\n"]), ("n", 1), ("presence_penalty", 0.1), ("logit_bias", ["50256": -100]),
        ("x_unknown_vendor_parameter", true), ("user", "u-1"),
    ] as [(String, JSONValue)])
    func everySemanticParameterChangesTheKey(field: String, value: JSONValue) throws {
        let base = try self.request(#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0}"#)
        var changed = base
        changed.body[field] = value
        #expect(self.keyer.key(for: base, in: .default) != self.keyer.key(for: changed, in: .default), "\(field) did not change the key")
    }

    @Test func messageContentRoleAndOrderChangeTheKey() throws {
        let base = try self.request(#"{"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":"hi"}],"temperature":0}"#)
        let variants = [
            #"{"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":"hi!"}],"temperature":0}"#,
            #"{"model":"m","messages":[{"role":"developer","content":"s"},{"role":"user","content":"hi"}],"temperature":0}"#,
            #"{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"system","content":"s"}],"temperature":0}"#,
            #"{"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"hi"}]}],"temperature":0}"#,
        ]
        let baseKey = self.keyer.key(for: base, in: .default)
        for variant in variants {
            #expect(self.keyer.key(for: try self.request(variant), in: .default) != baseKey, "\(variant)")
        }
    }

    @Test func scopePartsCannotBeShuffledIntoEachOther() throws {
        let request = try self.request(#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0}"#)
        let pairs: [(CacheScope, CacheScope)] = [
            (CacheScope(tenant: "a:b", namespace: "c"), CacheScope(tenant: "a", namespace: "b:c")),
            (CacheScope(tenant: "a", namespace: "b", version: "c"), CacheScope(tenant: "a", namespace: "b\",\"c")),
            (CacheScope(tenant: "t1"), CacheScope(tenant: "t2")),
            (CacheScope(tenant: "t", version: "1"), CacheScope(tenant: "t", version: "2")),
        ]
        for (a, b) in pairs {
            #expect(a != b)
            #expect(a.id != b.id)
            #expect(self.keyer.key(for: request, in: a) != self.keyer.key(for: request, in: b))
        }
    }

    @Test func configuredTransportFieldsAreLeftOut() throws {
        let keyer = RequestKeyer(transportOnlyFields: ["stream", "stream_options", "user"])
        let a = try self.request(#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0,"user":"alice"}"#)
        let b = try self.request(#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0,"user":"bob"}"#)
        #expect(keyer.key(for: a, in: .default) == keyer.key(for: b, in: .default))
        #expect(self.keyer.key(for: a, in: .default) != self.keyer.key(for: b, in: .default))
    }

    @Test func semanticPartitionSeparatesConversationsButNotQueryText() throws {
        func make(_ system: String, _ earlier: [ChatMessage], _ question: String, model: String = "m") -> ChatRequest {
            ChatRequest(model: model, messages: [.system(system)] + earlier + [.user(question)], temperature: 0)
        }
        let a = try #require(self.keyer.semanticQuery(for: make("s", [], "How do I reset my password?"), in: .default))
        let b = try #require(self.keyer.semanticQuery(for: make("s", [], "How can I change my password?"), in: .default))
        #expect(a.partition == b.partition, "paraphrases of the last user message must share a partition")
        #expect(a.text == "How do I reset my password?")
        let others = [
            make("other system prompt", [], "How do I reset my password?"),
            make("s", [.user("I use the mobile app"), .assistant("OK")], "How do I reset my password?"),
            make("s", [], "How do I reset my password?", model: "m2"),
        ]
        for other in others {
            let query = try #require(self.keyer.semanticQuery(for: other, in: .default))
            #expect(query.partition != a.partition)
        }
        let tenant = try #require(self.keyer.semanticQuery(for: make("s", [], "How do I reset my password?"), in: CacheScope(tenant: "other")))
        #expect(tenant.partition != a.partition)
        #expect(tenant.partition.scopeID != a.partition.scopeID)
        #expect(self.keyer.semanticQuery(for: ChatRequest(model: "m", messages: [.system("only")], temperature: 0), in: .default) == nil)
    }

    @Test func multimodalNonTextPartsStayInThePartition() throws {
        func make(_ url: String) throws -> ChatRequest {
            try self.request(
                #"{"model":"m","temperature":0,"messages":[{"role":"user","content":[{"type":"text","text":"what is this?"},{"type":"image_url","image_url":{"url":"\#(url)"}}]}]}"#
            )
        }
        let a = try #require(self.keyer.semanticQuery(for: try make("https://x/cat.png"), in: .default))
        let b = try #require(self.keyer.semanticQuery(for: try make("https://x/dog.png"), in: .default))
        #expect(a.text == "what is this?")
        #expect(a.partition != b.partition, "two different images must not share a semantic partition")
    }
}

@Suite("Digest hex")
struct DigestHexTests {
    @Test func appendHexMatchesHex() {
        let digest = Digest256(hashing: Array("abc".utf8))
        var all: [UInt8] = []
        digest.appendHex(to: &all)
        #expect(String(decoding: all, as: UTF8.self) == digest.hex)
        var half: [UInt8] = Array("x:".utf8)
        digest.appendHex(to: &half, byteCount: 16)
        #expect(String(decoding: half, as: UTF8.self) == "x:" + digest.hex.prefix(32))
        #expect(digest.hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }
}
