import Datapath
import EnforcingMode
import NetModel
import Netlink

/// `ipamd explain`: a served pod's plan rebuilt from what ipamd recorded (VLAN, address, branch
/// MAC, mode, namespace, the source's gateway) and compared with the kernel, object by object.
public struct PodExplanation: Codable, Sendable, Equatable {
    public var pod: String
    public var containerID: String
    public var mode: String
    public var vlanID: UInt16
    public var ipv4: String
    public var netns: String?
    public var objects: [ExplainedObject]

    /// Nothing missing or different (objects not checked do not count against it).
    public var healthy: Bool { !objects.contains { $0.status == .missing || $0.status == .different } }

    /// "ok", or the counts of what is wrong, for the `pods` table.
    public var summary: String {
        let missing = objects.filter { $0.status == .missing }.count, different = objects.filter { $0.status == .different }.count
        if missing == 0 && different == 0 { return objects.contains { $0.status == .unchecked } ? "ok (pod side unchecked)" : "ok" }
        return [missing > 0 ? "\(missing) missing" : nil, different > 0 ? "\(different) different" : nil].compactMap { $0 }.joined(separator: ", ")
    }
}

public enum ExplainError: Error, Sendable, CustomStringConvertible {
    /// ipamd has not served a pod of that name (or container id).
    case notServed(String)
    /// What ipamd recorded cannot be planned (an address that does not parse).
    case incomplete(String)
    case netlink(NetlinkError)

    public var description: String {
        switch self {
        case .notServed(let key): "pod \(key) is not served by this ipamd (not a branch pod, not added yet, or deleted)"
        case .incomplete(let why): why
        case .netlink(let e): "cannot read the datapath: \(e)"
        }
    }
}

public struct PodExplainer: Sendable {
    let config: IPAMDConfig
    let registry: PodRegistry
    let source: any PodENISource
    let trunk: any TrunkLocator
    let datapath: @Sendable () -> any DatapathProvider

    public init(config: IPAMDConfig, registry: PodRegistry, source: any PodENISource, trunk: any TrunkLocator,
                datapath: @escaping @Sendable () -> any DatapathProvider = { LibNLDatapathProvider() }) {
        self.config = config; self.registry = registry; self.source = source; self.trunk = trunk; self.datapath = datapath
    }

    /// `key`: "namespace/name", or a container id for pods served without a pod identity.
    public func explain(_ key: String) throws(ExplainError) -> PodExplanation {
        guard let served = registry.get(key: key) ?? registry.all.first(where: { $0.containerID == key }) else { throw .notServed(key) }
        guard let ipText = served.ipv4, let ip = IPAddress(ipText), let mac = MACAddress(served.mac) else {
            throw .incomplete("ipamd recorded no usable address or MAC for \(key)")
        }
        let mode = served.mode.flatMap(PodSGEnforcingMode.init(rawValue:)) ?? config.enforcingMode
        let provider = datapath()
        let context: DatapathContext
        do throws(NetlinkError) {
            // A namespace that is gone leaves the pod side unchecked rather than failing the rest.
            if let path = served.netns, let pod = try? provider.podContext(netnsPath: path) {
                context = pod
            } else {
                context = try provider.hostContext()
            }
        } catch { throw .netlink(error) }
        let prefix = Naming.vethPrefix(mode: mode, configuredPrefix: config.node.vethPrefix)
        let veth = served.name.isEmpty ? Naming.hostVethName(prefix: prefix, containerID: served.containerID)
            : Naming.hostVethName(prefix: prefix, podNamespace: served.namespace, podName: served.name)
        // The veth MACs are random per ADD; the live ones stand in (a missing link shows as missing).
        let unknown = MACAddress(bytes: [2, 0, 0, 0, 0, 0])!
        let hostMAC = (try? context.host.link(named: veth)?.mac) ?? nil
        let podMAC = (try? context.pod?.link(named: served.ifName.isEmpty ? "eth0" : served.ifName)?.mac) ?? nil
        let gateway: IPAddress
        if case .branch(let eni) = source.lookup(served.podRequest), let gw = eni.gatewayV4 { gateway = gw } else { gateway = ip }
        let pod = BranchPod(mode: mode, vlanID: served.vlanID, podIP: ip, subnetGateway: gateway, branchMAC: mac,
                            trunkIndex: (try? trunk.trunkIndex()) ?? 0, hostVeth: veth,
                            containerInterface: served.ifName.isEmpty ? "eth0" : served.ifName, mtu: config.conflist.mtu,
                            owner: served.containerID, hostVethMAC: hostMAC ?? unknown, containerMAC: podMAC ?? unknown)
        let objects: [ExplainedObject]
        do throws(NetlinkError) {
            objects = try PlanExplainer(context: context).explain(BranchPodPlanner.setup(pod), family: pod.family, podNetnsPath: served.netns)
        } catch { throw .netlink(error) }
        return PodExplanation(pod: served.key, containerID: served.containerID, mode: mode.rawValue, vlanID: served.vlanID,
                              ipv4: ipText, netns: served.netns, objects: objects)
    }
}
