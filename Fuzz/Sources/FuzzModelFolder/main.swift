import CacheKit
@_spi(Fuzzing) import CacheKitEmbeddings
import Foundation
import FuzzSupport

/// A tiny valid model (hidden size 4, one layer, 5 tokens) that the fuzzer's config.json and vocab.txt meet, so
/// both reach past the first checks; a third section, when given, replaces the weights.
let tinyWeights: [UInt8] = {
    var shapes: [(String, [Int])] = [
        ("embeddings.word_embeddings.weight", [5, 4]), ("embeddings.position_embeddings.weight", [8, 4]),
        ("embeddings.token_type_embeddings.weight", [2, 4]), ("embeddings.LayerNorm.weight", [4]), ("embeddings.LayerNorm.bias", [4]),
    ]
    for name in ["query", "key", "value"] {
        shapes.append(("encoder.layer.0.attention.self.\(name).weight", [4, 4]))
        shapes.append(("encoder.layer.0.attention.self.\(name).bias", [4]))
    }
    let rest: [(String, [Int])] = [
        ("encoder.layer.0.attention.output.dense.weight", [4, 4]), ("encoder.layer.0.attention.output.dense.bias", [4]),
        ("encoder.layer.0.attention.output.LayerNorm.weight", [4]), ("encoder.layer.0.attention.output.LayerNorm.bias", [4]),
        ("encoder.layer.0.intermediate.dense.weight", [8, 4]), ("encoder.layer.0.intermediate.dense.bias", [8]),
        ("encoder.layer.0.output.dense.weight", [4, 8]), ("encoder.layer.0.output.dense.bias", [4]),
        ("encoder.layer.0.output.LayerNorm.weight", [4]), ("encoder.layer.0.output.LayerNorm.bias", [4]),
    ]
    shapes += rest
    var header: [String: JSONValue] = [:]
    var offset = 0
    for (name, shape) in shapes {
        let bytes = shape.reduce(4, *)
        header[name] = ["dtype": "F32", "shape": .array(shape.map { .number(Double($0)) }), "data_offsets": [.number(Double(offset)), .number(Double(offset + bytes))]]
        offset += bytes
    }
    let encoded = JSONValue.object(header).canonicalBytes()
    return withUnsafeBytes(of: UInt64(encoded.count).littleEndian) { Array($0) } + encoded + [UInt8](repeating: 0x3c, count: offset)
}()

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
