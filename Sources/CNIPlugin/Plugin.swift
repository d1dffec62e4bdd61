import CNI
import Datapath
import EnforcingMode
import IPAMDProtocol
import Logging
import NetModel
import Netlink

/// How long the plugin waits on ipamd, in seconds. ADD may wait for branch details that are on
/// their way; checks and notifications must not hold a pod's lifecycle up.
public enum IPAMDTimeouts {
    public static let request = 30
    /// DEL can always fall back to the live state, so it does not wait long.
    public static let del = 5
    public static let bestEffort = 2
}

/// The plugin's commands. All I/O goes through `ipamd` and `datapath`, so tests run it on fakes.
public struct Plugin {
    public var env: CNIEnvironment
    public var config: PluginConfig
    public var ipamd: any IPAMDClient
    public var datapath: any DatapathProvider
    public var logger: Logger
    /// MACs for new veth ends (random; tests fix them).
    public var newMAC: () -> MACAddress

    public init(env: CNIEnvironment, config: PluginConfig, ipamd: any IPAMDClient, datapath: any DatapathProvider, logger: Logger,
                newMAC: @escaping () -> MACAddress = Plugin.randomMAC) {
        self.env = env; self.config = config; self.ipamd = ipamd; self.datapath = datapath; self.logger = logger; self.newMAC = newMAC
    }

    public static func randomMAC() -> MACAddress {
        var g = SystemRandomNumberGenerator()
        return VethMAC.random(using: &g)
    }

    var podRequest: PodRequest {
        PodRequest(podName: env.args.podName ?? "", podNamespace: env.args.podNamespace ?? "", podUID: env.args.podUID ?? "",
                   containerID: env.containerID, netns: env.netns, ifName: env.ifName, networkName: config.networkName)
    }

    /// `prefix` + the pod's hash: of its identity when the runtime passed one, else of the container id.
    func podHashName(prefix: String) -> String {
        env.args.hasPodIdentity
            ? Naming.hostVethName(prefix: prefix, podNamespace: env.args.podNamespace!, podName: env.args.podName!)
            : Naming.hostVethName(prefix: prefix, containerID: env.containerID)
    }

    func hostVethName(mode: PodSGEnforcingMode) -> String {
        podHashName(prefix: Naming.vethPrefix(mode: mode, configuredPrefix: config.vethPrefix))
    }

    var dummyName: String { podHashName(prefix: "dummy") }

    // MARK: ADD

    public func add() throws(CNIError) -> CNIResult {
        // ipamd works on its answer while this run opens the pod's namespace and netlink
        // sockets: neither needs the other. Errors keep their order: ipamd's answer first.
        let pending = ipamd.send(RPCRequest(method: .addNetwork, pod: podRequest), timeoutSeconds: IPAMDTimeouts.request)
        let opened = Result { () throws(NetlinkError) -> DatapathContext in try datapath.podContext(netnsPath: env.netns) }
        let network = try answer(pending)
        do throws(CNIError) {
            if network.branch {
                let pod = try branchPod(from: network)
                let ctx = try build(TeardownScope(vlanID: pod.vlanID, podIP: pod.podIP, hostVeths: [pod.hostVeth]), BranchPodPlanner.setup(pod),
                                    kind: "branch", opened: opened)
                logger.info("branch pod added", metadata: ["vlan": "\(pod.vlanID)", "ip": "\(pod.podIP)", "host_veth": "\(pod.hostVeth)", "mode": "\(pod.mode.rawValue)"])
                return result(for: pod, ctx: ctx)
            }
            // A regular pod (SPEC section 3a): an address from one of the node's ENIs, no VLAN.
            let pod = try regularPod(from: network)
            _ = try build(TeardownScope(vlanID: nil, podIP: pod.veth.podIP, hostVeths: [pod.veth.hostVeth]), RegularPodPlanner.setup(pod),
                          kind: "regular", opened: opened)
            logger.info("regular pod added", metadata: ["ip": "\(pod.veth.podIP)", "host_veth": "\(pod.veth.hostVeth)", "device_number": "\(pod.deviceNumber)"])
            return result(for: pod)
        } catch {
            // The ADD failed (and undid its datapath): ipamd must not count the pod as served.
            notifyIPAMD(.delNetwork)
            throw error
        }
    }

