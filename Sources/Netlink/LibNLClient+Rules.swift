#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NetModel
import NetlinkShim

extension LibNLClient {
    /// Adds a lookup rule; EEXIST (isExists) when an identical rule is already there.
    public func addRule(_ rule: Rule) throws(NetlinkError) {
        guard var r = rule.shim else { throw unencodable("add rule", rule) }
        try check("add rule", "\(rule)", nlshim_rule_add(sock, &r))
    }

    /// Deletes the rule with exactly these fields: every field, priority and table included, goes
    /// into the request, because the kernel matches only on the attributes it is sent.
    public func deleteRule(_ rule: Rule) throws(NetlinkError) {
        guard var r = rule.shim else { throw unencodable("delete rule", rule) }
        try check("delete rule", "\(rule)", nlshim_rule_delete(sock, &r))
    }

    /// Lookup rules of `family`. Rules with other actions, or with selectors `Rule` has no field
    /// for (not, oif, tos, ports, uid range, ...), are left out so they are never deleted by
    /// mistake through a narrower-looking copy.
    public func rules(family: AddressFamily) throws(NetlinkError) -> [Rule] {
        let raw: [nlshim_rule] = try dump("list rules") { ctx in
            nlshim_rule_list(sock, family.shimValue, { appendItem($0, $1) }, ctx)
        }
        return raw.compactMap(Rule.init)
    }

    private func unencodable(_ operation: String, _ rule: Rule) -> NetlinkError {
        NetlinkError(operation: operation, errno: EINVAL,
                     detail: "\(rule) (iif name longer than 15 bytes, or a prefix of another family)")
    }
}
