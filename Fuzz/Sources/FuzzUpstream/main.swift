import CacheKit
@_spi(Fuzzing) import CacheKitOpenAI
import FuzzSupport

/// Any bytes as an upstream's reply, by the first byte's choice: an event stream split into reads of any size, a
/// chat-completions JSON body, an embeddings body, an error body, or a Retry-After header. Never a crash; a stream
/// that carried an error never counts as done; nothing is delivered after the end; an error message never repeats
/// the key.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzUpstream(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 1 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data + 2, count: size - 2))
    let selector = data[0], parameter = Int(data[1])
    switch selector % 5 {
    case 0:
        var reader = UpstreamStreamReader(maximumEventBytes: 4096)
        let split = parameter % 64 + 1
        var chunks: [ChatCompletionChunk] = []
        var index = 0
        var sawFailure = false
        while index < bytes.count {
            let end = min(bytes.count, index + split)
            let before = reader.end
            let delivered = reader.feed(bytes[index..<end])
            precondition(before == .open || delivered.isEmpty, "chunks after the end of the stream")
            if case .failed = reader.end { sawFailure = true }
            precondition(!(sawFailure && reader.end == .done), "a failed stream became done")
            chunks += delivered
            index = end
        }
        if reader.end == .done, let response = try? ChatResponse(assembling: chunks) {
            _ = response.uncacheableReason
            _ = response.usage?.totalTokens
            _ = CacheEntryCodec.encode(CacheEntry(value: response.jsonBytes(), createdAt: .distantPast, expiresAt: .distantFuture, usage: response.usage))
        }
    case 1:
        guard case .object(let members)? = try? JSONValue(parsing: bytes) else { return 0 }
        let response = ChatResponse(body: members)
        _ = response.uncacheableReason
        _ = response.text
        if let usage = response.usage {
            precondition(usage.totalTokens >= 0)
            _ = PriceTable.default.cost(of: usage, model: response.model)
        }
    case 2:
        guard let list = (try? JSONValue(parsing: bytes))?["data"]?.arrayValue else { return 0 }
        if let vectors = try? UpstreamReplyChecks.embeddings(list, count: parameter % 5 + 1, dimension: parameter % 7 + 1) {
            precondition(vectors.count == parameter % 5 + 1 && vectors.allSatisfy { $0.count == parameter % 7 + 1 })
        }
    case 3:
        let secret = "sk-fuzz-secret-0123456789abcdefWXYZ"
        let message = UpstreamReplyChecks.errorMessage(status: 400 + parameter, body: bytes, secrets: [secret])
        precondition(!message.contains(secret) && !message.contains("WXYZ"), "an error message repeats the key")
    default:
        if let seconds = UpstreamReplyChecks.retryAfter(String(decoding: bytes.prefix(64), as: UTF8.self)) {
            precondition(seconds.isFinite && seconds >= 0)
        }
    }
    return 0
}

@_cdecl("FuzzUpstream_main")
func fuzzerEntryPoint(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in fuzzUpstream(data, size) }
}
