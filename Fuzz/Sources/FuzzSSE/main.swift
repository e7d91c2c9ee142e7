import FuzzSupport
import CacheKitOpenAI

/// Any bytes as a Server-Sent Events stream: never a crash, and the events do not depend on how the stream was
/// split into network reads (the first byte picks the split size).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSSE(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let split = Int(data[0] % 16) + 1
    let bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    var whole = ServerSentEventParser(maximumEventBytes: 4096)
    var pieces = ServerSentEventParser(maximumEventBytes: 4096)
    let all = try? whole.feed(bytes)
    var collected: [ServerSentEventParser.Event]? = []
    var index = 0
    while index < bytes.count {
        let end = min(bytes.count, index + split)
        if let events = try? pieces.feed(bytes[index..<end]) { collected?.append(contentsOf: events) } else { collected = nil; break }
        index = end
    }
    if let all, let collected { precondition(all == collected, "events depend on the read boundaries") }
    return 0
}

@_cdecl("FuzzSSE_main")
func fuzzerEntryPoint(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in fuzzSSE(data, size) }
}
