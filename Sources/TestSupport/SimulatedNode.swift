import CNI
import CNIPlugin
import Datapath
import EnforcingMode
import AWSCloud
import Foundation
import IPAMDCore
import IPAMDPool
import IPAMPool
import IPAMDProtocol
import Logging
import NetModel
import Netlink
import Synchronization

/// The checkpoint in memory: what survives an ipamd restart in these tests.
public final class MemoryStore: ServedPodStore, @unchecked Sendable {
    public init() {}
    private let pods = Mutex<[ServedPod]>([])
    public func load() throws(CheckpointError) -> [ServedPod] { pods.withLock { $0 } }
    public func save(_ p: [ServedPod]) throws(CheckpointError) { pods.withLock { $0 = p } }
}

/// One branch pod as the control plane sees it: identity, sandbox and its branch ENI.
public struct SimPod: Hashable, Sendable {
    public var name: String
    public var container: String
    public var netns: String
    public var vlan: UInt16
    public var ip: String

    public init(name: String, container: String, netns: String, vlan: UInt16, ip: String) {
        self.name = name; self.container = container; self.netns = netns; self.vlan = vlan; self.ip = ip
    }

    public var mac: String { String(format: "0a:00:00:00:%02x:%02x", vlan >> 8, vlan & 0xff) }
    public var key: String { "default/\(name)" }
}

/// The control plane's annotations in memory (the static file's semantics without the file):
/// what ipamd's pod-ENI source answers.
public final class AnnotationSource: PodENISource, @unchecked Sendable {
    // @unchecked: every access holds `pods`.
    private let pods = Mutex<[String: PodENILookup]>([:])

    public init() {}

    public func set(key: String, _ annotation: String?) {
        let parsed = annotation.map { a -> PodENILookup in
            do throws(AnnotationError) { return .branch(try BranchENI.decode(annotation: a)) } catch { return .invalid(error) }
        }
        pods.withLock { $0[key] = parsed }
    }

    public func lookup(key: String, containerID: String) -> PodENILookup {
        pods.withLock { $0[key] ?? (containerID.isEmpty ? nil : $0[containerID]) } ?? .notFound
    }
}

/// ipamd's real RPC handler, called in-process, with the annotations the test sets (the control
/// plane: they appear and disappear) and a checkpoint that outlives `restart()`.
public final class InProcessIPAMD: IPAMDClient {
    public let trunkIndex: Int32
    public let store = MemoryStore()
    public let source = AnnotationSource()
    public private(set) var handler: RPCHandler
    public var down = false
    /// With regular pods: EC2 (it outlives ipamd's restarts) and the running pool with its
    /// sizing loop. One pod address per ENI (10 ENIs), so most pods land on secondary ENIs.
    public let ec2: FakePoolEC2?
    private var pool: (manager: PoolManager, loop: Task<Void, Never>)?

    /// `regularPods`: a pod without an annotation gets a pool address (as with the cloud);
    /// otherwise it is refused, as without the cloud.
    public init(trunkIndex: Int32, regularPods: Bool = false) {
        self.trunkIndex = trunkIndex
        ec2 = regularPods ? FakePoolEC2() : nil
        ec2?.limits = InstanceTypeLimits(instanceType: "m5.large", maxENIs: 10, ipv4PerENI: 2)
        (handler, pool) = Self.make(source: source, trunkIndex: trunkIndex, store: store, ec2: ec2)
    }

    static func make(source: AnnotationSource, trunkIndex: Int32, store: MemoryStore, ec2: FakePoolEC2?)
        -> (RPCHandler, (manager: PoolManager, loop: Task<Void, Never>)?) {
        var config = IPAMDConfig(podENISource: .file(path: "/in-memory"), trunk: .name("eth1"), vpcCIDRs: [IPPrefix("10.0.0.0/16")!])
        config.node.enablePodENI = true
        config.pool.addressWait = .seconds(2)
        let registry = PodRegistry(store: store)
        _ = try? registry.restore()
        var pool: (manager: PoolManager, loop: Task<Void, Never>)?
        if let ec2 {
            var settings = PoolSettings(targets: PoolTargets(), reserveTrunkSlot: false, instanceID: "i-1", instanceType: "m5.large",
                                        primaryENIID: "eni-primary", subnetID: "subnet-1", subnet: IPPrefix("10.0.0.0/19")!, securityGroupIDs: ["sg-1"])
            settings.cooldown = .zero
            let manager = PoolManager(settings: settings, ec2: ec2, host: FakeENIHost(), logger: quiet)
            let restored = registry.regularPodAddresses
            blocking { _ = try? await manager.start(attached: ec2.attached, subnets: [:], restored: restored) }
            pool = (manager, Task { await manager.run() })
        }
        let handler = RPCHandler(config: config, source: source, trunk: FixedTrunk(index: trunkIndex), registry: registry, pool: pool?.manager, logger: quiet)
        return (handler, pool)
    }

    /// The controller annotates the pod with its branch ENI.
    public func annotate(_ p: SimPod) { annotate(key: p.key, vlan: p.vlan, ip: p.ip, mac: p.mac) }

