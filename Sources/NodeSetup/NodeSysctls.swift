/// Kernel parameters ipamd owns (SPEC section 6), as (slash-separated key, value) pairs in order.
public enum NodeSysctls {
    public static func plan(primaryInterface: String, disableTCPEarlyDemux: Bool) -> [(key: String, value: String)] {
        [
            // Pods are routed through the node.
            ("net/ipv4/ip_forward", "1"),
            // Loose: replies to SNATed or branch traffic may come in on another interface than the route back.
            ("net/ipv4/conf/\(primaryInterface)/rp_filter", "2"),
            // With early demux, a host→pod TCP probe's reply can be matched to the wrong socket route
            // in strict mode (kubelet probes fail); restoring 1 undoes an earlier opt-out.
            ("net/ipv4/tcp_early_demux", disableTCPEarlyDemux ? "0" : "1"),
        ]
    }
}
