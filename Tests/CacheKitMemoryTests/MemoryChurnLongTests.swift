import CacheKit
import CacheKitMemory
import CacheKitTesting
import Foundation
import Testing

/// The memory layer under a long churn (`./scripts/test --long`: 10 minutes; `CACHEKIT_CHURN_SECONDS` to change):
/// four tasks setting entries of random sizes, TTLs and tags, reading, removing, and removing by tag, while the
/// clock advances so entries expire. The byte budget must hold at every sample, and the process must not grow once
/// the cache is full (no leak in the index, the eviction queues or the tag index).
@Suite("Memory layer, long churn", .serialized, .enabled(if: ProcessInfo.processInfo.environment["CACHEKIT_LONG"] != nil, "./scripts/test --long"))
struct MemoryChurnLongTests {
    /// Resident set size of this process, from /proc/self/statm.
    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        return fields.count > 1 ? (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
    }

    @Test(arguments: [MemoryCacheBackend.EvictionPolicy.s3fifo, .lru])
    func byteBudgetAndMemoryHoldOverALongChurn(policy: MemoryCacheBackend.EvictionPolicy) async throws {
        let seconds = Int(ProcessInfo.processInfo.environment["CACHEKIT_CHURN_SECONDS"] ?? "") ?? 600
        let clock = ManualClock()
        let budget = 32 << 20
        let backend = MemoryCacheBackend(configuration: .init(maximumBytes: budget, maximumEntries: 1_000_000, eviction: policy, clock: clock))
        let deadline = ContinuousClock.now + .seconds(seconds / 2)  // two policies share the time
        let operations = LockedState(0)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<4 {
                group.addTask {
                    var generator = SeededGenerator(seed: UInt64(worker + 1))
                    var i = 0
                    while ContinuousClock.now < deadline {
                        let key = CacheKey(digest: Digest256(hashing: Array("w\(worker) k\(Int.random(in: 0..<200_000, using: &generator))".utf8)), scopeID: CacheScope.default.id)
                        switch Int.random(in: 0..<10, using: &generator) {
                        case 0..<5:
                            let now = clock.now()
                            let size = Int.random(in: 64...16_384, using: &generator)
                            let entry = CacheEntry(
                                value: [UInt8](repeating: UInt8(truncatingIfNeeded: i), count: size), createdAt: now,
                                expiresAt: now + .seconds(Int64.random(in: 1...120, using: &generator)), tags: ["tag\(Int.random(in: 0..<50, using: &generator))"])
                            try await backend.set(entry, for: key)
                        case 5..<8:
                            _ = try await backend.get(key)
                        case 8:
                            _ = try await backend.remove(key)
                        default:
                            if i % 100 == 0 { _ = try await backend.removeAll(taggedWith: "tag\(Int.random(in: 0..<50, using: &generator))") }
                        }
                        i += 1
                        if i % 1000 == 0 {
                            operations.withLock { $0 += 1000 }
                            if worker == 0 { clock.advance(by: .seconds(1)) }
                        }
                        // The memory backend's calls do not suspend: yield so the sampler gets to run.
                        if i % 64 == 0 { await Task.yield() }
                    }
                }
            }
            group.addTask {
                var peak = 0, samples: [(seconds: Int, resident: Int)] = []
                let started = ContinuousClock.now
                while ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(200))
                    peak = max(peak, backend.usage.bytes)
                    let elapsed = Int((ContinuousClock.now - started).components.seconds)
                    if samples.last?.seconds != elapsed { samples.append((elapsed, Self.residentBytes())) }
                }
                // Once warm (after a fifth of the run), the resident size may wobble but must not keep growing.
                let warm = samples.filter { $0.seconds >= max(1, seconds / 10) }
                let first = warm.first?.resident ?? 0, last = warm.last?.resident ?? 0, most = warm.map(\.resident).max() ?? 0
                print("churn (\(policy)): \(operations.withLock { $0 }) operations in \(seconds / 2) s, peak \(peak) bytes of \(budget), "
                    + "resident \(first >> 20) MB when warm, \(last >> 20) MB at the end (max \(most >> 20) MB), \(backend.evictions) evictions")
                #expect(peak <= budget, "the byte budget was exceeded: \(peak) > \(budget)")
                #expect(last - first < 48 << 20, "the process grew by \((last - first) >> 20) MB after warming up: a leak")
            }
            try await group.waitForAll()
        }
        #expect(backend.usage.bytes <= budget)
        #expect(backend.evictions > 0)
    }
}
