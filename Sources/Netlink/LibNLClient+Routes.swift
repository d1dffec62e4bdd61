#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NetModel
import NetlinkShim

extension LibNLClient {
    /// Creates or replaces a unicast route (protocol boot); tables above 255 work.
    public func replaceRoute(_ route: Route) throws(NetlinkError) {
        guard var r = route.shim else { throw unencodable("replace route", route) }
        try check("replace route", "\(route)", nlshim_route_replace(sock, &r))
    }

    /// Deletes by table and destination (plus gateway/device when set); the scope is not matched.
    /// ESRCH (isNotFound) when there is no such route.
    public func deleteRoute(_ route: Route) throws(NetlinkError) {
        guard var r = route.shim else { throw unencodable("delete route", route) }
        try check("delete route", "\(route)", nlshim_route_delete(sock, &r))
    }

    /// Unicast routes in every table, without cache clones. Multipath routes show their first
    /// nexthop; routes with a scope the model lacks (site, nowhere) are left out.
    public func routes(family: AddressFamily) throws(NetlinkError) -> [Route] {
        let raw: [nlshim_route] = try dump("list routes") { ctx in
            nlshim_route_list(sock, family.shimValue, { appendItem($0, $1) }, ctx)
        }
        return raw.compactMap(Route.init)
    }

    private func unencodable(_ operation: String, _ route: Route) -> NetlinkError {
        NetlinkError(operation: operation, errno: EINVAL, detail: "\(route) (gateway family differs from the destination's)")
    }
}
