import Synchronization

/// Where an invalidation must be applied: an exact layer (by index), the semantic index, or the invalidation bus.
public struct InvalidationDestination: Sendable, Hashable, CustomStringConvertible {
    enum Base: Sendable, Hashable {
        case layer(Int)
        case semantic
        case bus
    }

    let base: Base

    /// The exact layer at `index` of `CacheConfiguration.layers`.
    public static func layer(_ index: Int) -> InvalidationDestination { InvalidationDestination(base: .layer(index)) }
    /// The semantic index.
    public static let semantic = InvalidationDestination(base: .semantic)
    /// The invalidation bus (other instances).
    public static let bus = InvalidationDestination(base: .bus)

    public var description: String {
        switch self.base {
        case .layer(let index): "layer \(index)"
        case .semantic: "semantic"
        case .bus: "bus"
        }
    }
}

/// What an invalidation did: how many entries it removed here, and where it could not be applied yet.
///
/// An invalidation that a layer or the bus refused is not forgotten: it stays in the cache's outbox and is retried
/// in the background (`MultiLayerCache.run()`) until it applies, and until then the entries it names that were
/// written before it are not served from the layer that missed it.
public struct InvalidationReport: Sendable, CustomStringConvertible {
    /// Entries and records removed in this instance's layers.
    public var removed: Int
    /// Destinations that failed; each is retried until it succeeds (see `MultiLayerCache.pendingInvalidations`).
    public var pending: [InvalidationDestination]
    /// Names of the pending destinations, for reports (`redis`, `semantic`, `bus`).
    public var pendingNames: [String]

    /// Whether every layer and the bus applied the invalidation.
    public var isComplete: Bool { self.pending.isEmpty }

    public init(removed: Int, pending: [InvalidationDestination] = [], pendingNames: [String] = []) {
        self.removed = removed
        self.pending = pending
        self.pendingNames = pendingNames
    }

    public var description: String {
        self.isComplete ? "\(self.removed) removed" : "\(self.removed) removed; pending in \(self.pendingNames.joined(separator: ", "))"
    }
}

/// Invalidations not yet applied everywhere, with the fence they put on reads.
///
/// Each pending invalidation remembers its target, when it was made, and the destinations that still lack it. A
/// read from a destination that lacks it must not serve an entry the target names that was created at or before that
/// time (`blocks`). Retries back off exponentially from `initialBackoff` to `maximumBackoff`.
final class InvalidationOutbox: Sendable {
    struct Pending: Sendable {
        var id: UInt64
        var target: InvalidationTarget
        var at: CacheTime
        var destinations: Set<InvalidationDestination>
        var attempts: Int
        var nextAttempt: ContinuousClock.Instant
    }

    struct State {
        var nextID: UInt64 = 0
        var pending: [UInt64: Pending] = [:]
    }

    private let state = LockedState(State())
    /// How many invalidations are pending, readable without the lock: the read path checks it on every hit and
    /// takes the lock only when something is pending. Stored (releasing) under the lock after every change.
    private let pendingCount = Atomic<Int>(0)
    let initialBackoff: Duration
    let maximumBackoff: Duration
    /// Where the pending invalidations are kept across restarts, with the layer names that map destinations.
    private let file: (path: String, layerNames: [String])?

    init(initialBackoff: Duration = .milliseconds(100), maximumBackoff: Duration = .seconds(1), file: (path: String, layerNames: [String])? = nil) {
        self.initialBackoff = initialBackoff
        self.maximumBackoff = maximumBackoff
        self.file = file
    }

    /// Loads the file's pending invalidations (all due now). Returns an error text when the file exists but cannot
    /// be read as an outbox; a missing file is an empty outbox.
    func load(now: ContinuousClock.Instant = .now) -> String? {
        guard let file = self.file else { return nil }
        guard let bytes = OutboxFile.contents(of: file.path) else { return nil }
        guard let list = (try? JSONValue(parsing: bytes))?["pending"]?.arrayValue else { return "\(file.path) is not an outbox file" }
        var loaded: [Pending] = []
        for item in list {
            guard let target = item["event"].flatMap({ try? InvalidationEvent(json: $0.canonicalBytes()) })?.target,
                let at = item["at"]?.intValue, let names = item["destinations"]?.arrayValue?.compactMap(\.stringValue)
            else { return "\(file.path) holds an entry that is not a pending invalidation" }
            var destinations: Set<InvalidationDestination> = []
            for name in names {
                switch name {
                case "semantic": destinations.insert(.semantic)
                case "bus": destinations.insert(.bus)
                default:
                    // A layer by name: the configuration may have changed since the file was written.
                    if name.hasPrefix("layer:"), let index = file.layerNames.firstIndex(of: String(name.dropFirst(6))) {
                        destinations.insert(.layer(index))
                    }
                }
            }
            if !destinations.isEmpty {
                loaded.append(Pending(id: 0, target: target, at: CacheTime(millisecondsSinceEpoch: Int64(at)), destinations: destinations, attempts: 0, nextAttempt: now))
            }
        }
        self.state.withLock { state in
            for var pending in loaded {
                state.nextID += 1
                pending.id = state.nextID
                state.pending[pending.id] = pending
            }
            self.pendingCount.store(state.pending.count, ordering: .releasing)
        }
        return nil
    }

