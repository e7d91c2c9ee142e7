import CacheKit
import CacheKitRedis
import Testing

@Suite("Redis URLs")
struct RedisConfigurationTests {
    @Test func parsesTheCommonForms() throws {
        let plain = try RedisClient.Configuration(url: "redis://127.0.0.1:6390/3")
        #expect(plain.endpoint == .tcp(host: "127.0.0.1", port: 6390))
        #expect(plain.database == 3)
        #expect(plain.password == nil)
        let acl = try RedisClient.Configuration(url: "redis://alice:p%40ss%3Aw0rd@cache.internal:6380")
        #expect(acl.username == "alice")
        #expect(acl.password == "p@ss:w0rd")
        #expect(acl.endpoint == .tcp(host: "cache.internal", port: 6380))
        let passwordOnly = try RedisClient.Configuration(url: "redis://:secret@localhost")
        #expect(passwordOnly.username == nil && passwordOnly.password == "secret")
        #expect(passwordOnly.endpoint == .tcp(host: "localhost", port: 6379))
        let ipv6 = try RedisClient.Configuration(url: "redis://[::1]:7000/1")
        #expect(ipv6.endpoint == .tcp(host: "::1", port: 7000))
        let socket = try RedisClient.Configuration(url: "unix:///var/run/redis/redis.sock?db=2")
        #expect(socket.endpoint == .unix(path: "/var/run/redis/redis.sock"))
        #expect(socket.database == 2)
    }

    @Test(arguments: [
        ("rediss://cache:6380", "stunnel"), ("http://x", "unsupported scheme"), ("127.0.0.1:6379", "missing scheme"),
        ("redis://host:99999", "port"), ("redis://host:abc", "port"), ("redis:///0", "missing host"),
        ("redis://host/x", "database"), ("redis://a:%zz@host", "percent-encoding"), ("redis://ho st", "not allowed"),
        ("unix://relative.sock", "absolute"), ("redis://[::1", "IPv6"),
    ])
    func badURLsGetAClearError(url: String, reason: String) {
        do {
            _ = try RedisClient.Configuration(url: url)
            Issue.record("accepted \(url)")
        } catch {
            #expect(error.code == .invalidConfiguration)
            #expect(error.message.contains(reason), "\(url): \(error.message)")
        }
    }

    @Test func thePasswordIsNeverPrinted() throws {
        let configuration = try RedisClient.Configuration(url: "redis://alice:hunter2-secret@host:1/0")
        #expect(!configuration.description.contains("hunter2"))
        do {
            _ = try RedisClient.Configuration(url: "redis://alice:hunter2-secret@host:99999/0")
        } catch {
            #expect(!error.description.contains("hunter2"))
        }
    }
}
