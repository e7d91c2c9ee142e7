public import CacheKit

/// Wraps a backend and injects faults into every operation it forwards (each `CacheStore` capability included,
/// so the wrapped backend keeps its pattern removal, local clearing and background work): thrown errors, delays, hangs, and corrupted stored bytes.
///
/// Corruption goes through `CacheEntryCodec`: the entry is encoded, bytes are flipped, and decoding is attempted,
/// exactly what a remote backend does with damaged bytes, so the error is the real `.corruptEntry` error.
public final class FaultInjectingCacheBackend: CacheBackend {
    /// What to do to the next operations.
    public struct Fault: Sendable {
        fileprivate enum Base: Sendable {
            case none
            case fail
            case delay(Duration)
            case hang
            case corruptReads
        }
        fileprivate let base: Base

        /// Behave normally.
        public static let none = Fault(base: .none)
        /// Throw `CacheError` `.unavailable` from every operation.
        public static let fail = Fault(base: .fail)
        /// Sleep this long before every operation.
        public static func delay(_ duration: Duration) -> Fault { Fault(base: .delay(duration)) }
        /// Never return, even when cancelled (a server that stopped answering on a blocking socket).
        public static let hang = Fault(base: .hang)
        /// Return stored entries with flipped bytes (so reads throw `.corruptEntry`).
        public static let corruptReads = Fault(base: .corruptReads)
    }

    public let base: any CacheBackend
    private let fault = LockedState(Fault.none)
    private let injected = LockedState(0)
    private let hung = LockedState<[CheckedContinuation<Void, Never>]>([])

    public init(_ base: any CacheBackend) { self.base = base }

    public var name: String { self.base.name }

    /// Sets the fault for the operations from now on.
    public func inject(_ fault: Fault) {
        self.fault.withLock { $0 = fault }
        if case .hang = fault.base { return }
        let released = self.hung.withLock { waiting in
            defer { waiting.removeAll() }
            return waiting
        }
        for continuation in released { continuation.resume() }
    }

    /// How many operations a fault was applied to.
    public var injectedCount: Int { self.injected.withLock { $0 } }

    private func apply() async throws -> Bool {
        let fault = self.fault.withLock { $0 }
        switch fault.base {
        case .none:
            return false
        case .fail:
            self.injected.withLock { $0 += 1 }
            throw CacheError(.unavailable, "injected failure", backend: self.name)
        case .delay(let duration):
            self.injected.withLock { $0 += 1 }
            try? await Task.sleep(for: duration)
            return false
        case .hang:
            self.injected.withLock { $0 += 1 }
            // Ignores cancellation on purpose, like a blocking read on a dead socket; released by the next inject().
            await withCheckedContinuation { continuation in
                // Checked and queued under the fault lock, so an inject() cannot slip between the two.
                let queued = self.fault.withLock { fault -> Bool in
                    guard case .hang = fault.base else { return false }
                    self.hung.withLock { $0.append(continuation) }
                    return true
                }
                if !queued { continuation.resume() }
            }
            return false
        case .corruptReads:
            return true
        }
    }

    public func get(_ key: CacheKey) async throws -> CacheEntry? {
        let corrupt = try await self.apply()
        guard let entry = try await self.base.get(key) else { return nil }
        guard corrupt else { return entry }
        self.injected.withLock { $0 += 1 }
        var bytes = CacheEntryCodec.encode(entry)
        bytes[bytes.count / 2] ^= 0x5A
        return try CacheEntryCodec.decode(bytes)
    }

    public func set(_ entry: CacheEntry, for key: CacheKey) async throws {
        _ = try await self.apply()
        try await self.base.set(entry, for: key)
    }

    public func remove(_ key: CacheKey) async throws -> Bool {
        _ = try await self.apply()
        return try await self.base.remove(key)
    }

    public func removeAll(taggedWith tag: String) async throws -> Int {
        _ = try await self.apply()
        return try await self.base.removeAll(taggedWith: tag)
    }

    public func removeAll(in scope: CacheScope) async throws -> Int {
        _ = try await self.apply()
        return try await self.base.removeAll(in: scope)
    }

    public func removeAll(in scope: CacheScope, where predicate: @escaping @Sendable (CacheEntry) -> Bool) async throws -> Int {
        _ = try await self.apply()
        return try await self.base.removeAll(in: scope, where: predicate)
    }

    public func removeAllLocal() async throws -> Int {
        _ = try await self.apply()
        return try await self.base.removeAllLocal()
    }

    public func get(_ keys: [CacheKey]) async throws -> [CacheEntry?] {
        var entries: [CacheEntry?] = []
        for key in keys { entries.append(try await self.get(key)) }
        return entries
    }

    public func set(_ entries: [KeyedEntry]) async throws {
        _ = try await self.apply()
        try await self.base.set(entries)
    }

    /// The wrapped backend's capabilities: every operation is forwarded (with the fault applied first).
    public var capabilities: CacheCapabilities { self.base.capabilities }

    /// Runs the wrapped backend's background work (its sweep, its pool).
    public func run() async throws { try await self.base.run() }
}
