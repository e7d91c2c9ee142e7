import CacheKitOpenAI
import Testing

@Suite("Server-Sent Events parser")
struct ServerSentEventParserTests {
    let stream = ": keep-alive\r\n\r\ndata: {\"a\":1}\r\n\r\nevent: update\ndata: line one\ndata: line two\nid: 7\n\ndata: ünï ✓\r\rdata: [DONE]\n\n"

    func parseAll(splitAt sizes: [Int]) throws -> [ServerSentEventParser.Event] {
        var parser = ServerSentEventParser()
        var events: [ServerSentEventParser.Event] = []
        let bytes = Array(self.stream.utf8)
        var position = 0
        var index = 0
        while position < bytes.count {
            let size = sizes[index % sizes.count]
            index += 1
            events += try parser.feed(bytes[position..<min(bytes.count, position + size)])
            position += size
        }
        return events
    }

    @Test(arguments: [[1], [2], [3], [7], [1, 5, 2], [1000]])
    func eventsAreTheSameWhereverTheChunksSplit(sizes: [Int]) throws {
        let events = try self.parseAll(splitAt: sizes)
        #expect(events.map(\.data) == ["{\"a\":1}", "line one\nline two", "ünï ✓", "[DONE]"])
        #expect(events[1].name == "update")
        #expect(events[1].id == "7")
    }

    @Test func oversizedEventsAreRefused() {
        var parser = ServerSentEventParser(maximumEventBytes: 16)
        #expect(throws: ServerSentEventParser.TooLarge.self) { _ = try parser.feed(Array("data: 0123456789abcdefghij\n\n".utf8)) }
    }
}
