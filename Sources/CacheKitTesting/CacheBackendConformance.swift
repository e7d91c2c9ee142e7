public import CacheKit
public import Testing

/// The behaviours every `CacheBackend` must have, as a suite a backend's own tests run, one test case per behaviour:
///
/// ```swift
/// @Test(arguments: CacheBackendConformance.Behaviour.allCases)
/// func conformance(_ behaviour: CacheBackendConformance.Behaviour) async throws {
///     let clock = ManualClock()
///     try await CacheBackendConformance(manualClock: clock) { MyBackend(clock: clock) }.run(behaviour)
/// }
/// ```
///
/// Each behaviour makes a fresh backend and works in scopes of its own (random tenant names), so a suite can run
/// against a shared server. Failures are reported with Swift Testing's `#expect`.
public struct CacheBackendConformance: Sendable {
    /// One behaviour of the suite.
    public struct Behaviour: Sendable, Hashable, CaseIterable, CustomStringConvertible, CustomTestStringConvertible {
        public let name: String
        private init(_ name: String) { self.name = name }

        /// A stored entry reads back equal, every field included.
        public static let roundTrip = Behaviour("roundTrip")
        /// An unknown key reads `nil`; removing it returns `false`.
        public static let missingKey = Behaviour("missingKey")
        /// A second `set` replaces the first.
        public static let overwrite = Behaviour("overwrite")
        /// `remove` removes and reports it.
        public static let remove = Behaviour("remove")
        /// An entry is gone after `staleUntil`, and served until then (the stale window included).
        public static let ttlExpiry = Behaviour("ttlExpiry")
        /// `removeAll(taggedWith:)` removes exactly the tagged entries, in every scope.
        public static let tags = Behaviour("tags")
        /// The same request in two scopes has two keys that never see each other's entries.
        public static let scopeIsolation = Behaviour("scopeIsolation")
        /// `removeAll(in:)` removes exactly one scope's entries.
        public static let removeByScope = Behaviour("removeByScope")
        /// Batch get and set keep order and report missing keys as `nil`.
        public static let batch = Behaviour("batch")
        /// A large binary value round-trips intact.
        public static let largeValue = Behaviour("largeValue")
        /// Tags and scopes with spaces, CR/LF, `*`, `:`, `{}`, quotes and non-ASCII are stored and matched exactly.
        public static let hostileStrings = Behaviour("hostileStrings")
        /// Many tasks reading and writing at once see only values that were written, and no errors.
        public static let concurrentAccess = Behaviour("concurrentAccess")
        /// Operations cancelled mid-flight leave the backend working, with no value delivered to the wrong key.
        public static let cancellation = Behaviour("cancellation")
        /// `removeAll(in:where:)` leaves no selected entry and no other scope touched; with `.contentRemoval` declared,
        /// exactly the selected entries go.
        public static let contentRemoval = Behaviour("contentRemoval")
        /// With `.localClearing` declared, `removeAllLocal()` drops everything; without, it throws `.unsupported`.
        public static let localClearing = Behaviour("localClearing")
        /// `run()` ends when its task is cancelled.
        public static let backgroundWork = Behaviour("backgroundWork")

        public static let allCases: [Behaviour] = [
            .roundTrip, .missingKey, .overwrite, .remove, .ttlExpiry, .tags, .scopeIsolation, .removeByScope, .batch,
            .largeValue, .hostileStrings, .concurrentAccess, .cancellation, .contentRemoval, .localClearing, .backgroundWork,
        ]

        public var description: String { self.name }
        public var testDescription: String { self.name }
    }

    /// Makes a fresh backend for one behaviour.
    public var makeBackend: @Sendable () async throws -> any CacheBackend
    /// The clock the backend expires entries by.
    public var clock: any CacheClock
    /// Moves that clock forward (advances a `ManualClock`, or sleeps for a server that expires in real time).
    public var advance: @Sendable (Duration) async throws -> Void
    /// The size of the `largeValue` payload. Default 4 MiB.
    public var largeValueBytes: Int

    /// A suite for a backend that expires by `clock`, moved by `advance`.
    public init(
        clock: any CacheClock,
        advance: @escaping @Sendable (Duration) async throws -> Void,
        largeValueBytes: Int = 4 << 20,
        makeBackend: @escaping @Sendable () async throws -> any CacheBackend
    ) {
        self.clock = clock
        self.advance = advance
        self.largeValueBytes = largeValueBytes
        self.makeBackend = makeBackend
    }