    /// Rewrites the file from `state` (under the lock, so writes never interleave).
    private func persist(_ state: State) {
        guard let file = self.file else { return }
        let items: [JSONValue] = state.pending.values.sorted { $0.id < $1.id }.map { pending in
            let names: [JSONValue] = pending.destinations.map { destination in
                switch destination.base {
                case .layer(let index): .string("layer:" + (file.layerNames.indices.contains(index) ? file.layerNames[index] : "\(index)"))
                case .semantic: "semantic"
                case .bus: "bus"
                }
            }
            let event = (try? JSONValue(parsing: InvalidationEvent(origin: "outbox", target: pending.target).jsonBytes())) ?? .null
            return ["event": event, "at": .number(Double(pending.at.millisecondsSinceEpoch)), "destinations": .array(names)]
        }
        OutboxFile.replace(file.path, with: JSONValue.object(["pending": .array(items)]).canonicalBytes())
    }

    /// Records `target` (made at `at`) as missing in `destinations`.
    func add(_ target: InvalidationTarget, at: CacheTime, missingIn destinations: Set<InvalidationDestination>, now: ContinuousClock.Instant = .now) {
        guard !destinations.isEmpty else { return }
        self.state.withLock { state in
            state.nextID += 1
            state.pending[state.nextID] = Pending(
                id: state.nextID, target: target, at: at, destinations: destinations, attempts: 0, nextAttempt: now + self.initialBackoff)
            self.pendingCount.store(state.pending.count, ordering: .releasing)
            self.persist(state)
        }
    }

    /// How many invalidations still miss a destination.
    var count: Int { self.pendingCount.load(ordering: .acquiring) }

    /// Whether an entry read from `destination` under `key` must not be served: a pending invalidation that this
    /// destination lacks names it, and the entry was created at or before that invalidation.
    func blocks(_ entry: CacheEntry, key: CacheKey, in destination: InvalidationDestination) -> Bool {
        // The common case, nothing pending, costs one atomic load: an invalidation stores the count before it
        // returns, so a read that starts after it sees it.
        guard self.pendingCount.load(ordering: .acquiring) > 0 else { return false }
        return self.state.withLock { state in
            guard !state.pending.isEmpty else { return false }
            return state.pending.values.contains { pending in
                pending.destinations.contains(destination) && entry.createdAt <= pending.at && Self.names(pending.target, entry, key)
            }
        }
    }

    static func names(_ target: InvalidationTarget, _ entry: CacheEntry, _ key: CacheKey) -> Bool {
        if let targetKey = target.key { return targetKey == key }
        if let tag = target.tag { return entry.tags.contains(tag) }
        if let scope = target.scope { return key.scopeID == scope.id }
        if let target = target.pattern { return key.scopeID == target.scope.id && target.pattern.matches(entry) }
        return target.isEverythingLocal
    }

    /// The invalidations whose retry is due, with the destinations they still miss.
    func due(now: ContinuousClock.Instant = .now) -> [Pending] {
        self.state.withLock { state in state.pending.values.filter { $0.nextAttempt <= now }.sorted { $0.id < $1.id } }
    }

    /// Records the outcome of a retry of `id`: the destinations that now have it are dropped; the rest wait longer.
    func retried(_ id: UInt64, succeeded: Set<InvalidationDestination>, now: ContinuousClock.Instant = .now) {
        self.state.withLock { state in
            guard var pending = state.pending[id] else { return }
            pending.destinations.subtract(succeeded)
            if pending.destinations.isEmpty {
                state.pending[id] = nil
                self.pendingCount.store(state.pending.count, ordering: .releasing)
                self.persist(state)
                return
            }
            pending.attempts += 1
            let backoff = self.initialBackoff * Double(1 << min(pending.attempts, 16))
            pending.nextAttempt = now + min(backoff, self.maximumBackoff)
            state.pending[id] = pending
            if !succeeded.isEmpty { self.persist(state) }
        }
    }

    /// The earliest time a retry is due, if any is pending.
    var nextDue: ContinuousClock.Instant? { self.state.withLock { $0.pending.values.map(\.nextAttempt).min() } }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Whole-file reads and atomic rewrites (write a temporary file, fsync, rename) for the outbox, without Foundation.
enum OutboxFile {
    static func contents(of path: String) -> [UInt8]? {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            bytes += buffer.prefix(count)
            if bytes.count > 64 << 20 { return nil }
        }
        return bytes
    }

    static func replace(_ path: String, with bytes: [UInt8]) {
        let temporary = path + ".tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard descriptor >= 0 else { return }
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress.map { $0 + offset }, bytes.count - offset) }
            guard written > 0 else { break }
            offset += written
        }
        fsync(descriptor)
        close(descriptor)
        if offset == bytes.count { rename(temporary, path) } else { unlink(temporary) }
    }
}
