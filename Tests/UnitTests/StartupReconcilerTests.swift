import CNIPlugin
import Datapath
import EnforcingMode
import IPAMDCore
import NetModel
import Netlink
import TestSupport
import Testing

/// ipamd's start after a restart, on the in-memory kernel: the checkpoint against the node and
/// the pod source. Compared with a node that only ever had the surviving pods.
@Suite struct StartupReconcilerTests {
    static let pods = [SimPod(name: "a", container: "ca", netns: "/var/run/netns/a", vlan: 11, ip: "10.0.40.11"),
                       SimPod(name: "b", container: "cb", netns: "/var/run/netns/b", vlan: 12, ip: "10.0.40.12"),
                       SimPod(name: "c", container: "cc", netns: "/var/run/netns/c", vlan: 13, ip: "10.0.40.13")]

    /// A node with `pods` added in `mode`.
    static func node(_ pods: [SimPod], mode: String) -> SimulatedNode {
        let n = SimulatedNode()
        for p in pods {
            _ = n.dp.addNamespace(p.netns)
            n.ipamd.annotate(p)
            let out = n.run("ADD", p, mode: mode)
            precondition(out.exitCode == 0, "ADD \(p.name): \(out.stdout)")
        }
        return n
    }

    func reconciler(_ n: SimulatedNode, _ registry: PodRegistry, source: any PodENISource) throws -> StartupReconciler {
        StartupReconciler(registry: registry, source: source, context: try n.dp.hostContext(), vethPrefix: "eni", mode: .strict, logger: quiet)
    }

    @Test(arguments: ["strict", "standard"])
    func podDeletedWhileDownIsTornDownOthersUntouched(mode: String) async throws {
        let n = Self.node(Self.pods, mode: mode)
        // An object of a container nobody knows (a leak from an earlier crash).
        var ghost = n.dp.host.addLink("vlan.eth.99", kind: "vlan", mac: MACAddress("0a:00:00:00:00:99"), mtu: 9001, up: true,
                                      parent: n.dp.trunk.index, vlan: 99)
        ghost.alias = "ghost"
        n.dp.host.linkTable[ghost.name] = ghost
        // ipamd restarts; pod b was deleted while it was down (its DEL never reached the node).
        n.ipamd.forget(Self.pods[1])
        let registry = PodRegistry(store: n.ipamd.store)
        #expect(try registry.restore() == 3)
        let report = try await reconciler(n, registry, source: n.ipamd.source).run(rebuild: false, syncTimeout: .zero)

        #expect(report.gone == ["default/b"])
        #expect(Set(report.kept) == ["default/a", "default/c"])
        #expect(report.removed.contains { $0.contains("vlan.eth.99") } && report.removed.contains { $0.contains("vlan.eth.12") })
        #expect(report.failures.isEmpty)
        #expect(Set(registry.all.map(\.key)) == ["default/a", "default/c"])
        #expect(try n.ipamd.store.load().map(\.key).sorted() == ["default/a", "default/c"], "the checkpoint follows")
        let reference = Self.node([Self.pods[0], Self.pods[2]], mode: mode)
        #expect(n.hostState == reference.hostState)
    }

    /// Nothing changed while ipamd was down: no netlink change at all.
    @Test func livePodsAreServedAgainWithoutTouchingTheNode() async throws {
        let n = Self.node(Self.pods, mode: "strict")
        let before = n.dp.host.mutations
        let registry = PodRegistry(store: n.ipamd.store)
        _ = try registry.restore()
        let report = try await reconciler(n, registry, source: n.ipamd.source).run(rebuild: false, syncTimeout: .zero)
        #expect(report.kept.count == 3 && report.gone.isEmpty && report.removed.isEmpty)
        #expect(n.dp.host.mutations == before)
    }

    /// The checkpoint was lost: the pods come back from the kernel's tagged VLAN links and the
    /// source, with their containers; nothing is torn down.
    @Test func lostCheckpointIsRebuiltFromTheKernel() async throws {
        let n = Self.node(Self.pods, mode: "strict")
        let before = n.hostState
        let registry = PodRegistry(store: MemoryStore())
        let source = ListingSource(n.ipamd.source, views: Self.pods.map { p in
            var v = PodView(namespace: "default", name: p.name, podUID: "uid-\(p.container)", branch: true, state: .ready)
            v.vlanID = p.vlan; v.ipv4 = p.ip; v.mac = p.mac; v.eniID = "eni-\(p.vlan)"
            return v
        })
        let report = try await reconciler(n, registry, source: source).run(rebuild: true, syncTimeout: .zero)
        #expect(Set(report.rebuilt) == ["default/a", "default/b", "default/c"])
        #expect(registry.get(key: "default/b")?.containerID == "cb")
        #expect(report.removed.isEmpty)
        #expect(n.hostState == before)
    }

    /// A source that cannot say which pods exist (the API server did not answer): nothing is
    /// torn down, whatever the checkpoint says.
    @Test func unsyncedSourceTearsNothingDown() async throws {
        let n = Self.node(Self.pods, mode: "strict")
        let before = n.hostState
        n.ipamd.forget(Self.pods[0])
        let registry = PodRegistry(store: n.ipamd.store)
        _ = try registry.restore()
        let report = try await reconciler(n, registry, source: ListingSource(n.ipamd.source, views: [], synced: false)).run(rebuild: false, syncTimeout: .zero)
        #expect(!report.sourceSynced && report.gone.isEmpty && report.removed.isEmpty)
        #expect(n.hostState == before)
    }
}

extension StartupReconcilerTests {
    /// A source that lists every pod (the pod watch) knows nothing of a regular pod the runtime
    /// named none for (ctr): its host veth decides. The veth is there: kept and untouched (the
    /// pod watch's "not found" tore it down, found by the DaemonSet test's upgrade).
    @Test func namelessRegularPodIsJudgedByItsVethNotTheSource() async throws {
        let n = SimulatedNode()
        var veth = n.dp.host.addLink("eni0123456789a", kind: "veth", mtu: 9001, up: true)
        veth.alias = "default-ctr1"
        n.dp.host.linkTable[veth.name] = veth
        let registry = PodRegistry(store: MemoryStore())
        _ = try registry.claim(ServedPod(namespace: "", name: "", podUID: "", containerID: "default-ctr1", ifName: "eth0", branch: false,
                                         vlanID: 0, eniID: "eni-primary", ipv4: "10.0.0.20", mac: "", servedAt: "now"), isLive: { _ in true })
        let before = n.dp.host.mutations
        let report = try await reconciler(n, registry, source: ListingSource(n.ipamd.source, views: [], listsRegularPods: true))
            .run(rebuild: false, syncTimeout: .zero)
        #expect(report.kept == ["default-ctr1"] && report.gone.isEmpty && report.removed.isEmpty, "\(report)")
        #expect(n.dp.host.linkTable["eni0123456789a"] != nil && n.dp.host.mutations == before, "the nameless pod's veth is untouched")
    }
}

/// A source that lists pods (as the Kubernetes cache does) and may not have synced.
final class ListingSource: PodENISource, @unchecked Sendable {
    let base: any PodENISource
    let views: [PodView]
    let synced: Bool
    let listsRegularPods: Bool
    init(_ base: any PodENISource, views: [PodView], synced: Bool = true, listsRegularPods: Bool = false) {
        self.base = base; self.views = views; self.synced = synced; self.listsRegularPods = listsRegularPods
    }
    func lookup(key: String, containerID: String) -> PodENILookup { base.lookup(key: key, containerID: containerID) }
    func podViews() -> [PodView] { views }
    func waitUntilSynced(timeout: Duration) async -> Bool { synced }
}
