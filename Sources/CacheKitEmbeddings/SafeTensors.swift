public import CacheKit
public import Foundation

/// A `.safetensors` file: an 8-byte little-endian header length, a JSON header naming each tensor's dtype, shape
/// and byte range, then the data. Tensors are read as `Float` (F32, and F16 converted).
///
/// Internal to the model loader; the `Fuzzing` SPI exposes the parser to the libFuzzer target in `Fuzz/`.
@_spi(Fuzzing) public struct SafeTensors {
    struct Tensor {
        var shape: [Int]
        var values: [Float]
    }

    private let data: Data
    private let dataStart: Int
    private let entries: [String: (dtype: String, shape: [Int], start: Int, end: Int)]

    /// Parses the header of `data` and checks every tensor's byte range against its dtype and shape.
    ///
    /// - Throws: `CacheError` `.invalidConfiguration` naming what is wrong with the file.
    public init(data: Data, name: String = "model.safetensors") throws(CacheError) {
        func invalid(_ reason: String) -> CacheError { CacheError(.invalidConfiguration, "\(name): \(reason)", backend: "embeddings") }
        guard data.count >= 8 else { throw invalid("too short for a safetensors header") }
        let headerLength = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard headerLength > 1, headerLength <= 100_000_000, 8 + Int(headerLength) <= data.count else {
            throw invalid("header length \(headerLength) does not fit the file")
        }
        let header: JSONValue
        do {
            header = try JSONValue(parsing: data[8..<(8 + Int(headerLength))])
        } catch {
            throw invalid("header is not JSON (\(error.description))")
        }
        guard let members = header.objectValue else { throw invalid("header is not a JSON object") }
        let payload = data.count - 8 - Int(headerLength)
        var entries: [String: (String, [Int], Int, Int)] = [:]
        for (tensorName, info) in members where tensorName != "__metadata__" {
            guard let dtype = info["dtype"]?.stringValue, let dimensions = info["shape"]?.arrayValue,
                let offsets = info["data_offsets"]?.arrayValue?.compactMap(\.intValue), offsets.count == 2
            else { throw invalid("tensor \(tensorName) has no dtype, shape or data_offsets") }
            // Every dimension must be an integer that fits (a dropped one would make a different shape).
            let shape = dimensions.compactMap(\.intValue)
            guard shape.count == dimensions.count else { throw invalid("tensor \(tensorName) has a shape dimension that is not an integer") }
            guard offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= payload else {
                throw invalid("tensor \(tensorName) lies outside the file")
            }
            guard shape.allSatisfy({ $0 >= 0 }) else { throw invalid("tensor \(tensorName) has a negative dimension") }
            let elementSize: Int
            switch dtype {
            case "F32", "I32": elementSize = 4
            case "F16", "BF16": elementSize = 2
            case "I64", "F64": elementSize = 8
            default: throw invalid("tensor \(tensorName) has unsupported dtype \(dtype)")
            }
            let (count, overflow) = shape.reduce((1, false)) { partial, dimension in
                let (product, o) = partial.0.multipliedReportingOverflow(by: dimension)
                return (product, partial.1 || o)
            }
            // Both products are checked: a shape whose element count fits an Int can still overflow once
            // multiplied by the element size (found by review: that trapped before the size comparison).
            let (byteCount, bytesOverflow) = count.multipliedReportingOverflow(by: elementSize)
            guard !overflow, !bytesOverflow, byteCount == offsets[1] - offsets[0] else {
                throw invalid("tensor \(tensorName): shape \(shape) does not match its \(offsets[1] - offsets[0]) bytes")
            }
            entries[tensorName] = (dtype, shape, offsets[0], offsets[1])
        }
        self.data = data
        self.dataStart = 8 + Int(headerLength)
        self.entries = entries
    }

    public var names: [String] { Array(self.entries.keys) }

    /// The shape the header gives `name`, if it names that tensor.
    public func shape(of name: String) -> [Int]? { self.entries[name]?.shape }

    /// The tensor named `name` as floats (F32, F16, BF16 and F64 are converted), checked against `shape`.
    ///
    /// - Throws: `CacheError` `.invalidConfiguration` when there is no such tensor, its shape differs, or it holds
    ///   integers (I32, I64: BERT exports carry `position_ids` that way; they are not weights).
    public func tensor(_ name: String, shape expected: [Int]) throws(CacheError) -> [Float] {
        guard let entry = self.entries[name] else {
            throw CacheError(.invalidConfiguration, "model.safetensors has no tensor \(name)", backend: "embeddings")
        }
        guard entry.shape == expected else {
            throw CacheError(.invalidConfiguration, "tensor \(name) has shape \(entry.shape), expected \(expected)", backend: "embeddings")
        }
        guard ["F32", "F16", "BF16", "F64"].contains(entry.dtype) else {
            throw CacheError(.invalidConfiguration, "tensor \(name) holds \(entry.dtype) integers, not floating-point weights", backend: "embeddings")
        }
        let start = self.dataStart + entry.start
        let end = self.dataStart + entry.end
        return self.data.withUnsafeBytes { raw -> [Float] in
            let bytes = UnsafeRawBufferPointer(rebasing: raw[start..<end])
            switch entry.dtype {
            case "F32":
                return (0..<(bytes.count / 4)).map { Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
            case "F16":
                return (0..<(bytes.count / 2)).map { Float(Float16(bitPattern: UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)))) }
            case "BF16":
                return (0..<(bytes.count / 2)).map { Float(bitPattern: UInt32(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self))) << 16) }
            default:  // F64, checked above
                return (0..<(bytes.count / 8)).map { Float(Double(bitPattern: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self)))) }
            }
        }
    }
}
