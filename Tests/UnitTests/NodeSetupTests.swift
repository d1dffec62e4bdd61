import Datapath
import EnforcingMode
import Foundation
import Glibc
import IPAMDCore
import NetModel
import Netlink
@testable import NodeSetup
import Testing

/// A kernel with one nft table: records every changing script, renders the table for `list`,
/// and fails the n-th change (1-based) when asked, like a kernel refusing it.
final class FakeNFTables: NFTables {
    var scripts: [String] = []
    var failOnRun: Int?
    /// The table's rendering, nil when absent.
    var table: String?

    func run(_ script: String) throws(NFTablesError) -> String {
        if script.hasPrefix("list table") {
            guard let table else { throw NFTablesError(.refused, message: "Error: No such file or directory") }
            return table
        }
        scripts.append(script)
        if failOnRun == scripts.count { throw NFTablesError(.refused, message: "Error: Could not process rule: No such file or directory") }
        table = script == SNATRuleset.removal ? nil : "rendered:\n" + script
        return ""
    }
}

/// Remembers writes, in order; a key in `missing` fails like a /proc/sys file that is not there.
final class RecordingSysctl: SysctlWriter, @unchecked Sendable {
    var writes: [(String, String)] = []
    var missing: Set<String> = []

    func write(_ key: String, _ value: String) throws(SysctlError) {
        if missing.contains(key) { throw SysctlError(key: key, errno: ENOENT) }
        writes.append((key, value))
    }
    func read(_ key: String) throws(SysctlError) -> String { writes.last { $0.0 == key }?.1 ?? "0" }
}

let nodeIP = IPv4Address(10, 0, 0, 10)

func snat(_ change: (inout SNATSettings) -> Void = { _ in }) -> SNATSettings {
    var s = SNATSettings(vpcCIDRs: [IPPrefix("10.0.0.0/16")!], primaryInterface: "eth0", primaryIP: nodeIP)
    change(&s)
    return s
}

