/// The settings of the Kubernetes pod-ENI source (`POD_ENI_SOURCE=kubernetes`, the default).
/// Kept apart from Config.swift: one place for everything the cluster connection needs.
public struct KubernetesSettings: Sendable, Hashable {
    /// MY_NODE_NAME (required): the pods watched are `spec.nodeName=<this>`; also the CNINode's name.
    public var nodeName: String
    /// KUBECONFIG: run outside a pod with this kubeconfig; nil means in-cluster.
    public var kubeconfig: String?
    /// KUBERNETES_SERVICE_ACCOUNT_DIR: where the in-cluster token and ca.crt are.
    public var serviceAccountDir: String = "/var/run/secrets/kubernetes.io/serviceaccount"
    /// POD_ENI_WAIT_TIMEOUT: how long AddNetwork waits for a branch pod's annotation, seconds.
    public var waitTimeout: Double = 10
    /// ENABLE_POD_ENI: ask for branch interfaces (CNINode feature SecurityGroupsForPods). Parsed
    /// once with the node settings (IPAMDConfig.node) and copied here.
    public var enablePodENI = false
    /// ENABLE_TRUNK_LABEL: also set the legacy node label vpc.amazonaws.com/has-trunk-attached.
    public var enableTrunkLabel = false

    public init(nodeName: String) { self.nodeName = nodeName }

    /// The plugin gives ipamd 30 s for an ADD; the wait must end before that.
    public static let maxWaitTimeout = 25.0

    /// Reads the settings, recording problems in `r` (IPAMDConfig.fromEnvironment reports them all).
    static func read(_ r: inout EnvReader) -> KubernetesSettings {
        var s = KubernetesSettings(nodeName: "")
        if let node = r.value("MY_NODE_NAME") {
            if node.utf8.count <= 253, node.allSatisfy({ $0.isLowercase || $0.isNumber || $0 == "-" || $0 == "." }) {
                s.nodeName = node
            } else {
                r.fail("MY_NODE_NAME", "\"\(node)\" is not a node name (lowercase letters, digits, '-' and '.', at most 253 characters)")
            }
        } else {
            r.fail("MY_NODE_NAME", "not set; required with POD_ENI_SOURCE=kubernetes (the default): the node's name, usually from the downward API (spec.nodeName)")
        }
        if let k = r.value("KUBECONFIG") {
            if k.contains(":") {
                r.fail("KUBECONFIG", "\"\(k)\": give one kubeconfig file (a list of files is not supported)")
            } else {
                s.kubeconfig = k
            }
        }
        if let d = r.absolutePath("KUBERNETES_SERVICE_ACCOUNT_DIR") { s.serviceAccountDir = d }
        s.waitTimeout = r.read("POD_ENI_WAIT_TIMEOUT", default: s.waitTimeout,
                               accepted: "a duration from 0 to 25 seconds, e.g. 10, 10s, 2.5s, 500ms") { t in
            parseDuration(t).flatMap { $0 >= 0 && $0 <= maxWaitTimeout ? $0 : nil }
        }
        s.enableTrunkLabel = r.bool("ENABLE_TRUNK_LABEL", default: false)
        return s
    }

    /// "10", "2.5", "10s", "500ms" -> seconds.
    static func parseDuration(_ t: String) -> Double? {
        if t.hasSuffix("ms") { return Double(t.dropLast(2)).map { $0 / 1000 } }
        if t.hasSuffix("s") { return Double(t.dropLast()) }
        return Double(t)
    }
}
