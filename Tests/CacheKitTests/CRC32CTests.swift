@testable import CacheKit
import CacheKitTesting
import Testing

@Suite("CRC-32C")
struct CRC32CTests {
    /// The table was built lazily by whichever thread came first ("a race rebuilds equal data"), a data race in C
    /// that ThreadSanitizer reports; it is built once now (pthread_once). Run first in its own process under TSan
    /// (`./scripts/test --long`), this is the race.
    @Test func theFirstChecksumsFromManyThreadsAtOnceAgree() async {
        let bytes = Array("123456789".utf8)
        let results = await withTaskGroup(of: UInt32.self) { group in
            for _ in 0..<8 { group.addTask { bytes.withUnsafeBytes { CRC32C.portableChecksum($0) } } }
            var all: [UInt32] = []
            for await value in group { all.append(value) }
            return all
        }
        #expect(results.allSatisfy { $0 == 0xE306_9283 })
    }

    @Test func knownVectors() {
        // RFC 3720 B.4 and the usual check value.
        let check = Array("123456789".utf8)
        #expect(check.withUnsafeBytes { CRC32C.checksum($0) } == 0xE306_9283)
        #expect(check.withUnsafeBytes { CRC32C.portableChecksum($0) } == 0xE306_9283)
        let zeros = [UInt8](repeating: 0, count: 32)
        #expect(zeros.withUnsafeBytes { CRC32C.checksum($0) } == 0x8A91_36AA)
        let ones = [UInt8](repeating: 0xFF, count: 32)
        #expect(ones.withUnsafeBytes { CRC32C.checksum($0) } == 0x62A8_AB43)
        let ascending = (0..<32).map { UInt8($0) }
        #expect(ascending.withUnsafeBytes { CRC32C.checksum($0) } == 0x46DD_794E)
    }

    @Test func instructionAndTableAgreeOnEveryLengthAndAlignment() {
        var generator = SeededGenerator(seed: 32)
        let bytes = (0..<4_200).map { _ in UInt8.random(in: 0...255, using: &generator) }
        bytes.withUnsafeBytes { all in
            for offset in 0..<8 {
                for length in Array(0..<80) + [1_000, 2_048, 4_000] {
                    let slice = UnsafeRawBufferPointer(rebasing: all[offset..<(offset + length)])
                    #expect(CRC32C.checksum(slice) == CRC32C.portableChecksum(slice))
                }
            }
        }
    }
}
