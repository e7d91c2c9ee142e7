/// Writes Redis commands in the RESP2 request form (an array of length-prefixed bulk strings) into one reusable
/// buffer, for pipelines of many commands. Like the argv API, every argument is a binary-safe bulk string whose
/// length is sent ahead of it: nothing is ever formatted into command text.
struct RESPEncoder {
    private(set) var bytes: [UInt8]
    /// Commands written since the encoder was created (a `drain` does not reset it: replies are read after).
    private(set) var commandCount = 0

    init(capacity: Int) {
        self.bytes = []
        self.bytes.reserveCapacity(capacity)
    }

    /// Starts a command of `argumentCount` arguments; the arguments follow.
    mutating func command(_ argumentCount: Int) {
        self.bytes.append(UInt8(ascii: "*"))
        self.appendDecimal(argumentCount)
        self.bytes.append(contentsOf: [0x0D, 0x0A])
        self.commandCount += 1
    }

    /// Appends one argument.
    mutating func argument(_ value: some Collection<UInt8>) {
        self.argumentHeader(value.count)
        self.bytes.append(contentsOf: value)
        self.bytes.append(contentsOf: [0x0D, 0x0A])
    }

    /// Appends one argument of `count` bytes that `write` appends to the buffer (exactly `count`, checked).
    mutating func argument(count: Int, _ write: (inout [UInt8]) -> Void) {
        self.argumentHeader(count)
        let start = self.bytes.count
        write(&self.bytes)
        precondition(self.bytes.count - start == count, "RESP argument length mismatch")
        self.bytes.append(contentsOf: [0x0D, 0x0A])
    }

    /// Appends a decimal integer argument.
    mutating func argument(_ value: Int) {
        self.argument(String(value).utf8)  // a small string: held inline, no allocation
    }

    /// Hands the buffered bytes to `send` and empties the buffer, keeping its storage.
    mutating func drain<E: Error>(_ send: (UnsafeRawBufferPointer) throws(E) -> Void) throws(E) {
        guard !self.bytes.isEmpty else { return }
        // withUnsafeBytes is rethrows, which erases the typed error; carry it out by hand.
        var failure: E?
        self.bytes.withUnsafeBytes { buffer in
            do throws(E) { try send(buffer) } catch { failure = error }
        }
        if let failure { throw failure }
        self.bytes.removeAll(keepingCapacity: true)
    }

    private mutating func argumentHeader(_ count: Int) {
        self.bytes.append(UInt8(ascii: "$"))
        self.appendDecimal(count)
        self.bytes.append(contentsOf: [0x0D, 0x0A])
    }

    private mutating func appendDecimal(_ value: Int) {
        if value < 0 { self.bytes.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits = 1
        var probe = magnitude
        while probe >= 10 {
            probe /= 10
            digits += 1
        }
        self.bytes.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: digits))
        var index = self.bytes.count - 1
        repeat {
            self.bytes[index] = 0x30 + UInt8(magnitude % 10)
            magnitude /= 10
            index -= 1
        } while magnitude > 0
    }
}
