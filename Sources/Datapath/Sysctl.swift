#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

public struct SysctlError: Error, Sendable, Hashable, CustomStringConvertible {
    public var key: String
    public var errno: Int32

    public init(key: String, errno: Int32) { self.key = key; self.errno = errno }

    public var isNotFound: Bool { errno == ENOENT }
    public var description: String { "sysctl \(key): \(String(cString: strerror(errno))) (errno \(errno))" }
}

/// Kernel parameters by slash-separated key ("net/ipv4/ip_forward"). A protocol so planning and
/// node setup are testable without writing to /proc.
public protocol SysctlWriter {
    func write(_ key: String, _ value: String) throws(SysctlError)
    func read(_ key: String) throws(SysctlError) -> String
}

/// Writes /proc/sys of the calling thread's network namespace.
public struct ProcSysctl: SysctlWriter {
    public var root: String

    public init(root: String = "/proc/sys") { self.root = root }

    public func write(_ key: String, _ value: String) throws(SysctlError) {
        let fd = open("\(root)/\(key)", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SysctlError(key: key, errno: errno) }
        defer { close(fd) }
        let bytes = Array(value.utf8)
        let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, bytes.count) }
        guard n == bytes.count else { throw SysctlError(key: key, errno: n < 0 ? errno : EIO) }
    }

    public func read(_ key: String) throws(SysctlError) -> String {
        let fd = open("\(root)/\(key)", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SysctlError(key: key, errno: errno) }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 256)
        let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, 256) }
        guard n >= 0 else { throw SysctlError(key: key, errno: errno) }
        var s = String(decoding: buf[0..<n], as: UTF8.self)
        while s.last == "\n" { s.removeLast() }
        return s
    }
}
