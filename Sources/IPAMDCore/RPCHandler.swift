import IPAMDMetrics
import IPAMDProtocol
import IPAMPool
import Logging
import NetModel

/// Answers RPC requests. Pure with respect to sockets: the server feeds it decoded requests.
public final class RPCHandler: Sendable {
    let config: IPAMDConfig
    let source: any PodENISource
    let trunk: any TrunkLocator
    public let registry: PodRegistry
    /// The VPC CIDRs every reply carries (re-read from the cloud while running).
    public let facts: NodeFacts
    let metrics: IPAMDMetrics
    let offload: Offload
    /// The regular pods' addresses; nil without the cloud (regular pods are refused then).
    let pool: (any AddressPoolService)?
    let logger: Logger

    /// Runs the blocking part of an answer (the checkpoint's fsync, netlink) where it blocks no
    /// task: ipamd's server passes a thread pool, so concurrent ADDs share one checkpoint write
    /// (group commit) instead of queueing behind the few cooperative-pool threads.
    public typealias Offload = @Sendable (_ work: @escaping @Sendable () -> RPCReply) async -> RPCReply

    public init(config: IPAMDConfig, source: any PodENISource, trunk: any TrunkLocator, registry: PodRegistry,
                facts: NodeFacts? = nil, metrics: IPAMDMetrics = .system, offload: @escaping Offload = { $0() },
                pool: (any AddressPoolService)? = nil, logger: Logger) {
        self.config = config; self.source = source; self.trunk = trunk; self.registry = registry; self.logger = logger
        self.metrics = metrics; self.offload = offload; self.pool = pool
        self.facts = facts ?? NodeFacts(vpcCIDRs: config.vpcCIDRs)
    }

    /// Answers a request. Only AddNetwork waits: for branch details on their way (up to
    /// `POD_ENI_WAIT_TIMEOUT`), then for a trunk not attached yet (as long again); CHECK and DEL
    /// answer at once. A wait ended by ipamd stopping is answered "shutting down" (CNI code 11).
    public func handle(_ request: RPCRequest) async -> RPCReply {
        let started = ContinuousClock.now
        let method = request.method.rawValue
        let reply = await metrics.inProgress(method) { await waitThenRespond(request) }
        observe(request, reply, since: started)
        return reply
    }

    func observe(_ request: RPCRequest, _ reply: RPCReply, since started: ContinuousClock.Instant) {
        let method = request.method.rawValue
        metrics.rpc(method: method, result: reply.error?.code.rawValue ?? "success", duration: .now - started)
        switch reply.error?.code {
        case .internal?: metrics.error(fn: method)
        case .invalidAnnotation?: metrics.podENIError(fn: "invalidAnnotation")
        case .conflict?: metrics.podENIError(fn: "conflict")
        case .podUIDMismatch?: metrics.podENIError(fn: "podUIDMismatch")
        default: break
        }
    }

    func waitThenRespond(_ request: RPCRequest) async -> RPCReply {
        if request.method == .delNetwork, let pool, let pod = request.pod, !pod.containerID.isEmpty {
            return await delRegular(pod, pool: pool, request)
        }
        guard request.method == .addNetwork, let pod = request.pod else { return await offload { self.respond(request) } }
        let bound = Duration.seconds(config.podENIWaitTimeout)
        // Awaited once: whether the pod is a branch pod is the source's to say.
        if config.enablePodENI, !pod.podName.isEmpty {
            let outcome = await metrics.inProgress("waitForPodDetails") { await source.awaitDetails(for: pod, until: .now + bound) }
            if outcome == .closed { return Self.shuttingDown }
        }
        if let pool, !pod.containerID.isEmpty, isRegular(pod) { return await addRegular(pod, pool: pool) }
        if config.enablePodENI, !pod.podName.isEmpty {
            if case .branch = source.lookup(pod), trunk.awaitingAttachment {
                logger.info("waiting for the trunk", metadata: ["pod": "\(pod.key)", "bound_s": "\(config.podENIWaitTimeout)"])
                let outcome = await metrics.inProgress("waitForTrunk") { await trunk.awaitTrunk(until: .now + bound) }
                if outcome == .closed { return Self.shuttingDown }
            }
        }
        return await offload { self.respond(request) }
    }

    /// ipamd is stopping: waiting AddNetworks (and later ones that would wait) answer at once.
    public func shutdown() {
        source.shutdown()
        trunk.shutdown()
        if let pool { Task { await pool.shutdown() } }
    }

    // MARK: regular pods