@Suite struct SNATRulesetTests {
    @Test func defaultTableIsOneReplacingTransaction() {
        let script = SNATRuleset.script(snat())
        #expect(script == """
        add table ip aws-cni
        delete table ip aws-cni
        table ip aws-cni {
        \tcomment "owned by ipamd: SNAT for standard-mode pods; replaced as a whole on every reconcile"
        \tset snat-exempt {
        \t\ttype ipv4_addr
        \t\tflags interval
        \t\tcomment "VPC CIDRs and AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS: reached with the pod's own address"
        \t\telements = { 10.0.0.0/16 }
        \t}
        \tchain mark-pod-egress {
        \t\ttype filter hook prerouting priority mangle; policy accept;
        \t\tiifname "eni*" ct state new ip daddr != @snat-exempt fib daddr type != local ct mark set ct mark | 0x80 comment "pod connections leaving the VPC"
        \t\tiifname "eni*" ct mark & 0x80 == 0x80 meta mark set meta mark | 0x80 comment "restore the connection mark to each packet"
        \t}
        \tchain snat-pod-egress {
        \t\ttype nat hook postrouting priority srcnat; policy accept;
        \t\toifname "vlan*" return comment "never SNAT traffic leaving through a branch interface"
        \t\toifname "eth0" ct mark & 0x80 == 0x80 ip daddr != @snat-exempt snat to 10.0.0.10 fully-random comment "to the node's primary IP"
        \t}
        }

        """)
    }

    @Test(arguments: [(SNATPortRandomization.prng, " fully-random comment"), (.hashrandom, " random comment"), (.none, "10.0.0.10 comment")])
    func portRandomization(_ mode: SNATPortRandomization, _ expected: String) {
        let script = SNATRuleset.script(snat { $0.portRandomization = mode })
        let line = script.split(separator: "\n").first { $0.contains("snat to") }!
        #expect(line.contains(expected))
    }

    @Test func settingsReachEveryRule() {
        let script = SNATRuleset.script(snat {
            $0.connmark = 0x40000; $0.vethPrefix = "pod"; $0.primaryInterface = "ens5"; $0.primaryIP = IPv4Address(10, 0, 0, 99)
        })
        #expect(script.components(separatedBy: "iifname \"pod*\"").count == 3)
        #expect(!script.contains("eni*"))
        #expect(script.components(separatedBy: "0x40000").count == 7)  // 6 uses
        #expect(!script.contains("0x80"))
        #expect(script.contains("oifname \"ens5\" ct mark & 0x40000 == 0x40000 ip daddr != @snat-exempt snat to 10.0.0.99"))
    }

    @Test func exemptDestinationsDropCoveredAndSort() {
        let s = snat { $0.excludedCIDRs = ["192.168.0.0/16", "10.0.5.0/24", "172.16.0.0/12", "10.0.0.0/16", "192.168.7.7/32"].map { IPPrefix($0)! } }
        #expect(s.exemptDestinations.map(\.description) == ["10.0.0.0/16", "172.16.0.0/12", "192.168.0.0/16"])
        #expect(SNATRuleset.script(s).contains("elements = { 10.0.0.0/16, 172.16.0.0/12, 192.168.0.0/16 }"))
    }

    @Test func noExemptDestinationsMeansAnEmptySet() {
        let script = SNATRuleset.script(snat { $0.vpcCIDRs = [] })
        #expect(!script.contains("elements"))
        #expect(script.contains("set snat-exempt {"))
    }

    @Test func externalSNATRemovesTheTable() {
        #expect(SNATRuleset.script(snat { $0.external = true }) == "add table ip aws-cni\ndelete table ip aws-cni\n")
    }

    @Test func quotesCannotBreakOut() {
        #expect(SNATRuleset.quote("eth\"0; flush ruleset") == "\"eth0; flush ruleset\"")
    }
}

@Suite struct NodeRulesTests {
    let kernelDefault = [Rule(priority: 0, table: RouteTable.local), Rule(priority: 32766, table: RouteTable.main), Rule(priority: 32767, table: 253)]
    let mark80 = Rule(priority: 1024, table: RouteTable.main, fwmark: 0x80, fwmask: 0x80)

    @Test func strictMovesLocalAddingBeforeDeleting() {
        let c = NodeRules.plan(current: kernelDefault, connmark: 0x80, localAtPriority: 20)
        #expect(c.add == [Rule(priority: 20, table: RouteTable.local), mark80])
        #expect(c.delete == [Rule(priority: 0, table: RouteTable.local)])
    }

    @Test func standardMovesLocalBack() {
        let current = [Rule(priority: 20, table: RouteTable.local), mark80] + kernelDefault.dropFirst()
        let c = NodeRules.plan(current: current, connmark: 0x80, localAtPriority: 0)
        #expect(c.add == [Rule(priority: 0, table: RouteTable.local)])
        #expect(c.delete == [Rule(priority: 20, table: RouteTable.local)])
    }

    @Test func desiredStateNeedsNoChanges() {
        let current = [Rule(priority: 20, table: RouteTable.local), mark80] + kernelDefault.dropFirst()
        #expect(NodeRules.plan(current: current, connmark: 0x80, localAtPriority: 20).isEmpty)
    }

    @Test func changedMarkReplacesTheRuleAndExternalSNATRemovesIt() {
        let current = kernelDefault + [mark80]
        let c = NodeRules.plan(current: current, connmark: 0x40000, localAtPriority: 0)
        #expect(c.add == [Rule(priority: 1024, table: RouteTable.main, fwmark: 0x40000, fwmask: 0x40000)])
        #expect(c.delete == [mark80])
        #expect(NodeRules.plan(current: current, connmark: nil, localAtPriority: 0).delete == [mark80])
    }

    @Test func leavesOtherRulesAlone() {
        let pods = [Rule(priority: 10, table: 107, inputInterface: "vlan.eth.7"), Rule(priority: 0, table: RouteTable.local, fwmark: 5, fwmask: 5),
                    Rule(priority: 1024, table: 200, fwmark: 0x80, fwmask: 0x80)]
        let c = NodeRules.plan(current: kernelDefault + pods, connmark: 0x80, localAtPriority: 20)
        #expect(c.delete == [Rule(priority: 0, table: RouteTable.local)])
    }
}

@Suite struct NodeSetupApplyTests {
    func node() -> FakeNetlink {
        let n = FakeNetlink()
        let eth0 = n.addLink("eth0", up: true)
        n.addressList = [InterfaceAddress(linkIndex: eth0.index, prefix: IPPrefix("10.0.0.10/20")!)]
        n.ruleList = [Rule(priority: 0, table: RouteTable.local), Rule(priority: 32766, table: RouteTable.main)]
        return n
    }

    @Test func appliesSysctlsThenTableThenRules() throws {
        let n = node(), nft = FakeNFTables(), sysctl = RecordingSysctl()
        let s = NodeSettings(enablePodENI: true, enforcingMode: .strict, vpcCIDRs: [IPPrefix("10.0.0.0/16")!], disableTCPEarlyDemux: true)
        let report = try NodeSetup(netlink: n, nft: nft, sysctl: sysctl, logger: quiet).apply(s)
        #expect(report.primaryIP == nodeIP)
        #expect(sysctl.writes.map { "\($0.0)=\($0.1)" } == ["net/ipv4/ip_forward=1", "net/ipv4/conf/eth0/rp_filter=2", "net/ipv4/tcp_early_demux=0"])
        #expect(nft.scripts == [SNATRuleset.script(snat())])
        #expect(n.ruleList.map(\.description).sorted() == [
            "1024: from all fwmark 0x80/0x80 lookup main", "20: from all lookup local", "32766: from all lookup main",
        ])
        // Adding the moved local rule comes before deleting the old one: local delivery never stops.
        #expect(n.calls == ["addRule 20: from all lookup local", "addRule 1024: from all fwmark 0x80/0x80 lookup main",
                            "deleteRule 0: from all lookup local"])
    }

    @Test func secondRunChangesNothing() throws {
        let n = node(), nft = FakeNFTables()
        let s = NodeSettings(enablePodENI: true, vpcCIDRs: [IPPrefix("10.0.0.0/16")!])
        let setup = NodeSetup(netlink: n, nft: nft, sysctl: RecordingSysctl(), logger: quiet)
        _ = try setup.apply(s)
        let rules = n.ruleList
        let again = try setup.apply(s)
        #expect(again.ruleChanges.isEmpty)
        #expect(n.ruleList == rules)
        #expect(nft.scripts.count == 2 && nft.scripts[0] == nft.scripts[1])
    }

    @Test func configuredPrimaryIPWinsAndEarlyDemuxIsRestored() throws {
        let sysctl = RecordingSysctl(), nft = FakeNFTables()
        let s = NodeSettings(primaryIP: IPv4Address(10, 0, 0, 99))
        #expect(try NodeSetup(netlink: node(), nft: nft, sysctl: sysctl, logger: quiet).apply(s).primaryIP == IPv4Address(10, 0, 0, 99))
        #expect(sysctl.writes.last! == ("net/ipv4/tcp_early_demux", "1"))
        #expect(nft.scripts[0].contains("snat to 10.0.0.99"))
    }

    @Test func missingPrimaryInterfaceStopsBeforeAnyChange() {
        let n = node(), nft = FakeNFTables(), sysctl = RecordingSysctl()
        #expect(throws: NodeSetupError.self) {
            try NodeSetup(netlink: n, nft: nft, sysctl: sysctl, logger: quiet).apply(NodeSettings(primaryInterface: "ens5"))
        }
        #expect(sysctl.writes.isEmpty && nft.scripts.isEmpty && n.calls.isEmpty)
    }

    @Test func primaryInterfaceWithoutIPv4NeedsNodePrimaryIP() {
        let n = node()
        n.addressList = []
        do {
            _ = try NodeSetup(netlink: n, nft: FakeNFTables(), sysctl: RecordingSysctl(), logger: quiet).apply(NodeSettings())
            Issue.record("expected an error")
        } catch {
            #expect(error.description.contains("NODE_PRIMARY_IP"))
        }
    }

    @Test func refusedTableLeavesRulesUntouched() {
        let n = node(), nft = FakeNFTables()
        nft.failOnRun = 1
        let before = n.ruleList
        do {
            _ = try NodeSetup(netlink: n, nft: nft, sysctl: RecordingSysctl(), logger: quiet).apply(NodeSettings(enablePodENI: true))
            Issue.record("expected an error")
        } catch {
            guard case .nftables(let e) = error else { Issue.record("wrong error \(error)"); return }
            #expect(e.kind == .refused)
        }
        #expect(n.ruleList == before)
    }

    @Test func sysctlErrorKeepsErrno() {
        let sysctl = RecordingSysctl()
        sysctl.missing = ["net/ipv4/conf/eth0/rp_filter"]
        do {
            _ = try NodeSetup(netlink: node(), nft: FakeNFTables(), sysctl: sysctl, logger: quiet).apply(NodeSettings())
            Issue.record("expected an error")
        } catch {
            guard case .sysctl(let e) = error else { Issue.record("wrong error \(error)"); return }
            #expect(e.errno == ENOENT && e.key == "net/ipv4/conf/eth0/rp_filter")
        }
    }

    @Test func externalSNATRemovesTableAndMarkRule() throws {
        let n = node(), nft = FakeNFTables()
        n.ruleList.append(Rule(priority: 1024, table: RouteTable.main, fwmark: 0x80, fwmask: 0x80))
        _ = try NodeSetup(netlink: n, nft: nft, sysctl: RecordingSysctl(), logger: quiet).apply(NodeSettings(externalSNAT: true))
        #expect(nft.scripts == [SNATRuleset.removal])
        #expect(!n.ruleList.contains { $0.fwmark != nil })
    }
}

@Suite struct NodeConfigTests {
    let base = ["POD_ENI_SOURCE": "file:/tmp/pods.json", "TRUNK_INTERFACE": "eth1", "VPC_CIDRS": "10.0.0.0/16"]

    @Test func defaults() throws {
        let c = try IPAMDConfig.fromEnvironment(base)
        #expect(c.node == NodeSettings(vpcCIDRs: [IPPrefix("10.0.0.0/16")!]))
        #expect(c.conflist == ConflistSettings())
        #expect(c.cniBinDir == "/opt/cni/bin" && c.cniConfDir == "/etc/cni/net.d" && c.pluginSource == nil)
        #expect(c.logFile == "/host/var/log/aws-routed-eni/ipamd.log")
        #expect(c.nodeReconcileInterval == .seconds(60))
        #expect(try IPAMDConfig.fromEnvironment(base.merging(["NODE_RECONCILE_INTERVAL": "0"]) { _, b in b }).nodeReconcileInterval == nil)
        #expect(try IPAMDConfig.fromEnvironment(base.merging(["NODE_RECONCILE_INTERVAL": "5"]) { _, b in b }).nodeReconcileInterval == .seconds(5))
    }

    @Test func everyNodeVariable() throws {
        let c = try IPAMDConfig.fromEnvironment(base.merging([
            "ENABLE_POD_ENI": "true", "POD_SECURITY_GROUP_ENFORCING_MODE": "standard", "AWS_VPC_K8S_CNI_EXTERNALSNAT": "false",
            "AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS": "192.168.0.0/16, 172.16.1.0/24", "AWS_VPC_K8S_CNI_RANDOMIZESNAT": "hashrandom",
            "AWS_VPC_K8S_CNI_CONNMARK": "0x40000", "DISABLE_TCP_EARLY_DEMUX": "true", "AWS_VPC_K8S_CNI_VETHPREFIX": "pod",
            "NODE_PRIMARY_INTERFACE": "ens5", "NODE_PRIMARY_IP": "10.0.0.99", "AWS_VPC_ENI_MTU": "1500",
            "AWS_VPC_K8S_PLUGIN_LOG_FILE": "stderr", "AWS_VPC_K8S_PLUGIN_LOG_LEVEL": "Info", "CNI_BIN_DIR": "/b", "CNI_CONF_DIR": "/c",
            "CNI_PLUGIN_SOURCE": "/s/aws-cni", "IPAMD_SOCKET": "/run/x.sock", "AWS_VPC_K8S_CNI_LOG_FILE": "stdout",
            "SYSCTL_ROOT": "/host/proc/sys",
        ]) { _, b in b })
        #expect(c.node == NodeSettings(enablePodENI: true, enforcingMode: .standard, vpcCIDRs: [IPPrefix("10.0.0.0/16")!],
                                       excludedSNATCIDRs: [IPPrefix("192.168.0.0/16")!, IPPrefix("172.16.1.0/24")!], portRandomization: .hashrandom,
                                       connmark: 0x40000, vethPrefix: "pod", primaryInterface: "ens5", primaryIP: IPv4Address(10, 0, 0, 99),
                                       disableTCPEarlyDemux: true))
        // POD_MTU defaults to the ENI MTU; the conflist follows the node's mode and prefix.
        #expect(c.conflist == ConflistSettings(vethPrefix: "pod", mtu: 1500, enforcingMode: .standard, pluginLogFile: "stderr",
                                               pluginLogLevel: "Info", ipamdSocket: "/run/x.sock"))
        #expect(c.cniBinDir == "/b" && c.cniConfDir == "/c" && c.pluginSource == "/s/aws-cni" && c.logFile == "stdout")
        #expect(c.sysctlRoot == "/host/proc/sys")
        #expect(try IPAMDConfig.fromEnvironment(base).sysctlRoot == "/proc/sys")
        #expect(try IPAMDConfig.fromEnvironment(base.merging(["AWS_VPC_K8S_CNI_CONNMARK": "128", "POD_MTU": "576"]) { _, b in b }).node.connmark == 128)
    }

    @Test(arguments: [
        ("ENABLE_POD_ENI", "2"), ("AWS_VPC_K8S_CNI_RANDOMIZESNAT", "always"), ("AWS_VPC_K8S_CNI_CONNMARK", "0"),
        ("AWS_VPC_K8S_CNI_CONNMARK", "0xZZ"), ("AWS_VPC_K8S_CNI_CONNMARK", "4294967296"), ("AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS", "10.0.0.0/33"),
        ("AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS", "fd00::/8"), ("DISABLE_TCP_EARLY_DEMUX", "on?"), ("AWS_VPC_K8S_CNI_VETHPREFIX", "vlan"),
        ("AWS_VPC_K8S_CNI_VETHPREFIX", "e-1"), ("NODE_PRIMARY_INTERFACE", "a-name-that-is-too-long"), ("NODE_PRIMARY_IP", "fd00::1"),
        ("AWS_VPC_ENI_MTU", "9002"), ("POD_MTU", "575"), ("AWS_VPC_K8S_PLUGIN_LOG_FILE", "stdout"), ("AWS_VPC_K8S_PLUGIN_LOG_FILE", "rel/p.log"),
        ("AWS_VPC_K8S_PLUGIN_LOG_LEVEL", "trace"), ("CNI_BIN_DIR", "bin"), ("CNI_CONF_DIR", "etc"), ("CNI_PLUGIN_SOURCE", "aws-cni"),
        ("AWS_VPC_K8S_CNI_LOG_FILE", "ipamd.log"), ("SYSCTL_ROOT", "proc/sys"), ("ENABLE_IPv6", "true"), ("ENABLE_IPv4", "false"),
        ("NODE_RECONCILE_INTERVAL", "-1"), ("NODE_RECONCILE_INTERVAL", "1.5"), ("NODE_RECONCILE_INTERVAL", "3601"),
    ])
    func rejectsNamingVariable(_ key: String, _ value: String) {
        var env = base
        env[key] = value
        #expect { try IPAMDConfig.fromEnvironment(env) } throws: {
            let e = $0 as! ConfigError
            return e.variable == key && e.message.contains("accepted values") || e.message.contains("absolute path")
        }
    }
}

@Suite struct PluginInstallTests {
    @Test func conflistForNonDefaultSettings() throws {
        let text = Conflist.render(ConflistSettings(vethPrefix: "pod", mtu: 1500, enforcingMode: .standard, pluginLogFile: "/l/p.log",
                                                    pluginLogLevel: "Info", ipamdSocket: "/run/s.sock"))
        let json = try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
        #expect(json["cniVersion"] as? String == "1.0.0")
        #expect(json["name"] as? String == "aws-cni")
        let plugins = json["plugins"] as! [[String: Any]]
        #expect(plugins.count == 2)
        #expect(NSDictionary(dictionary: plugins[0]) == NSDictionary(dictionary: [
            "name": "aws-cni", "type": "aws-cni", "vethPrefix": "pod", "mtu": "1500", "podSGEnforcingMode": "standard",
            "pluginLogFile": "/l/p.log", "pluginLogLevel": "Info", "ipamdSocket": "/run/s.sock",
        ]))
        #expect(NSDictionary(dictionary: plugins[1]) == NSDictionary(dictionary: ["type": "portmap", "capabilities": ["portMappings": true], "snat": true]))
        #expect(text == Conflist.render(ConflistSettings(vethPrefix: "pod", mtu: 1500, enforcingMode: .standard, pluginLogFile: "/l/p.log",
                                                         pluginLogLevel: "Info", ipamdSocket: "/run/s.sock")))
    }

    @Test func installsBinaryThenConflistAndSkipsIdenticalFiles() throws {
        let dir = tempDir()
        let source = dir + "/src-aws-cni"
        FileManager.default.createFile(atPath: source, contents: Data([0x7f, 0x45, 0x4c, 0x46, 1, 2, 3]))
        let s = PluginInstallSettings(pluginSource: source, binDir: dir + "/opt/cni/bin", confDir: dir + "/etc/cni/net.d", conflist: ConflistSettings())
        let first = try PluginInstaller(logger: quiet).install(s)
        #expect(first.binaryReplaced && first.conflistReplaced)
        #expect(try AtomicFile.read(first.binaryPath) == [0x7f, 0x45, 0x4c, 0x46, 1, 2, 3])
        #expect(String(decoding: try AtomicFile.read(first.conflistPath), as: UTF8.self) == Conflist.render(ConflistSettings()))
        var st = stat()
        stat(first.binaryPath, &st)
        #expect(st.st_mode & 0o7777 == 0o755)
        stat(first.conflistPath, &st)
        #expect(st.st_mode & 0o7777 == 0o644)

        let second = try PluginInstaller(logger: quiet).install(s)
        #expect(!second.binaryReplaced && !second.conflistReplaced)

        FileManager.default.createFile(atPath: source, contents: Data([9, 9]))
        let third = try PluginInstaller(logger: quiet).install(s)
        #expect(third.binaryReplaced && !third.conflistReplaced)
        #expect(try AtomicFile.read(third.binaryPath) == [9, 9])
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/opt/cni/bin") == ["aws-cni"])
    }

    @Test func missingSourceFailsWithErrnoAndWritesNoConflist() {
        let dir = tempDir()
        let s = PluginInstallSettings(pluginSource: dir + "/nope", binDir: dir + "/bin", confDir: dir + "/conf", conflist: ConflistSettings())
        #expect { try PluginInstaller(logger: quiet).install(s) } throws: { ($0 as! FileError).errno == ENOENT }
        #expect(!FileManager.default.fileExists(atPath: dir + "/conf/10-aws.conflist"))
    }
}

@Suite struct NodeDriftTests {
    func applied(_ s: NodeSettings = NodeSettings(enablePodENI: true, vpcCIDRs: [IPPrefix("10.0.0.0/16")!]))
        throws -> (NodeSetup, FakeNetlink, FakeNFTables, RecordingSysctl, NodeSetupReport) {
        let n = NodeSetupApplyTests().node(), nft = FakeNFTables(), sysctl = RecordingSysctl()
        let setup = NodeSetup(netlink: n, nft: nft, sysctl: sysctl, logger: quiet)
        return (setup, n, nft, sysctl, try setup.apply(s))
    }

    @Test func noDriftRightAfterApply() throws {
        let (setup, _, _, _, report) = try applied()
        #expect(report.tableListing != nil)
        #expect(setup.drift(NodeSettings(enablePodENI: true, vpcCIDRs: [IPPrefix("10.0.0.0/16")!]), since: report).isEmpty)
    }

    @Test func findsEachKindOfDrift() throws {
        let s = NodeSettings(enablePodENI: true, vpcCIDRs: [IPPrefix("10.0.0.0/16")!])
        let (setup, n, nft, sysctl, report) = try applied(s)
        nft.table = nil
        n.ruleList.removeAll { $0.fwmark != nil }
        n.ruleList.append(Rule(priority: 0, table: RouteTable.local))
        sysctl.writes.append(("net/ipv4/ip_forward", "0"))
        #expect(setup.drift(s, since: report) == [
            "sysctl net/ipv4/ip_forward is not 1",
            "table ip aws-cni differs or is missing",
            "rule missing: 1024: from all fwmark 0x80/0x80 lookup main",
            "rule present: 0: from all lookup local",
        ])
    }

    @Test func externalSNATDriftsWhenTheTableReappears() throws {
        let s = NodeSettings(externalSNAT: true)
        let (setup, _, nft, _, report) = try applied(s)
        #expect(report.tableListing == nil && setup.drift(s, since: report).isEmpty)
        nft.table = "someone else's aws-cni table"
        #expect(setup.drift(s, since: report) == ["table ip aws-cni exists"])
    }

    @Test func reconcilerRepairsOnlyWhenSomethingDrifted() throws {
        let s = NodeSettings(enablePodENI: true, vpcCIDRs: [IPPrefix("10.0.0.0/16")!])
        let (setup, n, nft, _, report) = try applied(s)
        let r = NodeReconciler(setup: setup, settings: s, report: report, interval: .seconds(60), logger: quiet)
        #expect(r.checkOnce().isEmpty && r.repairs == 0 && nft.scripts.count == 1)
        nft.table = nil
        n.ruleList.removeAll { $0.fwmark != nil }
        #expect(r.checkOnce().count == 2)
        #expect(r.repairs == 1 && nft.scripts.count == 2)
        #expect(n.ruleList.contains { $0.fwmark == 0x80 })
        #expect(r.checkOnce().isEmpty)
    }
}
