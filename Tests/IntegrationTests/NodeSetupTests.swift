import Foundation
import Glibc
import NetModel
import TestSupport
import Testing

/// Node setup owned by ipamd, on the release binary, in a throwaway node namespace (never the
/// host's): the nftables SNAT table per configuration (compared structurally with
/// scripts/tests/expected/), node rules, sysctls, restarts that never duplicate a rule, drift
/// repair, the ready order, the plugin install (conflist content, exec during reinstall), and
/// invalid settings. Rules are read through our Netlink module, the ruleset as parsed nft JSON.
@Suite(.serialized, .ownThread) struct NodeSetupIntegrationTests {
    static let needsRoot: ConditionTrait = .enabled(if: isRoot, "needs root: creates network namespaces")

    func expectRuleset(_ b: NodeSetupBench, _ file: String, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let actual = try b.nftRuleset(), expected = try Expected.nft(file)
        #expect(actual == expected, """
            \(what): the nft ruleset is not \(file)
            only in the node: \(actual.filter { !expected.contains($0) }.map(\.description).joined(separator: "\n  "))
            only in \(file): \(expected.filter { !actual.contains($0) }.map(\.description).joined(separator: "\n  "))
            """, sourceLocation: sourceLocation)
    }

    func expectRules(_ b: NodeSetupBench, mark: UInt32?, local: UInt32, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let actual = try b.rules(), expected = NodeRuleSet.expected(mark: mark, local: local)
        #expect(actual == expected, "\(what): rules \(actual.map(\.description)), expected \(expected.map(\.description))", sourceLocation: sourceLocation)
    }

    /// Lines of an ipamd that refused its configuration: each must be one problem.
    func problems(_ log: [String]) -> [String: String] {
        for l in log { #expect(l.hasPrefix(NodeSetupBench.invalidPrefix), "not a configuration problem line: \(l)") }
        let pairs = log.compactMap { l -> (String, String)? in
            guard l.hasPrefix(NodeSetupBench.invalidPrefix), let colon = l.dropFirst(NodeSetupBench.invalidPrefix.count).firstIndex(of: ":") else { return nil }
            return (String(l[l.index(l.startIndex, offsetBy: NodeSetupBench.invalidPrefix.count)..<colon]), l)
        }
        return Dictionary(pairs) { a, b in a + "\n" + b }
    }

    /// Nothing of node setup or the install happened: no table, the kernel's rules, no files.
    func expectUntouched(_ b: NodeSetupBench, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(try b.nftRuleset().isEmpty, "\(what): an nft ruleset was made", sourceLocation: sourceLocation)
        try expectRules(b, mark: nil, local: 0, what, sourceLocation: sourceLocation)
        #expect(!NodeSetupBench.exists(b.ipamd.conflist), "\(what): a conflist was written", sourceLocation: sourceLocation)
        #expect(!NodeSetupBench.exists(b.ipamd.installedPlugin), "\(what): the plugin was installed", sourceLocation: sourceLocation)
        #expect(!NodeSetupBench.exists(b.ipamd.rpcSocket), "\(what): the RPC socket exists", sourceLocation: sourceLocation)
    }

    // MARK: SNAT table per configuration

    @Test(needsRoot) func snatTablePerConfiguration() throws {
        let b = try NodeSetupBench(primaryInterfaces: ["eth0", "ens5"])
        defer { b.destroy() }

        try b.start(["ENABLE_POD_ENI": "true"])
        try expectRuleset(b, "nft-default.json", "defaults")
        try expectRules(b, mark: 0x80, local: 20, "defaults (strict): fwmark 0x80/0x80 at 1024, lookup local at 20")
        b.stop()

        try b.start(["ENABLE_POD_ENI": "true", "POD_SECURITY_GROUP_ENFORCING_MODE": "standard",
                     "AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS": "192.168.0.0/16,10.0.5.0/24,172.16.0.0/12",
                     "AWS_VPC_K8S_CNI_RANDOMIZESNAT": "hashrandom", "AWS_VPC_K8S_CNI_CONNMARK": "0x40000",
                     "AWS_VPC_K8S_CNI_VETHPREFIX": "pod", "NODE_PRIMARY_INTERFACE": "ens5", "NODE_PRIMARY_IP": "10.0.0.99"])
        try expectRuleset(b, "nft-custom.json", "exclusions, hashrandom, mark 0x40000, prefix pod, ens5")
        try expectRules(b, mark: 0x40000, local: 0, "custom mark: the fwmark rule uses it, the 0x80 rule is gone")
        #expect(try b.sim.sysctl("net.ipv4.conf.ens5.rp_filter") == "2", "rp_filter=2 on the configured primary ens5")
        b.stop()

        // VPC CIDRs set (without them ipamd refuses to start: vpcCIDRsAreRequiredForNodeSNAT).
        try b.start(["AWS_VPC_K8S_CNI_RANDOMIZESNAT": "none"])
        try expectRuleset(b, "nft-none.json", "no port randomization")
        try expectRules(b, mark: 0x80, local: 0, "pod ENI off")
        b.stop()

        try b.start(["AWS_VPC_K8S_CNI_EXTERNALSNAT": "true"])
        #expect(try b.nftRuleset().isEmpty, "EXTERNALSNAT=true: table removed")
        try expectRules(b, mark: nil, local: 0, "EXTERNALSNAT=true: fwmark rule removed")
        b.stop()

        try b.start()
        try expectRuleset(b, "nft-default.json", "EXTERNALSNAT back to false: table restored")
        try expectRules(b, mark: 0x80, local: 0, "EXTERNALSNAT back to false: fwmark rule restored")
        b.stop()
    }

    @Test(needsRoot) func vpcCIDRsAreRequiredForNodeSNAT() throws {
        let b = try NodeSetupBench()
        defer { b.destroy() }
        // Unset, they come from instance metadata; with none reachable ipamd does not serve and
        // touches nothing (fail closed: it would SNAT VPC traffic).
        let noMetadata = "http://127.0.0.1:9"
        for (what, settings) in [("VPC_CIDRS empty", ["VPC_CIDRS": "", "AWS_VPC_K8S_CNI_RANDOMIZESNAT": "none", "AWS_EC2_METADATA_SERVICE_ENDPOINT": noMetadata] as [String: String?]),
                                 ("VPC_CIDRS unset", ["VPC_CIDRS": nil, "AWS_EC2_METADATA_SERVICE_ENDPOINT": noMetadata])] {
            let end = try b.runToExit(settings)
            #expect(end.exitCode == 1, "\(what): ipamd does not serve (exit 1): \(end)")
            #expect(end.log.contains { $0.contains("node discovery failed") && $0.contains("VPC_CIDRS") }, "\(what): the message names VPC_CIDRS: \(end.log)")
            try expectUntouched(b, what)
        }
        // Without node SNAT the VPC's CIDRs are not needed.
        try b.start(["VPC_CIDRS": "", "AWS_VPC_K8S_CNI_EXTERNALSNAT": "true"])
        #expect(try b.nftRuleset().isEmpty, "no VPC CIDRs, EXTERNALSNAT=true: ready, no table")
        b.stop()
    }

    // MARK: node rules and sysctls

    @Test(needsRoot) func nodeRulesAndSysctls() throws {
        let b = try NodeSetupBench()
        defer { b.destroy() }
        // Away from what ipamd sets, so each check below sees ipamd's write.
        try b.setSysctl("net.ipv4.ip_forward", "0")
        try b.setSysctl("net.ipv4.conf.eth0.rp_filter", "0")
        try b.setSysctl("net.ipv4.tcp_early_demux", "1")

        let strict = ["ENABLE_POD_ENI": "true", "POD_SECURITY_GROUP_ENFORCING_MODE": "strict", "DISABLE_TCP_EARLY_DEMUX": "true"]
        try b.start(strict)
        try expectRules(b, mark: 0x80, local: 20, "strict: lookup local moved to 20, none at 0")
        #expect(try b.sim.sysctl("net.ipv4.tcp_early_demux") == "0", "DISABLE_TCP_EARLY_DEMUX=true: tcp_early_demux=0")
        #expect(try b.sim.sysctl("net.ipv4.ip_forward") == "1", "ip_forward=1")
        #expect(try b.sim.sysctl("net.ipv4.conf.eth0.rp_filter") == "2", "rp_filter=2 on the primary interface")
        let rules = try b.rules(), ruleset = try b.nftRuleset()
        b.stop()

        try b.start(strict)
        #expect(try b.rules() == rules, "strict again: rules unchanged (idempotent)")
        #expect(try b.nftRuleset() == ruleset, "strict again: ruleset unchanged")
        b.stop()

        try b.start(["ENABLE_POD_ENI": "true", "POD_SECURITY_GROUP_ENFORCING_MODE": "standard"])
        try expectRules(b, mark: 0x80, local: 0, "standard: lookup local back at 0, none at 20")
        #expect(try b.sim.sysctl("net.ipv4.tcp_early_demux") == "1", "DISABLE_TCP_EARLY_DEMUX=false: tcp_early_demux restored to 1")
        b.stop()
    }

    @Test(needsRoot) func restartsNeverDuplicate() throws {
        let b = try NodeSetupBench()
        defer { b.destroy() }
        try b.start(["ENABLE_POD_ENI": "true"])
        b.stop()
        let ruleset = try b.nftRuleset(), rules = try b.rules()
        for _ in 1...3 {
            try b.start(["ENABLE_POD_ENI": "true"])
            b.stop()
        }
        let after = try b.nftRuleset()
        #expect(after == ruleset, "3 restarts: nft ruleset identical")
        #expect(after.filter { $0["rule"] != nil }.count == 4, "3 restarts: 4 nft rules in total")
        #expect(after.filter { $0["table"] != nil }.count == 1, "3 restarts: one table in the ruleset")
        #expect(try b.rules() == rules, "3 restarts: ip rules identical")
        try expectRuleset(b, "nft-default.json", "3 restarts")
        try expectRules(b, mark: 0x80, local: 20, "3 restarts: one copy of each rule")
    }

    // MARK: drift repair

    @Test(needsRoot) func driftIsRepaired() throws {
        let b = try NodeSetupBench()
        defer { b.destroy() }
        try b.start(["ENABLE_POD_ENI": "true", "NODE_RECONCILE_INTERVAL": "1"])
        try expectRuleset(b, "nft-default.json", "before drift")

        // What a host firewall reload does.
        var from = b.ipamd.log.count
        try b.nft("flush", "ruleset")
        b.waitForRepair(of: "table ip aws-cni differs or is missing", from: from)
        try expectRuleset(b, "nft-default.json", "nft flush ruleset: the table comes back, identical")

        from = b.ipamd.log.count
        try b.deleteRule(NodeRuleSet.fwmark(0x80))
        b.waitForRepair(of: "rule missing: \(NodeRuleSet.fwmark(0x80))", from: from)
        try expectRules(b, mark: 0x80, local: 20, "deleted fwmark rule comes back")

        from = b.ipamd.log.count
        try b.setSysctl("net.ipv4.tcp_early_demux", "0")
        b.waitForRepair(of: "sysctl net/ipv4/tcp_early_demux is not 1", from: from)
        #expect(try b.sim.sysctl("net.ipv4.tcp_early_demux") == "1", "reset tcp_early_demux is set again")

        let log = b.stop()
        #expect(log.filter { $0.contains("node setup drifted") }.count == 3, "one repair per drift, none without: \(log.filter { $0.contains("drift") })")
        #expect(!log.contains { $0.contains("repair failed") }, "no failed repair: \(log.filter { $0.contains("repair failed") })")
        let ruleset = try b.nftRuleset()
        #expect(ruleset.filter { $0["rule"] != nil }.count == 4, "repairs left one copy of every rule")
        try expectRuleset(b, "nft-default.json", "after the repairs")
        try expectRules(b, mark: 0x80, local: 20, "after the repairs")
    }

    // MARK: ready order and failures

    @Test(needsRoot) func readyOnlyAfterNodeSetupAndInstall() throws {
        let b = try NodeSetupBench()
        defer { b.destroy() }

        let end = try b.runToExit(["NODE_PRIMARY_INTERFACE": "missing0"])
        #expect(end.exitCode == 1, "node setup failure: ipamd exits 1: \(end)")
        #expect(end.log.contains { $0.contains("primary interface missing0 (NODE_PRIMARY_INTERFACE) does not exist") },
                "node setup failure: the log names the interface: \(end.log)")
        #expect(!end.log.contains { $0.contains("ipamd ready") || $0.contains("ipamd serving") }, "node setup failure: never serving nor ready")
        try expectUntouched(b, "node setup failure")

        try b.start()
        let log = b.ipamd.log
        let order = ["node setup complete", "ipamd serving", "plugin installed", "ipamd ready"]
        let at = order.map { step in log.firstIndex { $0.contains(step) } }
        #expect(!at.contains(nil) && at.map { $0! } == at.map { $0! }.sorted(), "start order \(order): lines \(at) of \(log)")
        #expect(NodeSetupBench.exists(b.ipamd.conflist), "ready: the conflist exists")
        #expect(NodeSetupBench.isSocket(b.ipamd.rpcSocket), "ready: the RPC socket is served")
        b.stop()
    }

    // MARK: invalid settings

    @Test(needsRoot) func everyInvalidSettingReportedAtOnce() throws {
        let b = try NodeSetupBench()
        defer { b.destroy() }
        let end = try b.runToExit(Dictionary(uniqueKeysWithValues: BadSetting.all.map { ($0.variable, Optional($0.value)) }))
        #expect(end.exitCode == 2, "ipamd stops at start (exit 2): \(end)")
        let p = problems(end.log)
        #expect(Set(p.keys) == Set(BadSetting.all.map(\.variable)), "one line per bad variable, no other: \(end.log)")
        #expect(end.log.count == BadSetting.all.count, "exactly \(BadSetting.all.count) lines: \(end.log)")
        for s in BadSetting.all {
            #expect(p[s.variable]?.contains("\"\(s.value)\"") == true || s.variable == "ENABLE_IPv6", "\(s): the value quoted: \(p[s.variable] ?? "none")")
            #expect(p[s.variable]?.contains(s.accepted) == true, "\(s): accepted values \"\(s.accepted)\" given: \(p[s.variable] ?? "none")")
        }
        try expectUntouched(b, "invalid settings")
    }

    @Test(needsRoot, arguments: BadSetting.all)
    func aSingleInvalidSettingStopsStart(_ s: BadSetting) throws {
        let b = try NodeSetupBench()
        defer { b.destroy() }
        let end = try b.runToExit([s.variable: s.value])
        #expect(end.exitCode == 2, "\(s): ipamd stops at start (exit 2): \(end)")
        let p = problems(end.log)
        #expect(Array(p.keys) == [s.variable] && end.log.count == 1, "\(s): exactly one problem, naming \(s.variable): \(end.log)")
        #expect(p[s.variable]?.contains(s.accepted) == true, "\(s): accepted values given: \(end.log)")
        try expectUntouched(b, "\(s)")
    }

    // MARK: plugin install

    @Test(needsRoot) func pluginInstallForNonDefaultSettings() throws {
        let b = try NodeSetupBench()
        defer { b.destroy() }
        try b.start(["ENABLE_POD_ENI": "true", "POD_SECURITY_GROUP_ENFORCING_MODE": "standard", "AWS_VPC_K8S_CNI_VETHPREFIX": "pod",
                     "POD_MTU": "1500", "AWS_VPC_K8S_PLUGIN_LOG_FILE": "/var/log/sg/plugin.log", "AWS_VPC_K8S_PLUGIN_LOG_LEVEL": "Info"])
        let conflist = try NodeJSON.parse(file: b.ipamd.conflist), expected = try Expected.json("conflist-custom.json", work: b.sim.work)
        #expect(conflist == expected, "conflist for non-default settings:\n\(conflist)\nexpected:\n\(expected)")
        #expect(NodeSetupBench.mode(b.ipamd.conflist) == 0o644, "conflist mode 0644")
        #expect(NodeSetupBench.mode(b.ipamd.installedPlugin) == 0o755, "installed binary mode 0755")
        #expect(FileManager.default.contentsEqual(atPath: b.pluginA, andPath: b.ipamd.installedPlugin), "installed binary is the source")
        let bin = NodeSetupBench.listing(b.base["CNI_BIN_DIR"]!), conf = NodeSetupBench.listing(b.base["CNI_CONF_DIR"]!)
        #expect(bin == ["aws-cni"] && conf == ["10-aws.conflist"], "nothing else, no temporary files: \(bin) \(conf)")
        b.stop()
    }

    @Test(needsRoot) func execDuringReinstallsNeverFails() throws {
        let b = try NodeSetupBench()
        defer { b.destroy() }
        try b.start()
        b.stop()
        // A second, different build of the plugin (a trailing byte does not change what it runs),
        // so every restart below really replaces the installed file.
        let pluginB = b.sim.work + "/aws-cni.b"
        try FileManager.default.copyItem(atPath: b.pluginA, toPath: pluginB)
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: pluginB))
        try h.seekToEnd()
        try h.write(contentsOf: Data([0]))
        try h.close()

        let loop = ExecLoop(binary: b.ipamd.installedPlugin)
        var execsPerInstall: [Int] = []
        for i in 1...6 {
            let before = loop.count
            guard try b.start(["CNI_PLUGIN_SOURCE": i % 2 == 1 ? pluginB : b.pluginA]) else { break }
            let log = b.stop()
            #expect(log.contains { $0.contains("plugin installed") && $0.contains("binary_replaced=true") }, "reinstall \(i) replaced the binary: \(log.filter { $0.contains("plugin installed") })")
            execsPerInstall.append(loop.count - before)
        }
        let (count, failures) = loop.stop()
        #expect(failures.isEmpty, "exec of the plugin during 6 reinstalls failed \(failures.count) of \(count) times: \(failures.prefix(5))")
        #expect(execsPerInstall.count == 6 && !execsPerInstall.contains(0), "execs overlapped every reinstall: \(execsPerInstall)")
        #expect(FileManager.default.contentsEqual(atPath: b.pluginA, andPath: b.ipamd.installedPlugin), "after reinstalls the installed binary is the last source")
        print("node setup: \(count) execs of the plugin during 6 reinstalls (\(execsPerInstall) per install), none failed")
    }
}