    /// The datapath of one ADD: what an earlier sandbox or a leaked pod left in `scope` removed,
    /// then `steps` applied (rolled back if one fails).
    func build(_ scope: TeardownScope, _ steps: [PlanStep], kind: String, opened: Result<DatapathContext, NetlinkError>) throws(CNIError) -> DatapathContext {
        let ctx = try open { () throws(NetlinkError) in try opened.get() }
        let applier = PlanApplier(context: ctx, logger: logger)
        try evictLeftovers(scope, ctx: ctx, applier: applier)
        do {
            try applier.setup(steps)
        } catch {
            throw CNIError(.datapathFailure, "failed to set up \(kind) pod datapath", details: "\(error)")
        }
        return ctx
    }

    func regularPod(from n: PodNetwork) throws(CNIError) -> RegularPod {
        guard let ipText = n.podIPv4, let ip = IPAddress(ipText), let device = n.deviceNumber, device == 0 || Naming.eniRouteTable(deviceNumber: device) != nil else {
            throw CNIError(.ipamdFailure, "ipamd returned incomplete regular-pod details for \(podRequest.key)")
        }
        return RegularPod(veth: PodVeth(podIP: ip, hostVeth: hostVethName(mode: .standard), containerInterface: env.ifName, mtu: config.mtu,
                                        owner: env.containerID, hostVethMAC: newMAC(), containerMAC: newMAC()),
                          deviceNumber: device)
    }

    /// As the reference records a regular pod: the dummy interface says VLAN 0 (its `mac`) and
    /// the ENI's device number (its `sandbox`), so DEL and CHECK need no ipamd.
    func result(for pod: RegularPod) -> CNIResult {
        CNIResult(
            cniVersion: config.cniVersion,
            interfaces: [
                .init(name: pod.veth.hostVeth, mac: pod.veth.hostVethMAC.description),
                .init(name: pod.veth.containerInterface, mac: pod.veth.containerMAC.description, sandbox: env.netns),
                .init(name: dummyName, mac: "0", sandbox: String(pod.deviceNumber)),
            ],
            ips: [.init(address: IPPrefix(host: pod.veth.podIP).description, interface: 1)]
        ).converted(to: config.cniVersion)
    }

    /// Removes what an earlier sandbox of this pod, or a leaked pod that held its VLAN or address,
    /// left behind. ipamd has just confirmed that no live pod holds the VLAN or the address (it
    /// refuses the ADD otherwise), so everything found on them is a leftover.
    func evictLeftovers(_ scope: TeardownScope, ctx: DatapathContext, applier: PlanApplier) throws(CNIError) {
        let state = try read { () throws(NetlinkError) in
            try LiveDiscovery.hostState(for: scope, owner: env.containerID, host: ctx.host, routesIfNeeded: false)
        }
        ctx.remember(.host, state.links.values)
        let foreign = TeardownPlanner.foreignHolders(scope, owner: env.containerID, state: state)
        let steps = TeardownPlanner.evict(scope, state: state)
        if !steps.isEmpty {
            logger.info("removing leftovers before ADD", metadata: ["steps": "\(steps.count)", "of_containers": "\(foreign.sorted())"])
        }
        if let first = applier.teardown(steps).first {
            throw CNIError(.datapathFailure, "failed to remove leftovers of an earlier pod", details: "\(first)")
        }
    }

    /// A best-effort message to ipamd that nothing waits on for long.
    func notifyIPAMD(_ method: RPCMethod) {
        _ = try? ipamd.call(RPCRequest(method: method, pod: podRequest), timeoutSeconds: IPAMDTimeouts.bestEffort)
    }

