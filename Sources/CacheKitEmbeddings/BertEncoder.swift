import CCacheKitBLAS
import CacheKit
import Foundation

/// A BERT encoder (the all-MiniLM-L6-v2 family) in Swift: embeddings + LayerNorm, self-attention with the
/// attention mask, GELU feed-forward, residuals and LayerNorm per layer, then mean pooling and L2 normalisation.
/// Matrix products go through OpenBLAS (`cblas_sgemm`).
///
/// A batch is evaluated without padding: the linear layers run once over the rows of every sequence stacked
/// together, attention runs per sequence over its own tokens. That is exactly what padding plus an attention mask
/// computes, without the wasted rows.
final class BertEncoder: Sendable {
    struct Layer: Sendable {
        var query: [Float], queryBias: [Float]
        var key: [Float], keyBias: [Float]
        var value: [Float], valueBias: [Float]
        var attentionOutput: [Float], attentionOutputBias: [Float]
        var attentionNormWeight: [Float], attentionNormBias: [Float]
        var intermediate: [Float], intermediateBias: [Float]
        var output: [Float], outputBias: [Float]
        var outputNormWeight: [Float], outputNormBias: [Float]
    }

    let hidden: Int
    let heads: Int
    let intermediateSize: Int
    let maximumPositions: Int
    let epsilon: Float
    let wordEmbeddings: [Float]
    let positionEmbeddings: [Float]
    let tokenTypeEmbeddings: [Float]
    let embeddingNormWeight: [Float]
    let embeddingNormBias: [Float]
    let layers: [Layer]

    init(config: JSONValue, weights: SafeTensors) throws(CacheError) {
        func int(_ name: String) throws(CacheError) -> Int {
            guard let value = config[name]?.intValue, value > 0 else {
                throw CacheError(.invalidConfiguration, "config.json has no positive \(name)", backend: "embeddings")
            }
            return value
        }
        guard config["model_type"]?.stringValue ?? "bert" == "bert" else {
            throw CacheError(.invalidConfiguration, "config.json model_type is not bert", backend: "embeddings")
        }
        let hidden = try int("hidden_size")
        let heads = try int("num_attention_heads")
        let intermediate = try int("intermediate_size")
        let layerCount = try int("num_hidden_layers")
        let vocabulary = try int("vocab_size")
        let positions = try int("max_position_embeddings")
        guard hidden % heads == 0 else { throw CacheError(.invalidConfiguration, "hidden_size is not a multiple of the head count", backend: "embeddings") }
        self.hidden = hidden
        self.heads = heads
        self.intermediateSize = intermediate
        self.maximumPositions = positions
        self.epsilon = Float(config["layer_norm_eps"]?.doubleValue ?? 1e-12)
        // Tensor names with or without the "bert." prefix that some exports carry.
        let prefix = weights.names.contains { $0.hasPrefix("bert.") } ? "bert." : ""
        func tensor(_ name: String, _ shape: [Int]) throws(CacheError) -> [Float] { try weights.tensor(prefix + name, shape: shape) }
        self.wordEmbeddings = try tensor("embeddings.word_embeddings.weight", [vocabulary, hidden])
        self.positionEmbeddings = try tensor("embeddings.position_embeddings.weight", [positions, hidden])
        self.tokenTypeEmbeddings = try tensor("embeddings.token_type_embeddings.weight", [try int("type_vocab_size"), hidden])
        self.embeddingNormWeight = try tensor("embeddings.LayerNorm.weight", [hidden])
        self.embeddingNormBias = try tensor("embeddings.LayerNorm.bias", [hidden])
        var layers: [Layer] = []
        for index in 0..<layerCount {
            let p = "encoder.layer.\(index)."
            layers.append(
                Layer(
                    query: try tensor(p + "attention.self.query.weight", [hidden, hidden]), queryBias: try tensor(p + "attention.self.query.bias", [hidden]),
                    key: try tensor(p + "attention.self.key.weight", [hidden, hidden]), keyBias: try tensor(p + "attention.self.key.bias", [hidden]),
                    value: try tensor(p + "attention.self.value.weight", [hidden, hidden]), valueBias: try tensor(p + "attention.self.value.bias", [hidden]),
                    attentionOutput: try tensor(p + "attention.output.dense.weight", [hidden, hidden]),
                    attentionOutputBias: try tensor(p + "attention.output.dense.bias", [hidden]),
                    attentionNormWeight: try tensor(p + "attention.output.LayerNorm.weight", [hidden]),
                    attentionNormBias: try tensor(p + "attention.output.LayerNorm.bias", [hidden]),
                    intermediate: try tensor(p + "intermediate.dense.weight", [intermediate, hidden]),
                    intermediateBias: try tensor(p + "intermediate.dense.bias", [intermediate]),
                    output: try tensor(p + "output.dense.weight", [hidden, intermediate]), outputBias: try tensor(p + "output.dense.bias", [hidden]),
                    outputNormWeight: try tensor(p + "output.LayerNorm.weight", [hidden]), outputNormBias: try tensor(p + "output.LayerNorm.bias", [hidden])
                )
            )
        }
        self.layers = layers
    }

