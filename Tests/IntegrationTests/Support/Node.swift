import Foundation
import Glibc
import IPAMDCore
import IPAMDProtocol
import NetModel
import Netlink
import SystemIO
import TestSupport
import Testing

/// Where the binaries under test are: the release build (what ships; AWS_CNI_RELEASE_DIR to
/// override), and the debug build for runs that need the fault hook (AWS_CNI_DEBUG_DIR).
enum Binaries {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path
    static var releaseDir: String { ProcessInfo.processInfo.environment["AWS_CNI_RELEASE_DIR"] ?? root + "/.build/release" }
    static var debugDir: String { ProcessInfo.processInfo.environment["AWS_CNI_DEBUG_DIR"] ?? root + "/.build/debug" }
    static var awsCNI: String { releaseDir + "/aws-cni" }
    static var ipamd: String { releaseDir + "/ipamd" }
    /// aws-cni with the test hook AWS_CNI_TEST_FAULT (debug builds only).
    static var awsCNIWithFaultHook: String { debugDir + "/aws-cni" }
}

/// Whether this kernel can make 802.1Q links (the build machines' cannot; the test VM's can).
let kernelHasVLAN: Bool = {
    guard isRoot, let ns = try? TestNamespace.create("vlanprobe") else { return false }
    defer { ns.destroy() }
    guard (try? ns.ip("link", "add", "p0", "type", "veth", "peer", "name", "p1")) != nil else { return false }
    return (try? ns.ip("link", "add", "link", "p0", "name", "p0.5", "type", "vlan", "id", "5")) != nil
}()

/// A simulated node: the node's network namespace with its trunk (eth1, MAC 0a:00:00:00:0f:01)
/// and primary interface (eth0, 10.0.0.10/20), the VPC fabric on the far end of both (namespace
/// "vpc", router 10.0.0.1), pod namespaces, and a work directory for ipamd's files. Every name is
/// unique per fixture, so tests run side by side; `destroy` removes it all.
final class SimNode {
    static let trunkMAC = "0a:00:00:00:0f:01"
    let node: TestNamespace
    let vpc: TestNamespace
    let work: String
    private(set) var pods: [String: TestNamespace] = [:]

    init(primaryInterfaces: [String] = ["eth0"]) throws {
        node = try TestNamespace.create("node")
        vpc = try TestNamespace.create("vpc")
        work = tempDir()
        try node.ip("link", "set", "lo", "up")
        try vpc.ip("link", "set", "lo", "up")
        try node.ip("link", "add", "eth1", "address", Self.trunkMAC, "mtu", "9001", "type", "veth", "peer", "name", "trunk", "netns", vpc.name, "mtu", "9001")
        try node.ip("link", "set", "eth1", "up")
        try vpc.ip("link", "set", "trunk", "up")
        for (i, name) in primaryInterfaces.enumerated() {
            try node.ip("link", "add", name, "type", "veth", "peer", "name", "primary\(i)", "netns", vpc.name)
            try node.ip("addr", "add", "10.0.\(i).10/20", "dev", name)
            try node.ip("link", "set", name, "up")
            try vpc.ip("link", "set", "primary\(i)", "up")
        }
        try vpc.ip("addr", "add", "10.0.0.1/20", "dev", "primary0")
        try node.ip("route", "add", "default", "via", "10.0.0.1", "dev", primaryInterfaces[0])
    }

    /// The VPC's end of one branch ENI: VLAN `vlan` on the trunk answering as the subnet gateway
    /// 10.0.32.1 and knowing where the ENI's address and MAC live. Needs 802.1Q.
    func branch(vlan: UInt16, mac: String, ip: String) throws {
        let link = "trunk.\(vlan)"
        try vpc.ip("link", "add", "link", "trunk", "name", link, "type", "vlan", "id", String(vlan))
        try vpc.ip("addr", "add", "10.0.32.1/32", "dev", link)
        try vpc.ip("link", "set", link, "up")
        try vpc.ip("route", "replace", "\(ip)/32", "dev", link)
        try vpc.ip("neigh", "replace", ip, "lladdr", mac, "dev", link, "nud", "permanent")
    }

