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
    /// The lookup for an RPC, answered from what the source knows now (may check the pod UID).
    func lookup(_ pod: PodRequest) -> PodENILookup
    /// For AddNetwork: waits until the source can answer for `pod` (a branch pod's details on
    /// their way), it stops, or `deadline` passes; the lookup after it gives the answer.
    func awaitDetails(for pod: PodRequest, until deadline: ContinuousClock.Instant) async -> WaitOutcome
    /// Every pod the source knows, for `/v1/pods` (empty for sources that list nothing).
    func podViews() -> [PodView]
    /// The branch pods whose VLAN a lost checkpoint can be rebuilt from (the pods it lists by
    /// default).
    func rebuildCandidates() -> [PodView]
    /// Stops waiting: lookups blocked for details answer `.shuttingDown` at once.
    func shutdown()
    /// Waits up to `timeout` for the source to know every pod of the node (a watch's first
    /// list); true once it does. What a source lists is complete at once by default.
    func waitUntilSynced(timeout: Duration) async -> Bool
    /// Whether the source knows the node's regular pods too (the pod watch), so a regular pod
    /// it does not list is gone; a list of branch pods only (the file) cannot say.
    var listsRegularPods: Bool { get }
}

extension PodENISource {
    public func lookup(_ pod: PodRequest) -> PodENILookup { lookup(key: pod.key, containerID: pod.containerID) }
    public func awaitDetails(for pod: PodRequest, until deadline: ContinuousClock.Instant) async -> WaitOutcome { .ready }
    public func podViews() -> [PodView] { [] }
    public func rebuildCandidates() -> [PodView] { podViews() }
    public func shutdown() {}
    public func waitUntilSynced(timeout: Duration) async -> Bool { true }
    public var listsRegularPods: Bool { false }
}
