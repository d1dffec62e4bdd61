import Datapath
import EnforcingMode
import IPAMDCore
import NetModel
import Netlink
import TestSupport
import Testing

/// `ipamd explain` on the in-memory kernel: the plan rebuilt from what ipamd recorded when it
/// served the pod, compared with what the plugin built.
@Suite struct PodExplainerTests {
    @Test func healthyPodThenBrokenOne() throws {
        let p = SimPod(name: "web", container: "cw", netns: "/var/run/netns/web", vlan: 7, ip: "10.0.40.7")
        let n = StartupReconcilerTests.node([p], mode: "strict")
        let config = IPAMDConfig(podENISource: .file(path: "/in-memory"), trunk: .name("eth1"), vpcCIDRs: [IPPrefix("10.0.0.0/16")!])
        nonisolated(unsafe) let dp = n.dp
        let explainer = PodExplainer(config: config, registry: n.ipamd.handler.registry, source: n.ipamd.source,
                                     trunk: FixedTrunk(index: n.dp.trunk.index), datapath: { dp })
        let healthy = try explainer.explain("default/web")
        #expect(healthy.healthy, "\(healthy.objects.filter { $0.status != .present })")
        #expect(healthy.netns == p.netns && healthy.vlanID == 7 && healthy.mode == "strict")
        #expect(healthy.summary == "ok")
        for kind in [ExplainedObject.Kind.link, .address, .route, .rule, .neighbor] {
            #expect(healthy.objects.contains { $0.kind == kind && $0.status == .present }, "no \(kind) explained")
        }

        // An admin deletes the VLAN's rules: both show as missing, with the command that shows them.
        for r in try n.dp.host.rules(family: .ipv4) where r.table == Naming.routeTable(vlanID: 7) { try n.dp.host.deleteRule(r) }
        let broken = try explainer.explain("default/web")
        #expect(!broken.healthy)
        let rules = broken.objects.filter { $0.kind == .rule }
        #expect(rules.count == 2 && rules.allSatisfy { $0.status == .missing && $0.command.hasPrefix("ip -4 rule show") }, "\(rules)")
        #expect(broken.summary == "2 missing")
        #expect(throws: ExplainError.self) { try explainer.explain("default/nobody") }
    }
}
