import IPAMDProtocol

/// What ipamd knows about a pod's branch interface.
public enum PodENILookup: Sendable, Equatable {
    case branch(BranchENI)
    /// The pod has branch details, but they are not valid; the error names the field.
    case invalid(AnnotationError)
    case notFound
}

/// Where branch interface details come from (a static file now; the Kubernetes watch later).
public protocol PodENISource: Sendable {
    /// `key` is "namespace/name" when the runtime passed a pod identity; the container id is
    /// tried as well, for runtimes that pass none.
    func lookup(key: String, containerID: String) -> PodENILookup
}
