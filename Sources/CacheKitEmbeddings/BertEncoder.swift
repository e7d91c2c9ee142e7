import CCacheKitBLAS
import CCacheKitKernels
import CacheKit
import Foundation

/// A BERT encoder (the all-MiniLM-L6-v2 family) in Swift: embeddings + LayerNorm, self-attention with the
/// attention mask, GELU feed-forward, residuals and LayerNorm per layer, then mean pooling and L2 normalisation.
/// Matrix products go through CacheKit's half-precision panel kernels (`CCacheKitKernels`) where the processor has
/// AVX2/FMA/F16C, else through OpenBLAS (`cblas_sgemm`); see `EmbeddingMatrixProducts`.
///
/// A batch is evaluated without padding: the linear layers run once over the rows of every sequence stacked
/// together, attention runs per sequence over its own tokens. That is exactly what padding plus an attention mask
/// computes, without the wasted rows.
final class BertEncoder: Sendable {
    /// A linear layer's weight, [out × in] as PyTorch stores it: packed in half-precision panels for the panel
    /// kernels, or in single precision for BLAS.
    struct Weight: Sendable {
        enum Storage: Sendable {
            case panels([UInt16])
            case single([Float])
        }
        let outputs: Int, inputs: Int
        let storage: Storage

        init(_ values: [Float], outputs: Int, inputs: Int, products: EmbeddingMatrixProducts) {
            self.outputs = outputs
            self.inputs = inputs
            switch products {
            case .halfPrecisionPanels:
                self.storage = .panels(
                    [UInt16](unsafeUninitializedCapacity: cachekit_packed_count(Int32(outputs), Int32(inputs))) { buffer, count in
                        values.withUnsafeBufferPointer { cachekit_pack_f16($0.baseAddress, Int32(outputs), Int32(inputs), buffer.baseAddress) }
                        count = buffer.count
                    })
            case .blas:
                self.storage = .single(values)
            }
        }
    }

    struct Layer: Sendable {
        /// Query, key and value weights stacked ([3·hidden × hidden]): one matrix product instead of three.
        var queryKeyValue: Weight, queryKeyValueBias: [Float]
        var attentionOutput: Weight, attentionOutputBias: [Float]
        var attentionNormWeight: [Float], attentionNormBias: [Float]
        var intermediate: Weight, intermediateBias: [Float]
        var output: Weight, outputBias: [Float]
        var outputNormWeight: [Float], outputNormBias: [Float]
    }

    /// The helper thread of the panel kernels (nil with BLAS, or when it could not be started).
    private let team: Team?

    let hidden: Int
    let heads: Int
    let intermediateSize: Int
    let maximumPositions: Int
    /// Rows of the word-embedding matrix: every token id must be below this.
    let vocabularySize: Int
    let epsilon: Float
    let wordEmbeddings: [Float]
    let positionEmbeddings: [Float]
    let tokenTypeEmbeddings: [Float]
    let embeddingNormWeight: [Float]
    let embeddingNormBias: [Float]
    let layers: [Layer]

