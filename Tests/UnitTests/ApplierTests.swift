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
                  containerInterface: "eth0", mtu: 9001, owner: "cid-1")
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

    @Test func consecutiveRuleDeletionsShareOneDump() throws {
        let f = FakeDatapath()
        let p = pod(f, .strict)
        let ctx = try f.podContext(netnsPath: "/var/run/netns/pod1")
        try PlanApplier(context: ctx, logger: quiet).setup(BranchPodPlanner.setup(p))
        f.host.ruleDumps = 0
        let failures = PlanApplier(context: ctx, logger: quiet).teardown(BranchPodPlanner.cleanupBeforeSetup(p))
        #expect(failures.isEmpty)
        // cleanupBeforeSetup holds four rule deletions (iif veth, prio 10 table, 512, 1536).
        #expect(f.host.ruleDumps == 1)
        #expect(f.host.ruleList.isEmpty)
        #expect(f.host.linkTable["vlan.eth.7"] == nil && f.host.linkTable[p.hostVeth] == nil)
    }
}