    func newPodNamespace() throws -> TestNamespace {
        let ns = try TestNamespace.create("pod")
        pods[ns.path] = ns
        return ns
    }

    func deletePodNamespace(_ path: String) {
        pods.removeValue(forKey: path)?.destroy()
    }

    func destroy() {
        for p in pods.values { p.destroy() }
        pods.removeAll()
        node.destroy()
        vpc.destroy()
        try? FileManager.default.removeItem(atPath: work)
    }

    /// The node's host namespace and the given pod namespaces, through our Netlink module.
    func snapshot(pods paths: [String]) throws -> NodeSnapshot {
        var clients: [String: any NetlinkClient] = [:]
        for p in paths where FileManager.default.fileExists(atPath: p) { clients[p] = try LibNLClient(namespacePath: p) }
        return try NodeSnapshot(host: try LibNLClient(namespacePath: node.path), pods: clients)
    }

    /// `nft -j list ruleset` in the node, parsed, without metainfo and rule handles (which
    /// change between listings).
    func nftRuleset() throws -> [JSONValue] {
        let r = try Spawn.run(["/usr/sbin/nft", "-j", "list", "ruleset"], env: ["PATH": "/usr/sbin:/usr/bin"], netns: node.path)
        guard r.exitCode == 0, let items = try JSONValue.parse(r.stdout)["nftables"] else { throw Errno.ioError }
        return items.arrayValue.filter { $0["metainfo"] == nil }.map { $0.dropping(key: "handle") }
    }