    init(config: JSONValue, weights: SafeTensors, products: EmbeddingMatrixProducts) throws(CacheError) {
        let products = products == .halfPrecisionPanels && !EmbeddingMatrixProducts.panelKernelsAvailable ? .blas : products
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
        self.vocabularySize = vocabulary
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
                    queryKeyValue: Weight(
                        try tensor(p + "attention.self.query.weight", [hidden, hidden])
                            + tensor(p + "attention.self.key.weight", [hidden, hidden])
                            + tensor(p + "attention.self.value.weight", [hidden, hidden]),
                        outputs: 3 * hidden,
                        inputs: hidden,
                        products: products
                    ),
                    queryKeyValueBias: try tensor(p + "attention.self.query.bias", [hidden])
                        + tensor(p + "attention.self.key.bias", [hidden])
                        + tensor(p + "attention.self.value.bias", [hidden]),
                    attentionOutput: Weight(try tensor(p + "attention.output.dense.weight", [hidden, hidden]), outputs: hidden, inputs: hidden, products: products),
                    attentionOutputBias: try tensor(p + "attention.output.dense.bias", [hidden]),
                    attentionNormWeight: try tensor(p + "attention.output.LayerNorm.weight", [hidden]),
                    attentionNormBias: try tensor(p + "attention.output.LayerNorm.bias", [hidden]),
                    intermediate: Weight(try tensor(p + "intermediate.dense.weight", [intermediate, hidden]), outputs: intermediate, inputs: hidden, products: products),
                    intermediateBias: try tensor(p + "intermediate.dense.bias", [intermediate]),
                    output: Weight(try tensor(p + "output.dense.weight", [hidden, intermediate]), outputs: hidden, inputs: intermediate, products: products),
                    outputBias: try tensor(p + "output.dense.bias", [hidden]),
                    outputNormWeight: try tensor(p + "output.LayerNorm.weight", [hidden]), outputNormBias: try tensor(p + "output.LayerNorm.bias", [hidden])
                )
            )
        }
        self.layers = layers
        self.team = products == .halfPrecisionPanels ? Team() : nil
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

    /// y[rows × out] = x[rows × in] · Wᵀ + b, with W stored [out × in] as PyTorch does. `team`: the helper thread
    /// when this pass holds it.
    private func linear(
        _ x: UnsafePointer<Float>, rows: Int, _ weight: Weight, _ bias: [Float], into y: UnsafeMutablePointer<Float>, team: OpaquePointer?
    ) {
        let outputs = weight.outputs, inputs = weight.inputs
        switch weight.storage {
        case .panels(let packed):
            packed.withUnsafeBufferPointer { packed in
                bias.withUnsafeBufferPointer { b in
                    cachekit_gemm_f16_team(
                        team, Int32(rows), Int32(outputs), Int32(inputs), x, Int32(inputs), packed.baseAddress, b.baseAddress, y, Int32(outputs))
                }
            }
        case .single(let values):
            bias.withUnsafeBufferPointer { b in
                for row in 0..<rows { (y + row * outputs).update(from: b.baseAddress!, count: outputs) }
            }
            values.withUnsafeBufferPointer { wp in
                cachekit_sgemm_nt(Int32(rows), Int32(outputs), Int32(inputs), 1, x, Int32(inputs), wp.baseAddress, Int32(inputs), 1, y, Int32(outputs))
            }
        }
    }

    /// LayerNorm over each row of `x` (in place), after adding `residual` when given.
    private func addAndNormalize(_ x: UnsafeMutablePointer<Float>, residual: UnsafePointer<Float>?, rows: Int, _ weight: [Float], _ bias: [Float]) {
        let n = self.hidden
        weight.withUnsafeBufferPointer { w in
            bias.withUnsafeBufferPointer { b in
                for row in 0..<rows {
                    let v = x + row * n
                    if let residual {
                        let r = residual + row * n
                        for i in 0..<n { v[i] += r[i] }
                    }
                    let mean = Vector.sum(v, n) / Float(n)
                    var variance: Float = 0
                    for i in 0..<n { v[i] -= mean }
                    variance = Vector.dot(v, v, n) / Float(n)
                    let scale = 1 / (variance + self.epsilon).squareRoot()
                    for i in 0..<n { v[i] = v[i] * scale * w[i] + b[i] }
                }
            }
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
        // Working memory for the whole pass, allocated once: activations, stacked q|k|v, attention context,
        // the feed-forward's intermediate rows, and one row of attention scores.
        let longest = lengths.max() ?? 0
        let xCount = rows * h, qkvCount = rows * 3 * h, intermediateCount = rows * self.intermediateSize
        let scoreCount = (longest + 15) / 16 * 16
        let memory = UnsafeMutablePointer<Float>.allocate(capacity: 3 * xCount + qkvCount + intermediateCount + scoreCount)
        defer { memory.deallocate() }
        let x = memory, attention = x + xCount, context = attention + xCount
        let qkv = context + xCount, intermediate = qkv + qkvCount, scores = intermediate + intermediateCount

        // Embeddings: word + position + token type 0, then LayerNorm.
        self.wordEmbeddings.withUnsafeBufferPointer { words in
            self.positionEmbeddings.withUnsafeBufferPointer { positions in
                self.tokenTypeEmbeddings.withUnsafeBufferPointer { types in
                    for (s, sequence) in sequences.enumerated() {
                        for position in 0..<lengths[s] {
                            let row = x + (offsets[s] + position) * h
                            let word = words.baseAddress! + Int(sequence[position]) * h
                            let place = positions.baseAddress! + position * h
                            for i in 0..<h { row[i] = word[i] + place[i] + types[i] }
                        }
                    }
                }
            }
        }
        self.addAndNormalize(x, residual: nil, rows: rows, self.embeddingNormWeight, self.embeddingNormBias)

        // The helper thread, unless another pass has it (that pass then keeps the second core busy anyway).
        let team = self.team?.tryAcquire()
        defer { if team != nil { self.team?.release() } }

        let headSize = h / self.heads
        let scale = 1 / Float(headSize).squareRoot()
        let stride = 3 * h  // q, k and v of a token sit side by side in one row of `qkv`
        for layer in self.layers {
            self.linear(x, rows: rows, layer.queryKeyValue, layer.queryKeyValueBias, into: qkv, team: team)
            context.update(repeating: 0, count: xCount)
            // Attention per sequence and head. The matrices are tiny (tokens × head size): vector loops beat BLAS
            // calls, whose per-call overhead dominated at this size.
            for (s, length) in lengths.enumerated() {
                let base = offsets[s]
                for head in 0..<self.heads {
                    let column = head * headSize
                    for i in 0..<length {
                        let qi = qkv + (base + i) * stride + column
                        var maximum = -Float.infinity
                        for j in 0..<length {
                            let kj = qkv + (base + j) * stride + h + column
                            let score = Vector.dot(qi, kj, headSize) * scale
                            scores[j] = score
                            maximum = max(maximum, score)
                        }
                        let sum = Vector.expShifted(scores, length, by: maximum)
                        let inverse = 1 / sum
                        let ci = context + (base + i) * h + column
                        for j in 0..<length {
                            Vector.addScaled(ci, qkv + (base + j) * stride + 2 * h + column, scores[j] * inverse, headSize)
                        }
                    }
                }
            }
            self.linear(context, rows: rows, layer.attentionOutput, layer.attentionOutputBias, into: attention, team: team)
            self.addAndNormalize(attention, residual: x, rows: rows, layer.attentionNormWeight, layer.attentionNormBias)
            self.linear(attention, rows: rows, layer.intermediate, layer.intermediateBias, into: intermediate, team: team)
            Vector.gelu(intermediate, intermediateCount)
            self.linear(intermediate, rows: rows, layer.output, layer.outputBias, into: x, team: team)
            self.addAndNormalize(x, residual: attention, rows: rows, layer.outputNormWeight, layer.outputNormBias)
        }

        return lengths.enumerated().map { s, length in
            var pooled = [Float](repeating: 0, count: h)
            for position in 0..<length {
                let row = x + (offsets[s] + position) * h
                for i in 0..<h { pooled[i] += row[i] }
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

/// How the encoder computes its matrix products.
public enum EmbeddingMatrixProducts: Sendable, Hashable {
    /// CacheKit's own kernels (AVX2, FMA and F16C): weights packed once in half precision (half the memory, and
    /// the panels of a small model stay in the last-level cache), products accumulated in single precision, split
    /// with one helper thread. The default where the processor has those instructions; vectors match the
    /// single-precision model to a cosine above 0.99999.
    case halfPrecisionPanels
    /// OpenBLAS `sgemm` on the single-precision weights. The fallback on other processors.
    case blas

    /// Whether this processor can run the panel kernels (checked once per process).
    public static let panelKernelsAvailable = cachekit_kernels_available() != 0

    /// `.halfPrecisionPanels` where available, else `.blas`.
    public static var automatic: EmbeddingMatrixProducts { panelKernelsAvailable ? .halfPrecisionPanels : .blas }
}

/// Owns the kernels' helper thread (`cachekit_team`): one encoder pass at a time may use it.
private final class Team: @unchecked Sendable {
    /// Spin this long between products before sleeping: the gaps inside one pass are tens of microseconds.
    static let spinMicroseconds: Int32 = 200
    private let pointer: OpaquePointer

    init?() {
        guard let pointer = cachekit_team_create(Self.spinMicroseconds) else { return nil }
        self.pointer = pointer
    }

    func tryAcquire() -> OpaquePointer? { cachekit_team_try_acquire(self.pointer) != 0 ? self.pointer : nil }
    func release() { cachekit_team_release(self.pointer) }
    deinit { cachekit_team_destroy(self.pointer) }
}

/// Vector kernels of the encoder on `SIMD16<Float>` (16 lanes, lowered to whatever vector width the target has),
/// with scalar tails.
enum Vector {
    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
    }

    @inline(__always)
    static func store(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
    }

    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var accumulator = SIMD16<Float>()
        var i = 0
        while i + 16 <= n {
            accumulator += load(a + i) * load(b + i)  // not addProduct: without FMA in the target that calls fmaf per lane
            i += 16
        }
        var total = accumulator.sum()
        while i < n {
            total += a[i] * b[i]
            i += 1
        }
        return total
    }

    static func sum(_ a: UnsafePointer<Float>, _ n: Int) -> Float {
        var accumulator = SIMD16<Float>()
        var i = 0
        while i + 16 <= n {
            accumulator += load(a + i)
            i += 16
        }
        var total = accumulator.sum()
        while i < n {
            total += a[i]
            i += 1
        }
        return total
    }

    /// y += a · x
    static func addScaled(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ a: Float, _ n: Int) {
        var i = 0
        while i + 16 <= n {
            store(load(y + i) + SIMD16(repeating: a) * load(x + i), y + i)
            i += 16
        }
        while i < n {
            y[i] += a * x[i]
            i += 1
        }
    }

    /// x[i] = exp(x[i] - shift) for the first `n` values; returns their sum. `x` has room for a multiple of 8.
    static func expShifted(_ x: UnsafeMutablePointer<Float>, _ n: Int, by shift: Float) -> Float {
        var total: Float = 0
        var i = 0
        while i < n {
            let v = exp(UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self) - SIMD8(repeating: shift))
            let count = min(8, n - i)
            if count == 8 {
                UnsafeMutableRawPointer(x + i).storeBytes(of: v, as: SIMD8<Float>.self)
                total += v.sum()
            } else {
                for lane in 0..<count {
                    x[i + lane] = v[lane]
                    total += v[lane]
                }
            }
            i += 8
        }
        return total
    }

    /// The exact GELU, x · Φ(x) = ½x(1 + erf(x/√2)), in place.
    static func gelu(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n {
            let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
            let g = 0.5 * v * (1 + erf(v * 0.70710678118654752))
            UnsafeMutableRawPointer(x + i).storeBytes(of: g, as: SIMD8<Float>.self)
            i += 8
        }
        while i < n {
            x[i] = 0.5 * x[i] * (1 + BertEncoder.erf(x[i] * 0.70710678118654752))
            i += 1
        }
    }

    /// erf to within 1.5e-7 (Abramowitz & Stegun 7.1.26), eight lanes at a time. Sign handling with bit masks:
    /// comparisons and lane selects do not lower to vector code everywhere.
    @inline(__always)
    static func erf(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let bits = unsafeBitCast(x, to: SIMD8<UInt32>.self)
        let a = unsafeBitCast(bits & 0x7FFF_FFFF, to: SIMD8<Float>.self)
        let t: SIMD8<Float> = 1 / (1 + 0.3275911 * a)
        var polynomial: SIMD8<Float> = 1.061405429 * t - 1.453152027
        polynomial = polynomial * t + 1.421413741
        polynomial = polynomial * t - 0.284496736
        polynomial = polynomial * t + 0.254829592
        polynomial = polynomial * t
        let magnitude: SIMD8<Float> = 1 - polynomial * exp(-(a * a))
        return unsafeBitCast(unsafeBitCast(magnitude, to: SIMD8<UInt32>.self) | (bits & 0x8000_0000), to: SIMD8<Float>.self)
    }

    /// e^x for x ≤ 0 (softmax after subtracting the maximum, and erf's e^(-a²)), relative error below 2e-7:
    /// Cody–Waite reduction to [-ln2/2, ln2/2] and a degree-6 polynomial. Inputs below -87.3 give about 1e-38.
    @inline(__always)
    static func exp(_ x: SIMD8<Float>) -> SIMD8<Float> {
        // Below -87.3, 2^n would leave the normal range: clamp (e^-87.3 ≈ 1e-38 is as good as 0 here).
        let x = pointwiseMax(x, SIMD8(repeating: -87.3))
        // Round x·log2(e) to the nearest integer with the 1.5·2^23 trick (no rounding instruction needed).
        let magic = SIMD8<Float>(repeating: 12_582_912)
        let shifted = x * 1.442695040888963 + magic
        let n = shifted - magic
        let r = x - n * 0.693145751953125 - n * 1.428606765330187e-6
        var p = SIMD8<Float>(repeating: 1.0 / 720)
        p = p * r + 1.0 / 120
        p = p * r + 1.0 / 24
        p = p * r + 1.0 / 6
        p = p * r + 0.5
        p = p * r + 1
        p = p * r + 1
        // 2^n from the integer in the low mantissa bits of `shifted`.
        let integer = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000
        return p * unsafeBitCast((integer &+ 127) &<< 23, to: SIMD8<Float>.self)
    }
}
