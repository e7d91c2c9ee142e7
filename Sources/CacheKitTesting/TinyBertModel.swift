import CacheKit

/// The smallest model folder `LocalEmbeddingProvider` loads: a one-layer BERT of hidden size 4 over five tokens
/// (`[PAD] [UNK] [CLS] [SEP] hello`), every weight `weight`. For tests and fuzz targets of the loading and queueing
/// code that do not need a real model; its vectors mean nothing.
public enum TinyBertModel {
    /// `config.json` of the tiny model.
    public static let config = #"{"model_type":"bert","hidden_size":4,"num_attention_heads":2,"intermediate_size":8,"num_hidden_layers":1,"vocab_size":5,"max_position_embeddings":8,"type_vocab_size":2}"#

    /// The default vocabulary, one token per line (ids 0 to 4).
    public static let vocabulary = "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello"

    /// `model.safetensors` of the tiny model: F32 tensors of every name and shape the encoder reads.
    ///
    /// - Parameter weight: the value of every weight. Default 0.
    public static func weights(filledWith weight: Float = 0) -> [UInt8] {
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
            header[name] = [
                "dtype": "F32", "shape": .array(shape.map { .number(Double($0)) }),
                "data_offsets": [.number(Double(offset)), .number(Double(offset + bytes))],
            ]
            offset += bytes
        }
        let encoded = JSONValue.object(header).canonicalBytes()
        var file = withUnsafeBytes(of: UInt64(encoded.count).littleEndian) { Array($0) } + encoded
        let value = withUnsafeBytes(of: weight.bitPattern.littleEndian) { Array($0) }
        for _ in 0..<(offset / 4) { file += value }
        return file
    }

    /// The three files by name.
    ///
    /// - Parameter vocabulary: the contents of vocab.txt. Default ``vocabulary``.
    public static func files(vocabulary: String = Self.vocabulary) -> [String: [UInt8]] {
        ["config.json": Array(self.config.utf8), "vocab.txt": Array(vocabulary.utf8), "model.safetensors": self.weights()]
    }
}