    /// Whether the pod gets a pool address: pod ENI off, or a pod (or, without a pod identity, a
    /// container) the source has no branch details for (after the wait for them).
    func isRegular(_ pod: PodRequest) -> Bool {
        guard config.enablePodENI else { return true }
        // A pod the source has no branch details for is a regular pod, as in the reference.
        switch source.lookup(pod) {
        case .regular, .notFound: return true
        case .branch, .invalid, .pending, .uidMismatch, .shuttingDown: return false
        }
    }

    static func holder(_ pod: PodRequest) -> AddressHolder {
        AddressHolder(networkName: pod.networkName, containerID: pod.containerID, ifName: pod.ifName, namespace: pod.podNamespace, name: pod.podName)
    }

    func addRegular(_ pod: PodRequest, pool: any AddressPoolService) async -> RPCReply {
        metrics.addIPRequest()
        let got = await metrics.inProgress("waitForAddress") { await pool.assign(Self.holder(pod), until: .now + config.pool.addressWait) }
        switch got {
        case .failure(.shuttingDown):
            return Self.shuttingDown
        case .failure(let shortage):
            metrics.noAvailableIP()
            logger.warning("no address for a regular pod", metadata: ["pod": "\(pod.key)", "reason": "\(shortage)"])
            return RPCReply(error: RPCFailure(.noAddressAvailable, "no address for \(pod.key): \(shortage)"))
        case .success(let a):
            let served = ServedPod(namespace: pod.podNamespace, name: pod.podName, podUID: pod.podUID, containerID: pod.containerID,
                                   ifName: pod.ifName, branch: false, vlanID: 0, eniID: a.eniID, ipv4: a.address.description, mac: "",
                                   servedAt: Clock.rfc3339Now(), netns: pod.netns.isEmpty ? nil : pod.netns, networkName: pod.networkName,
                                   deviceNumber: a.deviceNumber)
            let reply = await offload {
                if let refusal = self.claim(served) { return RPCReply(error: refusal) }
                return RPCReply(network: self.network(served))
            }
            if reply.success {
                logger.info("served regular pod", metadata: ["pod": "\(pod.key)", "ip": "\(a.address)", "eni": "\(a.eniID)", "device_number": "\(a.deviceNumber)"])
            } else {
                // Not recorded: the address goes back (into its cool-down).
                _ = await pool.release(Self.holder(pod).key)
            }
            return reply
        }
    }

    /// DEL: the checkpoint entry first (as for branch pods), then the sandbox's address into its
    /// cool-down, whatever the checkpoint said (a write that failed must not leak the address).
    func delRegular(_ pod: PodRequest, pool: any AddressPoolService, _ request: RPCRequest) async -> RPCReply {
        let reply = await offload { self.respond(request) }
        if let released = await pool.release(Self.holder(pod).key) {
            metrics.delIPRequest(reason: "PodDeleted")
            logger.info("released regular pod", metadata: ["pod": "\(pod.key)", "ip": "\(released.address)", "eni": "\(released.eniID)"])
            if !reply.success {
                return RPCReply(network: PodNetwork(branch: false, podIPv4: released.address.description, vpcCIDRs: facts.vpcCIDRs.map(\.description),
                                                    externalSNAT: config.externalSNAT, deviceNumber: released.deviceNumber, eniID: released.eniID))
            }
        }
        return reply
    }

    func network(_ s: ServedPod) -> PodNetwork {
        PodNetwork(branch: false, podIPv4: s.ipv4, vpcCIDRs: facts.vpcCIDRs.map(\.description), externalSNAT: config.externalSNAT,
                   deviceNumber: s.deviceNumber ?? 0, eniID: s.eniID)
    }

    public static let shuttingDown = RPCReply(error: RPCFailure(.shuttingDown, "ipamd is shutting down; retry once it is back"))

    /// Answers from what ipamd knows now, without waiting (the in-process ipamd of the plugin's
    /// tests calls this directly).
    public func respond(_ request: RPCRequest) -> RPCReply {
        if request.method == .ping { return RPCReply(network: nil) }
        guard let pod = request.pod, !pod.containerID.isEmpty || !pod.podName.isEmpty else {
            return RPCReply(error: RPCFailure(.badRequest, "\(request.method.rawValue) needs a pod (name and namespace, or container id)"))
        }
        switch request.method {
        case .ping: return RPCReply(network: nil)
        case .addNetwork: return add(pod, record: true)
        case .getNetwork: return add(pod, record: false)
        case .delNetwork: return del(pod)
        }
    }

