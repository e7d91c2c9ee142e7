/// An incremental parser of Server-Sent Events (the WHATWG `text/event-stream` format), fed bytes as they arrive.
///
/// Lines end in LF, CR LF or CR; `data:` lines of one event are joined with LF; lines starting with `:` are comments
/// (keep-alives) and are ignored; a blank line ends an event; other fields (`event:`, `id:`, `retry:`) are kept
/// by name. A chunk boundary may fall anywhere, even inside a CR LF pair or a multi-byte character.
public struct ServerSentEventParser: Sendable {
    /// One event.
    public struct Event: Sendable, Hashable {
        /// The `event:` field, if any.
        public var name: String?
        /// The `data:` lines joined by LF.
        public var data: String
        /// The `id:` field, if any.
        public var id: String?
    }

    private var line: [UInt8] = []
    private var data: [UInt8] = []
    private var hasData = false
    private var name: String?
    private var id: String?
    private var lastWasCR = false
    /// The largest event accepted, in bytes; a longer one is an error (a broken or hostile stream). Default 8 MiB.
    public var maximumEventBytes: Int

    public init(maximumEventBytes: Int = 8 << 20) { self.maximumEventBytes = maximumEventBytes }

    /// An event or line longer than `maximumEventBytes`.
    public struct TooLarge: Error, CustomStringConvertible {
        public var description: String { "a Server-Sent Event exceeded the size limit" }
    }

    /// Feeds bytes; returns the events they complete.
    public mutating func feed(_ bytes: some Sequence<UInt8>) throws(TooLarge) -> [Event] {
        var events: [Event] = []
        for byte in bytes {
            if byte == 0x0A, self.lastWasCR {
                self.lastWasCR = false
                continue
            }
            self.lastWasCR = byte == 0x0D
            if byte == 0x0A || byte == 0x0D {
                if let event = self.endLine() { events.append(event) }
            } else {
                self.line.append(byte)
                guard self.line.count + self.data.count <= self.maximumEventBytes else { throw TooLarge() }
            }
        }
        return events
    }

    private mutating func endLine() -> Event? {
        defer { self.line.removeAll(keepingCapacity: true) }
        if self.line.isEmpty {
            guard self.hasData else {
                self.name = nil
                return nil
            }
            let event = Event(name: self.name, data: String(decoding: self.data, as: UTF8.self), id: self.id)
            self.data.removeAll(keepingCapacity: true)
            self.hasData = false
            self.name = nil
            return event
        }
        if self.line.first == UInt8(ascii: ":") { return nil }
        var field = self.line[...]
        var value: ArraySlice<UInt8> = []
        if let colon = self.line.firstIndex(of: UInt8(ascii: ":")) {
            field = self.line[..<colon]
            value = self.line[(colon + 1)...]
            if value.first == UInt8(ascii: " ") { value = value.dropFirst() }
        }
        switch String(decoding: field, as: UTF8.self) {
        case "data":
            if self.hasData { self.data.append(0x0A) }
            self.data.append(contentsOf: value)
            self.hasData = true
        case "event":
            self.name = String(decoding: value, as: UTF8.self)
        case "id":
            self.id = String(decoding: value, as: UTF8.self)
        default:
            break
        }
        return nil
    }
}
