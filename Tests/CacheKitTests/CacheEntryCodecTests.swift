import CacheKit
import CacheKitTesting
import Testing

@Suite("CacheEntry codec")
struct CacheEntryCodecTests {
    let entry = CacheEntry(
        value: Array(#"{"answer":"Paris"}"#.utf8),
        createdAt: CacheTime(millisecondsSinceEpoch: 1_700_000_000_000),
        expiresAt: CacheTime(millisecondsSinceEpoch: 1_700_000_360_000),
        staleUntil: CacheTime(millisecondsSinceEpoch: 1_700_000_420_000),
        tags: ["product:123", "faq", "ünï ✓", ""],
        usage: TokenUsage(promptTokens: 1200, completionTokens: 300, cachedPromptTokens: 1024, reasoningTokens: 17),
        model: "gpt-4o-mini",
        cost: 0.00042,
        queryText: "capital of France?",
        embeddingModel: "all-MiniLM-L6-v2"
    )

    @Test func roundTrip() throws {
        #expect(try CacheEntryCodec.decode(CacheEntryCodec.encode(self.entry)) == self.entry)
        let minimal = CacheEntry(value: [], createdAt: .distantPast, expiresAt: .distantFuture)
        #expect(try CacheEntryCodec.decode(CacheEntryCodec.encode(minimal)) == minimal)
    }

    @Test func encodedCountIsExactAndAppendingLeavesThePrefixAlone() throws {
        let big = CacheEntry(
            value: [UInt8](repeating: 7, count: 20_000), createdAt: .distantPast, expiresAt: .distantFuture,
            tags: (0..<200).map { "tag-\($0)-" + String(repeating: "é", count: $0) },
            usage: TokenUsage(promptTokens: 1 << 32, completionTokens: 0, cachedPromptTokens: 127, reasoningTokens: 128)
        )
        let minimal = CacheEntry(value: [], createdAt: .distantPast, expiresAt: .distantFuture)
        for entry in [self.entry, big, minimal] {
            let alone = CacheEntryCodec.encode(entry)
            #expect(CacheEntryCodec.encodedCount(entry) == alone.count)
            var framed: [UInt8] = Array("$prefix\r\n".utf8)
            CacheEntryCodec.encode(entry, appendingTo: &framed)
            #expect(Array(framed.dropFirst(9)) == alone, "the checksum must cover only the appended entry")
            #expect(try CacheEntryCodec.decode(framed.dropFirst(9)) == entry)
        }
    }

    /// Found by `scripts/fuzz` (FuzzEntry): a checksum-valid entry whose token counts do not fit an Int decoded to
    /// negative counts that did not survive a round trip. Such bytes are corruption now.
    @Test func outOfRangeCountsAndCostsAreCorruption() throws {
        let hex = "43ffffffffffffff250000000000000606060606060606060606060606060606060606060606060606060606060606060606060606060606007e00000000000000000000000000ffff00000000ffff"
        let fuzzed = stride(from: 0, to: hex.count, by: 2).map { UInt8(hex.dropFirst($0).prefix(2), radix: 16)! }
        let sealed = CacheEntryCodec.sealed([0x43, 0x4B, 0x45, 0x01] + fuzzed.dropFirst())
        #expect(throws: CacheError.self) { try CacheEntryCodec.decode(sealed) }
        // A NaN or negative cost in an otherwise intact entry is refused as well.
        for cost in [Double.nan, -1, .infinity] {
            var entry = self.entry
            entry.cost = cost
            do {
                _ = try CacheEntryCodec.decode(CacheEntryCodec.encode(entry))
                Issue.record("cost \(cost) was accepted")
            } catch {
                #expect(error.code == .corruptEntry)
            }
        }
    }

    @Test func everySingleFlippedByteIsDetected() {
        let bytes = CacheEntryCodec.encode(self.entry)
        for index in bytes.indices {
            for mask: UInt8 in [0x01, 0x80] {
                var damaged = bytes
                damaged[index] ^= mask
                do {
                    _ = try CacheEntryCodec.decode(damaged)
                    Issue.record("a flipped bit at byte \(index) went undetected")
                } catch {
                    #expect(error.code == .corruptEntry)
                }
            }
        }
    }

    @Test func everyTruncationIsDetected() {
        let bytes = CacheEntryCodec.encode(self.entry)
        for length in 0..<bytes.count {
            #expect(throws: CacheError.self) { try CacheEntryCodec.decode(bytes.prefix(length)) }
        }
        #expect(throws: CacheError.self) { try CacheEntryCodec.decode(bytes + [0]) }
    }

    @Test func randomGarbageNeverCrashes() {
        var generator = SeededGenerator(seed: 7)
        for _ in 0..<2000 {
            let length = Int.random(in: 0..<200, using: &generator)
            var bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if length > 5, Bool.random(using: &generator) { bytes.replaceSubrange(0..<4, with: [0x43, 0x4B, 0x45, 1]) }
            #expect(throws: CacheError.self) { try CacheEntryCodec.decode(bytes) }
        }
    }

    @Test func cappingNeverExtendsLife() {
        let now = CacheTime(millisecondsSinceEpoch: 1_700_000_000_000)
        let capped = self.entry.capped(by: .seconds(60), now: now)
        #expect(capped.expiresAt == now + .seconds(60))
        #expect(capped.staleUntil == now + .seconds(60))
        let long = self.entry.capped(by: .seconds(86_400), now: now)
        #expect(long.expiresAt == self.entry.expiresAt)
        #expect(long.staleUntil == self.entry.staleUntil)
    }
}

/// Values read from a cache entry are checked before arithmetic: a CRC-valid entry written by a broken or hostile
/// writer is corruption (a miss, deleted and counted), never a trap in the reader.
@Suite("Hostile cache entries")
struct HostileCacheEntryTests {
    /// Times outside 1970...9999 decoded fine and then overflowed `now - createdAt` (the entry's age).
    @Test(arguments: [Int64.min, -1, Int64.max, CacheTime.distantFuture.millisecondsSinceEpoch + 1])
    func anEntryWhoseTimesDoNotFitIsCorrupt(_ created: Int64) throws {
        let entry = CacheEntry(
            value: Array("x".utf8), createdAt: CacheTime(millisecondsSinceEpoch: created),
            expiresAt: CacheTime(millisecondsSinceEpoch: 1_700_000_000_000))
        #expect { try CacheEntryCodec.decode(CacheEntryCodec.encode(entry)) } throws: {
            ($0 as? CacheError)?.code == .corruptEntry
        }
    }

