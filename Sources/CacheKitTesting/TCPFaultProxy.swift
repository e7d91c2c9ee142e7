public import CacheKit
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
public import Darwin
#endif

/// `close(2)`, reachable from types that have a `close` method of their own.
private func closeSocket(_ fd: Int32) { close(fd) }

/// A loopback TCP proxy that injects network faults between a client and a server: added latency, a stall (the
/// connection stays open and nothing moves), or a reset (RST) after a number of bytes. The fault can be changed
/// while connections are open; it applies to every connection from the next chunk on.
///
/// For fault tests where `tc netem` is not available: point a client at `port` instead of the server's.
///
/// ```swift
/// let proxy = try TCPFaultProxy(targetPort: 6379)
/// proxy.fault = .latency(.milliseconds(400))
/// ```
public final class TCPFaultProxy: @unchecked Sendable {
    /// What the proxy does to the bytes it forwards.
    public enum Fault: Sendable, Equatable {
        /// Forward everything as it comes.
        case none
        /// Hold each chunk this long before forwarding it (both directions).
        case latency(Duration)
        /// Forward nothing until the fault changes; connections stay open.
        case stall
        /// Reset each connection (RST to both sides) once it has forwarded this many more bytes from the server.
        case resetAfter(bytes: Int)
        /// Reset each connection once it has forwarded this many more bytes from the client: a reset in the middle of
        /// a large request, while the client is still writing (where a plain `write()` raises SIGPIPE).
        case resetAfterClientBytes(Int)
    }

    /// The loopback port clients connect to.
    public let port: Int
    private let targetPort: Int
    private let listener: Int32
    private let state = LockedState(State())

    private struct State {
        var fault: Fault = .none
        /// Bumped on each change, so that `resetAfter` counts from the change.
        var generation = 0
        var stopped = false
        var connections = 0
        var resets = 0
    }

    /// The current fault.
    public var fault: Fault {
        get { self.state.withLock { $0.fault } }
        set {
            self.state.withLock {
                $0.fault = newValue
                $0.generation += 1
            }
        }
    }

    /// Connections accepted so far.
    public var connectionCount: Int { self.state.withLock { $0.connections } }
    /// Connections reset by `resetAfter` so far.
    public var resetCount: Int { self.state.withLock { $0.resets } }

    /// Listens on an ephemeral loopback port and forwards to `127.0.0.1:targetPort`.
    public init(targetPort: Int) throws {
        self.targetPort = targetPort
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw CacheError(.unavailable, "socket() failed: errno \(errno)") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = Self.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 64) == 0 else {
            close(fd)
            throw CacheError(.unavailable, "cannot listen on loopback: errno \(errno)")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.listener = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread { [self] in self.acceptLoop() }
    }

    /// Stops accepting and closes every connection.
    public func stop() {
        self.state.withLock { $0.stopped = true }
    }

    deinit {
        self.state.withLock { $0.stopped = true }
        close(self.listener)
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        return address
    }

    private var stopped: Bool { self.state.withLock { $0.stopped } }

