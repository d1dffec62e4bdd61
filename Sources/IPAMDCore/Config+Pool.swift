/// The regular pods' warm pool (SPEC section 3a), by the reference's variables and defaults. The
/// pool runs when ipamd discovers the node through the cloud (it needs EC2); with every override
/// given (no cloud at all: the lab, the demo) regular pods are refused as before.
public struct PoolConfig: Sendable, Hashable {
    /// WARM_ENI_TARGET (default 1).
    public var warmENI = 1
    /// WARM_IP_TARGET, MINIMUM_IP_TARGET: 0 is unset.
    public var warmIP = 0
    public var minimumIP = 0
    /// WARM_PREFIX_TARGET (prefix delegation only): 1 when prefix delegation is on and no target
    /// is set (the reference's manifest sets 1).
    public var warmPrefix = 0
    /// ENABLE_PREFIX_DELEGATION: /28 prefixes on the ENIs instead of single addresses.
    public var prefixDelegation = false
    /// MAX_ENI: nil (-1 or unset) leaves the instance type's limit.
    public var maxENI: Int?
    /// CLUSTER_NAME: tags new ENIs (`cluster.k8s.amazonaws.com/name`, `eks:eni:owner`).
    public var clusterName: String?
    /// IP_WAIT_TIMEOUT (ours): how long an ADD waits for an address while the pool refills.
    public var addressWait: Duration = .seconds(10)
    /// IP_COOLDOWN_PERIOD: how long a released address rests before another pod gets it (the VPC
    /// may still route it to the old pod's node for a moment).
    public var cooldown: Duration = .seconds(30)

    public init() {}

    static func read(_ r: inout EnvReader) -> PoolConfig {
        var p = PoolConfig()
        func count(_ k: String, default d: Int) -> Int {
            r.read(k, default: d, accepted: "a whole number from 0") { t in Int(t).flatMap { $0 >= 0 ? $0 : nil } }
        }
        p.warmENI = count("WARM_ENI_TARGET", default: 1)
        p.warmIP = count("WARM_IP_TARGET", default: 0)
        p.minimumIP = count("MINIMUM_IP_TARGET", default: 0)
        p.prefixDelegation = r.bool("ENABLE_PREFIX_DELEGATION", default: false)
        let anyTarget = ["WARM_PREFIX_TARGET", "WARM_IP_TARGET", "MINIMUM_IP_TARGET"].contains { r.value($0) != nil }
        p.warmPrefix = count("WARM_PREFIX_TARGET", default: p.prefixDelegation && !anyTarget ? 1 : 0)
        let maxENI = r.read("MAX_ENI", default: -1, accepted: "-1 (the instance type's limit) or a whole number from 1") { t in
            Int(t).flatMap { $0 == -1 || $0 >= 1 ? $0 : nil }
        }
        p.maxENI = maxENI == -1 ? nil : maxENI
        if let name = r.value("CLUSTER_NAME"), !name.isEmpty { p.clusterName = name }
        let wait = r.read("IP_WAIT_TIMEOUT", default: 10, accepted: "whole seconds from 0 to 120 (default 10)") { t in
            Int(t).flatMap { (0...120).contains($0) ? $0 : nil }
        }
        p.addressWait = .seconds(wait)
        let cooldown = r.read("IP_COOLDOWN_PERIOD", default: 30, accepted: "whole seconds from 0 to 600 (default 30)") { t in
            Int(t).flatMap { (0...600).contains($0) ? $0 : nil }
        }
        p.cooldown = .seconds(cooldown)
        // Not built: refused by name rather than ignored, so nobody runs without what they set.
        if r.bool("AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG", default: false) {
            r.fail("AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG", "true (ENIConfig custom networking) is not supported; accepted values: false")
        }
        return p
    }
}
