import NetModel

/// Renders the `ip aws-cni` nftables table for SPEC section 4. Pure: text in, text out.
///
/// The script always replaces the whole table in one transaction (declare, delete, declare with
/// contents): the kernel applies it all or none, so a failure keeps the previous rules, and a
/// restart or a reconcile never duplicates a rule.
public enum SNATRuleset {
    public static let family = "ip"
    public static let table = "aws-cni"
    public static let exemptSet = "snat-exempt"
    public static let markChain = "mark-pod-egress"
    public static let snatChain = "snat-pod-egress"

    /// The desired state as one transaction: the table, or its removal when SNAT is external.
    public static func script(_ s: SNATSettings) -> String {
        s.external ? removal : replacement(s)
    }

    /// Removes the table; a no-op when it does not exist (declaring it first makes delete safe).
    public static let removal = "add table \(family) \(table)\ndelete table \(family) \(table)\n"

    static func replacement(_ s: SNATSettings) -> String {
        let mark = hex(s.connmark)
        let veths = quote(s.vethPrefix + "*")
        let elements = s.exemptDestinations.map(\.description).joined(separator: ", ")
        let snat = switch s.portRandomization {
        case .prng: " fully-random"
        case .hashrandom: " random"
        case .none: ""
        }
        var lines = [
            "add table \(family) \(table)",
            "delete table \(family) \(table)",
            "table \(family) \(table) {",
            "\tcomment \"owned by ipamd: SNAT for standard-mode pods; replaced as a whole on every reconcile\"",
            "\tset \(exemptSet) {",
            "\t\ttype ipv4_addr",
            "\t\tflags interval",
            "\t\tcomment \"VPC CIDRs and AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS: reached with the pod's own address\"",
        ]
        if !elements.isEmpty { lines.append("\t\telements = { \(elements) }") }
        lines += [
            "\t}",
            // Prerouting at mangle priority: the mark must be on the packet before the routing
            // decision, so the fwmark rule (prio 1024) sends it via main and out the primary interface.
            "\tchain \(markChain) {",
            "\t\ttype filter hook prerouting priority mangle; policy accept;",
            "\t\tiifname \(veths) ct state new ip daddr != @\(exemptSet) fib daddr type != local ct mark set ct mark | \(mark) comment \"pod connections leaving the VPC\"",
            "\t\tiifname \(veths) ct mark & \(mark) == \(mark) meta mark set meta mark | \(mark) comment \"restore the connection mark to each packet\"",
            "\t}",
            "\tchain \(snatChain) {",
            "\t\ttype nat hook postrouting priority srcnat; policy accept;",
            "\t\toifname \"vlan*\" return comment \"never SNAT traffic leaving through a branch interface\"",
            "\t\toifname \(quote(s.primaryInterface)) ct mark & \(mark) == \(mark) ip daddr != @\(exemptSet) snat to \(s.primaryIP)\(snat) comment \"to the node's primary IP\"",
            "\t}",
            "}",
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    /// Only the exempt set's elements, replaced in one transaction (a VPC CIDR added while
    /// running): the chains, and so the pods' connections, are not touched, and no packet sees
    /// the set half-written. nil with external SNAT (no table).
    public static func exemptSetUpdate(_ s: SNATSettings) -> String? {
        guard !s.external else { return nil }
        var lines = ["flush set \(family) \(table) \(exemptSet)"]
        let elements = s.exemptDestinations.map(\.description).joined(separator: ", ")
        if !elements.isEmpty { lines.append("add element \(family) \(table) \(exemptSet) { \(elements) }") }
        return lines.joined(separator: "\n") + "\n"
    }

    static func hex(_ v: UInt32) -> String { "0x" + String(v, radix: 16) }

    /// nft string literal; interface names and prefixes are validated, but quotes must not break out.
    static func quote(_ s: String) -> String { "\"" + s.filter { $0 != "\"" } + "\"" }
}
