import Datapath
import EnforcingMode
import Logging
import NetModel
import Netlink

/// Everything node-wide ipamd owns, as configured (SPEC sections 3, 4 and 6).
public struct NodeSettings: Sendable, Hashable {
    public var enablePodENI: Bool
    public var enforcingMode: PodSGEnforcingMode
    public var externalSNAT: Bool
    public var vpcCIDRs: [IPPrefix]
    public var excludedSNATCIDRs: [IPPrefix]
    public var portRandomization: SNATPortRandomization
    public var connmark: UInt32
    public var vethPrefix: String
    public var primaryInterface: String
    /// nil: the first IPv4 address of `primaryInterface`.
    public var primaryIP: IPv4Address?
    public var disableTCPEarlyDemux: Bool

    public init(enablePodENI: Bool = false, enforcingMode: PodSGEnforcingMode = .strict, externalSNAT: Bool = false,
                vpcCIDRs: [IPPrefix] = [], excludedSNATCIDRs: [IPPrefix] = [], portRandomization: SNATPortRandomization = .prng,
                connmark: UInt32 = 0x80, vethPrefix: String = Naming.defaultVethPrefix, primaryInterface: String = "eth0",
                primaryIP: IPv4Address? = nil, disableTCPEarlyDemux: Bool = false) {
        self.enablePodENI = enablePodENI; self.enforcingMode = enforcingMode; self.externalSNAT = externalSNAT
        self.vpcCIDRs = vpcCIDRs; self.excludedSNATCIDRs = excludedSNATCIDRs; self.portRandomization = portRandomization
        self.connmark = connmark; self.vethPrefix = vethPrefix; self.primaryInterface = primaryInterface
        self.primaryIP = primaryIP; self.disableTCPEarlyDemux = disableTCPEarlyDemux
    }

    /// Strict mode needs the pods' prio-10 `iif` rules to win over local delivery.
    public var localRulePriority: UInt32 {
        enablePodENI && enforcingMode == .strict ? NodeRules.movedLocalPriority : 0
    }
}

public enum NodeSetupError: Error, Sendable, CustomStringConvertible {
    case primaryInterfaceMissing(String)
    case noPrimaryIPv4(String)
    case sysctl(SysctlError)
    case nftables(NFTablesError)
    case netlink(NetlinkError)

    public var description: String {
        switch self {
        case .primaryInterfaceMissing(let n): "primary interface \(n) (NODE_PRIMARY_INTERFACE) does not exist"
        case .noPrimaryIPv4(let n): "primary interface \(n) has no IPv4 address; set NODE_PRIMARY_IP"
        case .sysctl(let e): "\(e)"
        case .nftables(let e): "\(e)"
        case .netlink(let e): "\(e)"
        }
    }
}

/// What node setup did, for the log and the debug socket.
public struct NodeSetupReport: Sendable, Equatable {
    public var primaryIP: IPv4Address
    public var sysctls: [String: String]
    /// The nft script applied (a removal when SNAT is external).
    public var nftScript: String
    /// `nft list table ip aws-cni` right after applying (nil when SNAT is external and the table
    /// is absent): the kernel's own rendering, what a later check compares with.
    public var tableListing: String?
    public var ruleChanges: NodeRules.Changes
}

/// Applies NodeSettings; idempotent, so it runs on every start. Each part converges to the desired
/// state from whatever it finds, and the nft part is one transaction.
public struct NodeSetup {
    let netlink: any NetlinkClient
    let nft: any NFTables
    let sysctl: any SysctlWriter
    let logger: Logger

    public init(netlink: any NetlinkClient, nft: any NFTables, sysctl: any SysctlWriter, logger: Logger) {
        self.netlink = netlink; self.nft = nft; self.sysctl = sysctl; self.logger = logger
    }