    /// erf(x) to within 1.5e-7 (Abramowitz & Stegun 7.1.26): several times faster than libm's `erff`, which
    /// dominated the encoder's time in the exact GELU.
    @inline(__always)
    static func erf(_ x: Float) -> Float {
        let sign: Float = x < 0 ? -1 : 1
        let a = abs(x)
        let t = 1 / (1 + 0.3275911 * a)
        let polynomial = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t
        return sign * (1 - polynomial * expf(-a * a))
    }

    /// y[rows × out] = x[rows × in] · Wᵀ + b, with W stored [out × in] as PyTorch does.
    private func linear(_ x: [Float], rows: Int, inputs: Int, _ weight: [Float], _ bias: [Float]) -> [Float] {
        let outputs = bias.count
        var y = [Float](repeating: 0, count: rows * outputs)
        for row in 0..<rows { for column in 0..<outputs { y[row * outputs + column] = bias[column] } }
        x.withUnsafeBufferPointer { xp in
            weight.withUnsafeBufferPointer { wp in
                y.withUnsafeMutableBufferPointer { yp in
                    cachekit_sgemm_nt(Int32(rows), Int32(outputs), Int32(inputs), 1, xp.baseAddress, Int32(inputs), wp.baseAddress, Int32(inputs), 1, yp.baseAddress, Int32(outputs))
                }
            }
        }
        return y
    }

    private func layerNorm(_ x: inout [Float], rows: Int, _ weight: [Float], _ bias: [Float]) {
        let n = self.hidden
        for row in 0..<rows {
            let base = row * n
            var mean: Float = 0
            for i in 0..<n { mean += x[base + i] }
            mean /= Float(n)
            var variance: Float = 0
            for i in 0..<n {
                let d = x[base + i] - mean
                variance += d * d
            }
            variance /= Float(n)
            let scale = 1 / (variance + self.epsilon).squareRoot()
            for i in 0..<n { x[base + i] = (x[base + i] - mean) * scale * weight[i] + bias[i] }
        }
    }

