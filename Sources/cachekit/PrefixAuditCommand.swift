import ArgumentParser
import CacheKit
import CacheKitPromptPrefix

struct PrefixAuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prefix-audit",
        abstract: "Report where requests stop sharing a cached prompt prefix, and why.",
        discussion: """
            Reads chat request bodies, one JSON object per line (JSONL), in the order they were sent, and replays \
            them against a provider-style prefix cache (minimum 1,024 tokens, 128-token steps, estimated token \
            counts): the estimated hit ratio, every break with its reason, and what in each distinct static part \
            would break it. --demo runs a built-in example: a support bot whose prompt drifts, before and after \
            CacheKitPromptPrefix's builder.
            """
    )

    @Argument(help: "A JSONL file of request bodies, or - for standard input.")
    var file: String?

    @Flag(help: "Run the built-in drifting-prompt example instead of reading requests.")
    var demo = false

    @Option(help: "The provider's minimum cached prefix, in tokens.")
    var minimumTokens = 1024

    func run() throws {
        let auditor = PrefixAuditor(minimumPrefixTokens: self.minimumTokens)
        if self.demo {
            let (before, after) = DriftExample.requests()
            print("Before (time at the top of the system prompt, tools in registry order):")
            print(auditor.audit(before).description.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
            for finding in auditor.audit(before[0]) { print("  finding: \(finding)") }
            print("After (PromptBuilder: static instructions and sorted tools first, the time in the dynamic context):")
            print(auditor.audit(after).description.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
            return
        }
        guard let file = self.file else { throw ValidationError("give a JSONL file of requests, or --demo") }
        let bytes = try readInput(file)
        var requests: [ChatRequest] = []
        for (number, line) in bytes.split(separator: UInt8(ascii: "\n")).enumerated() where !line.allSatisfy({ $0 == 0x20 || $0 == 0x0D }) {
            do { requests.append(try ChatRequest(json: line)) } catch { throw CLIError("\(file) line \(number + 1): \(error.message)") }
        }
        print(auditor.audit(requests))
        var seen = Set<String>()
        for request in requests {
            for finding in auditor.audit(request) where seen.insert(finding.description).inserted { print("finding: \(finding)") }
        }
    }
}

/// The example of `prefix-audit --demo`: twenty questions to a support bot with a 1,500-token instruction block.
enum DriftExample {
    static func requests() -> (before: [ChatRequest], after: [PromptLayout]) {
        let tools: [JSONValue] = ["lookup_order", "cancel_order", "track_parcel", "open_ticket"].map { name in
            ["type": "function", "function": ["name": .string(name), "description": .string("The \(name) operation."),
                                              "parameters": ["type": "object", "properties": ["id": ["type": "string"]]]]]
        }
        let instructions = (1...60).map { "Rule \($0): answer politely, cite the help page, never promise a delivery date, escalate refunds above the limit." }
            .joined(separator: "\n")
        var before: [ChatRequest] = []
        var after: [PromptLayout] = []
        for index in 0..<20 {
            let now = "Current time: 2026-11-26T09:\(index < 10 ? "0" : "")\(index):00Z"
            let question = "Where is my order 10\(index)?"
            // The registry yields tools in a different order now and then.
            let order = index % 3 == 0 ? tools : tools.reversed()
            var request = ChatRequest(model: "gpt-4o-mini", messages: [.system(now + "\n" + instructions), .user(question)])
            request["tools"] = .array(order)
            before.append(request)
            after.append(PromptBuilder(model: "gpt-4o-mini", instructions: [instructions], tools: order, context: [now]).build(userMessage: question))
        }
        return (before, after)
    }
}
