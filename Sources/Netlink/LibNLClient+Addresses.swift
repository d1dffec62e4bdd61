#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NetModel
import NetlinkShim

extension LibNLClient {
    /// Adds the address like `ip addr add A/len dev X` (no broadcast, no peer); EEXIST when present.
    public func addAddress(_ address: InterfaceAddress) throws(NetlinkError) {
        var a = address.shim
        try check("add address", "\(address.prefix) dev #\(address.linkIndex)", nlshim_addr_add(sock, &a))
    }

    public func addresses(family: AddressFamily) throws(NetlinkError) -> [InterfaceAddress] {
        let raw: [nlshim_addr] = try dump("list addresses") { ctx in
            nlshim_addr_list(sock, family.shimValue, { appendItem($0, $1) }, ctx)
        }
        return raw.compactMap(InterfaceAddress.init)
    }
}