    /// Waits up to 50 ms for `fd` to be readable: true when it is (or has hung up).
    private static func readable(_ fd: Int32) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, 50) > 0
    }

    private func acceptLoop() {
        while !self.stopped {
            guard Self.readable(self.listener) else { continue }
            let client = accept(self.listener, nil, nil)
            guard client >= 0 else { continue }
            let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = Self.loopback(port: self.targetPort)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if server < 0 || connected != 0 {
                // The server is down: the client sees a reset, as it would connecting to it directly.
                Self.reset(client)
                if server >= 0 { close(server) }
                continue
            }
            self.state.withLock { $0.connections += 1 }
            let connection = Connection(client: client, server: server)
            Thread.detachNewThread { [self] in self.pump(connection, from: client, to: server, fromServer: false) }
            Thread.detachNewThread { [self] in self.pump(connection, from: server, to: client, fromServer: true) }
        }
    }

    /// Closes `fd` with SO_LINGER 0, so the peer gets a RST rather than a FIN.
    private static func reset(_ fd: Int32) {
        var linger = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<linger>.size))
        close(fd)
    }

    /// Both sockets of one proxied connection, closed once by whichever pump finishes first.
    private final class Connection: @unchecked Sendable {
        let client: Int32, server: Int32
        private let state = LockedState((closed: false, forwarded: 0, generation: -1))

        init(client: Int32, server: Int32) {
            self.client = client
            self.server = server
        }

        var isClosed: Bool { self.state.withLock { $0.closed } }

        /// Adds `count` forwarded bytes under fault generation `generation`; returns the total since it began.
        func forwarded(_ count: Int, generation: Int) -> Int {
            self.state.withLock {
                if $0.generation != generation { ($0.generation, $0.forwarded) = (generation, 0) }
                $0.forwarded += count
                return $0.forwarded
            }
        }

        func close(reset: Bool) {
            let first = self.state.withLock { state -> Bool in
                defer { state.closed = true }
                return !state.closed
            }
            guard first else { return }
            if reset {
                TCPFaultProxy.reset(self.client)
                TCPFaultProxy.reset(self.server)
            } else {
                shutdown(self.client, Int32(SHUT_RDWR))
                shutdown(self.server, Int32(SHUT_RDWR))
                closeSocket(self.client)
                closeSocket(self.server)
            }
        }
    }

    private func pump(_ connection: Connection, from source: Int32, to destination: Int32, fromServer: Bool) {
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while !connection.isClosed {
            if self.stopped {
                connection.close(reset: false)
                return
            }
            guard Self.readable(source) else { continue }
            let count = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
            guard count > 0 else {
                connection.close(reset: false)
                return
            }
            var limit = count
            // Apply the fault as it is now; a stall holds the chunk until it changes.
            while true {
                let (fault, generation) = self.state.withLock { ($0.fault, $0.generation) }
                switch fault {
                case .none:
                    break
                case .stall:
                    if connection.isClosed || self.stopped { return }
                    usleep(10_000)
                    continue
                case .latency(let delay):
                    Thread.sleep(forTimeInterval: Double(delay.components.seconds) + Double(delay.components.attoseconds) / 1e18)
                    // A chunk held past `stop()` is dropped: forwarded late, it would reach the server in a later
                    // test (a request held 2 s once consumed the next test's injected fault).
                    if connection.isClosed || self.stopped {
                        connection.close(reset: false)
                        return
                    }
                case .resetAfter, .resetAfterClientBytes:
                    // Each reset fault counts the bytes of one direction only.
                    let bytes: Int? = switch fault {
                    case .resetAfter(let bytes) where fromServer: bytes
                    case .resetAfterClientBytes(let bytes) where !fromServer: bytes
                    default: nil
                    }
                    if let bytes {
                        let total = connection.forwarded(count, generation: generation)
                        if total >= bytes { limit = max(0, count - (total - bytes)) }
                    }
                }
                break
            }
            var sent = 0
            while sent < limit {
                // send with MSG_NOSIGNAL, not write: a peer that reset the connection must not raise SIGPIPE, which
                // would end the whole process (the test run died that way, mid-suite, with no report).
                let written = buffer.withUnsafeBytes { send(destination, $0.baseAddress! + sent, limit - sent, Int32(MSG_NOSIGNAL)) }
                guard written > 0 else {
                    connection.close(reset: false)
                    return
                }
                sent += written
            }
            if limit < count {
                self.state.withLock { $0.resets += 1 }
                connection.close(reset: true)
                return
            }
        }
    }
}

extension TCPFaultProxy {
    /// Applies each of `faults` for `duration` in turn, after a calm `pause`, while the caller's load runs, and
    /// records with Swift Testing that each phase was counted as layer errors (read from `cache`'s first layer),
    /// that the process did not stall with the network (the phase ends within `duration` + 4 s), and that
    /// `backend` works again within `recoveryLimit` once the fault is cleared. Returns one report line per fault.
    public func runPhases(
        _ faults: [Fault],
        on cache: MultiLayerCache,
        probing backend: any CacheBackend,
        duration: Duration = .seconds(1),
        pause: Duration = .milliseconds(300),
        recoveryLimit: Duration
    ) async throws -> [String] {
        var report: [String] = []
        for fault in faults {
            try await Task.sleep(for: pause)
            let errorsBefore = cache.statistics().layers[0].errors
            let phase = ContinuousClock.now
            self.fault = fault
            try await Task.sleep(for: duration)
            self.fault = .none
            // Liveness, not speed: a client blocking the cooperative pool on the stalled network (PQcancel did)
            // froze every task, this one included, until the kernel gave up on the connection (about 60 s).
            #expect(ContinuousClock.now - phase < duration + .seconds(4), "\(fault): the process stalled along with the network")
            let recovered = await timeUntilWorking(backend)
            let errors = cache.statistics().layers[0].errors - errorsBefore
            report.append("\(fault): \(errors) layer errors, recovered \(recovered)")
            #expect(errors > 0, "\(fault) was not counted")
            #expect(recovered < recoveryLimit, "\(fault): the pool took \(recovered) to recover")
        }
        return report
    }
}
