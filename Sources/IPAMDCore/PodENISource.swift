import IPAMDProtocol

/// What ipamd knows about a pod's branch interface.
public enum PodENILookup: Sendable, Equatable {
    case branch(BranchENI)
    /// The pod has branch details, but they are not valid; the error names the field.
    case invalid(AnnotationError)
    case notFound
    /// The source knows the pod, and it is not a branch pod (no pod-eni resource limit).
    case regular
    /// A branch pod whose details have not arrived (within the wait bound); retry later.
    case pending(String)
    /// The source's pod of that name has another UID: a recreated pod must not get the old
    /// pod's interface.
    case uidMismatch(cached: String, requested: String)
    /// ipamd is stopping: a waiting AddNetwork is answered at once, to be retried.
    case shuttingDown
}

/// Where branch interface details come from: a static file, or the Kubernetes pod watch.
public protocol PodENISource: Sendable {
    /// `key` is "namespace/name" when the runtime passed a pod identity; the container id is
    /// tried as well, for runtimes that pass none.
    func lookup(key: String, containerID: String) -> PodENILookup
    /// The lookup for an RPC: may check the pod UID and, when `wait`, block up to the source's
    /// bound for details that are on their way. Called on the connection's own thread.
    func lookup(_ pod: PodRequest, wait: Bool) -> PodENILookup
    /// Every pod the source knows, for `/v1/pods` (empty for sources that list nothing).
    func podViews() -> [PodView]
    /// The branch pods whose VLAN a lost checkpoint can be rebuilt from (the pods it lists by
    /// default).
    func rebuildCandidates() -> [PodView]
    /// Stops waiting: lookups blocked for details answer `.shuttingDown` at once.
    func shutdown()
    /// Waits up to `timeout` seconds for the source to know every pod of the node (a watch's
    /// first list); true once it does. What a source lists is complete at once by default.
    func waitUntilSynced(timeout: Double) -> Bool
}

extension PodENISource {
    public func lookup(_ pod: PodRequest, wait: Bool) -> PodENILookup { lookup(key: pod.key, containerID: pod.containerID) }
    public func podViews() -> [PodView] { [] }
    public func rebuildCandidates() -> [PodView] { podViews() }
    public func shutdown() {}
    public func waitUntilSynced(timeout: Double) -> Bool { true }
}
