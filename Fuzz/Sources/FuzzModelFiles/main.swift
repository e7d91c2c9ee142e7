import FuzzSupport
import Foundation
@_spi(Fuzzing) import CacheKitEmbeddings

/// Any bytes as a `model.safetensors` file: never a crash; a header that parses gives every tensor it names with
/// exactly as many values as its shape says, or a clear error.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzModelFiles(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(bytes: data, count: size)
    guard let file = try? SafeTensors(data: bytes) else { return 0 }
    for name in file.names {
        guard let shape = file.shape(of: name), let values = try? file.tensor(name, shape: shape) else { continue }
        precondition(values.count == shape.reduce(1, *), "\(name): \(values.count) values for shape \(shape)")
    }
    return 0
}

@_cdecl("FuzzModelFiles_main")
func fuzzerEntryPoint(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in fuzzModelFiles(data, size) }
}