    /// A suite for a backend that takes a `ManualClock`.
    public init(manualClock: ManualClock, largeValueBytes: Int = 4 << 20, makeBackend: @escaping @Sendable () async throws -> any CacheBackend) {
        self.init(clock: manualClock, advance: { manualClock.advance(by: $0) }, largeValueBytes: largeValueBytes, makeBackend: makeBackend)
    }

    /// A suite for a backend that expires in real time (a server): `advance` sleeps.
    public static func realTime(largeValueBytes: Int = 4 << 20, makeBackend: @escaping @Sendable () async throws -> any CacheBackend) -> Self {
        Self(clock: SystemCacheClock(), advance: { try await Task.sleep(for: $0) }, largeValueBytes: largeValueBytes, makeBackend: makeBackend)
    }

    /// Runs every behaviour.
    public func runAll() async throws {
        for behaviour in Behaviour.allCases { try await self.run(behaviour) }
    }

    /// Runs one behaviour.
    public func run(_ behaviour: Behaviour) async throws {
        let backend = try await self.makeBackend()
        switch behaviour {
        case .roundTrip: try await self.roundTrip(backend)
        case .missingKey: try await self.missingKey(backend)
        case .overwrite: try await self.overwrite(backend)
        case .remove: try await self.remove(backend)
        case .ttlExpiry: try await self.ttlExpiry(backend)
        case .tags: try await self.tags(backend)
        case .scopeIsolation: try await self.scopeIsolation(backend)
        case .removeByScope: try await self.removeByScope(backend)
        case .batch: try await self.batch(backend)
        case .largeValue: try await self.largeValue(backend)
        case .hostileStrings: try await self.hostileStrings(backend)
        case .concurrentAccess: try await self.concurrentAccess(backend)
        case .cancellation: try await self.cancellation(backend)
        case .contentRemoval: try await self.capabilities(backend).contentRemoval()
        case .localClearing: try await self.capabilities(backend).localClearing()
        case .backgroundWork: try await self.capabilities(backend).backgroundWork()
        default: Issue.record("unknown behaviour \(behaviour)")
        }
    }

    func roundTrip(_ backend: any CacheBackend) async throws {
        let scope = Fixtures.scope("roundtrip")
        let key = Fixtures.key("what is a cache?", in: scope)
        let entry = Fixtures.entry("a cache", now: self.clock.now(), tags: ["faq", "product:1"])
        try await backend.set(entry, for: key)
        let read = try await backend.get(key)
        #expect(read == entry, "the entry read back differs from the one stored")
    }

    func missingKey(_ backend: any CacheBackend) async throws {
        let scope = Fixtures.scope("missing")
        let key = Fixtures.key("never stored", in: scope)
        #expect(try await backend.get(key) == nil)
        #expect(try await backend.remove(key) == false)
    }

    func overwrite(_ backend: any CacheBackend) async throws {
        let scope = Fixtures.scope("overwrite")
        let key = Fixtures.key("q", in: scope)
        let now = self.clock.now()
        try await backend.set(Fixtures.entry("first", now: now), for: key)
        let second = Fixtures.entry("second", now: now, tags: ["v2"])
        try await backend.set(second, for: key)
        #expect(try await backend.get(key) == second)
    }

    func remove(_ backend: any CacheBackend) async throws {
        let scope = Fixtures.scope("remove")
        let key = Fixtures.key("q", in: scope)
        let other = Fixtures.key("other", in: scope)
        let now = self.clock.now()
        try await backend.set(Fixtures.entry("a", now: now), for: key)
        try await backend.set(Fixtures.entry("b", now: now), for: other)
        #expect(try await backend.remove(key) == true)
        #expect(try await backend.get(key) == nil)
        #expect(try await backend.get(other) != nil, "removing one key removed another")
    }

