#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NetModel
import NetlinkShim

extension LibNLClient {
    /// Adds or replaces a permanent entry (the `permanent` field is not consulted).
    public func addNeighbor(_ neighbor: Neighbor) throws(NetlinkError) {
        var n = neighbor.shim
        try check("add neighbor", "\(neighbor.address) lladdr \(neighbor.mac) dev #\(neighbor.linkIndex)",
                  nlshim_neigh_add_permanent(sock, &n))
    }

    /// Entries that have a link-layer address (incomplete/failed ones are left out).
    public func neighbors(family: AddressFamily) throws(NetlinkError) -> [Neighbor] {
        let raw: [nlshim_neigh] = try dump("list neighbors") { ctx in
            nlshim_neigh_list(sock, family.shimValue, { appendItem($0, $1) }, ctx)
        }
        return raw.compactMap(Neighbor.init)
    }
}
