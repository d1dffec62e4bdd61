import Netlink

/// A plan step that failed, with the kernel's errno kept for the caller to decide on.
public struct DatapathError: Error, Sendable, CustomStringConvertible {
    public enum Cause: Sendable {
        case netlink(NetlinkError)
        case sysctl(SysctlError)
        /// A name the step refers to does not exist (e.g. the host veth for a route).
        case missingLink(String)
    }

    public var step: String
    public var cause: Cause

    public init(step: String, cause: Cause) { self.step = step; self.cause = cause }

    public var errno: Int32? {
        switch cause {
        case .netlink(let e): e.errno
        case .sysctl(let e): e.errno
        case .missingLink: nil
        }
    }

    public var description: String {
        switch cause {
        case .netlink(let e): "\(step): \(e)"
        case .sysctl(let e): "\(step): \(e)"
        case .missingLink(let n): "\(step): link \(n) not found"
        }
    }
}
