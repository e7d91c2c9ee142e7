import FuzzSupport
import CacheKit

/// Any bytes as a stored entry: decoding never crashes; a decodable entry encodes back to bytes that decode to
/// the same entry.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEntry(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var bytes = Array(UnsafeBufferPointer(start: data, count: size))
    // Half the inputs get a valid header and checksum, so the field decoding behind them is reached too.
    if let first = bytes.first, first & 1 == 1 { bytes = CacheEntryCodec.sealed([0x43, 0x4B, 0x45, 0x01] + bytes.dropFirst()) }
    guard let entry = try? CacheEntryCodec.decode(bytes) else { return 0 }
    let encoded = CacheEntryCodec.encode(entry)
    precondition(CacheEntryCodec.encodedCount(entry) == encoded.count)
    precondition((try? CacheEntryCodec.decode(encoded)) == entry, "round trip changed the entry")
    return 0
}

@_cdecl("FuzzEntry_main")
func fuzzerEntryPoint(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in fuzzEntry(data, size) }
}
