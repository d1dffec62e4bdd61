#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemIO

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
public struct ProcSysctl: SysctlWriter, Sendable {
    public var root: String

    public init(root: String = "/proc/sys") { self.root = root }

    public func write(_ key: String, _ value: String) throws(SysctlError) {
        do {
            let fd = try FileDescriptor.open(path: "\(root)/\(key)", O_WRONLY)
            defer { fd.closeQuietly() }
            try fd.writeFully(Array(value.utf8))
        } catch { throw SysctlError(key: key, errno: error.rawValue) }
    }

    public func read(_ key: String) throws(SysctlError) -> String {
        let bytes: [UInt8]
        do throws(Errno) { bytes = try FileIO.read(path: "\(root)/\(key)") } catch { throw SysctlError(key: key, errno: error.rawValue) }
        var s = String(decoding: bytes, as: UTF8.self)
        while s.last == "\n" { s.removeLast() }
        return s
    }
}
