import CNI
import CNIPlugin
import Datapath
import EnforcingMode
import Foundation
import IPAMDCore
import IPAMDProtocol
import Logging
import NetModel
import Netlink
import Synchronization

/// The checkpoint in memory: what survives an ipamd restart in these tests.
final class MemoryStore: ServedPodStore, @unchecked Sendable {
    private let pods = Mutex<[ServedPod]>([])
    func load() throws(CheckpointError) -> [ServedPod] { pods.withLock { $0 } }
    func save(_ p: [ServedPod]) throws(CheckpointError) { pods.withLock { $0 = p } }
}

/// One branch pod as the control plane sees it: identity, sandbox and its branch ENI.
struct SimPod: Hashable {
    var name: String
    var container: String
    var netns: String
    var vlan: UInt16
    var ip: String
    var mac: String { String(format: "0a:00:00:00:%02x:%02x", vlan >> 8, vlan & 0xff) }
    var key: String { "default/\(name)" }
}

/// ipamd's real RPC handler, called in-process, with the static pod-ENI file the test edits (the
/// control plane: annotations appear and disappear) and a checkpoint that outlives `restart()`.
final class InProcessIPAMD: IPAMDClient {
    let dir: String
    let trunkIndex: Int32
    let store = MemoryStore()
    private(set) var handler: RPCHandler
    var down = false
    private var annotations: [String: String] = [:]

    init(trunkIndex: Int32) {
        dir = tempDir()
        self.trunkIndex = trunkIndex
        handler = Self.makeHandler(dir: dir, trunkIndex: trunkIndex, store: store)
        writeFile()
    }

    static func makeHandler(dir: String, trunkIndex: Int32, store: MemoryStore) -> RPCHandler {
        var config = IPAMDConfig(podENISource: .file(path: dir + "/pods.json"), trunk: .name("eth1"), vpcCIDRs: [IPPrefix("10.0.0.0/16")!])
        config.node.enablePodENI = true
        let registry = PodRegistry(store: store)
        _ = try? registry.restore()
        return RPCHandler(config: config, source: StaticFileSource(path: dir + "/pods.json", logger: quiet),
                          trunk: FixedTrunk(index: trunkIndex), registry: registry, logger: quiet)
    }

    /// The controller annotates the pod with its branch ENI.
    func annotate(_ p: SimPod) {
        annotations[p.key] = #"[{"eniId":"eni-\#(p.vlan)","ifAddress":"\#(p.mac)","privateIp":"\#(p.ip)","vlanId":\#(p.vlan),"subnetCidr":"10.0.32.0/19"}]"#
        writeFile()
    }

    /// The pod is deleted from the cluster (its annotation with it).
    func forget(_ p: SimPod) {
        annotations[p.key] = nil
        writeFile()
    }

    private func writeFile() {
        let body = annotations.sorted { $0.key < $1.key }.map { #""\#($0.key)": \#($0.value)"# }.joined(separator: ",\n")
        writeAtomically("{\"pods\": {\(body)}}", to: dir + "/pods.json")
    }

    /// A new ipamd process: the registry comes back from the checkpoint only.
    func restart() { handler = Self.makeHandler(dir: dir, trunkIndex: trunkIndex, store: store) }

    func call(_ request: RPCRequest, timeoutSeconds: Int) throws(IPAMDClientError) -> RPCReply {
        if down { throw .unreachable(path: "/in-process", SocketError("connect", errno: ECONNREFUSED)) }
        return handler.handle(request)
    }
}

/// A node: the fake kernel, an in-process ipamd, and the plugin run as the runtime runs it.
final class SimulatedNode {
    let dp = FakeDatapath()
    let ipamd: InProcessIPAMD
    private var macCounter: UInt32 = 0

    init() { ipamd = InProcessIPAMD(trunkIndex: dp.trunk.index) }

    /// Deterministic veth MACs (locally administered), different for every end.
    func nextMAC() -> MACAddress {
        macCounter += 1
        return MACAddress(bytes: [0x02, 0xaa, 0, UInt8(macCounter >> 16 & 0xff), UInt8(macCounter >> 8 & 0xff), UInt8(macCounter & 0xff)])!
    }

    func conf(_ mode: String, prevResult: String? = nil, extra: String = "") -> String {
        #"{"cniVersion":"1.1.0","name":"aws-cni","type":"aws-cni","podSGEnforcingMode":"\#(mode)""#
            + (prevResult.map { #","prevResult":\#($0)"# } ?? "") + extra + "}"
    }

    func run(_ command: String, _ p: SimPod, mode: String, prevResult: String? = nil, netns: String? = nil) -> Outcome {
        let d = Dispatcher(makeIPAMD: { [ipamd] _ in ipamd }, datapath: dp,
                           makeLogger: { _, _ in quiet }, newMAC: { [unowned self] in self.nextMAC() })
        return d.run(environment: ["CNI_COMMAND": command, "CNI_CONTAINERID": p.container, "CNI_NETNS": netns ?? p.netns,
                                   "CNI_IFNAME": "eth0", "CNI_PATH": "/opt/cni/bin",
                                   "CNI_ARGS": "K8S_POD_NAMESPACE=default;K8S_POD_NAME=\(p.name);K8S_POD_UID=uid-\(p.container)"],
                     stdin: Array(conf(mode, prevResult: prevResult).utf8))
    }

    func gc(valid: [String], mode: String) -> Outcome {
        let list = valid.map { #"{"containerID":"\#($0)","ifname":"eth0"}"# }.joined(separator: ",")
        let d = Dispatcher(makeIPAMD: { [ipamd] _ in ipamd }, datapath: dp, makeLogger: { _, _ in quiet })
        return d.run(environment: ["CNI_COMMAND": "GC", "CNI_PATH": "/opt/cni/bin"],
                     stdin: Array(conf(mode, extra: #","cni.dev/valid-attachments":[\#(list)]"#).utf8))
    }

    /// The host as names and values only (no ifindexes, no veth MACs), comparable across nodes.
    var hostState: [String] { dp.host.normalizedState }
}

extension FakeNetlink {
    /// Links by name, kind, state and owner tag; routes and addresses by device name; rules as
    /// they are; neighbours without MACs (those are random per run).
    var normalizedState: [String] {
        let names = Dictionary(linkTable.values.map { ($0.index, $0.name) }, uniquingKeysWith: { a, _ in a })
        func dev(_ i: Int32?) -> String { i.flatMap { names[$0] } ?? "?" }
        return linkTable.values.map { "link \($0.name) \($0.kind) up=\($0.isUp) alias=\($0.alias)" + ($0.kind == "vlan" ? " mac=\($0.mac?.description ?? "")" : "") }.sorted()
            + addressList.map { "addr \($0.prefix) dev \(dev($0.linkIndex))" }.sorted()
            + routeList.map { "route \($0.destination) via \($0.gateway?.description ?? "-") dev \(dev($0.outputIndex)) table \($0.table)" }.sorted()
            + ruleList.map { "rule \($0)" }.sorted()
            + neighborList.map { "neigh \($0.address) dev \(dev($0.linkIndex))" }.sorted()
    }
}