    func add(_ pod: PodRequest, record: Bool) -> RPCReply {
        // Off, no branch details ever arrive (the resource controller waits for the CNINode
        // feature): answer at once instead of letting the ADD wait for them. CHECK and DEL still
        // look pods up, so pods built before the switch can be checked and torn down.
        if record && !config.enablePodENI {
            return RPCReply(error: RPCFailure(.podNotFound, "security groups for pods are off on this node (ENABLE_POD_ENI=false): no branch interface for \(pod.key)"))
        }
        // A regular pod this ipamd served (CHECK asks with GetNetwork).
        if !record, let s = registry.get(key: pod.key), !s.branch, pod.containerID.isEmpty || s.containerID == pod.containerID {
            return RPCReply(network: network(s))
        }
        switch source.lookup(pod) {
        case .regular:
            logger.info("not a branch pod", metadata: ["pod": "\(pod.key)"])
            return RPCReply(error: RPCFailure(.podNotFound, "\(pod.key) is a regular pod (no vpc.amazonaws.com/pod-eni resource limit)"))
        case .pending(let why):
            logger.info("branch details pending", metadata: ["pod": "\(pod.key)", "reason": "\(why)"])
            return RPCReply(error: RPCFailure(.pending, why))
        case .uidMismatch(let cached, let requested):
            logger.warning("pod UID mismatch", metadata: ["pod": "\(pod.key)", "cached_uid": "\(cached)", "requested_uid": "\(requested)"])
            return RPCReply(error: RPCFailure(.podUIDMismatch, "pod \(pod.key) has UID \(cached) in the API server, not \(requested): refusing to give a recreated pod the previous pod's interface"))
        case .notFound:
            logger.info("no branch details for pod", metadata: ["pod": "\(pod.key)", "container_id": "\(pod.containerID)"])
            return RPCReply(error: RPCFailure(.podNotFound, "no pod-eni entry for \(pod.key)\(pod.podName.isEmpty ? "" : " or container \(pod.containerID)")"))
        case .invalid(let e):
            logger.error("invalid branch details", metadata: ["pod": "\(pod.key)", "error": "\(e)"])
            return RPCReply(error: RPCFailure(.invalidAnnotation, e.description))
        case .shuttingDown:
            return Self.shuttingDown
        case .branch(let eni):
            let index: Int32?
            do { index = try trunk.trunkIndex() } catch {
                return RPCReply(error: RPCFailure(.internal, "cannot look up trunk \(trunkName): \(error)"))
            }
            guard let index else {
                if trunk.awaitingAttachment {
                    logger.info("trunk not attached yet", metadata: ["pod": "\(pod.key)"])
                    return RPCReply(error: RPCFailure(.pending, "the node's trunk interface is not attached yet (the VPC resource controller attaches it after the node signals SecurityGroupsForPods); retry later"))
                }
                return RPCReply(error: RPCFailure(.internal, "trunk interface \(trunkName) not found on this node"))
            }
            let network = network(eni, trunkIndex: index)
            if record {
                let served = servedPod(pod, eni)
                if let refusal = claim(served) { return RPCReply(error: refusal) }
                logger.info("served branch pod", metadata: ["pod": "\(pod.key)", "vlan": "\(eni.vlanID)", "ip": "\(eni.ipv4?.description ?? "")"])
            }
            return RPCReply(network: network)
        }
    }

    /// Records the pod unless another running pod holds its VLAN or address. The plugin clears
    /// whatever is left on the VLAN and address before building, so a stale or duplicated
    /// annotation must stop here, not tear down the pod that really has them.
    func claim(_ served: ServedPod) -> RPCFailure? {
        let outcome: Claim
        do {
            outcome = try registry.claim(served) { held in
                // Still running with the same branch interface: the source still gives that pod
                // that VLAN and address (a pod the source cannot answer for yet counts as running).
                switch source.lookup(held.podRequest) {
                case .branch(let e): e.vlanID == held.vlanID && e.ipv4?.description == held.ipv4
                case .pending: true
                case .invalid, .notFound, .regular, .uidMismatch, .shuttingDown: false
                }
            }
        } catch {
            logger.error("cannot record the pod in the checkpoint", metadata: ["pod": "\(served.key)", "error": "\(error)"])
            return RPCFailure(.internal, "cannot record \(served.key) in the checkpoint: \(error)")
        }
        switch outcome {
        case .conflict(let holder):
            let what = [holder.vlanID == served.vlanID ? "VLAN \(served.vlanID)" : nil,
                        holder.ipv4 == served.ipv4 ? "address \(served.ipv4 ?? "")" : nil].compactMap { $0 }.joined(separator: " and ")
            logger.error("branch interface conflict", metadata: ["pod": "\(served.key)", "holder": "\(holder.key)", "holder_container": "\(holder.containerID)", "vlan": "\(served.vlanID)"])
            return RPCFailure(.conflict, "\(what) of \(served.key) (ENI \(served.eniID)) belong to running pod \(holder.key) "
                + "(container \(holder.containerID), ENI \(holder.eniID)); the pod-eni annotation of one of them is stale or duplicated, "
                + "and building \(served.key) would tear down \(holder.key)'s datapath")
        case .recorded(let released):
            for r in released {
                logger.info("released an earlier holder", metadata: ["pod": "\(served.key)", "released": "\(r.key)", "container": "\(r.containerID)", "vlan": "\(r.vlanID)"])
            }
            return nil
        }
    }

