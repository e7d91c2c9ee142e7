import CacheKit

/// The state of a `MemoryCacheBackend`: slots in an arena, an index from key to slot, two intrusive FIFO/LRU lists,
/// a ghost list and a tag index. Not thread-safe by itself: `MemoryCacheBackend` holds it in a `LockedState`.
struct MemoryStore {
    private struct Slot {
        var key: CacheKey
        var entry: CacheEntry
        var size: Int
        var frequency: UInt8
        var queue: UInt8  // 0 free, 1 small (LRU's only list), 2 main
        var previous: Int32
        var next: Int32
    }

    private static let none: Int32 = -1
    private static let placeholder = CacheEntry(value: [], createdAt: .distantPast, expiresAt: .distantPast)

    let maximumBytes: Int
    let maximumEntries: Int
    let lru: Bool
    private(set) var bytes = 0
    private(set) var evictions = 0
    private var slots: ContiguousArray<Slot> = []
    private var freeSlots: [Int32] = []
    private var index: [CacheKey: Int32] = [:]
    private var heads: (Int32, Int32, Int32) = (-1, -1, -1)
    private var tails: (Int32, Int32, Int32) = (-1, -1, -1)
    private var queueBytes: (Int, Int, Int) = (0, 0, 0)
    private var queueCounts: (Int, Int, Int) = (0, 0, 0)
    private var tagIndex: [String: Set<CacheKey>] = [:]
    private var ghost = GhostList(capacity: 1)

    init(maximumBytes: Int, maximumEntries: Int, lru: Bool) {
        self.maximumBytes = maximumBytes
        self.maximumEntries = maximumEntries
        self.lru = lru
        self.ghost = GhostList(capacity: maximumEntries)
    }

    var count: Int { self.index.count }

    // MARK: Lists

    private func head(_ queue: UInt8) -> Int32 { queue == 1 ? self.heads.1 : self.heads.2 }
    private func tail(_ queue: UInt8) -> Int32 { queue == 1 ? self.tails.1 : self.tails.2 }

    private mutating func setHead(_ queue: UInt8, _ value: Int32) {
        if queue == 1 { self.heads.1 = value } else { self.heads.2 = value }
    }

    private mutating func setTail(_ queue: UInt8, _ value: Int32) {
        if queue == 1 { self.tails.1 = value } else { self.tails.2 = value }
    }

    private mutating func addBytes(_ queue: UInt8, _ delta: Int) {
        if queue == 1 { self.queueBytes.1 += delta } else { self.queueBytes.2 += delta }
    }

    private mutating func addCount(_ queue: UInt8, _ delta: Int) {
        if queue == 1 { self.queueCounts.1 += delta } else { self.queueCounts.2 += delta }
    }

    private mutating func pushHead(_ slot: Int32, queue: UInt8) {
        let oldHead = self.head(queue)
        self.slots[Int(slot)].queue = queue
        self.slots[Int(slot)].previous = Self.none
        self.slots[Int(slot)].next = oldHead
        if oldHead != Self.none { self.slots[Int(oldHead)].previous = slot } else { self.setTail(queue, slot) }
        self.setHead(queue, slot)
        self.addBytes(queue, self.slots[Int(slot)].size)
        self.addCount(queue, 1)
    }

    private mutating func unlink(_ slot: Int32) {
        let queue = self.slots[Int(slot)].queue
        let previous = self.slots[Int(slot)].previous
        let next = self.slots[Int(slot)].next
        if previous != Self.none { self.slots[Int(previous)].next = next } else { self.setHead(queue, next) }
        if next != Self.none { self.slots[Int(next)].previous = previous } else { self.setTail(queue, previous) }
        self.addBytes(queue, -self.slots[Int(slot)].size)
        self.addCount(queue, -1)
        self.slots[Int(slot)].queue = 0
    }

    // MARK: Operations

    mutating func get(_ key: CacheKey, now: CacheTime) -> CacheEntry? {
        guard let slot = self.index[key] else { return nil }
        guard self.slots[Int(slot)].entry.isUsable(at: now) else {
            self.free(slot)
            return nil
        }
        if self.lru {
            if self.heads.1 != slot {
                self.unlink(slot)
                self.pushHead(slot, queue: 1)
            }
        } else if self.slots[Int(slot)].frequency < 3 {
            self.slots[Int(slot)].frequency += 1
        }
        return self.slots[Int(slot)].entry
    }

    mutating func set(_ key: CacheKey, entry: CacheEntry, size: Int) {
        if let slot = self.index[key] {
            // Replace in place: keep the position and frequency; fix bytes and tags.
            let queue = self.slots[Int(slot)].queue
            let delta = size - self.slots[Int(slot)].size
            self.untag(key, self.slots[Int(slot)].entry.tags)
            self.slots[Int(slot)].entry = entry
            self.slots[Int(slot)].size = size
            self.bytes += delta
            self.addBytes(queue, delta)
            self.tag(key, entry.tags)
            self.evictUntilWithinBounds(protecting: slot)
            return
        }
        let slot: Int32
        let new = Slot(key: key, entry: entry, size: size, frequency: 0, queue: 0, previous: Self.none, next: Self.none)
        if let reused = self.freeSlots.popLast() {
            slot = reused
            self.slots[Int(slot)] = new
        } else {
            slot = Int32(self.slots.count)
            self.slots.append(new)
        }
        self.index[key] = slot
        self.bytes += size
        self.tag(key, entry.tags)
        // S3-FIFO: a key seen recently (in the ghost list) goes straight to the main queue.
        let queue: UInt8 = !self.lru && self.ghost.remove(key.digest.w0) ? 2 : 1
        self.pushHead(slot, queue: queue)
        self.evictUntilWithinBounds(protecting: slot)
    }

