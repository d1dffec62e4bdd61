import Datapath
import EnforcingMode
import Logging
import NetModel
import Netlink
import Testing

/// How many netlink round trips the applier spends (each one costs an exec'd plugin time).
@Suite struct ApplierTests {
    func pod(_ f: FakeDatapath, _ mode: PodSGEnforcingMode) -> BranchPod {
        BranchPod(mode: mode, vlanID: 7, podIP: IPAddress("10.0.40.7")!, subnetGateway: IPAddress("10.0.32.1")!,
                  branchMAC: MACAddress("0a:00:00:00:00:07")!, trunkIndex: f.trunk.index, hostVeth: "vlanabcdef01234",
                  containerInterface: "eth0", mtu: 9001, owner: "cid-1",
                  hostVethMAC: MACAddress("02:00:00:00:01:01")!, containerMAC: MACAddress("02:00:00:00:01:02")!)
    }

    @Test(arguments: [PodSGEnforcingMode.strict, .standard])
    func setupLooksUpEachLinkOnce(_ mode: PodSGEnforcingMode) throws {
        let f = FakeDatapath()
        let p = pod(f, mode)
        try PlanApplier(context: try f.podContext(netnsPath: "/var/run/netns/pod1"), logger: quiet).setup(BranchPodPlanner.setup(p))
        // Host: the veth and the VLAN link; pod: eth0. Without the per-run cache this was 13.
        #expect(f.host.nameLookups == 2)
        #expect(f.pod.nameLookups == 1)
        #expect(f.host.ruleList.count == 2)
    }

    @Test func evictionFromOneRuleDump() throws {
        let f = FakeDatapath()
        let p = pod(f, .strict)
        let ctx = try f.podContext(netnsPath: "/var/run/netns/pod1")
        try PlanApplier(context: ctx, logger: quiet).setup(BranchPodPlanner.setup(p))
        f.host.ruleDumps = 0
        f.host.nameLookups = 0
        let scope = TeardownScope(vlanID: 7, podIP: p.podIP, hostVeths: [p.hostVeth])
        let state = try LiveDiscovery.hostState(for: scope, owner: "cid-2", host: f.host)
        ctx.remember(.host, state.links.values)
        let failures = PlanApplier(context: ctx, logger: quiet).teardown(TeardownPlanner.evict(scope, state: state))
        #expect(failures.isEmpty)
        // One rule dump and one lookup per link; the deletions name exact rules and cached links.
        #expect(f.host.ruleDumps == 1)
        #expect(f.host.nameLookups == 2)
        #expect(f.host.ruleList.isEmpty)
        #expect(f.host.linkTable["vlan.eth.7"] == nil && f.host.linkTable[p.hostVeth] == nil)
    }
}
