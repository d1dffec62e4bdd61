import Netlink

/// The real kernel through libnl. Keeps the pod netns fd open as long as the provider lives.
public final class LibNLDatapathProvider: DatapathProvider {
    private var namespaces: [NetworkNamespaceHandle] = []

    public init() {}

    public func hostContext() throws(NetlinkError) -> DatapathContext {
        DatapathContext(host: try LibNLClient(), pod: nil, podNamespaceFD: -1, sysctl: ProcSysctl())
    }

    public func podContext(netnsPath: String) throws(NetlinkError) -> DatapathContext {
        let ns = try NetworkNamespaceHandle(path: netnsPath)
        namespaces.append(ns)
        return DatapathContext(host: try LibNLClient(), pod: try LibNLClient(namespacePath: netnsPath),
                               podNamespaceFD: ns.fd, sysctl: ProcSysctl())
    }
}
