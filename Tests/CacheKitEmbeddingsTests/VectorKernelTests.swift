@testable import CacheKitEmbeddings
import Foundation
import Testing

/// The encoder's vector exp and erf against libm, over the ranges they are used on (softmax after subtracting the
/// maximum: x ≤ 0; GELU: erf of any activation).
@Suite("Encoder vector kernels")
struct VectorKernelTests {
    @Test func expMatchesLibmForNonPositiveInputs() {
        var worst: Float = 0
        var x: Float = -100
        while x <= 0 {
            let lanes = SIMD8<Float>((0..<8).map { x - Float($0) * 0.001 })
            let got = Vector.exp(lanes)
            for lane in 0..<8 {
                let expected = Foundation.exp(lanes[lane])
                if lanes[lane] >= -87 {
                    worst = max(worst, abs(got[lane] - expected) / expected)
                } else {
                    #expect(got[lane] < 1e-37 && got[lane] >= 0, "exp(\(lanes[lane])) = \(got[lane])")
                }
            }
            x += 0.0173
        }
        #expect(worst < 5e-7, "worst relative error \(worst)")
    }

    @Test func erfAndGeluMatchLibm() {
        var worst: Float = 0
        var x: Float = -8
        while x <= 8 {
            let lanes = SIMD8<Float>((0..<8).map { x + Float($0) * 0.0007 })
            let got = Vector.erf(lanes)
            for lane in 0..<8 { worst = max(worst, abs(got[lane] - Foundation.erf(lanes[lane]))) }
            x += 0.0091
        }
        #expect(worst < 1e-6, "worst absolute error \(worst)")  // A&S 7.1.26 is 1.5e-7 in exact arithmetic; float rounding adds the rest

        // GELU over a buffer whose length is not a multiple of the vector width (the scalar tail runs too).
        var values: [Float] = (0..<37).map { Float($0) * 0.37 - 6 }
        let expected: [Float] = values.map { (v: Float) -> Float in 0.5 * v * (1 + Foundation.erf(v / Float(2).squareRoot())) }
        values.withUnsafeMutableBufferPointer { Vector.gelu($0.baseAddress!, $0.count) }
        for (got, want) in zip(values, expected) { #expect(abs(got - want) < 1e-5, "gelu: \(got) vs \(want)") }
    }

    @Test func dotSumAndAddScaledHandleTails() {
        for n in [0, 1, 15, 16, 17, 32, 33] {
            let a = (0..<n).map { Float($0) * 0.5 - 3 }
            let b = (0..<n).map { Float(n - $0) * 0.25 }
            let dot = a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { Vector.dot(pa.baseAddress!, $0.baseAddress!, n) } }
            #expect(abs(dot - zip(a, b).map(*).reduce(0, +)) < 1e-3)
            let sum = a.withUnsafeBufferPointer { Vector.sum($0.baseAddress!, n) }
            #expect(abs(sum - a.reduce(0, +)) < 1e-3)
            var y = b
            y.withUnsafeMutableBufferPointer { py in a.withUnsafeBufferPointer { Vector.addScaled(py.baseAddress!, $0.baseAddress!, 2, n) } }
            #expect(y == zip(a, b).map { $1 + 2 * $0 })
        }
    }
}
