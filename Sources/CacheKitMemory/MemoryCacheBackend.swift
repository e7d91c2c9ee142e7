public import CacheKit
import ServiceLifecycle

/// The in-process L1: a bounded, lock-guarded map with TTLs, tags and an admission/eviction policy.
///
/// - Bounds: both `maximumBytes` (the entries' `approximateSize` plus a fixed per-entry overhead) and
///   `maximumEntries` hold after every `set`: the backend evicts before it returns.
/// - Eviction: S3-FIFO by default (a small probationary FIFO, a main FIFO with reinsertion, and a ghost list of
///   recently evicted keys), which keeps one-hit wonders out of the main queue and beats LRU's hit rate on skewed
///   workloads; LRU is selectable.
/// - Expiry: an entry is never returned past its `staleUntil`; `run()` sweeps expired entries in small batches.
/// - Threading: every operation takes one `pthread` mutex briefly; there is no actor hop. A hit under S3-FIFO only
///   bumps a counter (no list surgery).
public final class MemoryCacheBackend: CacheBackend {
    public var capabilities: CacheCapabilities { [.contentRemoval, .localClearing, .backgroundWork] }
    /// The eviction policy.
    public struct EvictionPolicy: Sendable, Hashable, CustomStringConvertible {
        fileprivate enum Base: Sendable, Hashable { case s3fifo, lru }
        fileprivate let base: Base

        /// S3-FIFO (Yang et al., SOSP 2023). The default.
        public static let s3fifo = EvictionPolicy(base: .s3fifo)
        /// Least recently used.
        public static let lru = EvictionPolicy(base: .lru)

        public var description: String { self.base == .s3fifo ? "s3fifo" : "lru" }
    }

    /// Configuration with documented defaults.
    public struct Configuration: Sendable {
        /// The byte budget. Default 64 MiB.
        public var maximumBytes: Int
        /// The entry cap. Default 100,000.
        public var maximumEntries: Int
        /// The eviction policy. Default `.s3fifo`.
        public var eviction: EvictionPolicy
        /// How often `run()` sweeps expired entries. Default 30 s.
        public var sweepInterval: Duration
        /// The clock TTLs are measured by. Default `SystemCacheClock()`.
        public var clock: any CacheClock
        /// The name in logs and metrics. Default `memory`.
        public var name: String

        public init(
            maximumBytes: Int = 64 << 20,
            maximumEntries: Int = 100_000,
            eviction: EvictionPolicy = .s3fifo,
            sweepInterval: Duration = .seconds(30),
            clock: any CacheClock = SystemCacheClock(),
            name: String = "memory"
        ) {
            self.maximumBytes = maximumBytes
            self.maximumEntries = maximumEntries
            self.eviction = eviction
            self.sweepInterval = sweepInterval
            self.clock = clock
            self.name = name
        }
    }

    /// Bytes counted per entry on top of `CacheEntry.approximateSize` (slot, index and key storage).
    public static let perEntryOverhead = 96

    public let configuration: Configuration
    public var name: String { self.configuration.name }
    private let state: LockedState<MemoryStore>

    /// Creates an empty backend.
    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
        self.state = LockedState(
            MemoryStore(
                maximumBytes: max(1, configuration.maximumBytes),
                maximumEntries: max(1, configuration.maximumEntries),
                lru: configuration.eviction == .lru
            )
        )
    }

    public func get(_ key: CacheKey) async throws -> CacheEntry? {
        self.entry(for: key)
    }

    /// The synchronous form of `get`, for callers on a hot path that is not async.
    public func entry(for key: CacheKey) -> CacheEntry? {
        let now = self.configuration.clock.now()
        return self.state.withLock { $0.get(key, now: now) }
    }

    public func set(_ entry: CacheEntry, for key: CacheKey) async throws {
        let size = entry.approximateSize + Self.perEntryOverhead
        guard size <= self.configuration.maximumBytes else {
            throw CacheError(.valueTooLarge, "entry of \(size) bytes exceeds the memory budget", backend: self.name)
        }
        let now = self.configuration.clock.now()
        guard entry.isUsable(at: now) else {
            self.state.withLock { _ = $0.remove(key) }
            return
        }
        self.state.withLock { $0.set(key, entry: entry, size: size) }
    }

    public func remove(_ key: CacheKey) async throws -> Bool {
        self.state.withLock { $0.remove(key) }
    }

    public func removeAll(taggedWith tag: String) async throws -> Int {
        self.state.withLock { $0.removeAll(taggedWith: tag) }
    }

    public func removeAll(in scope: CacheScope) async throws -> Int {
        self.state.withLock { store in store.removeAll { $0.scopeID == scope.id } }
    }

    /// Scans every entry under the lock (O(n)); see `CacheStore.removeAll(in:where:)`.
    public func removeAll(in scope: CacheScope, where predicate: @escaping @Sendable (CacheEntry) -> Bool) async throws -> Int {
        self.state.withLock { store in store.removeAll { key, entry in key.scopeID == scope.id && predicate(entry) } }
    }

    public func removeAllLocal() async -> Int {
        self.state.withLock { store in store.removeAll { _ in true } }
    }

    /// Removes expired entries; returns how many. Runs in batches so the lock is never held long.
    @discardableResult
    public func sweep() -> Int {
        let now = self.configuration.clock.now()
        var removed = 0
        var position = 0
        while true {
            let (count, next) = self.state.withLock { $0.sweep(from: position, limit: 4096, now: now) }
            removed += count
            guard let next else { return removed }
            position = next
        }
    }

    /// What the backend holds now.
    public struct Usage: Sendable, Hashable {
        /// Entries held.
        public var entries: Int
        /// Their approximate size (`CacheEntry.approximateSize`), the figure the byte budget counts.
        public var bytes: Int
    }

    /// Current usage.
    public var usage: Usage { self.state.withLock { Usage(entries: $0.count, bytes: $0.bytes) } }

    /// Entries evicted for space since creation.
    public var evictions: Int { self.state.withLock { $0.evictions } }

    /// Sweeps expired entries every `sweepInterval` until graceful shutdown or cancellation.
    public func run() async throws {
        await runPeriodically(every: self.configuration.sweepInterval) { self.sweep() }
    }
}

extension CacheLayer {
    /// A memory layer (L1). Entries live here at most `ttlCeiling` (default 5 minutes).
    public static func memory(
        _ configuration: MemoryCacheBackend.Configuration = .init(),
        ttlCeiling: Duration? = .seconds(300)
    ) -> CacheLayer {
        CacheLayer(backend: MemoryCacheBackend(configuration: configuration), options: .init(ttlCeiling: ttlCeiling, isShared: false))
    }
}

