import CCacheKitKernels
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

    /// Packing rounds to the nearest half exactly as the hardware conversion does (Swift's Float16), including
    /// ties, subnormals, overflow to infinity, NaN and signed zero.
    @Test func packingRoundsLikeFloat16() {
        var values: [Float] = [0, -0, 1, -1, 65504, 65519.99, 65520, 1e6, -1e6, .infinity, -.infinity, 6.1035156e-5, 6.0e-5, 5.96e-8, 2.98e-8, 2.99e-8, 1e-9]
        values += (0..<4096).map { Float(bitPattern: UInt32($0) &* 1_048_573 &+ 0x3000_0000) }  // spread over exponents and mantissas
        values += (0..<4096).map { _ in Float.random(in: -0.2...0.2) }
        values += (0..<256).map { Float(bitPattern: 0x3880_0000 - UInt32($0) * 4099) }  // just below the smallest normal half
        var packed = [UInt16](repeating: 0, count: 16)
        for value in values {
            withUnsafePointer(to: value) { cachekit_pack_f16($0, 1, 1, &packed) }
            #expect(packed[0] == Float16(value).bitPattern, "\(value) (\(String(value.bitPattern, radix: 16)))")
            #expect(packed[1...].allSatisfy { $0 == 0 }, "the partial panel is not zero-filled")
        }
        var nan: Float = .nan
        withUnsafePointer(to: &nan) { cachekit_pack_f16($0, 1, 1, &packed) }
        #expect(Float16(bitPattern: packed[0]).isNaN)
    }

    /// The panel product against a plain triple loop on the same half-precision weights, for every row count of
    /// the tile tails, output counts that are not a multiple of the panel width, and with the helper thread.
    @Test(.enabled(if: EmbeddingMatrixProducts.panelKernelsAvailable, "needs AVX2, FMA and F16C"))
    func panelProductMatchesAPlainProduct() throws {
        let team = try #require(cachekit_team_create(50))
        defer { cachekit_team_destroy(team) }
        #expect(cachekit_team_try_acquire(team) == 1)
        #expect(cachekit_team_try_acquire(team) == 0, "a held team was taken twice")
        defer { cachekit_team_release(team) }
        for (m, n, k) in [(1, 16, 8), (5, 40, 33), (6, 16, 64), (7, 47, 20), (13, 64, 96), (17, 1, 5), (23, 130, 48)] {
            let x = (0..<m * k).map { _ in Float.random(in: -2...2) }
            let w = (0..<n * k).map { _ in Float.random(in: -0.5...0.5) }
            let bias = (0..<n).map { _ in Float.random(in: -1...1) }
            var packed = [UInt16](repeating: 0xFFFF, count: cachekit_packed_count(Int32(n), Int32(k)))
            cachekit_pack_f16(w, Int32(n), Int32(k), &packed)
            var expected = [Float](repeating: 0, count: m * n)
            for row in 0..<m {
                for column in 0..<n {
                    var sum = Double(bias[column])
                    for i in 0..<k { sum += Double(x[row * k + i]) * Double(Float(Float16(w[column * k + i]))) }
                    expected[row * n + column] = Float(sum)
                }
            }
            for useTeam in [false, true] {
                // One spare row and column of sentinels around y: nothing outside [m × n] may be written.
                let stride = n + 1
                var y = [Float](repeating: 12345, count: (m + 1) * stride)
                cachekit_gemm_f16_team(useTeam ? team : nil, Int32(m), Int32(n), Int32(k), x, Int32(k), packed, bias, &y, Int32(stride))
                for row in 0..<m {
                    for column in 0..<n {
                        let got = y[row * stride + column], want = expected[row * n + column]
                        #expect(abs(got - want) <= 1e-4 * max(1, abs(want)), "m \(m) n \(n) k \(k) [\(row), \(column)]: \(got) vs \(want)")
                    }
                    #expect(y[row * stride + n] == 12345, "column past n written (m \(m) n \(n))")
                }
                #expect(y[(m * stride)...].allSatisfy { $0 == 12345 }, "row past m written (m \(m) n \(n))")
            }
        }
    }
}
