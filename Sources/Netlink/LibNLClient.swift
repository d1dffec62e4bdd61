#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NetlinkShim

/// `NetlinkClient` over the libnl shim: one NETLINK_ROUTE socket bound to one network namespace.
///
/// Use from one thread at a time: the socket carries request/response state (sequence numbers,
/// the last kernel error). The namespace is entered only while the socket is created, and only
/// by the creating thread, so callers never switch namespaces themselves.
///
/// Operations live in extensions by object kind (LibNLClient+Links.swift, +Addresses, +Routes,
/// +Rules, +Neighbors); this file holds the socket and the call/dump plumbing they share.
public final class LibNLClient: NetlinkClient {
    /// The namespace this client talks to; nil for the creating thread's namespace.
    public let namespacePath: String?
    let sock: OpaquePointer

    /// Opens a socket in the namespace at `namespacePath` (/run/netns/<n>, /proc/<pid>/ns/net),
    /// or in the calling thread's current namespace when nil.
    public init(namespacePath: String? = nil) throws(NetlinkError) {
        var out: OpaquePointer?
        let rc = nlshim_open(namespacePath, &out)
        guard rc == 0, let out else {
            throw NetlinkError(operation: "open netlink socket", errno: rc < 0 ? -rc : EIO,
                               detail: namespacePath.map { "in \($0)" } ?? "")
        }
        self.namespacePath = namespacePath
        sock = out
    }

    deinit { nlshim_close(sock) }

    /// The error for a failed shim call `rc` (-errno), with the reason text when there is one:
    /// the kernel's extended ack ("Unknown device type") or the shim's own check.
    func failure(_ operation: String, _ rc: Int32, _ detail: String) -> NetlinkError {
        var detail = detail
        if let text = nlshim_last_error_message(sock).map({ String(cString: $0) }), !text.isEmpty {
            detail += detail.isEmpty ? "(\(text))" : " (\(text))"
        }
        return NetlinkError(operation: operation, errno: rc < 0 ? -rc : EIO, detail: detail)
    }

    /// Runs one request; `rc` is the shim's 0 or -errno.
    func check(_ operation: String, _ detail: @autoclosure () -> String, _ rc: Int32) throws(NetlinkError) {
        if rc != 0 { throw failure(operation, rc, detail()) }
    }

    /// Runs a dump that appends each reported C struct to the `[Item]` behind its context
    /// pointer. A dump the kernel flags as interrupted by a concurrent change (EINTR) is
    /// retried from scratch, as iproute2 does.
    func dump<Item>(_ operation: String, _ run: (UnsafeMutableRawPointer) -> Int32) throws(NetlinkError) -> [Item] {
        var attempts = 0
        while true {
            var items: [Item] = []
            let rc = withUnsafeMutablePointer(to: &items) { run(UnsafeMutableRawPointer($0)) }
            if rc == 0 { return items }
            attempts += 1
            if rc != -EINTR || attempts >= 5 { throw failure(operation, rc, "") }
        }
    }
}

/// Appends a C callback's item to the `[Item]` behind `ctx` (see `LibNLClient.dump`).
@inline(__always)
func appendItem<Item>(_ item: UnsafePointer<Item>?, _ ctx: UnsafeMutableRawPointer?) {
    guard let item, let ctx else { return }
    ctx.assumingMemoryBound(to: [Item].self).pointee.append(item.pointee)
}