    @discardableResult
    mutating func remove(_ key: CacheKey) -> Bool {
        guard let slot = self.index[key] else { return false }
        self.free(slot)
        return true
    }

    mutating func removeAll(taggedWith tag: String) -> Int {
        guard let keys = self.tagIndex[tag] else { return 0 }
        for key in keys { self.remove(key) }
        return keys.count
    }

    mutating func removeAll(whereEntry predicate: (CacheKey, CacheEntry) -> Bool) -> Int {
        let keys = self.index.compactMap { key, slot in predicate(key, self.slots[Int(slot)].entry) ? key : nil }
        for key in keys { self.remove(key) }
        return keys.count
    }

    mutating func removeAll(where predicate: (CacheKey) -> Bool) -> Int {
        let keys = self.index.keys.filter(predicate)
        for key in keys { self.remove(key) }
        return keys.count
    }

    /// Frees expired slots in `[start, start + limit)`; returns how many and where to continue (`nil` at the end).
    mutating func sweep(from start: Int, limit: Int, now: CacheTime) -> (Int, Int?) {
        let end = min(self.slots.count, start + limit)
        var removed = 0
        var position = start
        while position < end {
            if self.slots[position].queue != 0, !self.slots[position].entry.isUsable(at: now) {
                self.free(Int32(position))
                removed += 1
            }
            position += 1
        }
        return (removed, end < self.slots.count ? end : nil)
    }

    // MARK: Eviction

    private mutating func evictUntilWithinBounds(protecting protected: Int32) {
        var guardCounter = 0
        while self.bytes > self.maximumBytes || self.index.count > self.maximumEntries {
            guard let victim = self.victim(protecting: protected) else { return }
            self.free(victim)
            self.evictions += 1
            guardCounter += 1
            if guardCounter > 1_000_000 { return }
        }
    }

    /// Picks the next slot to evict. S3-FIFO: evict from the small queue while it holds at least 10% of the bytes,
    /// promoting entries that were read while there; otherwise from the main queue, reinserting read entries with
    /// their frequency decremented. LRU: the least recently used.
    private mutating func victim(protecting protected: Int32) -> Int32? {
        if self.lru {
            var candidate = self.tails.1
            if candidate == protected { candidate = self.slots[Int(candidate)].previous }
            return candidate == Self.none ? nil : candidate
        }
        var steps = 0
        while steps < 4 * max(self.index.count, 1) {
            steps += 1
            // The small queue's share is 10% of whichever bound binds: bytes or entries.
            let smallTooBig =
                self.queueBytes.1 * 10 >= self.maximumBytes || self.queueCounts.1 * 10 >= self.maximumEntries
                || self.tails.2 == Self.none
            if smallTooBig, self.tails.1 != Self.none {
                let slot = self.tails.1
                self.unlink(slot)
                if slot != protected, self.slots[Int(slot)].frequency == 0 {
                    self.ghost.insert(self.slots[Int(slot)].key.digest.w0)
                    self.pushHead(slot, queue: 1)  // relinked so free() can unlink it
                    return slot
                }
                self.slots[Int(slot)].frequency = 0
                self.pushHead(slot, queue: slot == protected ? 1 : 2)
                if slot == protected, self.tails.2 == Self.none, self.tails.1 == slot { return nil }
                continue
            }
            let slot = self.tails.2
            guard slot != Self.none else { return nil }
            self.unlink(slot)
            if slot != protected, self.slots[Int(slot)].frequency == 0 {
                self.pushHead(slot, queue: 2)
                return slot
            }
            if self.slots[Int(slot)].frequency > 0 { self.slots[Int(slot)].frequency -= 1 }
            self.pushHead(slot, queue: 2)
        }
        return nil
    }

    private mutating func free(_ slot: Int32) {
        let key = self.slots[Int(slot)].key
        self.unlink(slot)
        self.bytes -= self.slots[Int(slot)].size
        self.untag(key, self.slots[Int(slot)].entry.tags)
        self.index[key] = nil
        self.slots[Int(slot)].entry = Self.placeholder
        self.slots[Int(slot)].size = 0
        self.freeSlots.append(slot)
    }

    private mutating func tag(_ key: CacheKey, _ tags: [String]) {
        for tag in tags { self.tagIndex[tag, default: []].insert(key) }
    }

    private mutating func untag(_ key: CacheKey, _ tags: [String]) {
        for tag in tags {
            self.tagIndex[tag]?.remove(key)
            if self.tagIndex[tag]?.isEmpty == true { self.tagIndex[tag] = nil }
        }
    }
}

/// A bounded FIFO of recently evicted key hashes (S3-FIFO's ghost queue).
struct GhostList {
    private var ring: [UInt64]
    private var start = 0
    private var length = 0
    private var members: [UInt64: Int] = [:]

    init(capacity: Int) { self.ring = [UInt64](repeating: 0, count: max(1, capacity)) }

    mutating func insert(_ hash: UInt64) {
        if self.length == self.ring.count {
            let oldest = self.ring[self.start]
            self.start = (self.start + 1) % self.ring.count
            self.length -= 1
            if let count = self.members[oldest] { self.members[oldest] = count > 1 ? count - 1 : nil }
        }
        self.ring[(self.start + self.length) % self.ring.count] = hash
        self.length += 1
        self.members[hash, default: 0] += 1
    }

    /// Whether `hash` was in the list (it stays in the ring; the membership is consumed).
    mutating func remove(_ hash: UInt64) -> Bool {
        guard let count = self.members[hash] else { return false }
        self.members[hash] = count > 1 ? count - 1 : nil
        return true
    }
}