    public func apply(_ s: NodeSettings) throws(NodeSetupError) -> NodeSetupReport {
        let primaryIP = try resolvePrimaryIP(s)

        var applied: [String: String] = [:]
        for (key, value) in NodeSysctls.plan(primaryInterface: s.primaryInterface, disableTCPEarlyDemux: s.disableTCPEarlyDemux) {
            do throws(SysctlError) { try sysctl.write(key, value) } catch { throw .sysctl(error) }
            applied[key] = value
        }

        let script = SNATRuleset.script(Self.snatSettings(s, primaryIP: primaryIP))
        do throws(NFTablesError) { try nft.run(script) } catch { throw .nftables(error) }
        let listing = s.externalSNAT ? nil : currentTable()

        let changes: NodeRules.Changes
        do throws(NetlinkError) {
            changes = NodeRules.plan(current: try netlink.rules(family: .ipv4), connmark: s.externalSNAT ? nil : s.connmark,
                                     localAtPriority: s.localRulePriority)
            for r in changes.add {
                do { try netlink.addRule(r) } catch where error.isExists { continue }
            }
            for r in changes.delete {
                do { try netlink.deleteRule(r) } catch where error.isNotFound { continue }
            }
        } catch { throw .netlink(error) }

        logger.info("node setup complete", metadata: [
            "primary_ip": "\(primaryIP)", "snat": "\(s.externalSNAT ? "external" : "node")",
            "rules_added": "\(changes.add.map(\.description))", "rules_deleted": "\(changes.delete.map(\.description))",
        ])
        return NodeSetupReport(primaryIP: primaryIP, sysctls: applied, nftScript: script, tableListing: listing, ruleChanges: changes)
    }

    /// Replaces the SNAT-exempt set's elements with those of `s` (the VPC's CIDRs changed) in
    /// one transaction, leaving the rest of the table alone; the report's listing follows.
    public func updateExemptSet(_ s: NodeSettings, report: NodeSetupReport) throws(NodeSetupError) -> NodeSetupReport {
        guard let script = SNATRuleset.exemptSetUpdate(Self.snatSettings(s, primaryIP: report.primaryIP)) else { return report }
        do throws(NFTablesError) { try nft.run(script) } catch { throw .nftables(error) }
        var r = report
        r.tableListing = currentTable()
        logger.info("SNAT-exempt set updated", metadata: ["vpc_cidrs": "\(s.vpcCIDRs.map(\.description))"])
        return r
    }

    static func snatSettings(_ s: NodeSettings, primaryIP: IPv4Address) -> SNATSettings {
        SNATSettings(external: s.externalSNAT, vpcCIDRs: s.vpcCIDRs, excludedCIDRs: s.excludedSNATCIDRs,
                     portRandomization: s.portRandomization, connmark: s.connmark, vethPrefix: s.vethPrefix,
                     primaryInterface: s.primaryInterface, primaryIP: primaryIP)
    }

    /// What no longer matches what `apply` left (someone ran `nft flush ruleset`, deleted a rule,
    /// reset a sysctl); empty when nothing. Reads only.
    public func drift(_ s: NodeSettings, since report: NodeSetupReport) -> [String] {
        var found: [String] = []
        for (key, value) in report.sysctls.sorted(by: { $0.key < $1.key }) where (try? sysctl.read(key)) != value {
            found.append("sysctl \(key) is not \(value)")
        }
        if currentTable() != report.tableListing {
            found.append(report.tableListing == nil ? "table ip \(SNATRuleset.table) exists" : "table ip \(SNATRuleset.table) differs or is missing")
        }
        if let rules = try? netlink.rules(family: .ipv4) {
            let changes = NodeRules.plan(current: rules, connmark: s.externalSNAT ? nil : s.connmark, localAtPriority: s.localRulePriority)
            found += changes.add.map { "rule missing: \($0)" } + changes.delete.map { "rule present: \($0)" }
        }
        return found
    }

    /// The table as the kernel renders it, or nil when it does not exist.
    func currentTable() -> String? {
        try? nft.run("list table \(SNATRuleset.family) \(SNATRuleset.table)")
    }

    func resolvePrimaryIP(_ s: NodeSettings) throws(NodeSetupError) -> IPv4Address {
        let link: LinkInfo?
        do { link = try netlink.link(named: s.primaryInterface) } catch { throw .netlink(error) }
        guard let link else { throw .primaryInterfaceMissing(s.primaryInterface) }
        if let ip = s.primaryIP { return ip }
        let addresses: [InterfaceAddress]
        do { addresses = try netlink.addresses(family: .ipv4) } catch { throw .netlink(error) }
        for a in addresses where a.linkIndex == link.index {
            if case .v4(let v4) = a.prefix.address { return v4 }
        }
        throw .noPrimaryIPv4(s.primaryInterface)
    }
}