    func ttlExpiry(_ backend: any CacheBackend) async throws {
        // Generous durations: a real-time backend on a loaded machine must still see the entry inside its TTL.
        let scope = Fixtures.scope("ttl")
        let fresh = Fixtures.key("fresh", in: scope)
        let staleKey = Fixtures.key("stale", in: scope)
        let now = self.clock.now()
        try await backend.set(Fixtures.entry("short", now: now, ttl: .milliseconds(1500)), for: fresh)
        try await backend.set(Fixtures.entry("windowed", now: now, ttl: .milliseconds(1500), stale: .milliseconds(4000)), for: staleKey)
        #expect(try await backend.get(fresh) != nil, "an entry inside its TTL was not served")
        try await self.advance(.milliseconds(2500))
        #expect(try await backend.get(fresh) == nil, "an entry past its TTL was still served")
        let windowed = try await backend.get(staleKey)
        #expect(windowed != nil, "an entry inside its stale window was not served")
        #expect(windowed.map { !$0.isFresh(at: self.clock.now()) } ?? false, "an entry past its TTL reads as fresh")
        try await self.advance(.milliseconds(3500))
        #expect(try await backend.get(staleKey) == nil, "an entry past its stale window was still served")
    }

    func tags(_ backend: any CacheBackend) async throws {
        let scope = Fixtures.scope("tags")
        let otherScope = Fixtures.scope("tags-other")
        let tag = "product:\(Fixtures.randomID())"
        let now = self.clock.now()
        let keys = (0..<4).map { Fixtures.key("q\($0)", in: $0 == 3 ? otherScope : scope) }
        try await backend.set(Fixtures.entry("0", now: now, tags: [tag]), for: keys[0])
        try await backend.set(Fixtures.entry("1", now: now, tags: ["unrelated", tag]), for: keys[1])
        try await backend.set(Fixtures.entry("2", now: now, tags: [tag + "0", "unrelated"]), for: keys[2])
        try await backend.set(Fixtures.entry("3", now: now, tags: [tag]), for: keys[3])
        let removed = try await backend.removeAll(taggedWith: tag)
        #expect(removed == 3, "removeAll(taggedWith:) reported \(removed), expected 3")
        #expect(try await backend.get(keys[0]) == nil)
        #expect(try await backend.get(keys[1]) == nil)
        #expect(try await backend.get(keys[3]) == nil, "a tagged entry in another scope survived")
        #expect(try await backend.get(keys[2]) != nil, "an entry with a different (prefix-sharing) tag was removed")
        #expect(try await backend.removeAll(taggedWith: tag) == 0)
    }

    func scopeIsolation(_ backend: any CacheBackend) async throws {
        let a = Fixtures.scope("iso-a")
        let b = Fixtures.scope("iso-b")
        let keyA = Fixtures.key("same question", in: a)
        let keyB = Fixtures.key("same question", in: b)
        #expect(keyA != keyB)
        try await backend.set(Fixtures.entry("tenant a's answer", now: self.clock.now()), for: keyA)
        #expect(try await backend.get(keyB) == nil, "one scope read another scope's entry")
    }

    func removeByScope(_ backend: any CacheBackend) async throws {
        let a = Fixtures.scope("scope-a")
        let b = Fixtures.scope("scope-b")
        let now = self.clock.now()
        for i in 0..<5 {
            try await backend.set(Fixtures.entry("a\(i)", now: now), for: Fixtures.key("q\(i)", in: a))
            try await backend.set(Fixtures.entry("b\(i)", now: now), for: Fixtures.key("q\(i)", in: b))
        }
        let removed = try await backend.removeAll(in: a)
        #expect(removed == 5, "removeAll(in:) reported \(removed), expected 5")
        for i in 0..<5 {
            #expect(try await backend.get(Fixtures.key("q\(i)", in: a)) == nil)
            #expect(try await backend.get(Fixtures.key("q\(i)", in: b)) != nil, "another scope's entry was removed")
        }
    }

    func batch(_ backend: any CacheBackend) async throws {
        let scope = Fixtures.scope("batch")
        let now = self.clock.now()
        let keys = (0..<3).map { Fixtures.key("q\($0)", in: scope) }
        let entries = (0..<3).map { Fixtures.entry("a\($0)", now: now) }
        try await backend.set([KeyedEntry(key: keys[0], entry: entries[0]), KeyedEntry(key: keys[2], entry: entries[2])])
        let read = try await backend.get(keys)
        #expect(read.count == 3)
        #expect(read.count == 3 && read[0] == entries[0] && read[1] == nil && read[2] == entries[2], "batch get lost its order")
        #expect(try await backend.get([]).isEmpty)
    }