    func branchPod(from n: PodNetwork) throws(CNIError) -> BranchPod {
        guard n.branch else {
            throw CNIError(.notBranchPod, "pod \(podRequest.key) is not a branch-ENI pod",
                           details: "this plugin serves security-group-for-pods branch interfaces only; regular pods need a pool-based CNI")
        }
        guard let ipText = n.podIPv4, let ip = IPAddress(ipText), let gwText = n.subnetGatewayV4, let gw = IPAddress(gwText),
              let macText = n.branchMAC, let mac = MACAddress(macText), Naming.vlanIDProblem(Int(n.vlanID)) == nil, n.parentIfIndex > 0 else {
            throw CNIError(.ipamdFailure, "ipamd returned incomplete branch details for \(podRequest.key)")
        }
        return BranchPod(mode: config.mode, vlanID: n.vlanID, podIP: ip, subnetGateway: gw, branchMAC: mac,
                         trunkIndex: n.parentIfIndex, hostVeth: hostVethName(mode: config.mode),
                         containerInterface: env.ifName, mtu: config.mtu, owner: env.containerID,
                         hostVethMAC: newMAC(), containerMAC: newMAC())
    }

    func result(for pod: BranchPod, ctx: DatapathContext) -> CNIResult {
        let hostMAC = pod.hostVethMAC.description
        let podMAC = pod.containerMAC.description
        return CNIResult(
            cniVersion: config.cniVersion,
            interfaces: [
                .init(name: pod.hostVeth, mac: hostMAC),
                .init(name: pod.containerInterface, mac: podMAC, sandbox: env.netns),
                // Records the VLAN id so DEL can tear down from prevResult alone.
                .init(name: dummyName, mac: String(pod.vlanID)),
            ],
            ips: [.init(address: IPPrefix(host: pod.podIP).description, gateway: pod.subnetGateway.description, interface: 1)]
        ).converted(to: config.cniVersion)
    }

    // MARK: DEL

    public func del() throws(CNIError) {
        let ctx = try open { () throws(NetlinkError) in try datapath.hostContext() }
        let owner = env.containerID
        // The pod's veth has one of two names (the mode may have changed since ADD).
        var veths = [hostVethName(mode: config.mode), hostVethName(mode: config.mode == .strict ? .standard : .strict)]
        // Where the pod's identity came from, for the log line that says what DEL did.
        var source = "prevResult"
        var id: BranchPodIdentity?
        // With prevResult, ipamd is only told: it handles that while the teardown runs, and the
        // answer is read at the end, so the round trip is off the critical path.
        var notified: PendingReply?
        if let p = Self.identity(fromPrevResult: config.prevResult) {
            id = p
            if let v = p.hostVeth, !veths.contains(v) { veths.insert(v, at: 0) }
            notified = ipamd.send(RPCRequest(method: .delNetwork, pod: podRequest), timeoutSeconds: IPAMDTimeouts.bestEffort)
        } else {
            do {
                let reply = try ipamd.call(RPCRequest(method: .delNetwork, pod: podRequest), timeoutSeconds: IPAMDTimeouts.del)
                if let n = reply.network, n.branch || n.deviceNumber != nil {
                    // A regular pod's answer has VLAN 0.
                    id = BranchPodIdentity(vlanID: n.branch ? n.vlanID : 0, podIP: n.podIPv4.flatMap { IPAddress($0) }, hostVeth: nil)
                    source = "ipamd"
                }
            } catch {
                // A DEL that fails blocks pod deletion forever: carry on from the live state.
                logger.warning("ipamd unavailable for DEL; tearing down from live state", metadata: ["error": "\(error)"])
            }
            if id == nil {
                id = try read { () throws(NetlinkError) in try LiveDiscovery.branchPod(owner: owner, hostVeths: veths, host: ctx.host) }
                source = id == nil ? "nothing found" : "live state"
            }
        }
        // A regular pod (VLAN 0): its address and veth; nothing found: only the veth names.
        let scope = id.map { TeardownScope($0, alsoVeths: veths) } ?? TeardownScope(vlanID: nil, podIP: nil, hostVeths: veths)
        // Only what this container owns, what an older plugin left untagged, or what nobody
        // owns: a late DEL never touches the links or rules of a newer pod.
        let state = try read { () throws(NetlinkError) in try LiveDiscovery.hostState(for: scope, owner: owner, host: ctx.host) }
        ctx.remember(.host, state.links.values)
        let steps = TeardownPlanner.delete(scope, owner: owner, state: state)
        // The links go only once every rule is gone: a DEL that fails on a rule keeps the host
        // veth, from which a retried DEL finds the pod's address when neither prevResult nor
        // ipamd (which released it at the first DEL) has it any more.
        let applier = PlanApplier(context: ctx, logger: logger)
        var failures = applier.teardown(steps.filter { if case .deleteRule = $0 { true } else { false } })
        if failures.isEmpty { failures = applier.teardown(steps.filter { if case .deleteRule = $0 { false } else { true } }) }
        _ = try? notified?.wait()
        if let first = failures.first {
            throw CNIError(.datapathFailure, "failed to remove the pod's datapath", details: "\(first)")
        }
        logger.info(id?.vlanID == 0 ? "regular pod deleted" : "branch pod deleted", metadata: ["from": "\(source)", "vlan": "\(id.map { String($0.vlanID) } ?? "none")", "steps": "\(steps.count)"])
    }

