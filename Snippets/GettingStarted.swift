//! A memory cache in front of an upstream: the first call is a miss, the second a hit.
import CacheKit
import CacheKitMemory

// snippet.hide
let upstream = ClosureCompletionProvider { request in
    ChatResponse(id: "1", model: request.model, created: 0, content: "Paris.")
}
// snippet.show
var configuration = CacheConfiguration()
configuration.layers = [.memory()]
let cache = try MultiLayerCache(configuration: configuration)

let request = ChatRequest(model: "gpt-4o-mini", messages: [.user("What is the capital of France?")], temperature: 0)
for _ in 0..<2 {
    let answer = try await cache.completion(for: request, in: CacheScope(tenant: "acme"), upstream: upstream)
    print(answer.outcome.source, answer.response.text ?? "")  // MISS Paris., then HIT-L1 Paris.
}
