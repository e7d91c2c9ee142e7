import CacheKit
import CacheKitPGVector
import CacheKitRedis
import FuzzSupport

/// Any text as a Redis URL, a PostgreSQL connection string and a table prefix: never a crash; a configuration's
/// description never depends on the password or the connection string (so it cannot show them).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    if let redis = try? RedisClient.Configuration(url: text), redis.password != nil {
        var other = redis
        other.password = "another password"
        precondition("\(redis)" == "\(other)", "the Redis configuration's description depends on its password")
    }
    if let postgres = try? PostgresClient.Configuration(connectionString: text, tablePrefix: "ck") {
        let reference = try! PostgresClient.Configuration(connectionString: "postgresql://127.0.0.1/db", tablePrefix: "ck")
        precondition("\(postgres)" == "\(reference)", "the PostgreSQL description depends on the connection string")
    }
    _ = try? PostgresClient.Configuration(connectionString: "postgresql://127.0.0.1/db", tablePrefix: text)
    return 0
}

@_cdecl("FuzzConfig_main")
func fuzzerEntryPoint(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in fuzzConfig(data, size) }
}
