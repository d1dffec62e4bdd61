#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NetlinkShim

/// An open network namespace file (/run/netns/<n>, /proc/<pid>/ns/net), closed on deinit.
/// Its `fd` is what `addVeth(peerNamespaceFD:)` wants; keep the handle alive across that call.
public final class NetworkNamespaceHandle: Sendable {
    public let path: String
    public let fd: Int32

    public init(path: String) throws(NetlinkError) {
        let fd = nlshim_netns_open(path)
        guard fd >= 0 else { throw NetlinkError(operation: "open network namespace", errno: -fd, detail: path) }
        self.path = path
        self.fd = fd
    }

    deinit { close(fd) }
}