    func largeValue(_ backend: any CacheBackend) async throws {
        let scope = Fixtures.scope("large")
        let key = Fixtures.key("large", in: scope)
        var generator = SeededGenerator(seed: 42)
        var entry = Fixtures.entry("large", now: self.clock.now())
        entry.value = (0..<self.largeValueBytes).map { _ in UInt8.random(in: 0...255, using: &generator) }
        try await backend.set(entry, for: key)
        let read = try await backend.get(key)
        #expect(read?.value.count == entry.value.count)
        #expect(read == entry, "a large binary value did not round-trip intact")
    }

    func hostileStrings(_ backend: any CacheBackend) async throws {
        let hostile = ["with space", "cr\r\nlf", "star*", "colon:a:b", "{braces}", "quote\"'", "ünïcødé ✓", "tab\tnull\u{1}", "*", ""]
        let now = self.clock.now()
        let scope = CacheScope(tenant: "t:\(Fixtures.randomID()) *\r\n{}", namespace: "n:*", version: "v\"1")
        for (index, tag) in hostile.enumerated() {
            try await backend.set(Fixtures.entry("h\(index)", now: now, tags: [tag + Fixtures.randomID()]), for: Fixtures.key("h\(index)", in: scope))
        }
        for index in hostile.indices {
            let read = try await backend.get(Fixtures.key("h\(index)", in: scope))
            #expect(read?.queryText == "h\(index)", "an entry with hostile tag #\(index) did not round-trip")
        }
        let tag = "star*" + Fixtures.randomID()
        let victim = "starX" + Fixtures.randomID()
        try await backend.set(Fixtures.entry("glob", now: now, tags: [tag]), for: Fixtures.key("glob", in: scope))
        try await backend.set(Fixtures.entry("victim", now: now, tags: [victim]), for: Fixtures.key("victim", in: scope))
        #expect(try await backend.removeAll(taggedWith: "star*") == 0, "a tag was matched as a pattern")
        #expect(try await backend.removeAll(taggedWith: tag) == 1)
        #expect(try await backend.get(Fixtures.key("victim", in: scope)) != nil)
        #expect(try await backend.removeAll(in: scope) == hostile.count + 1)
    }

    func concurrentAccess(_ backend: any CacheBackend) async throws {
        let scope = Fixtures.scope("concurrent")
        let now = self.clock.now()
        let shared = Fixtures.key("shared", in: scope)
        let written = (0..<8).map { Fixtures.entry("writer \($0)", now: now) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    let own = Fixtures.key("own \(worker)", in: scope)
                    let mine = written[worker]
                    for _ in 0..<25 {
                        try await backend.set(mine, for: own)
                        try await backend.set(mine, for: shared)
                        let readOwn = try await backend.get(own)
                        #expect(readOwn == mine, "a task read another task's value under its own key")
                        if let readShared = try await backend.get(shared) {
                            #expect(written.contains(readShared), "a value that nobody wrote was read")
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    func capabilities(_ backend: any CacheBackend) -> CapabilityChecks {
        let clock = self.clock
        return CapabilityChecks(
            store: backend,
            put: { question, scope in
                let key = Fixtures.key(question, in: scope)
                try await backend.set(Fixtures.entry(question, now: clock.now()), for: key)
                return key
            },
            isPresent: { key in try await backend.get(key) != nil }
        )
    }

    func cancellation(_ backend: any CacheBackend) async throws {
        let scope = Fixtures.scope("cancel")
        let now = self.clock.now()
        let keys = (0..<32).map { Fixtures.key("c\($0)", in: scope) }
        let entries = (0..<32).map { Fixtures.entry("c\($0)", now: now) }
        for (key, entry) in zip(keys, entries) { try await backend.set(entry, for: key) }
        await withTaskGroup(of: Void.self) { group in
            for round in 0..<4 {
                for index in keys.indices {
                    let task = Task {
                        if let read = try? await backend.get(keys[index]) {
                            #expect(read == entries[index], "a cancelled-around read got another key's value")
                        }
                    }
                    if (index + round) % 2 == 0 { task.cancel() }
                    group.addTask { await task.value }
                }
            }
        }
        for (key, entry) in zip(keys, entries) {
            #expect(try await backend.get(key) == entry, "after cancellations a key reads a wrong value")
        }
    }
}
