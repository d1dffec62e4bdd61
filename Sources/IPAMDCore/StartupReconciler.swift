import Datapath
import EnforcingMode
import Logging
import NetModel
import Netlink

/// What reconciling the checkpoint with the node found at start.
public struct StartupReport: Sendable, Equatable {
    /// Pods served again as they are (datapath untouched).
    public var kept: [String] = []
    /// Checkpointed pods whose sandbox is gone (deleted while ipamd was down): torn down.
    public var gone: [String] = []
    /// Checkpointed pods whose VLAN link no longer carries their container: their DEL ran
    /// without ipamd; only the entry is dropped.
    public var alreadyTornDown: [String] = []
    /// Pods recorded again from the kernel's tagged links (the checkpoint was lost).
    public var rebuilt: [String] = []
    /// Objects owned by no known pod, removed.
    public var removed: [String] = []
    /// Teardown steps that failed (other than "already gone").
    public var failures: [String] = []
    /// False when the pod source could not say which pods exist (e.g. the API server did not
    /// answer in time): then nothing is torn down, since a pod not listed may still be running.
    public var sourceSynced = true
}

/// Reconciles the restored checkpoint with the live node and the pod source (issue: state
/// survives restarts). Live pods stay as they are; pods the source no longer has are torn down,
/// and so is anything tagged with a container no known pod has, each step through the same
/// ownership rules as DEL and GC (EnforcingMode's TeardownPlanner), so a live pod's objects are
/// never taken.
public struct StartupReconciler {
    let registry: PodRegistry
    let source: any PodENISource
    let host: any NetlinkClient
    let applier: PlanApplier
    let vethPrefixes: [String]
    let mode: PodSGEnforcingMode
    let logger: Logger

    public init(registry: PodRegistry, source: any PodENISource, context: DatapathContext, vethPrefix: String,
                mode: PodSGEnforcingMode, logger: Logger) {
        self.registry = registry; self.source = source; host = context.host
        applier = PlanApplier(context: context, logger: logger)
        vethPrefixes = [Naming.strictVethPrefix, vethPrefix]
        self.mode = mode; self.logger = logger
    }

    /// `rebuild`: the checkpoint was unreadable; record the pods the kernel's tagged VLAN links
    /// and the source agree on. `syncTimeout`: how long to wait for the source's first list.
    public func run(rebuild: Bool, syncTimeout: Duration) async throws(NetlinkError) -> StartupReport {
        var report = StartupReport()
        let state = try LiveDiscovery.fullHostState(host: host)
        // Nothing recorded and nothing tagged on the node (a first start): nothing to wait for.
        if registry.all.isEmpty && !rebuild && TeardownPlanner.collect(valid: [], vethPrefixes: vethPrefixes, state: state).isEmpty {
            return report
        }
        report.sourceSynced = await source.waitUntilSynced(timeout: syncTimeout)
        let vlanOwners = Dictionary(state.links.values.filter(Self.isBranchVLAN).map { ($0.vlanID, $0.alias) }, uniquingKeysWith: { a, _ in a })

        if rebuild && report.sourceSynced { report.rebuilt = self.rebuild(vlanOwners: vlanOwners) }

        // The entry of a pod whose VLAN link (a regular pod: its host veth) is gone or re-tagged:
        // its DEL ran without ipamd.
        let vethOwners = Set(state.links.values.filter { $0.kind == "veth" && !$0.alias.isEmpty }.map(\.alias))
        do {
            report.alreadyTornDown = try registry.prune { p in p.branch ? vlanOwners[p.vlanID] == p.containerID : vethOwners.contains(p.containerID) }.map(\.key)
        } catch {
            logger.error("cannot update the checkpoint", metadata: ["error": "\(error)"])
        }
        guard report.sourceSynced else {
            report.kept = registry.all.map(\.key)
            logger.warning("the pod source has not listed the pods yet: no teardown at start (a pod not listed may still run)",
                           metadata: ["kept": "\(report.kept)"])
            return report
        }
        do {
            report.gone = try registry.prune(keep: isLive).map(\.key)
        } catch {
            logger.error("cannot update the checkpoint", metadata: ["error": "\(error)"])
        }
        report.kept = registry.all.map(\.key)

        let valid = Set(registry.all.map(\.containerID))
        let steps = TeardownPlanner.collect(valid: valid, vethPrefixes: vethPrefixes, state: state)
        if !steps.isEmpty {
            report.removed = steps.map(\.description)
            logger.warning("removing objects no known pod owns", metadata: ["steps": "\(report.removed)"])
            report.failures = applier.teardown(steps).map { "\($0)" }
        }
        logger.info("checkpoint reconciled", metadata: [
            "kept": "\(report.kept.count)", "gone": "\(report.gone)", "already_torn_down": "\(report.alreadyTornDown)",
            "rebuilt": "\(report.rebuilt)", "removed": "\(report.removed.count)", "failures": "\(report.failures)",
        ])
        return report
    }

    /// Still running with the same branch interface, as the source says; a pod the source cannot
    /// answer for yet (details pending) counts as running. A regular pod: still in the source
    /// without branch details; a source that lists only branch pods (the file) cannot say, nor
    /// can any source for a pod the runtime gave no name (ctr): its host veth (checked before) is
    /// what tells.
    func isLive(_ p: ServedPod) -> Bool {
        if !p.branch {
            guard source.listsRegularPods, !p.name.isEmpty else { return true }
            switch source.lookup(p.podRequest) {
            case .regular, .pending: return true
            case .branch, .invalid, .notFound, .uidMismatch, .shuttingDown: return false
            }
        }
        return switch source.lookup(p.podRequest) {
        case .branch(let e): e.vlanID == p.vlanID && e.ipv4?.description == p.ipv4
        case .pending: true
        case .invalid, .notFound, .regular, .uidMismatch, .shuttingDown: false
        }
    }

    /// Pods of the source whose VLAN link on the node carries a container tag: recorded for that
    /// container (what the lost checkpoint said).
    func rebuild(vlanOwners: [UInt16: String]) -> [String] {
        var out: [String] = []
        for v in source.rebuildCandidates() where v.branch {
            guard let vlan = v.vlanID, let owner = vlanOwners[vlan], !owner.isEmpty else { continue }
            // A pod listed by container id is that container's only.
            if let c = v.containerID, v.name.isEmpty, c != owner { continue }
            let pod = ServedPod(namespace: v.namespace, name: v.name, podUID: v.podUID, containerID: owner, ifName: v.ifName ?? "eth0",
                                branch: true, vlanID: vlan, eniID: v.eniID ?? "", ipv4: v.ipv4, mac: v.mac ?? "",
                                servedAt: Clock.rfc3339Now(), mode: mode.rawValue)
            do {
                if case .recorded = try registry.claim(pod, isLive: { _ in true }) { out.append(pod.key) }
            } catch {
                logger.error("cannot record a rebuilt pod", metadata: ["pod": "\(pod.key)", "error": "\(error)"])
            }
        }
        return out
    }

    static func isBranchVLAN(_ l: LinkInfo) -> Bool { l.kind == "vlan" && l.name.hasPrefix("vlan.eth.") && !l.alias.isEmpty }
}