    /// Mean-pooled, L2-normalised sentence vectors of token sequences (each already `[CLS] … [SEP]`).
    func encode(_ sequences: [[Int32]]) -> [[Float]] {
        let h = self.hidden
        let lengths = sequences.map { min($0.count, self.maximumPositions) }
        let rows = lengths.reduce(0, +)
        var offsets: [Int] = []
        var offset = 0
        for length in lengths {
            offsets.append(offset)
            offset += length
        }
        // Embeddings: word + position + token type 0, then LayerNorm.
        var x = [Float](repeating: 0, count: rows * h)
        for (s, sequence) in sequences.enumerated() {
            for position in 0..<lengths[s] {
                let token = Int(sequence[position])
                let row = (offsets[s] + position) * h
                for i in 0..<h {
                    x[row + i] = self.wordEmbeddings[token * h + i] + self.positionEmbeddings[position * h + i] + self.tokenTypeEmbeddings[i]
                }
            }
        }
        self.layerNorm(&x, rows: rows, self.embeddingNormWeight, self.embeddingNormBias)

        let headSize = h / self.heads
        let scale = 1 / Float(headSize).squareRoot()
        for layer in self.layers {
            let q = self.linear(x, rows: rows, inputs: h, layer.query, layer.queryBias)
            let k = self.linear(x, rows: rows, inputs: h, layer.key, layer.keyBias)
            let v = self.linear(x, rows: rows, inputs: h, layer.value, layer.valueBias)
            var context = [Float](repeating: 0, count: rows * h)
            // Attention per sequence and head. The matrices are tiny (tokens × 32): plain loops beat BLAS calls,
            // whose per-call threading overhead dominated at this size.
            q.withUnsafeBufferPointer { qp in
                k.withUnsafeBufferPointer { kp in
                    v.withUnsafeBufferPointer { vp in
                        context.withUnsafeMutableBufferPointer { cp in
                            var scores = [Float](repeating: 0, count: lengths.max() ?? 0)
                            for (s, length) in lengths.enumerated() {
                                for head in 0..<self.heads {
                                    let column = head * headSize
                                    for i in 0..<length {
                                        let qi = qp.baseAddress! + (offsets[s] + i) * h + column
                                        var maximum = -Float.infinity
                                        for j in 0..<length {
                                            let kj = kp.baseAddress! + (offsets[s] + j) * h + column
                                            var dot: Float = 0
                                            for d in 0..<headSize { dot += qi[d] * kj[d] }
                                            scores[j] = dot * scale
                                            maximum = max(maximum, scores[j])
                                        }
                                        var sum: Float = 0
                                        for j in 0..<length {
                                            scores[j] = expf(scores[j] - maximum)
                                            sum += scores[j]
                                        }
                                        let inverse = 1 / sum
                                        let ci = cp.baseAddress! + (offsets[s] + i) * h + column
                                        for j in 0..<length {
                                            let weight = scores[j] * inverse
                                            let vj = vp.baseAddress! + (offsets[s] + j) * h + column
                                            for d in 0..<headSize { ci[d] += weight * vj[d] }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            var attention = self.linear(context, rows: rows, inputs: h, layer.attentionOutput, layer.attentionOutputBias)
            for i in 0..<(rows * h) { attention[i] += x[i] }
            self.layerNorm(&attention, rows: rows, layer.attentionNormWeight, layer.attentionNormBias)
            var intermediate = self.linear(attention, rows: rows, inputs: h, layer.intermediate, layer.intermediateBias)
            intermediate.withUnsafeMutableBufferPointer { values in
                for i in 0..<values.count {
                    let value = values[i]
                    values[i] = 0.5 * value * (1 + Self.erf(value * 0.70710678118654752))
                }
            }
            var output = self.linear(intermediate, rows: rows, inputs: self.intermediateSize, layer.output, layer.outputBias)
            for i in 0..<(rows * h) { output[i] += attention[i] }
            self.layerNorm(&output, rows: rows, layer.outputNormWeight, layer.outputNormBias)
            x = output
        }

        return lengths.enumerated().map { s, length in
            var pooled = [Float](repeating: 0, count: h)
            for position in 0..<length {
                let row = (offsets[s] + position) * h
                for i in 0..<h { pooled[i] += x[row + i] }
            }
            var norm: Float = 0
            for i in 0..<h {
                pooled[i] /= Float(max(length, 1))
                norm += pooled[i] * pooled[i]
            }
            let inverse = 1 / max(norm.squareRoot(), 1e-12)
            return pooled.map { $0 * inverse }
        }
    }
}