    /// A sysctl of the node (its /proc/sys/net), read from a thread that enters the namespace.
    func sysctl(_ key: String) throws -> String {
        try inNetns(node.path) { String(decoding: try FileIO.read(path: "/proc/sys/" + key.replacingOccurrences(of: ".", with: "/")), as: UTF8.self) }
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// ipamd as a real process in the node's namespace: its environment (a static pod-ENI file the
/// test edits, sockets, checkpoint, CNI directories all under the node's work directory), its
/// log on a pipe, readiness from its "ipamd ready" line.
final class IpamdProcess {
    let sim: SimNode
    var env: [String: String]
    private(set) var process: RunningProcess?
    var rpcSocket: String { env["IPAMD_SOCKET"]! }
    var debugSocket: String { env["IPAMD_DEBUG_SOCKET"]! }
    var podsFile: String { sim.work + "/pods.json" }
    var conflist: String { env["CNI_CONF_DIR"]! + "/10-aws.conflist" }
    var installedPlugin: String { env["CNI_BIN_DIR"]! + "/aws-cni" }

    init(_ sim: SimNode, mode: String = "strict", _ extra: [String: String] = [:]) {
        self.sim = sim
        let w = sim.work
        env = ["POD_ENI_SOURCE": "file:\(w)/pods.json", "TRUNK_INTERFACE": SimNode.trunkMAC, "VPC_CIDRS": "10.0.0.0/16",
               "ENABLE_POD_ENI": "true", "POD_SECURITY_GROUP_ENFORCING_MODE": mode,
               "IPAMD_SOCKET": "\(w)/run/ipamd.sock", "IPAMD_DEBUG_SOCKET": "\(w)/run/debug.sock",
               "AWS_VPC_K8S_CNI_BACKING_STORE": "\(w)/run/ipam.json", "AWS_VPC_K8S_CNI_LOG_FILE": "stderr",
               "AWS_VPC_K8S_CNI_LOGLEVEL": "INFO", "CNI_BIN_DIR": "\(w)/cni/bin", "CNI_CONF_DIR": "\(w)/cni/net.d",
               "CNI_PLUGIN_SOURCE": Binaries.awsCNI, "NODE_RECONCILE_INTERVAL": "0", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]
        env.merge(extra) { _, b in b }
        if !FileManager.default.fileExists(atPath: podsFile) { writeAtomically(#"{"pods":{}}"#, to: podsFile) }
    }

    /// Starts ipamd and waits until it says it is ready (false: it exited or took too long).
    @discardableResult
    func start(_ extra: [String: String] = [:], binary: String = Binaries.ipamd) throws -> Bool {
        let p = try RunningProcess([binary], env: env.merging(extra) { _, b in b }, netns: sim.node.path)
        process = p
        return p.waitForLine(containing: "ipamd ready", timeout: 120)
    }

    /// SIGTERM (graceful) or SIGKILL; returns how it ended.
    @discardableResult
    func stop(_ signal: Int32 = SIGTERM) -> (exitCode: Int32?, signal: Int32?)? {
        guard let p = process else { return nil }
        p.signal(signal)
        process = nil
        return p.waitForExit(timeout: 60)
    }

    var log: [String] { process?.output ?? [] }

    /// GET `path` on the debug socket: status and parsed JSON body.
    func get(_ path: String) throws -> (status: Int, json: Any?) {
        let r = try HTTPExchange.get(unixSocket: debugSocket, path)
        return (r.status, try? JSONSerialization.jsonObject(with: Data(r.body)))
    }

    /// /v1/pods as namespace/name -> (state, container id).
    func servedPods() throws -> [String: (state: String, container: String)] { Self.pods(try get("/v1/pods").json) }

    /// A `/v1/pods` answer as namespace/name (or the container id of a pod the runtime named
    /// none for) -> (state, container id).
    static func pods(_ json: Any?) -> [String: (state: String, container: String)] {
        let list = json as? [[String: Any]] ?? []
        var out: [String: (String, String)] = [:]
        for p in list {
            let key = (p["name"] as? String ?? "").isEmpty ? (p["containerID"] as? String ?? "") : "\(p["namespace"] ?? "")/\(p["name"] ?? "")"
            out[key] = (p["state"] as? String ?? "", p["containerID"] as? String ?? "")
        }
        return out
    }

    /// Writes the static pod-ENI file as the controller would annotate the pods.
    func setPods(_ annotations: [String: String]) {
        let body = annotations.sorted { $0.key < $1.key }.map { #""\#($0.key)": \#($0.value)"# }.joined(separator: ",")
        writeAtomically("{\"pods\": {\(body)}}", to: podsFile)
    }
}

/// One pod-eni annotation element array, as the resource controller writes it.
func annotation(vlan: UInt16, ip: String, mac: String) -> String {
    #"[{"eniId":"eni-\#(vlan)","ifAddress":"\#(mac)","privateIp":"\#(ip)","vlanId":\#(vlan),"subnetCidr":"10.0.32.0/19"}]"#
}

/// aws-cni run as kubelet runs it, in the node's namespace.
/// @unchecked Sendable: it only reads paths fixed at creation (the soak runs it from threads).
struct PluginRunner: @unchecked Sendable {
    let sim: SimNode
    let ipamd: IpamdProcess
    var binary = Binaries.awsCNI
    var mode = "strict"

    func conf(prevResult: String? = nil, extra: String = "", socket: String? = nil) -> String {
        #"{"cniVersion":"1.1.0","name":"aws-cni","type":"aws-cni","vethPrefix":"eni","mtu":"9001","podSGEnforcingMode":"\#(mode)","#
            + #""pluginLogFile":"\#(sim.work)/plugin.log","pluginLogLevel":"Debug","ipamdSocket":"\#(socket ?? ipamd.rpcSocket)""#
            + (prevResult.map { #","prevResult":\#($0)"# } ?? "") + extra + "}"
    }

    /// `ipamdReachable` false: the plugin finds nothing listening (ipamd down, from its side).
    func run(_ command: String, container: String, pod: String?, netns: String, prevResult: String? = nil,
             extraConf: String = "", fault: String? = nil, ipamdReachable: Bool = true) throws -> Completed {
        var env = ["CNI_COMMAND": command, "CNI_CONTAINERID": container, "CNI_NETNS": netns, "CNI_IFNAME": "eth0",
                   "CNI_PATH": "/opt/cni/bin"]
        if let pod { env["CNI_ARGS"] = "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=\(pod);K8S_POD_UID=uid-\(pod)" }
        if let fault { env["AWS_CNI_TEST_FAULT"] = fault }
        return try Spawn.run([fault == nil ? binary : Binaries.awsCNIWithFaultHook], env: env,
                             stdin: Array(conf(prevResult: prevResult, extra: extraConf, socket: ipamdReachable ? nil : sim.work + "/run/nobody-listens.sock").utf8),
                             netns: sim.node.path)
    }
}