    public func annotate(key: String, vlan: UInt16, ip: String, mac: String) {
        source.set(key: key, #"[{"eniId":"eni-\#(vlan)","ifAddress":"\#(mac)","privateIp":"\#(ip)","vlanId":\#(vlan),"subnetCidr":"10.0.32.0/19"}]"#)
    }

    /// The pod is deleted from the cluster (its annotation with it).
    public func forget(_ p: SimPod) { forget(key: p.key) }

    public func forget(key: String) { source.set(key: key, nil) }

    deinit { pool?.loop.cancel() }

    /// A new ipamd process: the registry comes back from the checkpoint only, the pool from
    /// EC2's ENIs and the checkpoint's holders.
    public func restart() {
        if let pool {
            // The old process is gone before the new one starts: its sizing step in flight ends
            // (a process's EC2 calls die with it; here they must not overlap the new pool's).
            pool.loop.cancel()
            blocking {
                await pool.loop.value
                await pool.manager.shutdown()
            }
        }
        (handler, pool) = Self.make(source: source, trunkIndex: trunkIndex, store: store, ec2: ec2)
    }

    public func call(_ request: RPCRequest, timeoutSeconds: Int) throws(IPAMDClientError) -> RPCReply {
        if down { throw .unreachable(path: "/in-process", SocketError("connect", errno: ECONNREFUSED)) }
        // The pool answers asynchronously (an ADD may wait for a refill): the plugin's call blocks
        // on it, as it blocks on ipamd's socket. Callers are off the cooperative pool.
        if pool != nil {
            let handler = handler
            return blocking { await handler.handle(request) }
        }
        return handler.respond(request)
    }
}

/// Runs `body` as a task and blocks this thread until it ends: for synchronous callers (the
/// plugin's IPAMD client) of async code, on threads outside the cooperative pool. A task that
/// has not ended after a minute is a bug of the test (a starved or deadlocked pool): it stops
/// the process with a message rather than hang the run.
func blocking<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
    let done = DispatchSemaphore(value: 0)
    let result = Mutex<T?>(nil)
    Task {
        let value = await body()
        result.withLock { $0 = value }
        done.signal()
    }
    if done.wait(timeout: .now() + 60) == .timedOut {
        fatalError("an in-process ipamd call did not end within 60 s (blocked cooperative pool?)")
    }
    return result.withLock { $0! }
}

/// A node: the fake kernel, an in-process ipamd, and the plugin run as the runtime runs it.
public final class SimulatedNode {
    public let dp = FakeDatapath()
    public let ipamd: InProcessIPAMD
    private var macCounter: UInt32 = 0

    public init() { ipamd = InProcessIPAMD(trunkIndex: dp.trunk.index) }

    /// Deterministic veth MACs (locally administered), different for every end.
    public func nextMAC() -> MACAddress {
        macCounter += 1
        return MACAddress(bytes: [0x02, 0xaa, 0, UInt8(macCounter >> 16 & 0xff), UInt8(macCounter >> 8 & 0xff), UInt8(macCounter & 0xff)])!
    }

    public func conf(_ mode: String, prevResult: String? = nil, extra: String = "") -> String {
        #"{"cniVersion":"1.1.0","name":"aws-cni","type":"aws-cni","podSGEnforcingMode":"\#(mode)""#
            + (prevResult.map { #","prevResult":\#($0)"# } ?? "") + extra + "}"
    }

    public func run(_ command: String, _ p: SimPod, mode: String, prevResult: String? = nil, netns: String? = nil) -> Outcome {
        let d = Dispatcher(makeIPAMD: { [ipamd] _ in ipamd }, datapath: dp,
                           makeLogger: { _, _ in quiet }, newMAC: { [unowned self] in self.nextMAC() })
        return d.run(environment: ["CNI_COMMAND": command, "CNI_CONTAINERID": p.container, "CNI_NETNS": netns ?? p.netns,
                                   "CNI_IFNAME": "eth0", "CNI_PATH": "/opt/cni/bin",
                                   "CNI_ARGS": "K8S_POD_NAMESPACE=default;K8S_POD_NAME=\(p.name);K8S_POD_UID=uid-\(p.container)"],
                     stdin: Array(conf(mode, prevResult: prevResult).utf8))
    }

    public func gc(valid: [String], mode: String) -> Outcome {
        let list = valid.map { #"{"containerID":"\#($0)","ifname":"eth0"}"# }.joined(separator: ",")
        let d = Dispatcher(makeIPAMD: { [ipamd] _ in ipamd }, datapath: dp, makeLogger: { _, _ in quiet })
        return d.run(environment: ["CNI_COMMAND": "GC", "CNI_PATH": "/opt/cni/bin"],
                     stdin: Array(conf(mode, extra: #","cni.dev/valid-attachments":[\#(list)]"#).utf8))
    }

    /// The host as names and values only (no ifindexes, no veth MACs), comparable across nodes.
    public var hostState: [String] { dp.host.normalizedState }
}

extension FakeNetlink {
    /// Links by name, kind, state and owner tag; routes and addresses by device name; rules as
    /// they are; neighbours without MACs (those are random per run).
    public var normalizedState: [String] {
        let names = Dictionary(linkTable.values.map { ($0.index, $0.name) }, uniquingKeysWith: { a, _ in a })
        func dev(_ i: Int32?) -> String { i.flatMap { names[$0] } ?? "?" }
        return linkTable.values.map { "link \($0.name) \($0.kind) up=\($0.isUp) alias=\($0.alias)" + ($0.kind == "vlan" ? " mac=\($0.mac?.description ?? "")" : "") }.sorted()
            + addressList.map { "addr \($0.prefix) dev \(dev($0.linkIndex))" }.sorted()
            + routeList.map { "route \($0.destination) via \($0.gateway?.description ?? "-") dev \(dev($0.outputIndex)) table \($0.table)" }.sorted()
            + ruleList.map { "rule \($0)" }.sorted()
            + neighborList.map { "neigh \($0.address) dev \(dev($0.linkIndex))" }.sorted()
    }
}
