#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NetModel
import NetlinkShim

extension LibNLClient {
    public func links() throws(NetlinkError) -> [LinkInfo] {
        let raw: [nlshim_link] = try dump("list links") { ctx in
            nlshim_link_list(sock, { appendItem($0, $1) }, ctx)
        }
        return raw.map(LinkInfo.init)
    }

    /// nil when there is no link of that name (the kernel's ENODEV).
    public func link(named name: String) throws(NetlinkError) -> LinkInfo? {
        var l = nlshim_link()
        let rc = nlshim_link_get_by_name(sock, name, &l)
        if rc == -ENODEV { return nil }
        try check("get link", "\(name)", rc)
        return LinkInfo(l)
    }

    public func link(index: Int32) throws(NetlinkError) -> LinkInfo? {
        var l = nlshim_link()
        let rc = nlshim_link_get_by_index(sock, index, &l)
        if rc == -ENODEV { return nil }
        try check("get link", "#\(index)", rc)
        return LinkInfo(l)
    }

    /// Found through a full dump: the kernel has no lookup by MAC.
    public func link(withMAC mac: MACAddress) throws(NetlinkError) -> LinkInfo? {
        try links().first { $0.mac == mac }
    }

    /// `mtu` 0 keeps the kernel default. Neither end is brought up: setting IFF_UP in the
    /// creating message fails (ENOTCONN) when the peer goes to another namespace.
    public func addVeth(name: String, peerName: String, peerNamespaceFD: Int32, mtu: UInt32,
                        mac: MACAddress? = nil, peerMAC: MACAddress? = nil) throws(NetlinkError) {
        let a = mac?.bytes, b = peerMAC?.bytes
        let rc = a.withOptionalBytes { pa in b.withOptionalBytes { pb in nlshim_link_add_veth(sock, name, peerName, peerNamespaceFD, mtu, pa, pb) } }
        try check("add veth", "\(name) peer \(peerName) mtu \(mtu)", rc)
    }

    public func addVLAN(name: String, parentIndex: Int32, vlanID: UInt16, mac: MACAddress) throws(NetlinkError) {
        let rc = mac.bytes.withUnsafeBufferPointer { nlshim_link_add_vlan(sock, name, parentIndex, vlanID, $0.baseAddress) }
        try check("add vlan", "\(name) on #\(parentIndex) id \(vlanID) mac \(mac)", rc)
    }

    public func setLinkUp(index: Int32) throws(NetlinkError) {
        try check("set link up", "#\(index)", nlshim_link_set_up(sock, index))
    }

    public func setMTU(index: Int32, mtu: UInt32) throws(NetlinkError) {
        try check("set mtu", "#\(index) mtu \(mtu)", nlshim_link_set_mtu(sock, index, mtu))
    }

    public func setAlias(index: Int32, alias: String, up: Bool) throws(NetlinkError) {
        try check(up ? "set alias and up" : "set alias", "#\(index) alias \(alias)", nlshim_link_set_alias(sock, index, alias, up ? 1 : 0))
    }

    public func deleteLink(index: Int32) throws(NetlinkError) {
        try check("delete link", "#\(index)", nlshim_link_delete(sock, index))
    }
}

extension Optional where Wrapped == [UInt8] {
    /// The bytes' address for a C call, or NULL.
    func withOptionalBytes<R>(_ body: (UnsafePointer<UInt8>?) -> R) -> R {
        switch self {
        case .some(let a): a.withUnsafeBufferPointer { body($0.baseAddress) }
        case .none: body(nil)
        }
    }
}
