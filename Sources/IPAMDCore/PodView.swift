import IPAMDProtocol

/// One pod as `/v1/pods` shows it: what the source knows (Kubernetes: every pod on the node)
/// merged with what ipamd served. Optional fields are left out of the JSON when unknown.
public struct PodView: Codable, Sendable, Hashable {
    public enum State: String, Codable, Sendable {
        /// AddNetwork answered.
        case served
        /// Branch details valid, no AddNetwork yet.
        case ready
        /// A branch pod whose annotation has not arrived.
        case pending
        case invalid
        /// Not a branch pod.
        case regular
    }

    public var namespace: String
    public var name: String
    public var podUID: String
    public var branch: Bool
    public var state: State
    public var vlanID: UInt16?
    public var eniID: String?
    public var ipv4: String?
    public var mac: String?
    public var containerID: String?
    public var ifName: String?
    /// RFC 3339: when ipamd first saw the pod-eni annotation (from the list or a watch event).
    public var annotationArrivedAt: String?
    /// RFC 3339: when AddNetwork was answered.
    public var servedAt: String?
    /// Why a branch pod is not ready (invalid annotation).
    public var problem: String?
    /// strict or standard: how the served pod was built.
    public var mode: String?
    /// The live datapath against its plan ("ok", or what is missing or different); only when
    /// asked for (`?datapath=1` on the debug socket: it reads the kernel).
    public var datapath: String?

    public init(namespace: String, name: String, podUID: String, branch: Bool, state: State) {
        self.namespace = namespace; self.name = name; self.podUID = podUID; self.branch = branch; self.state = state
    }

    public init(served s: ServedPod) {
        self.init(namespace: s.namespace, name: s.name, podUID: s.podUID, branch: s.branch, state: .served)
        vlanID = s.vlanID; eniID = s.eniID; ipv4 = s.ipv4; mac = s.mac; containerID = s.containerID; ifName = s.ifName
        servedAt = s.servedAt; mode = s.mode
    }

    /// The source's pods, each completed with its served entry (same namespace/name and UID),
    /// then the served pods the source does not list (static file, container-id keys).
    public static func merge(source: [PodView], served: [ServedPod]) -> [PodView] {
        var used = Set<Int>()
        var index: [String: Int] = [:]
        for (i, s) in served.enumerated() where !s.name.isEmpty { index["\(s.namespace)/\(s.name)"] = i }
        var out: [PodView] = []
        for var v in source {
            if let i = index["\(v.namespace)/\(v.name)"], served[i].podUID.isEmpty || served[i].podUID == v.podUID {
                let s = served[i]
                used.insert(i)
                v.state = .served
                v.servedAt = s.servedAt; v.containerID = s.containerID; v.ifName = s.ifName
                v.vlanID = s.vlanID; v.eniID = s.eniID; v.ipv4 = s.ipv4; v.mac = s.mac; v.mode = s.mode
            }
            out.append(v)
        }
        for (i, s) in served.enumerated() where !used.contains(i) { out.append(PodView(served: s)) }
        return out.sorted { ($0.namespace, $0.name, $0.containerID ?? "") < ($1.namespace, $1.name, $1.containerID ?? "") }
    }
}
