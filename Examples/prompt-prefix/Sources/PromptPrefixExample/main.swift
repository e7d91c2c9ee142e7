import CacheKit
import CacheKitPromptPrefix
import Foundation

// A support agent as teams write it at first: the system prompt opens with the time and the signed-in customer's
// profile (JSON from a dictionary, so its key order varies), the tools come from a registry in no fixed order,
// then the long instructions and the few-shot examples. Every request's prompt differs from the first line on,
// so the provider's prefix cache never hits. The same agent laid out by `PromptBuilder` puts everything static
// first (instructions, sorted tools, examples) and the time and profile after it.

let tools: [JSONValue] = [
    ("lookup_order", "Find an order by its number and return its status, items and delivery estimate."),
    ("cancel_order", "Cancel an order that has not shipped yet. Requires the order number and a reason."),
    ("track_parcel", "Return the carrier's latest tracking events for a parcel number."),
    ("open_ticket", "Open a ticket for the human support team, with a summary and a priority."),
    ("refund_status", "Return the state of a refund by order number."),
].map { name, description in
    ["type": "function", "function": [
        "name": .string(name), "description": .string(description),
        "parameters": ["type": "object", "properties": ["order_id": ["type": "string"], "reason": ["type": "string"]], "required": ["order_id"]],
    ]]
}

let policies = [
    "You are the support assistant of Northwind Outfitters, an online outdoor-equipment shop.",
    "Answer in the customer's language, in at most five sentences, politely and without jargon.",
    "Always look up an order with lookup_order before saying anything about it; never guess a status.",
    "Never promise a delivery date; quote the carrier's estimate from track_parcel and say it is an estimate.",
    "Refunds above 200 EUR, damaged goods and anything about a customer's safety are escalated with open_ticket.",
    "Cite the help-centre page that covers the answer, as a full URL under https://help.northwind.example/.",
] + (1...45).map { "Help-centre rule \($0): when a customer asks about topic \($0), summarise the page, link it and offer the next step." }
let instructions = policies.joined(separator: "\n")
let examples: [ChatMessage] = [
    .user("Where is order 48213?"),
    .assistant("Let me check. Order 48213 shipped yesterday with DHL; the carrier estimates delivery on Thursday (an estimate). Details: https://help.northwind.example/shipping"),
    .user("My tent arrived torn."),
    .assistant("I'm sorry about that. I've opened a ticket for our team, who will arrange a replacement. See https://help.northwind.example/damaged-goods"),
]

let customers: [[String: JSONValue]] = [
    ["name": "Ana", "tier": "gold", "country": "PT", "open_orders": 2],
    ["tier": "standard", "name": "Ben", "open_orders": 0, "country": "DE"],
    ["country": "FR", "open_orders": 1, "name": "Chloé", "tier": "silver"],
]
let questions = [
    "Where is my order 10412?", "Can I still cancel order 10398?", "When will my refund for 10377 arrive?",
    "The stove I got does not light.", "Do you ship to Norway?", "How do I return hiking boots?",
]

/// A JSON object written in the order its keys were inserted, as many serialisers do.
func insertionOrderJSON(_ object: [String: JSONValue], order: [String]) -> String {
    "{" + order.compactMap { key in object[key].map { "\"\(key)\":\(String(decoding: $0.canonicalBytes(), as: UTF8.self))" } }.joined(separator: ",") + "}"
}

var naive: [ChatRequest] = []
var built: [PromptLayout] = []
for index in 0..<24 {
    let customer = customers[index % customers.count]
    let profile = insertionOrderJSON(customer, order: index % 2 == 0 ? ["name", "tier", "country", "open_orders"] : ["tier", "open_orders", "name", "country"])
    let now = "Current time: 2026-11-27T10:\(String(index + 10)):07Z"
    let question = questions[index % questions.count]
    let registryOrder = index % 3 == 0 ? tools : tools.reversed()

    var request = ChatRequest(
        model: "gpt-4o-mini",
        messages: [.system("\(now)\nCustomer profile: \(profile)\n\n\(instructions)")] + examples + [.user(question)],
        temperature: 0
    )
    request["tools"] = .array(registryOrder)
    naive.append(request)

    let builder = PromptBuilder(
        model: "gpt-4o-mini", instructions: [instructions], tools: registryOrder, examples: examples,
        context: [now, "Customer profile: " + String(decoding: JSONValue.object(customer).canonicalBytes(), as: UTF8.self)],
        parameters: ["temperature": 0]
    )
    built.append(builder.build(userMessage: question))
}

let auditor = PrefixAuditor()
print("== As first written ==")
print(auditor.audit(naive))
for finding in auditor.audit(naive[1]) { print("  finding: \(finding)") }
print("\n== Laid out by PromptBuilder ==")
let report = auditor.audit(built)
print(report)
for finding in auditor.audit(built[1]) { print("  finding: \(finding)") }

let fingerprints = Set(built.map(\.staticPrefix.fingerprint))
print("\nDistinct static prefixes: \(fingerprints.count) (one means every request can share the cached prefix)")
var first = built[0].request
OpenAIPromptCache.apply(to: &first, prefix: built[0].staticPrefix, namespace: "support")
print("OpenAI prompt_cache_key: \(first["prompt_cache_key"]?.stringValue ?? "-")")
let anthropic = AnthropicPromptCache.messagesBody(for: built[0], maxTokens: 512)
print("Anthropic cache_control breakpoints: \(AnthropicPromptCache.breakpoints(in: anthropic)) of \(AnthropicPromptCache.maximumBreakpoints)")

let naiveReport = auditor.audit(naive)
guard report.hitRatio > naiveReport.hitRatio + 0.5, fingerprints.count == 1 else {
    print("unexpected: the built layout should share one prefix and cache far more than the naive one")
    exit(1)
}
