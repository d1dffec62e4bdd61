import Netlink

/// Opens the namespaces a command needs. A protocol so plugin logic runs against fakes.
public protocol DatapathProvider {
    /// Host side only (DEL, GC).
    func hostContext() throws(NetlinkError) -> DatapathContext
    /// Host plus the pod namespace at `netnsPath` (ADD, CHECK).
    func podContext(netnsPath: String) throws(NetlinkError) -> DatapathContext
}