    /// VLAN id from the `dummy` interface's mac, pod IP from ips[0], host veth from interfaces[0].
    static func identity(fromPrevResult r: CNIResult?) -> BranchPodIdentity? {
        guard let r, let ifs = r.interfaces, let dummy = ifs.last(where: { $0.name.hasPrefix("dummy") }),
              let vlanText = dummy.mac, let vlan = UInt16(vlanText) else { return nil }
        let ip = r.ips?.first.flatMap { IPPrefix($0.address)?.address }
        let veth = ifs.first { $0.sandbox == nil && !$0.name.hasPrefix("dummy") }?.name
        return BranchPodIdentity(vlanID: vlan, podIP: ip, hostVeth: veth)
    }

    // MARK: CHECK

    public func check() throws(CNIError) {
        guard let prev = config.prevResult else {
            throw CNIError(.invalidConfig, "CHECK needs prevResult in the network configuration")
        }
        guard let id = Self.identity(fromPrevResult: prev), let ip = id.podIP, let veth = id.hostVeth else {
            throw CNIError(.invalidConfig, "prevResult does not describe a branch pod (no dummy VLAN record, IP or host veth)")
        }
        let ctx = try open { () throws(NetlinkError) in try datapath.podContext(netnsPath: env.netns) }
        guard id.vlanID != 0 else { return try checkRegular(prev, ip: ip, veth: veth, ctx: ctx) }
        var problems: [String] = []
        // ipamd knows the branch MAC and trunk; without it, check everything else.
        var mac: MACAddress?
        var trunk: Int32 = 0
        if let n = try? ipamd.call(RPCRequest(method: .getNetwork, pod: podRequest), timeoutSeconds: IPAMDTimeouts.bestEffort).network, n.branch {
            mac = n.branchMAC.flatMap { MACAddress($0) }
            trunk = n.parentIfIndex
            if n.vlanID != id.vlanID { problems.append("ipamd says VLAN \(n.vlanID), prevResult says \(id.vlanID)") }
            if n.podIPv4 != ip.description { problems.append("ipamd says pod IP \(n.podIPv4 ?? "none"), prevResult says \(ip)") }
        }
        if mac == nil {
            mac = try read { () throws(NetlinkError) in try ctx.host.link(named: Naming.vlanLinkName(vlanID: id.vlanID))?.mac }
        }
        let (hostMAC, podMAC) = try vethMACs(prev, veth: veth, ctx: ctx)
        let gw = prev.ips?.first?.gateway.flatMap { IPAddress($0) } ?? ip
        let pod = BranchPod(mode: config.mode, vlanID: id.vlanID, podIP: ip, subnetGateway: gw,
                            branchMAC: mac ?? Self.unknownMAC, trunkIndex: trunk,
                            hostVeth: veth, containerInterface: env.ifName, mtu: config.mtu, owner: env.containerID,
                            hostVethMAC: hostMAC, containerMAC: podMAC)
        try verify(BranchPodPlanner.setup(pod), family: pod.family, ctx: ctx, problems: problems)
    }

