#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NetModel
import NetlinkShim

// Conversions between NetModel values and the shim's plain C structs. C fixed-size arrays import
// as tuples, so the byte helpers work on any value's raw bytes.

/// The first `count` bytes of a C array field.
func fieldBytes<T>(of field: T, count: Int) -> [UInt8] {
    withUnsafeBytes(of: field) { Array($0.prefix(count)) }
}

/// Copies `source` into the start of a C array field (the rest stays as it was, zero).
func storeBytes<T>(_ source: [UInt8], into field: inout T) {
    withUnsafeMutableBytes(of: &field) { raw in
        for (i, b) in source.prefix(raw.count).enumerated() { raw[i] = b }
    }
}

/// A NUL-terminated C char array field as a String.
func fieldString<T>(of field: T) -> String {
    withUnsafeBytes(of: field) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
}

/// Stores an interface name into a 16-byte char field; nil when it does not fit with its NUL.
func storeName<T>(_ name: String, into field: inout T) -> Bool {
    let utf8 = Array(name.utf8)
    guard utf8.count < Int(NLSHIM_IFNAMSIZ), !utf8.contains(0) else { return false }
    storeBytes(utf8, into: &field)
    return true
}

extension AddressFamily {
    var shimValue: UInt8 { UInt8(rawValue) }
    var byteCount: Int { self == .ipv4 ? 4 : 16 }
}

extension IPAddress {
    init?<T>(family raw: UInt8, field: T) {
        guard let family = AddressFamily(rawValue: Int32(raw)) else { return nil }
        self.init(family: family, bytes: fieldBytes(of: field, count: family.byteCount))
    }
}

extension LinkInfo {
    init(_ l: nlshim_link) {
        self.init(index: l.index, name: fieldString(of: l.name),
                  mac: l.has_mac != 0 ? MACAddress(bytes: fieldBytes(of: l.mac, count: 6)) : nil,
                  mtu: l.mtu, isUp: l.is_up != 0, kind: fieldString(of: l.kind),
                  parentIndex: l.parent_index, vlanID: l.vlan_id, alias: fieldString(of: l.alias))
    }
}

extension InterfaceAddress {
    init?(_ a: nlshim_addr) {
        guard let ip = IPAddress(family: a.family, field: a.addr),
              let prefix = IPPrefix(address: ip, length: a.prefixlen) else { return nil }
        self.init(linkIndex: a.ifindex, prefix: prefix)
    }

    var shim: nlshim_addr {
        var a = nlshim_addr()
        a.ifindex = linkIndex
        a.family = prefix.family.shimValue
        a.prefixlen = prefix.length
        storeBytes(prefix.address.bytes, into: &a.addr)
        return a
    }
}

extension Route {
    /// nil for routes the model cannot express (a scope other than global/link/host).
    init?(_ r: nlshim_route) {
        guard let dst = IPAddress(family: r.family, field: r.dst),
              let prefix = IPPrefix(address: dst, length: r.dst_len),
              let scope = RouteScope(rawValue: r.scope) else { return nil }
        self.init(destination: prefix,
                  gateway: r.has_gateway != 0 ? IPAddress(family: r.family, field: r.gateway) : nil,
                  outputIndex: r.oif != 0 ? r.oif : nil, table: r.table, scope: scope)
    }

    /// nil when the gateway's family differs from the destination's.
    var shim: nlshim_route? {
        var r = nlshim_route()
        r.family = destination.family.shimValue
        r.dst_len = destination.length
        storeBytes(destination.address.bytes, into: &r.dst)
        if let gateway {
            guard gateway.family == destination.family else { return nil }
            r.has_gateway = 1
            storeBytes(gateway.bytes, into: &r.gateway)
        }
        r.oif = outputIndex ?? 0
        r.table = table
        r.scope = scope.rawValue
        return r
    }
}

/// FR_ACT_TO_TBL from <linux/fib_rules.h>: the only rule action the model expresses.
let ruleActionLookup: UInt8 = 1

extension Rule {
    /// nil for rules the model cannot express: actions other than lookup, or selectors it has
    /// no field for (so that deleting a listed rule never removes a broader or different one).
    init?(_ r: nlshim_rule) {
        guard r.unsupported == 0, r.action == ruleActionLookup,
              let family = AddressFamily(rawValue: Int32(r.family)) else { return nil }
        func prefix<T>(_ has: UInt8, _ field: T, _ length: UInt8) -> IPPrefix? {
            guard has != 0, let a = IPAddress(family: r.family, field: field) else { return nil }
            return IPPrefix(address: a, length: length)
        }
        let iif = fieldString(of: r.iif)
        // The kernel reports FRA_FWMARK only when the mark is non-zero and FRA_FWMASK whenever
        // mark or mask is; "fwmark M" alone is stored with mask 0xffffffff. Report that default
        // mask as absent, so a rule added with only a mark lists back equal to itself.
        var fwmark: UInt32? = r.has_fwmark != 0 ? r.fwmark : nil
        var fwmask: UInt32? = r.has_fwmask != 0 ? r.fwmask : nil
        if fwmark != nil, fwmask == 0xffff_ffff { fwmask = nil }
        // A mask without a mark is "fwmark 0/M" (the kernel omits a zero mark).
        if fwmark == nil, fwmask != nil { fwmark = 0 }
        self.init(family: family, priority: r.priority, table: r.table,
                  inputInterface: iif.isEmpty ? nil : iif,
                  source: prefix(r.has_src, r.src, r.src_len),
                  destination: prefix(r.has_dst, r.dst, r.dst_len),
                  fwmark: fwmark, fwmask: fwmask, ipProtocol: r.ip_proto != 0 ? r.ip_proto : nil)
    }

    /// nil when a field cannot be encoded (name too long, prefix of another family).
    var shim: nlshim_rule? {
        var r = nlshim_rule()
        r.family = family.shimValue
        r.action = ruleActionLookup
        r.priority = priority
        r.table = table
        if let inputInterface, !storeName(inputInterface, into: &r.iif) { return nil }
        if let source {
            guard source.family == family else { return nil }
            r.has_src = 1; r.src_len = source.length
            storeBytes(source.address.bytes, into: &r.src)
        }
        if let destination {
            guard destination.family == family else { return nil }
            r.has_dst = 1; r.dst_len = destination.length
            storeBytes(destination.address.bytes, into: &r.dst)
        }
        if let fwmark { r.has_fwmark = 1; r.fwmark = fwmark }
        if let fwmask { r.has_fwmask = 1; r.fwmask = fwmask }
        r.ip_proto = ipProtocol ?? 0
        return r
    }
}

/// NUD_PERMANENT from <linux/neighbour.h>.
let neighborStatePermanent: UInt16 = 0x80

extension Neighbor {
    init?(_ n: nlshim_neigh) {
        guard let ip = IPAddress(family: n.family, field: n.addr),
              let mac = MACAddress(bytes: fieldBytes(of: n.mac, count: 6)) else { return nil }
        self.init(linkIndex: n.ifindex, address: ip, mac: mac,
                  permanent: n.state & neighborStatePermanent != 0)
    }

    var shim: nlshim_neigh {
        var n = nlshim_neigh()
        n.ifindex = linkIndex
        n.family = address.family.shimValue
        storeBytes(address.bytes, into: &n.addr)
        storeBytes(mac.bytes, into: &n.mac)
        return n
    }
}
