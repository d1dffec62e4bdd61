import NetModel

/// One netlink connection bound to one network namespace. Every operation is a single request.
/// Logic code depends on this protocol only; tests substitute a recording fake.
public protocol NetlinkClient: AnyObject {
    // Links
    func links() throws(NetlinkError) -> [LinkInfo]
    func link(named name: String) throws(NetlinkError) -> LinkInfo?
    func link(index: Int32) throws(NetlinkError) -> LinkInfo?
    func link(withMAC mac: MACAddress) throws(NetlinkError) -> LinkInfo?
    /// Creates a veth pair: `name` here, `peerName` in the namespace of `peerNamespaceFD`
    /// (an open fd of /proc/<pid>/ns/net or /run/netns/<n>; -1 keeps the peer here). Both ends get `mtu`;
    /// `mac` / `peerMAC` nil let the kernel choose.
    func addVeth(name: String, peerName: String, peerNamespaceFD: Int32, mtu: UInt32, mac: MACAddress?, peerMAC: MACAddress?) throws(NetlinkError)
    /// Creates an 802.1Q link on `parentIndex` with the given MAC; MTU is inherited from the parent.
    func addVLAN(name: String, parentIndex: Int32, vlanID: UInt16, mac: MACAddress) throws(NetlinkError)
    func setLinkUp(index: Int32) throws(NetlinkError)
    func setMTU(index: Int32, mtu: UInt32) throws(NetlinkError)
    /// Sets the link's alias (`ip link show` prints it); at most 255 bytes. `up` also brings the
    /// link up in the same request.
    func setAlias(index: Int32, alias: String, up: Bool) throws(NetlinkError)
    func deleteLink(index: Int32) throws(NetlinkError)

    // Addresses
    func addAddress(_ address: InterfaceAddress) throws(NetlinkError)
    func addresses(family: AddressFamily) throws(NetlinkError) -> [InterfaceAddress]

    // Routes (all tables)
    func replaceRoute(_ route: Route) throws(NetlinkError)
    func deleteRoute(_ route: Route) throws(NetlinkError)
    func routes(family: AddressFamily) throws(NetlinkError) -> [Route]

    // Rules
    func addRule(_ rule: Rule) throws(NetlinkError)
    func deleteRule(_ rule: Rule) throws(NetlinkError)
    func rules(family: AddressFamily) throws(NetlinkError) -> [Rule]

    // Neighbours
    func addNeighbor(_ neighbor: Neighbor) throws(NetlinkError)
    func neighbors(family: AddressFamily) throws(NetlinkError) -> [Neighbor]
}

extension NetlinkClient {
    /// Deletes every rule of `family` for which `matching` is true; returns how many went.
    /// A rule that vanished meanwhile counts as deleted (another DEL raced us to it).
    @discardableResult
    public func deleteRules(family: AddressFamily, matching: (Rule) -> Bool) throws(NetlinkError) -> Int {
        var n = 0
        for r in try rules(family: family) where matching(r) {
            do { try deleteRule(r) } catch where error.isNotFound { continue }
            n += 1
        }
        return n
    }
}

extension NetlinkClient {
    public func setAlias(index: Int32, alias: String) throws(NetlinkError) { try setAlias(index: index, alias: alias, up: false) }
}
