import FuzzSupport
import CacheKit

/// Any bytes: parsing never crashes; for a valid request, the canonical key document parses back and writes the
/// same bytes again (canonical form is a fixed point), so the key is a function of the JSON data alone.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzKey(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    guard let value = try? JSONValue(parsing: bytes) else { return 0 }
    let canonical = value.canonicalBytes()
    guard let again = try? JSONValue(parsing: canonical) else { fatalError("canonical bytes do not parse: \(canonical)") }
    precondition(again.canonicalBytes() == canonical, "canonical form is not a fixed point")
    if let request = try? ChatRequest(json: bytes) {
        let keyer = RequestKeyer()
        let document = keyer.canonicalBytes(for: request, in: .default)
        guard let parsed = try? JSONValue(parsing: document) else { fatalError("key document does not parse") }
        precondition(parsed.canonicalBytes() == document, "key document is not canonical")
        precondition(keyer.key(for: request, in: .default).digest == Digest256(hashing: document))
        _ = keyer.semanticQuery(for: request, in: .default)
    }
    return 0
}

@_cdecl("FuzzKey_main")
func fuzzerEntryPoint(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in fuzzKey(data, size) }
}