    func network(_ eni: BranchENI, trunkIndex: Int32) -> PodNetwork {
        PodNetwork(branch: true, podIPv4: eni.ipv4?.description, podIPv6: eni.ipv6?.description, vlanID: eni.vlanID,
                   branchMAC: eni.mac.description, branchENIID: eni.eniID, subnetCIDR: eni.subnetV4?.description,
                   subnetGatewayV4: eni.gatewayV4?.description, parentIfIndex: trunkIndex,
                   vpcCIDRs: facts.vpcCIDRs.map(\.description), externalSNAT: config.externalSNAT)
    }

    func servedPod(_ pod: PodRequest, _ eni: BranchENI, at servedAt: String = Clock.rfc3339Now()) -> ServedPod {
        ServedPod(namespace: pod.podNamespace, name: pod.podName, podUID: pod.podUID, containerID: pod.containerID,
                  ifName: pod.ifName, branch: true, vlanID: eni.vlanID, eniID: eni.eniID,
                  ipv4: eni.ipv4?.description, mac: eni.mac.description, servedAt: servedAt,
                  mode: config.enforcingMode.rawValue, netns: pod.netns.isEmpty ? nil : pod.netns)
    }

    /// The answer when it needs neither a wait nor a checkpoint write (a ping, a CHECK's lookup,
    /// a repeated ADD of a pod already recorded), so the server can give it without leaving the
    /// event loop; nil otherwise (then `handle`).
    public func answerNow(_ request: RPCRequest) -> RPCReply? {
        switch request.method {
        case .ping, .getNetwork: break
        case .delNetwork: return nil
        case .addNetwork:
            let started = ContinuousClock.now
            guard config.enablePodENI, let pod = request.pod, !pod.podName.isEmpty, !trunk.awaitingAttachment,
                  case .branch(let eni) = source.lookup(pod), registry.isDurablyRecorded(servedPod(pod, eni, at: "")),
                  let index = try? trunk.trunkIndex() else { return nil }
            // The runtime repeated an ADD ipamd already answered and recorded: the same answer,
            // with nothing to claim or write (the first one was logged at info).
            logger.debug("repeated ADD answered from the record", metadata: ["pod": "\(pod.key)", "vlan": "\(eni.vlanID)"])
            let reply = RPCReply(network: network(eni, trunkIndex: index))
            observe(request, reply, since: started)
            return reply
        }
        let started = ContinuousClock.now
        let reply = respond(request)
        observe(request, reply, since: started)
        return reply
    }

    var trunkName: String {
        config.trunk?.description ?? "(the trunk EC2 lists for this instance)"
    }

    func del(_ pod: PodRequest) -> RPCReply {
        let removed: (pod: ServedPod, removed: Bool)?
        do { removed = try registry.remove(key: pod.key, containerID: pod.containerID) } catch {
            // The pod's datapath is gone either way; the entry is dropped at the next start.
            logger.error("cannot update the checkpoint", metadata: ["pod": "\(pod.key)", "error": "\(error)"])
            removed = nil
        }
        switch removed {
        case let (s, true)? where !s.branch:
            return RPCReply(network: network(s))
        case let (s, true)?:
            logger.info("released branch pod", metadata: ["pod": "\(pod.key)", "vlan": "\(s.vlanID)"])
            return RPCReply(network: PodNetwork(branch: true, podIPv4: s.ipv4, vlanID: s.vlanID, branchMAC: s.mac, branchENIID: s.eniID,
                                                vpcCIDRs: facts.vpcCIDRs.map(\.description), externalSNAT: config.externalSNAT))
        case let (s, false)?:
            // The pod has a newer sandbox: its branch details are not this container's to remove.
            logger.info("DEL for a superseded sandbox", metadata: ["pod": "\(pod.key)", "container_id": "\(pod.containerID)", "current": "\(s.containerID)"])
            return RPCReply(error: RPCFailure(.podNotFound, "\(pod.key) is now served for container \(s.containerID), not \(pod.containerID)"))
        case nil:
            // Not served by this ipamd run (e.g. it restarted): the source still knows the pod.
            return add(pod, record: false)
        }
    }
}