    /// A regular pod's CHECK: the ENI's device number from the dummy record, the address from
    /// ipamd when it answers.
    func checkRegular(_ prev: CNIResult, ip: IPAddress, veth: String, ctx: DatapathContext) throws(CNIError) {
        var problems: [String] = []
        let device = prev.interfaces?.last(where: { $0.name.hasPrefix("dummy") })?.sandbox.flatMap { Int($0) } ?? 0
        if let n = try? ipamd.call(RPCRequest(method: .getNetwork, pod: podRequest), timeoutSeconds: IPAMDTimeouts.bestEffort).network, !n.branch,
           n.podIPv4 != ip.description {
            problems.append("ipamd says pod IP \(n.podIPv4 ?? "none"), prevResult says \(ip)")
        }
        let (hostMAC, podMAC) = try vethMACs(prev, veth: veth, ctx: ctx)
        let pod = RegularPod(veth: PodVeth(podIP: ip, hostVeth: veth, containerInterface: env.ifName, mtu: config.mtu, owner: env.containerID,
                                           hostVethMAC: hostMAC, containerMAC: podMAC), deviceNumber: device)
        try verify(RegularPodPlanner.setup(pod), family: ip.family, ctx: ctx, problems: problems)
    }

    static let unknownMAC = MACAddress(bytes: [2, 0, 0, 0, 0, 0])!

    /// The veth MACs as ADD reported them (a MAC rewritten since, e.g. by udev, is a difference);
    /// results of older builds lack them, then the live ones stand in.
    func vethMACs(_ prev: CNIResult, veth: String, ctx: DatapathContext) throws(CNIError) -> (host: MACAddress, pod: MACAddress) {
        let ifs = prev.interfaces ?? []
        var hostMAC = ifs.first(where: { $0.name == veth })?.mac.flatMap { MACAddress($0) }
        if hostMAC == nil { hostMAC = try read { () throws(NetlinkError) in try ctx.host.link(named: veth)?.mac } }
        var podMAC = ifs.first(where: { $0.sandbox != nil && !$0.name.hasPrefix("dummy") })?.mac.flatMap { MACAddress($0) }
        if podMAC == nil { podMAC = try read { () throws(NetlinkError) in try ctx.pod?.link(named: env.ifName)?.mac } }
        return (hostMAC ?? Self.unknownMAC, podMAC ?? Self.unknownMAC)
    }

    func verify(_ plan: [PlanStep], family: AddressFamily, ctx: DatapathContext, problems: [String]) throws(CNIError) {
        var problems = problems
        do {
            problems += try PlanVerifier(context: ctx).differences(plan, family: family)
        } catch {
            throw CNIError(.datapathFailure, "CHECK could not read the datapath", details: "\(error)")
        }
        if !problems.isEmpty {
            throw CNIError(.checkMismatch, "datapath does not match prevResult", details: problems.joined(separator: "; "))
        }
    }

    // MARK: GC