    /// Time arithmetic saturates instead of trapping, whatever a clock or a third-party backend hands over.
    @Test func timeDifferencesSaturate() {
        let late = CacheTime(millisecondsSinceEpoch: .max), early = CacheTime(millisecondsSinceEpoch: .min)
        #expect(late - early == .milliseconds(Int64.max))
        #expect(early - late == .milliseconds(Int64.min))
        #expect(CacheEntry(value: [], createdAt: early, expiresAt: late).age(at: late) > .zero)
    }

    /// Token counts: a varint up to Int.max decoded, and `totalTokens` of two such counts trapped. Counts are now
    /// bounded in the codec and when read from a response, and the sum saturates.
    @Test func tokenCountsAreBoundedAndSumsSaturate() throws {
        let absurd = CacheEntry(
            value: [], createdAt: .distantPast, expiresAt: .distantFuture,
            usage: TokenUsage(promptTokens: .max, completionTokens: .max))
        #expect { try CacheEntryCodec.decode(CacheEntryCodec.encode(absurd)) } throws: { ($0 as? CacheError)?.code == .corruptEntry }
        #expect(TokenUsage(promptTokens: .max, completionTokens: 1).totalTokens == .max)
        let usage = try #require(TokenUsage(json: ["prompt_tokens": 9e15, "completion_tokens": -4, "prompt_tokens_details": ["cached_tokens": 1e300]]))
        #expect(usage.promptTokens == TokenUsage.maximumCount && usage.completionTokens == 0 && usage.cachedPromptTokens == 0)
    }
}
