import CNI
import CNIPlugin
import Datapath
import EnforcingMode
import Glibc
import IPAMDProtocol
import Netlink

/// A `SequenceNode` in memory: the fake kernel, the in-process ipamd, the plugin's Dispatcher.
/// A "killed" run stops dead at the hook: every later netlink request and ipamd call fails.
public final class FakeSequenceNode: SequenceNode {
    public let mode: PodSGEnforcingMode
    public let dp = FakeDatapath()
    public let ipamd: InProcessIPAMD
    var nextNetns = 0

    public let servesRegularPods: Bool

    /// `regularPods`: ipamd has an address pool (in-memory EC2), so pods without an annotation
    /// are regular pods.
    public init(mode: PodSGEnforcingMode, regularPods: Bool = false) {
        self.mode = mode
        servesRegularPods = regularPods
        ipamd = InProcessIPAMD(trunkIndex: dp.trunk.index, regularPods: regularPods)
    }

    public func annotate(pod: String, _ a: Assignment) { ipamd.annotate(key: "default/\(pod)", vlan: a.vlan, ip: a.ip, mac: a.mac) }
    public func forget(pod: String) { ipamd.forget(key: "default/\(pod)") }

    public func newNetns() throws -> String {
        nextNetns += 1
        let path = "/var/run/netns/seq-\(nextNetns)"
        dp.addNamespace(path)
        return path
    }

    public func deleteNetns(_ path: String) throws { dp.deleteNamespace(path) }

    func conf(extra: String = "") -> String {
        #"{"cniVersion":"1.1.0","name":"aws-cni","type":"aws-cni","podSGEnforcingMode":"\#(mode.rawValue)""# + extra + "}"
    }

    func dispatch(_ env: [String: String], stdin: String, fault: FaultInjector.Plan?, ipamdReachable: Bool = true) -> CNIRun {
        let injector = fault.map { FaultInjector($0) }
        let provider: any DatapathProvider = injector.map { FaultInjectingProvider(dp, $0) } ?? dp
        let client = StoppableIPAMD(base: ipamd, injector: injector, reachable: ipamdReachable)
        let d = Dispatcher(makeIPAMD: { _ in client }, datapath: provider, makeLogger: { _, _ in quiet })
        let out = d.run(environment: env, stdin: Array(stdin.utf8))
        return CNIRun(exitCode: out.exitCode, stdout: out.stdout, killed: injector?.stopped ?? false)
    }

    public func cni(_ command: String, _ s: Sandbox, prevResult: String?, netns: String, fault: FaultInjector.Plan?, ipamdReachable: Bool) throws -> CNIRun {
        dispatch(["CNI_COMMAND": command, "CNI_CONTAINERID": s.container, "CNI_NETNS": netns, "CNI_IFNAME": "eth0",
                  "CNI_ARGS": "K8S_POD_NAMESPACE=default;K8S_POD_NAME=\(s.pod);K8S_POD_UID=uid-\(s.pod)"],
                 stdin: conf(extra: prevResult.map { #","prevResult":\#($0)"# } ?? ""), fault: fault, ipamdReachable: ipamdReachable)
    }

    public func gc(valid: [String]) throws -> CNIRun {
        let list = valid.map { #"{"containerID":"\#($0)","ifname":"eth0"}"# }.joined(separator: ",")
        return dispatch(["CNI_COMMAND": "GC"], stdin: conf(extra: #","cni.dev/valid-attachments":[\#(list)]"#), fault: nil)
    }

    public func stopIpamd(kill: Bool) throws { ipamd.down = true }

    /// A new process: what it knows comes back from the checkpoint.
    public func startIpamd() throws {
        ipamd.restart()
        ipamd.down = false
    }

    public func snapshot(podNamespaces: [String]) throws -> NodeSnapshot {
        var pods: [String: any NetlinkClient] = [:]
        for p in podNamespaces { if let ns = dp.namespaces[p]?.ns { pods[p] = ns } }
        return try NodeSnapshot(host: dp.host, pods: pods, permanentNeighborsOnly: false)
    }

    public func servedPods() throws -> [String: String] {
        Dictionary(ipamd.handler.registry.all.map { ($0.key, $0.containerID) }, uniquingKeysWith: { a, _ in a })
    }
}

/// ipamd as one plugin run sees it: unreachable when ipamd is down, or once the fault hook
/// stopped the run.
final class StoppableIPAMD: IPAMDClient {
    let base: any IPAMDClient
    let injector: FaultInjector?
    let reachable: Bool

    init(base: any IPAMDClient, injector: FaultInjector?, reachable: Bool) { self.base = base; self.injector = injector; self.reachable = reachable }

    func call(_ request: RPCRequest, timeoutSeconds: Int) throws(IPAMDClientError) -> RPCReply {
        if !reachable || injector?.stopped == true { throw .unreachable(path: "(stopped run)", SocketError("connect", errno: ECONNREFUSED)) }
        return try base.call(request, timeoutSeconds: timeoutSeconds)
    }
}