    /// Removes the datapath of every attachment the runtime no longer has: links tagged with a
    /// container id that is not in `cni.dev/valid-attachments`, with their VLAN's table and rules.
    /// Untagged links are left alone: nothing says whose they are.
    public func gc() throws(CNIError) {
        guard let attachments = config.validAttachments else {
            throw CNIError(.invalidConfig, "GC needs cni.dev/valid-attachments in the network configuration")
        }
        let valid = Set(attachments.map(\.containerID))
        let ctx = try open { () throws(NetlinkError) in try datapath.hostContext() }
        let state = try read { () throws(NetlinkError) in try LiveDiscovery.fullHostState(host: ctx.host) }
        ctx.remember(.host, state.links.values)
        // Links of containers the runtime no longer has, and rules no valid attachment needs
        // (judged by ownership, so a stale container's rules never take a live pod's with them).
        let steps = TeardownPlanner.collect(valid: valid, vethPrefixes: [Naming.strictVethPrefix, config.vethPrefix], state: state)
        logger.info("GC", metadata: ["valid_attachments": "\(valid.count)", "steps": "\(steps.map(\.description))"])
        if let first = PlanApplier(context: ctx, logger: logger).teardown(steps).first {
            throw CNIError(.datapathFailure, "GC failed to remove a stale datapath", details: "\(first)")
        }
    }

    // MARK: STATUS

    public func status() throws(CNIError) {
        do {
            let reply = try ipamd.call(RPCRequest(method: .ping), timeoutSeconds: IPAMDTimeouts.bestEffort)
            if !reply.success { throw CNIError(.notAvailable, "ipamd is not ready", details: reply.error?.message ?? "") }
        } catch let e as IPAMDClientError {
            throw CNIError(.notAvailable, "ipamd is not available", details: "\(e)")
        } catch let e as CNIError {
            throw e
        } catch {
            throw CNIError(.notAvailable, "ipamd is not available", details: "\(error)")
        }
    }

    // MARK: helpers

    /// ipamd's answer as a pod network, or the CNI error its failure maps to.
    func answer(_ pending: PendingReply) throws(CNIError) -> PodNetwork {
        let reply: RPCReply
        do { reply = try pending.wait() } catch {
            switch error {
            case .unreachable, .transport: throw CNIError(.tryAgainLater, "ipamd is not available", details: "\(error)")
            case .protocolError: throw CNIError(.ipamdFailure, "ipamd answered in an unexpected way", details: "\(error)")
            }
        }
        if let f = reply.error {
            switch f.code {
            case .pending: throw CNIError(.tryAgainLater, "branch interface details for \(podRequest.key) have not arrived yet", details: f.message)
            case .podNotFound: throw CNIError(.notBranchPod, "ipamd has no branch interface for \(podRequest.key)", details: f.message)
            case .invalidAnnotation: throw CNIError(.ipamdFailure, "invalid pod-eni details for \(podRequest.key)", details: f.message)
            case .podUIDMismatch: throw CNIError(.ipamdFailure, "ipamd refused \(podRequest.key): pod UID mismatch", details: f.message)
            case .conflict: throw CNIError(.branchConflict, "ipamd refused \(podRequest.key): its branch interface is held by another running pod", details: f.message)
            case .shuttingDown: throw CNIError(.tryAgainLater, "ipamd is shutting down", details: f.message)
            case .noAddressAvailable: throw CNIError(.tryAgainLater, "no address for \(podRequest.key) yet", details: f.message)
            case .badRequest, .unsupportedVersion, .internal: throw CNIError(.ipamdFailure, "ipamd refused the request", details: f.message)
            }
        }
        guard let n = reply.network else { throw CNIError(.ipamdFailure, "ipamd answered without network details") }
        return n
    }

    /// Reads the node's state; a failure (not absence: EPERM, ENOBUFS, ...) fails the command.
    func read<T>(_ body: () throws(NetlinkError) -> T) throws(CNIError) -> T {
        do { return try body() } catch {
            throw CNIError(.datapathFailure, "cannot read the node's network state", details: "\(error)")
        }
    }

    func open(_ body: () throws(NetlinkError) -> DatapathContext) throws(CNIError) -> DatapathContext {
        do { return try body() } catch {
            throw CNIError(.datapathFailure, "cannot open network namespace", details: "\(error)")
        }
    }
}
