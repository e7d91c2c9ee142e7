import CacheKit
@_spi(Fuzzing) import CacheKitEmbeddings
import CacheKitTesting
import Foundation
import FuzzSupport

/// The tiny valid model's weights (CacheKitTesting), which the fuzzer's config.json and vocab.txt meet, so both
/// reach past the first checks; a third section, when given, replaces them.
let tinyWeights = TinyBertModel.weights(filledWith: 0.01)

/// Any bytes as a model folder: sections separated by 0xFF 0x00 are config.json, vocab.txt and (optionally)
/// model.safetensors. Never a crash; a model that loads embeds a text into exactly `dimension` numbers.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzModelFolder(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    var sections: [[UInt8]] = [[]]
    var index = 0
    while index < bytes.count {
        if bytes[index] == 0xFF, index + 1 < bytes.count, bytes[index + 1] == 0x00, sections.count < 3 {
            sections.append([])
            index += 2
            continue
        }
        sections[sections.count - 1].append(bytes[index])
        index += 1
    }
    guard sections.count >= 2 else { return 0 }
    let files: [String: Data] = [
        "config.json": Data(sections[0]), "vocab.txt": Data(sections[1]),
        "model.safetensors": Data(sections.count > 2 ? sections[2] : tinyWeights),
    ]
    guard let provider = try? LocalEmbeddingProvider(files: files) else { return 0 }
    let vectors = provider.embedNow(["hello world", String(decoding: sections[1].prefix(64), as: UTF8.self)])
    precondition(vectors.count == 2 && vectors.allSatisfy { $0.count == provider.dimension }, "wrong vector shape")
    return 0
}

@_cdecl("FuzzModelFolder_main")
func fuzzerEntryPoint(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in fuzzModelFolder(data, size) }
}
