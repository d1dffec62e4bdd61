#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A failed netlink operation. `errno` is the kernel's answer (positive), so callers decide on
/// codes (ENOENT, EEXIST, ...) rather than on message text.
public struct NetlinkError: Error, Hashable, Sendable, CustomStringConvertible {
    public var operation: String
    public var errno: Int32
    public var detail: String

    public init(operation: String, errno: Int32, detail: String = "") {
        self.operation = operation; self.errno = errno; self.detail = detail
    }

    /// The object (link, route, rule, neighbour, namespace) is not there.
    public var isNotFound: Bool { errno == ENOENT || errno == ESRCH || errno == ENODEV || errno == EADDRNOTAVAIL }
    public var isExists: Bool { errno == EEXIST }

    public var description: String {
        let msg = String(cString: strerror(errno))
        return "\(operation)\(detail.isEmpty ? "" : " \(detail)"): \(msg) (errno \(errno))"
    }
}
